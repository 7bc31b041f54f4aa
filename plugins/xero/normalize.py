"""Turn landed Xero pages into typed Parquet tables and a quarantine: the normaliser.

This module owns reading the extract's landing files (``page-00001.json`` …, each a JSON array of
Xero records) one page at a time, mapping every record onto its entity's columns
(:mod:`xero.entities`), typing the values by column kind and writing

* ``<out_dir>/<table>/part-00000.parquet`` per table (parent and children), with exactly the schema
  of :func:`xero.schema.arrow_schema`, in row groups of at most :data:`ROW_GROUP_ROWS` rows and
  about :data:`ROW_GROUP_BYTES` bytes;
* ``<out_dir>/_quarantine/part-00000.parquet`` with one row per record that could not be typed
  (missing id, unparsable field), in :data:`xero.schema.QUARANTINE_SCHEMA`.

Two paths type records, and both give the same rows:

* **fast**: a page is decoded straight into msgspec Structs generated from the registry (only the
  registry's fields; decimals kept as their JSON text; child arrays as their items' JSON text,
  decoded into their own Structs next), each column is pulled out with one list operation and
  converted by Arrow in bulk (decimals by an exact string → decimal128 cast that refuses lost
  digits, ``/Date(ms+0000)/`` by slicing out the digits, other offsets by a regex, then int64 →
  timestamp). Anything the fast path is not sure of (a value of another JSON type, an ISO date, a
  missing key, a decimal that does not fit) makes it refuse the records;
* **strict**: the page is halved until the refused records sit in runs of at most
  :data:`STRICT_RECORDS`, which are typed value by value with :mod:`xero.parsing`; it names the
  failing field and value, and only the records concerned are quarantined. The rest of the page
  stays on the fast path.

``_raw`` holds each record's (and each child's) JSON text exactly as landed, compacted, cut from
the page rather than encoded again. Text a warehouse cannot store (:mod:`xero.text`) is handled the same
for every warehouse: a page with escaped lone surrogates is decoded masked and its ``_raw`` texts get the
original escapes back; typed text columns lose NUL characters and show U+FFFD for a lone surrogate, and
each value so cleaned is counted per column (:attr:`NormalizeResult.cleaned_text`) and logged as a
warning, never failing the load. Parquet files are LZ4-compressed and written by a background
thread (:class:`ParquetSink`) while the next page is typed. Memory stays flat: one page plus a row
group per table at a time; Arrow allocates from the system allocator (:func:`system_memory_pool`)
and the cyclic garbage collector pauses while pages are typed (:func:`gc_paused`). pyarrow and
msgspec are imported here, never by DAG files at parse time.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import operator
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from xero.entities import ChildTable, Column, ColumnKind, Entity, Table, get_entity
from xero.parsing import (
    XeroParseError,
    parse_bool,
    parse_int,
    parse_money,
    parse_string,
    parse_xero_date,
    parse_xero_datetime,
)
from xero.schema import ARROW_TYPES, QUARANTINE_SCHEMA, arrow_schema
from xero.text import Masked, clean_text_array, mask_lone_surrogates

log = logging.getLogger(__name__)

__all__ = [
    "DICTIONARY_COLUMNS",
    "PART_FILE",
    "QUARANTINE_DIR",
    "NormalizeResult",
    "ParquetSink",
    "XeroLandingError",
    "gc_paused",
    "landing_pages",
    "normalize_landing",
    "normalize_pages",
    "parquet_writer",
    "quarantine_path",
    "system_memory_pool",
    "table_path",
]

#: Directory (under an output directory) of the quarantine Parquet file.
QUARANTINE_DIR = "_quarantine"
#: File name of each table's Parquet file.
PART_FILE = "part-00000.parquet"

#: ``/Date(ms±hhmm)/`` with a valid offset; anything else takes the strict per-value path.
_MS_DATE_PATTERN = r"^/Date\((?P<ms>-?\d{1,15})(?P<offset>[+-](?:0\d|1[0-4])[0-5]\d)?\)/$"
#: Xero's usual instant, ``/Date(1573755038314+0000)/``, taken apart without the regex.
_MS_PREFIX, _UTC_SUFFIX, _MAX_MS_DIGITS = "/Date(", "+0000)/", 15
#: Millisecond range Python's datetime covers (years 1 to 9999), kept identical on both paths.
_MIN_MS = -62_135_596_800_000
_MAX_MS = 253_402_300_799_999

_PAGE_DECODER = msgspec.json.Decoder(list[msgspec.Raw])
_RECORD_DECODER = msgspec.json.Decoder(float_hook=Decimal)
_FIELDS_DECODER = msgspec.json.Decoder(dict[str, msgspec.Raw])
_ITEMS_DECODER = msgspec.json.Decoder(list[msgspec.Raw])

_DECIMAL_PLACES = {"money": (19, 4), "quantity": (19, 4), "rate": (28, 10)}

#: Largest Parquet row group, in rows and in bytes (a few landing pages: ``_raw`` makes rows wide).
ROW_GROUP_ROWS = 10_000
ROW_GROUP_BYTES = 8 << 20
#: Records the strict path types at once when the fast path refuses part of a page, and how many
#: refusals on one page send the rest of it to the strict path.
STRICT_RECORDS = 16
FAST_REFUSALS = 8
#: Columns worth dictionary-encoding in Parquet (few distinct values).
DICTIONARY_COLUMNS = frozenset(
    {"tenant_id", "entity", "table_name", "type", "status", "class", "contact_status", "payment_type"}
    | {"line_amount_types", "currency_code", "default_currency", "tax_type", "account_code"}
)


def _decimal_parser(value: object, field: str, *, places: int, max_digits: int) -> Decimal:
    return parse_money(value, places=places, field=field, max_digits=max_digits)


_PARSERS: dict[str, Callable[[object, str], Any]] = {
    "id": parse_string,
    "string": parse_string,
    "date": parse_xero_date,
    "timestamp": parse_xero_datetime,
    "boolean": parse_bool,
    "integer": parse_int,
    **{
        kind: partial(_decimal_parser, places=places, max_digits=digits)
        for kind, (digits, places) in _DECIMAL_PLACES.items()
    },
}


class XeroLandingError(ValueError):
    """A landing file that is not a JSON array of records (an extract bug, not bad data)."""


@dataclass(frozen=True)
class NormalizeResult:
    """What :func:`normalize_pages` wrote.

    :param entity: the entity's registry name.
    :param tenant_id: the tenant the records belong to.
    :param records_seen: records read (every occurrence, duplicates included).
    :param quarantined: records written to the quarantine instead of the typed tables.
    :param rows: rows written per table name.
    :param max_cursor: the largest parsed cursor (``UpdatedDateUTC``) of the records read, ignoring
        records whose cursor itself did not parse; ``None`` when there is none.
    :param files: Parquet file per table name, plus ``_quarantine``.
    :param next_seq: the ``_seq`` the next record would get (to continue numbering).
    :param cleaned_text: ``table.column`` → typed text values cleaned of characters a warehouse cannot
        store (NUL removed, a lone surrogate shown as U+FFFD); their ``_raw`` keeps them as sent.
    """

    entity: str
    tenant_id: str
    records_seen: int
    quarantined: int
    rows: dict[str, int]
    max_cursor: datetime | None
    files: dict[str, str] = field(default_factory=dict)
    next_seq: int = 0
    cleaned_text: dict[str, int] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """Return a small JSON-able dict (for XCom)."""
        data = asdict(self)
        data["max_cursor"] = self.max_cursor.isoformat() if self.max_cursor else None
        return data


def table_path(out_dir: Path, table_name: str) -> Path:
    """Return the Parquet file of ``table_name`` under ``out_dir``."""
    return Path(out_dir) / table_name / PART_FILE


def quarantine_path(out_dir: Path) -> Path:
    """Return the quarantine Parquet file under ``out_dir``."""
    return Path(out_dir) / QUARANTINE_DIR / PART_FILE


def landing_pages(landing_dir: Path) -> list[Path]:
    """Return the landing files of ``landing_dir`` in page order (``page-00001.json`` first)."""
    return sorted(Path(landing_dir).glob("page-*.json"))


class _BadPath:
    """A dotted source whose intermediate value is not an object (``"Contact": "x"``)."""

    __slots__ = ("prefix", "value")

    def __init__(self, prefix: str, value: object) -> None:
        self.prefix = prefix
        self.value = value


class _SlowPath(Exception):
    """The vectorised conversion cannot take this column; parse value by value."""


def _extract(records: Sequence[dict[str, Any]], source: str) -> list[Any]:
    """Return the value of ``source`` (dotted for nested objects) in each record; missing → None."""
    if "." not in source:
        return [record.get(source) for record in records]
    parts = source.split(".")
    values: list[Any] = []
    for record in records:
        value: Any = record
        for depth, part in enumerate(parts):
            if value is None:
                break
            if not isinstance(value, dict):
                value = _BadPath(".".join(parts[:depth]), value)
                break
            value = value.get(part)
        values.append(value)
    return values


def _fast_array(kind: ColumnKind, values: Sequence[Any]) -> pa.Array:
    """Convert a column with Arrow alone, or raise :class:`_SlowPath` when a value needs a closer look."""
    arrow_type = ARROW_TYPES[kind]
    try:
        if kind in ("id", "string") or kind in _DECIMAL_PLACES:
            return pa.array(values, type=arrow_type)
        if kind == "boolean":
            if any(value is not None and value is not True and value is not False for value in values):
                raise _SlowPath
            return pa.array(values, type=arrow_type)
        if kind == "integer":
            if any(value is not None and type(value) is not int for value in values):
                raise _SlowPath
            return pa.array(values, type=arrow_type)
        strings = pa.array(values, type=pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as error:
        raise _SlowPath from error
    return _from_millis(_millis(strings), kind)


def _millis(strings: pa.Array) -> pa.Array:
    """Return the milliseconds of ``/Date(ms±hhmm)/`` strings, or raise :class:`_SlowPath`.

    ISO strings and odd values take the strict path.
    """
    if strings.null_count == len(strings):
        return pa.nulls(len(strings), pa.int64())
    millis = _utc_millis(strings)
    if millis is None:
        matched = pc.extract_regex(strings, _MS_DATE_PATTERN)
        if matched.null_count != strings.null_count:
            raise _SlowPath
        millis = pc.cast(matched.flatten()[0], pa.int64())
    low, high = pc.min_max(millis).values()
    if low.as_py() < _MIN_MS or high.as_py() > _MAX_MS:
        raise _SlowPath
    return millis


def _utc_millis(strings: pa.Array) -> pa.Array | None:
    """Return the milliseconds when every string has Xero's usual shape ``/Date(digits+0000)/``, else None.

    Slicing the digits out is several times cheaper than the regular expression, and gives the
    same values for that shape.
    """
    shaped = pc.and_(pc.starts_with(strings, _MS_PREFIX), pc.ends_with(strings, _UTC_SUFFIX))
    if not pc.all(shaped).as_py():
        return None
    digits = pc.utf8_slice_codeunits(strings, len(_MS_PREFIX), -len(_UTC_SUFFIX))
    if pc.max(pc.utf8_length(digits)).as_py() > _MAX_MS_DIGITS:
        return None
    try:
        return pc.cast(digits, pa.int64())
    except pa.ArrowInvalid:
        return None


def _from_millis(millis: pa.Array, kind: ColumnKind) -> pa.Array:
    """Return milliseconds since the epoch as the column kind's type (the UTC instant or its UTC date)."""
    return millis.cast(pa.timestamp("ms", tz="UTC")).cast(ARROW_TYPES[kind])


