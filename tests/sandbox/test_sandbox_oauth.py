"""OAuth flows, token lifetimes, scopes, tenants and connections."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest

from tests.sandbox.conftest import token_pair
from xero.hooks import parse_connection_config
from xero_sandbox import airflow_connection

CLIENT = ("sandbox-client", "sandbox-secret")
REDIRECT = "http://localhost:8080/callback"


def _authorize(client, scope="openid offline_access accounting.invoices.read", **extra):
    params = {
        "response_type": "code",
        "client_id": "sandbox-client",
        "redirect_uri": REDIRECT,
        "scope": scope,
        "state": "xyz",
        **extra,
    }
    return client.get("/identity/connect/authorize", params=params)


def test_authorization_code_flow(sb, client):
    response = _authorize(client)
    assert response.status_code == 302
    location = urlparse(response.headers["location"])
    query = parse_qs(location.query)
    assert location.geturl().startswith(REDIRECT) and query["state"] == ["xyz"]
    form = {
        "grant_type": "authorization_code",
        "code": query["code"][0],
        "redirect_uri": REDIRECT,
        "client_id": CLIENT[0],
        "client_secret": CLIENT[1],
    }
    tokens = client.post("/connect/token", data=form).json()
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] == 1800 and tokens["refresh_token"]
    again = client.post("/connect/token", data=form)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def test_no_refresh_token_without_offline_access(client):
    location = _authorize(client, scope="accounting.invoices.read").headers["location"]
    code = parse_qs(urlparse(location).query)["code"][0]
    tokens = client.post(
        "/connect/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT},
        auth=CLIENT,
    ).json()
    assert "access_token" in tokens and "refresh_token" not in tokens


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        pytest.param({"client_id": "other"}, 400, id="unknown-client"),
        pytest.param({"response_type": "token"}, 302, id="bad-response-type"),
        pytest.param({"scope": "accounting.everything"}, 302, id="unknown-scope"),
    ],
)
def test_authorize_validates(client, overrides, expected):
    response = _authorize(client, **overrides)
    assert response.status_code == expected
    if expected == 302:
        assert "error=" in response.headers["location"] and "code=" not in response.headers["location"]


def test_refresh_rotation_grace_and_reuse(sb, client):
    first = sb.issue_refresh_token()
    pair = token_pair(client, first)
    assert pair["refresh_token"] != first
    sb.clock.advance(29 * 60)
    retry = token_pair(client, first)  # lost response: the old token within grace returns the same pair
    assert retry["refresh_token"] == pair["refresh_token"] and retry["access_token"] == pair["access_token"]
    sb.clock.advance(2 * 60)
    late = client.post(
        "/connect/token", data={"grant_type": "refresh_token", "refresh_token": first}, auth=CLIENT
    )
    assert late.status_code == 400 and late.json() == {"error": "invalid_grant"}
    second = token_pair(client, pair["refresh_token"])
    assert second["refresh_token"] not in (first, pair["refresh_token"])
    reuse = client.post(
        "/connect/token", data={"grant_type": "refresh_token", "refresh_token": first}, auth=CLIENT
    )
    assert reuse.status_code == 400


def test_old_token_is_refused_once_its_successor_is_spent(sb, client):
    first = sb.issue_refresh_token()
    pair = token_pair(client, first)
    token_pair(client, pair["refresh_token"])
    stale = client.post(
        "/connect/token", data={"grant_type": "refresh_token", "refresh_token": first}, auth=CLIENT
    )
    assert stale.status_code == 400


def test_unused_refresh_token_expires_after_60_days(sb, client):
    token = sb.issue_refresh_token()
    sb.clock.advance(61 * 86400)
    response = client.post(
        "/connect/token", data={"grant_type": "refresh_token", "refresh_token": token}, auth=CLIENT
    )
    assert response.json() == {"error": "invalid_grant"}


def test_wrong_client_secret(sb, client):
    response = client.post(
        "/connect/token",
        data={"grant_type": "refresh_token", "refresh_token": sb.issue_refresh_token()},
        auth=("sandbox-client", "nope"),
    )
    assert response.status_code == 400 and response.json()["error"] == "invalid_client"


def test_client_credentials_reaches_one_tenant(sb, client):
    tokens = client.post(
        "/connect/token",
        data={"grant_type": "client_credentials", "scope": "accounting.invoices.read offline_access"},
        auth=CLIENT,
    ).json()
    assert "refresh_token" not in tokens
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    connections = client.get("/connections", headers=bearer).json()
    assert [c["tenantId"] for c in connections] == [sb.tenants[0].tenant_id]
    other = client.get("/api.xro/2.0/Invoices", headers={**bearer, "xero-tenant-id": sb.tenants[1].tenant_id})
    assert other.status_code == 403


def test_access_token_expires_after_30_minutes(sb, client, headers):
    h = headers()
    assert client.get("/api.xro/2.0/Accounts", headers=h).status_code == 200
    sb.clock.advance(30 * 60)
    response = client.get("/api.xro/2.0/Accounts", headers=h)
    assert response.status_code == 401
    assert response.json()["Detail"].startswith("TokenExpired: token expired at ")
    assert response.json()["Title"] == "Unauthorized"


@pytest.mark.parametrize(
    ("scopes", "endpoint", "status"),
    [
        pytest.param(["accounting.invoices.read"], "Invoices", 200, id="granular"),
        pytest.param(["accounting.transactions.read"], "Invoices", 200, id="broad"),
        pytest.param(["accounting.transactions"], "Payments", 200, id="broad-write-includes-read"),
        pytest.param(["accounting.payments.read"], "Invoices", 401, id="other-granular"),
        pytest.param(["accounting.invoices.read"], "Contacts", 401, id="contacts-missing"),
        pytest.param(["accounting.contacts.read"], "Organisation", 401, id="settings-missing"),
        pytest.param(["accounting.settings.read"], "Accounts", 200, id="settings"),
    ],
)
def test_scopes_are_enforced(client, headers, scopes, endpoint, status):
    response = client.get(f"/api.xro/2.0/{endpoint}", headers=headers(scopes=scopes))
    assert response.status_code == status
    if status == 401:
        assert response.json()["Detail"] == "AuthorizationUnsuccessful"


def test_tenant_header_required_and_checked(client, headers):
    h = headers()
    missing = client.get(
        "/api.xro/2.0/Accounts", headers={k: v for k, v in h.items() if k != "xero-tenant-id"}
    )
    assert missing.status_code == 400
    unknown = client.get("/api.xro/2.0/Accounts", headers={**h, "xero-tenant-id": "not-a-tenant"})
    assert unknown.status_code == 403 and unknown.json()["Detail"] == "AuthenticationUnsuccessful"
    anonymous = client.get("/api.xro/2.0/Accounts", headers={"xero-tenant-id": h["xero-tenant-id"]})
    assert anonymous.status_code == 401


def test_disconnect_tenant(sb, client, headers):
    h = headers(tenant_index=1)
    bearer = {"Authorization": h["Authorization"]}
    connections = client.get("/connections", headers=bearer).json()
    target = next(c for c in connections if c["tenantId"] == sb.tenants[1].tenant_id)
    assert client.delete(f"/connections/{target['id']}", headers=bearer).status_code == 204
    assert target["id"] not in {c["id"] for c in client.get("/connections", headers=bearer).json()}
    response = client.get("/api.xro/2.0/Invoices", headers=h)
    assert response.status_code == 403 and response.json()["Detail"] == "AuthenticationUnsuccessful"
    assert client.delete(f"/connections/{target['id']}", headers=bearer).status_code == 404


def test_requests_never_record_the_authorization_header(sb, client, headers):
    h = headers()
    client.get("/api.xro/2.0/Accounts", headers={**h, "If-Modified-Since": "2025-01-01T00:00:00"})
    record = sb.requests[-1]
    assert record.path == "/api.xro/2.0/Accounts" and record.status == 200
    assert record.tenant_id == sb.tenants[0].tenant_id and record.if_modified_since == "2025-01-01T00:00:00"
    assert h["Authorization"].split()[1] not in repr(sb.requests)


def test_airflow_connection_is_a_valid_xero_connection_on_the_sandbox(tmp_path):
    url = "http://127.0.0.1:8765"
    conn = airflow_connection(
        url, client_id=CLIENT[0], client_secret=CLIENT[1], token_file=tmp_path / "t.json", page_size=25
    )
    assert conn["conn_type"] == "xero" and "authorize_url" not in conn["extra"]
    config = parse_connection_config("xero_default", conn["login"], conn["password"], conn["extra"])
    assert (config.client_id, config.client_secret) == CLIENT
    assert (config.api_url, config.identity_url) == (url, url)
    assert config.token_store == f"file:{tmp_path / 't.json'}" and config.page_size == 25
    assert config.refresh_token is None

    conn = airflow_connection(
        url,
        client_id=CLIENT[0],
        client_secret=CLIENT[1],
        token_file=str(tmp_path / "t.json"),
        refresh_token="rt",
        authorize=True,
    )
    config = parse_connection_config("xero_default", conn["login"], conn["password"], conn["extra"])
    assert config.authorize_url == f"{url}/connect/authorize" and config.refresh_token == "rt"
