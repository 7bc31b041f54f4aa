"""Where the dashboard reads: the warehouse connection, resolved as Airflow resolves it, opened read-only.

The warehouse is the Airflow connection ``xero_warehouse`` (``XERO_WAREHOUSE_CONN_ID`` overrides the id,
``XERO_SCHEMA`` the schema), found through Airflow's secrets backends (``AIRFLOW_CONN_*`` environment
variables first) without needing an Airflow metadata database. Without such a connection it is the DuckDB
file ``make demo`` writes. On DuckDB the dashboard opens the read copy published beside the warehouse file
after each successful sync, never the file a sync writes, so it never blocks a sync and never sees a
half-loaded run; on PostgreSQL it reads the warehouse itself in read-only transactions.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from xero.warehouse.publish import READ_COPY_EXTRA, read_copy_path

REPO = Path(__file__).resolve().parent.parent
#: The warehouse file ``make demo`` loads when no ``xero_warehouse`` connection is configured.
DEMO_DUCKDB = REPO / ".airflow" / "warehouse" / "warehouse.duckdb"
DEFAULT_CONN_ID = "xero_warehouse"
DEFAULT_SCHEMA = "xero"
RUN_THE_SYNC = "run the sync (make demo)"


class WarehouseUnavailable(Exception):
    """The warehouse holds no data yet; the message says why, and holds no secret."""

    title = "No data yet"


class WarehouseUnreachable(WarehouseUnavailable):
    """The warehouse cannot be opened (server down, bad connection); the message holds no secret."""

    title = "The warehouse cannot be reached"


@dataclass(frozen=True)
class Source:
    """A warehouse to read: its dialect, schema and location.

    :param dialect: ``duckdb`` or ``postgres``.
    :param schema: the schema holding the tables and marts.
    :param location: what to open: the read copy's path (DuckDB) or the SQLAlchemy URL (PostgreSQL).
    :param description: where it is, for people (never a password).
    """

    dialect: Literal["duckdb", "postgres"]
    schema: str
    location: str = field(repr=False)
    description: str = ""

    def version(self) -> int:
        """Return a number that changes when the data may have changed (the read copy's mtime on DuckDB)."""
        if self.dialect == "duckdb":
            try:
                return Path(self.location).stat().st_mtime_ns
            except OSError:
                return 0
        return 0

    @contextmanager
    def connect(self) -> Iterator[sa.Connection]:
        """Open a read-only connection whose default schema is :attr:`schema`.

        :raises WarehouseUnavailable: when the read copy or the schema is missing.
        :raises WarehouseUnreachable: when the server cannot be reached.
        """
        if self.dialect == "duckdb":
            if not Path(self.location).is_file():
                raise WarehouseUnavailable(
                    f"The read copy {self.location} does not exist yet: it is published after each "
                    "successful sync."
                )
            engine = sa.create_engine(
                f"duckdb:///{self.location}", connect_args={"read_only": True}, poolclass=NullPool
            )
        else:
            engine = sa.create_engine(
                self.location,
                poolclass=NullPool,
                connect_args={"connect_timeout": 5, "options": "-c default_transaction_read_only=on"},
            )
        try:
            try:
                connection = engine.connect()
            except sa.exc.DBAPIError as exc:
                raise WarehouseUnreachable(
                    f"Cannot open {self.description}: {_first_line(exc.orig)}"
                ) from None
            with connection:
                _use_schema(connection, self)
                yield connection
        finally:
            engine.dispose()


def _use_schema(connection: sa.Connection, source: Source) -> None:
    found = connection.execute(
        sa.text("select count(*) from information_schema.schemata where schema_name = :schema"),
        {"schema": source.schema},
    ).scalar_one()
    if not found:
        raise WarehouseUnavailable(f"No schema {source.schema!r} in {source.description} yet.")
    quoted = '"' + source.schema.replace('"', '""') + '"'
    if source.dialect == "duckdb":
        catalog = str(connection.exec_driver_sql("select current_database()").scalar_one())
        connection.exec_driver_sql('use "' + catalog.replace('"', '""') + '".' + quoted)
    else:
        connection.exec_driver_sql(f"set search_path to {quoted}")


def _first_line(error: BaseException | None) -> str:
    text = str(error or "unknown error").strip()
    return text.splitlines()[0] if text else type(error).__name__


def resolve_source(conn_id: str | None = None, schema: str | None = None) -> Source:
    """Return the warehouse of the Airflow connection ``conn_id`` (default: ``XERO_WAREHOUSE_CONN_ID``).

    :raises WarehouseUnreachable: when the connection is of a type the dashboard cannot read.
    """
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    conn_id = conn_id or os.environ.get("XERO_WAREHOUSE_CONN_ID") or DEFAULT_CONN_ID
    schema = schema or os.environ.get("XERO_SCHEMA") or DEFAULT_SCHEMA
    try:
        connection = BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return duckdb_source(DEMO_DUCKDB, schema)
    if connection.conn_type == "duckdb":
        if not connection.host:
            raise WarehouseUnreachable(f"The DuckDB connection {conn_id!r} names no database file (host).")
        return duckdb_source(
            Path(connection.host).expanduser(), schema, connection.extra_dejson.get(READ_COPY_EXTRA)
        )
    if connection.conn_type in ("postgres", "postgresql"):
        url = connection.get_hook().sqlalchemy_url
        url = url.set(drivername="postgresql+psycopg")
        return Source(
            "postgres",
            schema,
            url.render_as_string(hide_password=False),
            f"PostgreSQL database {url.host}:{url.port or 5432}/{url.database}",
        )
    raise WarehouseUnreachable(
        f"The warehouse connection {conn_id!r} has type {connection.conn_type!r}; "
        "the dashboard reads duckdb and postgres."
    )


def duckdb_source(database: Path, schema: str = DEFAULT_SCHEMA, read_copy: str | None = None) -> Source:
    """Return the read copy of the DuckDB warehouse file ``database`` (``read_copy``: the connection extra)."""
    copy = read_copy_path(database, read_copy)
    return Source("duckdb", schema, str(copy), f"DuckDB read copy {copy}")
