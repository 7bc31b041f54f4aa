"""Waiting for a local HTTP service to come up: the Xero sandbox of the demo, Airflow's API server in the tests.

A server starting on a busy machine is not just absent or present: it may refuse connections, accept them and answer
late (a read timeout), reset them, or answer 5xx while it warms up. :func:`wait_until_up` treats every one of these
as "not yet" until its deadline, then raises :class:`ServiceNotReady` naming the service, its URL, the last error and
how long it waited. When the server's process is given, its exit ends the wait at once with its exit code.
"""

from __future__ import annotations

import subprocess
import time

import requests
import tenacity

#: Seconds one probe may take; a slow answer is retried until the deadline, not fatal.
PROBE_TIMEOUT = 5.0


class ServiceNotReady(RuntimeError):
    """A service did not answer before its deadline, or its process exited first."""


class _NotYet(Exception):
    """One probe found the service not answering yet (retried until the deadline)."""


def _describe(error: BaseException) -> str:
    """Return what a failed probe met: the request error (``Type: message``) or the 5xx status."""
    cause = error.__cause__
    return f"{type(cause).__name__}: {cause}" if cause is not None else str(error)


def _probe(
    url: str, what: str, process: subprocess.Popen[bytes] | None, deadline: float, probe_timeout: float
) -> requests.Response:
    if process is not None and process.poll() is not None:
        raise ServiceNotReady(f"{what} exited with code {process.returncode} before answering on {url}")
    timeout = max(min(probe_timeout, deadline - time.monotonic()), 0.1)
    try:
        response = requests.get(url, timeout=timeout)
    except requests.RequestException as exc:  # refused, reset, read timeout, ...: not up yet
        raise _NotYet(str(exc)) from exc
    if response.status_code >= 500:
        raise _NotYet(f"HTTP {response.status_code} {response.reason}")
    return response


def wait_until_up(
    url: str,
    *,
    what: str,
    timeout: float = 120.0,
    interval: float = 0.25,
    probe_timeout: float = PROBE_TIMEOUT,
    process: subprocess.Popen[bytes] | None = None,
) -> requests.Response:
    """Poll ``url`` until it answers with a status below 500; return that response.

    :param url: the URL to probe with ``GET``.
    :param what: the service, as the error names it (e.g. ``"the Xero sandbox"``).
    :param timeout: seconds to keep trying.
    :param interval: seconds between probes.
    :param probe_timeout: seconds one probe may take (capped by the time left).
    :param process: the service's process, if this program started it: its exit ends the wait.
    :raises ServiceNotReady: the deadline passed (the message names ``what``, the URL, the last error and the time
        waited) or ``process`` exited.
    """
    started = time.monotonic()
    deadline = started + timeout
    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_delay(timeout),
        wait=tenacity.wait_fixed(interval),
        retry=tenacity.retry_if_exception_type(_NotYet),
    )
    try:
        return retrying(_probe, url, what, process, deadline, probe_timeout)
    except tenacity.RetryError as exc:
        last = exc.last_attempt.exception()
        waited = time.monotonic() - started
        reason = _describe(last) if last is not None else "no answer"
        raise ServiceNotReady(
            f"{what} did not come up at {url} within {waited:.1f} s (limit {timeout:g} s); last error: {reason}"
        ) from None