def _slow_array(
    kind: ColumnKind, values: list[Any], label: Callable[[int], str]
) -> tuple[pa.Array, dict[int, str]]:
    """Parse a column value by value; return the array (failed cells null) and errors by row."""
    parser = _PARSERS[kind]
    parsed: list[Any] = []
    errors: dict[int, str] = {}
    for row, value in enumerate(values):
        if value is None:
            parsed.append(None)
            continue
        try:
            if isinstance(value, _BadPath):
                raise XeroParseError(label(row), value.value, f"{value.prefix} to be an object")
            parsed.append(parser(value, label(row)))
        except XeroParseError as error:
            parsed.append(None)
            errors[row] = str(error)
    return pa.array(parsed, type=ARROW_TYPES[kind]), errors


def _column_array(
    kind: ColumnKind, values: list[Any], label: Callable[[int], str]
) -> tuple[pa.Array, dict[int, str]]:
    try:
        return _fast_array(kind, values), {}
    except _SlowPath:
        return _slow_array(kind, values, label)


def _constant(text: str) -> Callable[[int], str]:
    """Return a row labeller that names the same field for every row."""
    return lambda _row: text


def _add_error(errors: dict[int, list[str]], row: int, message: str) -> None:
    errors.setdefault(row, []).append(message)


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for the duration of the block.

    Typing a page allocates tens of thousands of short-lived objects (structs, tuples, strings) and
    no reference cycles; every few hundred allocations the collector would otherwise walk the young
    objects, and now and then every object of the process (Airflow's and Great Expectations' too).
    Reference counting still frees everything at once.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@contextmanager
