"""The HTTP client of the Xero API: one request method, one retry policy, pacing and lossless paging.

Every request goes through :meth:`XeroClient.request_json`, which sets the ``Authorization``,
``xero-tenant-id``, ``Accept`` and ``User-Agent`` headers and a timeout, counts the call per tenant,
reads the rate-limit headers, maps error statuses to :mod:`xero.exceptions` and retries under one
tenacity policy (:func:`is_retryable`, :class:`XeroWait`, :class:`XeroStop`): 5xx, timeouts, connection
resets and malformed JSON are retried with bounded exponential backoff and jitter; a minute-limit 429
waits ``Retry-After`` and goes on without counting as a failure; a daily-limit 429 raises
:class:`~xero.exceptions.XeroDailyLimitReached` at once; 503 "The Organisation is offline" raises
:class:`~xero.exceptions.XeroOrganisationOffline` at once (holding a worker for minutes helps nobody:
the extract operator reschedules itself). A 401 ``TokenExpired`` forces one token refresh and one resend.
*When* a request may go is the :class:`~xero.governor.Governor`'s decision: it spreads each tenant's
minute allowance, stops a tenant whose day is spent and keeps at most 5 requests in flight per tenant.

Paging
------
:meth:`XeroClient.iter_pages` sends the requests :class:`xero.paging.Pager` plans and feeds it the answers:
an offset read at the minimum of calls, checked without extra calls for records that moved mid-read, and
when one may have been skipped, a recovery read by key from the earliest point a skip can be, which no
further change can make skip (see :mod:`xero.paging`).

Pages are yielded as they arrive; records may repeat across pages and passes (the loader keeps the last
occurrence of an id). An unchanged tenant costs one call per entity; ``n`` records cost
``ceil(n / page_size)`` calls (a short page, or ``pagination.pageCount``, ends the pass).

While the caller works on page ``p`` (the extract step writes it to disk), page ``p + 1`` is already
being requested, in a helper thread, when page ``p`` said there is one: the same requests as reading one
page at a time, in the same order and one at a time, only sent earlier. Nothing in the checks above
depends on when a request is sent (a record may move at any moment). What differs: a caller that stops
in the middle of a pass may have spent one call on the page after its last (none if that request was
still waiting to go), and an error of page ``p + 1`` (the daily limit, say) is raised when the caller
asks for that page, as before.

A caller that stops (it closes the generator, or an exception such as a failed write or the task's
SIGTERM leaves its loop) does not wait for that request. The read's cancellation event is set: a pacing
or retry wait of the request ends at once (:func:`xero.governor.pause`), no attempt or retry starts after
it, a call reserved with the governor and never sent is given back, and a token is neither refreshed nor
resent for it. Only a request already on the wire finishes, within the client's timeout, in the helper
thread; its answer still updates the rate-limit state (the call was spent) and is then dropped.

Decoding
--------
Bodies are decoded with msgspec. A page's records are never turned into Python objects on the way
through: the envelope is decoded with the records array kept as the bytes Xero sent (:attr:`Page.body`,
which the extract step lands as is), and only each record's id and ``UpdatedDateUTC`` are read from it
for the paging checks. Money therefore never passes through a float; :attr:`Page.records` decodes the
records on demand with numbers as :class:`~decimal.Decimal`.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any, cast
from urllib.parse import quote

import msgspec
import requests
import tenacity

from xero import __version__
from xero.auth import AccessTokenProvider, consent_hint
from xero.entities import MAX_PAGE_SIZE, Entity
from xero.exceptions import (
    XeroAuthError,
    XeroClientError,
    XeroConfigError,
    XeroDailyLimitReached,
    XeroMalformedResponse,
    XeroNotFoundError,
    XeroOrganisationOffline,
    XeroRateLimitError,
    XeroServerError,
    XeroTokenExpired,
    XeroUnreachable,
    XeroValidationError,
    unreachable,
)
from xero.governor import Governor, RequestCancelled, check_cancelled, int_header, pause
from xero.paging import Pager, PageRequest, as_int, parse_updated, truncate_to_second
from xero.scopes import ScopeFamily, missing_scope_hint
from xero.text import LenientDecoder, decode_masked

log = logging.getLogger(__name__)

USER_AGENT = f"airflow-provider-xero/{__version__}"
ACCOUNTING_PATH = "api.xro/2.0"
IF_MODIFIED_SINCE_FORMAT = "%Y-%m-%dT%H:%M:%S"
#: Seconds to wait before retrying an organisation that Xero reports offline ("5 mins or so").
ORGANISATION_OFFLINE_WAIT = 300.0
#: Length of Xero's per-tenant minute window, waited out when the minute allowance reaches 0.
MINUTE_WINDOW = 60.0
#: Decodes any JSON body (``/connections``, and callers of ``request_json`` that name no decoder).
_ANY_DECODER = msgspec.json.Decoder()
#: Decodes a page's records for :attr:`Page.records`: JSON numbers become exact Decimals, never floats.
_RECORDS_DECODER = msgspec.json.Decoder(list[Any], float_hook=Decimal)


# -- value objects ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Tenant:
    """A Xero organisation the connection may read.

    :param tenant_id: the ``xero-tenant-id``.
    :param tenant_name: the organisation's name, when known (``None`` for configured ids).
    :param tenant_type: ``ORGANISATION`` or ``PRACTICE``, when known.
    """

    tenant_id: str
    tenant_name: str | None = None
    tenant_type: str | None = None


@dataclass(frozen=True)
class Page:
    """One page of records as Xero returned it.

    :param body: the page's records: the JSON array exactly as Xero sent it (never shown in reprs: they
        are financial data).
    :param count: how many records ``body`` holds.
    :param number: 1-based sequence number of this page within the whole iteration (all passes).
    :param tenant_id: the tenant read.
    :param entity: the entity's registry name.
    :param page: the ``page`` parameter sent (1 for unpaged endpoints).
    :param pass_number: 1 for the main pass, 2+ for recovery passes after mid-paging changes.
    :param modified_since: the ``If-Modified-Since`` sent, truncated to the second (``None``: none).
    :param page_count: ``pagination.pageCount`` when Xero sent it.
    :param item_count: ``pagination.itemCount`` when Xero sent it.
    :param recovery_since: if records moved during this pass so far, the instant a recovery pass will
        re-read from. A caller that stops early must not advance its watermark past it.
    """

    body: bytes = field(repr=False)
    count: int
    number: int
    tenant_id: str
    entity: str
    page: int = 1
    pass_number: int = 1
    modified_since: datetime | None = None
    page_count: int | None = None
    item_count: int | None = None
    recovery_since: datetime | None = None

    @functools.cached_property
    def records(self) -> list[Any]:
        """Return the records decoded (JSON numbers as :class:`~decimal.Decimal`, so money stays exact)."""
        return _RECORDS_DECODER.decode(self.body)


@dataclass
class RateLimits:
    """The rate-limit headers of the latest response for a tenant.

    :param minute_remaining: ``X-MinLimit-Remaining``.
    :param day_remaining: ``X-DayLimit-Remaining``.
    :param app_minute_remaining: ``X-AppMinLimit-Remaining`` (app-wide).
    :param observed_at: clock time of the response.
    """

    minute_remaining: int | None = None
    day_remaining: int | None = None
    app_minute_remaining: int | None = None
    observed_at: float = 0.0


# -- small pure helpers ----------------------------------------------------------------------------
def format_modified_since(value: datetime) -> str:
    """Format ``value`` for ``If-Modified-Since``: UTC ``YYYY-MM-DDTHH:MM:SS`` (naive values are UTC)."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime(IF_MODIFIED_SINCE_FORMAT)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Return the seconds of a ``Retry-After`` header (delta-seconds or an HTTP date), or ``None``."""
    if value is None or not str(value).strip():
        return None
    text = str(value).strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


