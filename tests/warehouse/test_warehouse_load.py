"""Loads on DuckDB and PostgreSQL: upsert, idempotence, children, quarantine, watermark, rollback."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from xero.entities import ACCOUNTS, INVOICES, PAYMENTS
from xero.exceptions import XeroWarehouseError
from xero.warehouse import LoadResult, Warehouse

T1, T2 = "tenant-1", "tenant-2"
WM1 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
WM2 = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


class Clock:
    """A settable UTC clock for ``_loaded_at``."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self) -> None:
        self.now += timedelta(hours=1)


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2024, 7, 1, 9, 0, tzinfo=UTC))


@pytest.fixture
def wh(dialect: str, warehouse_factory, clock: Clock) -> Warehouse:
    """Return a warehouse of the parametrized dialect with a settable clock and its schema created."""
    warehouse = warehouse_factory(dialect, clock=clock)
    warehouse.ensure_schema()
    return warehouse


def add_invoice(batch, tenant: str, invoice_id: str, total: str = "100.00", lines=("L1", "L2"), **extra):
    """Add an ACCREC invoice with one line per id in ``lines`` (each line 'total / n')."""
    amount = (Decimal(total) / len(lines)).quantize(Decimal("0.0001")) if lines else Decimal(0)
    values = {
        "invoice_id": invoice_id,
        "type": "ACCREC",
        "status": "AUTHORISED",
        "contact_id": "C1",
        "date": date(2024, 4, 30),
        "due_date": date(2024, 5, 30),
        "total": Decimal(total),
        "amount_due": Decimal(total),
        "currency_code": "NZD",
        "updated_date_utc": datetime(2024, 5, 1, tzinfo=UTC),
        **extra,
    }
    children = [
        {"line_item_id": f"{invoice_id}-{line}", "line_number": n, "line_amount": amount}
        for n, line in enumerate(lines, start=1)
    ]
    return batch.add_entity(INVOICES, tenant, children={"invoice_line_item": children}, **values)


def rows(wh: Warehouse, table: str, columns: str, where: str = "true") -> list[tuple]:
    return wh.query(f"SELECT {columns} FROM {{{{ schema }}}}.{table} WHERE {where} ORDER BY 1, 2")


def state(wh: Warehouse, tenant: str, entity: str) -> tuple | None:
    found = wh.query(
        "SELECT watermark, last_run_id, rows_loaded, rows_quarantined, api_calls, last_run_at "
        "FROM {{ schema }}._sync_state WHERE tenant_id = ? AND entity = ?",
        (tenant, entity),
    )
    return found[0] if found else None


def test_from_conn_id_picks_the_dialect(wh: Warehouse, dialect: str) -> None:
    assert wh.dialect == dialect


def test_unsupported_connection_type_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_XERO_WAREHOUSE_BAD", '{"conn_type": "mysql", "host": "db"}')
    with pytest.raises(XeroWarehouseError, match="has type 'mysql': set its type to duckdb or postgres"):
        Warehouse.from_conn_id("xero_warehouse_bad")


def test_load_inserts_typed_rows(wh: Warehouse, batch, tmp_path: Path) -> None:
    add_invoice(batch, T1, "INV-1", total="1234567.8901", currency_rate=Decimal("1.2345678901"), lines=("A",))
    add_invoice(batch, T1, "INV-2", lines=("A", "B", "C"), total="30.00")
    result = wh.load(T1, "invoices", batch.write(tmp_path), WM1, "run-1", {"api_calls": 2})

    assert result == LoadResult(
        inserted=2, children_replaced=4, watermark=WM1, children={"invoice_line_item": 4}
    )
    [(total, rate, invoice_date, updated)] = rows(
        wh, "invoice", "total, currency_rate, date, updated_date_utc", "invoice_id = 'INV-1'"
    )
    assert (total, rate) == (Decimal("1234567.8901"), Decimal("1.2345678901"))
    assert type(invoice_date) is date and invoice_date == date(2024, 4, 30)
    assert updated == datetime(2024, 5, 1, tzinfo=UTC) and updated.utcoffset() == timedelta(0)
    assert rows(wh, "invoice_line_item", "invoice_id, line_item_id, line_amount") == [
        ("INV-1", "INV-1-A", Decimal("1234567.8901")),
        ("INV-2", "INV-2-A", Decimal("10.0000")),
        ("INV-2", "INV-2-B", Decimal("10.0000")),
        ("INV-2", "INV-2-C", Decimal("10.0000")),
    ]


