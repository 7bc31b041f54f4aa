"""A caller that stops reading gets control back at once: the prefetch of the next page is abandoned.

:meth:`XeroClient.iter_pages` requests page ``p + 1`` in a helper thread while the caller works on page
``p``. When the caller stops (closes the generator, or an exception leaves its loop), that request must not
hold it: its retry backoff and pacing waits end, no attempt follows, a request already on the wire finishes
in the background (its answer dropped), and the governor's bookkeeping stays right.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import tenacity

from xero.auth import TokenManager
from xero.client import XeroClient, build_retrying
from xero.entities import INVOICES
from xero.governor import Governor, RequestCancelled, pause
from xero.tokens import FileLock, FileTokenStore
from xero_sandbox import Sandbox, SandboxConfig

START = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
PAGE_SIZE = 20
#: Real seconds within which a stopped read must hand control back (the waits cancelled are 30-60 s).
PROMPT = 5.0
THREAD_PREFIX = "xero-next-page"


def _worker_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith(THREAD_PREFIX)}


def _wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the condition")
        time.sleep(0.01)


def _join(threads: set[threading.Thread], timeout: float) -> float:
    """Join ``threads`` within ``timeout`` real seconds in all; return the seconds it took."""
    started = time.monotonic()
    for thread in threads:
        thread.join(max(0.0, timeout - (time.monotonic() - started)))
    assert not any(thread.is_alive() for thread in threads), "the prefetch thread is still running"
    return time.monotonic() - started


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    sandbox = Sandbox(
        SandboxConfig(
            seed=3, tenants=1, accounts=5, contacts=10, invoices=100, clock_start=START, frozen_clock=True
        ).without_limits()
    )
    with sandbox.serve():
        yield sandbox


@pytest.fixture
def make_client(sb: Sandbox, tmp_path: Path) -> Callable[..., XeroClient]:
    """Build a client on the served sandbox (real HTTP, a real token manager); options override."""

    def build(**options: Any) -> XeroClient:
        assert sb.url
        store = tmp_path / "tokens.json"
        tokens = TokenManager(
            client_id=sb.config.client_id,
            client_secret=sb.config.client_secret,
            token_url=f"{sb.url}/connect/token",
            store=FileTokenStore(store),
            lock=FileLock(f"{store}.lock"),
            bootstrap_refresh_token=sb.issue_refresh_token(),
        )
        tokens.access_token()  # fetched up front: the reads below only call the accounting API
        kwargs: dict[str, Any] = {
            "api_url": sb.url,
            "tokens": tokens,
            "page_size": PAGE_SIZE,
            "timeout": 10.0,
        }
        kwargs.update(options)
        return XeroClient(**kwargs)

    return build


def invoice_requests(sb: Sandbox) -> list[Any]:
    return [r for r in sb.requests if r.endpoint == "Invoices"]


@pytest.fixture(autouse=True)
def _no_stray_threads() -> Iterator[None]:
    before = _worker_threads()
    yield
    _join(_worker_threads() - before, 15.0)


def test_close_does_not_wait_for_a_blocked_retry_backoff(sb, make_client, caplog) -> None:
    """Deterministic: the injected sleep cannot return before the test lets it, yet close() returns."""
    entered = threading.Event()
    release = threading.Event()
    slept: list[float] = []

    def blocking_sleep(seconds: float) -> None:
        slept.append(seconds)
        entered.set()
        assert release.wait(30), "never released"

    client = make_client(
        retrying=build_retrying(wait=tenacity.wait_fixed(30), sleep=blocking_sleep), sleep=blocking_sleep
    )
    tenant = sb.tenants[0].tenant_id
    sb.faults.script("Invoices", nth=2, kind="500", times=50)  # page 2 keeps failing
    sb.reset_requests()
    before = _worker_threads()
    caplog.set_level(logging.INFO)

    pages = client.iter_pages(tenant, INVOICES, None)
    first = next(pages)
    assert first.count == PAGE_SIZE
    assert entered.wait(10), "page 2 never reached its retry backoff"
    assert slept == [30.0]  # the retry wait of the first 500, through the injected sleep
    workers = _worker_threads() - before

    started = time.monotonic()
    pages.close()
    closed_in = time.monotonic() - started

    assert closed_in < 1.0, f"close() waited {closed_in:.2f} s"
    assert not release.is_set() and all(t.is_alive() for t in workers)  # the backoff is still "sleeping"
    release.set()  # the injected sleep returns: the cancelled request must not try again
    _join(workers, PROMPT)
    assert slept == [30.0]  # the injected sleep is the only way the client waited, and only once
    calls = invoice_requests(sb)
    assert [c.status for c in calls] == [200, 500]  # no attempt after the cancellation
    assert client.calls[tenant] == 2
    assert client.governor.pace(tenant).in_flight == []
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_close_wakes_a_real_retry_backoff(sb, make_client, caplog) -> None:
    """With the real sleep, the 30 s backoff of the prefetch ends as soon as the caller stops."""
    client = make_client(retrying=build_retrying(wait=tenacity.wait_fixed(30)))
    tenant = sb.tenants[0].tenant_id
    sb.faults.script("Invoices", nth=2, kind="500", times=50)
    sb.reset_requests()
    before = _worker_threads()
    caplog.set_level(logging.INFO)

    pages = client.iter_pages(tenant, INVOICES, None)
    next(pages)
    _wait_for(lambda: any("retrying in 30.0 s" in r.getMessage() for r in caplog.records))
    workers = _worker_threads() - before
    assert workers

    started = time.monotonic()
    pages.close()
    assert time.monotonic() - started < PROMPT
    assert _join(workers, PROMPT) < PROMPT  # the helper thread was woken, not left sleeping 30 s
    assert [c.status for c in invoice_requests(sb)] == [200, 500]
    assert client.calls[tenant] == 2
    assert client.governor.pace(tenant).in_flight == []
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_an_exception_in_the_callers_loop_does_not_wait_for_the_prefetch(sb, make_client) -> None:
    """A failed write (any exception in the caller's loop) closes the read without waiting for page 2."""
    client = make_client(retrying=build_retrying(wait=tenacity.wait_fixed(30)))
    tenant = sb.tenants[0].tenant_id
    sb.faults.script("Invoices", nth=2, kind="500", times=50)
    sb.reset_requests()
    before = _worker_threads()

    def extract() -> None:
        for _page in client.iter_pages(tenant, INVOICES, None):
            _wait_for(lambda: len(invoice_requests(sb)) == 2)  # page 2 failed and is backing off
            raise OSError("disk full")

    started = time.monotonic()
    with pytest.raises(OSError, match="disk full"):
        extract()
    assert time.monotonic() - started < PROMPT
    _join(_worker_threads() - before, PROMPT)
    assert [c.status for c in invoice_requests(sb)] == [200, 500]


def test_close_wakes_a_pacing_wait_and_gives_the_reserved_call_back(make_client, tmp_path) -> None:
    """Two calls a minute: page 2 must wait ~60 s for the window; stopping ends the wait, nothing is sent."""
    limited = Sandbox(
        SandboxConfig(
            seed=3,
            tenants=1,
            accounts=5,
            contacts=10,
            invoices=100,
            clock_start=START,
            minute_limit=2,
            day_limit=None,
            concurrent_limit=None,
            app_minute_limit=None,
        )
    )
    with limited.serve() as url:
        store = tmp_path / "limited-tokens.json"
        tokens = TokenManager(
            client_id=limited.config.client_id,
            client_secret=limited.config.client_secret,
            token_url=f"{url}/connect/token",
            store=FileTokenStore(store),
            lock=FileLock(f"{store}.lock"),
            bootstrap_refresh_token=limited.issue_refresh_token(),
        )
        client = XeroClient(api_url=url, tokens=tokens, page_size=PAGE_SIZE, timeout=10.0)
        tenant = limited.tenants[0].tenant_id
        before = _worker_threads()

        pages = client.iter_pages(tenant, INVOICES, None)
        next(pages)
        _wait_for(lambda: client.governor.waited.get(tenant, 0.0) > 30)  # page 2 is pacing ~60 s
        assert client.governor.pace(tenant).in_flight  # its call is reserved
        workers = _worker_threads() - before

        started = time.monotonic()
        pages.close()
        assert time.monotonic() - started < PROMPT
        assert _join(workers, PROMPT) < PROMPT
        assert len([r for r in limited.requests if r.endpoint == "Invoices"]) == 1
        assert client.calls[tenant] == 1
        pace = client.governor.pace(tenant)
        assert pace.in_flight == []  # the reservation of the abandoned call was given back


def test_a_request_on_the_wire_finishes_in_the_background(sb, make_client, caplog) -> None:
    """A request already sent is not waited for; it finishes within its timeout and its answer is dropped."""
    client = make_client(retrying=build_retrying(wait=tenacity.wait_fixed(30)))
    tenant = sb.tenants[0].tenant_id
    sb.faults.script("Invoices", nth=2, kind="delay", seconds=2.0)
    sb.reset_requests()
    before = _worker_threads()
    caplog.set_level(logging.INFO)

    pages = client.iter_pages(tenant, INVOICES, None)
    next(pages)
    _wait_for(lambda: len(invoice_requests(sb)) == 2 or client.calls[tenant] == 2)
    workers = _worker_threads() - before

    started = time.monotonic()
    pages.close()
    assert time.monotonic() - started < 1.0  # not the 2 s the answer takes
    _join(workers, 10.0)
    assert len(invoice_requests(sb)) == 2  # the one on the wire, nothing after it
    assert client.calls[tenant] == 2
    assert client.governor.pace(tenant).in_flight == []  # its answer was observed
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_full_read_is_unchanged_and_leaves_no_thread(sb, make_client) -> None:
    client = make_client()
    tenant = sb.tenants[0].tenant_id
    sb.reset_requests()
    before = _worker_threads()

    pages = list(client.iter_pages(tenant, INVOICES, None))

    assert sum(p.count for p in pages) == sb.count(tenant, "invoices")
    assert len(pages) > 2
    assert client.calls[tenant] == len(invoice_requests(sb)) == len(pages)  # one call per page
    _join(_worker_threads() - before, PROMPT)


# -- the building blocks -------------------------------------------------------------------------------------
def test_pause_calls_an_injected_sleep_as_given() -> None:
    slept: list[float] = []
    cancel = threading.Event()
    pause(slept.append, 3.0, cancel)
    pause(slept.append, 4.0)
    assert slept == [3.0, 4.0]
    cancel.set()
    with pytest.raises(RequestCancelled):
        pause(slept.append, 5.0, cancel)
    assert slept == [3.0, 4.0]  # not even started once cancelled


def test_pause_raises_after_an_injected_sleep_when_cancelled_meanwhile() -> None:
    cancel = threading.Event()
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        cancel.set()

    with pytest.raises(RequestCancelled):
        pause(sleep, 7.0, cancel)
    assert slept == [7.0]


def test_pause_ends_a_real_sleep_when_cancelled() -> None:
    cancel = threading.Event()
    threading.Timer(0.05, cancel.set).start()
    started = time.monotonic()
    with pytest.raises(RequestCancelled):
        pause(time.sleep, 60.0, cancel)
    assert time.monotonic() - started < PROMPT


def test_governor_gives_a_cancelled_reservation_back() -> None:
    now = [1_000.0]
    slept: list[float] = []
    cancel = threading.Event()

    def sleep(seconds: float) -> None:  # the caller goes while the call waits for its slot
        slept.append(seconds)
        cancel.set()

    governor = Governor(clock=lambda: now[0], sleep=sleep, state_dir=None)
    governor.before_call("t")
    governor.observe("t", {"X-MinLimit-Remaining": "10"}, 1_000.0, 1_000.0)
    first = governor.before_call("t")  # 9 left: sent at once, the next one spaced
    assert first == 1_000.0
    spaced = governor.pace("t")
    assert spaced.next_slot > now[0] and spaced.in_flight == [first]

    with pytest.raises(RequestCancelled):
        governor.before_call("t", cancel)

    assert slept == [spaced.next_slot - now[0]]
    after = governor.pace("t")
    assert after.in_flight == [first]  # only the call really sent is still in flight
    assert after.next_slot == spaced.next_slot  # the next call may go when the cancelled one would have
    with pytest.raises(RequestCancelled):
        governor.before_call("t", cancel)  # nothing is reserved once cancelled
    assert governor.pace("t").in_flight == [first]


def test_governor_slot_is_not_taken_once_cancelled(tmp_path) -> None:
    cancel = threading.Event()
    cancel.set()
    for governor in (Governor(state_dir=None), Governor(state_dir=tmp_path / "gov")):
        with pytest.raises(RequestCancelled), governor.slot("t", cancel):
            raise AssertionError("the request must not go")
        with governor.slot("t"):  # the slot was given back
            pass


def test_governor_slot_wait_ends_when_cancelled(tmp_path) -> None:
    for governor in (
        Governor(state_dir=None, max_in_flight=1),
        Governor(state_dir=tmp_path / "g", max_in_flight=1),
    ):
        cancel = threading.Event()
        with governor.slot("t"):  # the only slot is busy
            threading.Timer(0.05, cancel.set).start()
            started = time.monotonic()
            with pytest.raises(RequestCancelled), governor.slot("t", cancel):
                raise AssertionError("the request must not go")
            assert time.monotonic() - started < PROMPT