def system_memory_pool() -> Iterator[None]:
    """Allocate Arrow memory with the system allocator for the duration of the block.

    Arrow's default allocator (mimalloc or jemalloc) keeps freed pages for reuse, so a process that
    streams through gigabytes keeps a resident size near its largest moment plus fragments. The
    system allocator hands large buffers back at once, which keeps the resident size flat.
    """
    previous = pa.default_memory_pool()
    pa.set_memory_pool(pa.system_memory_pool())
    try:
        yield
    finally:
        pa.set_memory_pool(previous)


def parquet_writer(path: Path, schema: pa.Schema) -> pq.ParquetWriter:
    """Open a Parquet writer with the pipeline's file settings.

    LZ4 compression (cheap to write and read, several times smaller for the JSON in ``_raw``),
    dictionary encoding only for the tenant and low-cardinality columns, and statistics on every
    column but ``_raw`` (``_seq`` statistics let readers skip row groups).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    return pq.ParquetWriter(
        path,
        schema,
        compression="lz4",
        use_dictionary=[name for name in schema.names if name in DICTIONARY_COLUMNS],
        write_statistics=[name for name in schema.names if name != "_raw"],
    )


class ParquetSink:
    """Parquet files written by a background thread, in row groups of bounded rows and bytes.

    Tables passed to :meth:`write` are buffered per file and flushed as one row group once the file
    has ``row_group_rows`` rows or ``row_group_bytes`` bytes waiting (wide ``_raw`` texts reach the
    byte bound first); encoding and compression run in a writer thread (pyarrow releases the GIL
    there) while the caller goes on. At most ``max_pending`` flushes wait in the thread's queue, so
    memory stays bounded. Every file exists once the sink is opened.

    :param files: Parquet path and schema per name.
    :param row_group_rows: rows buffered per file before they are written as one row group.
    :param row_group_bytes: bytes buffered per file before they are written as one row group.
    """

    def __init__(
        self,
        files: dict[str, tuple[Path, pa.Schema]],
        row_group_rows: int = ROW_GROUP_ROWS,
        row_group_bytes: int = ROW_GROUP_BYTES,
        max_pending: int = 2,
    ) -> None:
        self.paths = {name: path for name, (path, _schema) in files.items()}
        self.row_group_rows = row_group_rows
        self.row_group_bytes = row_group_bytes
        self._writers = {name: parquet_writer(path, schema) for name, (path, schema) in files.items()}
        self._buffers: dict[str, list[pa.Table]] = {name: [] for name in files}
        self._rows = dict.fromkeys(files, 0)
        self._bytes = dict.fromkeys(files, 0)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="parquet-sink")
        self._pending: deque[Future[None]] = deque()
        self._max_pending = max_pending

    def write(self, name: str, table: pa.Table) -> None:
        """Queue ``table``'s rows for the file called ``name``."""
        if not table.num_rows:
            return
        self._buffers[name].append(table)
        self._rows[name] += table.num_rows
        self._bytes[name] += table.nbytes
        if self._rows[name] >= self.row_group_rows or self._bytes[name] >= self.row_group_bytes:
            self.flush(name)

    def flush(self, name: str) -> None:
        """Hand the rows buffered for ``name`` to the writer thread as one row group."""
        tables = self._buffers[name]
        if not tables:
            return
        self._buffers[name], self._rows[name], self._bytes[name] = [], 0, 0
        table = tables[0] if len(tables) == 1 else pa.concat_tables(tables)
        writer = self._writers[name]
        while len(self._pending) >= self._max_pending:
            self._pending.popleft().result()
        self._pending.append(self._pool.submit(writer.write_table, table, row_group_size=table.num_rows))

    def close(self) -> None:
        """Write what is buffered, wait for the writer thread and close every file."""
        try:
            for name in self._buffers:
                self.flush(name)
            while self._pending:
                self._pending.popleft().result()
        finally:
            self._pool.shutdown(wait=True)
            for writer in self._writers.values():
                writer.close()


