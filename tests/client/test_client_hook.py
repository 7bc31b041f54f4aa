"""XeroHook: connection parsing, UI fields, tenants, paging through the hook, test_connection."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import tenacity
from airflow.sdk import Connection

from tests.client.fakes import API, CLIENT_ID, CLIENT_SECRET, IDENTITY, TENANT, TOKEN_URL, FakeXero
from xero.entities import INVOICES
from xero.exceptions import XeroConfigError
from xero.hooks import XeroHook, parse_connection_config

OTHER_TENANT = "99999999-2222-3333-4444-555555555555"
CONNECTIONS = [
    {"id": "c1", "tenantId": TENANT, "tenantType": "ORGANISATION", "tenantName": "Demo Company (AU)"},
    {"id": "c2", "tenantId": OTHER_TENANT, "tenantType": "ORGANISATION", "tenantName": "Second Org"},
]


def set_connection(monkeypatch, tmp_path, conn_id: str = "xero_default", **extra: Any) -> None:
    options = {"api_url": API, "identity_url": IDENTITY, "token_store": f"file:{tmp_path / 'tokens.json'}"}
    options.update(extra)
    conn = Connection(
        conn_id=conn_id,
        conn_type="xero",
        login=CLIENT_ID,
        password=CLIENT_SECRET,
        extra=json.dumps(options),
    )
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", conn.as_json())


def hook(**kwargs: Any) -> XeroHook:
    sleeps: list[float] = []
    return XeroHook(
        sleep=sleeps.append, retry_wait=tenacity.wait_none(), clock=lambda: 1_700_000_000.0, **kwargs
    )


@pytest.fixture
def identity(requests_mock) -> list[dict]:
    calls: list[dict] = []

    def token(request, context):
        calls.append({"body": request.text})
        return {"access_token": "at-hook-1", "refresh_token": "rt-hook-1", "expires_in": 1800}

    requests_mock.post(TOKEN_URL, json=token)
    return calls


class TestConfig:
    def test_defaults(self) -> None:
        config = parse_connection_config("xero_default", "cid", "secret", {})
        assert config.tenant_ids == ()
        assert config.grant_type == "authorization_code"
        assert config.scopes == "granular"
        assert config.api_url == "https://api.xero.com"
        assert config.token_url == "https://identity.xero.com/connect/token"
        assert config.token_store == "variable"
        assert config.page_size == 1000 and config.timeout == 60.0
        assert config.requested_scopes() == [
            "offline_access",
            "accounting.settings.read",
            "accounting.contacts.read",
            "accounting.invoices.read",
            "accounting.payments.read",
        ]

    def test_values(self) -> None:
        extra = {
            "tenant_ids": f"{TENANT}, {OTHER_TENANT}",
            "grant_type": "client_credentials",
            "scopes": "broad",
            "api_url": "http://127.0.0.1:8080/",
            "identity_url": "http://localhost:8080",
            "token_store": "file:/tmp/xero/t.json",
            "timeout": "30",
            "page_size": 500,
        }
        config = parse_connection_config("x", "cid", "secret", extra)
        assert config.tenant_ids == (TENANT, OTHER_TENANT)
        assert config.api_url == "http://127.0.0.1:8080"
        assert config.timeout == 30.0 and config.page_size == 500
        assert config.requested_scopes() == [
            "accounting.settings.read",
            "accounting.contacts.read",
            "accounting.transactions.read",
        ]

    def test_explicit_scope_list_and_tenant_list(self) -> None:
        config = parse_connection_config(
            "x", "cid", "s", {"scopes": ["accounting.invoices.read"], "tenant_ids": [TENANT]}
        )
        assert config.scopes == ("accounting.invoices.read",)
        assert config.requested_scopes() == ["offline_access", "accounting.invoices.read"]
        assert config.tenant_ids == (TENANT,)

    @pytest.mark.parametrize(
        ("login", "password", "extra", "field"),
        [
            pytest.param("", "s", {}, "login", id="no-client-id"),
            pytest.param("cid", None, {}, "password", id="no-secret"),
            pytest.param("cid", "s", {"grant_type": "password"}, "grant_type", id="grant"),
            pytest.param("cid", "s", {"scopes": 5}, "scopes", id="scopes-type"),
            pytest.param("cid", "s", {"tenant_ids": [TENANT, ""]}, "tenant_ids", id="empty-tenant"),
            pytest.param("cid", "s", {"tenant_ids": 12}, "tenant_ids", id="tenant-type"),
            pytest.param("cid", "s", {"api_url": "api.xero.com"}, "api_url", id="url-no-scheme"),
            pytest.param("cid", "s", {"api_url": "http://api.xero.com"}, "api_url", id="url-not-https"),
            pytest.param("cid", "s", {"identity_url": 3}, "identity_url", id="identity-type"),
            pytest.param("cid", "s", {"oauth_store": "s3://x"}, "oauth_store", id="store"),
            pytest.param("cid", "s", {"token_store": "s3://x"}, "token_store", id="store-deprecated-name"),
            pytest.param("cid", "s", {"refresh_lock": "mysql://db"}, "refresh_lock", id="lock"),
            pytest.param("cid", "***", {}, "password", id="masked-secret"),
            pytest.param("cid", "s", {"oauth_store": "***"}, "oauth_store", id="masked-store"),
            pytest.param("cid", "s", {"token_lock": " *** "}, "token_lock", id="masked-lock"),
            pytest.param("cid", "s", {"refresh_token": "***"}, "refresh_token", id="masked-token"),
            pytest.param(
                "cid",
                "s",
                {"token_store": "file:/a.json", "oauth_store": "file:/b.json"},
                "token_store",
                id="both",
            ),
            pytest.param("cid", "s", {"timeout": "soon"}, "timeout", id="timeout"),
            pytest.param("cid", "s", {"timeout": 0}, "timeout", id="timeout-zero"),
            pytest.param("cid", "s", {"page_size": 5000}, "page_size", id="page-size-max"),
            pytest.param("cid", "s", {"page_size": 10.5}, "page_size", id="page-size-int"),
            pytest.param("cid", "s", {"refresh_token": ["x"]}, "refresh_token", id="refresh-type"),
            pytest.param("cid", "s", {"tenant_id": TENANT}, "tenant_id", id="typo-extra"),
        ],
    )
    def test_bad_config_names_the_field(self, login, password, extra, field) -> None:
        with pytest.raises(XeroConfigError) as info:
            parse_connection_config("x", login, password, extra)
        assert info.value.field == field
        assert repr(field) in str(info.value)

    def test_the_message_names_the_connection(self) -> None:
        with pytest.raises(
            XeroConfigError, match=r"^Xero connection 'xero_ui', field 'oauth_store': holds '\*\*\*'"
        ):
            parse_connection_config("xero_ui", "cid", "s", {"oauth_store": "***"})

    def test_deprecated_names_still_work(self) -> None:
        config = parse_connection_config(
            "x", "cid", "s", {"token_store": "file:/tmp/t.json", "token_lock": "postgres:meta"}
        )
        assert config.token_store == "file:/tmp/t.json" and config.token_lock == "postgres:meta"
        assert config.deprecated_extras == ("token_store", "token_lock")
        same = parse_connection_config(
            "x", "cid", "s", {"token_store": "variable", "oauth_store": "variable"}
        )
        assert same.token_store == "variable"

    def test_the_form_defaults_work_as_saved(self) -> None:
        from xero import CONN_FIELDS

        form = {name: field["schema"].get("default") for name, field in CONN_FIELDS.items()}
        config = parse_connection_config("x", "cid", "s", form)
        assert (
            config.token_store == "variable" and config.token_lock == "file" and not config.deprecated_extras
        )

    def test_extra_is_not_mutated(self) -> None:
        extra = {"tenant_ids": [f" {TENANT} "], "scopes": ["a", "a"], "refresh_token": " rt "}
        before = copy.deepcopy(extra)
        parse_connection_config("x", "cid", "s", extra)
        assert extra == before

    def test_hook_leaves_extra_dejson_alone(self, monkeypatch, tmp_path) -> None:
        set_connection(monkeypatch, tmp_path, tenant_ids=[TENANT], refresh_token="rt-bootstrap-secret")
        h = hook()
        conn = h.get_connection("xero_default")
        before = copy.deepcopy(conn.extra_dejson)
        assert h.config.tenant_ids == (TENANT,)
        assert conn.extra_dejson == before

    def test_secrets_not_in_config_repr(self) -> None:
        config = parse_connection_config("x", "cid", CLIENT_SECRET, {"refresh_token": "rt-bootstrap-secret"})
        assert CLIENT_SECRET not in repr(config) and "rt-bootstrap-secret" not in repr(config)


class TestHook:
    def test_identity(self) -> None:
        assert XeroHook.conn_type == "xero" and XeroHook.hook_name == "Xero"
        assert XeroHook.default_conn_name == "xero_default" and XeroHook.conn_name_attr == "xero_conn_id"
        assert XeroHook().xero_conn_id == "xero_default"

    def test_ui_field_behaviour(self) -> None:
        from xero import get_provider_info

        ui = XeroHook.get_ui_field_behaviour()
        assert set(ui["hidden_fields"]) == {"host", "port", "schema"}
        assert ui["relabeling"] == {"login": "Client ID", "password": "Client Secret"}
        [provided] = get_provider_info()["connection-types"]
        assert provided["ui-field-behaviour"] == {key.replace("_", "-"): value for key, value in ui.items()}

    def test_constructor_does_no_io(self, monkeypatch) -> None:
        monkeypatch.delenv("AIRFLOW_CONN_XERO_DEFAULT", raising=False)
        h = XeroHook(xero_conn_id="does_not_exist")
        assert h.calls == {}

    def test_configured_tenants_cost_no_call(self, requests_mock, monkeypatch, tmp_path) -> None:
        set_connection(monkeypatch, tmp_path, tenant_ids=[TENANT])
        assert [t.tenant_id for t in hook().list_tenants()] == [TENANT]
        assert requests_mock.call_count == 0

    def test_configured_tenants_with_names(self, requests_mock, identity, monkeypatch, tmp_path) -> None:
        set_connection(monkeypatch, tmp_path, tenant_ids=[OTHER_TENANT], refresh_token="rt-boot")
        requests_mock.get(f"{API}/connections", json=CONNECTIONS)
        tenants = hook().list_tenants(resolve_names=True)
        assert [(t.tenant_id, t.tenant_name) for t in tenants] == [(OTHER_TENANT, "Second Org")]

    def test_all_tenants_from_connections(self, requests_mock, identity, monkeypatch, tmp_path) -> None:
        set_connection(monkeypatch, tmp_path, refresh_token="rt-boot")
        requests_mock.get(f"{API}/connections", json=CONNECTIONS)
        h = hook()
        tenants = h.list_tenants()
        assert [(t.tenant_id, t.tenant_name) for t in tenants] == [
            (TENANT, "Demo Company (AU)"),
            (OTHER_TENANT, "Second Org"),
        ]
        request = requests_mock.request_history[-1]
        assert request.headers["Authorization"] == "Bearer at-hook-1"
        assert "xero-tenant-id" not in request.headers
        assert h.client.identity_calls == 1 and h.calls == {}

    def test_iter_pages_and_calls(self, requests_mock, identity, monkeypatch, tmp_path) -> None:
        set_connection(monkeypatch, tmp_path, refresh_token="rt-boot", page_size=100)
        fake = FakeXero(INVOICES, 250)
        requests_mock.get(f"{API}/api.xro/2.0/Invoices", text=fake)
        h = hook()
        pages = list(h.iter_pages(TENANT, INVOICES, None))
        assert [len(p.records) for p in pages] == [100, 100, 50]
        assert h.calls == {TENANT: 3}
        assert len(identity) == 1  # one refresh for the whole run
        assert fake.requests[0]["query"]["pageSize"] == "100"

    def test_access_token_is_reused_by_the_next_task(
        self, requests_mock, identity, monkeypatch, tmp_path
    ) -> None:
        set_connection(monkeypatch, tmp_path, refresh_token="rt-boot")
        requests_mock.get(f"{API}/connections", json=CONNECTIONS)
        hook().list_tenants()
        hook().list_tenants()
        assert len(identity) == 1


def stored_token(tmp_path, **token: Any) -> dict:
    """Write ``token`` to the connection's token file (as a task or the consent step would) and return it."""
    path = tmp_path / "tokens.json"
    path.write_text(json.dumps(token))
    return token


