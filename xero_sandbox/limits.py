"""Xero's rate limits per tenant and per app, on the sandbox clock.

Fixed windows that start with a tenant's first call: 60 calls a minute and 5,000 a day per tenant,
5 in flight per tenant, 10,000 a minute for the app. Each accepted call gets the remaining counts as
``X-MinLimit-Remaining``, ``X-DayLimit-Remaining`` and ``X-AppMinLimit-Remaining``; a call over a
limit is refused (not counted) with 429, ``X-Rate-Limit-Problem`` and ``Retry-After``.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field

from xero_sandbox.clock import Clock
from xero_sandbox.config import SandboxConfig


@dataclass
class _Window:
    length: float
    start: float | None = None
    count: int = 0

    def roll(self, now: float) -> None:
        if self.start is None or now >= self.start + self.length:
            self.start = now
            self.count = 0

    def retry_after(self, now: float) -> int:
        assert self.start is not None
        return max(1, math.ceil(self.start + self.length - now))


@dataclass
class _Tenant:
    minute: _Window = field(default_factory=lambda: _Window(60.0))
    day: _Window = field(default_factory=lambda: _Window(86_400.0))
    in_flight: int = 0


@dataclass
class Decision:
    """Outcome of asking for a call slot."""

    allowed: bool
    headers: dict[str, str]
    problem: str | None = None
    retry_after: int | None = None


class RateLimiter:
    """Counts calls per tenant and per app against the configured limits."""

    def __init__(self, cfg: SandboxConfig, clock: Clock) -> None:
        self.cfg = cfg
        self.clock = clock
        self._lock = threading.Lock()
        self._tenants: dict[str, _Tenant] = {}
        self._app = _Window(60.0)

    def _headers(self, state: _Tenant) -> dict[str, str]:
        out: dict[str, str] = {}
        if self.cfg.minute_limit is not None:
            out["X-MinLimit-Remaining"] = str(max(self.cfg.minute_limit - state.minute.count, 0))
        if self.cfg.day_limit is not None:
            out["X-DayLimit-Remaining"] = str(max(self.cfg.day_limit - state.day.count, 0))
        if self.cfg.app_minute_limit is not None:
            out["X-AppMinLimit-Remaining"] = str(max(self.cfg.app_minute_limit - self._app.count, 0))
        return out

    def acquire(self, tenant_id: str) -> Decision:
        """Take a slot for one call of ``tenant_id`` or say which limit refuses it."""
        now = self.clock.timestamp()
        cfg = self.cfg
        with self._lock:
            state = self._tenants.setdefault(tenant_id, _Tenant())
            state.minute.roll(now)
            state.day.roll(now)
            self._app.roll(now)
            refusal: tuple[str, int | None] | None = None
            if cfg.day_limit is not None and state.day.count >= cfg.day_limit:
                refusal = ("day", state.day.retry_after(now))
            elif cfg.minute_limit is not None and state.minute.count >= cfg.minute_limit:
                refusal = ("minute", state.minute.retry_after(now))
            elif cfg.app_minute_limit is not None and self._app.count >= cfg.app_minute_limit:
                refusal = ("appminute", self._app.retry_after(now))
            elif cfg.concurrent_limit is not None and state.in_flight >= cfg.concurrent_limit:
                refusal = ("concurrent", 1)
            if refusal is not None:
                return Decision(False, self._headers(state), refusal[0], refusal[1])
            state.minute.count += 1
            state.day.count += 1
            self._app.count += 1
            state.in_flight += 1
            return Decision(True, self._headers(state))

    def release(self, tenant_id: str) -> None:
        """Return the in-flight slot taken by :meth:`acquire`."""
        with self._lock:
            state = self._tenants.get(tenant_id)
            if state is not None and state.in_flight > 0:
                state.in_flight -= 1

    def retry_after(self, tenant_id: str, problem: str) -> int:
        """Return the seconds until the tenant's ``minute`` or ``day`` window resets (for injected 429s)."""
        now = self.clock.timestamp()
        with self._lock:
            state = self._tenants.setdefault(tenant_id, _Tenant())
            window = state.day if problem == "day" else state.minute
            window.roll(now)
            return window.retry_after(now)

    def headers(self, tenant_id: str) -> dict[str, str]:
        """Return the remaining-count headers of a tenant without taking a slot."""
        with self._lock:
            return self._headers(self._tenants.setdefault(tenant_id, _Tenant()))

    def reset(self) -> None:
        """Forget every count (a new day for everyone)."""
        with self._lock:
            self._tenants.clear()
            self._app = _Window(60.0)
