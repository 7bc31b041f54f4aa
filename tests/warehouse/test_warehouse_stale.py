"""No silent staleness: a stored row whose later read was quarantined says so, until a later version loads.

On DuckDB and PostgreSQL: ``_stale_since`` and ``_quarantine_reason`` on parent tables, set and cleared in the
load's transaction, and ``_sync_state.stale_rows``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.warehouse.test_warehouse_load import T1, T2, WM1, Clock, add_invoice, rows
from xero.entities import ENTITIES
from xero.warehouse import Warehouse


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2024, 7, 1, 9, 0, tzinfo=UTC))


@pytest.fixture
def wh(dialect: str, warehouse_factory, clock: Clock) -> Warehouse:
    warehouse = warehouse_factory(dialect, clock=clock)
    warehouse.ensure_schema()
    return warehouse


def stale(wh: Warehouse) -> dict[tuple[str, str], tuple]:
    return {
        (tenant, invoice): (since, reason)
        for tenant, invoice, since, reason in rows(
            wh, "invoice", "tenant_id, invoice_id, _stale_since, _quarantine_reason"
        )
    }


def stale_rows(wh: Warehouse, tenant: str) -> int:
    [(count,)] = wh.query(
        "SELECT stale_rows FROM {{ schema }}._sync_state WHERE tenant_id = ? AND entity = 'invoices'",
        (tenant,),
    )
    return count


def test_a_quarantined_later_read_marks_the_stored_row_until_a_later_version_loads(
    wh: Warehouse, new_batch, tmp_path: Path, clock: Clock
) -> None:
    first = new_batch()
    for tenant in (T1, T2):
        add_invoice(first, tenant, "INV-1")
        add_invoice(first, tenant, "INV-2")
    wh.load(T1, "invoices", first.write(tmp_path / "1"), WM1, "run-1")
    wh.load(T2, "invoices", first.write(tmp_path / "1"), WM1, "run-1")
    assert set(stale(wh).values()) == {(None, None)}

    clock.advance()
    marked_at = clock.now
    second = new_batch()
    second.quarantine(T1, "invoices", "invoice", "INV-1", "expect_column_values_to_be_in_set(type): got 'X'")
    add_invoice(second, T1, "INV-2", total="200.00")
    result = wh.load(T1, "invoices", second.write(tmp_path / "2"), WM1, "run-2")
    assert result.stale == 1
    assert stale(wh) == {
        (T1, "INV-1"): (marked_at, "expect_column_values_to_be_in_set(type): got 'X'"),
        (T1, "INV-2"): (None, None),
        (T2, "INV-1"): (None, None),  # another tenant's record of the same id is not touched
        (T2, "INV-2"): (None, None),
    }
    assert stale_rows(wh, T1) == 1
    [(total,)] = wh.query(
        "SELECT total FROM {{ schema }}.invoice WHERE tenant_id = ? AND invoice_id = 'INV-1'", (T1,)
    )
    assert str(total) == "100.0000"  # the older version stays, marked

    clock.advance()
    third = new_batch()  # quarantined again, for another reason: still stale since the first time
    third.quarantine(T1, "invoices", "invoice", "INV-1", "Date: expected a Xero date, got 'x'")
    wh.load(T1, "invoices", third.write(tmp_path / "3"), WM1, "run-3")
    assert stale(wh)[(T1, "INV-1")] == (marked_at, "Date: expected a Xero date, got 'x'")

    clock.advance()
    fourth = new_batch()  # a later version loads: the row is current again
    add_invoice(fourth, T1, "INV-1", total="300.00")
    result = wh.load(T1, "invoices", fourth.write(tmp_path / "4"), WM1, "run-4")
    assert (result.updated, result.stale) == (1, 0)
    assert stale(wh)[(T1, "INV-1")] == (None, None)
    assert stale_rows(wh, T1) == 0


def test_an_unchanged_later_read_clears_the_mark(wh: Warehouse, new_batch, tmp_path: Path) -> None:
    first = new_batch()
    add_invoice(first, T1, "INV-1")
    wh.load(T1, "invoices", first.write(tmp_path / "1"), WM1, "run-1")
    second = new_batch()
    second.quarantine(T1, "invoices", "invoice", "INV-1", "too strict a rule")
    wh.load(T1, "invoices", second.write(tmp_path / "2"), WM1, "run-2")
    assert stale_rows(wh, T1) == 1
    result = wh.load(T1, "invoices", first.write(tmp_path / "3"), WM1, "run-3")  # the same version again
    assert (result.unchanged, result.stale) == (1, 0)
    assert stale(wh)[(T1, "INV-1")] == (None, None)


def test_within_one_batch_the_later_read_decides(wh: Warehouse, new_batch, tmp_path: Path) -> None:
    first = new_batch()
    add_invoice(first, T1, "INV-1")
    add_invoice(first, T1, "INV-2")
    wh.load(T1, "invoices", first.write(tmp_path / "1"), WM1, "run-1")
    batch = new_batch()
    batch.quarantine(T1, "invoices", "invoice", "INV-1", "read first, bad")
    add_invoice(batch, T1, "INV-1", total="150.00")  # read later, good: the row is current
    add_invoice(batch, T1, "INV-2", total="150.00")
    batch.quarantine(T1, "invoices", "invoice", "INV-2", "read later, bad")  # the stored row is stale
    result = wh.load(T1, "invoices", batch.write(tmp_path / "2"), WM1, "run-2")
    marks = stale(wh)
    assert marks[(T1, "INV-1")] == (None, None)
    assert marks[(T1, "INV-2")][1] == "read later, bad"
    assert result.stale == 1


def test_only_parent_tables_carry_the_marks(wh: Warehouse) -> None:
    found = wh.query(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = ? AND column_name IN ('_stale_since', '_quarantine_reason')",
        (wh.schema,),
    )
    assert sorted(found) == sorted(
        (table, column)
        for table in (entity.table.name for entity in ENTITIES.values())  # every parent table, no child table
        for column in ("_quarantine_reason", "_stale_since")
    )
