"""Warehouse DDL from the entity registry: SQL types per dialect, table definitions, identifier quoting.

Owns the mapping from :data:`xero.entities.ColumnKind` to SQL types, the shape of every warehouse
table (registry tables plus the ``_sync_state`` and ``_quarantine`` bookkeeping tables) and the
statements that create or evolve them. Tables are described with SQLAlchemy Core and compiled with
the PostgreSQL compiler, whose output DuckDB also accepts; only the JSON type differs per dialect.
Every table and column carries its description as the SQLAlchemy ``comment`` (registry tables from
:mod:`xero.entities`, the bookkeeping tables here), which :mod:`xero.warehouse.dictionary` writes into
the database and the data dictionary.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import CreateTable

from xero.entities import STANDARD_COLUMNS, ColumnKind, Entity, Table

Dialect = Literal["duckdb", "postgres"]

SYNC_STATE = "_sync_state"
QUARANTINE = "_quarantine"

_IDENTIFIER = re.compile(r"\A[A-Za-z_][A-Za-z0-9_]*\Z")
_COMPILER_DIALECT = postgresql.dialect()


def _kind_types() -> dict[ColumnKind, sa.types.TypeEngine]:
    return {
        "id": sa.Text(),
        "string": sa.Text(),
        "money": sa.DECIMAL(19, 4),
        "rate": sa.DECIMAL(28, 10),
        "quantity": sa.DECIMAL(19, 4),
        "date": sa.Date(),
        "timestamp": sa.TIMESTAMP(timezone=True),
        "boolean": sa.Boolean(),
        "integer": sa.BigInteger(),
    }


#: SQL type of each column kind (the same on both dialects).
KIND_TYPES: dict[ColumnKind, sa.types.TypeEngine] = _kind_types()


def json_type(dialect: Dialect) -> sa.types.TypeEngine:
    """Return the type of ``_raw`` columns: ``JSON`` on DuckDB, ``JSONB`` on PostgreSQL."""
    return postgresql.JSONB() if dialect == "postgres" else sa.JSON()


def type_sql(type_: sa.types.TypeEngine) -> str:
    """Render ``type_`` as SQL text accepted by DuckDB and PostgreSQL."""
    return str(type_.compile(dialect=_COMPILER_DIALECT))


def validate_identifier(name: str, what: str = "identifier") -> str:
    """Return ``name`` if it is a plain SQL identifier, else raise ``ValueError`` naming ``what``."""
    if not _IDENTIFIER.match(name):
        raise ValueError(f"invalid {what} {name!r}: use letters, digits and underscores only")
    return name


def quote(name: str) -> str:
    """Quote an identifier (``class``, ``type`` and ``date`` are keywords)."""
    return '"' + name.replace('"', '""') + '"'


def data_columns(table: Table) -> list[tuple[str, sa.types.TypeEngine]]:
    """Return ``tenant_id`` and the registry columns of ``table`` with their SQL types."""
    return [("tenant_id", sa.Text()), *((c.name, KIND_TYPES[c.kind]) for c in table.columns)]


def key_columns(table: Table) -> list[str]:
    """Return the primary key of ``table`` as stored: ``tenant_id`` first."""
    return ["tenant_id", *table.primary_key]


def _column(name: str, type_: sa.types.TypeEngine, comment: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, type_, nullable=nullable, quote=True, comment=comment)


class _DuckDBRawJSON(sa.types.UserDefinedType):
    """DuckDB's ``JSON`` compressed with zstd: Xero's JSON takes a third of the space of DuckDB's default
    string compression and is written faster."""

    cache_ok = True

    def get_col_spec(self, **kw: object) -> str:
        return "JSON USING COMPRESSION zstd"


def registry_table(metadata: sa.MetaData, table: Table, dialect: Dialect) -> sa.Table:
    """Describe the warehouse table of a registry ``table``: its columns, ``_raw``, ``_loaded_at``, ``_run_id``.

    The key (``tenant_id`` first) is a PRIMARY KEY on PostgreSQL. On DuckDB it is not declared: a
    DuckDB key index is held in memory by every transaction that inserts (about 100 bytes a row,
    300 MB for 3 million line items), so a large load would grow with its size; the loader keeps the
    keys unique.
    """
    keys = key_columns(table)
    described = {column.name: column.description for column in table.columns}
    columns = [
        _column(name, type_, described.get(name) or STANDARD_COLUMNS.get(name, ""), nullable=name not in keys)
        for name, type_ in data_columns(table)
    ]
    columns += [
        _column(
            "_raw", _DuckDBRawJSON() if dialect == "duckdb" else json_type(dialect), STANDARD_COLUMNS["_raw"]
        ),
        _column("_loaded_at", sa.TIMESTAMP(timezone=True), STANDARD_COLUMNS["_loaded_at"], nullable=False),
        _column("_run_id", sa.Text(), STANDARD_COLUMNS["_run_id"]),
    ]
    constraints = [sa.PrimaryKeyConstraint(*keys)] if dialect == "postgres" else []
    return sa.Table(table.name, metadata, *columns, *constraints, quote=True, comment=table.description)


def sync_state_table(metadata: sa.MetaData, dialect: Dialect) -> sa.Table:
    """Describe ``_sync_state``: one row per tenant × entity with its watermark and last run."""
    return sa.Table(
        SYNC_STATE,
        metadata,
        _column("tenant_id", sa.Text(), "Xero organisation (tenant)", nullable=False),
        _column("entity", sa.Text(), "registry entity (organisation, accounts, contacts, …)", nullable=False),
        _column(
            "watermark",
            sa.TIMESTAMP(timezone=True),
            "largest UpdatedDateUTC committed; the next run reads changes after it (null: read whole)",
        ),
        _column("last_run_id", sa.Text(), "the pipeline run of the last load"),
        _column("last_run_at", sa.TIMESTAMP(timezone=True), "when the last load committed (UTC)"),
        _column("rows_loaded", sa.BigInteger(), "distinct records in the last load"),
        _column("rows_inserted", sa.BigInteger(), "records the last load added"),
        _column("rows_updated", sa.BigInteger(), "records the last load changed"),
        _column("rows_unchanged", sa.BigInteger(), "records the last load read but found unchanged"),
        _column("children_replaced", sa.BigInteger(), "child rows (line items) the last load wrote"),
        _column("rows_quarantined", sa.BigInteger(), "rows the last load sent to _quarantine"),
        _column("api_calls", sa.BigInteger(), "Xero API calls the last extract made"),
        _column("stats", json_type(dialect), "the last run's extract figures (pages, calls, …) as JSON"),
        sa.PrimaryKeyConstraint("tenant_id", "entity"),
        quote=True,
        comment="sync state: one row per tenant and entity with its watermark and the figures of its last load",
    )


def quarantine_table(metadata: sa.MetaData) -> sa.Table:
    """Describe ``_quarantine``: rows that failed parsing or validation, kept with the reason.

    ``_raw`` is text, not JSON, because a quarantined record may be malformed JSON. ``row_index``
    numbers the rows of one tenant × entity × run, so a retried run replaces its own rows.
    """
    return sa.Table(
        QUARANTINE,
        metadata,
        _column("tenant_id", sa.Text(), "Xero organisation (tenant)", nullable=False),
        _column("entity", sa.Text(), "registry entity the record was read as", nullable=False),
        _column("_run_id", sa.Text(), "the pipeline run that quarantined the row", nullable=False),
        _column(
            "row_index", sa.BigInteger(), "numbers the rows of one tenant, entity and run", nullable=False
        ),
        _column("table_name", sa.Text(), "warehouse table the row was meant for", nullable=False),
        _column("record_id", sa.Text(), "Xero id of the record, when it could be read"),
        _column(
            "reason",
            sa.Text(),
            "why the row was quarantined (the failed check or parse error)",
            nullable=False,
        ),
        _column("_raw", sa.Text(), "the record as Xero sent it (text: it may not be valid JSON)"),
        _column("_seq", sa.BigInteger(), "the read of the record within the run"),
        _column(
            "_quarantined_at", sa.TIMESTAMP(timezone=True), "when the row was stored (UTC)", nullable=False
        ),
        sa.PrimaryKeyConstraint("tenant_id", "entity", "_run_id", "row_index"),
        quote=True,
        comment="rows that failed parsing or validation, kept with the reason instead of being loaded",
    )


def build_metadata(entities: Iterable[Entity], dialect: Dialect) -> sa.MetaData:
    """Describe every warehouse table: one per registry table, then the bookkeeping tables.

    The tables carry no schema: DDL runs with the warehouse schema as the session's current schema,
    because DuckDB needs a catalog-qualified name that SQLAlchemy cannot render.
    """
    metadata = sa.MetaData()
    for entity in entities:
        for table in entity.tables:
            registry_table(metadata, table, dialect)
    sync_state_table(metadata, dialect)
    quarantine_table(metadata)
    return metadata


def create_table_sql(table: sa.Table) -> str:
    """Render ``CREATE TABLE IF NOT EXISTS`` for ``table``."""
    return str(CreateTable(table, if_not_exists=True).compile(dialect=_COMPILER_DIALECT)).strip()


def add_column_sql(qualified_table: str, column: sa.Column) -> str:
    """Render ``ALTER TABLE … ADD COLUMN`` for a column the registry gained (always nullable)."""
    return f"ALTER TABLE {qualified_table} ADD COLUMN {quote(column.name)} {type_sql(column.type)}"