# -- retry policy: the one place that decides what is retried and how long to wait ---------------
def is_retryable(exc: BaseException) -> bool:
    """Tell whether a failed request may succeed when sent again.

    Retried: Xero 5xx (including an offline organisation), minute/concurrency 429s, malformed or
    truncated JSON, timeouts and connection errors (resets, refused, dropped mid-body; a URL that never
    answers is retried within the request, then fails the task naming its setting). Never retried:
    the daily limit, auth and validation errors, other 4xx, a URL that answers with a web page.
    """
    if isinstance(exc, XeroDailyLimitReached):
        return False
    if isinstance(exc, XeroRateLimitError | XeroServerError | XeroMalformedResponse | XeroUnreachable):
        return True
    return isinstance(
        exc,
        requests.Timeout
        | requests.ConnectionError
        | requests.exceptions.ChunkedEncodingError
        | requests.exceptions.ContentDecodingError,
    )


class XeroWait:
    """How long to wait before a retry: ``Retry-After`` for rate limits, minutes for an offline org,
    exponential backoff with jitter otherwise.

    :param backoff: tenacity wait for ordinary failures (``tenacity.wait_none()`` in tests).
    :param rate_limit_default: wait for a minute-limit 429 without ``Retry-After``.
    :param offline_wait: wait for "The Organisation is offline".
    """

    def __init__(
        self,
        backoff: tenacity.wait.wait_base | None = None,
        *,
        rate_limit_default: float = MINUTE_WINDOW,
        offline_wait: float = ORGANISATION_OFFLINE_WAIT,
    ) -> None:
        self.backoff = backoff or tenacity.wait_exponential_jitter(initial=1, max=60, jitter=2)
        self.rate_limit_default = rate_limit_default
        self.offline_wait = offline_wait

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        if isinstance(exc, XeroRateLimitError):
            if exc.retry_after is not None:
                return exc.retry_after
            if exc.problem in ("minute", "appminute"):
                return self.rate_limit_default
        elif isinstance(exc, XeroOrganisationOffline):
            return self.offline_wait
        return float(self.backoff(retry_state))


