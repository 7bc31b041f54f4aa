"""The rate-limit governor: pacing from Xero's headers, the daily stop, the in-flight semaphore.

The long sync runs against the sandbox with Xero's real limits on the sandbox's frozen clock: the governor's
waits move that clock, so minutes of API time pass in about a second.
"""

from __future__ import annotations

import json
import multiprocessing
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import tenacity

from tests.faults.conftest import Harness, small_config
from xero.entities import INVOICES
from xero.exceptions import XeroDailyLimitReached
from xero.governor import Governor, RequestCancelled
from xero.hooks import XeroHook
from xero_sandbox import Sandbox, SandboxConfig, airflow_connection


class FakeClock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def headers(minute: int | None = None, day: int | None = None, app: int | None = None) -> dict[str, str]:
    out = {}
    for name, value in (
        ("X-MinLimit-Remaining", minute),
        ("X-DayLimit-Remaining", day),
        ("X-AppMinLimit-Remaining", app),
    ):
        if value is not None:
            out[name] = str(value)
    return out


class TestPacing:
    def test_first_call_is_not_delayed_and_the_rest_of_the_window_is_spread(self) -> None:
        clock = FakeClock()
        governor = Governor(clock=clock, sleep=clock.sleep, reserve=0)
        governor.before_call("t")
        assert clock.sleeps == []
        governor.observe("t", headers(minute=59, day=4999), sent_at=clock.now)
        governor.before_call("t")  # sent at once: the spacing applies to the one after
        governor.observe("t", headers(minute=58), sent_at=clock.now)
        governor.before_call("t")
        assert clock.sleeps == [pytest.approx(60 / 59)]

    def test_calls_in_flight_and_the_reserve_count_as_spent(self) -> None:
        clock = FakeClock()
        governor = Governor(clock=clock, sleep=clock.sleep, reserve=1)
        governor.before_call("t")
        governor.observe("t", headers(minute=3), sent_at=clock.now)
        governor.before_call("t")  # 3 left - 1 reserve: two calls spread over the minute
        governor.before_call("t")  # the first is still in flight: 1 left for the remaining 30 s
        assert clock.sleeps == [pytest.approx(30.0)]
        assert len(governor.pace("t").in_flight) == 2
        governor.observe("t", headers(minute=2), sent_at=clock.now)
        governor.observe("t", headers(), sent_at=clock.now)  # no answer (a reset): no longer in flight
        assert governor.pace("t").in_flight == []

    def test_a_spent_minute_waits_for_the_window_end_plus_a_margin(self) -> None:
        clock = FakeClock()
        governor = Governor(clock=clock, sleep=clock.sleep, margin=0.5)
        governor.before_call("t")
        governor.observe("t", headers(minute=0), sent_at=clock.now)
        clock.now += 10
        governor.before_call("t")
        assert clock.sleeps == [pytest.approx(50.5)]

    def test_an_ended_window_needs_no_wait(self) -> None:
        clock = FakeClock()
        governor = Governor(clock=clock, sleep=clock.sleep)
        governor.before_call("t")
        governor.observe("t", headers(minute=0), sent_at=clock.now)
        clock.now += 61
        governor.before_call("t")
        assert clock.sleeps == []

    def test_tenants_are_paced_apart(self) -> None:
        clock = FakeClock()
        governor = Governor(clock=clock, sleep=clock.sleep)
        governor.before_call("a")
        governor.observe("a", headers(minute=0), sent_at=clock.now)
        governor.before_call("b")
        assert clock.sleeps == []

    def test_spent_app_allowance_waits_a_window(self) -> None:
        clock = FakeClock()
        governor = Governor(clock=clock, sleep=clock.sleep, margin=0)
        governor.before_call("t")
        governor.observe("t", headers(app=0), sent_at=clock.now)
        governor.before_call("t")
        assert clock.sleeps == [60.0]


class TestDailyLimit:
    def test_a_spent_day_stops_before_the_call_and_probes_later(self) -> None:
        clock = FakeClock()
        governor = Governor(clock=clock, sleep=clock.sleep)
        governor.before_call("t")
        governor.observe("t", headers(minute=50, day=0), sent_at=clock.now)
        with pytest.raises(XeroDailyLimitReached, match="resume after") as info:
            governor.before_call("t")
        assert info.value.resume_at is not None and info.value.retry_after == pytest.approx(900)
        clock.now += 901
        governor.before_call("t")  # one probe is allowed: a refused call costs nothing

    def test_a_daily_429_blocks_until_retry_after(self) -> None:
        clock = FakeClock()
        governor = Governor(clock=clock, sleep=clock.sleep)
        governor.rate_limited("t", "day", retry_after=3600)
        clock.now += 3599
        with pytest.raises(XeroDailyLimitReached):
            governor.before_call("t")
        clock.now += 2
        governor.before_call("t")


