"""The DuckDB read copy: where it lives, what it holds, when it is rewritten, and what readers see.

Readers run in processes of their own (DuckDB shares one database instance per file within a process, so
only another process shows what an analyst's CLI or dashboard would see).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.warehouse.duckdb_clients import NEWEST_1X, OLDEST_READER, current_client, duckdb_client, dump
from xero import pipeline
from xero.entities import ACCOUNTS, CONTACTS, INVOICES, PAYMENTS
from xero.warehouse import Warehouse
from xero.warehouse import publish as publish_module
from xero.warehouse.duckdb import WarehouseLockedError, connect
from xero.warehouse.publish import (
    READ_COPY_STORAGE_VERSION,
    marker_path,
    publish_read_copy,
    read_copy_path,
)

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"
CONN_ID = "xero_warehouse_read_copy"
TENANT = "tenant-1"

#: Holds ``argv[1]`` open read-only and answers commands on stdin: ``count`` (invoices and their total on
#: the open connection), ``reconnect``; one JSON line per command.
READER = r"""
import json, sys
import duckdb
path = sys.argv[1]
conn = duckdb.connect(path, read_only=True)
print(json.dumps({"pid": __import__("os").getpid()}), flush=True)
for line in sys.stdin:
    command = line.strip()
    if command == "reconnect":
        conn.close()
        conn = duckdb.connect(path, read_only=True)
        print(json.dumps("ok"), flush=True)
    elif command == "count":
        catalog = conn.execute("SELECT current_database()").fetchone()[0]
        count, total = conn.execute(
            f'SELECT count(*), CAST(sum(total) AS VARCHAR) FROM "{catalog}".xero.invoice'
        ).fetchone()
        print(json.dumps([count, total]), flush=True)
"""


class Reader:
    """A process holding a read-only DuckDB connection to a file."""

    def __init__(self, path: Path) -> None:
        self.process = subprocess.Popen(
            [*current_client(), READER, str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.pid = self.ask(None)["pid"]

    def ask(self, command: str | None) -> Any:
        assert self.process.stdin and self.process.stdout
        if command is not None:
            self.process.stdin.write(command + "\n")
            self.process.stdin.flush()
        line = self.process.stdout.readline()
        assert line, f"the reader process died (exit {self.process.poll()})"
        return json.loads(line)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
        self.process.wait(timeout=30)
        for stream in (self.process.stdin, self.process.stdout):
            if stream:
                stream.close()


@pytest.fixture
def reader() -> Iterator[Callable[[Path], Reader]]:
    """Return ``open(path)`` starting reader processes; every one is stopped after the test."""
    started: list[Reader] = []

    def open_(path: Path) -> Reader:
        started.append(Reader(path))
        return started[-1]

    yield open_
    for one in started:
        one.close()


def _load(warehouse: Warehouse, new_batch: Callable[[], Any], tmp_path: Path, totals: list[str]) -> None:
    """Load one tenant's ledger: two accounts, a contact, invoices of ``totals`` with a line and a payment."""
    batch = new_batch()
    batch.add(ACCOUNTS.table, TENANT, account_id="A-200", code="200", name="Sales", status="ACTIVE")
    batch.add(CONTACTS.table, TENANT, contact_id="C-1", name="Customer Ltd", contact_status="ACTIVE")
    for n, total in enumerate(totals, start=1):
        batch.add_entity(
            INVOICES,
            TENANT,
            children={"invoice_line_item": [{"line_item_id": f"L-{n}", "line_amount": Decimal(total)}]},
            invoice_id=f"I-{n}",
            type="ACCREC",
            status="AUTHORISED",
            contact_id="C-1",
            date=date(2026, 3, n),
            due_date=date(2026, 4, n),
            total=Decimal(total),
            amount_due=Decimal(total),
            currency_code="NZD",
        )
    batch.add(
        PAYMENTS.table,
        TENANT,
        payment_id="P-1",
        payment_type="ACCRECPAYMENT",
        status="AUTHORISED",
        invoice_id="I-1",
        amount=Decimal(totals[0]),
        date=date(2026, 3, 20),
    )
    data = batch.write(tmp_path / f"data-{len(totals)}-{totals[-1]}")
    for entity in ("accounts", "contacts", "invoices", "payments"):
        warehouse.load(TENANT, entity, data, None, "run")


def _execute(database: Path, *statements: str) -> None:
    """Run statements on the warehouse file in a connection of this process (in schema ``xero``), then close it."""
    conn = duckdb.connect(str(database))
    try:
        conn.execute("USE xero")
        for statement in statements:
            conn.execute(statement)
    finally:
        conn.close()