class XeroStop:
    """When to give up: after ``max_failures`` failed attempts; rate-limit waits are counted apart.

    :param max_failures: attempts that failed with a retryable error (5xx, reset, timeout, bad JSON).
    :param max_rate_limit_waits: minute-limit 429s waited out within one request.
    :param max_offline_waits: waits for an offline organisation within one request (default 0: raise
        :class:`~xero.exceptions.XeroOrganisationOffline` at once, so the task gives its worker slot
        back and Airflow reschedules it minutes later; see :class:`xero.operators.XeroExtractOperator`).
    """

    def __init__(
        self, max_failures: int = 5, max_rate_limit_waits: int = 30, max_offline_waits: int = 0
    ) -> None:
        self.max_failures = max_failures
        self.max_rate_limit_waits = max_rate_limit_waits
        self.max_offline_waits = max_offline_waits

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        counts: Counter[str] = retry_state.__dict__.setdefault("xero_counts", Counter())
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        if isinstance(exc, XeroRateLimitError):
            counts["rate_limit"] += 1
            return counts["rate_limit"] > self.max_rate_limit_waits
        if isinstance(exc, XeroOrganisationOffline):
            counts["offline"] += 1
            if counts["offline"] > self.max_offline_waits:
                return True
        counts["failure"] += 1
        return counts["failure"] >= self.max_failures


def _log_retry(retry_state: tenacity.RetryCallState) -> None:
    exc = retry_state.outcome.exception() if retry_state.outcome else None
    log.warning(
        "Xero request failed (%s: %s); retrying in %.1f s",
        type(exc).__name__,
        exc,
        retry_state.upcoming_sleep,
    )


def build_retrying(
    *,
    wait: tenacity.wait.wait_base | None = None,
    sleep: Callable[[float], None] = time.sleep,
    max_failures: int = 5,
    max_rate_limit_waits: int = 30,
    offline_wait: float = ORGANISATION_OFFLINE_WAIT,
    max_offline_waits: int = 0,
) -> tenacity.Retrying:
    """Build the retry policy of every Xero request.

    :param wait: backoff for ordinary failures (default: exponential with jitter, at most 60 s).
    :param sleep: how to wait (tests pass a recorder so nothing really sleeps).
    :param max_failures: attempts before a retryable failure is raised.
    :param max_rate_limit_waits: minute-limit waits before giving up.
    :param offline_wait: seconds to wait for an offline organisation, when waiting in process.
    :param max_offline_waits: in-process waits for an offline organisation (default 0: raise at once).
    """
    return tenacity.Retrying(
        retry=tenacity.retry_if_exception(is_retryable),
        wait=XeroWait(wait, offline_wait=offline_wait),
        stop=XeroStop(max_failures, max_rate_limit_waits, max_offline_waits),
        sleep=sleep,
        before_sleep=_log_retry,
        reraise=True,
    )


class _UnlessCancelled(tenacity.retry_base):
    """Retry as ``retry`` says, but never once ``cancel`` is set (the failure is then raised, unread)."""

    def __init__(self, retry: Any, cancel: threading.Event) -> None:
        self.retry = retry
        self.cancel = cancel

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        return not self.cancel.is_set() and bool(self.retry(retry_state))


def _cancellable(retrying: tenacity.Retrying, cancel: threading.Event) -> tenacity.Retrying:
    """Return ``retrying`` for a request its caller may abandon by setting ``cancel``.

    The same policy and the same ``sleep``, except that a retry wait ends (and raises
    :class:`~xero.governor.RequestCancelled`) when ``cancel`` is set, and a failure seen once it is set is
    not retried.
    """
    sleep = time.sleep if retrying.sleep is tenacity.nap.sleep else retrying.sleep  # tenacity's default
    return retrying.copy(
        sleep=functools.partial(pause, sleep, cancel=cancel),
        retry=_UnlessCancelled(retrying.retry, cancel),
    )


