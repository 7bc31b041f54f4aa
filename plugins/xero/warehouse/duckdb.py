"""The DuckDB backend: transactions on a DuckDBHook connection, memory settings and the Parquet bulk path.

Staged rows are a temporary view over ``read_parquet``: DuckDB reads the files itself, only the
columns a statement needs, so rows never pass through Python and are never copied into a staging
table. Every connection gets :data:`DEFAULT_SETTINGS` unless the Airflow connection sets them
(extra ``memory_limit``, ``threads``, ``temp_directory`` or ``settings``, applied by the official
hook): within ``memory_limit`` DuckDB spills joins, aggregates and the row groups it is writing to
its ``temp_directory`` (by default ``<database>.tmp``), so a load's memory stays flat however many
records it holds. Names are qualified with the catalog (the file's stem), which may equal the
schema's name. DuckDB allows one writing process per database file: the warehouse opens a
connection only for the duration of one operation and closes it. While another process holds the file
open (even read-only), :func:`connect` waits with backoff, then fails with a message pointing readers to
the read copy (:mod:`xero.warehouse.publish`).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xero.warehouse.base import Backend, Session, present_columns
from xero.warehouse.ddl import quote

if TYPE_CHECKING:
    from airflow.providers.duckdb.hooks.duckdb import DuckDBHook

log = logging.getLogger(__name__)

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


#: Seconds to wait before each new attempt to open a warehouse file another process holds (about 30 s in all).
LOCK_RETRY_DELAYS: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0, 15.0)
_LOCK_CONFLICT = re.compile(r"Could not set lock on file|Conflicting lock is held")
_LOCK_HOLDER = re.compile(r"Conflicting lock is held in (?P<program>.+?) \(PID (?P<pid>\d+)\)")


class WarehouseLockedError(RuntimeError):
    """The DuckDB warehouse file stayed open in another process (a reader, or another writer)."""


def _literal(value: str) -> str:
    """Quote ``value`` as an SQL string literal (views take no parameters)."""
    return "'" + value.replace("'", "''") + "'"


def _locked_message(hook: DuckDBHook, error: Exception, attempts: int, waited: float) -> str:
    """Say who holds the warehouse file and which file readers should open instead."""
    from xero.warehouse.publish import read_copy_for

    database = hook.get_database()
    holder = _LOCK_HOLDER.search(str(error))
    who = f"another process ({holder['program']}, PID {holder['pid']})" if holder else "another process"
    try:
        read_copy = f"the read copy {read_copy_for(hook)}"
    except ValueError:
        read_copy = "a copy of it"
    return (
        f"the DuckDB warehouse {database} is held open by {who}; DuckDB cannot write a file that another "
        f"process has open, even read-only. Analysts, BI tools and dashboards must open {read_copy} "
        f"instead (published after every successful run), never the warehouse itself. Gave up after "
        f"{attempts} attempts over {waited:.0f} s: close that connection and run the task again."
    )


def connect(
    hook: DuckDBHook,
    *,
    delays: Sequence[float] = LOCK_RETRY_DELAYS,
    sleep: Callable[[float], None] = time.sleep,
) -> Any:
    """Open the warehouse through ``hook`` with :data:`DEFAULT_SETTINGS` (unless the connection sets them).

    While another process holds the file open, try again after each of ``delays`` seconds, then raise
    :class:`WarehouseLockedError` naming the warehouse and the read copy readers should open instead.
    """
    import duckdb

    waited = 0.0
    for attempt, delay in enumerate([*delays, None], start=1):
        try:
            conn = hook.get_conn()
        except duckdb.IOException as exc:
            if not _LOCK_CONFLICT.search(str(exc)):
                raise
            if delay is None:
                raise WarehouseLockedError(_locked_message(hook, exc, attempt, waited)) from exc
            log.warning(
                "DuckDB warehouse %s is held open by another process; attempt %d of %d again in %.0f s",
                hook.get_database(),
                attempt + 1,
                len(delays) + 1,
                delay,
            )
            sleep(delay)
            waited += delay
            continue
        configured = hook.get_connect_config()
        for name, value in DEFAULT_SETTINGS.items():
            if name not in configured:
                conn.execute(f"SET {name} = {_literal(value)}")
        return conn
    raise AssertionError("unreachable")  # pragma: no cover


class DuckDBBackend(Backend):
    """DuckDB over :class:`airflow.providers.duckdb.hooks.duckdb.DuckDBHook`."""

    dialect = "duckdb"
    placeholder = "?"
    hook: DuckDBHook

    def _connect(self) -> Any:
        """Open the warehouse file, waiting a while for another process to let go of it."""
        return connect(self.hook)

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

    def fingerprint(self, columns: Sequence[str], staged: bool) -> str:
        """Return DuckDB's 64-bit ``hash`` of ``_raw`` (JSON is stored as the text it was given) and ``columns``.

        Joins then carry 8 bytes per row instead of the row; two different rows share a hash with a
        chance of 2⁻⁶⁴.
        """
        values = ['CAST("_raw" AS VARCHAR)', *map(quote, columns)]
        return f"hash({', '.join(values)})"
