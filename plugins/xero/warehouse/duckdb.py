"""The DuckDB backend: transactions on a DuckDBHook connection, memory settings and the Parquet bulk path.

Staged rows are a temporary view over ``read_parquet``: DuckDB reads the files itself, only the
columns a statement needs, so rows never pass through Python and are never copied into a staging
table. Every connection gets :data:`DEFAULT_SETTINGS` unless the Airflow connection sets them
(extra ``memory_limit``, ``threads``, ``temp_directory`` or ``settings``, applied by the official
hook): within ``memory_limit`` DuckDB spills joins, aggregates and the row groups it is writing to
its ``temp_directory`` (by default ``<database>.tmp``), so a load's memory stays flat however many
records it holds. Names are qualified with the catalog (the file's stem), which may equal the
schema's name. DuckDB allows one writing process per database file: the warehouse opens a
connection only for the duration of one operation and closes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xero.warehouse.base import Backend, Session, present_columns
from xero.warehouse.ddl import quote

if TYPE_CHECKING:
    from airflow.providers.duckdb.hooks.duckdb import DuckDBHook

#: DuckDB settings of every warehouse connection, unless the connection configures them. 128 MB keeps
#: a load within about 175 MB of resident memory above DuckDB itself at any size, on every path
#: (first load, reload, updates) at 1,000,000 invoices; one thread, because DuckDB needs memory per
#: thread: two threads in 192 MB run out of memory re-classifying 3 million unchanged line items. Two
#: threads in 256 MB load 1,000,000 invoices in half the time (19 s instead of 38 s) for +130 MB.
DEFAULT_SETTINGS: dict[str, str] = {
    "memory_limit": "128MB",
    "threads": "1",
    "preserve_insertion_order": "false",
}


def _literal(value: str) -> str:
    """Quote ``value`` as an SQL string literal (views take no parameters)."""
    return "'" + value.replace("'", "''") + "'"


class DuckDBBackend(Backend):
    """DuckDB over :class:`airflow.providers.duckdb.hooks.duckdb.DuckDBHook`."""

    dialect = "duckdb"
    placeholder = "?"
    hook: DuckDBHook

    def _begin(self, conn: Any) -> Session:
        configured = self.hook.get_connect_config()
        for name, value in DEFAULT_SETTINGS.items():
            if name not in configured:
                conn.execute(f"SET {name} = {_literal(value)}")
        conn.execute("SET TimeZone = 'UTC'")
        conn.begin()
        return Session(conn, self.placeholder)

    def _prefix(self, session: Session, schema: str) -> str:
        """Qualify with the catalog: a file ``xero.duckdb`` makes a catalog ``xero`` clash with schema ``xero``."""
        return f"{quote(session.scalar('SELECT current_database()'))}.{quote(schema)}"

    def use_schema(self, session: Session, schema: str) -> None:
        """Run ``USE catalog.schema``."""
        session.execute(f"USE {session.prefix}")

    def stage_parquet(
        self,
        session: Session,
        name: str,
        columns: Sequence[tuple[str, str]],
        files: Sequence[Path],
        filters: dict[str, str],
    ) -> None:
        """Create a temporary view selecting the matching rows of ``files`` with ``read_parquet``."""
        present = set(present_columns(files, [column for column, _ in columns]))
        select = ", ".join(
            f"CAST({quote(column) if column in present else 'NULL'} AS {type_}) AS {quote(column)}"
            for column, type_ in columns
        )
        if present:
            paths = ", ".join(_literal(str(path)) for path in files)
            where = " AND ".join(f"{quote(column)} = {_literal(value)}" for column, value in filters.items())
            source = f" FROM read_parquet([{paths}], union_by_name = true) WHERE {where or 'TRUE'}"
        else:
            source = " WHERE FALSE"
        session.execute(f"CREATE OR REPLACE TEMPORARY VIEW {quote(name)} AS SELECT {select}{source}")

    def raw_conversion(self, qualified_table: str, data_type: str) -> list[str]:
        """Turn a ``JSON`` ``_raw`` (earlier versions) into ``VARCHAR``, which also takes lone surrogate escapes."""
        if data_type.upper() != "JSON":
            return []
        return [f'ALTER TABLE {qualified_table} ALTER COLUMN "_raw" SET DATA TYPE VARCHAR']

    def fingerprint(self, columns: Sequence[str], staged: bool) -> str:
        """Return DuckDB's 64-bit ``hash`` of ``_raw`` (stored as the text it was given) and ``columns``.

        Joins then carry 8 bytes per row instead of the row; two different rows share a hash with a
        chance of 2⁻⁶⁴.
        """
        values = ['CAST("_raw" AS VARCHAR)', *map(quote, columns)]
        return f"hash({', '.join(values)})"
