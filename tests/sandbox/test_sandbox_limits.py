"""Rate limits on the sandbox clock: headers, 429s, windows, concurrency."""

from __future__ import annotations

import threading

import requests

from tests.sandbox.conftest import custom_connection_headers, small_config
from xero_sandbox import Sandbox

API = "/api.xro/2.0"


def test_headers_count_down_and_minute_limit(sb, client, headers):
    h = headers()
    first = client.get(f"{API}/Accounts", headers=h)
    assert first.headers["X-MinLimit-Remaining"] == "59"
    assert first.headers["X-DayLimit-Remaining"] == "4999"
    assert first.headers["X-AppMinLimit-Remaining"] == "9999"
    for _ in range(59):
        last = client.get(f"{API}/Accounts", headers=h)
    assert last.status_code == 200 and last.headers["X-MinLimit-Remaining"] == "0"
    sb.clock.advance(20)
    refused = client.get(f"{API}/Accounts", headers=h)
    assert refused.status_code == 429
    assert refused.headers["X-Rate-Limit-Problem"] == "minute"
    assert refused.headers["Retry-After"] == "40"
    other_tenant = client.get(f"{API}/Accounts", headers=headers(tenant_index=1))
    assert other_tenant.status_code == 200  # limits are per tenant
    sb.clock.advance(40)
    assert client.get(f"{API}/Accounts", headers=h).status_code == 200


def test_day_limit_is_configurable():
    from starlette.testclient import TestClient

    sandbox = Sandbox(small_config(day_limit=3, minute_limit=None))
    with TestClient(sandbox.app) as client:
        h = custom_connection_headers(client, sandbox)
        assert [client.get(f"{API}/Accounts", headers=h).status_code for _ in range(3)] == [200] * 3
        refused = client.get(f"{API}/Accounts", headers=h)
        assert refused.status_code == 429 and refused.headers["X-Rate-Limit-Problem"] == "day"
        assert int(refused.headers["Retry-After"]) == 86400
        assert "X-MinLimit-Remaining" not in refused.headers
        sandbox.clock.advance(86400)
        assert (
            client.get(f"{API}/Accounts", headers=custom_connection_headers(client, sandbox)).status_code
            == 200
        )


def test_limits_can_be_disabled():
    from starlette.testclient import TestClient

    sandbox = Sandbox(small_config().without_limits())
    with TestClient(sandbox.app) as client:
        h = custom_connection_headers(client, sandbox)
        responses = [client.get(f"{API}/Accounts", headers=h) for _ in range(70)]
        assert {r.status_code for r in responses} == {200}
        assert "X-MinLimit-Remaining" not in responses[-1].headers


def test_concurrent_limit(sandbox):
    tokens = requests.post(
        f"{sandbox.url}/connect/token",
        data={"grant_type": "client_credentials"},
        auth=("sandbox-client", "sandbox-secret"),
        timeout=10,
    ).json()
    h = {"Authorization": f"Bearer {tokens['access_token']}", "xero-tenant-id": sandbox.tenants[0].tenant_id}
    sandbox.faults.script("Accounts", nth=1, kind="delay", times=5, seconds=0.6)
    statuses: list[int] = []

    def call() -> None:
        statuses.append(requests.get(f"{sandbox.url}{API}/Accounts", headers=h, timeout=10).status_code)

    threads = [threading.Thread(target=call) for _ in range(5)]
    for thread in threads:
        thread.start()
    deadline = 50
    while sum(1 for _ in sandbox.faults.fired) < 5 and deadline:
        threading.Event().wait(0.02)
        deadline -= 1
    sixth = requests.get(f"{sandbox.url}{API}/Accounts", headers=h, timeout=10)
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200] * 5
    assert sixth.status_code == 429 and sixth.headers["X-Rate-Limit-Problem"] == "concurrent"