def _child_texts(record: str, source: str) -> list[str]:
    """Return the JSON text of each item of ``record``'s array ``source``, exactly as it stands in ``record``."""
    return [bytes(item).decode() for item in _ITEMS_DECODER.decode(_FIELDS_DECODER.decode(record)[source])]


class _PageNormalizer:
    """Types one page of records; holds the per-entity constants."""

    def __init__(self, entity: Entity, tenant_id: str) -> None:
        self.entity = entity
        self.tenant_id = tenant_id
        self.schemas = {table.name: arrow_schema(table) for table in entity.tables}
        self.id_column = next(c for c in entity.table.columns if c.source == entity.id_field)
        self.cursor_column = next(
            (c for c in entity.table.columns if c.source == entity.cursor_field and c.kind == "timestamp"),
            None,
        )

    def page(self, raws: list[str], start_seq: int) -> tuple[dict[str, pa.Table], pa.Table, Any]:
        """Return the typed tables, the quarantine rows and the page's max cursor (or None)."""
        entity = self.entity
        seqs = list(range(start_seq, start_seq + len(raws)))
        errors: dict[int, list[str]] = {}
        records: list[dict[str, Any]] = []
        positions: list[int] = []  # page position of each dict record
        for position, raw in enumerate(raws):
            record = _RECORD_DECODER.decode(raw)
            if isinstance(record, dict):
                records.append(record)
                positions.append(position)
            else:
                _add_error(errors, position, f"record: expected an object, got {type(record).__name__}")

        # Parent columns.
        arrays: dict[str, pa.Array] = {}
        record_errors: dict[int, list[str]] = {}  # by index into ``records``
        ids = _extract(records, self.id_column.source)
        for row, value in enumerate(ids):
            if value is None or value == "":
                _add_error(record_errors, row, f"{entity.id_field} is missing")
        for column in entity.table.columns:
            values = ids if column is self.id_column else _extract(records, column.source)
            array, column_errors = _column_array(column.kind, values, _constant(column.source))
            arrays[column.name] = array
            for row, message in column_errors.items():
                _add_error(record_errors, row, message)

        # Children.
        child_tables: dict[str, tuple[pa.Table, list[int]]] = {}
        for child in entity.children:
            child_tables[child.name] = self._children(
                child, records, arrays, record_errors, seqs, positions, raws
            )

        for row, messages in record_errors.items():
            errors.setdefault(positions[row], []).extend(messages)

        good_rows = pa.array([positions[row] not in errors for row in range(len(records))], type=pa.bool_())
        parent = self._table(
            entity.table,
            arrays,
            [raws[position] for position in positions],
            [seqs[position] for position in positions],
        )
        tables = {entity.table.name: parent.filter(good_rows)}
        for name, (child_table, parent_rows) in child_tables.items():
            mask = pa.array([positions[row] not in errors for row in parent_rows], type=pa.bool_())
            tables[name] = child_table.filter(mask)

        max_cursor = None
        if self.cursor_column is not None and len(records):
            max_cursor = pc.max(arrays[self.cursor_column.name]).as_py()

        quarantine = self._quarantine(raws, seqs, positions, ids, errors)
        return tables, quarantine, max_cursor

    def _children(
        self,
        child: ChildTable,
        records: list[dict[str, Any]],
        parent_arrays: dict[str, pa.Array],
        record_errors: dict[int, list[str]],
        seqs: list[int],
        positions: list[int],
        raws: list[str],
    ) -> tuple[pa.Table, list[int]]:
        items: list[dict[str, Any]] = []
        item_raws: list[str] = []  # each item's JSON as Xero sent it, as the fast path keeps it
        parent_rows: list[int] = []
        line_numbers: list[int] = []
        for row, record in enumerate(records):
            nested = record.get(child.source)
            if nested is None:
                continue
            if not isinstance(nested, list):
                _add_error(record_errors, row, f"{child.source}: expected an array, got {nested!r:.60}")
                continue
            texts = _child_texts(raws[positions[row]], child.source)
            for number, (item, text) in enumerate(zip(nested, texts, strict=True), start=1):
                if isinstance(item, dict):
                    items.append(item)
                    item_raws.append(text)
                    parent_rows.append(row)
                    line_numbers.append(number)
                else:
                    _add_error(record_errors, row, f"{child.source}[{number}]: expected an object")

        def label(source: str) -> Callable[[int], str]:
            return lambda i: f"{child.source}[{line_numbers[i]}].{source}"

        key_columns = set(child.primary_key) - {child.parent_key}
        arrays: dict[str, pa.Array] = {}
        parent_index = pa.array(parent_rows, type=pa.int64())
        parent_id = self.entity.table.column(child.parent_key) if child.parent_key else None
        for column in child.columns:
            if column.name == child.parent_key and parent_id is not None:
                arrays[column.name] = parent_arrays[parent_id.name].take(parent_index)
                continue
            if column.source == "_index":
                arrays[column.name] = pa.array(line_numbers, type=ARROW_TYPES[column.kind])
                continue
            values = _extract(items, column.source)
            array, column_errors = _column_array(column.kind, values, label(column.source))
            arrays[column.name] = array
            for i, message in column_errors.items():
                _add_error(record_errors, parent_rows[i], message)
            if column.name in key_columns:
                for i, value in enumerate(values):
                    if value is None or value == "":
                        _add_error(record_errors, parent_rows[i], f"{label(column.source)(i)} is missing")
        child_seqs = [seqs[positions[row]] for row in parent_rows]
        return self._table(child, arrays, item_raws, child_seqs), parent_rows

    def _table(self, table: Table, arrays: dict[str, pa.Array], raws: list[str], seqs: list[int]) -> pa.Table:
        count = len(raws)
        columns = [pa.array([self.tenant_id] * count, type=pa.string())]
        columns += [arrays[column.name] for column in table.columns]
        columns += [pa.array(raws, type=pa.string()), pa.array(seqs, type=pa.int64())]
        return pa.Table.from_arrays(columns, schema=self.schemas[table.name])

    def _quarantine(
        self,
        raws: list[str],
        seqs: list[int],
        positions: list[int],
        ids: list[Any],
        errors: dict[int, list[str]],
    ) -> pa.Table:
        id_by_position = {position: ids[row] for row, position in enumerate(positions)}
        rows = sorted(errors)
        record_ids = []
        for position in rows:
            value = id_by_position.get(position)
            record_ids.append(value if isinstance(value, str) and value else None)
        count = len(rows)
        return pa.Table.from_arrays(
            [
                pa.array([self.tenant_id] * count, type=pa.string()),
                pa.array([self.entity.name] * count, type=pa.string()),
                pa.array([self.entity.table.name] * count, type=pa.string()),
                pa.array(record_ids, type=pa.string()),
                pa.array(["; ".join(errors[position]) for position in rows], type=pa.string()),
                pa.array([raws[position] for position in rows], type=pa.string()),
                pa.array([seqs[position] for position in rows], type=pa.int64()),
            ],
            schema=QUARANTINE_SCHEMA,
        )


