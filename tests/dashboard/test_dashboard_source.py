"""Which warehouse the dashboard reads, resolved from the Airflow connection without an Airflow database."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from dashboard.queries import QUERIES, fetch
from dashboard.source import DEMO_DUCKDB, WarehouseUnavailable, WarehouseUnreachable, resolve_source
from xero.warehouse.publish import read_copy_path


@pytest.fixture(autouse=True)
def _no_configured_warehouse(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("AIRFLOW_CONN_XERO_WAREHOUSE", "XERO_WAREHOUSE_CONN_ID", "XERO_SCHEMA"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow-home"))


def test_duckdb_connection_reads_its_read_copy(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    warehouse = tmp_path / "wh.duckdb"
    monkeypatch.setenv(
        "AIRFLOW_CONN_XERO_WAREHOUSE", json.dumps({"conn_type": "duckdb", "host": str(warehouse)})
    )
    source = resolve_source()
    assert (source.dialect, source.schema, source.location) == (
        "duckdb",
        "xero",
        str(read_copy_path(warehouse)),
    )


def test_read_copy_extra_conn_id_and_schema(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    extra = {"read_copy": "copies/analysts.duckdb"}
    conn = {"conn_type": "duckdb", "host": str(tmp_path / "wh.duckdb"), "extra": extra}
    monkeypatch.setenv("AIRFLOW_CONN_OTHER_WAREHOUSE", json.dumps(conn))
    monkeypatch.setenv("XERO_WAREHOUSE_CONN_ID", "other_warehouse")
    monkeypatch.setenv("XERO_SCHEMA", "accounting")
    source = resolve_source()
    assert source.location == str(tmp_path / "copies" / "analysts.duckdb")
    assert source.schema == "accounting"


def test_without_a_connection_it_reads_the_demo_warehouse() -> None:
    assert resolve_source().location == str(read_copy_path(DEMO_DUCKDB))


def test_postgres_password_stays_out_of_what_is_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_XERO_WAREHOUSE", "postgresql://analyst:s3cret-pw@db.example:6543/finance"
    )
    source = resolve_source()
    assert source.dialect == "postgres"
    assert source.description == "PostgreSQL database db.example:6543/finance"
    assert "s3cret-pw" not in repr(source) and "s3cret-pw" not in source.description


def test_unsupported_connection_type(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_XERO_WAREHOUSE", json.dumps({"conn_type": "sqlite", "host": "x.db"}))
    with pytest.raises(WarehouseUnreachable, match="has type 'sqlite'"):
        resolve_source()


def test_missing_read_copy(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    conn = {"conn_type": "duckdb", "host": str(tmp_path / "none.duckdb")}
    monkeypatch.setenv("AIRFLOW_CONN_XERO_WAREHOUSE", json.dumps(conn))
    with pytest.raises(WarehouseUnavailable, match="does not exist yet"), resolve_source().connect():
        pass


def test_connection_is_read_only_and_queries_need_their_parameters(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    warehouse = tmp_path / "wh.duckdb"
    with duckdb.connect(str(read_copy_path(warehouse))) as conn:
        conn.execute("create schema xero; create table xero.t (a int)")
    monkeypatch.setenv(
        "AIRFLOW_CONN_XERO_WAREHOUSE", json.dumps({"conn_type": "duckdb", "host": str(warehouse)})
    )
    with resolve_source().connect() as connection:
        assert (
            connection.exec_driver_sql("select count(*) from t").scalar_one() == 0
        )  # schema xero is current
        with pytest.raises(Exception, match="read-only"):
            connection.exec_driver_sql("insert into t values (1)")
        with pytest.raises(ValueError, match=r"needs the parameters \['tenant_id'\]"):
            fetch(connection, "revenue_by_month")
    assert all(":" + param in query.sql for query in QUERIES.values() for param in query.params)
