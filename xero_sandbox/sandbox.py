"""The :class:`Sandbox` facade: tenants' data, identity, limits, faults, the app and its server."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import uvicorn

from xero_sandbox.auth import AuthServer
from xero_sandbox.clock import Clock
from xero_sandbox.config import RequestRecord, SandboxConfig, TenantInfo
from xero_sandbox.data import Organisation, as_dicts
from xero_sandbox.faults import Faults
from xero_sandbox.limits import RateLimiter

ENTITY_NAMES = ("organisation", "accounts", "contacts", "invoices", "payments")
_ORG_NAMES = (
    "Harbour Trading",
    "Summit Outdoor",
    "Kowhai Design",
    "Riverbend Foods",
    "Granite Build",
    "Tui Media",
)


class Sandbox:
    """A local, seeded Xero: build it, serve it, change it, break it.

    :param config: what to generate and how to behave (defaults: :class:`SandboxConfig`).
    """

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = cfg = config or SandboxConfig()
        start = cfg.clock_start
        if start is None:
            floor = cfg.data_end + timedelta(hours=1)
            start = max(datetime.now(UTC), floor)
        self.clock = Clock(start, frozen=cfg.frozen_clock)
        self.lock = threading.RLock()
        rng = np.random.default_rng([cfg.seed, 424242])
        self.tenants: list[TenantInfo] = []
        self._orgs: dict[str, Organisation] = {}
        for t in range(cfg.tenants):
            tenant_id = str(uuid.UUID(bytes=rng.bytes(16), version=4))
            name = _ORG_NAMES[t % len(_ORG_NAMES)] + (
                f" {t // len(_ORG_NAMES) + 1}" if t >= len(_ORG_NAMES) else ""
            )
            info = TenantInfo(tenant_id, name)
            self.tenants.append(info)
            self._orgs[tenant_id] = Organisation(cfg, t, tenant_id, name)
        self.auth = AuthServer(cfg, self.clock, self.tenants)
        self.limits = RateLimiter(cfg, self.clock)
        self.faults = Faults()
        self.requests: list[RequestRecord] = []
        self.url: str | None = None
        self._app: Any = None

    # ------------------------------------------------------------------ app and server
    @property
    def app(self) -> Any:
        """Return the ASGI app (FastAPI inside a thin wrapper that records calls and can drop connections)."""
        if self._app is None:
            from xero_sandbox.app import build_app

            self._app = build_app(self)
        return self._app

    @contextlib.contextmanager
    def serve(self, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
        """Run the app with uvicorn in a background thread; yield its base URL.

        :param host: interface to bind.
        :param port: port to bind (0: a free one).
        """
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
        bound_port = sock.getsockname()[1]
        server = uvicorn.Server(
            uvicorn.Config(
                self.app,
                log_level="warning",
                access_log=False,
                http="h11",
                lifespan="off",
                timeout_keep_alive=30,
            )
        )
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="xero-sandbox"
        )
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                sock.close()
                raise RuntimeError("the sandbox server did not start")
            time.sleep(0.01)
        self.url = f"http://{host}:{bound_port}"
        try:
            yield self.url
        finally:
            server.should_exit = True
            thread.join(timeout=10)
            sock.close()
            self.url = None

    # ------------------------------------------------------------------ grants
    def issue_refresh_token(
        self, scopes: list[str] | None = None, tenant_ids: list[str] | None = None
    ) -> str:
        """Return a refresh token for a consent to ``scopes`` on ``tenant_ids`` (default: all read scopes, all tenants)."""
        from xero_sandbox.auth import DEFAULT_CUSTOM_SCOPES

        return self.auth.issue_refresh_token(list(scopes or DEFAULT_CUSTOM_SCOPES), tenant_ids)

    # ------------------------------------------------------------------ data
    def org(self, tenant_id: str) -> Organisation:
        """Return a tenant's data or raise ``KeyError`` naming the known tenants."""
        try:
            return self._orgs[tenant_id]
        except KeyError:
            raise KeyError(f"unknown tenant {tenant_id!r}; known: {list(self._orgs)}") from None

    def records(self, tenant_id: str, entity: str) -> Iterator[dict[str, Any]]:
        """Yield every record of ``entity`` in default order, with full detail (as paged calls serve them)."""
        _check_entity(entity)
        org = self.org(tenant_id)
        if entity == "organisation":
            with self.lock:
                yield org.organisation_record()
            return
        with self.lock:
            positions = org.table(entity).in_order()
        for start in range(0, len(positions), 1000):
            with self.lock:
                batch = org.render_page(entity, positions[start : start + 1000])
            yield from as_dicts(batch)

    def count(self, tenant_id: str, entity: str) -> int:
        """Return how many records ``entity`` holds for the tenant (every status)."""
        _check_entity(entity)
        return self.org(tenant_id).count(entity)

    def _now_ms(self) -> int:
        return self.clock.now_ms()

    def _resolve(self, org: Organisation, entity: str, record_id: str | None, eligible: np.ndarray) -> int:
        if record_id is None:
            return org.pick(entity, eligible)
        return org.find(entity, record_id)

    def update_invoice(self, tenant_id: str, invoice_id: str | None = None, **fields: Any) -> str:
        """Change an invoice (Xero field names; ``None`` picks one) and return its id."""
        org = self.org(tenant_id)
        with self.lock:
            pos = self._resolve(org, "invoices", invoice_id, np.ones(org.invoices.n, dtype=bool))
            org.update_invoice(pos, fields, self._now_ms())
            return org.invoices.id_of(pos)

    def void_invoice(self, tenant_id: str, invoice_id: str | None = None) -> str:
        """Void an AUTHORISED invoice without payments (``None`` picks one) and return its id."""
        org = self.org(tenant_id)
        with self.lock:
            pos = self._resolve(org, "invoices", invoice_id, org.voidable())
            org.void_invoice(pos, self._now_ms())
            return org.invoices.id_of(pos)

    def delete_payment(self, tenant_id: str, payment_id: str | None = None) -> str:
        """Delete a payment (``None`` picks an AUTHORISED one); its invoice's amounts and status follow."""
        org = self.org(tenant_id)
        with self.lock:
            pos = self._resolve(org, "payments", payment_id, org.pay_status == 0)
            org.delete_payment(pos, self._now_ms())
            return org.payments.id_of(pos)

    def update_organisation(self, tenant_id: str, **fields: Any) -> None:
        """Change the organisation's settings (Xero field names, e.g. ``Name``, ``BaseCurrency``)."""
        org = self.org(tenant_id)
        with self.lock:
            org.update_organisation(fields)

    def archive_contact(self, tenant_id: str, contact_id: str | None = None) -> str:
        """Archive an ACTIVE contact (``None`` picks one) and return its id."""
        org = self.org(tenant_id)
        with self.lock:
            pos = self._resolve(org, "contacts", contact_id, org.con_status == 0)
            org.archive_contact(pos, self._now_ms())
            return org.contacts.id_of(pos)

    def touch(self, tenant_id: str, entity: str, record_id: str | None = None) -> str:
        """Bump a record's UpdatedDateUTC without other changes (``None`` picks one); return its id."""
        _check_entity(entity)
        if entity == "organisation":
            raise ValueError("the organisation has no UpdatedDateUTC; change it with update_organisation")
        org = self.org(tenant_id)
        with self.lock:
            table = org.table(entity)
            pos = self._resolve(org, entity, record_id, np.ones(table.n, dtype=bool))
            org.touch(entity, pos, self._now_ms())
            return table.id_of(pos)

    # ------------------------------------------------------------------ calls
    def reset_requests(self) -> None:
        """Forget the recorded calls."""
        with self.lock:
            self.requests.clear()

    def record_request(self, record: RequestRecord) -> None:
        """Append one call to :attr:`requests`."""
        with self.lock:
            self.requests.append(record)


def _check_entity(entity: str) -> None:
    if entity not in ENTITY_NAMES:
        raise ValueError(f"unknown entity {entity!r}; known: {', '.join(ENTITY_NAMES)}")
