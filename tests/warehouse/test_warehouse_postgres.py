"""PostgreSQL specifics: the same contents as DuckDB, and parallel loads of different tenants."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from xero.entities import ACCOUNTS, INVOICES, PAYMENTS
from xero.warehouse import Warehouse

pytestmark = pytest.mark.postgres

NOW = datetime(2024, 7, 1, 9, 0, tzinfo=UTC)


def fill(batch, tenant: str, invoices: int = 3) -> None:
    """Add accounts, invoices with lines and payments for ``tenant``."""
    batch.add(ACCOUNTS.table, tenant, account_id="A-200", code="200", name="Sales", **{"class": "REVENUE"})
    for n in range(invoices):
        lines = [
            {
                "line_item_id": f"{tenant}-{n}-{k}",
                "line_number": k,
                "quantity": Decimal("1.5"),
                "unit_amount": Decimal("0.3333"),
                "line_amount": Decimal("0.5000"),
                "discount_rate": Decimal("0.0000000001"),
                "account_code": "200",
                "description": "" if k == 1 else f'line, with "quotes" and\nnewline {k}',
            }
            for k in (1, 2)
        ]
        batch.add_entity(
            INVOICES,
            tenant,
            children={"invoice_line_item": lines},
            invoice_id=f"INV-{n}",
            type="ACCREC",
            status="AUTHORISED",
            date=date(2024, 1, 31),
            total=Decimal("1.0000"),
            currency_rate=Decimal("123456789012345678.0123456789"),
            sent_to_contact=n % 2 == 0,
            updated_date_utc=datetime(2024, 1, 31, 23, 59, 59, 999999, tzinfo=UTC) + timedelta(minutes=n),
            _raw=json.dumps({"InvoiceID": f"INV-{n}", "Note": "ünïcode ✓"}),
        )
    batch.add(PAYMENTS.table, tenant, payment_id="P-1", amount=Decimal("-0.0001"), date=date(2024, 2, 29))


def parsed(value):
    """Return JSON text parsed (DuckDB returns JSON as text, psycopg returns JSONB parsed)."""
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def dump(wh: Warehouse) -> dict[str, list[tuple]]:
    """Return every registry and bookkeeping table's rows in key order, JSON parsed."""
    contents = {}
    for table in ("account", "invoice", "invoice_line_item", "payment", "_sync_state", "_quarantine"):
        rows = wh.query(f"SELECT * FROM {{{{ schema }}}}.{table} ORDER BY 1, 2, 3")
        contents[table] = [tuple(parsed(v) for v in row) for row in rows]
    return contents


def test_the_same_data_gives_identical_tables_on_duckdb_and_postgres(
    warehouse_factory, batch, tmp_path: Path
) -> None:
    fill(batch, "t1")
    batch.quarantine("t1", "invoices", "invoice", "INV-X", "unknown type", "{broken")
    data = batch.write(tmp_path / "data")
    dumps = []
    for dialect in ("duckdb", "postgres"):
        wh = warehouse_factory(dialect, clock=lambda: NOW)
        wh.ensure_schema()
        for entity in ("accounts", "invoices", "payments"):
            wh.load("t1", entity, data, datetime(2024, 2, 1, tzinfo=UTC), "run-1", {"api_calls": 1})
        dumps.append(dump(wh))
    duck, pg = dumps
    assert len(duck["invoice_line_item"]) == 6
    assert [row[4] for row in duck["invoice_line_item"]].count("") == 3  # empty text stays distinct from NULL
    assert duck == pg


def test_parallel_loads_of_different_tenants_all_land(warehouse_factory, new_batch, tmp_path: Path) -> None:
    wh = warehouse_factory("postgres")
    wh.ensure_schema()
    tenants = [f"tenant-{n}" for n in range(8)]
    data = {}
    for tenant in tenants:
        batch = new_batch()
        fill(batch, tenant, invoices=50)
        data[tenant] = batch.write(tmp_path / tenant)
    start = threading.Barrier(len(tenants))

    def load(tenant: str) -> int:
        own = Warehouse.from_conn_id("xero_warehouse_test_postgres", schema=wh.schema)
        start.wait(timeout=30)
        total = 0
        for entity in ("accounts", "invoices", "payments"):
            total += own.load(
                tenant, entity, data[tenant], datetime(2024, 2, 1, tzinfo=UTC), "run-1"
            ).inserted
        return total

    with ThreadPoolExecutor(max_workers=len(tenants)) as pool:
        inserted = list(pool.map(load, tenants))

    assert inserted == [52] * len(tenants)
    counts = wh.table_counts()
    assert all(counts[(tenant, "invoice_line_item")] == 100 for tenant in tenants)
    assert len(wh.get_watermarks()) == 3 * len(tenants)


def test_parallel_loads_of_the_same_tenant_serialise(warehouse_factory, batch, tmp_path: Path) -> None:
    wh = warehouse_factory("postgres")
    wh.ensure_schema()
    fill(batch, "t1", invoices=20)
    data = batch.write(tmp_path)

    def load(n: int):
        own = Warehouse.from_conn_id("xero_warehouse_test_postgres", schema=wh.schema)
        return own.load("t1", "invoices", data, datetime(2024, 2, n + 1, tzinfo=UTC), f"run-{n}")

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(load, range(4)))

    assert sorted(r.inserted for r in results) == [0, 0, 0, 20]
    assert wh.get_watermarks(["t1"])[("t1", "invoices")] == datetime(2024, 2, 4, tzinfo=UTC)
