"""The dialect seam of the warehouse: a transaction-scoped session and what each backend must provide.

Everything SQL that differs between DuckDB and PostgreSQL (connecting and its settings,
transactions, staging Parquet rows, comparing rows by fingerprint, row locks) sits behind
:class:`Backend`; the load and DDL logic above it is written once.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import pyarrow.parquet as pq

from xero.warehouse.ddl import Dialect, quote

if TYPE_CHECKING:
    from airflow.providers.common.sql.hooks.sql import DbApiHook

log = logging.getLogger(__name__)


class Session:
    """Run SQL inside one open transaction; statements use ``?`` placeholders on every dialect."""

    def __init__(self, cursor: Any, placeholder: str) -> None:
        self._cursor = cursor
        self._placeholder = placeholder
        #: The quoted namespace of the warehouse schema (``"xero"``; on DuckDB ``"catalog"."xero"``).
        self.prefix = ""

    def table(self, name: str) -> str:
        """Return the fully qualified, quoted name of table ``name`` in the warehouse schema."""
        return f"{self.prefix}.{quote(name)}"

    @property
    def cursor(self) -> Any:
        """Return the DB-API cursor (the DuckDB connection on DuckDB)."""
        return self._cursor

    def _sql(self, sql: str) -> str:
        return sql if self._placeholder == "?" else sql.replace("?", self._placeholder)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Execute one statement and return the rows it changed (without parameters, the text is sent as is)."""
        if params:
            self._cursor.execute(self._sql(sql), tuple(params))
        else:
            self._cursor.execute(sql)
        return int(self._cursor.rowcount)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Execute one query and return all its rows."""
        self.execute(sql, params)
        return [tuple(row) for row in self._cursor.fetchall()]

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Execute one query and return the first column of its first row (``None`` without rows)."""
        rows = self.query(sql, params)
        return rows[0][0] if rows else None


def parquet_files(directory: Path) -> list[Path]:
    """Return the Parquet files of ``directory`` in name order (none when it does not exist)."""
    return sorted(directory.glob("*.parquet")) if directory.is_dir() else []


def present_columns(files: Sequence[Path], wanted: Sequence[str]) -> list[str]:
    """Return the ``wanted`` columns found in at least one of ``files`` (older files may lack new columns)."""
    found: set[str] = set()
    for path in files:
        found.update(pq.read_schema(path).names)
    return [name for name in wanted if name in found]


class Backend(abc.ABC):
    """What a warehouse dialect provides over its Airflow common-sql hook."""

    dialect: ClassVar[Dialect]
    placeholder: ClassVar[str]
    #: Whether the registry tables declare their keys, so changed rows are written with one
    #: ``INSERT … ON CONFLICT DO UPDATE`` (otherwise: delete, then insert).
    upsert_on_conflict: ClassVar[bool] = False

    def __init__(self, hook: DbApiHook) -> None:
        self.hook = hook

    @contextmanager
    def transaction(self, schema: str) -> Iterator[Session]:
        """Open a connection, run one transaction in UTC, commit or roll back, and close the connection.

        :param schema: the warehouse schema; sets the session's :attr:`Session.prefix`.
        """
        conn = self._connect()
        try:
            session = self._begin(conn)
            session.prefix = self._prefix(session, schema)
            try:
                yield session
            except BaseException:
                conn.rollback()
                raise
            conn.commit()
        finally:
            conn.close()

    def _connect(self) -> Any:
        """Open a DB-API connection through the hook."""
        return self.hook.get_conn()

    @abc.abstractmethod
    def _begin(self, conn: Any) -> Session:
        """Start a transaction on ``conn`` with the session time zone set to UTC."""

    def _prefix(self, session: Session, schema: str) -> str:
        """Return the quoted namespace of ``schema``."""
        return quote(schema)

    @abc.abstractmethod
    def use_schema(self, session: Session, schema: str) -> None:
        """Make ``schema`` the schema unqualified names resolve to (and new objects go to)."""

    def create_temp_table_as(
        self, session: Session, name: str, select: str, params: Sequence[Any] = ()
    ) -> None:
        """Create a temporary table from a query, dropped at the end of the transaction (or connection)."""
        session.execute(f"DROP TABLE IF EXISTS {quote(name)}")
        session.execute(f"CREATE TEMPORARY TABLE {quote(name)}{self._temp_suffix} AS {select}", params)

    _temp_suffix: ClassVar[str] = ""

    @abc.abstractmethod
    def stage_parquet(
        self,
        session: Session,
        name: str,
        columns: Sequence[tuple[str, str]],
        files: Sequence[Path],
        filters: dict[str, str],
    ) -> None:
        """Make ``name`` a temporary relation of the rows of ``files`` matching ``filters`` (column = value).

        :param columns: (name, SQL type) of every column; a column no file has is NULL.
        """

    @abc.abstractmethod
    def fingerprint(self, columns: Sequence[str], staged: bool) -> str:
        """Return SQL of a value that is equal for two rows when (and, but for a hash collision, only when)
        their ``_raw`` and ``columns`` are equal.

        :param staged: the row is staged (``_raw`` is text) rather than stored (``_raw`` is JSON).
        """

    def lock_sync_state(self, session: Session, state_table: str, tenant_id: str, entity: str) -> Any:
        """Create the tenant × entity state row if missing, lock it and return its watermark."""
        session.execute(
            f"INSERT INTO {state_table} (tenant_id, entity) VALUES (?, ?) "
            "ON CONFLICT (tenant_id, entity) DO NOTHING",
            (tenant_id, entity),
        )
        return session.scalar(
            f"SELECT watermark FROM {state_table} WHERE tenant_id = ? AND entity = ?{self._lock_suffix}",
            (tenant_id, entity),
        )

    _lock_suffix: ClassVar[str] = ""

    def lock_ddl(self, session: Session, schema: str) -> None:  # noqa: B027 - optional hook
        """Serialise schema changes between concurrent writers (no-op where there is one writer)."""
