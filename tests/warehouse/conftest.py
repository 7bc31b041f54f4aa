"""Fixtures for warehouse tests: the PostgreSQL server, warehouses per dialect, typed Parquet inputs.

``postgres_url`` is reusable on its own: it skips the test with the reason when the server cannot be
reached, and fails it instead when ``REQUIRE_POSTGRES=1``.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from xero.entities import Entity, Table
from xero.schema import QUARANTINE_SCHEMA, arrow_schema
from xero.warehouse import Warehouse

CONN_ID = "xero_warehouse_test"


WarehouseFactory = Callable[..., Warehouse]


@pytest.fixture
def warehouse_factory(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> WarehouseFactory:
    """Return ``make(dialect, extra=None, **kwargs)`` building a warehouse through an Airflow connection.

    DuckDB uses a file in ``tmp_path`` (``extra``: the connection's extra); PostgreSQL a schema of its
    own, dropped after the test.
    """

    def make(dialect: str, extra: dict[str, Any] | None = None, **kwargs: Any) -> Warehouse:
        if dialect == "duckdb":
            conn = json.dumps(
                {"conn_type": "duckdb", "host": str(tmp_path / "xero.duckdb"), "extra": extra or {}}
            )
            schema = kwargs.pop("schema", "xero")
        else:
            conn = request.getfixturevalue("postgres_url")
            schema = kwargs.pop("schema", None) or request.getfixturevalue("pg_schema")
        conn_id = f"{CONN_ID}_{dialect}"
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", conn)
        return Warehouse.from_conn_id(conn_id, schema=schema, **kwargs)

    return make


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def dialect(request: pytest.FixtureRequest) -> str:
    """Parametrize a test over both warehouse dialects."""
    return request.param


@pytest.fixture
def warehouse(dialect: str, warehouse_factory: WarehouseFactory) -> Warehouse:
    """Return a warehouse of the parametrized dialect with its schema created."""
    wh = warehouse_factory(dialect)
    wh.ensure_schema()
    return wh


class ParquetBatch:
    """Typed rows per table, written as Parquet files laid out like the normaliser writes them.

    Columns not given are NULL; ``_raw`` defaults to the JSON of the given values; ``_seq`` counts up.
    """

    def __init__(self) -> None:
        self.rows: dict[str, list[dict[str, Any]]] = {}
        self.quarantine_rows: list[dict[str, Any]] = []
        self.tables: dict[str, Table] = {}
        self._seq = itertools.count(1)

    def add(self, table: Table, tenant_id: str, _seq: int | None = None, **values: Any) -> dict[str, Any]:
        """Add a row of ``table`` and return it (children pass their parent's ``_seq``)."""
        unknown = set(values) - {c.name for c in table.columns} - {"_raw"}
        if unknown:
            raise KeyError(f"{table.name} has no columns {sorted(unknown)}")
        row: dict[str, Any] = {"tenant_id": tenant_id, **values}
        row.setdefault("_raw", json.dumps(values, default=str, sort_keys=True))
        row["_seq"] = next(self._seq) if _seq is None else _seq
        self.tables[table.name] = table
        self.rows.setdefault(table.name, []).append(row)
        return row

    def add_entity(
        self, entity: Entity, tenant_id: str, children: dict[str, list[dict]] | None = None, **values: Any
    ) -> dict[str, Any]:
        """Add a parent row and its children (``{child_table: [values, …]}``) sharing one ``_seq``."""
        parent = self.add(entity.table, tenant_id, **values)
        for child in entity.children:
            for child_values in (children or {}).get(child.name, []):
                self.add(
                    child,
                    tenant_id,
                    _seq=parent["_seq"],
                    **{child.parent_key: values[child.parent_key], **child_values},
                )
        return parent

    def quarantine(
        self,
        tenant_id: str,
        entity: str,
        table_name: str,
        record_id: str | None,
        reason: str,
        raw: str | None = None,
    ) -> None:
        """Add a quarantine row."""
        self.quarantine_rows.append(
            {
                "tenant_id": tenant_id,
                "entity": entity,
                "table_name": table_name,
                "record_id": record_id,
                "reason": reason,
                "_raw": raw,
                "_seq": next(self._seq),
            }
        )

    def write(self, directory: Path, name: str = "part-0") -> Path:
        """Write every table to ``directory/<table>/<name>.parquet``; return ``directory``."""
        for table_name, rows in self.rows.items():
            schema = arrow_schema(self.tables[table_name])
            path = directory / table_name / f"{name}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
        if self.quarantine_rows:
            path = directory / "_quarantine" / f"{name}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(pa.Table.from_pylist(self.quarantine_rows, schema=QUARANTINE_SCHEMA), path)
        return directory


@pytest.fixture
def batch() -> ParquetBatch:
    """Return an empty batch of typed rows."""
    return ParquetBatch()


@pytest.fixture
def new_batch() -> Callable[[], ParquetBatch]:
    """Return a factory of empty batches (for tests that load several versions of the data)."""
    return ParquetBatch