@pytest.fixture
def warehouse(new_batch: Callable[[], Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Warehouse:
    """A DuckDB warehouse ``warehouse.duckdb`` with a small ledger, the ``sql/`` models, a table macro, comments."""
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{CONN_ID.upper()}",
        json.dumps({"conn_type": "duckdb", "host": str(tmp_path / "warehouse.duckdb")}),
    )
    wh = Warehouse.from_conn_id(CONN_ID, schema="xero")
    wh.ensure_schema()
    _load(wh, new_batch, tmp_path, ["100.00", "250.50"])
    wh.run_sql_dir(SQL_DIR)
    _execute(
        tmp_path / "warehouse.duckdb",
        # a table macro binds its names where it is called: qualified by schema, like a user's query
        "CREATE OR REPLACE MACRO invoices_due_by(as_of) AS TABLE "
        "SELECT invoice_id, total FROM xero.invoice WHERE due_date <= as_of",
        "COMMENT ON TABLE invoice IS 'Sales invoices and bills'",
        "COMMENT ON COLUMN invoice.total IS 'Total including tax'",
    )
    return wh


def _model_read(relations: dict[str, list[str]], model: Path) -> bool:
    """Whether a dump read the view or table macro that the model file ``model`` defines."""
    return f"xero.{model.stem}" in relations or f"xero.{model.stem}()" in relations


def _state(path: Path) -> tuple[int, int]:
    """Return what identifies the file at ``path``: its inode and modification time."""
    stat = path.stat()
    return stat.st_ino, stat.st_mtime_ns


def test_read_copy_sits_beside_the_warehouse_unless_configured(tmp_path: Path) -> None:
    assert read_copy_path("/data/xero/warehouse.duckdb") == Path("/data/xero/warehouse.read.duckdb")
    assert read_copy_path(Path("/data/wh.db")) == Path("/data/wh.read.duckdb")
    assert read_copy_path("/data/wh.duckdb", "/srv/bi/xero.duckdb") == Path("/srv/bi/xero.duckdb")
    assert read_copy_path("/data/wh.duckdb", "bi/xero.duckdb") == Path("/data/bi/xero.duckdb")


def test_marts_step_publishes_everything_readers_need(warehouse: Warehouse, tmp_path: Path) -> None:
    pipeline.build_marts(CONN_ID, "xero", SQL_DIR)
    copy = tmp_path / "warehouse.read.duckdb"
    assert copy.exists()
    _execute(
        tmp_path / "warehouse.duckdb", "COMMENT ON VIEW stg_xero__invoice IS 'Invoices, typed and flagged'"
    )
    assert publish_read_copy(CONN_ID).published  # type: ignore[union-attr]

    original, published = dump(current_client(), tmp_path / "warehouse.duckdb"), dump(current_client(), copy)
    assert published["relations"] == original["relations"]
    relations = published["relations"]
    assert {"xero.invoice", "xero._sync_state", "xero.stg_xero__invoice", "xero.invoices_due_by()"} <= set(
        relations
    )
    assert all(_model_read(relations, model) for model in SQL_DIR.glob("*.sql"))
    assert len(relations["xero.invoice"]) == 2
    assert len(relations["xero.invoices_due_by()"]) == 2  # the macro runs in the copy
    assert ["invoice", "Sales invoices and bills"] in published["comments"]
    assert ["invoice.total", "Total including tax"] in published["comments"]
    assert ["stg_xero__invoice", "Invoices, typed and flagged"] in published["comments"]
    marker = json.loads(marker_path(copy).read_text())
    assert marker["storage_version"] == READ_COPY_STORAGE_VERSION
    assert marker["size_bytes"] == copy.stat().st_size
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith((".tmp", ".wal"))] == []


def test_an_unchanged_warehouse_is_not_copied_again(
    warehouse: Warehouse, new_batch: Callable[[], Any], tmp_path: Path
) -> None:
    copy = tmp_path / "warehouse.read.duckdb"
    first = publish_read_copy(CONN_ID)
    assert first is not None and first.published
    before = _state(copy)

    again = publish_read_copy(CONN_ID)
    assert again is not None and not again.published
    warehouse.run_sql_dir(SQL_DIR)  # the marts are rebuilt every run, identically
    _execute(  # what a run that read nothing new rewrites
        tmp_path / "warehouse.duckdb",
        "UPDATE _sync_state SET last_run_id = 'later', last_run_at = now(), api_calls = 1, rows_loaded = 0",
    )
    assert not publish_read_copy(CONN_ID).published  # type: ignore[union-attr]
    assert _state(copy) == before

    _load(warehouse, new_batch, tmp_path, ["100.00", "250.50", "75.25"])
    changed = publish_read_copy(CONN_ID)
    assert changed is not None and changed.published and changed.digest != first.digest
    assert _state(copy) != before
    assert len(dump(current_client(), copy)["relations"]["xero.invoice"]) == 3


