"""The warehouse API: schema management, transactional loads, sync state, quarantine and SQL models.

One :class:`Warehouse` serves DuckDB and PostgreSQL through a :class:`~xero.warehouse.base.Backend`.
A load of one tenant × entity is a single transaction: stage the Parquet files, keep the last read of
each record (highest ``_seq``), classify it as new, changed or unchanged, write the new and changed
ones (an update deletes and re-inserts the row), replace the children of changed parents, store
quarantined rows and move the watermark forward. A failure anywhere rolls all of it back, so the
watermark never gets ahead of the data.

Memory does not grow with the wide rows: the staged rows are read in place (on DuckDB straight from
the Parquet files) and only by the statements that write them; de-duplication and classification
work on narrow rows (keys, ``_seq`` and a fingerprint of ``_raw`` and the typed columns). A read
(``_seq``) holds one record and its children, with unique keys: the normaliser numbers the reads
and the validation step quarantines duplicate keys.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xero.entities import ENTITIES, ChildTable, Entity, Table
from xero.warehouse.base import Backend, Session, parquet_files
from xero.warehouse.ddl import (
    QUARANTINE,
    SYNC_STATE,
    add_column_sql,
    build_metadata,
    create_table_sql,
    data_columns,
    json_type,
    key_columns,
    quote,
    type_sql,
    validate_identifier,
)
from xero.warehouse.dictionary import apply_table_comments, read_comments
from xero.warehouse.marts import build_models
from xero.warehouse.models import load_models

if TYPE_CHECKING:
    from airflow.providers.common.sql.hooks.sql import DbApiHook

log = logging.getLogger(__name__)

#: Placeholder for the warehouse schema in ad-hoc queries (:meth:`Warehouse.query`).
SCHEMA_TEMPLATE = re.compile(r"\{\{\s*schema\s*\}\}")

_STAGED_TYPES = [("_raw", "TEXT"), ("_seq", "BIGINT")]
_ACTION = "_xero_action"
_QUARANTINE_COLUMNS = ["tenant_id", "entity", "table_name", "record_id", "reason", "_raw", "_seq"]


@dataclass(frozen=True)
class LoadResult:
    """What one load changed.

    :param inserted: parent records new to the warehouse.
    :param updated: parent records whose content changed.
    :param unchanged: parent records already stored exactly so (left untouched).
    :param children_replaced: child rows written for the inserted and updated parents.
    :param children_deleted: child rows removed from the updated parents before the rewrite.
    :param quarantined: quarantine rows stored for this tenant × entity.
    :param watermark: the watermark after the load.
    """

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    children_replaced: int = 0
    children_deleted: int = 0
    quarantined: int = 0
    watermark: datetime | None = None

    @property
    def loaded(self) -> int:
        """Return the distinct parent records in the batch."""
        return self.inserted + self.updated + self.unchanged


def _backend_for(hook: DbApiHook) -> Backend:
    conn_type = getattr(hook, "conn_type", None)
    if conn_type == "duckdb":
        from xero.warehouse.duckdb import DuckDBBackend

        return DuckDBBackend(hook)
    if conn_type in ("postgres", "postgresql"):
        from xero.warehouse.postgres import PostgresBackend

        return PostgresBackend(hook)
    raise ValueError(
        f"unsupported warehouse hook {type(hook).__name__} (conn_type {conn_type!r}); "
        "use a duckdb or postgres connection"
    )


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(UTC)


def _later(old: datetime | None, new: datetime | None) -> datetime | None:
    """Return the later of two watermarks; ``None`` means "no opinion"."""
    if old is None or new is None:
        return _utc(old if new is None else new)
    return _utc(max(old, new))


class Warehouse:
    """The Xero warehouse in one schema of a DuckDB file or a PostgreSQL database.

    :param backend: the dialect backend wrapping an Airflow common-sql hook.
    :param schema: schema holding every table and model.
    :param entities: the registry entities to manage (default: all of them).
    :param clock: returns the current UTC time (``_loaded_at``, ``last_run_at``); injectable for tests.
    """

    def __init__(
        self,
        backend: Backend,
        schema: str = "xero",
        entities: Iterable[Entity] | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._backend = backend
        self.entities: dict[str, Entity] = {e.name: e for e in (entities or ENTITIES.values())}
        self._metadata = build_metadata(self.entities.values(), backend.dialect)
        self.schema = validate_identifier(schema, "schema name")
        self._clock = clock or (lambda: datetime.now(UTC))
        self._json = type_sql(json_type(backend.dialect))

    @classmethod
    def from_hook(cls, hook: DbApiHook, schema: str = "xero", **kwargs: Any) -> Warehouse:
        """Build a warehouse on a DuckDBHook or PostgresHook."""
        return cls(_backend_for(hook), schema=schema, **kwargs)

    @classmethod
    def from_conn_id(cls, conn_id: str = "xero_warehouse", schema: str = "xero", **kwargs: Any) -> Warehouse:
        """Build a warehouse from an Airflow connection (``duckdb``: host = file path; ``postgres``)."""
        from airflow.sdk import BaseHook

        connection = BaseHook.get_connection(conn_id)
        if connection.conn_type not in ("duckdb", "postgres", "postgresql"):
            raise ValueError(
                f"warehouse connection {conn_id!r} has conn_type {connection.conn_type!r}; "
                "supported: duckdb, postgres"
            )
        return cls.from_hook(connection.get_hook(), schema=schema, **kwargs)

    @property
    def dialect(self) -> str:
        """Return ``"duckdb"`` or ``"postgres"``."""
        return self._backend.dialect

    def _entity(self, entity: str | Entity) -> Entity:
        if isinstance(entity, Entity):
            return entity
        try:
            return self.entities[entity]
        except KeyError:
            raise ValueError(f"unknown Xero entity {entity!r}; known: {', '.join(self.entities)}") from None

    # -- schema ---------------------------------------------------------------------------------

    def ensure_schema(self) -> list[str]:
        """Create the schema and every missing table; add registry columns missing from existing tables.

        Idempotent. Columns are only ever added (never dropped or narrowed). Table and column comments
        (the data dictionary) are written where they differ from the stored ones.

        :return: the DDL statements that were executed (empty when nothing changed).
        """
        applied: list[str] = []
        with self._backend.transaction(self.schema) as session:
            self._backend.lock_ddl(session, self.schema)
            session.execute(f"CREATE SCHEMA IF NOT EXISTS {session.prefix}")
            self._backend.use_schema(session, self.schema)
            existing = self._existing_columns(session)
            for table in self._metadata.sorted_tables:
                if table.name not in existing:
                    statements = [create_table_sql(table)]
                else:
                    statements = [
                        add_column_sql(session.table(table.name), column)
                        for column in table.columns
                        if column.name not in existing[table.name]
                    ]
                for statement in statements:
                    session.execute(statement)
                    applied.append(statement)
            commented = apply_table_comments(session, self._backend.dialect, self.schema, self._metadata)
        if commented:
            log.info("Warehouse schema %s: %d table and column descriptions written", self.schema, commented)
        for statement in applied:
            log.info("Warehouse schema %s: %s", self.schema, statement.splitlines()[0])
        return applied

    def _existing_columns(self, session: Session) -> dict[str, set[str]]:
        rows = session.query(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = ?",
            (self.schema,),
        )
        existing: dict[str, set[str]] = {}
        for table_name, column_name in rows:
            existing.setdefault(table_name, set()).add(column_name)
        return existing

    # -- reads ----------------------------------------------------------------------------------

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run a read query; ``{{ schema }}`` stands for the qualified warehouse schema, ``?`` for parameters."""
        with self._backend.transaction(self.schema) as session:
            return session.query(SCHEMA_TEMPLATE.sub(lambda _: session.prefix, sql), params)

    def get_watermarks(self, tenant_ids: list[str] | None = None) -> dict[tuple[str, str], datetime | None]:
        """Return the committed watermark per (tenant, entity).

        With ``tenant_ids`` every (tenant, registry entity) pair is present, ``None`` where nothing
        was loaded yet; without, only the pairs that have a state row.
        """
        result: dict[tuple[str, str], datetime | None] = {}
        if tenant_ids is not None:
            result = {(tenant, entity): None for tenant in tenant_ids for entity in self.entities}
            if not tenant_ids:
                return result
        with self._backend.transaction(self.schema) as session:
            if SYNC_STATE not in self._existing_columns(session):
                return result
            sql = f"SELECT tenant_id, entity, watermark FROM {session.table(SYNC_STATE)}"
            params: list[str] = []
            if tenant_ids is not None:
                sql += f" WHERE tenant_id IN ({', '.join('?' for _ in tenant_ids)})"
                params = list(tenant_ids)
            for tenant, entity, watermark in session.query(sql, params):
                result[(tenant, entity)] = _utc(watermark)
        return result

    def table_counts(self) -> dict[tuple[str, str], int]:
        """Return the row count per (tenant, registry table) for the run summary."""
        counts: dict[tuple[str, str], int] = {}
        with self._backend.transaction(self.schema) as session:
            existing = self._existing_columns(session)
            selects = [
                f"SELECT tenant_id, '{table.name}' AS table_name, count(*) AS n "
                f"FROM {session.table(table.name)} GROUP BY tenant_id"
                for entity in self.entities.values()
                for table in entity.tables
                if table.name in existing
            ]
            if selects:
                for tenant, table_name, n in session.query(" UNION ALL ".join(selects)):
                    counts[(tenant, table_name)] = int(n)
        return counts

    # -- load -----------------------------------------------------------------------------------

    def load(
        self,
        tenant_id: str,
        entity: str | Entity,
        data_dir: Path,
        watermark: datetime | None,
        run_id: str,
        stats: dict[str, Any] | None = None,
    ) -> LoadResult:
        """Load one tenant × entity from typed Parquet files in one transaction.

        Reads ``<data_dir>/<table>/*.parquet`` for the entity's tables and ``<data_dir>/_quarantine``,
        keeping only this tenant's rows (and this entity's quarantine rows).

        :param tenant_id: the Xero tenant.
        :param entity: registry name (``invoices``) or :class:`~xero.entities.Entity`.
        :param data_dir: the directory holding the Parquet files.
        :param watermark: the largest ``UpdatedDateUTC`` in this batch; the stored watermark moves to
            it only if it is later (``None`` keeps the stored one).
        :param run_id: the pipeline run, stored on changed rows and in the sync state.
        :param stats: extraction figures (``api_calls``, …) stored with the sync state.
        """
        ent = self._entity(entity)
        if watermark is not None and watermark.tzinfo is None:
            raise ValueError(
                f"watermark for {tenant_id}/{ent.name} must be timezone-aware, got {watermark!r}"
            )
        data_dir = Path(data_dir)
        now = self._clock()
        with self._backend.transaction(self.schema) as session:
            old_watermark = self._backend.lock_sync_state(
                session, session.table(SYNC_STATE), tenant_id, ent.name
            )
            self._stage(session, ent.table, tenant_id, data_dir)
            self._classify_parent(session, ent.table, tenant_id)
            for child in ent.children:
                self._stage(session, child, tenant_id, data_dir)
                self._classify_children(session, ent.table, child, tenant_id)
            actions = self._write_parent(session, ent.table, tenant_id, now, run_id)
            replaced = deleted = 0
            for child in ent.children:
                child_replaced, child_deleted = self._replace_children(
                    session, ent.table, child, tenant_id, now, run_id
                )
                replaced += child_replaced
                deleted += child_deleted
            quarantined = self._store_quarantine(session, ent, tenant_id, data_dir, now, run_id)
            result = LoadResult(
                inserted=actions.get("insert", 0),
                updated=actions.get("update", 0),
                unchanged=actions.get("unchanged", 0),
                children_replaced=replaced,
                children_deleted=deleted,
                quarantined=quarantined,
                watermark=_later(old_watermark, watermark),
            )
            self._write_sync_state(session, tenant_id, ent, result, run_id, now, stats or {})
        log.info(
            "Loaded %s/%s: %d inserted, %d updated, %d unchanged, %d child rows replaced, %d quarantined",
            tenant_id,
            ent.name,
            result.inserted,
            result.updated,
            result.unchanged,
            result.children_replaced,
            result.quarantined,
        )
        return result

    def _stage(self, session: Session, table: Table, tenant_id: str, data_dir: Path) -> None:
        """Stage this tenant's rows of ``table``'s Parquet files (every read of every record) as ``_xero_raw_*``."""
        columns = [(name, type_sql(type_)) for name, type_ in data_columns(table)] + _STAGED_TYPES
        raw = _raw_name(table)
        self._backend.stage_parquet(
            session, raw, columns, parquet_files(data_dir / table.name), {"tenant_id": tenant_id}
        )
        unnumbered = session.scalar(f"SELECT count(*) FROM {quote(raw)} WHERE _seq IS NULL")
        if unnumbered:
            raise ValueError(f"{unnumbered} staged {table.name} rows of {tenant_id} have no _seq")

    def _fingerprints(self, table: Table, relation: str, staged: bool) -> str:
        """Return a subquery of ``relation``'s record keys (and ``_seq`` when staged) and each row's ``_xero_fp``.

        Two rows have equal fingerprints exactly when their ``_raw`` and typed columns are equal (see
        :meth:`Backend.fingerprint`), so reads are compared with stored rows without joining wide rows.
        A stored table is read for one tenant, the ``?`` parameter.
        """
        values = [c.name for c in table.columns if c.name not in table.primary_key]
        columns = ", ".join(quote(k) for k in [*table.primary_key, *(["_seq"] if staged else [])])
        where = "" if staged else " WHERE tenant_id = ?"
        return (
            f"(SELECT {columns}, {self._backend.fingerprint(values, staged)} AS _xero_fp "
            f"FROM {relation}{where})"
        )

    def _classify_parent(self, session: Session, table: Table, tenant_id: str) -> None:
        """Keep the last read of each parent record (highest ``_seq``), marked ``insert``, ``update`` or ``unchanged``.

        ``_seq`` numbers the reads, so it identifies a staged parent row: the kept reads are a narrow
        temporary table (record key, ``_seq``, action) and the rows stay staged until the insert reads
        them. A record is changed when its ``_raw`` or any typed column differs from the stored row;
        fingerprints are computed only when some kept record is stored already (never on a first load).
        All staged rows are this tenant's, so the tenant is no part of the joins.
        """
        keys = table.primary_key
        raw = quote(_raw_name(table))
        kept = quote(_kept_name(table))
        key_list = ", ".join(quote(k) for k in keys)
        self._backend.create_temp_table_as(
            session,
            _kept_name(table),
            f"SELECT {', '.join(f's.{quote(k)}' for k in keys)}, s._seq, "
            f"CASE WHEN t.{quote(keys[0])} IS NULL THEN 'insert' ELSE 'unchanged' END AS {_ACTION} "
            f"FROM (SELECT {key_list}, _seq FROM {raw}) s "
            f"JOIN (SELECT max(_seq) AS _seq FROM {raw} GROUP BY {key_list}) l ON l._seq = s._seq "
            f"LEFT JOIN (SELECT {key_list} FROM {session.table(table.name)} WHERE tenant_id = ?) t "
            f"ON {_on('t', 's', keys)}",
            (tenant_id,),
        )
        if not session.scalar(f"SELECT count(*) FROM {kept} WHERE {_ACTION} = 'unchanged'"):
            return
        session.execute(
            f"UPDATE {kept} SET {_ACTION} = 'update' WHERE {_ACTION} = 'unchanged' AND _seq IN ("
            f"SELECT s._seq FROM {self._fingerprints(table, raw, staged=True)} s "
            f"JOIN {self._fingerprints(table, session.table(table.name), staged=False)} t "
            f"ON {_on('t', 's', keys)} WHERE t._xero_fp IS DISTINCT FROM s._xero_fp)",
            (tenant_id,),
        )

    def _classify_children(self, session: Session, parent: Table, child: ChildTable, tenant_id: str) -> None:
        """Mark ``update`` the unchanged parents whose kept children differ from the stored ones.

        A parent's kept children are the child rows read with its kept row (same ``_seq``), so a line
        removed between two reads of the record in one run does not come back. Those of otherwise
        unchanged parents are compared (by fingerprint) with the stored ones: a child on one side only,
        or changed (two fingerprints under one key), marks its parent ``update``, and the children of
        updated parents are replaced. Grouping the union rather than joining the two sides lets DuckDB
        spill it to disk.
        """
        if len(parent.primary_key) != 1 or child.parent_key not in child.primary_key:
            raise ValueError(
                f"child table {child.name} needs a single-column key on {parent.name}, part of its own key"
            )
        parent_pk = quote(parent.primary_key[0])
        parent_key = quote(child.parent_key)
        kept_parent = quote(_kept_name(parent))
        columns = ", ".join(quote(k) for k in [*child.primary_key, "_xero_fp"])
        unchanged = f"SELECT {parent_pk}, _seq FROM {kept_parent} WHERE {_ACTION} = 'unchanged'"
        staged = (
            f"SELECT {', '.join(f's.{quote(k)}' for k in child.primary_key)}, s._xero_fp "
            f"FROM {self._fingerprints(child, quote(_raw_name(child)), staged=True)} s "
            f"JOIN ({unchanged}) p ON p._seq = s._seq AND p.{parent_pk} = s.{parent_key}"
        )
        stored = (
            f"SELECT {columns} FROM {self._fingerprints(child, session.table(child.name), staged=False)} t "
            f"WHERE {parent_key} IN (SELECT {parent_pk} FROM ({unchanged}) p)"
        )
        session.execute(
            f"UPDATE {kept_parent} SET {_ACTION} = 'update' WHERE {_ACTION} = 'unchanged' AND {parent_pk} IN ("
            f"SELECT {parent_key} FROM ({staged} UNION ALL {stored}) c GROUP BY {columns} HAVING count(*) = 1)",
            (tenant_id,),
        )

    def _insert_staged(
        self, session: Session, table: Table, join: str, now: datetime, run_id: str, upsert: bool = False
    ) -> int:
        """Insert the staged rows ``s`` of ``table`` that ``join`` selects; return how many.

        :param upsert: update a stored row with the same key (``INSERT … ON CONFLICT DO UPDATE``).
        """
        names = [name for name, _ in data_columns(table)] + ["_raw"]
        insert_cols = ", ".join(quote(n) for n in [*names, "_loaded_at", "_run_id"])
        select_cols = ", ".join(
            f"CAST(s._raw AS {self._json})" if n == "_raw" else f"s.{quote(n)}" for n in names
        )
        on_conflict = ""
        if upsert:
            keys = key_columns(table)
            updates = ", ".join(
                f"{quote(n)} = EXCLUDED.{quote(n)}"
                for n in [*names, "_loaded_at", "_run_id"]
                if n not in keys
            )
            on_conflict = f" ON CONFLICT ({', '.join(quote(k) for k in keys)}) DO UPDATE SET {updates}"
        return session.execute(
            f"INSERT INTO {session.table(table.name)} ({insert_cols}) "
            f"SELECT {select_cols}, CAST(? AS TIMESTAMPTZ), CAST(? AS TEXT) "
            f"FROM {quote(_raw_name(table))} s {join}{on_conflict}",
            (now, run_id),
        )

    def _write_parent(
        self, session: Session, table: Table, tenant_id: str, now: datetime, run_id: str
    ) -> dict[str, int]:
        """Rewrite the updated parent rows and insert the new ones; return the count per action.

        Where the backend declares its keys (PostgreSQL) this is one ``INSERT … ON CONFLICT DO UPDATE``.
        On DuckDB an update is a delete and an insert of the row: its ``ON CONFLICT DO UPDATE`` is slow and
        memory-hungry on wide rows, and loads of one tenant × entity never race (the ``_sync_state`` row is
        locked). Unchanged rows are not touched.
        """
        kept = quote(_kept_name(table))
        upsert = self._backend.upsert_on_conflict
        if not upsert:
            session.execute(
                f"DELETE FROM {session.table(table.name)} t WHERE t.tenant_id = ? AND EXISTS "
                f"(SELECT 1 FROM {kept} k WHERE {_on('k', 't', table.primary_key)} AND k.{_ACTION} = 'update')",
                (tenant_id,),
            )
        self._insert_staged(
            session,
            table,
            f"JOIN (SELECT _seq FROM {kept} WHERE {_ACTION} <> 'unchanged') k ON k._seq = s._seq",
            now,
            run_id,
            upsert=upsert,
        )
        return {
            action: int(n)
            for action, n in session.query(f"SELECT {_ACTION}, count(*) FROM {kept} GROUP BY 1")
        }

    def _replace_children(
        self, session: Session, parent: Table, child: ChildTable, tenant_id: str, now: datetime, run_id: str
    ) -> tuple[int, int]:
        """Replace the children of every inserted or updated parent; return (rows written, rows deleted).

        Child rows whose parent is not in the batch at all are skipped with a warning.
        """
        parent_pk = quote(parent.primary_key[0])
        parent_key = quote(child.parent_key)
        kept_parent = quote(_kept_name(parent))
        changed = f"SELECT {parent_pk}, _seq FROM {kept_parent} WHERE {_ACTION} <> 'unchanged'"
        deleted = session.execute(
            f"DELETE FROM {session.table(child.name)} WHERE tenant_id = ? AND {parent_key} IN "
            f"(SELECT {parent_pk} FROM ({changed}) p)",
            (tenant_id,),
        )
        written = self._insert_staged(
            session,
            child,
            f"JOIN ({changed}) p ON p._seq = s._seq AND p.{parent_pk} = s.{parent_key}",
            now,
            run_id,
        )
        orphans = session.scalar(
            f"SELECT count(*) FROM {quote(_raw_name(child))} c "
            f"LEFT JOIN {kept_parent} p ON p.{parent_pk} = c.{parent_key} WHERE p.{parent_pk} IS NULL"
        )
        if orphans:
            log.warning(
                "%s/%s: %d child rows without a parent in this batch were skipped",
                tenant_id,
                child.name,
                orphans,
            )
        return written, deleted

    def _store_quarantine(
        self, session: Session, entity: Entity, tenant_id: str, data_dir: Path, now: datetime, run_id: str
    ) -> int:
        """Store this tenant × entity's quarantine rows (replacing those of an earlier try of this run)."""
        raw = "_xero_raw_quarantine"
        types = {"_seq": "BIGINT"}
        self._backend.stage_parquet(
            session,
            raw,
            [(n, types.get(n, "TEXT")) for n in _QUARANTINE_COLUMNS],
            parquet_files(data_dir / QUARANTINE),
            {"tenant_id": tenant_id, "entity": entity.name},
        )
        target = session.table(QUARANTINE)
        session.execute(
            f"DELETE FROM {target} WHERE tenant_id = ? AND entity = ? AND _run_id = ?",
            (tenant_id, entity.name, run_id),
        )
        session.execute(
            f"INSERT INTO {target} (tenant_id, entity, _run_id, row_index, table_name, record_id, reason, "
            "_raw, _seq, _quarantined_at) "
            "SELECT tenant_id, entity, CAST(? AS TEXT), "
            "row_number() OVER (ORDER BY _seq NULLS LAST, table_name, record_id NULLS LAST, reason), "
            f"table_name, record_id, reason, _raw, _seq, CAST(? AS TIMESTAMPTZ) FROM {quote(raw)}",
            (run_id, now),
        )
        return int(session.scalar(f"SELECT count(*) FROM {quote(raw)}"))

    def _write_sync_state(
        self,
        session: Session,
        tenant_id: str,
        entity: Entity,
        result: LoadResult,
        run_id: str,
        now: datetime,
        stats: dict[str, Any],
    ) -> None:
        """Record the load in ``_sync_state`` (inside the load's transaction)."""
        api_calls = stats.get("api_calls")
        session.execute(
            f"UPDATE {session.table(SYNC_STATE)} SET watermark = CAST(? AS TIMESTAMPTZ), "
            "last_run_id = CAST(? AS TEXT), last_run_at = CAST(? AS TIMESTAMPTZ), "
            "rows_loaded = CAST(? AS BIGINT), rows_inserted = CAST(? AS BIGINT), "
            "rows_updated = CAST(? AS BIGINT), rows_unchanged = CAST(? AS BIGINT), "
            "children_replaced = CAST(? AS BIGINT), rows_quarantined = CAST(? AS BIGINT), "
            f"api_calls = CAST(? AS BIGINT), stats = CAST(? AS {self._json}) "
            "WHERE tenant_id = ? AND entity = ?",
            (
                result.watermark,
                run_id,
                now,
                result.loaded,
                result.inserted,
                result.updated,
                result.unchanged,
                result.children_replaced,
                result.quarantined,
                None if api_calls is None else int(api_calls),
                json.dumps(stats, default=str, sort_keys=True),
                tenant_id,
                entity.name,
            ),
        )

    # -- SQL models -----------------------------------------------------------------------------

    def run_sql_dir(self, path: Path) -> list[str]:
        """Build the SQL models of ``path`` in dependency order, in one transaction; return their names.

        Each file is a header (description, grain, dependencies, kind, columns) and one select with
        unqualified names: the warehouse schema is the session's current schema (PostgreSQL
        ``search_path``, DuckDB ``USE``), so the same SQL runs on both and in any schema. The models
        are dropped first (in reverse order, without CASCADE), so a model whose columns changed is
        recreated on PostgreSQL too, and readers never see a half-built set; every view and column is
        then described with ``COMMENT ON``. See :mod:`xero.warehouse.models` and :mod:`xero.warehouse.marts`.
        """
        models = load_models(Path(path))
        with self._backend.transaction(self.schema) as session:
            self._backend.lock_ddl(session, self.schema)
            self._backend.use_schema(session, self.schema)
            return build_models(
                session, self._backend.dialect, self.schema, models, list(self.entities.values())
            )

    def comments(self) -> dict[tuple[str, str | None], str]:
        """Return the descriptions stored in the warehouse: (table, view or function; column or None) → text."""
        with self._backend.transaction(self.schema) as session:
            return read_comments(session, self._backend.dialect, self.schema)


def _raw_name(table: Table) -> str:
    """Return the staging relation of ``table``: every read of every record, all columns."""
    return f"_xero_raw_{table.name}"


def _kept_name(table: Table) -> str:
    """Return the temporary table of the kept read of each record of ``table``: key, ``_seq``, action."""
    return f"_xero_stg_{table.name}"


def _on(left: str, right: str, columns: Iterable[str]) -> str:
    """Return the condition ``left.c = right.c AND …`` over ``columns``."""
    return " AND ".join(f"{left}.{quote(c)} = {right}.{quote(c)}" for c in columns)


__all__ = ["LoadResult", "Warehouse"]