class TestSharedState:
    def test_processes_share_pacing_through_the_state_dir(self, tmp_path: Path) -> None:
        clock = FakeClock()
        one = Governor(clock=clock, sleep=clock.sleep, state_dir=tmp_path)
        two = Governor(clock=clock, sleep=clock.sleep, state_dir=tmp_path)
        one.before_call("t")
        one.observe("t", headers(minute=0, day=10), sent_at=clock.now)
        two.before_call("t")
        assert clock.sleeps == [pytest.approx(60.5)]
        assert two.pace("t").day_remaining == 10

    def test_environment_names_the_state_dir(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("XERO_GOVERNOR_DIR", str(tmp_path / "gov"))
        assert Governor().state_dir == tmp_path / "gov"
        monkeypatch.delenv("XERO_GOVERNOR_DIR")
        assert Governor().state_dir is None

    @pytest.mark.parametrize("shared", [False, True], ids=["threads", "state-dir"])
    def test_at_most_five_in_flight_per_tenant(self, tmp_path: Path, shared: bool) -> None:
        governor = Governor(state_dir=tmp_path if shared else None)
        lock = threading.Lock()
        state = {"now": 0, "peak": 0}

        def request(tenant: str) -> None:
            with governor.slot(tenant):
                with lock:
                    state["now"] += 1
                    state["peak"] = max(state["peak"], state["now"])
                time.sleep(0.02)
                with lock:
                    state["now"] -= 1

        threads = [threading.Thread(target=request, args=("t",)) for _ in range(12)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert state["peak"] == 5

    def test_slots_are_counted_across_processes(self, tmp_path: Path) -> None:
        context = multiprocessing.get_context("fork")
        hold = [context.Process(target=_hold_slot, args=(str(tmp_path), 1.0)) for _ in range(5)]
        for process in hold:
            process.start()
        deadline = time.monotonic() + 10
        while len(list(tmp_path.glob("*.slot*"))) < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)
        started = time.monotonic()
        with Governor(state_dir=tmp_path).slot("t"):
            waited = time.monotonic() - started
        for process in hold:
            process.join()
        assert waited > 0.3  # the sixth request waited for a slot held by another process

    def test_a_forked_process_does_not_share_its_parents_open_slot(self, tmp_path: Path) -> None:
        """``flock`` belongs to an open file: a child must open its own, or it would share the parent's slot."""
        governor = Governor(state_dir=tmp_path, max_in_flight=1, poll=0.01)
        with governor.slot("t"):
            pass  # the slot's file is open now, and free
        context = multiprocessing.get_context("fork")
        parent_holds = context.Event()
        child = context.Process(target=_try_slot, args=(governor, parent_holds))
        child.start()
        with governor.slot("t"):
            parent_holds.set()
            child.join(10)
        assert child.exitcode == 0  # the child could not take the slot its parent held


def _try_slot(governor: Governor, parent_holds: Any) -> None:
    parent_holds.wait(10)
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    try:
        with governor.slot("t", cancel):
            raise SystemExit(1)  # got the slot the parent holds
    except RequestCancelled:
        raise SystemExit(0) from None


def _hold_slot(directory: str, seconds: float) -> None:
    with Governor(state_dir=directory).slot("t"):
        time.sleep(seconds)


# -- a long sync against Xero's real limits ---------------------------------------------------------
@pytest.fixture
def limited() -> Any:
    sb = Sandbox(
        SandboxConfig(
            seed=3, tenants=1, accounts=10, contacts=20, invoices=1500, max_line_items=1, frozen_clock=True
        )
    )
    with sb.serve():
        yield sb


def _hook(
    sb: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, page_size: int, conn_id: str
) -> XeroHook:
    connection = airflow_connection(
        sb.url,
        client_id=sb.config.client_id,
        client_secret=sb.config.client_secret,
        token_file=tmp_path / (conn_id + ".json"),
        refresh_token=sb.issue_refresh_token(),
        page_size=page_size,
    )
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(connection))
    return XeroHook(
        conn_id, sleep=sb.clock.advance, clock=sb.clock.timestamp, retry_wait=tenacity.wait_none()
    )


