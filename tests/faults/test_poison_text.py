"""Text a warehouse cannot store, sent by Xero: a contact named with U+0000 and one with a lone surrogate.

Both load on DuckDB and on PostgreSQL, with the same typed values (NUL removed, the lone surrogate shown as
U+FFFD, each cleaned value counted), while ``_raw`` keeps every record's JSON byte for byte as the sandbox
sent it, in the contact and wherever the contact is embedded (invoices, payments).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.faults.conftest import SCHEMA, Harness
from xero import pipeline
from xero_sandbox import Sandbox
from xero_sandbox.data import encode_json

NUL_NAME = "Acme\x00 Holdings"
LONE_NAME = "Café \ud83d Pty"  # the first half of an emoji's surrogate pair, cut off
ENTITIES = ["contacts", "invoices", "payments"]


def _poison(sb: Sandbox) -> dict[str, str]:
    tenant = sb.tenants[0].tenant_id
    return {
        "nul": sb.rename_contact(tenant, NUL_NAME),
        "lone": sb.rename_contact(tenant, LONE_NAME),
    }


def _sent(sb: Sandbox, entity: str, record_id: str) -> str:
    """Return the JSON text of a record exactly as the sandbox serves it on a paged list."""
    org = sb.org(sb.tenants[0].tenant_id)
    pos = org.find(entity, record_id)
    rendered = org.render_page(entity, [pos])[0]
    return bytes(rendered).decode() if entity == "invoices" else encode_json(rendered).decode()


def _embedding(sb: Sandbox, contact_id: str) -> dict[str, str]:
    """Return an invoice and a payment that embed the contact (their ids by entity)."""
    tenant = sb.tenants[0].tenant_id
    found: dict[str, str] = {}
    for record in sb.records(tenant, "invoices"):
        if record["Contact"]["ContactID"] == contact_id and record.get("Payments"):
            found["invoices"] = record["InvoiceID"]
            found["payments"] = record["Payments"][0]["PaymentID"]
            return found
    raise AssertionError("the contact has no paid invoice: pick another seed")


def _transformed(harness: Harness, schema: str) -> list[dict[str, Any]]:
    targets = pipeline.plan(harness.xero_conn_id, harness.warehouse_conn_id, schema, ENTITIES)
    return [pipeline.transform(harness.extract(target, "poison_run")) for target in targets]


def _rows(query: Any, schema: str) -> dict[str, Any]:
    names = dict(query(f"select contact_id, name from {schema}.contact"))
    raws = {
        entity: dict(query(f"select {key}, CAST(_raw AS TEXT) from {schema}.{table}"))
        for entity, table, key in (
            ("contacts", "contact", "contact_id"),
            ("invoices", "invoice", "invoice_id"),
            ("payments", "payment", "payment_id"),
        )
    }
    return {"names": names, "raws": raws}


def _check(rows: dict[str, Any], sb: Sandbox, poison: dict[str, str], embedding: dict[str, str]) -> None:
    names = rows["names"]
    assert names[poison["nul"]] == "Acme Holdings"
    assert names[poison["lone"]] == "Café \ufffd Pty"
    for contact_id in poison.values():
        assert rows["raws"]["contacts"][contact_id] == _sent(sb, "contacts", contact_id)
    assert "\\u0000" in rows["raws"]["contacts"][poison["nul"]]
    assert "\\ud83d" in rows["raws"]["contacts"][poison["lone"]]
    for entity, record_id in embedding.items():
        raw = rows["raws"][entity][record_id]
        assert raw == _sent(sb, entity, record_id)
        assert "\\ud83d" in raw


def _cleaned(transformed: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for result in transformed:
        for column, count in result["cleaned_text"].items():
            counts[column] = counts.get(column, 0) + count
    return counts


def test_poison_text_loads_into_duckdb_cleaned_with_raw_exact(
    sb: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    poison = _poison(sb)
    embedding = _embedding(sb, poison["lone"])
    harness = Harness(sb, tmp_path / "duckdb", monkeypatch, entities=ENTITIES)

    transformed = _transformed(harness, SCHEMA)
    loaded = [
        pipeline.load(result, harness.warehouse_conn_id, SCHEMA, "poison_run") for result in transformed
    ]

    assert _cleaned(transformed) == {"contact.name": 2}
    assert all(result["quarantined"] == 0 for result in loaded)
    _check(_rows(harness.query, SCHEMA), sb, poison, embedding)
    # a later run reads them again unchanged: nothing to write
    assert all(r["inserted"] == 0 and r["updated"] == 0 for r in harness.run())


@pytest.mark.postgres
def test_poison_text_loads_the_same_into_postgres_and_duckdb(
    sb: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, postgres_url: str, pg_schema: str
) -> None:
    import psycopg

    poison = _poison(sb)
    embedding = _embedding(sb, poison["lone"])
    harness = Harness(sb, tmp_path / "both", monkeypatch, entities=ENTITIES)
    postgres_conn = "warehouse_postgres"
    monkeypatch.setenv(f"AIRFLOW_CONN_{postgres_conn.upper()}", postgres_url)
    pipeline.plan(harness.xero_conn_id, postgres_conn, pg_schema, ENTITIES)  # creates the Postgres tables

    transformed = _transformed(harness, SCHEMA)
    for result in transformed:  # a load removes the run's files once committed: keep a copy of them
        shutil.copytree(result["work_dir"], f"{result['work_dir']}.kept")
    for result in transformed:
        for conn_id, schema in ((postgres_conn, pg_schema), (harness.warehouse_conn_id, SCHEMA)):
            shutil.copytree(f"{result['work_dir']}.kept", result["work_dir"], dirs_exist_ok=True)
            assert pipeline.load(result, conn_id, schema, "poison_run")["quarantined"] == 0

    def pg_query(sql: str) -> list[tuple[Any, ...]]:
        with psycopg.connect(postgres_url) as conn:
            return conn.execute(sql).fetchall()

    on_postgres = _rows(pg_query, pg_schema)
    on_duckdb = _rows(harness.query, SCHEMA)
    _check(on_postgres, sb, poison, embedding)
    assert on_postgres == on_duckdb  # typed values and _raw alike on both warehouses
    [(raw_type,)] = pg_query(
        "select data_type from information_schema.columns where table_schema = "
        f"'{pg_schema}' and table_name = 'contact' and column_name = '_raw'"
    )
    assert raw_type == "json"
    assert json.loads(on_postgres["raws"]["contacts"][poison["nul"]])["Name"] == NUL_NAME
    # loading the same rows again changes nothing on Postgres either (rows compare by their exact text)
    for result in transformed:
        shutil.copytree(f"{result['work_dir']}.kept", result["work_dir"], dirs_exist_ok=True)
        again = pipeline.load(result, postgres_conn, pg_schema, "poison_run_2")
        assert again["inserted"] == 0 and again["updated"] == 0
