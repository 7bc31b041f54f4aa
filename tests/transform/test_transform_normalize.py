"""The normaliser: landing pages → typed Parquet tables per the registry, plus the quarantine."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from xero.entities import ENTITIES, INVOICES, PAYMENTS
from xero.normalize import XeroLandingError, normalize_landing, normalize_pages, quarantine_path, table_path
from xero.schema import QUARANTINE_SCHEMA, arrow_schema

TENANT = "4f7a3d1e-9b2c-4e8f-a1d5-6c3b2a1f0e9d"


def rows(path: str | Path) -> list[dict]:
    return pq.read_table(path).to_pylist()


class TestEveryEntity:
    @pytest.mark.parametrize("name", sorted(ENTITIES))
    def test_schemas_and_rows(self, name, make, write_pages, tmp_path) -> None:
        entity = ENTITIES[name]
        pages = write_pages([make(name, 1), make(name, 2)], [make(name, 3)])
        result = normalize_pages(entity, TENANT, pages, tmp_path / "out")
        for table in entity.tables:
            written = pq.read_table(result.files[table.name])
            assert written.schema.equals(arrow_schema(table), check_metadata=False)
        assert pq.read_table(result.files["_quarantine"]).schema.equals(
            QUARANTINE_SCHEMA, check_metadata=False
        )
        assert result.records_seen == 3
        assert result.quarantined == 0
        assert result.rows[entity.table.name] == 3
        parents = rows(result.files[entity.table.name])
        assert [row["_seq"] for row in parents] == [0, 1, 2]
        assert {row["tenant_id"] for row in parents} == {TENANT}
        summary = json.loads(json.dumps(result.summary()))
        assert summary["max_cursor"] == (result.max_cursor.isoformat() if entity.modified_since else None)
        assert summary["rows"][entity.table.name] == 3

    def test_organisation_values(self, make, write_pages, tmp_path) -> None:
        result = normalize_pages(
            "organisation", TENANT, write_pages([make("organisation")]), tmp_path / "out"
        )
        (row,) = rows(result.files["organisation"])
        assert (row["organisation_id"], row["name"], row["short_code"]) == (
            "b2c885a9-4bb9-4a00-9b6e-6c2bf60b1a2b",
            "Dev Evangelist - Sid Test 3 (NZ-2016-02)",
            "!mBdtL",
        )
        assert (row["base_currency"], row["country_code"], row["timezone"]) == (
            "NZD",
            "NZ",
            "NEWZEALANDSTANDARDTIME",
        )
        assert (row["financial_year_end_day"], row["financial_year_end_month"]) == (31, 3)
        assert row["organisation_type"] == "COMPANY"
        assert row["period_lock_date"] == date(2018, 12, 31)
        assert row["created_date_utc"] == datetime(2016, 2, 18, 20, 29, 53, tzinfo=UTC)
        assert result.max_cursor is None  # no UpdatedDateUTC: read whole every run, no watermark

    def test_account_values(self, make, write_pages, tmp_path) -> None:
        result = normalize_pages("accounts", TENANT, write_pages([make("accounts")]), tmp_path / "out")
        (row,) = rows(result.files["account"])
        assert row["account_id"] == "ebd06280-af70-4bed-97c6-7451a454ad85"
        assert row["code"] == "090"
        assert row["class"] == "ASSET"
        assert row["enable_payments_to_account"] is False
        assert row["system_account"] is None
        assert row["updated_date_utc"] == datetime(2019, 11, 14, 18, 10, 38, 314000, UTC)

    def test_contact_values(self, make, write_pages, tmp_path) -> None:
        result = normalize_pages("contacts", TENANT, write_pages([make("contacts")]), tmp_path / "out")
        (row,) = rows(result.files["contact"])
        assert row["contact_status"] == "ACTIVE"
        assert row["is_customer"] is True
        assert row["is_supplier"] is False
        assert row["merged_to_contact_id"] is None
        assert "Addresses" in row["_raw"]

    def test_payment_nested_sources(self, make, write_pages, tmp_path) -> None:
        result = normalize_pages(PAYMENTS, TENANT, write_pages([make("payments")]), tmp_path / "out")
        (row,) = rows(result.files["payment"])
        assert row["invoice_id"] == "243216c5-369e-4056-ac67-05388f86dc81"
        assert row["invoice_number"] == "INV-0001"
        assert row["account_code"] == "090"
        assert row["credit_note_id"] is None  # no CreditNote object at all
        assert row["amount"] == Decimal("115.0000")
        assert row["currency_rate"] == Decimal("1.0000000000")
        assert row["date"] == date(2019, 3, 14)


class TestInvoices:
    def test_parent_and_line_items(self, make, write_pages, tmp_path) -> None:
        result = normalize_pages(INVOICES, TENANT, write_pages([make("invoices")]), tmp_path / "out")
        (invoice,) = rows(result.files["invoice"])
        assert invoice["contact_id"] == "430fa14a-f945-44d3-9f97-5df5e28441b8"
        assert invoice["date"] == date(2018, 10, 20)
        assert invoice["due_date"] == date(2018, 12, 20)
        assert invoice["expected_payment_date"] is None
        assert invoice["total"] == Decimal("115.0000")
        assert invoice["sent_to_contact"] is False
        lines = rows(result.files["invoice_line_item"])
        assert [line["line_number"] for line in lines] == [1, 2]
        assert {line["invoice_id"] for line in lines} == {invoice["invoice_id"]}
        assert {line["_seq"] for line in lines} == {invoice["_seq"]}
        assert lines[1]["quantity"] == Decimal("2.0000")
        assert lines[1]["line_amount"] == Decimal("60.0000")
        assert json.loads(lines[1]["_raw"])["Description"] == "Travel"
        assert lines[0]["_raw"].startswith('{"Description":"Consulting services","UnitAmount":40.0,')
        assert result.rows == {"invoice": 1, "invoice_line_item": 2}

    def test_money_is_exact(self, write_pages, tmp_path) -> None:
        text = (
            json.dumps([INVOICES_RECORD_TEMPLATE]).replace('"__SUB__"', "0.10").replace('"__TAX__"', "0.20")
        )
        text = text.replace('"__TOTAL__"', "0.30").replace('"__BIG__"', "123456789012345.6789")
        result = normalize_pages(INVOICES, TENANT, write_pages(text), tmp_path / "out")
        (row,) = rows(result.files["invoice"])
        assert row["sub_total"] + row["total_tax"] == row["total"] == Decimal("0.3000")
        assert row["amount_due"] == Decimal("123456789012345.6789")

    def test_raw_keeps_unknown_fields_and_key_order_compactly(self, write_pages, tmp_path) -> None:
        text = (
            '[\n  {"Zeta": {"Nested": [1, 2.50]},  "InvoiceID" : "a1", "Type": "ACCREC",\n'
            '   "Status": "DRAFT", "NewXeroField": "kept", "UpdatedDateUTC": "\\/Date(1573755038314+0000)\\/"}\n]'
        )
        result = normalize_pages(INVOICES, TENANT, write_pages(text), tmp_path / "out")
        (row,) = rows(result.files["invoice"])
        assert row["_raw"] == (
            '{"Zeta":{"Nested":[1,2.50]},"InvoiceID":"a1","Type":"ACCREC","Status":"DRAFT",'
            '"NewXeroField":"kept","UpdatedDateUTC":"\\/Date(1573755038314+0000)\\/"}'
        )
        assert row["updated_date_utc"] == datetime(2019, 11, 14, 18, 10, 38, 314000, UTC)

    def test_iso_and_ms_dates_mix(self, make, write_pages, tmp_path) -> None:
        page = [
            make("invoices", 1),
            make("invoices", 2, Date="2018-10-21T00:00:00", UpdatedDateUTC="2019-03-05T18:59:06Z"),
        ]
        result = normalize_pages(INVOICES, TENANT, write_pages(page), tmp_path / "out")
        dates = [(row["date"], row["updated_date_utc"]) for row in rows(result.files["invoice"])]
        assert dates == [
            (date(2018, 10, 20), datetime(2019, 11, 14, 18, 10, 38, 314000, UTC)),
            (date(2018, 10, 21), datetime(2019, 3, 5, 18, 59, 6, tzinfo=UTC)),
        ]

    def test_missing_nested_object_is_null(self, make, write_pages, delete, tmp_path) -> None:
        result = normalize_pages(
            INVOICES, TENANT, write_pages([make("invoices", Contact=delete)]), tmp_path / "out"
        )
        (row,) = rows(result.files["invoice"])
        assert row["contact_id"] is None
        assert result.quarantined == 0

    def test_duplicates_are_all_kept_in_read_order(self, make, write_pages, tmp_path) -> None:
        first = make("invoices", Reference="old")
        second = make("invoices", Reference="new", UpdatedDateUTC="/Date(1573755099999+0000)/")
        result = normalize_pages(
            INVOICES, TENANT, write_pages([first], [second]), tmp_path / "out", start_seq=10
        )
        parents = rows(result.files["invoice"])
        assert [(row["reference"], row["_seq"]) for row in parents] == [("old", 10), ("new", 11)]
        assert [row["_seq"] for row in rows(result.files["invoice_line_item"])] == [10, 10, 11, 11]
        assert result.next_seq == 12


class TestQuarantine:
    @pytest.mark.parametrize(
        ("changes", "record_id", "reason"),
        [
            pytest.param({"InvoiceID": None}, None, "InvoiceID is missing", id="null-id"),
            pytest.param({"InvoiceID": ""}, None, "InvoiceID is missing", id="empty-id"),
            pytest.param(
                {"Date": "/Date(not-a-date)/"}, "ID", "Date: expected a Xero date like", id="bad-date"
            ),
            pytest.param(
                {"DueDate": "/Date(1+9900)/"}, "ID", "DueDate: expected a UTC offset", id="bad-offset"
            ),
            pytest.param(
                {"Total": "12,50"}, "ID", "Total: expected a decimal number, got '12,50'", id="garbage"
            ),
            pytest.param({"Total": "NaN"}, "ID", "Total: expected a finite decimal number", id="nan-string"),
            pytest.param({"SentToContact": "maybe"}, "ID", "SentToContact: expected a boolean", id="bool"),
            pytest.param(
                {"Contact": "ABC"}, "ID", "Contact.ContactID: expected Contact to be an object", id="nested"
            ),
            pytest.param(
                {"LineItems": {"a": 1}}, "ID", "LineItems: expected an array", id="children-not-list"
            ),
        ],
    )
    def test_bad_record_goes_to_quarantine_with_reason(
        self, make, write_pages, tmp_path, changes, record_id, reason
    ) -> None:
        bad = make("invoices", 2, **changes)
        good = make("invoices", 1)
        result = normalize_pages(
            INVOICES, TENANT, write_pages([good, bad, make("invoices", 3)]), tmp_path / "out"
        )
        assert result.quarantined == 1
        assert result.rows == {"invoice": 2, "invoice_line_item": 4}
        (row,) = rows(result.files["_quarantine"])
        assert reason in row["reason"]
        assert row["record_id"] == (bad["InvoiceID"] if record_id else None)
        assert row["entity"] == "invoices"
        assert row["table_name"] == "invoice"
        assert row["tenant_id"] == TENANT
        assert row["_seq"] == 1
        assert json.loads(row["_raw"])["InvoiceNumber"] == "INV-0001"
        # none of its rows or children made it into the typed tables
        assert bad["InvoiceID"] not in {r["invoice_id"] for r in rows(result.files["invoice"])}
        assert {r["_seq"] for r in rows(result.files["invoice_line_item"])} == {0, 2}

    def test_bad_line_item_quarantines_the_invoice(self, make, write_pages, tmp_path) -> None:
        bad = make("invoices")
        bad["LineItems"][1]["TaxAmount"] = "x"
        bad["LineItems"][0]["LineItemID"] = None
        result = normalize_pages(INVOICES, TENANT, write_pages([bad]), tmp_path / "out")
        (row,) = rows(result.files["_quarantine"])
        assert "LineItems[2].TaxAmount: expected a decimal number, got 'x'" in row["reason"]
        assert "LineItems[1].LineItemID is missing" in row["reason"]
        assert result.rows == {"invoice": 0, "invoice_line_item": 0}

    def test_too_many_decimal_places_is_quarantined_not_rounded(self, write_pages, tmp_path) -> None:
        text = '[{"InvoiceID": "a", "Total": 1.23456, "UpdatedDateUTC": "/Date(0+0000)/"}]'
        result = normalize_pages(INVOICES, TENANT, write_pages(text), tmp_path / "out")
        (row,) = rows(result.files["_quarantine"])
        assert row["reason"] == "Total: expected at most 4 decimal places, got Decimal('1.23456')"

    def test_non_object_record(self, write_pages, tmp_path) -> None:
        result = normalize_pages(INVOICES, TENANT, write_pages('[42, {"InvoiceID": "a"}]'), tmp_path / "out")
        (row,) = rows(result.files["_quarantine"])
        assert row["reason"] == "record: expected an object, got int"
        assert row["_raw"] == "42"
        assert result.rows["invoice"] == 1


class TestCursorAndFiles:
    def test_max_cursor(self, make, write_pages, tmp_path) -> None:
        pages = write_pages(
            [make("payments", 1, UpdatedDateUTC="/Date(1552537211350+0000)/")],
            [
                make("payments", 2, UpdatedDateUTC="/Date(9999999999999+0000)/", Amount="bad"),  # counts
                make("payments", 3, UpdatedDateUTC="/Date(garbage)/"),  # cursor unknown: ignored
                make("payments", 4, UpdatedDateUTC="/Date(1600000000000+0000)/"),
            ],
        )
        result = normalize_pages(PAYMENTS, TENANT, pages, tmp_path / "out")
        assert result.quarantined == 2
        assert result.max_cursor == datetime(2286, 11, 20, 17, 46, 39, 999000, UTC)

    def test_no_records_no_cursor_but_files_exist(self, write_pages, tmp_path) -> None:
        result = normalize_landing(INVOICES, TENANT, write_pages("[]").pop().parent, tmp_path / "out")
        assert result.max_cursor is None
        assert result.records_seen == 0
        for table in INVOICES.tables:
            assert pq.read_table(table_path(tmp_path / "out", table.name)).num_rows == 0
        assert pq.read_table(quarantine_path(tmp_path / "out")).num_rows == 0

    def test_pages_read_in_page_order(self, make, write_pages, tmp_path) -> None:
        paths = write_pages(*[[make("contacts", n)] for n in range(1, 12)])
        result = normalize_landing("contacts", TENANT, paths[0].parent, tmp_path / "out")
        ids = [row["contact_id"][-2:] for row in rows(result.files["contact"])]
        assert ids == [f"{n:02d}" for n in range(1, 12)]

    @pytest.mark.parametrize("text", ['{"Invoices": []}', "[{]", ""])
    def test_malformed_page_raises(self, write_pages, tmp_path, text) -> None:
        with pytest.raises(XeroLandingError, match=r"page-00001\.json: not a JSON array"):
            normalize_pages(INVOICES, TENANT, write_pages(text), tmp_path / "out")

    def test_page_that_is_not_utf8_raises(self, tmp_path) -> None:
        landing = tmp_path / "landing"
        landing.mkdir()
        (landing / "page-00001.json").write_bytes(b'[{"InvoiceID": "a", "Reference": "\xff"}]')
        with pytest.raises(XeroLandingError, match=r"page-00001\.json: not UTF-8"):
            normalize_landing(INVOICES, TENANT, landing, tmp_path / "out")

    def test_empty_tenant_rejected(self, tmp_path) -> None:
        with pytest.raises(ValueError, match="tenant_id"):
            normalize_pages(INVOICES, "", [], tmp_path)


INVOICES_RECORD_TEMPLATE = {
    "InvoiceID": "b1",
    "Type": "ACCREC",
    "Status": "AUTHORISED",
    "SubTotal": "__SUB__",
    "TotalTax": "__TAX__",
    "Total": "__TOTAL__",
    "AmountDue": "__BIG__",
    "UpdatedDateUTC": "/Date(1573755038314+0000)/",
}
