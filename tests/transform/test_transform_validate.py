"""Validation with Great Expectations: dedupe, suites from the registry, quarantine and the threshold."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from xero.entities import ENTITIES
from xero.normalize import normalize_pages
from xero.schema import QUARANTINE_SCHEMA, arrow_schema
from xero.validate import XeroValidationFailed, reason_key, validate_tables, validation_summary

TENANT = "4f7a3d1e-9b2c-4e8f-a1d5-6c3b2a1f0e9d"


@pytest.fixture
def run(write_pages, tmp_path):
    """Normalise pages of one entity and validate them; return (result, out_dir)."""
    counter = iter(range(1000))

    def run_(entity: str, *pages, max_bad_share: float = 1.0, **kwargs):
        number = next(counter)
        paths = write_pages(*pages, directory=f"landing{number}")
        normalized = tmp_path / f"normalized{number}"
        normalize_pages(entity, TENANT, paths, normalized)
        out = tmp_path / f"validated{number}"
        return validate_tables(entity, normalized, out, max_bad_share=max_bad_share, **kwargs), out

    return run_


def table(out: Path, name: str) -> list[dict]:
    return pq.read_table(out / name / "part-00000.parquet").to_pylist()


def quarantine(out: Path) -> list[dict]:
    return table(out, "_quarantine")


class TestCleanData:
    @pytest.mark.parametrize("name", sorted(ENTITIES))
    def test_clean_records_pass_with_exact_schemas(self, name, run, make) -> None:
        result, out = run(name, [make(name, 1), make(name, 2)])
        entity = ENTITIES[name]
        assert result.quarantined == 0
        assert result.records == 2
        assert result.rows[entity.table.name] == 2
        for tbl in entity.tables:
            written = pq.read_table(out / tbl.name / "part-00000.parquet")
            assert written.schema.equals(arrow_schema(tbl), check_metadata=False)
        assert pq.read_table(out / "_quarantine" / "part-00000.parquet").schema.equals(
            QUARANTINE_SCHEMA, check_metadata=False
        )
        summary = validation_summary(result)
        assert json.loads(json.dumps(summary))["records"] == 2

    def test_inclusive_invoice_lines_already_include_tax(self, run, make) -> None:
        # Xero's own example: LineAmount 20.00 incl. TaxAmount 1.74; SubTotal 18.26 + TotalTax 1.74 = Total 20.00
        invoice = make(
            "invoices",
            LineAmountTypes="Inclusive",
            SubTotal=18.26,
            TotalTax=1.74,
            Total=20.00,
            LineItems=[{"LineItemID": "d2a06879", "LineAmount": 20.00, "TaxAmount": 1.74, "Quantity": 1.0}],
        )
        result, _ = run("invoices", [invoice])
        assert result.quarantined == 0

    def test_rounding_within_a_cent_passes(self, run, make) -> None:
        invoice = make("invoices", Total=115.01)
        result, _ = run("invoices", [invoice])
        assert result.quarantined == 0


class TestDedupe:
    def test_later_occurrence_wins_with_its_own_children(self, run, make) -> None:
        first = make("invoices", Reference="first")
        second = make("invoices", Reference="second", SubTotal=40.00, TotalTax=6.00, Total=46.00)
        second["LineItems"] = second["LineItems"][:1]
        result, out = run("invoices", [first, make("invoices", 7)], [second])
        invoices = {row["invoice_id"]: row for row in table(out, "invoice")}
        assert invoices[first["InvoiceID"]]["reference"] == "second"
        assert len(invoices) == 2
        lines = [row for row in table(out, "invoice_line_item") if row["invoice_id"] == first["InvoiceID"]]
        assert [(row["line_number"], row["_seq"]) for row in lines] == [(1, 2)]
        assert result.duplicates_dropped == 1
        assert result.records == 2

    def test_later_unparsable_occurrence_hides_the_earlier_one(self, run, make) -> None:
        good = make("invoices")
        bad = make("invoices", Date="/Date(oops)/")
        result, out = run("invoices", [good], [bad])
        assert table(out, "invoice") == []
        assert table(out, "invoice_line_item") == []
        (row,) = quarantine(out)
        assert row["_seq"] == 1
        assert result.quarantined_by_normalizer == 1

    def test_earlier_unparsable_occurrence_is_superseded(self, run, make) -> None:
        result, out = run("invoices", [make("invoices", Date="/Date(oops)/")], [make("invoices")])
        assert result.records == 2
        assert [row["_seq"] for row in table(out, "invoice")] == [1]
        assert len(quarantine(out)) == 1  # kept for the record, but the typed row is loaded


class TestQuarantineRules:
    def test_unknown_enum_moves_invoice_and_lines(self, run, make) -> None:
        result, out = run("invoices", [make("invoices", 1), make("invoices", 2, Status="FROZEN")])
        (row,) = quarantine(out)
        assert row["record_id"].endswith("00000002")
        assert row["reason"] == "expect_column_values_to_be_in_set(status): got 'FROZEN'"
        assert row["table_name"] == "invoice"
        assert json.loads(row["_raw"])["Status"] == "FROZEN"
        assert {r["invoice_id"][-8:] for r in table(out, "invoice_line_item")} == {"00000001"}
        assert result.rows == {"invoice": 1, "invoice_line_item": 2}
        assert result.quarantined_by_validator == 1

    @pytest.mark.parametrize(
        ("name", "changes", "reason"),
        [
            ("accounts", {"Type": "CRYPTO"}, "expect_column_values_to_be_in_set(type): got 'CRYPTO'"),
            ("accounts", {"Class": "MAGIC"}, "expect_column_values_to_be_in_set(class): got 'MAGIC'"),
            (
                "contacts",
                {"ContactStatus": "GONE"},
                "expect_column_values_to_be_in_set(contact_status): got 'GONE'",
            ),
            (
                "payments",
                {"PaymentType": "CASH"},
                "expect_column_values_to_be_in_set(payment_type): got 'CASH'",
            ),
            ("payments", {"Amount": 0}, "expect_column_values_to_be_between(amount): got 0.0000"),
            ("payments", {"Amount": -5.5}, "expect_column_values_to_be_between(amount): got -5.5000"),
            ("payments", {"Amount": None}, "expect_column_values_to_not_be_null(amount): got null"),
            ("contacts", {"UpdatedDateUTC": None}, "expect_column_values_to_not_be_null(updated_date_utc)"),
            ("invoices", {"Type": "ACCXYZ"}, "expect_column_values_to_be_in_set(type): got 'ACCXYZ'"),
            (
                "organisation",
                {"BaseCurrency": None},
                "expect_column_values_to_not_be_null(base_currency): got null",
            ),
            ("organisation", {"Name": None}, "expect_column_values_to_not_be_null(name): got null"),
            (
                "organisation",
                {"FinancialYearEndMonth": 13},
                "expect_column_values_to_be_between(financial_year_end_month): got 13",
            ),
        ],
    )
    def test_rule(self, run, make, name, changes, reason) -> None:
        result, out = run(name, [make(name, 1), make(name, 2, **changes)])
        (row,) = quarantine(out)
        assert row["reason"].startswith(reason)
        assert row["record_id"].endswith("00000002")
        assert result.rows[ENTITIES[name].table.name] == 1

    def test_total_not_sub_total_plus_tax(self, run, make) -> None:
        _, out = run("invoices", [make("invoices", Total=115.02, AmountDue=115.02)])
        (row,) = quarantine(out)
        assert (
            "expect_column_values_to_be_between(_total_minus_sub_total_and_tax): got 0.0200" in row["reason"]
        )
        assert "expect_column_values_to_be_between(_total_minus_line_items): got 0.0200" in row["reason"]

    def test_lines_do_not_add_up(self, run, make) -> None:
        invoice = make("invoices")
        invoice["LineItems"][1]["LineAmount"] = 61.00
        _, out = run("invoices", [invoice])
        (row,) = quarantine(out)
        assert row["reason"] == "expect_column_values_to_be_between(_total_minus_line_items): got -1.0000"

    def test_invoice_without_lines_but_a_total(self, run, make) -> None:
        _, out = run("invoices", [make("invoices", LineItems=[])])
        (row,) = quarantine(out)
        assert row["reason"] == "expect_column_values_to_be_between(_total_minus_line_items): got 115.0000"

    def test_duplicate_line_item_quarantines_parent_with_children(self, run, make) -> None:
        invoice = make("invoices")
        invoice["LineItems"][1]["LineItemID"] = invoice["LineItems"][0]["LineItemID"]
        result, out = run("invoices", [invoice, make("invoices", 2)])
        (row,) = quarantine(out)
        assert row["reason"] == (
            "invoice_line_item: expect_compound_columns_to_be_unique(tenant_id, invoice_id, line_item_id)"
        )
        assert result.rows == {"invoice": 1, "invoice_line_item": 2}

    def test_several_reasons_are_joined(self, run, make) -> None:
        _, out = run("payments", [make("payments", Status="VOID", Amount=-1)])
        (row,) = quarantine(out)
        assert set(row["reason"].split("; ")) == {
            "expect_column_values_to_be_in_set(status): got 'VOID'",
            "expect_column_values_to_be_between(amount): got -1.0000",
        }


class TestThresholdAndOutputs:
    def test_bad_share_over_threshold_raises_with_counts_and_reasons(self, run, make) -> None:
        page = [make("payments", n) for n in range(1, 9)]
        page += [make("payments", 9, Amount=0), make("payments", 10, Date="/Date(x)/")]
        with pytest.raises(XeroValidationFailed) as caught:
            run("payments", page, max_bad_share=0.1)
        message = str(caught.value)
        assert message.startswith("payments: 2 of 10 records quarantined (20.0% > allowed 10.0%)")
        assert "1 did not parse, 1 failed expectations" in message
        assert "expect_column_values_to_be_between(amount) (1)" in message
        assert "Date: expected a Xero date like /Date(1573755038314+0000)/ or ISO 8601 (1)" in message
        result = caught.value.result
        assert Path(result.files["_quarantine"]).exists()
        assert len(pq.read_table(result.files["_quarantine"])) == 2
        assert len(pq.read_table(result.files["payment"])) == 8

    def test_at_threshold_passes(self, run, make) -> None:
        page = [make("payments", n) for n in range(1, 10)] + [make("payments", 10, Amount=0)]
        result, _ = run("payments", page, max_bad_share=0.1)
        assert result.bad_share == pytest.approx(0.1)

    def test_invalid_threshold(self, tmp_path) -> None:
        with pytest.raises(ValueError, match="max_bad_share"):
            validate_tables("payments", tmp_path, tmp_path / "out", max_bad_share=5)

    def test_chunks_give_the_same_answer(self, run, make) -> None:
        pages = [
            [make("invoices", 1), make("invoices", 2, Status="NOPE")],
            [make("invoices", 3), make("invoices", 1, Reference="again")],
            [make("invoices", 4, Total=1)],
        ]
        whole, out_whole = run("invoices", *pages)
        chunked, out_chunked = run("invoices", *pages, chunk_rows=1)
        assert table(out_whole, "invoice") == table(out_chunked, "invoice")
        assert table(out_whole, "invoice_line_item") == table(out_chunked, "invoice_line_item")
        assert sorted(r["_seq"] for r in quarantine(out_whole)) == sorted(
            r["_seq"] for r in quarantine(out_chunked)
        )
        assert whole.rows == chunked.rows == {"invoice": 2, "invoice_line_item": 4}
        assert whole.quarantined == chunked.quarantined == 2
        assert {r["invoice_id"][-1] + r["reference"] for r in table(out_whole, "invoice")} == {
            "1again",
            "3Ref MK815",
        }

    def test_max_cursor_of_loaded_rows_and_summary(self, run, make) -> None:
        result, _ = run(
            "contacts",
            [
                make("contacts", 1, UpdatedDateUTC="/Date(1500000000000+0000)/"),
                make("contacts", 2, UpdatedDateUTC="/Date(1600000000000+0000)/", ContactStatus="X"),
            ],
        )
        assert result.max_cursor == datetime(2017, 7, 14, 2, 40, tzinfo=UTC)
        summary = result.summary()
        assert summary["max_cursor"] == "2017-07-14T02:40:00+00:00"
        assert summary["reasons"] == {"expect_column_values_to_be_in_set(contact_status)": 1}

    def test_data_docs(self, run, make, tmp_path) -> None:
        result, _ = run("payments", [make("payments", 1)], data_docs_dir=tmp_path / "docs")
        index = Path(result.data_docs)
        assert index.exists()
        assert "xero_payments_payment" in "".join(p.read_text() for p in (tmp_path / "docs").rglob("*.html"))


def test_reason_key_drops_values() -> None:
    assert reason_key("Total: expected a decimal number, got 'x'; DueDate: expected a date, got 1") == [
        "Total: expected a decimal number",
        "DueDate: expected a date",
    ]
    assert reason_key("expect_column_values_to_be_in_set(status): got 'X'") == [
        "expect_column_values_to_be_in_set(status)"
    ]