_NULL_RAW = msgspec.Raw(b"null")
_astuple = msgspec.structs.astuple
_SEPARATOR = b"\x1f"
#: Encodes a list of ``msgspec.Raw`` as a JSON array of those texts, verbatim.
_ARRAY_ENCODER = msgspec.json.Encoder()


def _struct_field(kind: ColumnKind) -> tuple[Any, Any]:
    """Return the msgspec type and default of a column kind on the fast path.

    Decimals stay as their JSON text (``msgspec.Raw``, ``null`` when absent) and are converted by
    Arrow; a JSON string where a number belongs, a number where a string belongs and similar
    surprises fail the decode, and the records take the strict path.
    """
    if kind in _DECIMAL_PLACES:
        return msgspec.Raw, _NULL_RAW
    python_type = {"boolean": bool, "integer": int}.get(kind, str)
    return python_type | None, None


class _Node:
    """A JSON object's fields read on the fast path, built from dotted column sources."""

    def __init__(self) -> None:
        self.leaves: dict[str, ColumnKind] = {}
        self.nested: dict[str, _Node] = {}

    def add(self, source: str, kind: ColumnKind) -> None:
        head, _, rest = source.partition(".")
        if rest:
            self.nested.setdefault(head, _Node()).add(rest, kind)
        else:
            self.leaves[head] = kind

    def struct(self, name: str, extra: Sequence[tuple[str, Any, Any]] = ()) -> type:
        """Return a msgspec Struct decoding this object (unknown fields are skipped)."""
        fields: list[tuple[str, Any, Any]] = []
        for number, (source, kind) in enumerate(self.leaves.items()):
            python_type, default = _struct_field(kind)
            fields.append((f"f{number}", python_type, msgspec.field(name=source, default=default)))
        for number, (source, node) in enumerate(self.nested.items()):
            nested = node.struct(f"{name}_{source}")
            fields.append((f"n{number}", nested | None, msgspec.field(name=source, default=None)))
        for number, (source, python_type, default) in enumerate(extra):
            fields.append((f"c{number}", python_type, msgspec.field(name=source, default=default)))
        return msgspec.defstruct(name, fields, forbid_unknown_fields=False, gc=False)

    def values(self, structs: Sequence[Any]) -> dict[str, Sequence[Any]]:
        """Return every leaf's values (dotted source → one value per struct; ``None`` under a null object).

        The structs are transposed in one pass (``zip`` over ``astuple``), far cheaper than one
        attribute lookup per column and row.
        """
        leaves, nested = list(self.leaves), list(self.nested)
        width = len(leaves) + len(nested)
        fields = list(zip(*map(_astuple, structs), strict=True)) if structs else [()] * width
        found: dict[str, Sequence[Any]] = {}
        for index, source in enumerate(leaves):
            found[source] = fields[index]
        for index, head in enumerate(nested):
            parents = fields[len(leaves) + index]
            present = [value for value in parents if value is not None]
            inner = self.nested[head].values(present)
            for source, values in inner.items():
                if len(present) == len(parents):
                    found[f"{head}.{source}"] = values
                else:
                    it = iter(values)
                    found[f"{head}.{source}"] = [None if value is None else next(it) for value in parents]
        return found


@dataclass(frozen=True)
class _FastChild:
    """A child table on the fast path: its items' fields and the decoder of an array of items."""

    table: ChildTable
    node: _Node
    decoder: msgspec.json.Decoder[Any]
    #: Returns a record's items as their JSON texts (``None`` when the record has none).
    items: Callable[[Any], list[msgspec.Raw] | None]