@pytest.mark.parametrize(
    "change",
    [
        "UPDATE _sync_state SET watermark = TIMESTAMPTZ '2026-03-01 00:00:00+00'",
        "CREATE VIEW analyst_view AS SELECT 1 AS one",
        "COMMENT ON COLUMN invoice.total IS 'Total, tax included'",
        "DELETE FROM payment",
        "UPDATE invoice SET _loaded_at = _loaded_at + INTERVAL 1 SECOND WHERE invoice_id = 'I-1'",
    ],
)
def test_any_visible_change_is_published(warehouse: Warehouse, tmp_path: Path, change: str) -> None:
    assert publish_read_copy(CONN_ID).published  # type: ignore[union-attr]
    _execute(tmp_path / "warehouse.duckdb", change)
    assert publish_read_copy(CONN_ID).published  # type: ignore[union-attr]


def test_a_copy_replaced_by_hand_is_published_again(warehouse: Warehouse, tmp_path: Path) -> None:
    copy = tmp_path / "warehouse.read.duckdb"
    publish_read_copy(CONN_ID)
    copy.unlink()
    result = publish_read_copy(CONN_ID)
    assert result is not None and result.published and copy.exists()


def test_readers_keep_their_state_until_they_reconnect(
    warehouse: Warehouse, new_batch: Callable[[], Any], tmp_path: Path, reader: Callable[[Path], Reader]
) -> None:
    copy = tmp_path / "warehouse.read.duckdb"
    publish_read_copy(CONN_ID)
    analyst = reader(copy)
    assert analyst.ask("count") == [2, "350.5000"]

    _load(warehouse, new_batch, tmp_path, ["100.00", "250.50", "75.25"])
    assert publish_read_copy(CONN_ID).published  # type: ignore[union-attr]  # while the reader holds the copy

    assert analyst.ask("count") == [2, "350.5000"]  # the state it opened, whole
    assert reader(copy).ask("count") == [3, "425.7500"]  # a new connection sees the new state
    assert analyst.ask("reconnect") == "ok"
    assert analyst.ask("count") == [3, "425.7500"]


def test_a_failed_copy_leaves_the_previous_one(
    warehouse: Warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, new_batch: Callable[[], Any]
) -> None:
    copy = tmp_path / "warehouse.read.duckdb"
    publish_read_copy(CONN_ID)
    before, marker = _state(copy), marker_path(copy).read_text()
    _load(warehouse, new_batch, tmp_path, ["100.00", "250.50", "75.25"])
    real = publish_module._inventory
    monkeypatch.setattr(
        publish_module,
        "_inventory",
        lambda conn, catalog: real(conn, catalog)[1:] if catalog.startswith("_xero") else real(conn, catalog),
    )

    with pytest.raises(RuntimeError, match="incomplete, not published"):
        publish_read_copy(CONN_ID)
    assert _state(copy) == before and marker_path(copy).read_text() == marker
    assert sorted(p.name for p in tmp_path.iterdir() if "read" in p.name) == [
        ".warehouse.read.duckdb.published.json",
        "warehouse.read.duckdb",
    ]


@pytest.mark.parametrize("version", [OLDEST_READER, NEWEST_1X])
def test_duckdb_1x_reads_every_table_view_and_macro(
    warehouse: Warehouse, tmp_path: Path, version: str
) -> None:
    """A released DuckDB 1.x (installed from the package registry) reads the read copy as DuckDB 2 reads the warehouse."""
    pipeline.build_marts(CONN_ID, "xero", SQL_DIR)

    published = dump(duckdb_client(version), tmp_path / "warehouse.read.duckdb")
    original = dump(current_client(), tmp_path / "warehouse.duckdb")
    assert published["version"] == version and original["version"].startswith("2.")
    assert published["relations"] == original["relations"]
    assert published["comments"] == original["comments"]
    assert {"xero.invoice", "xero.invoice_line_item", "xero._sync_state", "xero.invoices_due_by()"} <= set(
        published["relations"]
    )
    assert all(_model_read(published["relations"], model) for model in SQL_DIR.glob("*.sql"))
    assert published["relations"]["xero.xero__ar_ap_aging_as_of()"]  # the aging table macro, as of a date
    assert all(published["relations"][name] for name in ("xero.invoice", "xero.xero__revenue_by_month"))


