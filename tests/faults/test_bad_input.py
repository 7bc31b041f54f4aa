"""Bad records from Xero, end to end through the pipeline steps: quarantined with the reason, unknown fields
kept in ``_raw``, and past the allowed share a clear failure that never advances the watermark.

The sandbox serves only good data, so the test edits the landing files between extract and transform, the
exact place where a bad record from Xero would sit.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.faults.conftest import SCHEMA, Harness, clean_checksum
from xero import pipeline
from xero.validate import XeroValidationFailed
from xero_sandbox import Sandbox


def _landing_records(extracted: dict[str, Any]) -> tuple[list[Path], list[list[dict[str, Any]]]]:
    paths = sorted((Path(extracted["work_dir"]) / "landing").glob("page-*.json"))
    return paths, [json.loads(path.read_text()) for path in paths]


def _rewrite(paths: list[Path], pages: list[list[dict[str, Any]]]) -> None:
    for path, records in zip(paths, pages, strict=True):
        path.write_text(json.dumps(records))


def _run_with(harness: Harness, corrupt: Any, run_id: str, **transform: Any) -> dict[str, Any]:
    [target] = pipeline.plan(harness.xero_conn_id, harness.warehouse_conn_id, SCHEMA, harness.entities)
    extracted = harness.extract(target, run_id)
    paths, pages = _landing_records(extracted)
    corrupt(pages)
    _rewrite(paths, pages)
    transformed = pipeline.transform(extracted, **transform)
    return pipeline.load(transformed, harness.warehouse_conn_id, SCHEMA, run_id)


def test_bad_records_are_quarantined_with_the_reason(
    sb: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    harness = Harness(sb, tmp_path / "bad", monkeypatch, entities=["invoices"])
    bad: dict[str, str] = {}

    def corrupt(pages: list[list[dict[str, Any]]]) -> None:
        first = pages[0]
        bad["missing_id"] = first[0].pop("InvoiceID")
        first[1]["DueDate"] = "/Date(not-a-date)/"
        bad["bad_date"] = first[1]["InvoiceID"]
        first[2]["Status"] = "FROZEN"
        bad["unknown_enum"] = first[2]["InvoiceID"]
        first[3]["BrandNewField"] = {"Nested": [1, 2]}
        bad["unexpected_field"] = first[3]["InvoiceID"]

    loaded = _run_with(harness, corrupt, "bad_run")

    total = sb.count(sb.tenants[0].tenant_id, "invoices")
    assert loaded["quarantined"] == 3
    assert harness.query(f"select count(*) from {SCHEMA}.invoice") == [(total - 3,)]
    reasons = dict(
        harness.query(
            f"select coalesce(record_id, '<none>'), reason from {SCHEMA}._quarantine where table_name = 'invoice'"
        )
    )
    assert set(reasons) == {"<none>", bad["bad_date"], bad["unknown_enum"]}
    assert "InvoiceID" in reasons["<none>"] or "invoice_id" in reasons["<none>"]
    assert "DueDate" in reasons[bad["bad_date"]] or "due_date" in reasons[bad["bad_date"]]
    assert reasons[bad["unknown_enum"]] == "expect_column_values_to_be_in_set(status): got 'FROZEN'"
    [(raw,)] = harness.query(
        f"select _raw from {SCHEMA}.invoice where invoice_id = '{bad['unexpected_field']}'"
    )
    assert json.loads(raw)["BrandNewField"] == {"Nested": [1, 2]}

    # Quarantined rows stay until Xero changes the record (or a full re-read): a rerun changes nothing.
    before = harness.snapshot(bookkeeping=True)
    assert harness.sync_until_done() == []
    assert harness.snapshot(bookkeeping=True) == before


def test_too_many_bad_records_fail_the_run_without_moving_the_watermark(
    sb: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    harness = Harness(sb, tmp_path / "bad", monkeypatch, entities=["invoices"])
    assert harness.sync_until_done() == []
    before = harness.snapshot(bookkeeping=True)
    tenant = sb.tenants[0].tenant_id
    sb.clock.advance(60)
    for n in range(4):
        sb.update_invoice(tenant, Reference=f"changed {n}")

    def corrupt(pages: list[list[dict[str, Any]]]) -> None:
        for record in pages[0]:
            record["Status"] = "FROZEN"

    with pytest.raises(XeroValidationFailed, match=r"invoices: \d+ of \d+ records quarantined"):
        _run_with(harness, corrupt, "failing_run", max_bad_share=0.05, max_bad_rows=0)

    assert harness.snapshot(bookkeeping=True) == before  # not a row, not the watermark

    assert harness.sync_until_done() == []  # the rerun reads the same changes again
    assert harness.checksum() == clean_checksum(sb, tmp_path / "reference", monkeypatch, ["invoices"])