class _FastPath:
    """Types records with msgspec Structs generated from the registry and Arrow compute.

    The records are decoded straight into Structs holding only the registry's fields, each child
    array as the JSON texts of its items (which become the children's ``_raw``); the items of all
    records are then decoded at once into their own Structs. Every column is built with one list
    operation and one Arrow conversion. Anything unusual (a value of the wrong JSON type, a missing
    key, an ISO date, a decimal that does not fit) raises :class:`_SlowPath`, and the records are
    typed by the strict path instead, which names each failure.
    """

    def __init__(self, entity: Entity, tenant_id: str, schemas: dict[str, pa.Schema]) -> None:
        self.entity = entity
        self.tenant_id = tenant_id
        self.schemas = schemas
        parent_sources = {column.source for column in entity.table.columns}
        root = _Node()
        for column in entity.table.columns:
            root.add(column.source, column.kind)
        self.children: list[_FastChild] = []
        extra: list[tuple[str, Any, Any]] = []
        for number, child in enumerate(entity.children):
            if child.source in parent_sources or "." in child.source:
                raise ValueError(f"child source {child.source!r} clashes with a parent column")
            node = _Node()
            for column in child.columns:
                if column.name != child.parent_key and column.source != "_index":
                    node.add(column.source, column.kind)
            item = node.struct(f"{entity.name}_{child.name}")
            extra.append((child.source, list[msgspec.Raw] | None, None))
            self.children.append(
                _FastChild(
                    child,
                    node,
                    msgspec.json.Decoder(list[item]),  # type: ignore[valid-type]
                    operator.attrgetter(f"c{number}"),
                )
            )
        record = root.struct(f"{entity.name}_record", extra)
        self.root = root
        self.decoder = msgspec.json.Decoder(list[record])  # type: ignore[valid-type]
        self.id_column = next(c for c in entity.table.columns if c.source == entity.id_field)

    def page(
        self, raws: Sequence[msgspec.Raw], start_seq: int, text: bytes | None = None
    ) -> dict[str, pa.Table]:
        """Return the typed tables of ``raws`` (records numbered from ``start_seq``), or raise :class:`_SlowPath`.

        ``text`` is the JSON array of ``raws`` when the caller has it (a whole compacted page).
        """
        records = _decode(self.decoder, raws, text)
        count = len(records)
        arrays = _typed_columns(self.entity.table.columns, self.root.values(records), {self.id_column.name})
        seqs = pa.array(np.arange(start_seq, start_seq + count, dtype=np.int64))
        tables = {self.entity.table.name: self._table(self.entity.table, arrays, _text_array(raws), seqs)}
        for child in self.children:
            tables[child.table.name] = self._children(child, list(map(child.items, records)), arrays, seqs)
        return tables

    def _children(
        self,
        child: _FastChild,
        nested: list[list[msgspec.Raw] | None],
        parent_arrays: dict[str, pa.Array],
        parent_seqs: pa.Array,
    ) -> pa.Table:
        table = child.table
        counts = np.fromiter((0 if items is None else len(items) for items in nested), np.int64, len(nested))
        raws = [raw for items in nested if items for raw in items]
        items = _decode(child.decoder, raws)
        parent_rows = pa.array(np.repeat(np.arange(len(nested), dtype=np.int64), counts))
        starts = np.repeat(np.cumsum(counts) - counts, counts)
        line_numbers = np.arange(len(items), dtype=np.int64) - starts + 1
        key_columns = set(table.primary_key) - {table.parent_key}
        parent_id = self.entity.table.column(table.parent_key) if table.parent_key else None
        arrays: dict[str, pa.Array] = {}
        read: list[Column] = []
        for column in table.columns:
            if column.name == table.parent_key and parent_id is not None:
                arrays[column.name] = parent_arrays[parent_id.name].take(parent_rows)
            elif column.source == "_index":
                arrays[column.name] = pa.array(line_numbers, type=ARROW_TYPES[column.kind])
            else:
                read.append(column)
        arrays.update(_typed_columns(read, child.node.values(items), key_columns))
        return self._table(table, arrays, _text_array(raws), parent_seqs.take(parent_rows))

    def _table(self, table: Table, arrays: dict[str, pa.Array], raws: pa.Array, seqs: pa.Array) -> pa.Table:
        columns = [pa.repeat(pa.scalar(self.tenant_id, pa.string()), len(raws))]
        columns += [arrays[column.name] for column in table.columns]
        columns += [raws, seqs]
        return pa.Table.from_arrays(columns, schema=self.schemas[table.name])


def _decode(
    decoder: msgspec.json.Decoder[Any], raws: Sequence[msgspec.Raw], text: bytes | None = None
) -> Any:
    """Decode JSON texts as one array (``text``, when given, is that array) with ``decoder``.

    Raise :class:`_SlowPath` when a value does not fit.
    """
    try:
        return decoder.decode(_ARRAY_ENCODER.encode(raws) if text is None else text)
    except msgspec.ValidationError as error:
        raise _SlowPath from error


def _typed_columns(
    columns: Sequence[Column],
    values_of: dict[str, Sequence[Any]],
    keys: set[str],
) -> dict[str, pa.Array]:
    """Return the Arrow array of each column from its source's values, or raise :class:`_SlowPath`.

    Columns converted the same way (decimals of one type, ``/Date(…)/`` values) are converted in
    one Arrow call over all of them and sliced apart: fewer, larger kernel calls. A decimal column
    absent from every record becomes nulls without a conversion. ``keys`` name the columns that
    must not be null or empty.
    """
    arrays: dict[str, pa.Array] = {}
    batches: dict[object, list[tuple[Column, Sequence[Any]]]] = {}
    for column in columns:
        values = values_of[column.source]
        if column.name in keys and (None in values or "" in values):
            raise _SlowPath
        if column.kind in _DECIMAL_PLACES:
            if values.count(_NULL_RAW) == len(values):
                arrays[column.name] = pa.nulls(len(values), ARROW_TYPES[column.kind])
            else:
                batches.setdefault(ARROW_TYPES[column.kind], []).append((column, values))
        elif column.kind in ("date", "timestamp"):
            batches.setdefault("millis", []).append((column, values))
        else:
            arrays[column.name] = _fast_values(column.kind, values)
    for group, members in batches.items():
        flat = [value for _, values in members for value in values]
        if group == "millis":
            converted = _millis(pa.array(flat, type=pa.string()))
        else:
            converted = _decimal_values(flat, group)  # type: ignore[arg-type]
        offset = 0
        for column, values in members:
            part = converted.slice(offset, len(values))
            offset += len(values)
            arrays[column.name] = _from_millis(part, column.kind) if group == "millis" else part
    return arrays


