"""Turn landed Xero pages into typed Parquet tables and a quarantine: the normaliser.

This module owns reading the extract's landing files (``page-00001.json`` …, each a JSON array of
Xero records) one page at a time, mapping every record onto its entity's columns
(:mod:`xero.entities`), typing the values by column kind and writing

* ``<out_dir>/<table>/part-00000.parquet`` per table (parent and children), with exactly the schema
  of :func:`xero.schema.arrow_schema`, one row group per page;
* ``<out_dir>/_quarantine/part-00000.parquet`` with one row per record that could not be typed
  (missing id, unparsable field), in :data:`xero.schema.QUARANTINE_SCHEMA`.

Values are converted a whole page column at a time with Arrow; when a column does not convert
cleanly, the strict parsers of :mod:`xero.parsing` run value by value to name the failing field and
value, and only the records concerned are quarantined. Memory stays flat: one page at a time.
pyarrow and msgspec are imported here, never by DAG files at parse time.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from xero.entities import ChildTable, ColumnKind, Entity, Table, get_entity
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

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "PART_FILE",
    "QUARANTINE_DIR",
    "NormalizeResult",
    "XeroLandingError",
    "landing_pages",
    "normalize_landing",
    "normalize_pages",
    "quarantine_path",
    "table_path",
]

#: Directory (under an output directory) of the quarantine Parquet file.
QUARANTINE_DIR = "_quarantine"
#: File name of each table's Parquet file.
PART_FILE = "part-00000.parquet"

#: ``/Date(ms±hhmm)/`` with a valid offset; anything else takes the strict per-value path.
_MS_DATE_PATTERN = r"^/Date\((?P<ms>-?\d{1,15})(?P<offset>[+-](?:0\d|1[0-4])[0-5]\d)?\)/$"
#: Millisecond range Python's datetime covers (years 1 to 9999), kept identical on both paths.
_MIN_MS = -62_135_596_800_000
_MAX_MS = 253_402_300_799_999

_PAGE_DECODER = msgspec.json.Decoder(list[msgspec.Raw])
_RECORD_DECODER = msgspec.json.Decoder(float_hook=Decimal)
_CHILD_ENCODER = msgspec.json.Encoder(decimal_format="number")

_DECIMAL_PLACES = {"money": (19, 4), "quantity": (19, 4), "rate": (28, 10)}


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
    """

    entity: str
    tenant_id: str
    records_seen: int
    quarantined: int
    rows: dict[str, int]
    max_cursor: datetime | None
    files: dict[str, str] = field(default_factory=dict)
    next_seq: int = 0

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


def _fast_array(kind: ColumnKind, values: list[Any]) -> pa.Array:
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
    # date / timestamp: /Date(ms±hhmm)/ only; ISO strings and odd values take the strict path.
    matched = pc.extract_regex(strings, _MS_DATE_PATTERN)
    if matched.null_count != strings.null_count:
        raise _SlowPath
    millis = pc.cast(matched.flatten()[0], pa.int64())
    if len(millis) > millis.null_count:
        low, high = pc.min_max(millis).values()
        if low.as_py() < _MIN_MS or high.as_py() > _MAX_MS:
            raise _SlowPath
    instants = millis.cast(pa.timestamp("ms", tz="UTC"))
    return instants.cast(arrow_type)


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


class _Writers:
    """One ParquetWriter per table plus the quarantine, opened up front so every file exists."""

    def __init__(self, entity: Entity, out_dir: Path) -> None:
        self.paths: dict[str, Path] = {}
        self.writers: dict[str, pq.ParquetWriter] = {}
        for table in entity.tables:
            self._open(table.name, table_path(out_dir, table.name), arrow_schema(table))
        self._open(QUARANTINE_DIR, quarantine_path(out_dir), QUARANTINE_SCHEMA)

    def _open(self, name: str, path: Path, schema: pa.Schema) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.paths[name] = path
        self.writers[name] = pq.ParquetWriter(path, schema)

    def write(self, name: str, table: pa.Table) -> None:
        if table.num_rows:
            self.writers[name].write_table(table)

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()


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
            child_tables[child.name] = self._children(child, records, arrays, record_errors, seqs, positions)

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
    ) -> tuple[pa.Table, list[int]]:
        items: list[dict[str, Any]] = []
        parent_rows: list[int] = []
        line_numbers: list[int] = []
        for row, record in enumerate(records):
            nested = record.get(child.source)
            if nested is None:
                continue
            if not isinstance(nested, list):
                _add_error(record_errors, row, f"{child.source}: expected an array, got {nested!r:.60}")
                continue
            for number, item in enumerate(nested, start=1):
                if isinstance(item, dict):
                    items.append(item)
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
        raws = [_CHILD_ENCODER.encode(item).decode() for item in items]
        child_seqs = [seqs[positions[row]] for row in parent_rows]
        return self._table(child, arrays, raws, child_seqs), parent_rows

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


def _read_page(path: Path) -> list[str]:
    """Return the compact JSON text of each record of a landing file, in order."""
    data = path.read_bytes()
    try:
        compact = msgspec.json.format(data, indent=-1)
        raws = _PAGE_DECODER.decode(compact)
    except (msgspec.DecodeError, msgspec.ValidationError) as error:
        raise XeroLandingError(f"{path}: not a JSON array of Xero records ({error})") from None
    return [bytes(raw).decode() for raw in raws]


def normalize_pages(
    entity: Entity | str,
    tenant_id: str,
    page_files: Iterable[Path],
    out_dir: Path,
    start_seq: int = 0,
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
    :raises XeroLandingError: when a landing file is not a JSON array.
    """
    if isinstance(entity, str):
        entity = get_entity(entity)
    if not tenant_id:
        raise ValueError("tenant_id must not be empty")
    out_dir = Path(out_dir)
    normalizer = _PageNormalizer(entity, tenant_id)
    rows = {name: 0 for name in (*(t.name for t in entity.tables), QUARANTINE_DIR)}
    seq = start_seq
    max_cursor: datetime | None = None
    writers = _Writers(entity, out_dir)
    try:
        for page_file in page_files:
            raws = _read_page(Path(page_file))
            if not raws:
                continue
            tables, quarantine, page_cursor = normalizer.page(raws, seq)
            seq += len(raws)
            for name, table in tables.items():
                writers.write(name, table)
                rows[name] += table.num_rows
            writers.write(QUARANTINE_DIR, quarantine)
            rows[QUARANTINE_DIR] += quarantine.num_rows
            if page_cursor is not None and (max_cursor is None or page_cursor > max_cursor):
                max_cursor = page_cursor
    finally:
        writers.close()
    quarantined = rows.pop(QUARANTINE_DIR)
    return NormalizeResult(
        entity=entity.name,
        tenant_id=tenant_id,
        records_seen=seq - start_seq,
        quarantined=quarantined,
        rows=rows,
        max_cursor=max_cursor,
        files={name: str(path) for name, path in writers.paths.items()},
        next_seq=seq,
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