def test_long_sync_sustains_the_minute_limit_without_a_429(limited, tmp_path, monkeypatch) -> None:
    sb = limited
    tenant = sb.tenants[0].tenant_id
    hook = _hook(sb, tmp_path, monkeypatch, page_size=5, conn_id="xero_paced")
    started = sb.clock.timestamp()

    pages = list(hook.iter_pages(tenant, INVOICES, None))

    elapsed_minutes = (sb.clock.timestamp() - started) / 60
    calls = [r for r in sb.requests if r.endpoint == "Invoices"]
    assert len(calls) == 300 == len(pages)
    assert Counter(r.status for r in calls) == {200: 300}  # not one 429
    rate = len(calls) / elapsed_minutes
    print(f"governor: {len(calls)} calls in {elapsed_minutes:.2f} sandbox minutes = {rate:.1f} calls/min")
    assert rate >= 57, f"{rate:.1f} calls a minute"
    per_window = Counter(int((r.at.timestamp() - calls[0].at.timestamp()) // 60) for r in calls)
    assert max(per_window.values()) <= 60


def test_daily_limit_stops_the_read_before_a_refused_call(limited, tmp_path, monkeypatch) -> None:
    sb = Sandbox(SandboxConfig(seed=3, tenants=1, contacts=20, invoices=200, day_limit=6, frozen_clock=True))
    with sb.serve():
        tenant = sb.tenants[0].tenant_id
        hook = _hook(sb, tmp_path, monkeypatch, page_size=10, conn_id="xero_daily")
        read = []
        with pytest.raises(XeroDailyLimitReached, match="resume after"):
            for page in hook.iter_pages(tenant, INVOICES, None):
                read.append(page)
        assert len(read) == 6
        assert [r.status for r in sb.requests if r.endpoint == "Invoices"] == [200] * 6  # no call refused


class ScaledTime:
    """Run the sandbox's frozen clock ``scale`` times faster than real time, from a ticker thread.

    Parallel readers then wait and wake in real-time order (a fake clock moved by each sleeper would let one
    long sleep carry every other thread's planned calls along with it).
    """

    def __init__(self, sb: Sandbox, scale: float = 25.0, tick: float = 0.002) -> None:
        self.sb, self.scale, self.tick = sb, scale, tick
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        last = time.monotonic()
        while not self._stop.wait(self.tick):
            now = time.monotonic()
            self.sb.clock.advance((now - last) * self.scale)
            last = now

    def __enter__(self) -> ScaledTime:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def clock(self) -> float:
        return self.sb.clock.timestamp()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds / self.scale)


def test_parallel_tasks_of_one_tenant_share_the_allowance(tmp_path, monkeypatch) -> None:
    from xero.entities import CONTACTS, PAYMENTS

    sb = Sandbox(
        SandboxConfig(seed=3, tenants=1, contacts=150, invoices=300, max_line_items=1, frozen_clock=True)
    )
    monkeypatch.setenv("XERO_GOVERNOR_DIR", str(tmp_path / "governor"))
    # A slow scale: a thread delayed by a busy machine must not carry its call into the next sandbox minute.
    with sb.serve(), ScaledTime(sb, scale=8.0) as time_:
        tenant = sb.tenants[0].tenant_id
        hooks = []
        for entity, conn_id in ((INVOICES, "xero_a"), (CONTACTS, "xero_b"), (PAYMENTS, "xero_c")):
            hook = _hook(sb, tmp_path, monkeypatch, page_size=5, conn_id=conn_id)
            hook._clock, hook._sleep = time_.clock, time_.sleep
            hooks.append((hook, entity))
        started = sb.clock.timestamp()
        errors: list[BaseException] = []

        def read(hook: XeroHook, entity: Any) -> None:
            try:
                list(hook.iter_pages(tenant, entity, None))
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=read, args=pair) for pair in hooks]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        calls = [r for r in sb.requests if r.endpoint in ("Invoices", "Contacts", "Payments")]
        minutes = (sb.clock.timestamp() - started) / 60
        print(f"governor, 3 parallel readers: {len(calls)} calls in {minutes:.2f} sandbox minutes")
        assert Counter(r.status for r in calls) == {200: len(calls)}  # not one 429 (minute or concurrent)
        per_window = Counter(int((r.at.timestamp() - calls[0].at.timestamp()) // 60) for r in calls)
        assert max(per_window.values()) <= 60  # the three readers share one tenant's allowance
        # The sustained rate depends on how promptly real threads wake on a scaled clock, so it is a
        # benchmark figure (bench/sync_bench.py), not an assertion here.


@pytest.mark.parametrize("from_env", [False, True], ids=["data-dir", "XERO_GOVERNOR_DIR"])
def test_extract_tasks_share_the_governor_state_of_the_host(
    from_env: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = tmp_path / "shared-governor"
    if from_env:
        monkeypatch.setenv("XERO_GOVERNOR_DIR", str(shared))
    else:
        monkeypatch.delenv("XERO_GOVERNOR_DIR", raising=False)
    sb = Sandbox(small_config(minute_limit=60, day_limit=5000))
    with sb.serve():
        harness = Harness(sb, tmp_path / "sync", monkeypatch, entities=["contacts"])
        harness.run()
    expected = shared if from_env else harness.data_dir / "_governor"
    state = json.loads((expected / f"{sb.tenants[0].tenant_id}.json").read_text())
    calls = sum(1 for r in sb.requests if r.endpoint == "Contacts")
    assert state["day_remaining"] == 5000 - calls  # the last answer, kept for the host's next task