@pytest.fixture
def probe(requests_mock) -> list[str]:
    """Serve the token endpoint like Xero: the client is checked first, then the refresh token (none valid)."""
    bodies: list[str] = []

    def token(request, context):
        bodies.append(request.text)
        context.status_code = 400
        return {"error": "invalid_grant"}

    requests_mock.post(TOKEN_URL, json=token)
    return bodies


class TestTestConnection:
    """The Test button checks the settings and the client, and lists organisations, spending no token."""

    def test_a_stored_access_token_lists_the_organisations(self, requests_mock, probe, monkeypatch, tmp_path):
        set_connection(monkeypatch, tmp_path)
        token = stored_token(
            tmp_path, access_token="at-stored", refresh_token="rt-stored", expires_at=1_700_000_000.0 + 900
        )
        requests_mock.get(f"{API}/connections", json=CONNECTIONS)
        ok, message = hook().test_connection()
        assert ok is True, message
        assert "2 Xero organisation" in message and "Demo Company (AU)" in message
        assert [r.method for r in requests_mock.request_history] == ["POST", "GET"]
        assert requests_mock.request_history[-1].headers["Authorization"] == "Bearer at-stored"
        assert "rt-stored" not in probe[0]  # the real refresh token is never offered
        assert json.loads((tmp_path / "tokens.json").read_text()) == token  # nothing stored

    def test_a_refresh_token_is_not_spent(self, requests_mock, probe, monkeypatch, tmp_path) -> None:
        set_connection(monkeypatch, tmp_path, refresh_token="rt-boot")
        ok, message = hook().test_connection()
        assert ok is True, message
        assert "Xero accepted the Client ID and Client Secret" in message and "does not spend it" in message
        assert len(probe) == 1 and "rt-boot" not in probe[0]
        assert not (tmp_path / "tokens.json").exists()

    def test_no_consent_yet_names_the_command(self, probe, monkeypatch, tmp_path) -> None:
        set_connection(monkeypatch, tmp_path)
        ok, message = hook().test_connection()
        assert ok is True and "python -m xero auth --conn-id xero_default" in message

    def test_wrong_client_secret(self, requests_mock, monkeypatch, tmp_path) -> None:
        set_connection(monkeypatch, tmp_path, refresh_token="rt-spent-value")
        requests_mock.post(TOKEN_URL, status_code=400, json={"error": "invalid_client"})
        ok, message = hook().test_connection()
        assert ok is False and "invalid_client" in message and "password (Client Secret)" in message
        assert "rt-spent-value" not in message and CLIENT_SECRET not in message

    def test_custom_connection_gets_a_token_it_does_not_store(self, requests_mock, monkeypatch, tmp_path):
        set_connection(monkeypatch, tmp_path, grant_type="client_credentials")
        requests_mock.post(TOKEN_URL, json={"access_token": "at-cc", "expires_in": 1800})
        requests_mock.get(f"{API}/connections", json=CONNECTIONS[:1])
        ok, message = hook().test_connection()
        assert ok is True and "Demo Company (AU)" in message
        assert requests_mock.request_history[-1].headers["Authorization"] == "Bearer at-cc"
        assert not (tmp_path / "tokens.json").exists()

    def test_bad_config(self, monkeypatch, tmp_path) -> None:
        set_connection(monkeypatch, tmp_path, page_size=0)
        ok, message = hook().test_connection()
        assert ok is False and "page_size" in message

    def test_masked_field_saved_by_the_form(self, monkeypatch, tmp_path) -> None:
        set_connection(monkeypatch, tmp_path, token_store="***")
        ok, message = hook().test_connection()
        assert ok is False and "'token_store'" in message and "'***'" in message

    def test_missing_connection_never_raises(self, monkeypatch) -> None:
        monkeypatch.delenv("AIRFLOW_CONN_NOPE", raising=False)
        ok, message = XeroHook(xero_conn_id="nope").test_connection()
        assert ok is False and "'nope'" in message

    def test_configured_tenant_not_connected(self, requests_mock, probe, monkeypatch, tmp_path) -> None:
        set_connection(monkeypatch, tmp_path, tenant_ids=["not-a-connected-tenant"])
        stored_token(tmp_path, access_token="at-stored", expires_at=1_700_000_000.0 + 900)
        requests_mock.get(f"{API}/connections", json=CONNECTIONS)
        ok, message = hook().test_connection()
        assert ok is False and "not-a-connected-tenant" in message and "tenant_ids" in message

    def test_refused_access_token(self, requests_mock, probe, monkeypatch, tmp_path) -> None:
        set_connection(monkeypatch, tmp_path)
        stored_token(tmp_path, access_token="at-stored", expires_at=1_700_000_000.0 + 900)
        requests_mock.get(
            f"{API}/connections", status_code=401, json={"Title": "Unauthorized", "Detail": "Unauthorized"}
        )
        ok, message = hook().test_connection()
        assert ok is False and "HTTP 401" in message and "at-stored" not in message