def test_timestamps_are_stored_as_utc_instants(wh: Warehouse, batch, tmp_path: Path) -> None:
    local = datetime(2024, 5, 2, 9, 30, tzinfo=timezone(timedelta(hours=12)))
    batch.add(ACCOUNTS.table, T1, account_id="A1", code="200", updated_date_utc=local)
    wh.load(T1, "accounts", batch.write(tmp_path), None, "run-1")
    [(stored, _)] = rows(wh, "account", "updated_date_utc, account_id")
    assert stored == local and stored.utcoffset() == timedelta(0)
    assert stored.replace(tzinfo=None) == datetime(2024, 5, 1, 21, 30)


def test_rerunning_the_same_data_changes_nothing(wh: Warehouse, batch, tmp_path: Path, clock: Clock) -> None:
    add_invoice(batch, T1, "INV-1")
    add_invoice(batch, T1, "INV-2")
    data = batch.write(tmp_path)
    wh.load(T1, "invoices", data, WM1, "run-1")
    before = rows(wh, "invoice", "invoice_id, _loaded_at, _run_id, total")
    before_lines = rows(wh, "invoice_line_item", "invoice_id, line_item_id, _loaded_at, _run_id")

    clock.advance()
    again = wh.load(T1, "invoices", data, WM1, "run-2")

    assert again == LoadResult(unchanged=2, watermark=WM1, children={"invoice_line_item": 0})
    assert rows(wh, "invoice", "invoice_id, _loaded_at, _run_id, total") == before
    assert rows(wh, "invoice_line_item", "invoice_id, line_item_id, _loaded_at, _run_id") == before_lines


def test_changed_record_updates_only_that_row(wh: Warehouse, new_batch, tmp_path: Path, clock: Clock) -> None:
    first = new_batch()
    add_invoice(first, T1, "INV-1")
    add_invoice(first, T1, "INV-2")
    wh.load(T1, "invoices", first.write(tmp_path / "1"), WM1, "run-1")
    loaded_at_1 = clock.now

    clock.advance()
    second = new_batch()
    add_invoice(second, T1, "INV-1")
    add_invoice(second, T1, "INV-2", total="250.00", status="PAID")
    result = wh.load(T1, "invoices", second.write(tmp_path / "2"), WM2, "run-2")

    assert (result.inserted, result.updated, result.unchanged) == (0, 1, 1)
    assert rows(wh, "invoice", "invoice_id, status, total, _run_id, _loaded_at") == [
        ("INV-1", "AUTHORISED", Decimal("100.0000"), "run-1", loaded_at_1),
        ("INV-2", "PAID", Decimal("250.0000"), "run-2", clock.now),
    ]
    assert rows(wh, "invoice_line_item", "invoice_id, _run_id, line_amount", "invoice_id = 'INV-1'") == [
        ("INV-1", "run-1", Decimal("50.0000")),
        ("INV-1", "run-1", Decimal("50.0000")),
    ]


def test_children_of_a_changed_parent_are_replaced(wh: Warehouse, new_batch, tmp_path: Path) -> None:
    first = new_batch()
    add_invoice(first, T1, "INV-1", lines=("A", "B", "C"))
    add_invoice(first, T1, "INV-2", lines=("A", "B"))
    wh.load(T1, "invoices", first.write(tmp_path / "1"), WM1, "run-1")

    second = new_batch()
    add_invoice(second, T1, "INV-1", lines=("A", "C"))  # line B removed in Xero
    result = wh.load(T1, "invoices", second.write(tmp_path / "2"), WM2, "run-2")

    assert (result.updated, result.children_replaced, result.children_deleted) == (1, 2, 3)
    assert rows(wh, "invoice_line_item", "invoice_id, line_item_id") == [
        ("INV-1", "INV-1-A"),
        ("INV-1", "INV-1-C"),
        ("INV-2", "INV-2-A"),
        ("INV-2", "INV-2-B"),
    ]


