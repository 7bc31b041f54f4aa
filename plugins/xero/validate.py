"""Validate normalised Xero tables with Great Expectations and quarantine the rows that fail.

This module owns the data-quality gate between the normaliser and the warehouse:

* **dedupe**: a record read twice in one run keeps only its last occurrence (highest ``_seq``), with
  that occurrence's children; a record whose last occurrence was quarantined by the normaliser is
  dropped from the typed tables (the newer, bad version must not be hidden by an older one);
* **suites** built from the registry (:mod:`xero.entities`), one per table: keys not null and unique
  per ``tenant_id`` + primary key, cursor not null where If-Modified-Since depends on it, enum
  columns within ``Entity.enums``, and per-entity rules (invoice totals against their parts and
  line items, payment amounts above zero);
* **quarantine**: a failing row moves to the quarantine with the expectation as reason, together
  with its parent or children (one quarantine row per record, holding the record's ``_raw``);
* **threshold**: :class:`XeroValidationFailed` when more than ``max_bad_share`` of the records failed.

Great Expectations (~3 s to import), pandas and pyarrow are imported inside functions only.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xero.entities import Entity, Table, get_entity

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

__all__ = [
    "ValidationResult",
    "XeroValidationFailed",
    "reason_key",
    "validate_tables",
    "validation_summary",
]

#: Rows of the parent table validated at once (children follow their parents).
DEFAULT_CHUNK_ROWS = 200_000
#: Tolerance of the invoice total checks, in the invoice currency.
TOTAL_TOLERANCE = 0.01
#: Reasons listed in summaries and error messages.
TOP_REASONS = 5

_TOTAL_MINUS_PARTS = "_total_minus_sub_total_and_tax"
_TOTAL_MINUS_LINES = "_total_minus_line_items"
_VALUE_SUFFIX = re.compile(r"(?:,|:)? got .*$", re.DOTALL)


@dataclass(frozen=True)
class ValidationResult:
    """What :func:`validate_tables` wrote and why rows were held back.

    :param entity: the entity's registry name.
    :param records: records decided on: distinct records after dedupe plus records the normaliser
        quarantined (the denominator of the bad share).
    :param quarantined: records quarantined (normaliser and validator).
    :param quarantined_by_normalizer: records that did not parse.
    :param quarantined_by_validator: records that failed an expectation.
    :param duplicates_dropped: earlier occurrences of records read more than once.
    :param rows: rows written per table name.
    :param bad_share: ``quarantined / records`` (0 when there are no records).
    :param max_bad_share: the threshold the run was held to.
    :param reasons: quarantined records per reason (without the offending values), most frequent first.
    :param max_cursor: the largest ``updated_date_utc`` written to the parent table, if any.
    :param files: Parquet file per table name, plus ``_quarantine``.
    :param data_docs: the Data Docs index page, when written.
    """

    entity: str
    records: int
    quarantined: int
    quarantined_by_normalizer: int
    quarantined_by_validator: int
    duplicates_dropped: int
    rows: dict[str, int]
    bad_share: float
    max_bad_share: float
    reasons: dict[str, int] = field(default_factory=dict)
    max_cursor: datetime | None = None
    files: dict[str, str] = field(default_factory=dict)
    data_docs: str | None = None

    def summary(self, top: int = TOP_REASONS) -> dict[str, Any]:
        """Return a small JSON-able dict (for XCom): counts, the ``top`` reasons and file paths."""
        data = asdict(self)
        data["max_cursor"] = self.max_cursor.isoformat() if self.max_cursor else None
        data["bad_share"] = round(self.bad_share, 6)
        data["reasons"] = dict(list(self.reasons.items())[:top])
        return data


def validation_summary(result: ValidationResult) -> dict[str, Any]:
    """Return the JSON-able summary of ``result`` (counts, top reasons, files) for XCom."""
    return result.summary()


class XeroValidationFailed(Exception):
    """More than the allowed share of an entity's records failed parsing or validation.

    :param result: the full outcome; its files (typed rows and quarantine) were written.
    """

    def __init__(self, result: ValidationResult) -> None:
        self.result = result
        reasons = "; ".join(
            f"{reason} ({count})" for reason, count in list(result.reasons.items())[:TOP_REASONS]
        )
        super().__init__(
            f"{result.entity}: {result.quarantined} of {result.records} records quarantined "
            f"({result.bad_share:.1%} > allowed {result.max_bad_share:.1%}); "
            f"{result.quarantined_by_normalizer} did not parse, {result.quarantined_by_validator} failed "
            f"expectations. Top reasons: {reasons or 'none'}"
        )


def reason_key(reason: str) -> list[str]:
    """Split a quarantine reason into its parts without the offending values (for counting)."""
    return [_VALUE_SUFFIX.sub("", part).strip() for part in reason.split("; ") if part.strip()]


# --- expectations -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Check:
    """One expectation and how to name its failures."""

    expectation: Any
    label: str
    column: str | None = None
    columns: tuple[str, ...] = ()


def _import_gx() -> Any:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx

    return gx


def _checks(gx: Any, entity: Entity, table: Table) -> list[_Check]:
    """Return the expectations of ``table``: generic ones from the registry plus the entity's rules."""
    expect = gx.expectations
    checks: list[_Check] = []

    def add(expectation: Any, column: str | None = None, columns: tuple[str, ...] = ()) -> None:
        label = f"{expectation.expectation_type}({column or ', '.join(columns)})"
        checks.append(_Check(expectation, label, column, (column,) if column else columns))

    for column in ("tenant_id", *table.primary_key):
        add(expect.ExpectColumnValuesToNotBeNull(column=column), column)
    key = ["tenant_id", *table.primary_key]
    add(expect.ExpectCompoundColumnsToBeUnique(column_list=key), columns=tuple(key))
    names = {column.name for column in table.columns}
    if table is entity.table:
        cursor = next((c.name for c in table.columns if c.source == entity.cursor_field), None)
        if entity.modified_since and cursor:
            add(expect.ExpectColumnValuesToNotBeNull(column=cursor), cursor)
    for column, values in sorted(entity.enums.items()):
        if column in names:
            add(expect.ExpectColumnValuesToBeInSet(column=column, value_set=sorted(values)), column)
    for rule in _RULES.get(entity.name, ()):
        for column, expectation in rule.expectations(gx, table):
            add(expectation, column)
    return checks


