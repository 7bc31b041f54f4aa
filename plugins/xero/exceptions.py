"""Exceptions raised by the Xero integration.

This module owns the error hierarchy only. Every message carries what an operator needs (HTTP status,
Xero's Title/Detail/Message, the tenant and endpoint) and never a token, a client secret or the body of
a response holding financial data.
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
    """The Xero connection is configured wrongly; the message names the field."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"Xero connection field {field!r}: {problem}")
        self.field = field


class XeroAuthError(XeroError):
    """Authentication or authorisation failed (401/403, or the token endpoint refused).

    The message says what to do: name the missing scope, re-run the consent step, reconnect the tenant.
    """


class XeroTokenExpired(XeroAuthError):
    """The access token was rejected as expired (401 ``TokenExpired``); refreshing it once may help."""


class XeroValidationError(XeroError):
    """Xero rejected the request as invalid (400), with its validation messages.

    :param messages: Xero's ``Message`` and ``ValidationErrors[].Message`` texts.
    """

    def __init__(self, message: str, *, messages: list[str] | None = None, **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.messages = list(messages or [])


class XeroNotFoundError(XeroError):
    """The resource does not exist (404), or the URL was too long."""


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