def test_duckdb_before_1_2_cannot_read_it(warehouse: Warehouse, tmp_path: Path) -> None:
    """1.2 is the oldest reader: 1.1 stops at the storage format of the copy (and the README says so)."""
    pipeline.build_marts(CONN_ID, "xero", SQL_DIR)
    with pytest.raises(AssertionError, match="version number 65, but we can only read version 64"):
        dump(duckdb_client("1.1.3"), tmp_path / "warehouse.read.duckdb")


def test_a_copy_left_by_a_killed_publish_is_removed(warehouse: Warehouse, tmp_path: Path) -> None:
    leftover = tmp_path / ".warehouse.read.duckdb.0123abcd.tmp"
    leftover.write_bytes(b"half a database")
    (tmp_path / (leftover.name + ".wal")).write_bytes(b"its log")
    assert publish_read_copy(CONN_ID).published  # type: ignore[union-attr]
    assert sorted(p.name for p in tmp_path.iterdir() if "read" in p.name) == [
        ".warehouse.read.duckdb.published.json",
        "warehouse.read.duckdb",
    ]


def test_the_read_copy_cannot_be_the_warehouse(
    warehouse: Warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = tmp_path / "warehouse.duckdb"
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{CONN_ID.upper()}",
        json.dumps(
            {"conn_type": "duckdb", "host": str(database), "extra": {"read_copy": "warehouse.duckdb"}}
        ),
    )
    before = _state(database)
    with pytest.raises(ValueError, match="another file than the warehouse"):
        publish_read_copy(CONN_ID)
    assert _state(database) == before


def test_the_connection_extra_moves_the_read_copy(
    warehouse: Warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{CONN_ID.upper()}",
        json.dumps(
            {
                "conn_type": "duckdb",
                "host": str(tmp_path / "warehouse.duckdb"),
                "extra": {"read_copy": "bi/analytics.duckdb"},
            }
        ),
    )
    result = publish_read_copy(CONN_ID)
    assert result is not None and result.read_copy == str(tmp_path / "bi" / "analytics.duckdb")
    assert len(dump(current_client(), tmp_path / "bi" / "analytics.duckdb")["relations"]["xero.invoice"]) == 2
    assert not (tmp_path / "warehouse.read.duckdb").exists()


def _hook() -> Any:
    from airflow.sdk import BaseHook

    return BaseHook.get_connection(CONN_ID).get_hook()


def test_a_warehouse_held_open_fails_naming_the_read_copy(
    warehouse: Warehouse, tmp_path: Path, reader: Callable[[Path], Reader]
) -> None:
    holder = reader(tmp_path / "warehouse.duckdb")  # an analyst opened the warehouse itself
    waits: list[float] = []

    with pytest.raises(WarehouseLockedError) as raised:
        connect(_hook(), delays=(1.0, 2.0), sleep=waits.append)
    assert waits == [1.0, 2.0]
    message = str(raised.value)
    assert str(tmp_path / "warehouse.duckdb") in message
    assert f"open the read copy {tmp_path / 'warehouse.read.duckdb'} instead" in message
    assert f"PID {holder.pid}" in message
    assert "3 attempts over 3 s" in message


def test_the_sync_waits_for_a_reader_that_lets_go(
    warehouse: Warehouse, tmp_path: Path, reader: Callable[[Path], Reader]
) -> None:
    holder = reader(tmp_path / "warehouse.duckdb")
    waits: list[float] = []

    def reader_closes(seconds: float) -> None:
        waits.append(seconds)
        holder.close()

    conn = connect(_hook(), delays=(5.0, 5.0), sleep=reader_closes)
    try:
        assert conn.execute("SELECT count(*) FROM xero.invoice").fetchone() == (2,)
        assert conn.execute("SELECT current_setting('threads')").fetchone() == (1,)  # the warehouse settings
    finally:
        conn.close()
    assert waits == [5.0]


def test_other_duckdb_errors_are_not_retried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{CONN_ID.upper()}",
        json.dumps({"conn_type": "duckdb", "host": str(tmp_path / "not-a-database.duckdb")}),
    )
    (tmp_path / "not-a-database.duckdb").write_text("hello")
    waits: list[float] = []
    with pytest.raises(duckdb.Error) as raised:
        connect(_hook(), sleep=waits.append)
    assert not isinstance(raised.value, WarehouseLockedError)
    assert waits == []


@pytest.mark.postgres
def test_postgres_readers_use_the_warehouse(warehouse_factory: Callable[..., Warehouse]) -> None:
    """On PostgreSQL readers query the warehouse (MVCC): no copy is made."""
    warehouse_factory("postgres").ensure_schema()
    assert publish_read_copy("xero_warehouse_test_postgres") is None
