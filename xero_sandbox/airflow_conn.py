"""The Airflow connection of the ``xero`` provider (``plugins/xero``) that points at a served sandbox."""

from __future__ import annotations

import os
from typing import Any


def airflow_connection(
    url: str,
    *,
    client_id: str,
    client_secret: str,
    token_file: str | os.PathLike[str],
    refresh_token: str | None = None,
    authorize: bool = False,
    **extra: Any,
) -> dict[str, Any]:
    """Return the ``xero`` connection on the sandbox at ``url`` (``json.dumps`` it for ``AIRFLOW_CONN_*``).

    :param url: the served sandbox (``sb.url``, or what ``python -m xero_sandbox`` printed): the token,
        connections and accounting calls all go there.
    :param client_id: the OAuth app (``sb.config.client_id``).
    :param client_secret: its secret (``sb.config.client_secret``).
    :param token_file: the connection's file token store (``oauth_store`` extra ``file:<token_file>``).
    :param refresh_token: the grant that bootstraps the store (``sb.issue_refresh_token()``); none: the
        store must already hold one, or the grant is ``client_credentials``.
    :param authorize: also point ``authorize_url`` (the browser consent of ``python -m xero auth``) at it.
    :param extra: further extras (``page_size``, ``timeout``, ``refresh_lock``, ``grant_type``…), added last.
    :returns: ``{"conn_type": "xero", "login", "password", "extra": {...}}``.
    """
    options: dict[str, Any] = {"api_url": url, "identity_url": url}
    if authorize:
        options["authorize_url"] = f"{url}/connect/authorize"
    if refresh_token is not None:
        options["refresh_token"] = refresh_token
    options["oauth_store"] = f"file:{os.fspath(token_file)}"
    options.update(extra)
    return {"conn_type": "xero", "login": client_id, "password": client_secret, "extra": options}