# -- error mapping -------------------------------------------------------------------------------
def _problem_fields(response: requests.Response) -> tuple[str | None, str | None, list[str]]:
    """Return Xero's ``(Title, Detail, validation messages)`` of an error response; no other body text."""
    content_type = response.headers.get("Content-Type", "")
    text = response.text or ""
    data: Any = None
    if "json" in content_type or text.lstrip()[:1] in ("{", "["):
        try:
            data = response.json()
        except ValueError:
            data = None
    if isinstance(data, dict):
        title = data.get("Title") or data.get("Type") or data.get("title") or data.get("error")
        detail = (
            data.get("Detail") or data.get("Message") or data.get("detail") or data.get("error_description")
        )
        messages: list[str] = []
        if data.get("Message"):
            messages.append(str(data["Message"]))
        for element in data.get("Elements") or []:
            if isinstance(element, dict):
                for error in element.get("ValidationErrors") or []:
                    if isinstance(error, dict) and error.get("Message"):
                        messages.append(str(error["Message"]))
        messages = list(dict.fromkeys(messages))[:20]
        return (str(title) if title else None, str(detail) if detail else None, messages)
    if data is None and text and ("text/plain" in content_type or not content_type):
        first_line = text.strip().splitlines()[0] if text.strip() else ""
        return (None, first_line[:200] or None, [])
    return (None, None, [])