@dataclass(frozen=True)
class _Rule:
    """An entity-specific rule: helper columns computed with Arrow, then expectations on them."""

    table: str
    expectations: Callable[[Any, Table], list[tuple[str, Any]]]
    helpers: Callable[[pa.Table, dict[str, pa.Table]], dict[str, pa.Array]] | None = None


def _invoice_expectations(gx: Any, table: Table) -> list[tuple[str, Any]]:
    if table.name != "invoice":
        return []
    expect = gx.expectations
    found: list[tuple[str, Any]] = [
        (column, expect.ExpectColumnValuesToNotBeNull(column=column))
        for column in ("sub_total", "total_tax", "total")
    ]
    for helper in (_TOTAL_MINUS_PARTS, _TOTAL_MINUS_LINES):
        found.append(
            (
                helper,
                expect.ExpectColumnValuesToBeBetween(
                    column=helper, min_value=-TOTAL_TOLERANCE, max_value=TOTAL_TOLERANCE
                ),
            )
        )
    return found


def _invoice_helpers(invoices: pa.Table, children: dict[str, pa.Table]) -> dict[str, pa.Array]:
    """Return ``total - (sub_total + total_tax)`` and ``total - line items`` per invoice (exact decimals).

    Line items count ``line_amount + tax_amount``, except on ``Inclusive`` invoices where
    ``line_amount`` already includes the tax (Xero's own example: LineAmount 20.00, TaxAmount 1.74,
    Total 20.00). An invoice without line items counts 0.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    wide = pa.decimal128(28, 4)
    total = invoices["total"].cast(wide)
    parts = pc.add(invoices["sub_total"].cast(wide), invoices["total_tax"].cast(wide))
    lines = children["invoice_line_item"]
    sums = lines.group_by("_seq", use_threads=False).aggregate(
        [("line_amount", "sum"), ("tax_amount", "sum")]
    )
    position = pc.index_in(invoices["_seq"], value_set=sums["_seq"])
    zero = pa.scalar(0, type=wide)
    line_sum = pc.fill_null(sums["line_amount_sum"].cast(wide).take(position), zero)
    tax_sum = pc.fill_null(sums["tax_amount_sum"].cast(wide).take(position), zero)
    inclusive = pc.fill_null(pc.equal(invoices["line_amount_types"], "Inclusive"), False)
    from_lines = pc.add(line_sum, pc.if_else(inclusive, zero, tax_sum))
    return {
        _TOTAL_MINUS_PARTS: pc.subtract(total, parts),
        _TOTAL_MINUS_LINES: pc.subtract(total, from_lines),
    }


def _payment_expectations(gx: Any, table: Table) -> list[tuple[str, Any]]:
    expect = gx.expectations
    return [
        ("amount", expect.ExpectColumnValuesToNotBeNull(column="amount")),
        ("amount", expect.ExpectColumnValuesToBeBetween(column="amount", min_value=0, strict_min=True)),
    ]


_RULES: dict[str, tuple[_Rule, ...]] = {
    "invoices": (_Rule("invoice", _invoice_expectations, _invoice_helpers),),
    "payments": (_Rule("payment", _payment_expectations),),
}


class _Suite:
    """A table's suite wired to an ephemeral context: pandas datasource, asset, batch and checkpoint."""

    def __init__(self, gx: Any, context: Any, entity: Entity, table: Table) -> None:
        self.table = table
        self.checks = _checks(gx, entity, table)
        self.columns = sorted(
            {
                "_seq",
                "tenant_id",
                *table.primary_key,
                *(name for check in self.checks for name in check.columns),
            }
        )
        name = f"xero_{entity.name}_{table.name}"
        suite = context.suites.add(gx.ExpectationSuite(name=name))
        for check in self.checks:
            suite.add_expectation(check.expectation)
        asset = context.data_sources.add_pandas(name).add_dataframe_asset(table.name)
        batch = asset.add_batch_definition_whole_dataframe(table.name)
        definition = context.validation_definitions.add(
            gx.ValidationDefinition(name=name, data=batch, suite=suite)
        )
        self.checkpoint = context.checkpoints.add(
            gx.Checkpoint(
                name=name,
                validation_definitions=[definition],
                actions=[],
                result_format={"result_format": "COMPLETE", "unexpected_index_column_names": ["_seq"]},
            )
        )

    def failures(self, frame: pd.DataFrame, prefix: str) -> dict[int, list[str]]:
        """Run the suite on ``frame``; return reasons per failing ``_seq`` (the parent's, for children)."""
        bad: dict[int, list[str]] = {}
        if frame.empty:
            return bad
        result = self.checkpoint.run(batch_parameters={"dataframe": frame})
        by_label = {check.expectation.id: check for check in self.checks}
        for validation in result.run_results.values():
            for outcome in validation.results:
                if outcome.success:
                    continue
                info = outcome.exception_info or {}
                if info.get("raised_exception"):
                    raise RuntimeError(
                        f"{self.table.name}: expectation {outcome.expectation_config.type} could not run: "
                        f"{info.get('exception_message')}"
                    )
                check = by_label.get(outcome.expectation_config.id)
                label = check.label if check else outcome.expectation_config.type
                column = check.column if check else None
                for index in outcome.result.get("unexpected_index_list") or []:
                    reason = prefix + label
                    if column is not None and column in index:
                        reason += f": got {_show(index[column])}"
                    bad.setdefault(int(index["_seq"]), []).append(reason)
        return bad


