"""The read copy of a DuckDB warehouse: the file analysts, BI tools and dashboards open while syncs run.

DuckDB lets one process write a database file and refuses it while any other process holds the file open,
even read-only. So readers never open the warehouse itself: after each successful marts step the warehouse
is published to a read copy (:func:`read_copy_path`, by default ``<dir>/<stem>.read.duckdb`` beside the
warehouse, or the connection extra ``read_copy``). The copy is written by DuckDB itself
(``ATTACH … (STORAGE_VERSION …)`` and ``COPY FROM DATABASE``), so tables, views, table macros and comments
all arrive, to a temporary file in the same directory, checked, then moved over the previous copy with
:func:`os.replace`. A reader that holds the old copy open keeps reading that consistent state until it
reconnects; a new connection gets the new state; nobody ever sees a half-written file.

The copy is written in DuckDB's storage format :data:`READ_COPY_STORAGE_VERSION`, which DuckDB 1.2 and later
read (the warehouse itself is in the format of the DuckDB that writes it, which older DuckDB releases and
the BI tools embedding them cannot open).

A publish is skipped when nothing an analyst can see changed since the previous one: a digest of the
catalog (tables, columns, views, macros, comments), every table's row count and the latest bookkeeping
timestamps (``_loaded_at`` and the like) is compared with the one recorded beside the copy. Run bookkeeping
in ``_sync_state`` (last run id and time, per-run counts, API calls) is left out of it, so an hourly run
that changed nothing costs a few catalog queries; the copy's ``_sync_state`` then shows the last run that
changed data.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xero.warehouse.ddl import SYNC_STATE, quote

if TYPE_CHECKING:
    from airflow.providers.duckdb.hooks.duckdb import DuckDBHook

log = logging.getLogger(__name__)

#: Suffix of the default read copy: ``warehouse.duckdb`` → ``warehouse.read.duckdb``.
READ_COPY_SUFFIX = ".read.duckdb"
#: The warehouse connection's extra naming another path for the read copy.
READ_COPY_EXTRA = "read_copy"
#: DuckDB storage format of the read copy: readable by DuckDB 1.2.0 and every later release. (The
#: warehouse's ``_raw`` columns use zstd compression, which older formats cannot store.)
READ_COPY_STORAGE_VERSION = "v1.2.0"
#: Columns of ``_sync_state`` that every run rewrites even when nothing changed; not part of the digest.
RUN_BOOKKEEPING = frozenset(
    {
        "last_run_id",
        "last_run_at",
        "rows_loaded",
        "rows_inserted",
        "rows_updated",
        "rows_unchanged",
        "children_replaced",
        "rows_quarantined",
        "api_calls",
        "stats",
    }
)
_ATTACHED = "_xero_read_copy"


def read_copy_path(database: str | os.PathLike[str], override: str | os.PathLike[str] | None = None) -> Path:
    """Return the read copy of the DuckDB warehouse file ``database``.

    :param database: the warehouse file (the DuckDB connection's host).
    :param override: the connection extra ``read_copy``, when set: an absolute path, or one relative to
        the warehouse's directory.
    :return: ``override`` when given, else ``<dir>/<stem>.read.duckdb`` beside ``database``.
    """
    warehouse = Path(database)
    if override:
        chosen = Path(override)
        return chosen if chosen.is_absolute() else warehouse.parent / chosen
    return warehouse.with_name(warehouse.stem + READ_COPY_SUFFIX)


def marker_path(read_copy: str | os.PathLike[str]) -> Path:
    """Return the file recording what the read copy ``read_copy`` was published from (a JSON digest)."""
    path = Path(read_copy)
    return path.with_name(f".{path.name}.published.json")


def read_copy_for(hook: DuckDBHook) -> Path:
    """Return the read copy of the warehouse a DuckDB hook opens (honouring the ``read_copy`` extra)."""
    database = hook.get_database()
    if database == ":memory:" or database.startswith("md:"):
        raise ValueError(
            f"a read copy needs a DuckDB warehouse file, not {hook._redact_database(database)!r}"
        )
    read_copy = read_copy_path(database, hook.connection_extra.get(READ_COPY_EXTRA))
    if read_copy.resolve() == Path(database).resolve():
        raise ValueError(
            f"the read copy must be another file than the warehouse {database}: fix the extra 'read_copy'"
        )
    return read_copy


@dataclass(frozen=True)
class PublishResult:
    """What one publish did.

    :param read_copy: the read copy's path.
    :param published: ``False`` when the copy was already up to date (nothing written).
    :param seconds: time spent, the digest included.
    :param size_bytes: size of the read copy afterwards.
    :param digest: the content digest the copy now holds.
    """

    read_copy: str
    published: bool
    seconds: float
    size_bytes: int
    digest: str


def _rows(conn: Any, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in conn.execute(sql, params or []).fetchall()]


def content_digest(conn: Any, catalog: str) -> str:
    """Return a digest of what readers of ``catalog`` can see, cheap to compute at any size.

    Covers the catalog (schemas, tables, column types, views, macros, comments) and per table its row
    count and, for each bookkeeping timestamp column (name starting with ``_``), its latest value and
    count: every write of the loader sets ``_loaded_at``. Tables without such a column (``_sync_state``)
    are hashed in full, less the run bookkeeping of :data:`RUN_BOOKKEEPING`.
    """
    digest = hashlib.sha256()

    def feed(label: str, rows: list[tuple[Any, ...]]) -> None:
        digest.update(label.encode())
        digest.update(json.dumps(rows, default=str).encode())

    columns = _rows(
        conn,
        "SELECT schema_name, table_name, column_name, data_type, comment FROM duckdb_columns() "
        "WHERE database_name = ? AND NOT internal ORDER BY ALL",
        [catalog],
    )
    feed("columns", columns)
    tables = _rows(
        conn,
        "SELECT schema_name, table_name, comment FROM duckdb_tables() "
        "WHERE database_name = ? AND NOT internal AND NOT temporary ORDER BY ALL",
        [catalog],
    )
    feed("tables", tables)
    feed(
        "views",
        _rows(
            conn,
            "SELECT schema_name, view_name, sql, comment FROM duckdb_views() "
            "WHERE database_name = ? AND NOT internal AND NOT temporary ORDER BY ALL",
            [catalog],
        ),
    )
    feed(
        "macros",
        _rows(
            conn,
            "SELECT schema_name, function_name, function_type, CAST(parameters AS VARCHAR), macro_definition, "
            "comment FROM duckdb_functions() WHERE database_name = ? AND NOT internal "
            "AND function_type IN ('macro', 'table_macro') ORDER BY ALL",
            [catalog],
        ),
    )
    by_table: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for schema, table, column, type_, _ in columns:
        by_table.setdefault((schema, table), []).append((column, type_))
    for schema, table, _ in tables:
        relation = f"{quote(catalog)}.{quote(schema)}.{quote(table)}"
        table_columns = by_table.get((schema, table), [])
        stamps = [c for c, t in table_columns if c.startswith("_") and t.startswith("TIMESTAMP")]
        if stamps:
            aggregates = ", ".join(f"max({quote(c)}), count({quote(c)})" for c in stamps)
            feed(relation, _rows(conn, f"SELECT count(*), {aggregates} FROM {relation}"))
        else:
            kept = [c for c, _ in table_columns if not (table == SYNC_STATE and c in RUN_BOOKKEEPING)]
            row = f"hash({', '.join(map(quote, kept))})" if kept else "0"
            feed(relation, _rows(conn, f"SELECT count(*), sum(CAST({row} AS HUGEINT)) FROM {relation}"))
    return digest.hexdigest()


def _read_marker(read_copy: Path) -> dict[str, Any] | None:
    """Return the marker of ``read_copy`` if it describes the file that is there now."""
    try:
        marker = json.loads(marker_path(read_copy).read_text(encoding="utf-8"))
        stat = read_copy.stat()
    except (OSError, ValueError):
        return None
    if marker.get("size_bytes") != stat.st_size or marker.get("mtime_ns") != stat.st_mtime_ns:
        return None  # the copy was replaced or touched by something else
    return dict(marker)


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _fsync(path: Path) -> None:
    """Flush ``path`` (a file or a directory) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_leftovers(read_copy: Path) -> None:
    """Remove temporary copies a killed publish left beside ``read_copy``.

    Only one publish runs at a time: it holds the warehouse open, which DuckDB grants one process.
    """
    for leftover in read_copy.parent.glob(f".{read_copy.name}.*.tmp*"):
        log.info("Removing %s, left by an interrupted publish", leftover)
        with contextlib.suppress(FileNotFoundError):
            leftover.unlink()


@contextlib.contextmanager
def _temporary(read_copy: Path) -> Iterator[Path]:
    """Yield a fresh path beside ``read_copy``; whatever is left there (and its WAL) is removed afterwards."""
    _remove_leftovers(read_copy)
    tmp = read_copy.with_name(f".{read_copy.name}.{uuid.uuid4().hex}.tmp")
    try:
        yield tmp
    finally:
        for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()


def _inventory(conn: Any, catalog: str) -> list[tuple[Any, ...]]:
    """Return every table with its row count, view and macro of ``catalog``: what a copy must hold."""
    tables = _rows(
        conn,
        "SELECT schema_name, table_name FROM duckdb_tables() "
        "WHERE database_name = ? AND NOT internal AND NOT temporary ORDER BY ALL",
        [catalog],
    )
    counted = [
        (
            "table",
            schema,
            name,
            conn.execute(f"SELECT count(*) FROM {quote(catalog)}.{quote(schema)}.{quote(name)}").fetchone()[
                0
            ],
        )
        for schema, name in tables
    ]
    others = _rows(
        conn,
        "SELECT 'view', schema_name, view_name, NULL FROM duckdb_views() "
        "WHERE database_name = ? AND NOT internal AND NOT temporary "
        "UNION ALL SELECT DISTINCT function_type, schema_name, function_name, NULL FROM duckdb_functions() "
        "WHERE database_name = ? AND NOT internal AND function_type IN ('macro', 'table_macro') ORDER BY ALL",
        [catalog, catalog],
    )
    return counted + others


def _warn_on_ambiguous_names(conn: Any, catalog: str, target: Path) -> None:
    """Warn when the copy's catalog (its file name up to the first dot) is also one of its schemas' names.

    Readers of ``xero.read.duckdb`` would then have to write ``xero.xero.invoice``: ``xero.invoice`` is ambiguous.
    """
    name = target.name.split(".")[0]
    schemas = {
        row[0]
        for row in _rows(conn, "SELECT schema_name FROM duckdb_schemas() WHERE database_name = ?", [catalog])
    }
    if name in schemas:
        log.warning(
            "Readers of %s must write %s.%s.<table>: its catalog and a schema are both named %r. "
            "Name the read copy otherwise with the warehouse connection's extra 'read_copy'.",
            target,
            name,
            name,
            name,
        )


def publish(conn: Any, read_copy: str | os.PathLike[str], *, force: bool = False) -> PublishResult:
    """Publish the database of the open DuckDB connection ``conn`` to ``read_copy``, atomically.

    Skipped (``published=False``) when the copy already holds the same content (see
    :func:`content_digest`), unless ``force``. ``conn`` must not be inside a transaction.

    :raises RuntimeError: when the copy does not hold every table (with its rows), view and macro of
        the warehouse; the previous read copy is then left as it was.
    """
    started = time.perf_counter()
    target = Path(read_copy)
    catalog = conn.execute("SELECT current_database()").fetchone()[0]
    digest = content_digest(conn, catalog)
    marker = None if force else _read_marker(target)
    if marker is not None and marker.get("digest") == digest:
        seconds = time.perf_counter() - started
        log.info("Read copy %s is up to date (nothing changed since %s)", target, marker.get("published_at"))
        return PublishResult(str(target), False, seconds, target.stat().st_size, digest)
    _warn_on_ambiguous_names(conn, catalog, target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with _temporary(target) as tmp:
        conn.execute(
            f"ATTACH '{str(tmp).replace(chr(39), chr(39) * 2)}' AS {_ATTACHED} "
            f"(STORAGE_VERSION '{READ_COPY_STORAGE_VERSION}')"
        )
        try:
            conn.execute(f"COPY FROM DATABASE {quote(catalog)} TO {_ATTACHED}")
            expected, copied = _inventory(conn, catalog), _inventory(conn, _ATTACHED)
        finally:
            conn.execute(f"DETACH {_ATTACHED}")
        if copied != expected:
            missing = sorted(set(expected) - set(copied), key=str)
            raise RuntimeError(f"the read copy of {catalog} is incomplete, not published: {missing[:10]}")
        _fsync(tmp)
        os.replace(tmp, target)
    _fsync(target.parent)
    stat = target.stat()
    published_at = datetime.now(UTC).isoformat(timespec="seconds")
    seconds = time.perf_counter() - started
    result = PublishResult(str(target), True, seconds, stat.st_size, digest)
    _write_atomically(
        marker_path(target),
        json.dumps(
            {
                **asdict(result),
                "published_at": published_at,
                "storage_version": READ_COPY_STORAGE_VERSION,
                "mtime_ns": stat.st_mtime_ns,
            },
            indent=2,
        ),
    )
    log.info(
        "Published the read copy %s (%.1f MB, DuckDB %s format) in %.2f s",
        target,
        stat.st_size / 1e6,
        READ_COPY_STORAGE_VERSION,
        seconds,
    )
    return result


def publish_read_copy(warehouse_conn_id: str, *, force: bool = False) -> PublishResult | None:
    """Publish the read copy of the warehouse behind the Airflow connection ``warehouse_conn_id``.

    Returns ``None`` for a PostgreSQL warehouse, which readers query directly.
    """
    from airflow.sdk import BaseHook

    from xero.warehouse.duckdb import connect

    connection = BaseHook.get_connection(warehouse_conn_id)
    if connection.conn_type != "duckdb":
        return None
    hook = connection.get_hook()
    read_copy = read_copy_for(hook)
    conn = connect(hook)
    try:
        return publish(conn, read_copy, force=force)
    finally:
        conn.close()


__all__ = [
    "READ_COPY_STORAGE_VERSION",
    "PublishResult",
    "content_digest",
    "marker_path",
    "publish",
    "publish_read_copy",
    "read_copy_for",
    "read_copy_path",
]
