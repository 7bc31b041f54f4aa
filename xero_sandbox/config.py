"""Configuration and small value types of the sandbox (what a caller builds or reads back)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True)
class SandboxConfig:
    """Everything that shapes a sandbox; equal configs build identical data.

    :param seed: seeds every generated value (ids, names, amounts, dates).
    :param tenants: number of organisations.
    :param client_id: the OAuth app's client id.
    :param client_secret: the OAuth app's client secret.
    :param accounts: chart-of-accounts size per tenant (at least the 24 standard accounts).
    :param contacts: contacts per tenant.
    :param invoices: invoices and bills per tenant.
    :param payments_ratio: share of approved invoices that have payments (fully or partly paid).
    :param max_line_items: most line items on one invoice (at least 1).
    :param archived_contact_ratio: share of contacts that are ARCHIVED (half of them merged into another).
    :param foreign_currency_ratio: share of invoices and bills in a currency other than the organisation's
        base currency (with their own ``CurrencyRate``; their payments carry the rate of the payment day).
    :param history_days: the generated data spans this many days before ``data_end``.
    :param data_end: the latest generated UpdatedDateUTC; fixed so data does not depend on when it is built.
    :param clock_start: where the clock starts (``None``: real time, but never before ``data_end``).
    :param frozen_clock: the clock stands still unless advanced (handy for rate-limit tests).
    :param minute_limit: calls per tenant per minute (fixed window); ``None`` disables it.
    :param day_limit: calls per tenant per day (5,000; Xero's Starter tier has 1,000); ``None`` disables it.
    :param concurrent_limit: in-flight calls per tenant; ``None`` disables it.
    :param app_minute_limit: calls per minute across all tenants; ``None`` disables it.
    :param access_token_seconds: access-token lifetime.
    :param refresh_token_days: a refresh token expires after this many days unused.
    :param refresh_grace_seconds: a spent refresh token is still honoured this long.
    :param high_volume_threshold: unfiltered, unpaged lists over this many rows are rejected with 400.
    :param custom_connection_tenant: index of the tenant a client_credentials token reaches.
    """

    seed: int = 7
    tenants: int = 2
    client_id: str = "sandbox-client"
    client_secret: str = "sandbox-secret"
    accounts: int = 40
    contacts: int = 300
    invoices: int = 2500
    payments_ratio: float = 0.7
    max_line_items: int = 5
    archived_contact_ratio: float = 0.05
    foreign_currency_ratio: float = 0.1
    history_days: int = 730
    data_end: datetime = datetime(2026, 1, 1, tzinfo=UTC)
    clock_start: datetime | None = None
    frozen_clock: bool = False
    minute_limit: int | None = 60
    day_limit: int | None = 5000
    concurrent_limit: int | None = 5
    app_minute_limit: int | None = 10000
    access_token_seconds: int = 1800
    refresh_token_days: int = 60
    refresh_grace_seconds: int = 1800
    high_volume_threshold: int = 100_000
    custom_connection_tenant: int = 0

    def __post_init__(self) -> None:
        if self.tenants < 1:
            raise ValueError("SandboxConfig.tenants must be at least 1")
        for name in ("contacts", "invoices"):
            if getattr(self, name) < 1:
                raise ValueError(f"SandboxConfig.{name} must be at least 1")
        if not 0 <= self.payments_ratio <= 1:
            raise ValueError("SandboxConfig.payments_ratio must be within 0..1")
        if not 0 <= self.foreign_currency_ratio <= 1:
            raise ValueError("SandboxConfig.foreign_currency_ratio must be within 0..1")
        if self.max_line_items < 1:
            raise ValueError("SandboxConfig.max_line_items must be at least 1")
        if not 0 <= self.custom_connection_tenant < self.tenants:
            raise ValueError("SandboxConfig.custom_connection_tenant must name an existing tenant index")

    def without_limits(self) -> SandboxConfig:
        """Return a copy with every rate limit disabled."""
        from dataclasses import replace

        return replace(self, minute_limit=None, day_limit=None, concurrent_limit=None, app_minute_limit=None)


@dataclass(frozen=True)
class TenantInfo:
    """One organisation in the sandbox."""

    tenant_id: str
    name: str


@dataclass
class RequestRecord:
    """One API call as the sandbox saw it (never the Authorization header).

    :param tenant_id: the ``xero-tenant-id`` header, if any.
    :param method: HTTP method.
    :param path: the URL path, e.g. ``/api.xro/2.0/Invoices``.
    :param params: query parameters.
    :param if_modified_since: the raw ``If-Modified-Since`` header, if any.
    :param status: the HTTP status answered (0 when the connection was dropped).
    :param fault: the injected fault's kind, if one fired.
    :param at: the sandbox clock when the call arrived.
    """

    tenant_id: str | None
    method: str
    path: str
    params: dict[str, str]
    if_modified_since: str | None
    status: int = 0
    fault: str | None = None
    at: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def endpoint(self) -> str:
        """Return the path's endpoint name (``Invoices`` for ``/api.xro/2.0/Invoices/{id}``)."""
        parts = self.path.strip("/").split("/")
        if parts[:2] == ["api.xro", "2.0"] and len(parts) > 2:
            return parts[2]
        return parts[-1] if parts else ""