def _show(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "null"
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


# --- reading, dedupe, chunks ------------------------------------------------------------------


def _winners(entity: Entity, parent_path: Path, normalizer_quarantine: pa.Table) -> tuple[pa.Array, int, int]:
    """Return the ``_seq`` of each record's last occurrence, the duplicates dropped and the superseded."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    key = ["tenant_id", *entity.table.primary_key]
    keys = pq.read_table(parent_path, columns=[*key, "_seq"])
    has_null = pc.is_null(keys[key[1]])
    for name in key[2:]:
        has_null = pc.or_(has_null, pc.is_null(keys[name]))
    null_seqs = keys.filter(has_null)["_seq"].combine_chunks()
    grouped = keys.filter(pc.invert(has_null)).group_by(key, use_threads=False).aggregate([("_seq", "max")])
    keep = grouped["_seq_max"].combine_chunks()
    superseded = 0
    if normalizer_quarantine.num_rows and len(key) == 2:
        bad = (
            normalizer_quarantine.filter(pc.is_valid(normalizer_quarantine["record_id"]))
            .group_by(["tenant_id", "record_id"], use_threads=False)
            .aggregate([("_seq", "max")])
        )
        latest_bad = {
            (t, r): s for t, r, s in zip(*(bad[c].to_pylist() for c in bad.column_names), strict=True)
        }
        if latest_bad:
            rows = zip(*(grouped[c].to_pylist() for c in key), keep.to_pylist(), strict=True)
            mask = [latest_bad.get((tenant, record), -1) < seq for tenant, record, seq in rows]
            superseded = mask.count(False)
            keep = keep.filter(pa.array(mask, type=pa.bool_()))
    keep = pa.concat_arrays([keep, null_seqs])
    duplicates = keys.num_rows - len(keep) - superseded
    return keep, duplicates, superseded


def _chunks(
    entity: Entity, normalized_dir: Path, keep: pa.Array, chunk_rows: int
) -> Iterator[tuple[pa.Table, dict[str, pa.Table]]]:
    """Yield kept parent rows about ``chunk_rows`` at a time, each with its children's kept rows."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from xero.normalize import table_path

    parent_file = pq.ParquetFile(table_path(normalized_dir, entity.table.name))
    pending: list[pa.Table] = []
    pending_rows = 0

    def emit(tables: list[pa.Table]) -> tuple[pa.Table, dict[str, pa.Table]]:
        parents = pa.concat_tables(tables)
        low, high = (value.as_py() for value in pc.min_max(parents["_seq"]).values())
        parents = parents.filter(pc.is_in(parents["_seq"], value_set=keep))
        children = {}
        for child in entity.children:
            rows = pq.read_table(
                table_path(normalized_dir, child.name), filters=[("_seq", ">=", low), ("_seq", "<=", high)]
            )
            children[child.name] = rows.filter(pc.is_in(rows["_seq"], value_set=parents["_seq"]))
        return parents, children

    for index in range(parent_file.num_row_groups):
        group = parent_file.read_row_group(index)
        if not group.num_rows:
            continue
        pending.append(group)
        pending_rows += group.num_rows
        if pending_rows >= chunk_rows:
            yield emit(pending)
            pending, pending_rows = [], 0
    if pending:
        yield emit(pending)


def _frame(table: pa.Table, columns: list[str], helpers: dict[str, pa.Array]) -> pd.DataFrame:
    """Return the columns the suite needs as pandas (decimals as exact ``Decimal`` objects)."""
    selected = table.select([name for name in columns if name in table.column_names])
    for name, array in helpers.items():
        selected = selected.append_column(name, array)
    return selected.to_pandas()


def _merge(into: dict[int, list[str]], found: dict[int, list[str]]) -> None:
    for seq, reasons in found.items():
        into.setdefault(seq, []).extend(reasons)


def _context(gx: Any, data_docs_dir: Path | None) -> Any:
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    if data_docs_dir is not None:
        context.add_data_docs_site(
            site_name="xero",
            site_config={
                "class_name": "SiteBuilder",
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str(data_docs_dir),
                },
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            },
        )
    return context


