"""The sandbox's identity service: grants, codes, access and refresh tokens, connections.

Emulates Xero's rules: access tokens live 30 minutes; refresh tokens (only with ``offline_access``)
are single-use and rotate, the previous one is honoured for a 30-minute grace period and returns the
same new pair, and an unused refresh token expires after 60 days; client_credentials (a Custom
Connection) reaches one tenant and gets no refresh token. Token strings are opaque random values.
"""

from __future__ import annotations

import secrets
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from xero_sandbox.clock import Clock
from xero_sandbox.config import SandboxConfig, TenantInfo

_RESOURCES = (
    "transactions",
    "contacts",
    "settings",
    "attachments",
    "invoices",
    "payments",
    "banktransactions",
    "manualjournals",
    "classicexpenses",
)
ACCOUNTING_SCOPES = frozenset(
    [f"accounting.{r}" for r in _RESOURCES]
    + [f"accounting.{r}.read" for r in _RESOURCES]
    + [
        "accounting.journals.read",
        "accounting.reports.read",
        "accounting.budgets.read",
        "accounting.reports.tenninetynine.read",
    ]
)
KNOWN_SCOPES = ACCOUNTING_SCOPES | {"openid", "profile", "email", "offline_access"}
#: Read scopes a Custom Connection gets when it asks for none.
DEFAULT_CUSTOM_SCOPES = (
    "accounting.settings.read",
    "accounting.contacts.read",
    "accounting.transactions.read",
)


class OAuthError(Exception):
    """An OAuth request failed; ``error`` is the RFC 6749 code."""

    def __init__(self, error: str, description: str = "", status: int = 400) -> None:
        super().__init__(error)
        self.error = error
        self.description = description
        self.status = status

    def body(self) -> dict[str, str]:
        """Return the JSON error body."""
        out = {"error": self.error}
        if self.description:
            out["error_description"] = self.description
        return out


@dataclass
class Connection:
    """A tenant connected to a grant (what ``GET /connections`` lists)."""

    id: str
    auth_event_id: str
    tenant: TenantInfo
    created: datetime
    updated: datetime
    deleted: bool = False

    def as_json(self) -> dict[str, Any]:
        """Render as Xero's identity API does (ISO dates without a zone)."""
        return {
            "id": self.id,
            "authEventId": self.auth_event_id,
            "tenantId": self.tenant.tenant_id,
            "tenantType": "ORGANISATION",
            "tenantName": self.tenant.name,
            "createdDateUtc": _iso(self.created),
            "updatedDateUtc": _iso(self.updated),
        }


@dataclass
class Grant:
    """One consent: scopes and connected tenants, shared by the tokens issued from it."""

    grant_id: str
    client_id: str
    scopes: tuple[str, ...]
    connections: list[Connection]
    custom: bool = False

    def tenant_ids(self) -> set[str]:
        """Return the ids of tenants still connected."""
        return {c.tenant.tenant_id for c in self.connections if not c.deleted}


@dataclass
class AccessToken:
    """An issued bearer token."""

    grant: Grant
    expires_at: float


@dataclass
class RefreshToken:
    """An issued refresh token and, once spent, the response it produced."""

    grant: Grant
    issued_at: float
    used_at: float | None = None
    result: dict[str, Any] | None = None
    successor: str | None = None


@dataclass
class _Code:
    grant: Grant
    redirect_uri: str
    expires_at: float


@dataclass
class AccessCheck:
    """Outcome of checking a bearer token: the grant, or the 401 detail."""

    grant: Grant | None
    detail: str = ""