def test_a_parent_whose_children_alone_changed_is_rewritten(
    wh: Warehouse, new_batch, tmp_path: Path, clock: Clock
) -> None:
    def lines(invoice_id: str, *descriptions: str) -> list[dict]:
        return [
            {"line_item_id": f"{invoice_id}-{n}", "line_number": n, "description": text}
            for n, text in enumerate(descriptions, start=1)
        ]

    def load(name: str, children: dict[str, list[str]]) -> LoadResult:
        batch = new_batch()
        for invoice_id, descriptions in children.items():
            batch.add_entity(
                INVOICES,
                T1,
                children={"invoice_line_item": lines(invoice_id, *descriptions)},
                invoice_id=invoice_id,
                total=Decimal("10.00"),
            )
        return wh.load(T1, "invoices", batch.write(tmp_path / name), WM1, name)

    load("run-1", {"INV-1": ["a", "b"], "INV-2": ["a", "b"], "INV-3": ["a"], "INV-4": ["a"]})
    clock.advance()
    result = load("run-2", {"INV-1": ["a", "b"], "INV-2": ["a"], "INV-3": ["A"], "INV-4": ["a", "b"]})

    assert (result.updated, result.unchanged) == (3, 1)
    assert (result.children_deleted, result.children_replaced) == (4, 4)
    assert rows(wh, "invoice", "invoice_id, _run_id") == [
        ("INV-1", "run-1"),
        ("INV-2", "run-2"),
        ("INV-3", "run-2"),
        ("INV-4", "run-2"),
    ]
    assert rows(wh, "invoice_line_item", "line_item_id, description") == [
        ("INV-1-1", "a"),
        ("INV-1-2", "b"),
        ("INV-2-1", "a"),
        ("INV-3-1", "A"),
        ("INV-4-1", "a"),
        ("INV-4-2", "b"),
    ]


def test_duplicates_in_staging_keep_the_highest_seq(wh: Warehouse, batch, tmp_path: Path) -> None:
    add_invoice(batch, T1, "INV-1", total="200.00", lines=("NEW",), _seq=9)  # written first, read last
    add_invoice(batch, T1, "INV-1", total="100.00", lines=("OLD-A", "OLD-B"), _seq=3)
    result = wh.load(T1, "invoices", batch.write(tmp_path), WM1, "run-1")

    assert (result.inserted, result.unchanged, result.children_replaced) == (1, 0, 1)
    assert rows(wh, "invoice", "invoice_id, total") == [("INV-1", Decimal("200.0000"))]
    assert rows(wh, "invoice_line_item", "invoice_id, line_item_id") == [("INV-1", "INV-1-NEW")]


def test_only_the_given_tenants_rows_are_loaded(wh: Warehouse, batch, tmp_path: Path) -> None:
    add_invoice(batch, T1, "INV-1")
    add_invoice(batch, T2, "INV-9")
    batch.quarantine(T2, "invoices", "invoice", "INV-X", "bad status")
    data = batch.write(tmp_path)
    assert wh.load(T1, "invoices", data, WM1, "run-1").inserted == 1
    assert wh.table_counts() == {(T1, "invoice"): 1, (T1, "invoice_line_item"): 2}
    wh.load(T2, "invoices", data, WM2, "run-1")
    assert wh.table_counts() == {
        (T1, "invoice"): 1,
        (T1, "invoice_line_item"): 2,
        (T2, "invoice"): 1,
        (T2, "invoice_line_item"): 2,
    }


def test_quarantine_rows_are_stored_once_per_run(wh: Warehouse, batch, tmp_path: Path, clock: Clock) -> None:
    add_invoice(batch, T1, "INV-1")
    batch.quarantine(T1, "invoices", "invoice", "INV-7", "unknown status 'LOST'", '{"InvoiceID": "INV-7"}')
    batch.quarantine(T1, "invoices", "invoice", None, "unparseable record", "{not json")
    batch.quarantine(T1, "payments", "payment", "P-1", "bad date")  # another entity's row
    data = batch.write(tmp_path)

    assert wh.load(T1, "invoices", data, WM1, "run-1").quarantined == 2
    assert wh.load(T1, "invoices", data, WM1, "run-1").quarantined == 2  # a retry of the same run
    stored = rows(wh, "_quarantine", "record_id, reason, _raw, entity, table_name, _run_id, _quarantined_at")
    assert stored == [
        (
            "INV-7",
            "unknown status 'LOST'",
            '{"InvoiceID": "INV-7"}',
            "invoices",
            "invoice",
            "run-1",
            clock.now,
        ),
        (None, "unparseable record", "{not json", "invoices", "invoice", "run-1", clock.now),
    ]
    wh.load(T1, "invoices", data, WM1, "run-2")
    assert len(rows(wh, "_quarantine", "record_id, _run_id")) == 4
    assert state(wh, T1, "invoices")[3] == 2