def validate_tables(
    entity: Entity | str,
    normalized_dir: Path,
    out_dir: Path,
    max_bad_share: float = 0.05,
    data_docs_dir: Path | None = None,
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> ValidationResult:
    """Dedupe, validate and split the normaliser's output into final tables and a quarantine.

    Reads ``normalized_dir`` (written by :func:`xero.normalize.normalize_pages`), keeps each record's
    last occurrence with its children, runs the table suites chunk by chunk (``chunk_rows`` parent
    rows with their children; memory stays bounded), and writes ``<out_dir>/<table>/part-00000.parquet``
    per table plus ``<out_dir>/_quarantine/part-00000.parquet`` holding the normaliser's and the
    validator's quarantined records. The files are written before the threshold is checked, so a
    failed run can still be inspected.

    :param entity: the entity (or its registry name).
    :param normalized_dir: the normaliser's output directory.
    :param out_dir: directory for the validated tables and the quarantine.
    :param max_bad_share: largest allowed share of quarantined records (0.05 = 5 %).
    :param data_docs_dir: when given, Great Expectations Data Docs (static HTML) are written there.
    :param chunk_rows: parent rows validated at once.
    :raises XeroValidationFailed: when ``quarantined / records`` exceeds ``max_bad_share``.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from xero.normalize import QUARANTINE_DIR, quarantine_path, table_path
    from xero.schema import QUARANTINE_SCHEMA, arrow_schema

    if isinstance(entity, str):
        entity = get_entity(entity)
    if not 0 <= max_bad_share <= 1:
        raise ValueError(f"max_bad_share must be between 0 and 1, got {max_bad_share!r}")
    normalized_dir, out_dir = Path(normalized_dir), Path(out_dir)
    source_quarantine = quarantine_path(normalized_dir)
    if source_quarantine.exists():
        normalizer_quarantine = pq.read_table(source_quarantine, schema=QUARANTINE_SCHEMA)
    else:
        normalizer_quarantine = QUARANTINE_SCHEMA.empty_table()
    keep, duplicates, _superseded = _winners(
        entity, table_path(normalized_dir, entity.table.name), normalizer_quarantine
    )

    gx = _import_gx()
    context = _context(gx, data_docs_dir)
    suites = {table.name: _Suite(gx, context, entity, table) for table in entity.tables}
    helpers_of = [rule.helpers for rule in _RULES.get(entity.name, ()) if rule.helpers is not None]

    files: dict[str, Path] = {table.name: table_path(out_dir, table.name) for table in entity.tables}
    files[QUARANTINE_DIR] = quarantine_path(out_dir)
    schemas = {table.name: arrow_schema(table) for table in entity.tables}
    schemas[QUARANTINE_DIR] = QUARANTINE_SCHEMA
    writers = {}
    for name, path in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        writers[name] = pq.ParquetWriter(path, schemas[name])

    rows: Counter[str] = Counter({table.name: 0 for table in entity.tables})
    reasons: Counter[str] = Counter()
    for reason in normalizer_quarantine["reason"].to_pylist():
        reasons.update(reason_key(reason))
    validator_bad = 0
    max_cursor: datetime | None = None
    cursor = next((c.name for c in entity.table.columns if c.source == entity.cursor_field), None)
    parent_name = entity.table.name
    id_column = entity.table.primary_key[0]
    try:
        if normalizer_quarantine.num_rows:
            writers[QUARANTINE_DIR].write_table(normalizer_quarantine)
        for parents, children in _chunks(entity, normalized_dir, keep, chunk_rows):
            helpers: dict[str, pa.Array] = {}
            for compute in helpers_of:
                helpers.update(compute(parents, children))
            bad: dict[int, list[str]] = {}
            _merge(
                bad, suites[parent_name].failures(_frame(parents, suites[parent_name].columns, helpers), "")
            )
            for name, table in children.items():
                _merge(bad, suites[name].failures(_frame(table, suites[name].columns, {}), f"{name}: "))
            bad_seqs = pa.array(sorted(bad), type=pa.int64())

            good = parents.filter(pc.invert(pc.is_in(parents["_seq"], value_set=bad_seqs)))
            writers[parent_name].write_table(good)
            rows[parent_name] += good.num_rows
            if cursor is not None and good.num_rows:
                chunk_max = pc.max(good[cursor]).as_py()
                if chunk_max is not None and (max_cursor is None or chunk_max > max_cursor):
                    max_cursor = chunk_max
            for name, table in children.items():
                kept = table.filter(pc.invert(pc.is_in(table["_seq"], value_set=bad_seqs)))
                writers[name].write_table(kept)
                rows[name] += kept.num_rows

            if bad:
                failed = parents.filter(pc.is_in(parents["_seq"], value_set=bad_seqs))
                seqs = failed["_seq"].to_pylist()
                texts = ["; ".join(dict.fromkeys(bad[seq])) for seq in seqs]
                for text in texts:
                    reasons.update(reason_key(text))
                validator_bad += failed.num_rows
                count = failed.num_rows
                writers[QUARANTINE_DIR].write_table(
                    pa.Table.from_arrays(
                        [
                            failed["tenant_id"],
                            pa.array([entity.name] * count, type=pa.string()),
                            pa.array([parent_name] * count, type=pa.string()),
                            failed[id_column],
                            pa.array(texts, type=pa.string()),
                            failed["_raw"],
                            failed["_seq"],
                        ],
                        schema=QUARANTINE_SCHEMA,
                    )
                )
    finally:
        for writer in writers.values():
            writer.close()

    docs_index = None
    if data_docs_dir is not None:
        context.build_data_docs()
        docs_index = str(Path(data_docs_dir) / "index.html")

    normalizer_bad = normalizer_quarantine.num_rows
    records = len(keep) + normalizer_bad
    quarantined = normalizer_bad + validator_bad
    result = ValidationResult(
        entity=entity.name,
        records=records,
        quarantined=quarantined,
        quarantined_by_normalizer=normalizer_bad,
        quarantined_by_validator=validator_bad,
        duplicates_dropped=duplicates,
        rows=dict(rows),
        bad_share=quarantined / records if records else 0.0,
        max_bad_share=max_bad_share,
        reasons=dict(reasons.most_common()),
        max_cursor=max_cursor,
        files={name: str(path) for name, path in files.items()},
        data_docs=docs_index,
    )
    if result.bad_share > max_bad_share:
        raise XeroValidationFailed(result)
    return result
