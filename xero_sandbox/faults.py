"""Fault injection: scripted (the nth request to an endpoint), seeded random faults, and steady churn.

A rule names an endpoint (``Invoices``, ``Contacts``, ``Accounts``, ``Payments``, ``Organisation``,
``token``, ``connections`` or ``*`` for any accounting endpoint), a kind and the request number it
fires on. Each rule counts the matching requests made after it was scripted. The app asks
:meth:`Faults.take` once per request and applies what it gets.

:class:`Churn` models an organisation in use while it is read: every so many records served, or every so
many seconds of sandbox time, one record already served is updated (it moves to the end of the default
order), before the next page of that entity is served.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from xero_sandbox.clock import Clock
    from xero_sandbox.data import Organisation

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


class Churn:
    """Steady change of one entity of one tenant while it is read.

    Before each paged list call of the entity, the edits that have come due are made: one per
    ``every_records`` records served since the churn started, and one per ``every_seconds`` of sandbox time
    since its first list call. Each edit bumps the ``UpdatedDateUTC`` of a record already served, drawn at
    random (seeded), to the sandbox's now.

    :param entity: ``invoices``, ``contacts`` or ``payments``.
    :param tenant_id: the tenant whose reads churn.
    :param every_records: records served per edit (``None``: not by records).
    :param every_seconds: sandbox seconds per edit (``None``: not by time).
    :param seed: seeds the choice of the record edited.
    """

    def __init__(
        self,
        entity: str,
        tenant_id: str,
        *,
        every_records: int | None = None,
        every_seconds: float | None = None,
        seed: int = 0,
    ) -> None:
        if every_records is None and every_seconds is None:
            raise ValueError("churn needs every_records or every_seconds")
        if (every_records is not None and every_records < 1) or (
            every_seconds is not None and every_seconds <= 0
        ):
            raise ValueError("every_records must be at least 1 and every_seconds positive")
        self.entity = entity
        self.tenant_id = tenant_id
        self.every_records = every_records
        self.every_seconds = every_seconds
        self._rng = np.random.default_rng(seed)
        self._served: list[int] = []
        self._seen: set[int] = set()
        self._started_at: float | None = None
        self._by_records = 0
        self._by_time = 0
        #: records served since the churn started (repeats included)
        self.records_served = 0
        #: ids of the records edited, in order
        self.edited: list[str] = []

    def before_page(self, org: Organisation, clock: Clock) -> None:
        """Make the edits that are due (the caller holds the sandbox's lock)."""
        now = clock.timestamp()
        if self._started_at is None:
            self._started_at = now
        due = 0
        if self.every_records is not None:
            target = self.records_served // self.every_records
            due += target - self._by_records
            self._by_records = target
        if self.every_seconds is not None:
            target = int((now - self._started_at) // self.every_seconds)
            due += target - self._by_time
            self._by_time = target
        for _ in range(due if self._served else 0):
            pos = self._served[int(self._rng.integers(0, len(self._served)))]
            org.touch(self.entity, pos, clock.now_ms())
            self.edited.append(org.table(self.entity).id_of(pos))

    def after_page(self, positions: np.ndarray) -> None:
        """Remember the record positions just served."""
        self.records_served += len(positions)
        for pos in positions.tolist():
            if pos not in self._seen:
                self._seen.add(pos)
                self._served.append(pos)


class Faults:
    """Scripted and random faults of one sandbox (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.rules: list[Rule] = []
        self._random: _RandomPlan | None = None
        self._churn: dict[tuple[str, str], Churn] = {}
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

    def churn(
        self,
        entity: str,
        tenant_id: str,
        *,
        every_records: int | None = None,
        every_seconds: float | None = None,
        seed: int = 0,
    ) -> Churn:
        """Make reads of ``entity`` for ``tenant_id`` churn (see :class:`Churn`); return it to inspect."""
        churn = Churn(entity, tenant_id, every_records=every_records, every_seconds=every_seconds, seed=seed)
        with self._lock:
            self._churn[(entity.lower(), tenant_id)] = churn
        return churn

    def churn_of(self, entity: str, tenant_id: str | None) -> Churn | None:
        """Return the churn of reads of ``entity`` for ``tenant_id``, if any."""
        if tenant_id is None:
            return None
        with self._lock:
            return self._churn.get((entity.lower(), tenant_id))

    def clear(self) -> None:
        """Remove every scripted rule, the random plan and any churn."""
        with self._lock:
            self.rules.clear()
            self._random = None
            self._churn.clear()

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
