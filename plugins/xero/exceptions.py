"""Exceptions raised by the Xero integration.

This module owns the error hierarchy only. Every message carries what an operator needs (HTTP status,
Xero's Title/Detail/Message, the tenant and endpoint) and never a token, a client secret or the body of
a response holding financial data.

Errors that cannot fix themselves (a wrong client secret, a revoked grant, a missing scope, a tenant that
is not connected, an unreachable or wrong URL, a bad warehouse connection) are marked ``permanent``: the
operators fail the task at once instead of letting Airflow retry it for minutes
(:func:`xero.operators.fail_fast`). Their message names the connection and the setting to fix.
"""

from __future__ import annotations

from datetime import datetime


class XeroError(Exception):
    """Base class of every error raised by the Xero integration.

    :param message: human-readable explanation (no secrets, no financial data).
    :param status: HTTP status of the response that caused it, if any.
    :param title: Xero's ``Title`` (or ``Type``) of the error, if it sent one.
    :param detail: Xero's ``Detail`` (or ``Message``) of the error, if it sent one.
    """

    #: Whether retrying cannot help (a setting must change first): the task then fails without retries.
    permanent: bool = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        title: str | None = None,
        detail: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.title = title
        self.detail = detail


class XeroConfigError(XeroError, ValueError):
    """The Xero connection is configured wrongly; the message names the connection and the field.

    :param field: the connection field (``password``, an extra such as ``oauth_store``…).
    :param problem: what is wrong and how to fix it.
    :param conn_id: the connection id, when known.
    """

    permanent = True

    def __init__(self, field: str, problem: str, *, conn_id: str | None = None) -> None:
        where = (
            f"Xero connection {conn_id!r}, field {field!r}" if conn_id else f"Xero connection field {field!r}"
        )
        super().__init__(f"{where}: {problem}")
        self.field = field
        self.problem = problem
        self.conn_id = conn_id


class XeroAuthError(XeroError):
    """Authentication or authorisation failed (401/403, or the token endpoint refused).

    The message says what to do: name the missing scope, re-run the consent step, reconnect the tenant.
    """

    permanent = True


class XeroTokenExpired(XeroAuthError):
    """The access token was rejected as expired (401 ``TokenExpired``); refreshing it once may help."""

    permanent = False


class XeroTokenLockError(XeroAuthError):
    """The token refresh lock could not be taken in time, or its server could not be reached (may pass)."""

    permanent = False


class XeroUnreachable(XeroError):
    """A Xero URL of the connection did not answer (refused, unknown host, connect timeout).

    Retried a few times within the request, then the task fails naming the URL and its setting.

    :param field: the connection setting holding the URL (``api_url`` or ``identity_url``).
    :param url: the URL that did not answer.
    """

    permanent = True

    def __init__(self, message: str, *, field: str, url: str) -> None:
        super().__init__(message)
        self.field = field
        self.url = url


class XeroWarehouseError(XeroError):
    """The warehouse connection cannot be used (missing, unreachable, a bad or read-only DuckDB path).

    :param conn_id: the warehouse connection id.
    """

    permanent = True

    def __init__(self, message: str, *, conn_id: str) -> None:
        super().__init__(message)
        self.conn_id = conn_id


class XeroValidationError(XeroError):
    """Xero rejected the request as invalid (400), with its validation messages.

    :param messages: Xero's ``Message`` and ``ValidationErrors[].Message`` texts.
    """

    def __init__(self, message: str, *, messages: list[str] | None = None, **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.messages = list(messages or [])


class XeroNotFoundError(XeroError):
    """The resource does not exist (404), or the URL was too long, or ``api_url`` is not Xero's API."""

    permanent = True


class XeroClientError(XeroError):
    """Any other 4xx response that is not retried."""


class XeroRateLimitError(XeroError):
    """A rate limit was hit (429). The minute limits are waited out and retried.

    :param problem: Xero's ``X-Rate-Limit-Problem`` header, lower-cased (``minute``, ``day``, ...).
    :param retry_after: seconds Xero asked us to wait, if it said.
    """

    def __init__(
        self, message: str, *, problem: str = "", retry_after: float | None = None, **kwargs
    ) -> None:
        super().__init__(message, **kwargs)
        self.problem = problem
        self.retry_after = retry_after


class XeroDailyLimitReached(XeroRateLimitError):
    """The tenant's daily call limit is spent: stop this tenant cleanly and resume on a later run.

    :param resume_at: earliest UTC time at which calls are allowed again, when Xero said.
    """

    def __init__(self, message: str, *, resume_at: datetime | None = None, **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.resume_at = resume_at


class XeroServerError(XeroError):
    """Xero failed on its side (5xx); retried with backoff."""


class XeroOrganisationOffline(XeroServerError):
    """503 "The Organisation is offline": one organisation is unavailable, usually for minutes."""


class XeroMalformedResponse(XeroError):
    """A response body could not be read as the JSON Xero promises (truncated or not JSON)."""


class XeroPagingError(XeroError):
    """Paging could not reach a stable result (data kept changing across every recovery pass)."""


def unreachable(exc: BaseException, *, field: str, url: str, conn_id: str) -> XeroUnreachable | None:
    """Return the error naming ``url`` and its setting when ``exc`` is a connection that never opened.

    A connection refused, a host name that does not resolve or a connect timeout mean the URL (or the
    network) is wrong; a connection reset once the request was sent is not one of them (``None``).

    :param exc: what ``requests`` raised.
    :param field: the connection setting holding the URL (``api_url`` or ``identity_url``).
    :param url: the base URL of that setting.
    :param conn_id: the Xero connection.
    """
    import requests
    import urllib3.exceptions

    if not isinstance(exc, requests.ConnectionError):
        return None
    reason: object = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)  # urllib3's MaxRetryError wraps the cause
    if isinstance(reason, urllib3.exceptions.NameResolutionError):
        kind = "its host name does not resolve"
    elif isinstance(reason, urllib3.exceptions.NewConnectionError):  # a subclass of ConnectTimeoutError
        kind = "the connection was refused"
    elif isinstance(exc, requests.ConnectTimeout) or isinstance(
        reason, urllib3.exceptions.ConnectTimeoutError
    ):
        kind = "the connection timed out"
    else:
        return None
    return XeroUnreachable(
        f"Xero connection {conn_id!r}: cannot reach {url} ({kind}); check the connection's {field!r} "
        "and that the worker can reach it",
        field=field,
        url=url,
    )
