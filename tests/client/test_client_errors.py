"""Status → exception mapping, the retry policy, rate limits and pacing of XeroClient."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
import requests
import urllib3

from tests.client.fakes import API, TENANT, FakeXero
from xero.client import is_retryable, parse_retry_after
from xero.entities import INVOICES, PAYMENTS
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
    XeroUnreachable,
    XeroValidationError,
)

URL = f"{API}/api.xro/2.0/Invoices"
OK = {"json": {"Invoices": [{"InvoiceID": "a", "Total": 12345.67}]}, "status_code": 200}
FINANCIAL = "SECRET-CUSTOMER-NAME"


def problem(status: int, title: str, detail: str) -> dict:
    return {
        "status_code": status,
        "json": {"Type": None, "Title": title, "Status": status, "Detail": detail, "Instance": "abc"},
    }


def get(client, entity=INVOICES):
    return client.request_json("GET", client.accounting_url(entity.path), tenant_id=TENANT, entity=entity)


class TestErrorMapping:
    def test_400_shows_xero_validation_messages_only(self, requests_mock, make_client) -> None:
        body = {
            "ErrorNumber": 10,
            "Type": "ValidationException",
            "Message": "A validation exception occurred",
            "Elements": [
                {
                    "Contact": {"Name": FINANCIAL},
                    "Total": 99999.99,
                    "ValidationErrors": [{"Message": "Invoice not of valid status for modification"}],
                }
            ],
        }
        requests_mock.get(URL, status_code=400, json=body, headers={"Xero-Correlation-Id": "corr-1"})
        with pytest.raises(XeroValidationError) as info:
            get(make_client())
        text = str(info.value)
        assert "HTTP 400" in text and "Invoice not of valid status for modification" in text
        assert "A validation exception occurred" in text and "corr-1" in text
        assert FINANCIAL not in text and "99999" not in text
        assert info.value.messages == [
            "A validation exception occurred",
            "Invoice not of valid status for modification",
        ]
        assert requests_mock.call_count == 1

    def test_401_authorization_unsuccessful_names_the_missing_scope(self, requests_mock, make_client) -> None:
        requests_mock.get(
            f"{API}/api.xro/2.0/Payments", **problem(401, "Unauthorized", "AuthorizationUnsuccessful")
        )
        with pytest.raises(XeroAuthError) as info:
            get(make_client(), PAYMENTS)
        assert "accounting.payments.read" in str(info.value) and "consent" in str(info.value)
        assert info.value.status == 401

    def test_401_names_the_broad_scope_for_broad_connections(self, requests_mock, make_client) -> None:
        requests_mock.get(
            f"{API}/api.xro/2.0/Payments", **problem(401, "Unauthorized", "AuthorizationUnsuccessful")
        )
        with pytest.raises(XeroAuthError, match=r"accounting\.transactions\.read"):
            get(make_client(scopes="broad"), PAYMENTS)

    def test_403_authentication_unsuccessful_is_a_disconnected_tenant(
        self, requests_mock, make_client
    ) -> None:
        requests_mock.get(URL, **problem(403, "Forbidden", "AuthenticationUnsuccessful"))
        with pytest.raises(XeroAuthError) as info:
            get(make_client())
        text = str(info.value)
        assert "HTTP 403" in text and TENANT in text and "not connected" in text and "tenant_ids" in text
        assert requests_mock.call_count == 1

    @pytest.mark.parametrize(
        ("response", "exc_type", "fragment"),
        [
            pytest.param({"status_code": 404, "text": "Not Found"}, XeroNotFoundError, "HTTP 404", id="404"),
            pytest.param({"status_code": 412, "text": ""}, XeroClientError, "HTTP 412", id="412"),
            pytest.param(
                {
                    "status_code": 503,
                    "text": "The Organisation is offline",
                    "headers": {"Content-Type": "text/plain"},
                },
                XeroOrganisationOffline,
                "The Organisation is offline",
                id="503-offline",
            ),
            pytest.param(
                problem(500, "An error occurred", "An error occurred in Xero. Check the API Status page"),
                XeroServerError,
                "An error occurred in Xero",
                id="500",
            ),
        ],
    )
    def test_status_maps_to_exception(self, requests_mock, make_client, response, exc_type, fragment) -> None:
        requests_mock.get(URL, **response)
        with pytest.raises(exc_type) as info:
            get(make_client(retry={"max_failures": 2}))
        assert fragment in str(info.value)
        assert info.value.status == response["status_code"]

    def test_server_error_message_never_contains_a_json_body(self, requests_mock, make_client) -> None:
        requests_mock.get(URL, status_code=502, json={"Invoices": [{"Contact": {"Name": FINANCIAL}}]})
        with pytest.raises(XeroServerError) as info:
            get(make_client(retry={"max_failures": 1}))
        assert FINANCIAL not in str(info.value)


class TestRetries:
    @pytest.mark.parametrize(
        "failure",
        [
            pytest.param({"status_code": 500, "json": {"Title": "An error occurred"}}, id="500"),
            pytest.param({"status_code": 503, "text": "The Xero API is temporarily unavailable"}, id="503"),
            pytest.param(
                {"exc": requests.exceptions.ConnectionError("Connection reset by peer")}, id="reset"
            ),
            pytest.param({"exc": requests.exceptions.ReadTimeout("read timed out")}, id="timeout"),
            pytest.param(
                {"exc": requests.exceptions.ConnectTimeout("connect timed out")}, id="connect-timeout"
            ),
            pytest.param({"exc": requests.exceptions.ChunkedEncodingError("truncated")}, id="truncated-body"),
            pytest.param(
                {"status_code": 200, "text": '{"Invoices": [{"InvoiceID": "a"'}, id="truncated-json"
            ),
            pytest.param({"status_code": 200, "text": "<html>gateway</html>"}, id="not-json"),
        ],
    )
    def test_transient_failures_are_retried(self, requests_mock, make_client, sleeps, failure) -> None:
        requests_mock.get(URL, [failure, failure, OK])
        client = make_client()
        assert get(client) == OK["json"]
        assert requests_mock.call_count == 3
        assert client.calls[TENANT] == 3
        assert sleeps == [0, 0]

    def test_retries_are_bounded(self, requests_mock, make_client) -> None:
        requests_mock.get(URL, status_code=200, text="{truncated")
        with pytest.raises(XeroMalformedResponse, match="not valid JSON"):
            get(make_client(retry={"max_failures": 4}))
        assert requests_mock.call_count == 4

    @pytest.mark.parametrize(
        "response",
        [
            pytest.param(problem(401, "Unauthorized", "AuthorizationUnsuccessful"), id="401"),
            pytest.param({"status_code": 400, "json": {"Message": "bad"}}, id="400"),
            pytest.param({"status_code": 404}, id="404"),
        ],
    )
    def test_client_errors_are_not_retried(self, requests_mock, make_client, response) -> None:
        requests_mock.get(URL, **response)
        with pytest.raises(Exception):  # noqa: B017 - the type is asserted in TestErrorMapping
            get(make_client())
        assert requests_mock.call_count == 1

    def test_offline_organisation_raises_at_once_without_holding_the_worker(
        self, requests_mock, make_client, sleeps
    ) -> None:
        offline = {"status_code": 503, "text": "The Organisation is offline"}
        requests_mock.get(URL, [offline, OK])
        with pytest.raises(XeroOrganisationOffline, match="The Organisation is offline"):
            get(make_client())
        assert requests_mock.call_count == 1 and sleeps == []

    def test_offline_organisation_can_be_waited_for_in_process(
        self, requests_mock, make_client, sleeps
    ) -> None:
        offline = {"status_code": 503, "text": "The Organisation is offline"}
        requests_mock.get(URL, [offline, OK])
        assert get(make_client(retry={"max_offline_waits": 1})) == OK["json"]
        assert sleeps == [300.0]

    def test_an_unreachable_api_url_is_retried_in_the_call_then_named(
        self, requests_mock, make_client, sleeps
    ) -> None:
        refused = urllib3.exceptions.NewConnectionError(None, "Failed to establish a new connection: refused")
        error = requests.exceptions.ConnectionError(urllib3.exceptions.MaxRetryError(None, URL, refused))
        requests_mock.get(URL, exc=error)
        with pytest.raises(XeroUnreachable) as info:
            get(make_client(retry={"max_failures": 3}, conn_id="xero_prod"))
        assert requests_mock.call_count == 3 and sleeps == [0, 0]
        assert info.value.permanent and info.value.field == "api_url" and info.value.url == API
        assert str(info.value).startswith(
            f"Xero connection 'xero_prod': cannot reach {API} (the connection was"
        )
        assert "'api_url'" in str(info.value)

    def test_a_web_page_instead_of_the_api_fails_at_once_naming_api_url(
        self, requests_mock, make_client
    ) -> None:
        requests_mock.get(
            URL, text="<html>Welcome</html>", headers={"Content-Type": "text/html; charset=utf-8"}
        )
        with pytest.raises(XeroConfigError) as info:
            get(make_client(conn_id="xero_prod"))
        assert requests_mock.call_count == 1
        assert info.value.permanent and info.value.field == "api_url" and "xero_prod" in str(info.value)

    def test_a_gateway_error_page_is_still_retried(self, requests_mock, make_client) -> None:
        page = {
            "status_code": 502,
            "text": "<html>Bad gateway</html>",
            "headers": {"Content-Type": "text/html"},
        }
        requests_mock.get(URL, [page, OK])
        assert get(make_client()) == OK["json"]

    def test_predicate(self) -> None:
        assert is_retryable(XeroUnreachable("x", field="api_url", url=API))
        assert is_retryable(XeroServerError("x"))
        assert is_retryable(XeroRateLimitError("x", problem="minute"))
        assert not is_retryable(XeroDailyLimitReached("x", problem="day"))
        assert not is_retryable(XeroAuthError("x"))
        assert not is_retryable(ValueError("x"))


class TestRateLimits:
    def test_minute_429_waits_retry_after_and_is_not_a_failure(
        self, requests_mock, make_client, sleeps
    ) -> None:
        limited = {
            "status_code": 429,
            "headers": {"Retry-After": "7", "X-Rate-Limit-Problem": "Minute", "X-MinLimit-Remaining": "0"},
        }
        requests_mock.get(URL, [limited] * 6 + [OK])
        client = make_client(retry={"max_failures": 2})
        assert get(client) == OK["json"]
        assert sleeps == [7.0] * 6
        assert requests_mock.call_count == 7

    def test_minute_429_without_retry_after_waits_a_window(self, requests_mock, make_client, sleeps) -> None:
        requests_mock.get(URL, [{"status_code": 429, "headers": {"X-Rate-Limit-Problem": "minute"}}, OK])
        get(make_client())
        assert sleeps == [60.0]

    def test_daily_429_raises_at_once_with_a_resume_time(self, requests_mock, make_client, sleeps) -> None:
        requests_mock.get(
            URL, status_code=429, headers={"Retry-After": "66975", "X-Rate-Limit-Problem": "day"}
        )
        with pytest.raises(XeroDailyLimitReached) as info:
            get(make_client())
        exc = info.value
        assert exc.retry_after == 66975
        assert exc.resume_at == datetime.fromtimestamp(1_700_000_000 + 66975, UTC)
        assert "daily call limit" in str(exc) and "resume after" in str(exc)
        assert requests_mock.call_count == 1 and sleeps == []

    def test_headers_are_kept_and_a_spent_minute_is_waited_out(
        self, requests_mock, make_client, sleeps
    ) -> None:
        fake = FakeXero(INVOICES, 2500)
        fake.limit_headers = {
            "X-MinLimit-Remaining": "0",
            "X-DayLimit-Remaining": "4321",
            "X-AppMinLimit-Remaining": "9000",
        }
        requests_mock.get(URL, text=fake)
        now = [1_700_000_000.0]
        client = make_client(clock=lambda: now[0])

        pages = list(client.iter_pages(TENANT, INVOICES, None))

        assert len(pages) == 3
        assert client.limits[TENANT].day_remaining == 4321
        assert client.limits[TENANT].minute_remaining == 0
        assert client.app_minute_remaining == 9000
        assert sleeps == [60.5, 60.5]  # the window and a margin, before the 2nd and 3rd call only

    def test_spent_daily_allowance_stops_before_the_next_call(self, requests_mock, make_client) -> None:
        fake = FakeXero(INVOICES, 2500)
        fake.limit_headers = {"X-MinLimit-Remaining": "50", "X-DayLimit-Remaining": "0"}
        requests_mock.get(URL, text=fake)
        iterator = make_client().iter_pages(TENANT, INVOICES, None)
        next(iterator)
        with pytest.raises(XeroDailyLimitReached, match="X-DayLimit-Remaining: 0"):
            next(iterator)
        assert requests_mock.call_count == 1

    @pytest.mark.parametrize(
        ("value", "expected"),
        [("30", 30.0), ("1.5", 1.5), (None, None), ("soon", None), ("Wed, 21 Oct 2015 07:28:30 GMT", 30.0)],
    )
    def test_parse_retry_after(self, value, expected) -> None:
        now = datetime(2015, 10, 21, 7, 28, 0, tzinfo=UTC)
        assert parse_retry_after(value, now) == expected


class TestTokenExpiry:
    def test_401_token_expired_refreshes_once_and_resends(self, requests_mock, make_client, tokens) -> None:
        expired = problem(401, "Unauthorized", "TokenExpired: token expired at 02/20/2025 08:32:50")
        requests_mock.get(URL, [expired, OK])
        client = make_client()
        assert get(client) == OK["json"]
        auth = [r.headers["Authorization"] for r in requests_mock.request_history]
        assert auth == ["Bearer access-1", "Bearer access-2"]
        assert tokens.refreshes == ["access-1"]

    def test_a_second_token_expired_is_an_auth_error(self, requests_mock, make_client, tokens) -> None:
        expired = problem(401, "Unauthorized", "TokenExpired: token expired")
        requests_mock.get(URL, [expired, expired, OK])
        with pytest.raises(XeroAuthError, match="expired"):
            get(make_client())
        assert requests_mock.call_count == 2
        assert len(tokens.refreshes) == 1


def test_tokens_never_appear_in_errors(requests_mock, make_client) -> None:
    requests_mock.get(URL, **problem(401, "Unauthorized", "AuthorizationUnsuccessful"))
    with pytest.raises(XeroAuthError) as info:
        get(make_client())
    assert "access-1" not in str(info.value) and "access-1" not in repr(info.value)
    assert "access-1" not in json.dumps(vars(info.value), default=str)
