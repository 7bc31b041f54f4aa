"""The ``xero`` connection form of the Airflow UI: its typed extra fields and how the standard fields show.

This module is the one description of the form: :func:`xero.get_provider_info` publishes it to Airflow's
providers manager and :meth:`xero.hooks.XeroHook.get_ui_field_behaviour` returns the same field behaviour.
It imports nothing from Airflow, so the provider metadata stays cheap to read.

Airflow treats any connection field whose name contains a sensitive word (``token``, ``secret``,
``password``, ``api_key``, ...) as a secret: the form shows its value, including the default, as ``***``
and saves that mask literally when the operator leaves it untouched. Only the bootstrap refresh token, a
real secret, has such a name; the token store and the refresh lock are ``oauth_store`` and
``refresh_lock`` (their former names ``token_store`` and ``token_lock`` are still read, deprecated).
"""

from __future__ import annotations

import copy
from typing import Any

#: Extras renamed so the Airflow UI does not mask them: deprecated name → current name.
DEPRECATED_EXTRAS: dict[str, str] = {"token_store": "oauth_store", "token_lock": "refresh_lock"}

#: What Airflow's masker puts in place of a sensitive value; never a real setting.
MASK = "***"


def _text(label: str, description: str, default: str | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": ["string", "null"]}
    if default is not None:
        schema["default"] = default
    return {"label": label, "description": description, "schema": schema}


#: Typed extras of the ``xero`` connection form (keys are the extras :mod:`xero.hooks` reads).
CONN_FIELDS: dict[str, dict[str, Any]] = {
    "tenant_ids": _text(
        "Tenant IDs", "Comma-separated organisation ids to sync; empty = every connected organisation"
    ),
    "grant_type": {
        "label": "Grant type",
        "description": "authorization_code (standard app, consent + refresh token) or client_credentials "
        "(Custom Connection)",
        "schema": {
            "type": ["string", "null"],
            "enum": ["authorization_code", "client_credentials", None],
            "default": "authorization_code",
        },
    },
    "scopes": _text(
        "Scopes",
        "granular (apps created since March 2026), broad (older apps) or a comma-separated list",
        "granular",
    ),
    "refresh_token": {
        "label": "Refresh token (bootstrap)",
        "description": "Only when not using 'python -m xero auth': a refresh token from a consent, "
        "copied once into the token store",
        "schema": {"type": ["string", "null"], "format": "password"},
    },
    "oauth_store": _text(
        "Token store",
        "Where the rotating OAuth tokens live: variable (default), variable:<key> or "
        "file:/absolute/path/tokens.json",
        "variable",
    ),
    "refresh_lock": _text(
        "Token refresh lock",
        "file (one host, default), postgres:<conn_id> (advisory lock, for several hosts) or redis://host:6379/0",
        "file",
    ),
    "api_url": _text("API URL", "Accounting API base URL", "https://api.xero.com"),
    "identity_url": _text("Identity URL", "Token endpoint base URL", "https://identity.xero.com"),
    "authorize_url": _text(
        "Authorize URL", "Consent page", "https://login.xero.com/identity/connect/authorize"
    ),
    "timeout": {
        "label": "Timeout (s)",
        "description": "Seconds per request",
        "schema": {"type": ["number", "null"], "default": 60, "minimum": 1, "maximum": 600},
    },
    "page_size": {
        "label": "Page size",
        "description": "Records per page (1-1000)",
        "schema": {"type": ["integer", "null"], "default": 1000, "minimum": 1, "maximum": 1000},
    },
}

#: How the standard fields of the form show (Airflow's ``get_ui_field_behaviour`` keys).
UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden_fields": ["host", "port", "schema"],
    "relabeling": {"login": "Client ID", "password": "Client Secret"},
    "placeholders": {
        "login": "Client ID of the Xero app",
        "password": "Client Secret of the Xero app",
        "extra": '{"tenant_ids": [], "grant_type": "authorization_code", "scopes": "granular", '
        '"oauth_store": "variable", "refresh_lock": "file"}',
    },
}


def provider_field_behaviour() -> dict[str, Any]:
    """Return :data:`UI_FIELD_BEHAVIOUR` in the provider metadata's spelling (``hidden-fields``…)."""
    return {key.replace("_", "-"): copy.deepcopy(value) for key, value in UI_FIELD_BEHAVIOUR.items()}
