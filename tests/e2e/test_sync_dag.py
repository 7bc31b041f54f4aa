"""The whole product, three runs of the ``xero_sync`` DAG with ``airflow dags test`` against the local sandbox.

1. First run: the warehouse holds exactly what the sandbox serves, per tenant and table, with equal money sums.
2. No changes: exactly one API call per tenant × entity, and no row changes (not even its ``_loaded_at``).
3. After 3 invoice updates, 1 void, 1 payment deletion and 1 contact archived: exactly those rows change.

Runs on DuckDB and on PostgreSQL, with the same assertions.
"""

from __future__ import annotations

import json
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from scripts.local_airflow import LocalAirflow
from tests.e2e.support import CLIENT_ID, CLIENT_SECRET, dag_env
from xero.entities import ENTITIES
from xero_sandbox import Sandbox, SandboxConfig

pytestmark = pytest.mark.e2e

TABLE_KEYS = {
    "organisation": ("tenant_id", "organisation_id"),
    "account": ("tenant_id", "account_id"),
    "contact": ("tenant_id", "contact_id"),
    "invoice": ("tenant_id", "invoice_id"),
    "invoice_line_item": ("tenant_id", "invoice_id", "line_item_id"),
    "payment": ("tenant_id", "payment_id"),
}


def _records(sb: Sandbox, tenant_id: str, entity: str) -> list[dict[str, Any]]:
    return list(sb.records(tenant_id, entity))


def expected_counts(sb: Sandbox) -> dict[tuple[str, str], int]:
    counts = {}
    for tenant in sb.tenants:
        tid = tenant.tenant_id
        counts[(tid, "organisation")] = 1
        counts[(tid, "account")] = sb.count(tid, "accounts")
        counts[(tid, "contact")] = sb.count(tid, "contacts")
        invoices = _records(sb, tid, "invoices")
        counts[(tid, "invoice")] = len(invoices)
        counts[(tid, "invoice_line_item")] = sum(len(inv.get("LineItems") or []) for inv in invoices)
        counts[(tid, "payment")] = sb.count(tid, "payments")
    return counts


class WarehouseView:
    """Read the warehouse the DAG loaded, through the product's own connection."""

    def __init__(self, schema: str) -> None:
        from airflow.sdk import BaseHook

        self.hook = BaseHook.get_connection("xero_warehouse").get_hook()
        self.schema = schema

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        """Run ``sql``; ``{s}`` stands for the warehouse schema."""
        return [tuple(row) for row in self.hook.get_records(sql.format(s=self.schema))]

    def snapshot(self, table: str) -> dict[tuple[Any, ...], dict[str, Any]]:
        """Return every row of ``table`` by key, with all columns (``_raw`` parsed)."""
        conn = self.hook.get_conn()
        try:
            cursor = conn.cursor()
            cursor.execute(f"select * from {self.schema}.{table}")
            names = [column[0] for column in cursor.description]
            fetched = cursor.fetchall()
        finally:
            conn.close()
        result = {}
        for row in fetched:
            record = dict(zip(names, row, strict=True))
            if isinstance(record.get("_raw"), str):
                record["_raw"] = json.loads(record["_raw"])
            result[tuple(record[k] for k in TABLE_KEYS[table])] = record
        return result


