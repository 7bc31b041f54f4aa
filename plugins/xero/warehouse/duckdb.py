"""The DuckDB backend: transactions on a DuckDBHook connection and the Parquet bulk path.

DuckDB reads the Parquet files itself (``read_parquet``), so rows never pass through Python.
Names are qualified with the catalog (the file's stem), which may equal the schema's name.
DuckDB allows one writing process per database file: the warehouse opens a connection only for the
duration of one operation and closes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from xero.warehouse.base import Backend, Session
from xero.warehouse.ddl import quote


class DuckDBBackend(Backend):
    """DuckDB over :class:`airflow.providers.duckdb.hooks.duckdb.DuckDBHook`."""

    dialect = "duckdb"
    placeholder = "?"

    def _begin(self, conn: Any) -> Session:
        conn.execute("SET TimeZone = 'UTC'")
        conn.begin()
        return Session(conn, self.placeholder)

    def _prefix(self, session: Session, schema: str) -> str:
        """Qualify with the catalog: a file ``xero.duckdb`` makes a catalog ``xero`` clash with schema ``xero``."""
        return f"{quote(session.scalar('SELECT current_database()'))}.{quote(schema)}"

    def use_schema(self, session: Session, schema: str) -> None:
        """Run ``USE catalog.schema``."""
        session.execute(f"USE {session.prefix}")

    def copy_parquet(
        self,
        session: Session,
        target: str,
        files: Sequence[Path],
        columns: Sequence[str],
        filters: dict[str, str],
    ) -> None:
        """Insert the matching rows of ``files`` with one ``INSERT … SELECT FROM read_parquet``."""
        if not files or not columns:
            return
        names = ", ".join(quote(column) for column in columns)
        where = " AND ".join(f"{quote(column)} = ?" for column in filters) or "TRUE"
        session.execute(
            f"INSERT INTO {quote(target)} ({names}) "
            f"SELECT {names} FROM read_parquet(?, union_by_name = true) WHERE {where}",
            ([str(path) for path in files], *filters.values()),
        )
