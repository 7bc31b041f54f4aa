"""The PostgreSQL backend: transactions on a PostgresHook connection and the COPY bulk path.

Parquet is streamed batch by batch into ``COPY … FROM STDIN (FORMAT csv)``: every valid value is
quoted, so an empty string stays distinct from NULL, and decimals, dates and UTC timestamps travel
as text that PostgreSQL parses exactly. Memory stays bounded by one batch. Loads of different
tenants touch disjoint rows and lock only their own ``_sync_state`` row, so they run in parallel;
two loads of the same tenant × entity serialise on that row.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from xero.warehouse.base import Backend, Session, present_columns
from xero.warehouse.ddl import quote

#: Rows per Parquet batch streamed into COPY.
BATCH_ROWS = 10_000

_CSV_OPTIONS = pacsv.WriteOptions(include_header=False, quoting_style="all_valid")


def csv_chunks(
    files: Sequence[Path], columns: Sequence[str], filters: dict[str, str], batch_rows: int = BATCH_ROWS
) -> Iterator[bytes]:
    """Yield the matching rows of ``files`` as CSV chunks (columns in ``columns`` order, NULL as empty)."""
    for path in files:
        parquet = pq.ParquetFile(path)
        available = set(parquet.schema_arrow.names)
        for batch in parquet.iter_batches(
            batch_size=batch_rows, columns=[c for c in columns if c in available]
        ):
            table = pa.Table.from_batches([batch])
            for column, value in filters.items():
                table = table.filter(pc.equal(table[column], value))
            if table.num_rows == 0:
                continue
            arrays = [table[c] if c in available else pa.nulls(table.num_rows, pa.string()) for c in columns]
            sink = io.BytesIO()
            pacsv.write_csv(pa.Table.from_arrays(arrays, names=list(columns)), sink, _CSV_OPTIONS)
            yield sink.getvalue()


class PostgresBackend(Backend):
    """PostgreSQL over :class:`airflow.providers.postgres.hooks.postgres.PostgresHook` (psycopg 3 or 2)."""

    dialect = "postgres"
    placeholder = "%s"
    upsert_on_conflict = True
    _temp_suffix = " ON COMMIT DROP"
    _lock_suffix = " FOR UPDATE"

    def _begin(self, conn: Any) -> Session:
        session = Session(conn.cursor(), self.placeholder)
        session.execute("SET TIME ZONE 'UTC'")
        return session

    def use_schema(self, session: Session, schema: str) -> None:
        """Set the transaction's ``search_path`` to ``schema``."""
        session.execute(f"SET LOCAL search_path TO {quote(schema)}")

    def stage_parquet(
        self,
        session: Session,
        name: str,
        columns: Sequence[tuple[str, str]],
        files: Sequence[Path],
        filters: dict[str, str],
    ) -> None:
        """Create a temporary table and stream the matching rows of ``files`` into it through ``COPY FROM STDIN``."""
        body = ", ".join(f"{quote(column)} {type_}" for column, type_ in columns)
        session.execute(f"DROP TABLE IF EXISTS {quote(name)}")
        session.execute(f"CREATE TEMPORARY TABLE {quote(name)} ({body}){self._temp_suffix}")
        present = present_columns(files, [column for column, _ in columns])
        if not present:
            return
        sql = f"COPY {quote(name)} ({', '.join(quote(c) for c in present)}) FROM STDIN (FORMAT csv)"
        cursor = session.cursor
        chunks = csv_chunks(files, present, filters)
        if hasattr(cursor, "copy"):  # psycopg 3
            with cursor.copy(sql) as copy:
                for chunk in chunks:
                    copy.write(chunk)
        else:  # psycopg2
            for chunk in chunks:
                cursor.copy_expert(sql, io.BytesIO(chunk))
        session.execute(f"ANALYZE {quote(name)}")  # temp tables get no statistics otherwise

    def fingerprint(self, columns: Sequence[str], staged: bool) -> str:
        """Return the row itself, ``_raw`` as its text (stored as ``JSON``, which keeps the text as given)."""
        raw = '"_raw"' if staged else 'CAST("_raw" AS TEXT)'
        return f"ROW({', '.join([raw, *map(quote, columns)])})"

    def raw_conversion(self, qualified_table: str, data_type: str) -> list[str]:
        """Turn a ``JSONB`` ``_raw`` (earlier versions) into ``JSON``: rows keep their documents, as JSONB wrote them."""
        if data_type.lower() != "jsonb":
            return []
        return [
            f'ALTER TABLE {qualified_table} ALTER COLUMN "_raw" TYPE JSON USING CAST("_raw" AS TEXT)::JSON'
        ]

    def lock_ddl(self, session: Session, schema: str) -> None:
        """Take a transaction-scoped advisory lock so concurrent ``ensure_schema`` calls do not race."""
        session.execute("SELECT pg_advisory_xact_lock(hashtext(?))", (f"xero.warehouse.ddl:{schema}",))
