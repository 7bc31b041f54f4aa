"""Schema management on DuckDB and PostgreSQL: idempotent creation, types, keys, evolution."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

from xero.entities import INVOICES, Column
from xero.warehouse import Warehouse

TABLES = {
    "_quarantine",
    "_sync_state",
    "account",
    "contact",
    "organisation",
    "invoice",
    "invoice_line_item",
    "payment",
}


def columns(wh: Warehouse, table: str) -> dict[str, tuple]:
    found = wh.query(
        "SELECT column_name, data_type, numeric_precision, numeric_scale FROM information_schema.columns "
        "WHERE table_schema = ? AND table_name = ?",
        (wh.schema, table),
    )
    return {name: (data_type.upper(), precision, scale) for name, data_type, precision, scale in found}


def test_ensure_schema_creates_every_table_once(warehouse: Warehouse) -> None:
    found = warehouse.query(
        "SELECT DISTINCT table_name FROM information_schema.columns WHERE table_schema = ?",
        (warehouse.schema,),
    )
    assert {name for (name,) in found} == TABLES
    assert warehouse.ensure_schema() == []


def test_column_types_follow_the_registry(warehouse: Warehouse) -> None:
    invoice = columns(warehouse, "invoice")
    assert invoice["total"][1:] == (19, 4)
    assert invoice["currency_rate"][1:] == (28, 10)
    assert invoice["date"][0] == "DATE"
    assert "TIME ZONE" in invoice["updated_date_utc"][0]
    assert "TIME ZONE" in invoice["_loaded_at"][0]
    assert invoice["sent_to_contact"][0] == "BOOLEAN"
    assert invoice["_raw"][0] == ("JSONB" if warehouse.dialect == "postgres" else "JSON")
    assert columns(warehouse, "invoice_line_item")["line_number"][0] == "BIGINT"
    assert columns(warehouse, "invoice_line_item")["quantity"][1:] == (19, 4)
    assert columns(warehouse, "account")["class"][0] in ("TEXT", "VARCHAR")
    assert columns(warehouse, "_quarantine")["_raw"][0] in ("TEXT", "VARCHAR")  # may hold malformed JSON


def test_keys_lead_with_the_tenant(warehouse: Warehouse) -> None:
    """Registry keys are PRIMARY KEYs on PostgreSQL; on DuckDB they are NOT NULL but undeclared.

    A DuckDB key index is held in memory by every inserting transaction, so the load keeps the keys
    unique instead; the bookkeeping tables keep theirs.
    """
    found = warehouse.query(
        "SELECT tc.table_name, kcu.column_name, kcu.ordinal_position "
        "FROM information_schema.table_constraints tc JOIN information_schema.key_column_usage kcu "
        "ON kcu.constraint_name = tc.constraint_name AND kcu.table_schema = tc.table_schema "
        "AND kcu.table_name = tc.table_name "
        "WHERE tc.table_schema = ? AND tc.constraint_type = 'PRIMARY KEY' ORDER BY 1, 3",
        (warehouse.schema,),
    )
    keys: dict[str, list[str]] = {}
    for table, column, _ in found:
        keys.setdefault(table, []).append(column)
    assert keys["_sync_state"] == ["tenant_id", "entity"]
    if warehouse.dialect == "postgres":
        assert keys["invoice"] == ["tenant_id", "invoice_id"]
        assert keys["invoice_line_item"] == ["tenant_id", "invoice_id", "line_item_id"]
        assert set(keys) == TABLES
    else:
        assert set(keys) == {"_sync_state", "_quarantine"}
    not_null = warehouse.query(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = ? AND table_name = 'invoice_line_item' AND is_nullable = 'NO' ORDER BY 1",
        (warehouse.schema,),
    )
    assert not_null == [("_loaded_at",), ("invoice_id",), ("line_item_id",), ("tenant_id",)]


def test_a_new_registry_column_is_added_and_loaded(
    dialect: str, warehouse_factory, batch, tmp_path: Path
) -> None:
    old = warehouse_factory(dialect)
    old.ensure_schema()
    batch.add(INVOICES.table, "t1", invoice_id="INV-1", total=1)
    old.load("t1", "invoices", batch.write(tmp_path / "1"), None, "run-1")

    table = dataclasses.replace(
        INVOICES.table,
        columns=(*INVOICES.table.columns, Column("planned_payment_date", "PlannedPaymentDate", "date")),
    )
    invoices = dataclasses.replace(INVOICES, table=table)
    new = warehouse_factory(dialect, schema=old.schema, entities=[invoices])
    applied = new.ensure_schema()

    assert len(applied) == 1 and 'ADD COLUMN "planned_payment_date" DATE' in applied[0]
    assert columns(new, "invoice")["planned_payment_date"][0] == "DATE"
    assert new.ensure_schema() == []
    assert new.query("SELECT invoice_id, planned_payment_date FROM {{ schema }}.invoice") == [("INV-1", None)]

    batch.rows.clear()
    batch.add(
        table, "t1", invoice_id="INV-1", total=1, planned_payment_date=datetime(2024, 9, 1, tzinfo=UTC).date()
    )
    result = new.load("t1", invoices, batch.write(tmp_path / "2"), None, "run-2")
    assert result.updated == 1
    rows = new.query("SELECT invoice_id, CAST(planned_payment_date AS TEXT) FROM {{ schema }}.invoice")
    assert rows == [("INV-1", "2024-09-01")]