def _decimal_values(values: Sequence[Any], arrow_type: pa.DataType) -> pa.Array:
    """Convert JSON number texts (``msgspec.Raw``; ``None`` or ``null`` for null) to exact decimals."""
    if None in values:  # under a null object (``"Contact": null``)
        values = [_NULL_RAW if value is None else value for value in values]
    # One buffer split by Arrow: far cheaper than a bytes object per value. JSON numbers and the
    # word null cannot hold the separator (JSON forbids raw control characters even in strings).
    joined = pa.array([_SEPARATOR.join(values)], pa.binary()).view(pa.string())
    texts = pc.split_pattern(joined, _SEPARATOR.decode()).flatten()
    if len(texts) != len(values):
        raise _SlowPath
    texts = pc.if_else(pc.equal(texts, "null"), pa.scalar(None, pa.string()), texts)
    try:
        return pc.cast(texts, arrow_type)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
        raise _SlowPath from error


def _text_array(raws: Sequence[msgspec.Raw]) -> pa.Array:
    """Return JSON texts as an Arrow string array, built from their joined bytes and their lengths.

    The page they come from was checked as UTF-8 (:func:`_read_page`).
    """
    offsets = np.zeros(len(raws) + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, raws), np.int64, len(raws)), out=offsets[1:])
    texts = pa.LargeStringArray.from_buffers(len(raws), pa.py_buffer(offsets), pa.py_buffer(b"".join(raws)))
    return texts.cast(pa.string())


def _fast_values(kind: ColumnKind, values: Sequence[Any]) -> pa.Array:
    """Convert one column of Struct values; raise :class:`_SlowPath` when Arrow cannot."""
    if kind in _DECIMAL_PLACES:
        return _decimal_values(values, ARROW_TYPES[kind])
    if kind in ("boolean", "integer"):  # msgspec has checked the JSON types
        return pa.array(values, type=ARROW_TYPES[kind])
    return _fast_array(kind, values)


def _read_page(path: Path) -> tuple[bytes, list[msgspec.Raw], Masked]:
    """Return a landing file compacted, the JSON text of each of its records, in order, and its masking.

    A page holding escaped lone surrogates is compacted and split masked (see :mod:`xero.text`): its texts
    must go through :meth:`~xero.text.Masked.restore` before they are stored as ``_raw``.
    """
    data = path.read_bytes()
    try:
        text = pa.LargeStringArray.from_buffers(
            1, pa.py_buffer(np.array([0, len(data)], dtype=np.int64)), pa.py_buffer(data)
        )
        text.validate(full=True)
        try:  # masking is needed only when msgspec refuses the page (the check costs nothing otherwise)
            masked = Masked(data)
            compact = msgspec.json.format(data, indent=-1)
        except msgspec.DecodeError:
            masked = mask_lone_surrogates(data)
            if not masked.originals:
                raise
            compact = msgspec.json.format(masked.data, indent=-1)
        return compact, _PAGE_DECODER.decode(compact), masked
    except pa.ArrowInvalid:
        raise XeroLandingError(f"{path}: not UTF-8 text") from None
    except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as error:
        raise XeroLandingError(f"{path}: not a JSON array of Xero records ({error})") from None


def _clean_text(table: Table | None, data: pa.Table, masked: Masked, cleaned: dict[str, int]) -> pa.Table:
    """Return ``data`` (rows of ``table``, or quarantine rows) with its typed text cleaned and ``_raw`` restored.

    Counts the cleaned values per ``table.column`` in ``cleaned``.
    """
    placeholders = masked.placeholders
    columns = [column.name for column in table.columns if column.kind == "string"] if table else []
    for name in columns:
        index = data.schema.get_field_index(name)
        values, count = clean_text_array(data.column(index).combine_chunks(), placeholders)
        if count:
            data = data.set_column(index, data.schema.field(index), values)
            key = f"{table.name}.{name}" if table else name
            cleaned[key] = cleaned.get(key, 0) + count
    if masked.originals:
        index = data.schema.get_field_index("_raw")
        restored = masked.restore(data.column(index).combine_chunks())
        data = data.set_column(index, data.schema.field(index), restored)
    return data