def content(snapshot: dict[tuple[Any, ...], dict[str, Any]]) -> dict[tuple[Any, ...], dict[str, Any]]:
    """Drop the load bookkeeping columns, keeping what the row says."""
    return {
        key: {k: v for k, v in row.items() if k not in ("_loaded_at", "_run_id")}
        for key, row in snapshot.items()
    }


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def warehouse_env(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    """Return the warehouse connection and the schema to load into."""
    if request.param == "duckdb":
        return json.dumps({"conn_type": "duckdb", "host": str(tmp_path / "warehouse.duckdb")}), "xero"
    return request.getfixturevalue("postgres_url"), request.getfixturevalue("pg_schema")


def test_three_runs(tmp_path: Path, warehouse_env: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    warehouse_conn, schema = warehouse_env
    sb = Sandbox(
        SandboxConfig(
            seed=11, tenants=2, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, contacts=60, invoices=1300
        )
    )
    with sb.serve():
        env = dag_env(sb, tmp_path, warehouse_conn, schema)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        airflow = LocalAirflow(tmp_path / "airflow", env=env)
        airflow.prepare()

        def run_dag(label: str) -> None:
            result = airflow.dags_test("xero_sync")
            assert result.returncode == 0, (
                f"{label} failed:\n{result.stdout[-6000:]}\n{result.stderr[-3000:]}"
            )

        # 1. First run: everything lands.
        run_dag("first run")
        warehouse = WarehouseView(schema)
        loaded = {
            (tenant_id, table): count
            for table in TABLE_KEYS
            for tenant_id, count in warehouse.rows(
                f"select tenant_id, count(*) from {{s}}.{table} group by tenant_id"
            )
        }
        assert loaded == expected_counts(sb)
        for tenant in sb.tenants:
            invoices = _records(sb, tenant.tenant_id, "invoices")
            payments = _records(sb, tenant.tenant_id, "payments")
            [(invoice_total,)] = warehouse.rows(
                f"select sum(total) from {{s}}.invoice where tenant_id = '{tenant.tenant_id}'"
            )
            [(payment_total,)] = warehouse.rows(
                f"select sum(amount) from {{s}}.payment where tenant_id = '{tenant.tenant_id}'"
            )
            assert Decimal(invoice_total) == sum(Decimal(str(i["Total"])) for i in invoices)
            assert Decimal(payment_total) == sum(Decimal(str(p["Amount"])) for p in payments)
        before = {table: warehouse.snapshot(table) for table in TABLE_KEYS}
        data_dir = Path(env["XERO_DATA_DIR"])
        reports = sorted(
            p.relative_to(data_dir / "data_docs") for p in data_dir.glob("data_docs/*/*/index.html")
        )
        names = warehouse.rows("select distinct tenant_id, tenant_name from {s}.xero__revenue_by_month")
        assert sorted(names) == sorted(
            (t.tenant_id, t.name) for t in sb.tenants
        )  # marts carry organisation names
        assert len(reports) == len(sb.tenants) * len(
            ENTITIES
        )  # the validation report of every tenant × entity is kept
        leftovers = [p for p in data_dir.iterdir() if p.name not in ("data_docs", "_governor")]
        assert leftovers == []  # each run's work files are removed once its load commits

        # 2. Nothing changed: one call per tenant × entity, no row touched.
        sb.reset_requests()
        run_dag("second run")
        accounting = Counter(
            (r.tenant_id, r.path.rsplit("/", 1)[-1])
            for r in sb.requests
            if r.path.startswith("/api.xro/2.0/")
        )
        assert accounting == Counter(
            {(t.tenant_id, entity.path): 1 for t in sb.tenants for entity in ENTITIES.values()}
        )
        after_noop = {table: warehouse.snapshot(table) for table in TABLE_KEYS}
        assert after_noop == before

        # 3. Changes in one organisation: exactly those rows change.
        tenant_id = sb.tenants[0].tenant_id
        updated = [sb.update_invoice(tenant_id, Reference=f"changed {n}") for n in range(3)]
        voided = sb.void_invoice(tenant_id)
        deleted_payment = sb.delete_payment(tenant_id)
        archived = sb.archive_contact(tenant_id)
        paid_invoice = next(
            p["Invoice"]["InvoiceID"]
            for p in _records(sb, tenant_id, "payments")
            if p["PaymentID"] == deleted_payment
        )
        run_dag("third run")
        after = {table: warehouse.snapshot(table) for table in TABLE_KEYS}

        def changed(table: str) -> set[tuple[Any, ...]]:
            old, new = content(after_noop[table]), content(after[table])
            assert set(old) == set(new), f"{table}: rows appeared or vanished"
            return {key for key in new if new[key] != old[key]}

        assert changed("invoice") == {(tenant_id, i) for i in {*updated, voided, paid_invoice}}
        assert changed("payment") == {(tenant_id, deleted_payment)}
        assert changed("contact") == {(tenant_id, archived)}
        assert changed("account") == set()
        assert changed("organisation") == set()
        assert changed("invoice_line_item") == set()
        for table in ("account", "contact", "invoice", "payment"):
            untouched = set(after[table]) - {
                k for k in after[table] if after[table][k] != after_noop[table][k]
            }
            assert all(after[table][k]["_loaded_at"] == after_noop[table][k]["_loaded_at"] for k in untouched)
        invoices = after["invoice"]
        assert invoices[(tenant_id, voided)]["status"] == "VOIDED"
        assert [invoices[(tenant_id, i)]["reference"] for i in updated] == [f"changed {n}" for n in range(3)]
        assert after["payment"][(tenant_id, deleted_payment)]["status"] == "DELETED"
        assert after["contact"][(tenant_id, archived)]["contact_status"] == "ARCHIVED"
        assert loaded.keys() == expected_counts(sb).keys()
