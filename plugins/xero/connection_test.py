"""The test of a ``xero`` connection: Airflow's **Test** button and ``airflow connections test``.

It checks, in order, and reports the first failure:

1. the settings parse (a wrong field, or a ``***`` the form saved in place of a value, is named);
2. Xero's identity server accepts the Client ID and Client Secret;
3. when an access token is at hand (a current one in the token store, or a Custom Connection's), one
   read-only call, ``GET /connections``, lists the organisations and checks ``tenant_ids``.

A test never spends or stores a token. Xero's refresh tokens are single-use and Airflow tests a *copy* of
the connection under a temporary id, so a token rotated by a test would be saved where no task looks for
it and the connection's grant would be lost (for the same reason a test from the UI cannot see a token
stored in the default Variable, which is named after the connection id). Step 2 therefore offers Xero a refresh token that cannot
exist (see :meth:`xero.auth.TokenManager.check_client`), and step 3 uses only a stored access token.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from xero.exceptions import XeroAuthError, XeroError
from xero.tokens import consent_hint

if TYPE_CHECKING:
    from xero.hooks import XeroHook


class _FixedToken:
    """An access-token provider that hands out one token and never refreshes it."""

    def __init__(self, access_token: str) -> None:
        self._access_token = access_token

    def access_token(self) -> str:
        return self._access_token

    def refresh(self, stale_access_token: str | None = None) -> str:
        raise XeroAuthError("the stored access token expired during the connection test; test again")


def test_connection(hook: XeroHook) -> tuple[bool, str]:
    """Return ``(ok, message)`` for the connection of ``hook``; never raise, never spend a token."""
    try:
        return _test(hook)
    except XeroError as exc:
        return False, str(exc)
    except Exception as exc:
        return False, f"{type(exc).__name__}: {exc}"


def _test(hook: XeroHook) -> tuple[bool, str]:
    config = hook.config
    manager = hook.token_manager
    access = manager.check_client()
    accepted = "Xero accepted the Client ID and Client Secret"
    if access is None:
        stored = manager.store.load()
        if stored is not None and manager.is_fresh(stored):
            access = stored["access_token"]
        elif (stored or {}).get("refresh_token") or config.refresh_token:
            return True, (
                f"{accepted}; a refresh token is ready in the token store or the connection's "
                "refresh_token (the test does not spend it: the first task run does)"
            )
        else:
            return True, (
                f"{accepted}, but the token store holds no token yet: before the first run, "
                f"{consent_hint(config.conn_id)}"
            )
    tenants = hook.make_client(_FixedToken(access)).list_tenants()
    if not tenants:
        return False, f"{accepted}, but no Xero organisation is connected to this app"
    connected = {tenant.tenant_id for tenant in tenants}
    missing = [tenant_id for tenant_id in config.tenant_ids if tenant_id not in connected]
    if missing:
        return False, (
            f"{accepted}, but these tenant_ids are not connected: {', '.join(missing)} "
            "(fix the connection's 'tenant_ids' extra or reconnect the organisation)"
        )
    names = ", ".join(tenant.tenant_name or tenant.tenant_id for tenant in tenants)
    return True, f"Connected to {len(tenants)} Xero organisation(s): {names}"