# -- the client ------------------------------------------------------------------------------------
class XeroClient:
    """Talk to the Xero API for one connection.

    :param api_url: base URL of the API (``https://api.xero.com``).
    :param tokens: gives access tokens (see :class:`xero.auth.TokenManager`).
    :param timeout: seconds for every request.
    :param page_size: records per page on paged endpoints (1-1000).
    :param scopes: the connection's scope family or list, to name a missing scope in errors.
    :param session: the ``requests.Session`` to use.
    :param retrying: the retry policy (:func:`build_retrying` by default).
    :param sleep: how to wait when pacing (injectable for tests). ``time.sleep`` is replaced by a wait that
        an abandoned prefetch can end; any other ``sleep`` is called as given (see
        :func:`xero.governor.pause`).
    :param clock: returns Unix seconds (injectable for tests).
    :param max_passes: paging passes (1 + recoveries) before giving up on data that keeps moving.
    :param governor: paces calls per tenant (default: a :class:`~xero.governor.Governor` on ``clock`` and
        ``sleep``, shared across the host's processes when ``XERO_GOVERNOR_DIR`` is set).
    :param conn_id: the Airflow connection, named in messages that ask for a new consent.
    """

    def __init__(
        self,
        *,
        api_url: str,
        tokens: AccessTokenProvider,
        timeout: float = 60.0,
        page_size: int = MAX_PAGE_SIZE,
        scopes: ScopeFamily | Sequence[str] = "granular",
        session: requests.Session | None = None,
        retrying: tenacity.Retrying | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        max_passes: int = 5,
        governor: Governor | None = None,
        conn_id: str = "xero_default",
    ) -> None:
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}, got {page_size}")
        self.api_url = api_url.rstrip("/")
        self.tokens = tokens
        self.timeout = timeout
        self.page_size = page_size
        self.scopes = scopes
        self.session = session or requests.Session()
        self.retrying = retrying or build_retrying(sleep=sleep)
        self.sleep = sleep
        self.clock = clock
        self.max_passes = max_passes
        self.governor = governor or Governor(clock=clock, sleep=sleep)
        self.conn_id = conn_id
        #: API calls sent per tenant id (every HTTP attempt, including retries).
        self.calls: Counter[str] = Counter()
        #: Calls to the identity endpoints that need no tenant (``/connections``).
        self.identity_calls = 0
        #: Latest rate-limit headers per tenant id.
        self.limits: dict[str, RateLimits] = {}
        self.app_minute_remaining: int | None = None
        self._app_observed_at = 0.0

    def __repr__(self) -> str:
        return f"XeroClient(api_url={self.api_url!r})"

    # -- URLs ---------------------------------------------------------------------------------------
    def accounting_url(self, path: str) -> str:
        """Return the URL of an Accounting API endpoint such as ``Invoices``."""
        return f"{self.api_url}/{ACCOUNTING_PATH}/{quote(path.strip('/'), safe='/')}"

    def connections_url(self) -> str:
        """Return the URL of the ``/connections`` endpoint."""
        return f"{self.api_url}/connections"

    # -- the one request method -----------------------------------------------------------------
    def request_json(
        self,
        method: str,
        url: str,
        *,
        tenant_id: str | None = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        entity: Entity | None = None,
        label: str | None = None,
        decoder: msgspec.json.Decoder[Any] = _ANY_DECODER,
        cancel: threading.Event | None = None,
    ) -> Any:
        """Send one request under the retry policy and return its decoded JSON body (``None`` for 304).

        :param method: HTTP method.
        :param url: full URL (see :meth:`accounting_url`).
        :param tenant_id: value of ``xero-tenant-id``; ``None`` for identity endpoints.
        :param params: query parameters.
        :param headers: extra headers (``If-Modified-Since``).
        :param entity: the entity read, to name its scope in an authorisation error.
        :param label: what is being read, for messages (``Invoices page 2``).
        :param decoder: the msgspec decoder of the body (default: any JSON). A body that is not JSON
            (malformed, truncated) is retried as :class:`~xero.exceptions.XeroMalformedResponse`; JSON of
            another shape than the decoder's type raises ``msgspec.ValidationError`` at once (the caller
            says what was missing).
        :param cancel: set when the caller no longer wants the answer: pacing and retry waits end, and no
            attempt, retry, token refresh or resend starts after it (a request on the wire may finish).
        :raises RequestCancelled: when ``cancel`` was set before an answer could be returned.
        """
        if tenant_id is not None and not tenant_id.strip():
            raise ValueError("tenant_id must not be empty")
        what = label or url.rsplit("/", 1)[-1]
        retrying = self.retrying if cancel is None else _cancellable(self.retrying, cancel)
        return retrying(
            self._attempt,
            method,
            url,
            tenant_id,
            dict(params or {}),
            dict(headers or {}),
            entity,
            what,
            decoder,
            cancel,
        )

    def _attempt(
        self,
        method: str,
        url: str,
        tenant_id: str | None,
        params: dict[str, Any],
        headers: dict[str, str],
        entity: Entity | None,
        what: str,
        decoder: msgspec.json.Decoder[Any],
        cancel: threading.Event | None = None,
    ) -> Any:
        check_cancelled(cancel)  # no attempt starts once the caller has gone
        reserved = self._pace(tenant_id, cancel)
        token = self.tokens.access_token()
        response = self._send(method, url, token, tenant_id, params, headers, cancel, reserved)
        try:
            self._raise_for_status(response, method, what, tenant_id, entity)
        except XeroTokenExpired:
            check_cancelled(cancel)  # an abandoned request neither refreshes the token nor resends
            log.info("Xero access token expired during %s; refreshing once", what)
            token = self.tokens.refresh(stale_access_token=token)
            reserved = self._pace(tenant_id, cancel)  # the resend is a call of its own
            response = self._send(method, url, token, tenant_id, params, headers, cancel, reserved)
            self._raise_for_status(response, method, what, tenant_id, entity)
        if response.status_code == 304:
            return None
        try:
            return decoder.decode(response.content)
        except msgspec.ValidationError:
            raise  # valid JSON of the wrong shape: not retried
        except msgspec.DecodeError:
            raise XeroMalformedResponse(
                f"Xero {method} {what} (tenant {tenant_id}): HTTP {response.status_code} body is not valid JSON "
                f"({len(response.content)} bytes)",
                status=response.status_code,
            ) from None

    def _send(
        self,
        method: str,
        url: str,
        token: str,
        tenant_id: str | None,
        params: dict[str, Any],
        headers: dict[str, str],
        cancel: threading.Event | None = None,
        reserved_at: float | None = None,
    ) -> requests.Response:
        """Send one HTTP request; ``reserved_at`` is the governor's reservation for it (see :meth:`_pace`)."""
        request_headers = {
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
            **headers,
            "Authorization": f"Bearer {token}",
        }
        if tenant_id is None:
            self.identity_calls += 1
            response = self._request(method, url, params, request_headers)
            self._record_limits(tenant_id, response)
            return response
        request_headers["xero-tenant-id"] = tenant_id
        try:
            with self.governor.slot(tenant_id, cancel):
                self.calls[tenant_id] += 1
                sent_at = self.clock()
                try:
                    response = self._request(method, url, params, request_headers)
                except BaseException:
                    self.governor.observe(tenant_id, {}, sent_at)  # no answer: no longer in flight
                    raise
        except RequestCancelled:  # abandoned before it was sent: give its reserved call back
            if reserved_at is not None:
                self.governor.release(tenant_id, reserved_at)
            raise
        self._record_limits(tenant_id, response)
        self.governor.observe(tenant_id, response.headers, sent_at, self.clock())
        return response

    def _request(
        self, method: str, url: str, params: dict[str, Any], headers: dict[str, str]
    ) -> requests.Response:
        """Send one HTTP request; a URL that cannot be reached raises :class:`XeroUnreachable`."""
        try:
            return self.session.request(method, url, params=params, headers=headers, timeout=self.timeout)
        except requests.ConnectionError as exc:
            error = unreachable(exc, field="api_url", url=self.api_url, conn_id=self.conn_id)
            if error is None:
                raise
            raise error from None

    # -- rate limits --------------------------------------------------------------------------------
    def _record_limits(self, tenant_id: str | None, response: requests.Response) -> None:
        headers = response.headers
        now = self.clock()
        app = int_header(headers, "X-AppMinLimit-Remaining")
        if app is not None:
            self.app_minute_remaining = app
            self._app_observed_at = now
        if tenant_id is None:
            return
        minute = int_header(headers, "X-MinLimit-Remaining")
        day = int_header(headers, "X-DayLimit-Remaining")
        if minute is None and day is None and app is None:
            return
        state = self.limits.setdefault(tenant_id, RateLimits())
        if minute is not None:
            state.minute_remaining = minute
        if day is not None:
            state.day_remaining = day
        if app is not None:
            state.app_minute_remaining = app
        state.observed_at = now

    def _pace(self, tenant_id: str | None, cancel: threading.Event | None = None) -> float | None:
        """Wait until the governor lets the next call go; stop when the tenant's day is spent.

        Return the call's reservation with the governor (``None`` for identity calls, which only wait for
        a spent app-wide minute allowance). The wait ends with :class:`~xero.governor.RequestCancelled`
        when ``cancel`` is set.
        """
        if tenant_id is not None:
            return self.governor.before_call(tenant_id, cancel)
        if self.app_minute_remaining is not None and self.app_minute_remaining <= 0:
            delay = self._app_observed_at + MINUTE_WINDOW - self.clock()
            if delay > 0:
                pause(self.sleep, delay, cancel)
            self.app_minute_remaining = None
        return None

    # -- status → exception ---------------------------------------------------------------------------
    def _raise_for_status(
        self,
        response: requests.Response,
        method: str,
        what: str,
        tenant_id: str | None,
        entity: Entity | None,
    ) -> None:
        status = response.status_code
        if status < 500 and status != 429 and "text/html" in response.headers.get("Content-Type", "").lower():
            raise XeroConfigError(
                "api_url",
                f"{self.api_url} answered {method} {what} with a web page (HTTP {status}), not Xero's JSON "
                "API: set it to Xero's API URL (https://api.xero.com)",
                conn_id=self.conn_id,
            )
        if status < 400:
            return
        title, detail, messages = _problem_fields(response)
        where = f"Xero {method} {what}" + (f" (tenant {tenant_id})" if tenant_id else "")
        said = ": ".join(part for part in (title, detail) if part)
        base = f"{where}: HTTP {status}" + (f" {said}" if said else "")
        correlation = response.headers.get("Xero-Correlation-Id")
        if correlation:
            base += f" [Xero-Correlation-Id {correlation}]"
        kwargs: dict[str, Any] = {"status": status, "title": title, "detail": detail}
        detail_text = detail or ""
        conn = f"Xero connection {self.conn_id!r}: "
        if status == 401:
            if detail_text.startswith("TokenExpired") or title == "TokenExpired":
                raise XeroTokenExpired(f"{base}; the access token expired", **kwargs)
            if "AuthorizationUnsuccessful" in detail_text:
                hint = missing_scope_hint(entity, self.scopes)
                raise XeroAuthError(
                    f"{conn}{base}; the app is not authorised for this: {hint}: add it to the app and to "
                    f"the connection's 'scopes' extra if it lists scopes; then {consent_hint(self.conn_id)}",
                    **kwargs,
                )
            raise XeroAuthError(
                f"{conn}{base}; the access token was refused: consent may have been revoked or expired; "
                f"{consent_hint(self.conn_id)}",
                **kwargs,
            )
        if status == 403:
            if "AuthenticationUnsuccessful" in detail_text:
                raise XeroAuthError(
                    f"{conn}{base}; tenant {tenant_id} is not connected to this app (disconnected, wrong or stale "
                    f"tenant id): reconnect the organisation ({consent_hint(self.conn_id)}), or fix the "
                    "connection's extra 'tenant_ids'",
                    **kwargs,
                )
            hint = missing_scope_hint(entity, self.scopes)
            raise XeroAuthError(
                f"{conn}{base}; not permitted: {hint} (add it to the app and to the connection's 'scopes' "
                "extra if it lists scopes), and the Xero user needs access to it",
                **kwargs,
            )
        if status == 400:
            shown = "; ".join(messages) if messages else (detail or "")
            raise XeroValidationError(
                f"{where}: HTTP 400 {shown}".rstrip()
                + (f" [Xero-Correlation-Id {correlation}]" if correlation else ""),
                messages=messages,
                **kwargs,
            )
        if status == 404:
            raise XeroNotFoundError(
                f"{conn}{base}; not found (or the URL is too long): check the connection's 'api_url' "
                f"({self.api_url}; Xero's is https://api.xero.com)",
                **kwargs,
            )
        if status == 429:
            self._raise_rate_limit(response, tenant_id, base, kwargs)
        if status == 503 and "organisation is offline" in detail_text.lower():
            raise XeroOrganisationOffline(f"{base}; retry in a few minutes", **kwargs)
        if status >= 500:
            raise XeroServerError(base, **kwargs)
        raise XeroClientError(base, **kwargs)

    def _raise_rate_limit(
        self, response: requests.Response, tenant_id: str | None, base: str, kwargs: dict[str, Any]
    ) -> None:
        problem = (response.headers.get("X-Rate-Limit-Problem") or "").strip().lower()
        now = datetime.fromtimestamp(self.clock(), UTC)
        retry_after = parse_retry_after(response.headers.get("Retry-After"), now)
        if "day" in problem:
            resume_at = now + timedelta(seconds=retry_after) if retry_after is not None else None
            when = (
                f"; resume after {resume_at:%Y-%m-%d %H:%M:%S} UTC"
                if resume_at
                else "; resume on a later run"
            )
            if tenant_id is not None:
                self.governor.rate_limited(tenant_id, "day", retry_after)
            raise XeroDailyLimitReached(
                f"{base}; the tenant's daily call limit is spent{when}",
                problem=problem,
                retry_after=retry_after,
                resume_at=resume_at,
                **kwargs,
            )
        # The retry waits Retry-After (or a window): pacing must not wait a second time for it.
        state = self.limits.get(tenant_id) if tenant_id is not None else None
        if state is not None:
            state.minute_remaining = None
        if tenant_id is not None:
            self.governor.rate_limited(tenant_id, problem)
        self.app_minute_remaining = None
        raise XeroRateLimitError(
            f"{base}; rate limit {problem or 'unspecified'}"
            + (f", retry after {retry_after:.0f} s" if retry_after is not None else ""),
            problem=problem,
            retry_after=retry_after,
            **kwargs,
        )

    # -- endpoints -----------------------------------------------------------------------------------
    def get_connections(self) -> list[dict[str, Any]]:
        """Return the tenants connected to the app (``GET /connections``)."""
        data = self.request_json("GET", self.connections_url(), label="connections")
        if not isinstance(data, list):
            raise XeroMalformedResponse("Xero GET connections: expected a JSON array")
        return [item for item in data if isinstance(item, dict)]

    def list_tenants(self) -> list[Tenant]:
        """Return every tenant the app is connected to."""
        return [
            Tenant(str(item["tenantId"]), item.get("tenantName"), item.get("tenantType"))
            for item in self.get_connections()
            if item.get("tenantId")
        ]

    def iter_pages(self, tenant_id: str, entity: Entity, modified_since: datetime | None) -> Iterator[Page]:
        """Yield the records of ``entity`` changed since ``modified_since``, page by page, losing none.

        :param tenant_id: the tenant to read.
        :param entity: the entity to read (path, paging, If-Modified-Since, includeArchived).
        :param modified_since: read records updated at or after this instant; ``None`` reads all.
        :raises XeroPagingError: when data kept moving through every allowed recovery pass.
        """
        if not tenant_id or not tenant_id.strip():
            raise ValueError("tenant_id must not be empty")
        since = truncate_to_second(modified_since) if modified_since and entity.modified_since else None
        if not entity.paged:
            body, cursors, _ = self._fetch(tenant_id, entity, since, None, label=entity.path)
            self._log_page(tenant_id, entity, 1, 1, len(cursors))
            yield Page(body, len(cursors), 1, tenant_id, entity.name, 1, 1, since)
            return
        # The next page is requested on ``pool`` while the caller works on the current one. When the read
        # ends, or the caller stops (closes this generator, or an exception leaves its loop), the
        # request still pending is abandoned, not waited for: ``cancel`` ends its pacing and retry waits
        # and stops any further attempt; a request already on the wire finishes within the timeout, in
        # the helper thread, which then exits.
        cancel = threading.Event()
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="xero-next-page")
        try:
            yield from self._read_paged(tenant_id, entity, since, pool, cancel)
        finally:
            cancel.set()
            pool.shutdown(wait=False, cancel_futures=True)

    def _read_paged(
        self,
        tenant_id: str,
        entity: Entity,
        since: datetime | None,
        pool: ThreadPoolExecutor,
        cancel: threading.Event,
    ) -> Iterator[Page]:
        """Send the requests the :class:`~xero.paging.Pager` plans and yield each page as it arrives.

        The next request of a pass is known as soon as a page arrives (a short page or ``pageCount`` ends
        the pass), so it is sent on ``pool`` while the checks run and the caller works on the page.
        Requests stay one at a time. The request observes ``cancel``, which :meth:`iter_pages` sets when it
        ends or its caller stops: the caller never waits for a page it will not read.
        """
        pager = Pager(
            since,
            self.page_size,
            max_passes=self.max_passes,
            where=f"Xero {entity.path} (tenant {tenant_id})",
        )

        def fetch(request: PageRequest) -> tuple[bytes, list[tuple[Any, Any]], dict[str, Any]]:
            return self._fetch(
                tenant_id,
                entity,
                request.since,
                request.page,
                label=f"{entity.path} page {request.page}",
                cancel=cancel,
            )

        first = pager.first()
        pending = pool.submit(fetch, first)
        request: PageRequest | None = first
        number = 0
        while request is not None:
            body, cursors, pagination = pending.result()
            following = pager.advance(request, cursors, pagination)
            if following is not None:
                pending = pool.submit(fetch, following)
            pager.inspect(cursors, pagination)
            page_count = as_int(pagination.get("pageCount"))
            number += 1
            self._log_page(tenant_id, entity, request.page, request.pass_number, len(cursors), page_count)
            yield Page(
                body,
                len(cursors),
                number,
                tenant_id,
                entity.name,
                request.page,
                request.pass_number,
                request.since,
                page_count,
                as_int(pagination.get("itemCount")),
                pager.recovery_since,
            )
            if following is None:
                following = pager.end_pass()
                if following is not None:
                    log.warning(
                        "Xero %s (tenant %s): records changed while paging; recovery pass %d reads by key from %s",
                        entity.path,
                        tenant_id,
                        following.pass_number,
                        format_modified_since(following.since) if following.since else "the beginning",
                    )
                    pending = pool.submit(fetch, following)
            request = following

    def _fetch(
        self,
        tenant_id: str,
        entity: Entity,
        since: datetime | None,
        page: int | None,
        *,
        label: str,
        cancel: threading.Event | None = None,
    ) -> tuple[bytes, list[tuple[Any, Any]], dict[str, Any]]:
        """Request one page; return its records array (JSON bytes), each record's (id, cursor) and pagination.

        ``cancel``: see :meth:`request_json`.
        """
        envelope_decoder, cursor_decoder = _page_decoders(
            entity.response_key, entity.id_field, entity.cursor_field
        )
        params: dict[str, Any] = {}
        if page is not None:
            params["page"] = page
            params["pageSize"] = self.page_size
        if entity.include_archived:
            params["includeArchived"] = "true"
        headers = {"If-Modified-Since": format_modified_since(since)} if since is not None else {}
        missing = f"Xero GET {label} (tenant {tenant_id}): response has no {entity.response_key!r} list"
        try:
            envelope = self.request_json(
                "GET",
                self.accounting_url(entity.path),
                tenant_id=tenant_id,
                params=params,
                headers=headers,
                entity=entity,
                label=label,
                # a page holding an escaped lone surrogate is still read; its records stay as Xero sent them
                decoder=cast("msgspec.json.Decoder[Any]", LenientDecoder(envelope_decoder, "records")),
                cancel=cancel,
            )
        except msgspec.ValidationError:  # JSON, but not an object
            raise XeroMalformedResponse(missing) from None
        if envelope is None:  # 304 Not Modified
            return b"[]", [], {}
        body = bytes(envelope.records)
        if not body.startswith(b"["):
            raise XeroMalformedResponse(missing)
        try:
            decoded = decode_masked(cursor_decoder, body)
            cursors = [(record.id, record.updated) for record in decoded]
        except msgspec.ValidationError:  # an element is not an object: it lands too (and is quarantined)
            cursors = [
                (item.get(entity.id_field), item.get(entity.cursor_field))
                if isinstance(item, dict)
                else (None, None)
                for item in decode_masked(_ANY_DECODER, body)
            ]
        pagination = envelope.pagination if isinstance(envelope.pagination, dict) else {}
        return body, cursors, pagination

    def _log_page(
        self,
        tenant_id: str,
        entity: Entity,
        page: int,
        pass_number: int,
        rows: int,
        page_count: int | None = None,
    ) -> None:
        state = self.limits.get(tenant_id) or RateLimits()
        log.info(
            "Xero %s tenant %s: page %d%s%s, %d rows; calls left this minute %s, today %s",
            entity.path,
            tenant_id,
            page,
            f"/{page_count}" if page_count else "",
            f" (recovery pass {pass_number})" if pass_number > 1 else "",
            rows,
            "?" if state.minute_remaining is None else state.minute_remaining,
            "?" if state.day_remaining is None else state.day_remaining,
        )


@functools.cache
def _page_decoders(
    response_key: str, id_field: str, cursor_field: str
) -> tuple[msgspec.json.Decoder[Any], msgspec.json.Decoder[list[Any]]]:
    """Return the decoders of a page: the envelope (records kept as raw JSON) and each record's id and cursor.

    Both skip every other field without building it, which is what makes a 1,000-record page cheap.
    """
    envelope = msgspec.defstruct(
        "Envelope",
        [
            ("records", msgspec.Raw, msgspec.field(name=response_key, default=msgspec.Raw())),
            ("pagination", Any, None),
        ],
    )
    cursor = msgspec.defstruct(
        "Cursor",
        [
            ("id", Any, msgspec.field(name=id_field, default=None)),
            ("updated", Any, msgspec.field(name=cursor_field, default=None)),
        ],
    )
    return msgspec.json.Decoder(envelope), msgspec.json.Decoder(list[cursor])  # type: ignore[valid-type]


__all__ = [
    "USER_AGENT",
    "Page",
    "RateLimits",
    "Tenant",
    "XeroClient",
    "XeroStop",
    "XeroWait",
    "build_retrying",
    "format_modified_since",
    "is_retryable",
    "parse_retry_after",
    "parse_updated",
    "truncate_to_second",
]