def test_watermark_is_written_with_the_data_and_never_moves_back(
    wh: Warehouse, batch, tmp_path: Path
) -> None:
    add_invoice(batch, T1, "INV-1")
    data = batch.write(tmp_path)
    empty = tmp_path / "empty"
    assert wh.get_watermarks([T1]) == {(T1, name): None for name in wh.entities}

    wh.load(T1, "invoices", data, WM2, "run-1", {"api_calls": 3, "pages": 1})
    assert state(wh, T1, "invoices")[:5] == (WM2, "run-1", 1, 0, 3)
    assert wh.load(T1, "invoices", empty, WM1, "run-2").watermark == WM2  # older: ignored
    assert wh.load(T1, "invoices", empty, None, "run-3").watermark == WM2  # none: kept
    assert wh.get_watermarks([T1, T2])[(T1, "invoices")] == WM2
    later = WM2 + timedelta(days=1)
    wh.load(T1, "invoices", empty, later, "run-4", {"api_calls": 1})
    assert wh.get_watermarks() == {(T1, "invoices"): later}
    assert state(wh, T1, "invoices")[:5] == (later, "run-4", 0, 0, 1)


def test_naive_watermark_is_rejected(wh: Warehouse, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        wh.load(T1, "invoices", tmp_path, datetime(2024, 1, 1), "run-1")


@pytest.mark.parametrize("step", ["_replace_children", "_store_quarantine", "_write_sync_state"])
def test_a_failure_mid_load_rolls_back_data_and_watermark(
    wh: Warehouse, new_batch, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    first = new_batch()
    add_invoice(first, T1, "INV-1", lines=("A", "B"))
    wh.load(T1, "invoices", first.write(tmp_path / "1"), WM1, "run-1")
    snapshot = (
        rows(wh, "invoice", "invoice_id, total, _run_id, _loaded_at"),
        rows(wh, "invoice_line_item", "invoice_id, line_item_id, _run_id"),
        state(wh, T1, "invoices"),
    )

    second = new_batch()
    add_invoice(second, T1, "INV-1", total="999.00", lines=("A",))
    add_invoice(second, T1, "INV-2")
    second.quarantine(T1, "invoices", "invoice", "INV-3", "bad")

    def fail(*args, **kwargs):
        raise RuntimeError("injected failure")

    monkeypatch.setattr(Warehouse, step, fail)
    with pytest.raises(RuntimeError, match="injected failure"):
        wh.load(T1, "invoices", second.write(tmp_path / "2"), WM2, "run-2")

    assert (
        rows(wh, "invoice", "invoice_id, total, _run_id, _loaded_at"),
        rows(wh, "invoice_line_item", "invoice_id, line_item_id, _run_id"),
        state(wh, T1, "invoices"),
    ) == snapshot
    assert rows(wh, "_quarantine", "record_id, reason") == []
    assert wh.get_watermarks([T1])[(T1, "invoices")] == WM1


def test_a_failed_first_load_leaves_no_state(
    wh: Warehouse, batch, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_invoice(batch, T1, "INV-1")
    monkeypatch.setattr(Warehouse, "_store_quarantine", lambda *a, **k: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        wh.load(T1, "invoices", batch.write(tmp_path), WM1, "run-1")
    assert state(wh, T1, "invoices") is None
    assert wh.table_counts() == {}


def test_every_entity_loads(wh: Warehouse, batch, tmp_path: Path) -> None:
    batch.add(ACCOUNTS.table, T1, account_id="A1", code="200", **{"class": "REVENUE", "type": "SALES"})
    batch.add(PAYMENTS.table, T1, payment_id="P1", amount=Decimal("12.34"), date=date(2024, 5, 3))
    data = batch.write(tmp_path)
    assert wh.load(T1, "accounts", data, None, "run-1").inserted == 1
    assert wh.load(T1, PAYMENTS, data, None, "run-1").inserted == 1
    assert wh.load(T1, "contacts", data, None, "run-1") == LoadResult()
    assert rows(wh, "account", '"class", "type"') == [("REVENUE", "SALES")]
    assert rows(wh, "payment", "payment_id, amount, date") == [("P1", Decimal("12.3400"), date(2024, 5, 3))]
