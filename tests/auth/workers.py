"""Code the lock tests run in separate (spawned) processes: each builds its own hook from a connection."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from typing import Any


def preload() -> None:
    """Import the integration once per worker process, so races measure locking, not imports."""
    import xero.hooks  # noqa: F401


def ask_for_token(env: Mapping[str, str], conn_id: str, mode: str, barrier: Any) -> tuple[str, str, int]:
    """Wait for every process, then get an access token (``token``) or call ``GET /connections`` (``call``).

    :param env: the environment of this attempt (the ``AIRFLOW_CONN_*`` variables).
    :return: ``(outcome, fingerprint of the access token, refreshes made)``; never a token.
    """
    os.environ.update(env)
    try:
        import tenacity

        from xero.hooks import XeroHook

        hook = XeroHook(conn_id, retry_wait=tenacity.wait_none(), sleep=lambda seconds: None)
        assert hook.config.conn_id == conn_id  # read the connection before the race starts
        barrier.wait(timeout=60)
        if mode == "call":
            hook.client.list_tenants()
        token = hook.token_manager.access_token()
        digest = hashlib.sha256(token.encode()).hexdigest()[:12]
        return ("ok", digest, hook.token_manager.refresh_count)
    except Exception as exc:
        return ("error", f"{type(exc).__name__}: {str(exc)[:300]}", 0)
    finally:
        for name in env:
            os.environ.pop(name, None)