def _typed_segments(
    fast: _FastPath,
    strict: _PageNormalizer,
    raws: Sequence[msgspec.Raw],
    start_seq: int,
    text: bytes | None = None,
) -> Iterator[tuple[dict[str, pa.Table], pa.Table | None, Any]]:
    """Yield ``(tables, quarantine or None, max cursor)`` for consecutive runs of a page's records.

    The fast path takes the whole page when it can (``text`` is the page's JSON array, when known).
    When it refuses, the records are halved again and again, so the clean halves still take the
    fast path and only runs of at most :data:`STRICT_RECORDS` records around a surprise are typed
    value by value by the strict path. After :data:`FAST_REFUSALS` refusals on one page the
    surprises are everywhere, and the rest of the page goes to the strict path at once. Runs come
    in record order, so ``_seq`` keeps increasing through the output.
    """
    runs = [(0, len(raws))]  # a stack: the next run last
    refusals = 0
    while runs:
        low, high = runs.pop()
        if refusals < FAST_REFUSALS:
            try:
                tables = fast.page(raws[low:high], start_seq + low, text if high - low == len(raws) else None)
            except _SlowPath:
                refusals += 1
                if high - low > STRICT_RECORDS:
                    middle = (low + high) // 2
                    runs += [(middle, high), (low, middle)]
                    continue
            else:
                cursor = strict.cursor_column
                parents = tables[fast.entity.table.name]
                yield tables, None, pc.max(parents[cursor.name]).as_py() if cursor is not None else None
                continue
        yield strict.page([bytes(raw).decode() for raw in raws[low:high]], start_seq + low)


def normalize_pages(
    entity: Entity | str,
    tenant_id: str,
    page_files: Iterable[Path],
    out_dir: Path,
    start_seq: int = 0,
    *,
    row_group_rows: int = ROW_GROUP_ROWS,
) -> NormalizeResult:
    """Type the records of landed pages into Parquet tables, quarantining records that do not parse.

    Pages are read in the order given; ``_seq`` numbers records in that order from ``start_seq``, so
    a record read twice keeps both occurrences here and the later one (higher ``_seq``) wins in
    :func:`xero.validate.validate_tables`.

    :param entity: the entity (or its registry name).
    :param tenant_id: the Xero tenant id written to every row.
    :param page_files: landing files, each a JSON array of records, in read order.
    :param out_dir: directory receiving ``<table>/part-00000.parquet`` and ``_quarantine/…``.
    :param start_seq: the first ``_seq``.
    :param row_group_rows: parent rows per Parquet row group (children follow their parents).
    :raises XeroLandingError: when a landing file is not a JSON array.
    """
    if isinstance(entity, str):
        entity = get_entity(entity)
    if not tenant_id:
        raise ValueError("tenant_id must not be empty")
    with system_memory_pool(), gc_paused():
        return _normalize(entity, tenant_id, page_files, Path(out_dir), start_seq, row_group_rows)


def _normalize(
    entity: Entity,
    tenant_id: str,
    page_files: Iterable[Path],
    out_dir: Path,
    start_seq: int,
    row_group_rows: int,
) -> NormalizeResult:
    strict = _PageNormalizer(entity, tenant_id)
    fast = _FastPath(entity, tenant_id, strict.schemas)
    rows = {name: 0 for name in (*(t.name for t in entity.tables), QUARANTINE_DIR)}
    seq = start_seq
    max_cursor: datetime | None = None
    files = {table.name: (table_path(out_dir, table.name), arrow_schema(table)) for table in entity.tables}
    files[QUARANTINE_DIR] = (quarantine_path(out_dir), QUARANTINE_SCHEMA)
    sink = ParquetSink(files, row_group_rows=row_group_rows)
    registry = {table.name: table for table in entity.tables}
    cleaned: dict[str, int] = {}
    try:
        for page_file in page_files:
            text, raws, masked = _read_page(Path(page_file))
            if not raws:
                continue
            for tables, quarantine, cursor in _typed_segments(fast, strict, raws, seq, text):
                for name, table in tables.items():
                    table = _clean_text(registry[name], table, masked, cleaned)
                    sink.write(name, table)
                    rows[name] += table.num_rows
                if quarantine is not None:
                    quarantine = _clean_text(None, quarantine, masked, cleaned)
                    sink.write(QUARANTINE_DIR, quarantine)
                    rows[QUARANTINE_DIR] += quarantine.num_rows
                if cursor is not None and (max_cursor is None or cursor > max_cursor):
                    max_cursor = cursor
            seq += len(raws)
    finally:
        sink.close()
    quarantined = rows.pop(QUARANTINE_DIR)
    if cleaned:
        log.warning(
            "Xero %s (tenant %s): %d text values held characters a warehouse cannot store (NUL, lone "
            "surrogate); loaded without them (a lone surrogate as U+FFFD), _raw keeps them as sent: %s",
            entity.name,
            tenant_id,
            sum(cleaned.values()),
            ", ".join(f"{column} {count}" for column, count in sorted(cleaned.items())),
        )
    return NormalizeResult(
        entity=entity.name,
        tenant_id=tenant_id,
        records_seen=seq - start_seq,
        quarantined=quarantined,
        rows=rows,
        max_cursor=max_cursor,
        files={name: str(path) for name, path in sink.paths.items()},
        next_seq=seq,
        cleaned_text=cleaned,
    )


def normalize_landing(
    entity: Entity | str, tenant_id: str, landing_dir: Path, out_dir: Path
) -> NormalizeResult:
    """Normalise every ``page-*.json`` of ``landing_dir`` in page order (see :func:`normalize_pages`)."""
    return normalize_pages(entity, tenant_id, landing_pages(landing_dir), out_dir)


def main(argv: Sequence[str] | None = None) -> int:
    """Normalise a landing directory from the command line and print the summary with records/s."""
    parser = argparse.ArgumentParser(prog="python -m xero.normalize", description=main.__doc__)
    parser.add_argument("entity")
    parser.add_argument("tenant_id")
    parser.add_argument("landing_dir", type=Path)
    parser.add_argument("out_dir", type=Path)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    result = normalize_landing(args.entity, args.tenant_id, args.landing_dir, args.out_dir)
    elapsed = time.perf_counter() - started
    summary = result.summary()
    summary["seconds"] = round(elapsed, 3)
    summary["records_per_second"] = round(result.records_seen / elapsed) if elapsed else None
    json.dump(summary, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