@dataclass
class AuthServer:
    """All identity state of one sandbox."""

    cfg: SandboxConfig
    clock: Clock
    tenants: list[TenantInfo]
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _codes: dict[str, _Code] = field(default_factory=dict)
    _access: dict[str, AccessToken] = field(default_factory=dict)
    _refresh: dict[str, RefreshToken] = field(default_factory=dict)

    # ------------------------------------------------------------------ grants
    def _tenants_for(self, tenant_ids: list[str] | None) -> list[TenantInfo]:
        if tenant_ids is None:
            return list(self.tenants)
        by_id = {t.tenant_id: t for t in self.tenants}
        unknown = [t for t in tenant_ids if t not in by_id]
        if unknown:
            raise ValueError(f"unknown tenant ids: {unknown}")
        return [by_id[t] for t in tenant_ids]

    def new_grant(
        self, scopes: list[str], tenant_ids: list[str] | None = None, *, custom: bool = False
    ) -> Grant:
        """Record a consent for ``scopes`` connecting ``tenant_ids`` (default: all tenants)."""
        unknown = [s for s in scopes if s not in KNOWN_SCOPES]
        if unknown:
            raise OAuthError("invalid_scope", f"unknown scopes: {' '.join(unknown)}")
        now = self.clock.now()
        event = str(uuid.uuid4())
        connections = [
            Connection(str(uuid.uuid4()), event, t, now, now) for t in self._tenants_for(tenant_ids)
        ]
        return Grant(str(uuid.uuid4()), self.cfg.client_id, tuple(scopes), connections, custom)

    def _issue(self, grant: Grant, *, with_refresh: bool) -> dict[str, Any]:
        now = self.clock.timestamp()
        access = secrets.token_urlsafe(48)
        self._access[access] = AccessToken(grant, now + self.cfg.access_token_seconds)
        body: dict[str, Any] = {
            "access_token": access,
            "expires_in": self.cfg.access_token_seconds,
            "token_type": "Bearer",
            "scope": " ".join(grant.scopes),
        }
        if with_refresh:
            refresh = secrets.token_urlsafe(32)
            self._refresh[refresh] = RefreshToken(grant, now)
            body["refresh_token"] = refresh
        return body

    def issue_refresh_token(self, scopes: list[str], tenant_ids: list[str] | None = None) -> str:
        """Grant ``scopes`` without a browser and return a fresh refresh token."""
        scopes = list(dict.fromkeys([*scopes, "offline_access"]))
        with self._lock:
            grant = self.new_grant(scopes, tenant_ids)
            return self._issue(grant, with_refresh=True)["refresh_token"]

    # ------------------------------------------------------------------ endpoints
    def authorize(self, params: dict[str, str]) -> str:
        """Auto-consent an authorize request and return the code to send to ``redirect_uri``."""
        if params.get("client_id") != self.cfg.client_id:
            raise OAuthError("unauthorized_client", "unknown client_id")
        if params.get("response_type") != "code":
            raise OAuthError("unsupported_response_type", "response_type must be code")
        if not params.get("redirect_uri"):
            raise OAuthError("invalid_request", "redirect_uri is required")
        scopes = params.get("scope", "").split()
        if not scopes:
            raise OAuthError("invalid_scope", "scope is required")
        with self._lock:
            grant = self.new_grant(scopes)
            code = secrets.token_urlsafe(24)
            self._codes[code] = _Code(grant, params["redirect_uri"], self.clock.timestamp() + 300)
            return code

    def token(self, form: dict[str, str], client_id: str | None, client_secret: str | None) -> dict[str, Any]:
        """Serve ``POST /connect/token`` (client authenticated by Basic or form fields)."""
        client_id = client_id or form.get("client_id")
        client_secret = client_secret or form.get("client_secret")
        if client_id != self.cfg.client_id or client_secret != self.cfg.client_secret:
            raise OAuthError("invalid_client")
        grant_type = form.get("grant_type")
        with self._lock:
            if grant_type == "authorization_code":
                return self._exchange_code(form)
            if grant_type == "refresh_token":
                return self._refresh_grant(form.get("refresh_token", ""))
            if grant_type == "client_credentials":
                scopes = form.get("scope", "").split() or list(DEFAULT_CUSTOM_SCOPES)
                scopes = [s for s in scopes if s != "offline_access"]
                tenant = self.tenants[self.cfg.custom_connection_tenant]
                grant = self.new_grant(scopes, [tenant.tenant_id], custom=True)
                return self._issue(grant, with_refresh=False)
        raise OAuthError("unsupported_grant_type")

    def _exchange_code(self, form: dict[str, str]) -> dict[str, Any]:
        code = self._codes.pop(form.get("code", ""), None)
        if code is None or code.expires_at < self.clock.timestamp():
            raise OAuthError("invalid_grant")
        if form.get("redirect_uri") and form["redirect_uri"] != code.redirect_uri:
            raise OAuthError("invalid_grant", "redirect_uri does not match")
        return self._issue(code.grant, with_refresh="offline_access" in code.grant.scopes)

    def _refresh_grant(self, token: str) -> dict[str, Any]:
        now = self.clock.timestamp()
        record = self._refresh.get(token)
        if record is None:
            raise OAuthError("invalid_grant")
        if record.used_at is None:
            if now - record.issued_at > self.cfg.refresh_token_days * 86_400:
                raise OAuthError("invalid_grant")
            body = self._issue(record.grant, with_refresh=True)
            record.used_at = now
            record.result = body
            record.successor = body["refresh_token"]
            return dict(body)
        successor = self._refresh.get(record.successor or "")
        within_grace = now - record.used_at <= self.cfg.refresh_grace_seconds
        if within_grace and successor is not None and successor.used_at is None and record.result:
            body = dict(record.result)
            expiry = self._access[body["access_token"]].expires_at
            body["expires_in"] = max(int(expiry - now), 0)
            return body
        raise OAuthError("invalid_grant")

    # ------------------------------------------------------------------ checks
    def check_access(self, token: str | None) -> AccessCheck:
        """Return the grant behind a bearer token or why it is refused."""
        with self._lock:
            record = self._access.get(token or "")
            if record is None:
                return AccessCheck(None, "AuthenticationUnsuccessful")
            if record.expires_at <= self.clock.timestamp():
                stamp = datetime.fromtimestamp(record.expires_at, tz=UTC).strftime("%m/%d/%Y %H:%M:%S")
                return AccessCheck(None, f"TokenExpired: token expired at {stamp}")
            return AccessCheck(record.grant)

    def expire(self, token: str | None) -> None:
        """Make a bearer token expire now (fault injection)."""
        with self._lock:
            record = self._access.get(token or "")
            if record is not None:
                record.expires_at = min(record.expires_at, self.clock.timestamp())

    def delete_connection(self, grant: Grant, connection_id: str) -> bool:
        """Disconnect a tenant from a grant; return whether the connection existed."""
        with self._lock:
            for conn in grant.connections:
                if conn.id == connection_id and not conn.deleted:
                    conn.deleted = True
                    conn.updated = self.clock.now()
                    return True
            return False


def _iso(instant: datetime) -> str:
    return instant.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "0"
