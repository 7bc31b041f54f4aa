"""Seeded data: determinism, accounting consistency, the change API, the index and scale."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime
from decimal import Decimal

import msgspec
import numpy as np
import pytest

from tests.sandbox.conftest import small_config
from xero.entities import ENTITIES
from xero_sandbox import ENTITY_NAMES, Sandbox, SandboxConfig
from xero_sandbox.__main__ import build_parser
from xero_sandbox.data import money, money_json, utc_string
from xero_sandbox.index import RecordIndex, random_uuids, uuid_text, uuid_texts


def _ms(value: str) -> int:
    return int(value[len("/Date(") :].split("+")[0].split(")")[0])


def _d(value: float) -> Decimal:
    return Decimal(str(value))


def test_entity_names_match_the_registry(sb):
    assert set(ENTITY_NAMES) == set(ENTITIES)
    tenant = sb.tenants[0].tenant_id
    assert sb.count(tenant, "invoices") == 250 and sb.count(tenant, "contacts") == 40
    assert sb.count(tenant, "accounts") == 30


def test_same_seed_same_data_other_seed_other_data():
    a, b, c = (Sandbox(small_config(seed=s)) for s in (3, 3, 4))
    assert [t.tenant_id for t in a.tenants] == [t.tenant_id for t in b.tenants]
    for entity in ENTITY_NAMES:
        tenant_a, tenant_b = a.tenants[1].tenant_id, b.tenants[1].tenant_id
        assert list(a.records(tenant_a, entity)) == list(b.records(tenant_b, entity))
    assert [t.tenant_id for t in a.tenants] != [t.tenant_id for t in c.tenants]
    assert next(a.records(a.tenants[0].tenant_id, "invoices")) != next(
        c.records(c.tenants[0].tenant_id, "invoices")
    )


def test_tenants_hold_different_data(sb):
    first, second = (list(sb.records(t.tenant_id, "invoices")) for t in sb.tenants)
    assert {r["InvoiceID"] for r in first}.isdisjoint({r["InvoiceID"] for r in second})
    assert first[0]["CurrencyCode"] != second[0]["CurrencyCode"]


def _check_books(sb: Sandbox, tenant: str) -> None:
    accounts = {a["AccountID"]: a for a in sb.records(tenant, "accounts")}
    codes = {a["Code"]: a["AccountID"] for a in accounts.values()}
    contacts = {c["ContactID"] for c in sb.records(tenant, "contacts")}
    paid_by_invoice: dict[str, Decimal] = defaultdict(Decimal)
    for payment in sb.records(tenant, "payments"):
        assert payment["Amount"] > 0
        assert accounts[payment["Account"]["AccountID"]]["Type"] == "BANK"
        if payment["Status"] == "AUTHORISED":
            paid_by_invoice[payment["Invoice"]["InvoiceID"]] += _d(payment["Amount"])
    statuses = set()
    for inv in sb.records(tenant, "invoices"):
        statuses.add(inv["Status"])
        lines = inv["LineItems"]
        assert lines and inv["Contact"]["ContactID"] in contacts
        assert _d(inv["SubTotal"]) == sum(_d(li["LineAmount"]) for li in lines)
        assert _d(inv["TotalTax"]) == sum(_d(li["TaxAmount"]) for li in lines)
        assert _d(inv["Total"]) == _d(inv["SubTotal"]) + _d(inv["TotalTax"])
        for li in lines:
            assert _d(li["LineAmount"]) == _d(li["Quantity"]) * _d(li["UnitAmount"])
            assert codes[li["AccountCode"]] == li["AccountID"]
        assert _d(inv["AmountPaid"]) == paid_by_invoice.get(inv["InvoiceID"], Decimal(0))
        assert _d(inv["AmountPaid"]) == sum((_d(p["Amount"]) for p in inv["Payments"]), Decimal(0))
        if inv["Status"] in ("VOIDED", "DELETED"):
            assert inv["AmountDue"] == 0 and inv["AmountPaid"] == 0
        else:
            assert _d(inv["AmountDue"]) == _d(inv["Total"]) - _d(inv["AmountPaid"])
            assert (inv["Status"] == "PAID") == (inv["AmountDue"] == 0)
            assert ("FullyPaidOnDate" in inv) == (inv["Status"] == "PAID")
        if inv["Status"] in ("DRAFT", "SUBMITTED"):
            assert inv["AmountPaid"] == 0
        classes = {"REVENUE"} if inv["Type"] == "ACCREC" else {"EXPENSE", "ASSET"}
        assert all(accounts[li["AccountID"]]["Class"] in classes for li in lines)
    assert statuses == {"DRAFT", "SUBMITTED", "DELETED", "AUTHORISED", "PAID", "VOIDED"}


def test_books_are_consistent(sb):
    for tenant in sb.tenants:
        _check_books(sb, tenant.tenant_id)


def test_updated_dates_are_past_distinct_and_ordered(sb):
    tenant = sb.tenants[0].tenant_id
    stamps = [_ms(r["UpdatedDateUTC"]) for r in sb.records(tenant, "invoices")]
    assert stamps == sorted(stamps)
    assert len(set(stamps)) > 0.99 * len(stamps)
    assert max(stamps) < sb.clock.now_ms()


def test_changes_move_records_to_the_end_and_keep_books(sb):
    tenant = sb.tenants[0].tenant_id
    now_ms = sb.clock.now_ms()
    changed = sb.update_invoice(tenant, Reference="Changed", DueDate=date(2026, 4, 1))
    last = list(sb.records(tenant, "invoices"))[-1]
    assert last["InvoiceID"] == changed and _ms(last["UpdatedDateUTC"]) == now_ms
    assert last["Reference"] == "Changed" and last["DueDateString"] == "2026-04-01T00:00:00"

    sb.clock.advance(1)
    voided = sb.void_invoice(tenant)
    voided_record = list(sb.records(tenant, "invoices"))[-1]
    assert voided_record["InvoiceID"] == voided and voided_record["Status"] == "VOIDED"

    paid_invoice = next(r for r in sb.records(tenant, "invoices") if r["Status"] == "PAID")
    payment_id = paid_invoice["Payments"][0]["PaymentID"]
    sb.clock.advance(1)
    assert sb.delete_payment(tenant, payment_id) == payment_id
    invoice = list(sb.records(tenant, "invoices"))[-1]
    payment = list(sb.records(tenant, "payments"))[-1]
    assert invoice["InvoiceID"] == paid_invoice["InvoiceID"] and invoice["Status"] == "AUTHORISED"
    assert payment["PaymentID"] == payment_id and payment["Status"] == "DELETED"
    assert _d(invoice["AmountDue"]) == _d(paid_invoice["Payments"][0]["Amount"])
    with pytest.raises(ValueError, match="already DELETED"):
        sb.delete_payment(tenant, payment_id)
    with pytest.raises(ValueError):
        sb.void_invoice(
            tenant, next(r["InvoiceID"] for r in sb.records(tenant, "invoices") if r["Status"] == "PAID")
        )

    archived = sb.archive_contact(tenant)
    contact = list(sb.records(tenant, "contacts"))[-1]
    assert contact["ContactID"] == archived and contact["ContactStatus"] == "ARCHIVED"
    _check_books(sb, tenant)


def test_invoice_json_is_what_an_encoder_writes(sb):
    """Invoices are assembled from f-strings: the text must be the compact JSON an encoder writes."""
    tenant = sb.tenants[0].tenant_id
    changed = sb.update_invoice(tenant, Reference='a "quoted" \\ reference, é')  # overrides go through a dict
    sb.delete_payment(tenant)
    org = sb.org(tenant)
    for detail in (True, False):
        rendered = org.invoices_json(org.invoices.in_order(), detail)
        assert len(rendered) == 250
        for raw in rendered:
            assert msgspec.json.encode(msgspec.json.decode(raw)) == bytes(raw)
    assert org.invoice_record(org.find("invoices", changed))["Reference"] == 'a "quoted" \\ reference, é'


@pytest.mark.parametrize("cents", [0, 1, 5, 10, 50, 99, 100, 105, 110, 12_345, 2_500_000_000, -1, -150])
def test_money_text_is_what_the_float_encodes_to(cents):
    assert money_json(cents) == msgspec.json.encode(money(cents)).decode()


def test_formatting_helpers():
    for ms in (0, 1_700_000_000_999, 1_795_657_844_975, 946_684_799_000):
        expected = datetime.fromtimestamp(ms // 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        assert utc_string(ms) == expected
    hi, lo = random_uuids(np.random.default_rng(1), 50)
    assert uuid_texts(hi, lo) == [uuid_text(high, low) for high, low in zip(hi, lo, strict=True)]


def test_line_item_ids_are_unique_and_stable(sb):
    tenant = sb.tenants[0].tenant_id
    first, again = (
        [line["LineItemID"] for invoice in sb.records(tenant, "invoices") for line in invoice["LineItems"]]
        for _ in range(2)
    )
    assert first == again and len(set(first)) == len(first)


def test_default_picks_are_deterministic():
    picks = []
    for _ in range(2):
        sandbox = Sandbox(small_config())
        tenant = sandbox.tenants[0].tenant_id
        picks.append(
            [sandbox.update_invoice(tenant), sandbox.void_invoice(tenant), sandbox.delete_payment(tenant)]
        )
    assert picks[0] == picks[1]


def test_index_stays_sorted_under_random_touches():
    rng = np.random.default_rng(5)
    hi, lo = random_uuids(rng, 500)
    updated = rng.integers(0, 50, 500).astype(np.int64)  # many ties: the ID breaks them
    index = RecordIndex(hi, lo, updated)
    for step in range(300):
        index.touch(int(rng.integers(0, 500)), int(rng.integers(0, 60)) if step % 2 else 1000 + step)
    expected = sorted(range(500), key=lambda p: (int(index.updated_ms[p]), index.id_of(p)))
    assert index.order.tolist() == expected
    assert index.sorted_ms.tolist() == sorted(index.updated_ms.tolist())
    assert index.find(index.id_of(42)) == 42


def test_admin_http_twin(sb, client, headers):
    tenant = sb.tenants[0].tenant_id
    grant = client.post("/_sandbox/grant", json={"scopes": ["accounting.invoices.read"]}).json()
    assert grant["refresh_token"]
    changed = client.post(
        f"/_sandbox/tenants/{tenant}/invoices/update", json={"fields": {"Reference": "HTTP"}}
    )
    assert list(sb.records(tenant, "invoices"))[-1]["InvoiceID"] == changed.json()["id"]
    assert client.post(f"/_sandbox/tenants/{tenant}/contacts/archive", json={}).status_code == 200
    assert client.post("/_sandbox/tenants/nope/payments/delete", json={}).status_code == 404
    before = sb.clock.now()
    client.post("/_sandbox/clock/advance", json={"seconds": 90})
    assert (sb.clock.now() - before).total_seconds() == 90
    client.post("/_sandbox/faults", json={"endpoint": "Accounts", "nth": 1, "kind": "500"})
    assert client.get("/api.xro/2.0/Accounts", headers=headers()).status_code == 500
    recorded = client.get("/_sandbox/requests").json()
    assert recorded and all(not r["path"].startswith("/_sandbox") for r in recorded)
    assert client.get("/_sandbox/tenants").json()[0]["counts"]["invoices"] == 250


def test_cli_defaults_follow_the_config():
    args = build_parser().parse_args(["--port", "0", "--invoices", "10"])
    assert args.invoices == 10 and args.seed == SandboxConfig().seed and args.host == "127.0.0.1"


def test_scale_200k_invoices():
    sandbox = Sandbox(SandboxConfig(seed=1, tenants=1, contacts=2000, invoices=200_000).without_limits())
    tenant = sandbox.tenants[0].tenant_id
    org = sandbox.org(tenant)
    assert sandbox.count(tenant, "invoices") == 200_000
    assert org.invoices.order.dtype == np.int64  # columnar, not a list of dicts
    selection = org.invoices.select(None)
    last_page = [org.render("invoices", int(p)) for p in selection.slice(199_000, 1000)]
    assert len(last_page) == 1000
    changed = sandbox.update_invoice(tenant)
    assert org.render("invoices", int(org.invoices.order[-1]))["InvoiceID"] == changed


def test_a_share_of_invoices_is_in_a_foreign_currency_with_its_rate(sb):
    tenant = sb.tenants[0].tenant_id
    base = next(sb.records(tenant, "organisation"))["BaseCurrency"]
    invoices = {i["InvoiceID"]: i for i in sb.records(tenant, "invoices")}
    foreign = [i for i in invoices.values() if i["CurrencyCode"] != base]
    assert 0 < len(foreign) < len(invoices) / 4
    assert {i["CurrencyCode"] for i in foreign} == {"AUD"} and base == "NZD"
    assert all(0.8 < i["CurrencyRate"] < 1.0 for i in foreign)
    assert all(i["CurrencyRate"] == 1.0 for i in invoices.values() if i["CurrencyCode"] == base)
    for payment in sb.records(tenant, "payments"):
        invoice = invoices[payment["Invoice"]["InvoiceID"]]
        assert payment["Invoice"]["CurrencyCode"] == invoice["CurrencyCode"]
        expected_bank = _d(payment["Amount"]) / _d(payment["CurrencyRate"])
        assert abs(_d(payment["BankAmount"]) - expected_bank) <= Decimal("0.005")
    without = Sandbox(small_config(seed=7, foreign_currency_ratio=0.0))
    other_tenant = without.tenants[0].tenant_id
    assert {i["CurrencyCode"] for i in without.records(other_tenant, "invoices")} == {"NZD"}
    same = [
        {k: v for k, v in i.items() if k not in ("CurrencyCode", "CurrencyRate", "Payments")}
        for i in without.records(other_tenant, "invoices")
    ]
    assert same == [
        {k: v for k, v in i.items() if k not in ("CurrencyCode", "CurrencyRate", "Payments")}
        for i in Sandbox(small_config(seed=7)).records(other_tenant, "invoices")
    ]  # the currencies come from a stream of their own: nothing else moves


def test_the_organisation_is_one_record_that_can_change(sb):
    tenant = sb.tenants[1]
    [organisation] = list(sb.records(tenant.tenant_id, "organisation"))
    assert (organisation["OrganisationID"], organisation["Name"], organisation["BaseCurrency"]) == (
        tenant.tenant_id,
        tenant.name,
        "AUD",
    )
    assert sb.count(tenant.tenant_id, "organisation") == 1
    sb.update_organisation(tenant.tenant_id, Name="Summit Outdoor Group", BaseCurrency="NZD")
    changed = next(sb.records(tenant.tenant_id, "organisation"))
    assert (changed["Name"], changed["BaseCurrency"]) == ("Summit Outdoor Group", "NZD")
    with pytest.raises(ValueError, match="OrganisationID cannot change"):
        sb.update_organisation(tenant.tenant_id, OrganisationID="other")
    with pytest.raises(ValueError, match="update_organisation"):
        sb.touch(tenant.tenant_id, "organisation")
