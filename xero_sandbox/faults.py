"""Fault injection: scripted (the nth request to an endpoint) and seeded random faults.

A rule names an endpoint (``Invoices``, ``Contacts``, ``Accounts``, ``Payments``, ``Organisation``,
``token``, ``connections`` or ``*`` for any accounting endpoint), a kind and the request number it
fires on. Each rule counts the matching requests made after it was scripted. The app asks
:meth:`Faults.take` once per request and applies what it gets.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Every fault kind and what the app does with it.
KINDS: dict[str, str] = {
    "429_minute": "429 with X-Rate-Limit-Problem: minute and Retry-After (the minute window's reset)",
    "429_day": "429 with X-Rate-Limit-Problem: day and Retry-After (the day window's reset)",
    "500": "500 with Xero's problem JSON",
    "503_org_offline": "503 plain text 'The Organisation is offline'",
    "delay": "wait params['seconds'] (default 5) before answering normally: a hang past a client timeout",
    "reset": "close the connection without any response",
    "malformed_json": "200 with a body that is not JSON",
    "truncated_json": "200 with the real body cut in half",
    "token_expired": "the bearer token expires now: 401 TokenExpired (and on every later use)",
    "refresh_invalid_grant": "the token endpoint refuses a valid refresh with 400 invalid_grant",
    "update_between_pages": "before serving page p>1, a record served on an earlier page is updated (moves to the end)",
    "duplicate_record": "a paged response repeats the previous page's last record first (pageSize+1 records)",
}
ACCOUNTING_ENDPOINTS = ("Accounts", "Contacts", "Invoices", "Payments", "Organisation")
#: Kinds a random fault plan draws from by default: the transient ones a client must retry.
DEFAULT_RANDOM_KINDS = ("429_minute", "500", "503_org_offline", "reset", "truncated_json")
_IDENTITY_KINDS = {"refresh_invalid_grant"}


@dataclass
class Fault:
    """A fault to apply to the current request."""

    kind: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class Rule:
    """One scripted fault: fires on requests ``nth .. nth+times-1`` matching it."""

    endpoint: str
    kind: str
    nth: int = 1
    times: int = 1
    tenant_id: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    seen: int = 0
    fired: int = 0

    def matches(self, endpoint: str, tenant_id: str | None) -> bool:
        """Return whether a request to ``endpoint`` counts for this rule."""
        if self.tenant_id is not None and tenant_id != self.tenant_id:
            return False
        if self.endpoint == "*":
            return endpoint.lower() in {e.lower() for e in ACCOUNTING_ENDPOINTS}
        return self.endpoint.lower() == endpoint.lower()


@dataclass
class _RandomPlan:
    rng: np.random.Generator
    rate: float
    kinds: tuple[str, ...]
    endpoints: tuple[str, ...]
    params: dict[str, Any]


class Faults:
    """Scripted and random faults of one sandbox (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.rules: list[Rule] = []
        self._random: _RandomPlan | None = None
        #: (endpoint, kind) of every fault that fired, in order.
        self.fired: list[tuple[str, str]] = []

    def script(
        self,
        endpoint: str,
        nth: int = 1,
        kind: str = "500",
        *,
        times: int = 1,
        tenant_id: str | None = None,
        **params: Any,
    ) -> Rule:
        """Make the ``nth`` request to ``endpoint`` (counted from now) fail with ``kind``.

        :param endpoint: ``Invoices`` … ``Organisation``, ``token``, ``connections`` or ``*``.
        :param nth: 1-based request number that fires first.
        :param kind: one of :data:`KINDS`.
        :param times: how many consecutive requests fire.
        :param tenant_id: count only this tenant's requests.
        :param params: kind options (``seconds`` for ``delay``).
        """
        _check_kind(kind)
        if nth < 1 or times < 1:
            raise ValueError("nth and times must be at least 1")
        rule = Rule(endpoint, kind, nth, times, tenant_id, dict(params))
        with self._lock:
            self.rules.append(rule)
        return rule

    def random(
        self,
        seed: int,
        rate: float = 0.2,
        kinds: list[str] | tuple[str, ...] | None = None,
        endpoints: list[str] | tuple[str, ...] | None = None,
        **params: Any,
    ) -> None:
        """Fail a seeded random share ``rate`` of accounting requests with one of ``kinds``."""
        chosen = tuple(kinds or DEFAULT_RANDOM_KINDS)
        for kind in chosen:
            _check_kind(kind)
        if not 0 <= rate <= 1:
            raise ValueError("rate must be within 0..1")
        with self._lock:
            self._random = _RandomPlan(
                np.random.default_rng(seed),
                rate,
                chosen,
                tuple(endpoints or ACCOUNTING_ENDPOINTS),
                dict(params),
            )

    def clear(self) -> None:
        """Remove every scripted rule and the random plan."""
        with self._lock:
            self.rules.clear()
            self._random = None

    def pending(self) -> list[Rule]:
        """Return the rules that have not fired all their times yet."""
        with self._lock:
            return [r for r in self.rules if r.fired < r.times]

    def take(self, endpoint: str, tenant_id: str | None = None) -> Fault | None:
        """Count one request to ``endpoint`` and return the fault to apply to it, if any."""
        with self._lock:
            chosen: Fault | None = None
            for rule in self.rules:
                if not rule.matches(endpoint, tenant_id):
                    continue
                rule.seen += 1
                if chosen is None and rule.nth <= rule.seen < rule.nth + rule.times:
                    rule.fired += 1
                    chosen = Fault(rule.kind, dict(rule.params))
            plan = self._random
            if (
                chosen is None
                and plan is not None
                and endpoint.lower() in {e.lower() for e in plan.endpoints}
            ) and plan.rng.random() < plan.rate:
                kinds = [k for k in plan.kinds if k not in _IDENTITY_KINDS]
                if kinds:
                    chosen = Fault(kinds[int(plan.rng.integers(0, len(kinds)))], dict(plan.params))
            if chosen is not None:
                self.fired.append((endpoint, chosen.kind))
            return chosen


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown fault kind {kind!r}; known: {', '.join(KINDS)}")
