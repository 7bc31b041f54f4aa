"""One odd record among a few changes, through the real steps (sandbox → extract → validate → load → replay).

On DuckDB and PostgreSQL: an unknown invoice ``Type`` on one of three changed invoices is quarantined and the other
two load (one odd record no longer fails a small batch); the stored older version of that invoice says it is
stale and why; the other organisation is untouched; once the rule accepts the new type, a replay loads it and the
mark goes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from xero import pipeline
from xero.entities import ENTITIES
from xero.replay import QuarantineFilter, replay
from xero.warehouse import Warehouse
from xero_sandbox import Sandbox, SandboxConfig, airflow_connection

XERO = "xero_odd_record"


def sync(
    wh: Warehouse, conn_id: str, data_dir: Path, run_id: str, corrupt: Any = None
) -> list[dict[str, Any]]:
    """Run every tenant's invoices through the pipeline steps; ``corrupt`` may edit the landed records."""
    results = []
    for target in pipeline.plan(XERO, conn_id, wh.schema, ["invoices"]):
        extracted = pipeline.extract(
            XERO, target["tenant_id"], "invoices", target["modified_since"], data_dir, run_id
        )
        if corrupt is not None:
            for page in sorted((Path(extracted["work_dir"]) / "landing").glob("page-*.json")):
                records = json.loads(page.read_text())
                corrupt(target["tenant_id"], records)
                page.write_text(json.dumps(records))
        transformed = pipeline.transform(extracted)  # the DAG's defaults: 5 % and 10 records
        results.append(pipeline.load(transformed, conn_id, wh.schema, run_id))
    return results


def test_one_odd_record_among_three_changes(
    dialect: str, warehouse_factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sb = Sandbox(SandboxConfig(seed=3, tenants=2, accounts=8, contacts=10, invoices=20, frozen_clock=True))
    wh = warehouse_factory(dialect)
    conn_id = f"xero_warehouse_test_{dialect}"
    first, second = (tenant.tenant_id for tenant in sb.tenants)
    with sb.serve() as url:
        connection = airflow_connection(
            url,
            client_id=sb.config.client_id,
            client_secret=sb.config.client_secret,
            token_file=tmp_path / "tokens.json",
            refresh_token=sb.issue_refresh_token(),
        )
        monkeypatch.setenv(f"AIRFLOW_CONN_{XERO.upper()}", json.dumps(connection))
        sync(wh, conn_id, tmp_path / "data", "run-1")
        sb.clock.advance(60)
        changed = [sb.update_invoice(first, Reference=f"changed {n}") for n in range(3)]
        odd = changed[1]

        def unknown_type(tenant_id: str, records: list[dict[str, Any]]) -> None:
            for record in records:
                if tenant_id == first and record["InvoiceID"] == odd:
                    record["Type"] = "ACCXYZ"

        results = {r["tenant_id"]: r for r in sync(wh, conn_id, tmp_path / "data", "run-2", unknown_type)}

    assert results[first]["quarantined"] == 1 and results[first]["updated"] == 2
    assert results[first]["stale"] == 1
    assert results[second]["quarantined"] == 0
    rows = {
        invoice_id: (reference, stale_since is not None, reason)
        for invoice_id, reference, stale_since, reason in wh.query(
            "SELECT invoice_id, reference, _stale_since, _quarantine_reason FROM {{ schema }}.invoice "
            "WHERE tenant_id = ?",
            (first,),
        )
    }
    reason = "expect_column_values_to_be_in_set(type): got 'ACCXYZ'"
    assert rows[changed[0]] == ("changed 0", False, None)
    assert rows[changed[2]] == ("changed 2", False, None)
    assert rows[odd][1:] == (True, reason) and rows[odd][0] != "changed 1"  # the older version, marked
    [(stale_rows,)] = wh.query(
        "SELECT stale_rows FROM {{ schema }}._sync_state WHERE tenant_id = ? AND entity = 'invoices'",
        (first,),
    )
    assert stale_rows == 1

    enums = ENTITIES["invoices"].enums
    monkeypatch.setitem(enums, "type", enums["type"] | {"ACCXYZ"})
    [outcome] = replay(wh, QuarantineFilter(tenant_id=first, entity="invoices"))
    assert outcome.loaded is not None and outcome.loaded.updated == 1
    [(reference, invoice_type, stale_since)] = wh.query(
        "SELECT reference, type, _stale_since FROM {{ schema }}.invoice WHERE tenant_id = ? AND invoice_id = ?",
        (first, odd),
    )
    assert (reference, invoice_type, stale_since) == ("changed 1", "ACCXYZ", None)
    assert wh.query("SELECT count(*) FROM {{ schema }}._quarantine") == [(0,)]
