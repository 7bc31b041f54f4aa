"""Pace calls to Xero per tenant: the rate-limit governor.

This module owns *when* a request may be sent; :mod:`xero.client` owns sending it. Xero allows each
tenant 60 calls a minute, 5,000 a day and 5 in flight, and each app 10,000 a minute; every accepted
response says what is left (``X-MinLimit-Remaining``, ``X-DayLimit-Remaining``,
``X-AppMinLimit-Remaining``). The headers are tenant-wide, so they already count what other tasks spent.

The governor turns them into three rules:

* **Spread the minute.** The remaining calls of the current minute window are spread evenly over the
  rest of it: the next call may start at ``t + (window_end - t) / remaining``. The window is assumed to
  start with the first call seen in it (Xero's fixed windows do; a window that really started earlier
  ends earlier, which only makes the estimate more careful). When nothing is left, the next call waits
  for the window's end plus a small margin. In steady state this keeps a tenant at just under the limit
  (≈ 58.5 calls a minute: one call of each window is held back, see ``reserve``) without a 429.
* **Stop for the day.** When ``X-DayLimit-Remaining`` reaches 0 the next call raises
  :class:`~xero.exceptions.XeroDailyLimitReached` without being sent.
* **At most 5 in flight per tenant.** A counting semaphore guards every request.

Coordination across processes
-----------------------------
By default the state lives in the process (threads share it). With ``state_dir`` (or the environment
variable ``XERO_GOVERNOR_DIR``) it lives in files under that directory, shared by every process of the
host: ``<tenant>.json`` holds the pacing state and is only read and rewritten under an exclusive
``flock`` of itself; the in-flight semaphore is ``max_in_flight`` slot files ``<tenant>.slot<N>``,
each taken with a non-blocking ``flock``. A process opens each file once. The kernel drops a process's locks when
it dies, so a killed task never leaks a slot. Workers on several hosts need a directory on a filesystem
with working ``flock`` (a local disk per host is fine; the headers still keep hosts honest, just with
less smoothing).

Clocks and sleeps are injectable, so tests run a sandbox's clock instead of real minutes.

Cancellation
------------
A request whose caller has gone (the prefetch of a page nobody will read, see
:meth:`xero.client.XeroClient.iter_pages`) carries a :class:`threading.Event`. Its waits go through
:func:`pause`, which stops waiting when the event is set and raises :class:`RequestCancelled`; a call
reserved for it and never sent is given back with :meth:`Governor.release`, and a wait for an in-flight
slot ends too.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from xero.exceptions import XeroDailyLimitReached

log = logging.getLogger(__name__)

#: Length of Xero's minute windows, in seconds.
MINUTE_WINDOW = 60.0
#: Requests in flight per tenant that Xero allows.
MAX_IN_FLIGHT = 5
#: After ``X-DayLimit-Remaining: 0`` without a reset time, seconds before one call may probe again
#: (a refused call is not counted by Xero, so a probe costs nothing).
DAY_PROBE_AFTER = 900.0
#: Seconds after which a reserved call without an observed answer no longer counts as in flight.
IN_FLIGHT_EXPIRY = 300.0
#: Environment variable naming the directory shared by the processes of one host.
STATE_DIR_ENV = "XERO_GOVERNOR_DIR"
#: The real-time sleep, which :func:`pause` replaces by a wait that cancellation ends.
_REAL_SLEEP = time.sleep


class RequestCancelled(Exception):
    """The read a request belonged to was abandoned by its caller: the request is not sent (again).

    Raised in the helper thread of an abandoned prefetch; nobody reads it and it is not retried.
    """

    def __init__(self, message: str = "request cancelled: its read was abandoned") -> None:
        super().__init__(message)


def check_cancelled(cancel: threading.Event | None) -> None:
    """Raise :class:`RequestCancelled` when ``cancel`` is set."""
    if cancel is not None and cancel.is_set():
        raise RequestCancelled


def pause(sleep: Callable[[float], None], seconds: float, cancel: threading.Event | None = None) -> None:
    """Wait ``seconds`` with ``sleep``; with ``cancel``, stop waiting when it is set.

    The default ``time.sleep`` (real time) is replaced by a wait on ``cancel``, which ends as soon as the
    event is set. Any other ``sleep`` (one that advances a fake clock, in tests and benchmarks) is called
    as given and is the only thing that waits; the event is checked before and after it.

    :param sleep: how to wait.
    :param seconds: how long.
    :param cancel: set when the request is abandoned (``None``: just ``sleep(seconds)``).
    :raises RequestCancelled: when ``cancel`` is set before or after the wait.
    """
    if cancel is None:
        sleep(seconds)
        return
    check_cancelled(cancel)
    if sleep is _REAL_SLEEP:
        cancel.wait(seconds)
    else:
        sleep(seconds)
    check_cancelled(cancel)


@dataclass
class TenantPace:
    """What the governor knows of one tenant's allowance (JSON-able, shared between processes).

    :param minute_remaining: calls left in the current minute window (our own reservations deducted).
    :param day_remaining: ``X-DayLimit-Remaining`` of the latest response.
    :param window_start: clock time the current minute window is assumed to have started.
    :param next_slot: earliest clock time the next call may start.
    :param app_blocked_until: clock time before which the app-wide minute allowance is spent.
    :param day_blocked_until: clock time before which the daily allowance is taken as spent.
    :param in_flight: start times of calls reserved whose answer has not been observed yet (entries older
        than :data:`IN_FLIGHT_EXPIRY` are dropped, so a killed process cannot hold allowance for long).
    :param rollover_at: when the current window was taken to begin; answers to calls sent before it
        describe the previous window and are ignored.
    """

    minute_remaining: int | None = None
    day_remaining: int | None = None
    window_start: float | None = None
    next_slot: float = 0.0
    app_blocked_until: float = 0.0
    day_blocked_until: float = 0.0
    in_flight: list[float] = field(default_factory=list)
    rollover_at: float = 0.0


def int_header(headers: Mapping[str, str], name: str) -> int | None:
    """Return the integer value of header ``name``, or ``None`` when it is missing or not a number."""
    value = headers.get(name)
    if value is None:
        return None
    try:
        return int(str(value).strip())
    except ValueError:
        return None


def _safe(tenant_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", tenant_id) or "_"


# -- state backends: one process, or files shared by the processes of a host ----------------------
class _MemoryBackend:
    def __init__(self, max_in_flight: int, poll: float) -> None:
        self._lock = threading.Lock()
        self._states: dict[str, TenantPace] = {}
        self._semaphores: dict[str, threading.BoundedSemaphore] = {}
        self._max = max_in_flight
        self._poll = poll

    @contextlib.contextmanager
    def state(self, tenant_id: str) -> Iterator[TenantPace]:
        with self._lock:
            yield self._states.setdefault(tenant_id, TenantPace())

    @contextlib.contextmanager
    def slot(self, tenant_id: str, cancel: threading.Event | None = None) -> Iterator[None]:
        with self._lock:
            semaphore = self._semaphores.setdefault(tenant_id, threading.BoundedSemaphore(self._max))
        if cancel is None:
            semaphore.acquire()
        else:
            while not semaphore.acquire(timeout=self._poll):
                check_cancelled(cancel)
        try:
            yield
        finally:
            semaphore.release()


class _FileBackend:
    """State and in-flight slots in files of a directory, locked with ``flock``; each file is opened once.

    ``flock`` locks belong to an open file, so the threads of this process that share one take its
    ``threading.Lock`` first. Files opened before a fork are not used by the child.
    """

    def __init__(self, directory: Path, max_in_flight: int, poll: float) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self._max = max_in_flight
        self._poll = poll
        self._files: dict[str, tuple[IO[str], threading.Lock]] = {}
        self._files_lock = threading.Lock()
        self._pid = os.getpid()

    def _file(self, name: str) -> tuple[IO[str], threading.Lock]:
        """Return the open file ``name`` of the directory and the lock of its users in this process."""
        with self._files_lock:
            if self._pid != os.getpid():
                self._files, self._pid = {}, os.getpid()
            entry = self._files.get(name)
            if entry is None:
                handle = open(self.directory / name, "a+")  # noqa: SIM115 - kept open for the next call
                entry = self._files[name] = (handle, threading.Lock())
            return entry

    @contextlib.contextmanager
    def state(self, tenant_id: str) -> Iterator[TenantPace]:
        # The state file is its own lock and is rewritten in place (no rename, which makes some
        # filesystems flush the file). A torn write reads back as a fresh state.
        handle, users = self._file(f"{_safe(tenant_id)}.json")
        with users:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                handle.seek(0)
                try:
                    data: dict[str, Any] = json.loads(handle.read() or "{}")
                    pace = TenantPace(
                        **{k: v for k, v in data.items() if k in TenantPace.__dataclass_fields__}
                    )
                except (ValueError, TypeError):
                    pace = TenantPace()
                yield pace
                handle.truncate(0)  # appending writes then start at 0
                handle.write(json.dumps(asdict(pace)))
                handle.flush()
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def slot(self, tenant_id: str, cancel: threading.Event | None = None) -> Iterator[None]:
        name = _safe(tenant_id)
        held: tuple[IO[str], threading.Lock] | None = None
        while held is None:
            for number in range(self._max):
                handle, users = self._file(f"{name}.slot{number}")
                if not users.acquire(blocking=False):
                    continue  # another thread of this process holds this slot
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    users.release()
                    continue
                held = (handle, users)
                break
            else:
                # Real time: slots free up as requests finish.
                if cancel is None:
                    time.sleep(self._poll)
                elif cancel.wait(self._poll):
                    raise RequestCancelled
        try:
            yield
        finally:
            fcntl.flock(held[0], fcntl.LOCK_UN)
            held[1].release()


class Governor:
    """Decide when each request to a tenant may be sent.

    :param clock: returns the current time in seconds (the sandbox's clock in tests).
    :param sleep: waits a number of seconds (advances a fake clock in tests).
    :param state_dir: directory shared by the processes of a host; ``None`` reads ``XERO_GOVERNOR_DIR``,
        and without it the state stays in this process.
    :param max_in_flight: requests in flight per tenant.
    :param window: length of the minute window.
    :param margin: seconds added after a spent window's end before the next call.
    :param reserve: calls of each minute left unused. A call sent just before a window ends may reach Xero
        just after, and count in the next window; when several tasks share a tenant its answer can come
        after the others', so the headers seen may miss it. One call of slack absorbs that race.
    :param poll: real seconds between attempts to take a busy in-flight slot (and between checks of a
        request's cancellation while it waits for one).
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        state_dir: str | os.PathLike[str] | None = None,
        max_in_flight: int = MAX_IN_FLIGHT,
        window: float = MINUTE_WINDOW,
        margin: float = 0.5,
        reserve: int = 1,
        poll: float = 0.02,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        self.clock = clock
        self.sleep = sleep
        self.window = window
        self.max_in_flight = max_in_flight
        self.margin = margin
        self.reserve = reserve
        directory = state_dir if state_dir is not None else os.environ.get(STATE_DIR_ENV) or None
        self.state_dir = Path(directory) if directory else None
        self._backend: _MemoryBackend | _FileBackend = (
            _FileBackend(self.state_dir, max_in_flight, poll)
            if self.state_dir is not None
            else _MemoryBackend(max_in_flight, poll)
        )
        #: Seconds spent waiting for the minute allowance, per tenant (for logs and benchmarks).
        self.waited: dict[str, float] = {}

    def __repr__(self) -> str:
        return f"Governor(state_dir={str(self.state_dir) if self.state_dir else None!r})"

    def pace(self, tenant_id: str) -> TenantPace:
        """Return a copy of what is known of ``tenant_id``'s allowance."""
        with self._backend.state(tenant_id) as state:
            return TenantPace(**asdict(state))

    def before_call(self, tenant_id: str, cancel: threading.Event | None = None) -> float:
        """Wait until a call to ``tenant_id`` may start and reserve it; return the reserved start time.

        :param tenant_id: the tenant to call.
        :param cancel: set when the caller abandons the request: the wait ends, the reservation is given
            back (:meth:`release`) and :class:`RequestCancelled` is raised.
        :raises XeroDailyLimitReached: when the tenant's daily allowance is spent.
        :raises RequestCancelled: when ``cancel`` is set before or during the wait.
        """
        check_cancelled(cancel)
        with self._backend.state(tenant_id) as state:
            now = self.clock()
            if now < state.day_blocked_until:
                resume_at = datetime.fromtimestamp(state.day_blocked_until, UTC)
                raise XeroDailyLimitReached(
                    f"Xero daily call limit of tenant {tenant_id} is spent (X-DayLimit-Remaining: 0); "
                    f"resume after {resume_at:%Y-%m-%d %H:%M:%S} UTC",
                    problem="day",
                    retry_after=state.day_blocked_until - now,
                    resume_at=resume_at,
                )
            start = max(now, state.next_slot, state.app_blocked_until)
            if state.window_start is not None and start >= state.window_start + self.window:
                self._new_window(state, start)  # the window is over: a fresh allowance
            if state.minute_remaining is not None and state.window_start is not None:
                window_end = state.window_start + self.window
                # Calls sent but not answered yet are not in the latest header: count them as spent.
                state.in_flight = [t for t in state.in_flight if t > now - IN_FLIGHT_EXPIRY]
                left = state.minute_remaining - len(state.in_flight) - self.reserve
                if left <= 0:
                    start = window_end + self.margin
                    self._new_window(state, start)
                    state.next_slot = start
                else:
                    state.next_slot = start + (window_end - start) / left
            else:
                state.next_slot = start
            state.in_flight.append(start)
        delay = start - now
        if delay > 0:
            if delay >= 5:
                log.info("Xero tenant %s: pacing %.1f s for the rate limit", tenant_id, delay)
            self.waited[tenant_id] = self.waited.get(tenant_id, 0.0) + delay
            try:
                pause(self.sleep, delay, cancel)
            except RequestCancelled:
                self.release(tenant_id, start)
                raise
        return start

    def release(self, tenant_id: str, reserved_at: float) -> None:
        """Give back a call reserved by :meth:`before_call` that will not be sent (its read was abandoned).

        It no longer counts as in flight and, when no call was reserved after it, the next call may start
        when it would have.

        :param tenant_id: the tenant.
        :param reserved_at: the start time :meth:`before_call` returned.
        """
        with self._backend.state(tenant_id) as state:
            if reserved_at in state.in_flight:
                state.in_flight.remove(reserved_at)
            elif state.in_flight:
                state.in_flight.pop()  # entries are matched by count (see observe): drop one
            if state.next_slot > reserved_at and all(t < reserved_at for t in state.in_flight):
                state.next_slot = reserved_at

    @contextlib.contextmanager
    def slot(self, tenant_id: str, cancel: threading.Event | None = None) -> Iterator[None]:
        """Hold one of the tenant's in-flight slots for the duration of a request.

        :param tenant_id: the tenant.
        :param cancel: set when the caller abandons the request: waiting for a slot stops, and a slot
            taken after it was set is given back at once.
        :raises RequestCancelled: when ``cancel`` is set before the request could go.
        """
        with self._backend.slot(tenant_id, cancel):
            check_cancelled(cancel)
            yield

    def observe(
        self, tenant_id: str, headers: Mapping[str, str], sent_at: float, received_at: float | None = None
    ) -> None:
        """Take in the rate-limit headers of a response to a call sent at ``sent_at``.

        Call it for every call reserved with :meth:`before_call`, with empty headers when the call got no
        response (a reset, a timeout), so the call no longer counts as in flight.

        :param tenant_id: the tenant called.
        :param headers: the response's headers.
        :param sent_at: when the call was sent.
        :param received_at: when the answer arrived (default: now).
        """
        minute = int_header(headers, "X-MinLimit-Remaining")
        day = int_header(headers, "X-DayLimit-Remaining")
        app = int_header(headers, "X-AppMinLimit-Remaining")
        with self._backend.state(tenant_id) as state:
            if state.in_flight:
                state.in_flight.pop(0)
            if day is not None:
                state.day_remaining = day
                if day <= 0:
                    state.day_blocked_until = max(state.day_blocked_until, sent_at + DAY_PROBE_AFTER)
            if app is not None and app <= 0:
                state.app_blocked_until = max(state.app_blocked_until, sent_at + self.window + self.margin)
            if minute is None or sent_at < state.rollover_at:
                return  # no minute header, or one describing the previous window
            if state.window_start is None or sent_at >= state.window_start + self.window:
                # The first answer seen in a new window. Taking its arrival as the window's start is
                # careful: the window really started at or before it, so it really ends at or before ours.
                state.window_start = received_at if received_at is not None else self.clock()
                state.minute_remaining = minute
            elif state.minute_remaining is None:
                state.minute_remaining = minute
            else:
                # Other calls may be in flight: never count more allowance than either side knows of.
                state.minute_remaining = min(minute, state.minute_remaining)

    @staticmethod
    def _new_window(state: TenantPace, start: float) -> None:
        state.window_start = None
        state.minute_remaining = None
        state.rollover_at = start

    def rate_limited(self, tenant_id: str, problem: str, retry_after: float | None = None) -> None:
        """Take in a 429: a spent day blocks the tenant until ``Retry-After`` (or a probe delay); a
        spent minute forgets the window, since the retry waits ``Retry-After`` and starts afresh."""
        if "day" in problem:
            wait = retry_after if retry_after is not None else DAY_PROBE_AFTER
            with self._backend.state(tenant_id) as state:
                state.day_remaining = 0
                state.day_blocked_until = max(state.day_blocked_until, self.clock() + wait)
            return
        with self._backend.state(tenant_id) as state:
            self._new_window(state, self.clock())
            state.next_slot = 0.0
            state.app_blocked_until = 0.0

    def reset_day(self, tenant_id: str) -> None:
        """Forget a spent daily allowance (a new day, or a test)."""
        with self._backend.state(tenant_id) as state:
            state.day_remaining = None
            state.day_blocked_until = 0.0


__all__ = [
    "DAY_PROBE_AFTER",
    "MAX_IN_FLIGHT",
    "MINUTE_WINDOW",
    "STATE_DIR_ENV",
    "Governor",
    "RequestCancelled",
    "TenantPace",
    "check_cancelled",
    "pause",
]
