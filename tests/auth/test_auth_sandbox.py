"""Custom Connections end to end, and one clear message per authorisation failure, against the sandbox."""

from __future__ import annotations

import pytest
import requests
import tenacity

from xero.entities import ACCOUNTS, CONTACTS, INVOICES
from xero.exceptions import XeroAuthError
from xero.hooks import XeroHook


def hook(conn_id: str) -> XeroHook:
    return XeroHook(conn_id, sleep=lambda seconds: None, retry_wait=tenacity.wait_none())


def ids(pages, field: str) -> list[str]:
    return [record[field] for page in pages for record in page.records]


class TestCustomConnection:
    def test_tenants_paging_and_token_reuse(self, sb, set_connection) -> None:
        set_connection("xero_cc", grant_type="client_credentials", page_size=25)
        xero = hook("xero_cc")
        tenant = sb.tenants[sb.config.custom_connection_tenant]

        assert [(t.tenant_id, t.tenant_name) for t in xero.list_tenants()] == [
            (tenant.tenant_id, tenant.name)
        ]
        pages = list(xero.iter_pages(tenant.tenant_id, INVOICES, None))
        expected = [r["InvoiceID"] for r in sb.records(tenant.tenant_id, "invoices")]
        assert len(pages) == -(-len(expected) // 25) >= 3
        assert ids(pages, "InvoiceID") == expected
        assert ids(list(xero.iter_pages(tenant.tenant_id, CONTACTS, None)), "ContactID")
        assert ids(list(xero.iter_pages(tenant.tenant_id, ACCOUNTS, None)), "AccountID")

        token_calls = [r for r in sb.requests if r.path.endswith("/connect/token")]
        assert len(token_calls) == 1  # one client-credentials grant serves every call
        stored = xero.token_manager.store.load()
        assert "refresh_token" not in stored and "offline_access" not in stored["scope"]
        assert "accounting.invoices.read" in stored["scope"].split()

        ok, message = xero.test_connection()  # checks the client with a grant of its own, stores nothing
        assert ok and tenant.name in message, message
        assert xero.token_manager.store.load() == stored

    def test_a_second_run_reuses_the_stored_token(self, sb, set_connection) -> None:
        set_connection("xero_cc", grant_type="client_credentials")
        hook("xero_cc").list_tenants()
        sb.reset_requests()
        hook("xero_cc").list_tenants()
        assert not [r for r in sb.requests if r.path.endswith("/connect/token")]

    def test_the_other_tenant_is_refused_with_a_reconnect_message(self, sb, set_connection) -> None:
        set_connection("xero_cc", grant_type="client_credentials")
        other = next(t for i, t in enumerate(sb.tenants) if i != sb.config.custom_connection_tenant)
        with pytest.raises(XeroAuthError, match="not connected to this app") as info:
            list(hook("xero_cc").iter_pages(other.tenant_id, INVOICES, None))
        assert info.value.status == 403


class TestMessages:
    def test_missing_scope_names_the_scope_to_add(self, sb, set_connection) -> None:
        set_connection("xero_msg", refresh_token=sb.issue_refresh_token(["accounting.settings.read"]))
        tenant = sb.tenants[0].tenant_id
        xero = hook("xero_msg")
        assert list(xero.iter_pages(tenant, ACCOUNTS, None))  # granted
        with pytest.raises(XeroAuthError) as info:
            list(xero.iter_pages(tenant, INVOICES, None))
        message = str(info.value)
        assert "'accounting.invoices.read'" in message and "python -m xero auth --conn-id xero_msg" in message

    def test_missing_scope_in_the_broad_family(self, sb, set_connection) -> None:
        set_connection(
            "xero_msg", refresh_token=sb.issue_refresh_token(["accounting.settings.read"]), scopes="broad"
        )
        with pytest.raises(XeroAuthError, match=r"'accounting\.transactions\.read'"):
            list(hook("xero_msg").iter_pages(sb.tenants[0].tenant_id, INVOICES, None))

    def test_disconnected_tenant_says_reconnect(self, sb, set_connection) -> None:
        set_connection("xero_msg", refresh_token=sb.issue_refresh_token())
        xero = hook("xero_msg")
        gone = sb.tenants[1].tenant_id
        access = xero.token_manager.access_token()
        headers = {"Authorization": f"Bearer {access}"}
        [connection] = [
            c
            for c in requests.get(f"{sb.url}/connections", headers=headers, timeout=10).json()
            if c["tenantId"] == gone
        ]
        deleted = requests.delete(f"{sb.url}/connections/{connection['id']}", headers=headers, timeout=10)
        assert deleted.status_code == 204

        with pytest.raises(XeroAuthError) as info:
            list(xero.iter_pages(gone, INVOICES, None))
        message = str(info.value)
        assert info.value.status == 403 and "AuthenticationUnsuccessful" in message
        assert "reconnect the organisation" in message and "python -m xero auth --conn-id xero_msg" in message
        assert access not in message
        assert [t.tenant_id for t in xero.client.list_tenants()] == [sb.tenants[0].tenant_id]

    def test_invalid_grant_says_to_rerun_the_auth_command(self, sb, set_connection) -> None:
        spent = sb.issue_refresh_token()
        form = {"grant_type": "refresh_token", "refresh_token": spent}
        auth = (sb.config.client_id, sb.config.client_secret)
        assert requests.post(f"{sb.url}/connect/token", data=form, auth=auth, timeout=10).ok
        set_connection("xero_msg", refresh_token=spent)

        with pytest.raises(XeroAuthError) as info:
            hook("xero_msg").list_tenants()
        message = str(info.value)
        assert "invalid_grant" in message
        assert "python -m xero auth --conn-id xero_msg" in message
        assert spent not in message and sb.config.client_secret not in message

    def test_an_empty_store_says_to_run_the_auth_command(self, sb, set_connection) -> None:
        set_connection("xero_msg")
        with pytest.raises(XeroAuthError, match="python -m xero auth --conn-id xero_msg"):
            hook("xero_msg").list_tenants()
