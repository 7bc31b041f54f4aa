"""Every fault kind, scripted by request number, and seeded random faults."""

from __future__ import annotations

import json

import pytest
import requests

from tests.sandbox.conftest import token_pair
from xero_sandbox import FAULT_KINDS

API = "/api.xro/2.0"


def test_nth_request_gets_the_fault(sb, client, headers):
    h = headers()
    sb.faults.script("Invoices", nth=3, kind="503_org_offline")
    statuses = [client.get(f"{API}/Invoices", params={"page": 1}, headers=h).status_code for _ in range(4)]
    assert statuses == [200, 200, 503, 200]
    assert sb.requests[-2].fault == "503_org_offline" and sb.requests[-2].status == 503


def test_other_endpoints_do_not_count(sb, client, headers):
    h = headers()
    sb.faults.script("Invoices", nth=1, kind="500")
    assert client.get(f"{API}/Contacts", headers=h).status_code == 200
    assert client.get(f"{API}/Invoices", headers=h).status_code == 500


@pytest.mark.parametrize(
    ("kind", "status", "check"),
    [
        pytest.param(
            "429_minute",
            429,
            lambda r: r.headers["X-Rate-Limit-Problem"] == "minute" and int(r.headers["Retry-After"]) <= 60,
            id="429-minute",
        ),
        pytest.param(
            "429_day",
            429,
            lambda r: r.headers["X-Rate-Limit-Problem"] == "day" and int(r.headers["Retry-After"]) > 60,
            id="429-day",
        ),
        pytest.param("500", 500, lambda r: r.json()["Title"] == "An error occurred", id="500"),
        pytest.param(
            "503_org_offline",
            503,
            lambda r: (
                r.text == "The Organisation is offline" and r.headers["content-type"].startswith("text/plain")
            ),
            id="503",
        ),
        pytest.param(
            "token_expired", 401, lambda r: r.json()["Detail"].startswith("TokenExpired"), id="expired"
        ),
    ],
)
def test_status_faults(sb, client, headers, kind, status, check):
    h = headers()
    client.get(f"{API}/Accounts", headers=h)
    sb.faults.script("Accounts", nth=1, kind=kind)
    response = client.get(f"{API}/Accounts", headers=h)
    assert response.status_code == status
    assert check(response)


def test_token_expiry_sticks(sb, client, headers):
    h = headers()
    sb.faults.script("*", nth=1, kind="token_expired")
    assert client.get(f"{API}/Contacts", headers=h).status_code == 401
    assert client.get(f"{API}/Contacts", headers=h).status_code == 401
    assert client.get(f"{API}/Contacts", headers=headers()).status_code == 200


@pytest.mark.parametrize("kind", ["malformed_json", "truncated_json"])
def test_broken_bodies(sb, client, headers, kind):
    h = headers()
    sb.faults.script("Invoices", nth=1, kind=kind)
    response = client.get(f"{API}/Invoices", params={"page": 1}, headers=h)
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.text)


def test_refresh_fails_within_grace(sb, client):
    token = sb.issue_refresh_token()
    sb.faults.script("token", nth=1, kind="refresh_invalid_grant")
    failed = client.post(
        "/connect/token",
        data={"grant_type": "refresh_token", "refresh_token": token},
        auth=("sandbox-client", "sandbox-secret"),
    )
    assert failed.status_code == 400 and failed.json() == {"error": "invalid_grant"}
    assert token_pair(client, token)["refresh_token"]  # the token was not spent by the failure


def _naive_sync(client, h, page_size=50):
    seen, page = [], 1
    while True:
        body = client.get(f"{API}/Invoices", params={"page": page, "pageSize": page_size}, headers=h).json()
        seen.extend(r["InvoiceID"] for r in body["Invoices"])
        if len(body["Invoices"]) < page_size:
            return seen
        page += 1


def test_update_between_pages_makes_naive_paging_skip_a_record(sb, client, headers):
    h = headers()
    everything = {r["InvoiceID"] for r in sb.records(sb.tenants[0].tenant_id, "invoices")}
    sb.faults.script("Invoices", nth=2, kind="update_between_pages")
    seen = _naive_sync(client, h)
    assert len(everything - set(seen)) == 1  # the classic offset-paging skip
    assert len(seen) - len(set(seen)) == 1  # and the moved record is seen twice
    assert len(set(seen)) == len(everything) - 1


def test_duplicate_record_on_two_pages(sb, client, headers):
    h = headers()
    everything = {r["InvoiceID"] for r in sb.records(sb.tenants[0].tenant_id, "invoices")}
    sb.faults.script("Invoices", nth=2, kind="duplicate_record")
    seen = _naive_sync(client, h)
    assert set(seen) == everything and len(seen) == len(everything) + 1


def test_delay_hangs_past_a_client_timeout(sandbox):
    token = sandbox.issue_refresh_token()
    pair = requests.post(
        f"{sandbox.url}/connect/token",
        data={"grant_type": "refresh_token", "refresh_token": token},
        auth=("sandbox-client", "sandbox-secret"),
        timeout=10,
    ).json()
    h = {"Authorization": f"Bearer {pair['access_token']}", "xero-tenant-id": sandbox.tenants[0].tenant_id}
    sandbox.faults.script("Accounts", nth=1, kind="delay", seconds=1.0)
    with pytest.raises(requests.Timeout):
        requests.get(f"{sandbox.url}{API}/Accounts", headers=h, timeout=0.2)
    assert requests.get(f"{sandbox.url}{API}/Accounts", headers=h, timeout=5).status_code == 200


def test_reset_drops_the_connection(sandbox):
    tokens = requests.post(
        f"{sandbox.url}/connect/token",
        data={"grant_type": "client_credentials"},
        auth=("sandbox-client", "sandbox-secret"),
        timeout=10,
    ).json()
    h = {"Authorization": f"Bearer {tokens['access_token']}", "xero-tenant-id": sandbox.tenants[0].tenant_id}
    sandbox.faults.script("Invoices", nth=1, kind="reset")
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{sandbox.url}{API}/Invoices", params={"page": 1}, headers=h, timeout=5)
    dropped = [r for r in sandbox.requests if r.fault == "reset"]
    assert dropped and dropped[0].status == 0
    assert (
        requests.get(f"{sandbox.url}{API}/Invoices", params={"page": 1}, headers=h, timeout=5).status_code
        == 200
    )


def test_random_faults_are_seeded(sb, client, headers):
    h = headers()

    def run() -> list[int]:
        sb.faults.clear()
        sb.faults.random(seed=11, rate=0.3, kinds=["500", "503_org_offline", "429_minute"])
        return [client.get(f"{API}/Contacts", headers=h).status_code for _ in range(30)]

    first, second = run(), run()
    sb.limits.reset()
    assert first == second
    assert 0 < sum(s != 200 for s in first) < 30
    assert set(first) <= {200, 500, 503, 429}


def test_unknown_kind_is_rejected(sb):
    with pytest.raises(ValueError, match="unknown fault kind"):
        sb.faults.script("Invoices", kind="gremlins")
    assert "update_between_pages" in FAULT_KINDS
