"""Paging, order, If-Modified-Since, includeArchived, detail levels and filters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from tests.sandbox.conftest import custom_connection_headers, small_config
from xero_sandbox import Sandbox
from xero_sandbox.data import DAY_MS

API = "/api.xro/2.0"


def _ms(value: str) -> int:
    return int(value[len("/Date(") :].split("+")[0].split(")")[0])


def _key(record, id_field):
    return (_ms(record["UpdatedDateUTC"]), record[id_field])


def test_pages_cover_everything_in_default_order(sb, client, headers):
    h = headers()
    seen = []
    page = 1
    while True:
        body = client.get(f"{API}/Invoices", params={"page": page, "pageSize": 60}, headers=h).json()
        assert body["pagination"]["itemCount"] == 250
        assert body["pagination"]["pageCount"] == 5
        seen.extend(body["Invoices"])
        if len(body["Invoices"]) < 60:
            break
        page += 1
    assert len(seen) == 250 == len({r["InvoiceID"] for r in seen})
    keys = [_key(r, "InvoiceID") for r in seen]
    assert keys == sorted(keys)
    assert [r["InvoiceID"] for r in seen] == [
        r["InvoiceID"] for r in sb.records(sb.tenants[0].tenant_id, "invoices")
    ]


@pytest.mark.parametrize(("asked", "served"), [(None, 100), (0, 1), (-5, 1), (5000, 1000), (7, 7)])
def test_page_size_is_clamped(client, headers, asked, served):
    params = {"page": 1} if asked is None else {"page": 1, "pageSize": asked}
    body = client.get(f"{API}/Payments", params=params, headers=headers()).json()
    assert body["pagination"]["pageSize"] == served
    assert len(body["Payments"]) == min(served, body["pagination"]["itemCount"])


def test_page_past_the_end_is_empty(client, headers):
    body = client.get(f"{API}/Invoices", params={"page": 99, "pageSize": 100}, headers=headers()).json()
    assert body["Invoices"] == [] and body["pagination"]["itemCount"] == 250


def test_line_items_and_contact_details_only_when_paged(client, headers):
    h = headers()
    unpaged = client.get(f"{API}/Invoices", headers=h).json()
    assert "pagination" not in unpaged
    assert len(unpaged["Invoices"]) == 250
    assert all("LineItems" not in r and "Payments" not in r for r in unpaged["Invoices"])
    assert all(set(r["Contact"]) <= {"ContactID", "Name", "HasValidationErrors"} for r in unpaged["Invoices"])
    paged = client.get(f"{API}/Invoices", params={"page": 1}, headers=h).json()
    assert all(r["LineItems"] and "Addresses" in r["Contact"] for r in paged["Invoices"])
    contacts = client.get(f"{API}/Contacts", headers=h).json()["Contacts"]
    assert all("ContactPersons" not in c for c in contacts)


def test_summary_only_enforces_paging_without_line_items(client, headers):
    body = client.get(f"{API}/Invoices", params={"summaryOnly": "true"}, headers=headers()).json()
    assert body["pagination"]["page"] == 1 and len(body["Invoices"]) == 100
    assert all("LineItems" not in r for r in body["Invoices"])


def test_if_modified_since_is_inclusive_to_the_second(sb, client, headers):
    tenant = sb.tenants[0].tenant_id
    records = list(sb.records(tenant, "invoices"))
    pivot = records[100]
    pivot_ms = _ms(pivot["UpdatedDateUTC"])
    second = datetime.fromtimestamp(pivot_ms // 1000, tz=UTC)
    expected = [r["InvoiceID"] for r in records if _ms(r["UpdatedDateUTC"]) // 1000 >= pivot_ms // 1000]
    h = headers()
    for header in (
        second.strftime("%Y-%m-%dT%H:%M:%S"),
        second.strftime("%Y-%m-%dT%H:%M:%S") + ".999",
        (second + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S+02:00"),
        format_datetime(second, usegmt=True),
    ):
        body = client.get(
            f"{API}/Invoices",
            params={"page": 1, "pageSize": 1000},
            headers={**h, "If-Modified-Since": header},
        ).json()
        assert [r["InvoiceID"] for r in body["Invoices"]] == expected, header
        assert pivot["InvoiceID"] in [r["InvoiceID"] for r in body["Invoices"]]
    later = (second + timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S")
    body = client.get(
        f"{API}/Invoices", params={"page": 1, "pageSize": 1000}, headers={**h, "If-Modified-Since": later}
    ).json()
    assert pivot["InvoiceID"] not in [r["InvoiceID"] for r in body["Invoices"]]


def test_bad_if_modified_since_is_a_validation_error(client, headers):
    response = client.get(f"{API}/Invoices", headers={**headers(), "If-Modified-Since": "yesterday"})
    assert response.status_code == 400 and response.json()["Type"] == "ValidationException"


def test_archived_contacts_only_with_include_archived(sb, client, headers):
    tenant = sb.tenants[0].tenant_id
    archived = sb.archive_contact(tenant)
    h = headers()
    default = client.get(f"{API}/Contacts", params={"page": 1}, headers=h).json()
    included = client.get(f"{API}/Contacts", params={"page": 1, "includeArchived": "true"}, headers=h).json()
    assert archived not in {c["ContactID"] for c in default["Contacts"]}
    assert {c["ContactStatus"] for c in default["Contacts"]} == {"ACTIVE"}
    assert archived in {c["ContactID"] for c in included["Contacts"]}
    assert included["pagination"]["itemCount"] == sb.count(tenant, "contacts")
    assert default["pagination"]["itemCount"] < included["pagination"]["itemCount"]


def test_voided_deleted_invoices_and_deleted_payments_are_listed(sb, client, headers):
    h = headers()
    invoices = client.get(f"{API}/Invoices", params={"page": 1, "pageSize": 1000}, headers=h).json()[
        "Invoices"
    ]
    assert {"VOIDED", "DELETED", "DRAFT", "PAID", "AUTHORISED"} <= {r["Status"] for r in invoices}
    deleted = sb.delete_payment(sb.tenants[0].tenant_id)
    payments = client.get(f"{API}/Payments", params={"page": 1, "pageSize": 1000}, headers=h).json()[
        "Payments"
    ]
    assert any(p["PaymentID"] == deleted and p["Status"] == "DELETED" for p in payments)


def test_where_and_statuses_filters(client, headers):
    h = headers()
    paid = client.get(
        f"{API}/Invoices", params={"page": 1, "where": 'Status=="PAID" AND Type=="ACCREC"'}, headers=h
    ).json()
    assert paid["Invoices"] and {(r["Status"], r["Type"]) for r in paid["Invoices"]} == {("PAID", "ACCREC")}
    statuses = client.get(f"{API}/Invoices", params={"Statuses": "VOIDED,DELETED"}, headers=h).json()
    assert statuses["pagination"]["page"] == 1
    assert {r["Status"] for r in statuses["Invoices"]} <= {"VOIDED", "DELETED"}
    bad = client.get(f"{API}/Invoices", params={"where": "Total > 5"}, headers=h)
    assert bad.status_code == 400
    assert client.get(f"{API}/Invoices", params={"order": "Total DESC"}, headers=h).status_code == 400
    assert client.get(f"{API}/Invoices", params={"order": "UpdatedDateUTC ASC"}, headers=h).status_code == 200


def test_get_by_id_and_number(sb, client, headers):
    first = next(iter(sb.records(sb.tenants[0].tenant_id, "invoices")))
    h = headers()
    by_number = client.get(f"{API}/Invoices/{first['InvoiceNumber']}", headers=h).json()
    assert by_number["Invoices"][0]["InvoiceID"] == first["InvoiceID"]
    missing = client.get(f"{API}/Invoices/00000000-0000-4000-8000-000000000000", headers=h)
    assert missing.status_code == 404


def test_unpaged_lists_over_the_threshold_are_rejected():
    from starlette.testclient import TestClient

    sandbox = Sandbox(small_config(high_volume_threshold=100))
    with TestClient(sandbox.app) as client:
        h = custom_connection_headers(client, sandbox)
        rejected = client.get(f"{API}/Invoices", headers=h)
        assert rejected.status_code == 400 and "efficiently" in rejected.text
        assert client.get(f"{API}/Invoices", params={"page": 1}, headers=h).status_code == 200


def test_date_only_fields_are_midnight_utc(sb):
    record = next(iter(sb.records(sb.tenants[0].tenant_id, "invoices")))
    assert _ms(record["Date"]) % DAY_MS == 0
    assert record["DateString"] == datetime.fromtimestamp(_ms(record["Date"]) / 1000, tz=UTC).strftime(
        "%Y-%m-%dT00:00:00"
    )
    assert record["Date"].endswith("+0000)/")
