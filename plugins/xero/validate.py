"""Validate normalised Xero tables with Great Expectations and quarantine the rows that fail.

This module owns the data-quality gate between the normaliser and the warehouse:

* **dedupe**: a record read twice in one run keeps only its last occurrence (highest ``_seq``), with
  that occurrence's children; a record whose last occurrence was quarantined by the normaliser is
  dropped from the typed tables (the newer, bad version must not be hidden by an older one). Only
  the key columns are read, once, hash-partitioned into spill files of about
  :data:`PARTITION_ROWS` keys when the run is larger, and each partition is sorted by key;
* **suites** built from the registry (:mod:`xero.entities`), one per table: keys not null and unique
  per ``tenant_id`` + primary key, cursor not null where If-Modified-Since depends on it, enum
  columns within ``Entity.enums``, and per-entity rules (invoice totals against their parts and
  line items, payment amounts above zero);
* **severities**: each expectation is an *error* (the record is quarantined) or a *warning* (the
  record loads; it is counted per reason in the result and the Data Docs show the failure). Records
  the Xero specification allows are never errors: a missing ``UpdatedDateUTC`` (the spec's own
  account examples) and line items that do not add up to the total are warnings, and an invoice
  without line items (the spec's own invoice examples) is not checked against them;
* **quarantine**: a row failing an error moves to the quarantine with the expectation as reason,
  together with its parent or children (one quarantine row per record, holding the record's ``_raw``);
* **threshold**: :class:`XeroValidationFailed` when more than ``max_bad_share`` of the records AND
  more than ``max_bad_rows`` records failed (so one odd record in a small batch never fails a run);
* **reporting**: a few log lines saying what was checked (:func:`describe`), and the run's page in the Data
  Docs site (:mod:`xero.datadocs`, built from the suites' results). Great Expectations itself stays quiet:
  its loggers below WARNING, no progress bars, no analytics, no Data Docs of its own (they need a CDN).

The work is streamed in two passes so memory does not grow with the run. Pass 1 reads only the
columns the expectations need (never ``_raw``; low-cardinality strings as dictionaries), parents
and their children side by side in ``_seq`` order, :data:`DEFAULT_CHUNK_ROWS` parents at a time, and
runs each table's suite (a Great Expectations validation definition) once per chunk on a compact
frame (categories, codes, floats: Great Expectations' vectorised pandas paths); a suite run costs
about a tenth of a second whatever its size, so chunks are large. The reasons quote the exact
values from Arrow. Pass 2 copies the kept rows row group by row group, or links the normaliser's
file when a table loses no row at all.

Great Expectations (~3 s to import), pandas and pyarrow are imported inside functions only.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xero.datadocs import CheckTally, Report, publish
from xero.entities import Entity, Table, get_entity

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

__all__ = [
    "DocsLabel",
    "ValidationResult",
    "XeroValidationFailed",
    "describe",
    "reason_key",
    "validate_tables",
    "validation_summary",
]

#: Rows of the parent table validated at once (children follow their parents).
DEFAULT_CHUNK_ROWS = 30_000
#: Parent keys deduped at once (larger runs are split into hash partitions of about this size).
PARTITION_ROWS = 100_000
#: Tolerance of the invoice total checks, in the invoice currency.
TOTAL_TOLERANCE = 0.01
#: Reasons listed in summaries and error messages.
TOP_REASONS = 5
#: Quarantined records a batch may always have, whatever their share (see :func:`validate_tables`).
DEFAULT_MAX_BAD_ROWS = 10
#: What a failed expectation does to the record: quarantine it (error) or only count it (warning).
ERROR, WARNING = "error", "warning"

#: Every failing row, named by its ``_seq`` and its position in the frame.
_RESULT_FORMAT = {"result_format": "COMPLETE", "unexpected_index_column_names": ["_seq", "_row"]}
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
    :param max_bad_share: the share threshold the run was held to.
    :param reasons: quarantined records per reason (without the offending values), most frequent first.
    :param max_bad_rows: the count threshold the run was held to (``None``: the share alone decides).
    :param warned: kept records that failed a warning-severity expectation.
    :param warnings: kept records per warning (without the offending values), most frequent first.
    :param max_cursor: the largest ``updated_date_utc`` written to the parent table, if any.
    :param files: Parquet file per table name, plus ``_quarantine``.
    :param data_docs: this validation's Data Docs page, when written.
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
    max_bad_rows: int | None = None
    warned: int = 0
    warnings: dict[str, int] = field(default_factory=dict)

    @property
    def over_threshold(self) -> bool:
        """Return whether more than ``max_bad_share`` of the records and more than ``max_bad_rows`` failed."""
        over_rows = self.max_bad_rows is None or self.quarantined > self.max_bad_rows
        return self.bad_share > self.max_bad_share and over_rows

    def summary(self, top: int = TOP_REASONS) -> dict[str, Any]:
        """Return a small JSON-able dict (for XCom): counts, the ``top`` reasons and file paths."""
        data = asdict(self)
        data["max_cursor"] = self.max_cursor.isoformat() if self.max_cursor else None
        data["bad_share"] = round(self.bad_share, 6)
        data["reasons"] = dict(list(self.reasons.items())[:top])
        data["warnings"] = dict(list(self.warnings.items())[:top])
        return data


def validation_summary(result: ValidationResult) -> dict[str, Any]:
    """Return the JSON-able summary of ``result`` (counts, top reasons, files) for XCom."""
    return result.summary()


def _counts(items: dict[str, int], top: int = TOP_REASONS) -> str:
    shown = [f"{name} ({count:,})" for name, count in list(items.items())[:top]]
    more = len(items) - len(shown)
    return "; ".join(shown) + (f"; and {more} more" if more > 0 else "")


def _warnings(result: ValidationResult) -> dict[str, int]:
    """Return the warnings of ``result`` (rows that loaded but broke a warning-level rule) per rule."""
    found = getattr(result, "warnings", None)
    if isinstance(found, dict):
        return {str(name): int(count) for name, count in found.items()}
    return {"warnings": int(found)} if isinstance(found, int) and found else {}


def describe(result: ValidationResult, organisation: str | None = None) -> list[str]:
    """Return the few lines a validation logs: what was checked, kept and quarantined and why, warnings, report.

    :param organisation: the organisation's name (or id), for the first line.
    """
    kept = result.records - result.quarantined
    lines = [
        f"Validated {result.entity}{f' of {organisation}' if organisation else ''}: "
        f"{result.records:,} records checked, {kept:,} kept, {result.quarantined:,} quarantined "
        f"({result.bad_share:.1%}; the run fails above {result.max_bad_share:.1%}"
        + (f" and {result.max_bad_rows:,} records)" if result.max_bad_rows is not None else ")")
        + (f", {result.duplicates_dropped:,} duplicate reads dropped" if result.duplicates_dropped else ""),
        "Rows kept per table: " + ", ".join(f"{table} {count:,}" for table, count in result.rows.items()),
    ]
    if result.quarantined:
        lines.append(
            f"Quarantined by reason ({result.quarantined_by_normalizer:,} did not parse, "
            f"{result.quarantined_by_validator:,} failed an expectation): {_counts(result.reasons)}"
        )
    else:
        lines.append("Quarantined by reason: none")
    warnings = _warnings(result)
    lines.append(f"Warnings: {_counts(warnings) if warnings else 'none'}")
    if result.data_docs:
        lines.append(
            f"Data Docs: {result.data_docs} (all runs: {Path(result.data_docs).parents[2] / 'index.html'})"
        )
    return lines


class XeroValidationFailed(Exception):
    """More than the allowed share of an entity's records failed parsing or validation.

    :param result: the full outcome; its files (typed rows and quarantine) were written.
    """

    def __init__(self, result: ValidationResult) -> None:
        self.result = result
        reasons = "; ".join(
            f"{reason} ({count})" for reason, count in list(result.reasons.items())[:TOP_REASONS]
        )
        rows = "" if result.max_bad_rows is None else f" and more than {result.max_bad_rows} records"
        super().__init__(
            f"{result.entity}: {result.quarantined} of {result.records} records quarantined "
            f"({result.bad_share:.1%} > allowed {result.max_bad_share:.1%}{rows}); "
            f"{result.quarantined_by_normalizer} did not parse, {result.quarantined_by_validator} failed "
            f"expectations. Top reasons: {reasons or 'none'}"
        )


def reason_key(reason: str) -> list[str]:
    """Split a quarantine reason into its parts without the offending values (for counting)."""
    return [_VALUE_SUFFIX.sub("", part).strip() for part in reason.split("; ") if part.strip()]


# --- expectations -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Check:
    """One expectation, how to name its failures and what they do (:data:`ERROR` or :data:`WARNING`)."""

    expectation: Any
    label: str
    column: str | None = None
    columns: tuple[str, ...] = ()
    severity: str = ERROR


#: Great Expectations' loggers log at INFO while importing and validating (hundreds of lines a task).
_GX_LOGGERS = ("great_expectations", "tzlocal")


def _import_gx() -> Any:
    """Import Great Expectations with its chatter off: loggers at WARNING, analytics disabled."""
    os.environ["GX_ANALYTICS_ENABLED"] = "False"
    for name in _GX_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level in (logging.NOTSET, logging.DEBUG, logging.INFO):
            logger.setLevel(logging.WARNING)
    import great_expectations as gx

    return gx


def _checks(gx: Any, entity: Entity, table: Table) -> list[_Check]:
    """Return the expectations of ``table``: generic ones from the registry plus the entity's rules."""
    expect = gx.expectations
    checks: list[_Check] = []

    def add(
        expectation: Any, column: str | None = None, columns: tuple[str, ...] = (), severity: str = ERROR
    ) -> None:
        label = f"{expectation.expectation_type}({column or ', '.join(columns)})"
        if severity == WARNING:  # Great Expectations' own severity: the Data Docs show it
            expectation.severity = "warning"
        checks.append(_Check(expectation, label, column, (column,) if column else columns, severity))

    for column in ("tenant_id", *table.primary_key):
        add(expect.ExpectColumnValuesToNotBeNull(column=column), column)
    key = ["tenant_id", *table.primary_key]
    add(expect.ExpectCompoundColumnsToBeUnique(column_list=key), columns=tuple(key))
    names = {column.name for column in table.columns}
    if table is entity.table:
        cursor = next((c.name for c in table.columns if c.source == entity.cursor_field), None)
        if entity.modified_since and cursor:
            # The spec's own account examples have none: such a record loads (and is read again by a full
            # read only), so a missing cursor is worth knowing but is no reason to hold the record back.
            add(expect.ExpectColumnValuesToNotBeNull(column=cursor), cursor, severity=WARNING)
    for column, values in sorted(entity.enums.items()):
        if column in names:
            add(expect.ExpectColumnValuesToBeInSet(column=column, value_set=sorted(values)), column)
    for rule in _RULES.get(entity.name, ()):
        for column, expectation in rule.expectations(gx, table):
            add(expectation, column, severity=rule.severities.get(column, ERROR))
    return checks


@dataclass(frozen=True)
class _Rule:
    """An entity-specific rule: helper columns computed with Arrow, then expectations on them."""

    table: str
    expectations: Callable[[Any, Table], list[tuple[str, Any]]]
    helpers: Callable[[pa.Table, dict[str, pa.Table]], dict[str, pa.Array]] | None = None
    #: Columns the helpers read, per table name.
    reads: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: Severity of the expectations on a column, when not :data:`ERROR`.
    severities: dict[str, str] = field(default_factory=dict)


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
    Total 20.00). An invoice without line items (the spec's own examples) has no line total to
    compare: its ``total - line items`` is null, which no expectation fails.
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
    no_lines = pc.is_null(position)
    return {
        _TOTAL_MINUS_PARTS: pc.subtract(total, parts),
        _TOTAL_MINUS_LINES: pc.if_else(no_lines, pa.scalar(None, type=wide), pc.subtract(total, from_lines)),
    }


def _payment_expectations(gx: Any, table: Table) -> list[tuple[str, Any]]:
    expect = gx.expectations
    return [
        ("amount", expect.ExpectColumnValuesToNotBeNull(column="amount")),
        ("amount", expect.ExpectColumnValuesToBeBetween(column="amount", min_value=0, strict_min=True)),
    ]


def _organisation_expectations(gx: Any, table: Table) -> list[tuple[str, Any]]:
    """The organisation labels every mart: its name and base currency must be there, its year end a date."""
    expect = gx.expectations
    return [
        ("name", expect.ExpectColumnValuesToNotBeNull(column="name")),
        ("base_currency", expect.ExpectColumnValuesToNotBeNull(column="base_currency")),
        (
            "financial_year_end_month",
            expect.ExpectColumnValuesToBeBetween(
                column="financial_year_end_month", min_value=1, max_value=12
            ),
        ),
        (
            "financial_year_end_day",
            expect.ExpectColumnValuesToBeBetween(column="financial_year_end_day", min_value=1, max_value=31),
        ),
    ]


_RULES: dict[str, tuple[_Rule, ...]] = {
    "organisation": (_Rule("organisation", _organisation_expectations),),
    "invoices": (
        _Rule(
            "invoice",
            _invoice_expectations,
            _invoice_helpers,
            reads={
                "invoice": ("total", "sub_total", "total_tax", "line_amount_types"),
                "invoice_line_item": ("line_amount", "tax_amount"),
            },
            # Xero may round tax on the invoice rather than per line: the header stays authoritative.
            severities={_TOTAL_MINUS_LINES: WARNING},
        ),
    ),
    "payments": (_Rule("payment", _payment_expectations),),
}


class _Suite:
    """A table's suite wired to an ephemeral context: pandas datasource, asset, batch and validation definition."""

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
        #: Columns whose values an expectation compares with a value set (kept as categories).
        self.set_columns = {
            check.column
            for check in self.checks
            if check.column and check.expectation.expectation_type == "expect_column_values_to_be_in_set"
        }
        name = f"xero_{entity.name}_{table.name}"
        suite = context.suites.add(gx.ExpectationSuite(name=name))
        for check in self.checks:
            suite.add_expectation(check.expectation)
        asset = context.data_sources.add_pandas(name).add_dataframe_asset(table.name)
        batch = asset.add_batch_definition_whole_dataframe(table.name)
        self.definition = context.validation_definitions.add(
            gx.ValidationDefinition(name=name, data=batch, suite=suite)
        )
        self.tally = CheckTally(table.name, self.checks)  # after add_expectation, which sets the ids

    def failures(
        self, rows: pa.Table, helpers: dict[str, pa.Array], prefix: str
    ) -> tuple[dict[int, list[str]], dict[int, list[str]]]:
        """Run the suite on ``rows``; return reasons per failing ``_seq`` (the parent's, for children):
        those of error-severity expectations, then those of warnings.

        Great Expectations sees a compact frame (:func:`_frame`); the values named in the reasons
        are read back from ``rows`` (exact decimals, the original strings).
        """
        bad: dict[int, list[str]] = {}
        warned: dict[int, list[str]] = {}
        if not rows.num_rows:
            return bad, warned
        frame = _frame(rows, self.columns, helpers, self.set_columns)
        validation = self.definition.run(batch_parameters={"dataframe": frame}, result_format=_RESULT_FORMAT)
        self.tally.add(validation)
        by_label = {check.expectation.id: check for check in self.checks}
        found: list[tuple[int, int, str, str | None, str]] = []
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
            severity = check.severity if check else ERROR
            for index in outcome.result.get("unexpected_index_list") or []:
                found.append((int(index["_seq"]), int(index["_row"]), prefix + label, column, severity))
        if not found:
            return bad, warned
        shown = _values_of(rows, helpers, {f[1] for f in found}, {f[3] for f in found if f[3]})
        for seq, row, reason, column, severity in found:
            if column is not None:
                reason += f": got {_show(shown[column][row])}"
            (warned if severity == WARNING else bad).setdefault(seq, []).append(reason)
        return bad, warned


def _values_of(
    rows: pa.Table, helpers: dict[str, pa.Array], positions: set[int], columns: set[str]
) -> dict[str, dict[int, Any]]:
    """Return the exact value of each of ``columns`` at each row position in ``positions``."""
    import pyarrow as pa

    picked = sorted(positions)
    indices = pa.array(picked, type=pa.int64())
    values: dict[str, dict[int, Any]] = {}
    for column in columns:
        source = helpers[column] if column in helpers else rows[column]
        values[column] = dict(zip(picked, source.take(indices).to_pylist(), strict=True))
    return values


def _show(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "null"
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _frame(
    table: pa.Table, columns: list[str], helpers: dict[str, pa.Array], set_columns: set[str]
) -> pd.DataFrame:
    """Return the columns the suite needs as a compact pandas frame.

    Great Expectations' pandas checks are vectorised for numbers and categories, so values are
    handed over in the cheapest form that keeps what the expectations test: columns checked
    against a value set become categories (their values intact); other strings become their
    dictionary codes (null stays null, equal strings get equal codes, so null and uniqueness
    checks give the same answer); decimals become float64 (exact decimals of scale 4 or 10 keep
    their order against the bounds used here); timestamps and dates their integer ticks.
    """
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    data: dict[str, Any] = {"_row": np.arange(table.num_rows, dtype=np.int64)}
    sources = {name: table[name] for name in columns if name in table.column_names}
    sources.update(helpers)
    for name, column in sources.items():
        if isinstance(column, pa.ChunkedArray):
            column = column.combine_chunks()  # one dictionary for every chunk
        kind = column.type
        if name == "_seq":
            data[name] = column.to_numpy(zero_copy_only=False)
        elif name in set_columns:
            data[name] = (column if pa.types.is_dictionary(kind) else column.dictionary_encode()).to_pandas()
        elif pa.types.is_dictionary(kind):
            data[name] = column.indices.to_pandas()
        elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
            data[name] = pc.dictionary_encode(column).indices.to_pandas()
        elif pa.types.is_decimal(kind) or pa.types.is_integer(kind):
            data[name] = pc.cast(column, pa.float64()).to_pandas()
        elif pa.types.is_timestamp(kind) or pa.types.is_date(kind):
            ticks = column.cast(pa.int64()) if pa.types.is_timestamp(kind) else column.cast(pa.int32())
            data[name] = pc.cast(ticks, pa.float64()).to_pandas()
        else:
            data[name] = column.to_pandas()
    return pd.DataFrame(data)


# --- reading, dedupe, chunks ------------------------------------------------------------------


@dataclass(frozen=True)
class _Winners:
    """Which occurrences of the parent records survive the dedupe.

    :param dropped: ``_seq`` of earlier occurrences and of typed rows superseded by a newer,
        unparsable occurrence (usually few; everything else is kept).
    :param kept: parent rows kept.
    :param duplicates: earlier occurrences dropped.
    """

    dropped: pa.Array
    kept: int
    duplicates: int


def _winners(
    entity: Entity,
    parent_path: Path,
    normalizer_quarantine: pa.Table,
    partition_rows: int = PARTITION_ROWS,
) -> _Winners:
    """Find each record's last occurrence from the key columns alone (``_raw`` is never read).

    A record's occurrences are its typed rows and its rows in the normaliser's quarantine (the key
    is ``tenant_id`` plus the record's id); the one with the highest ``_seq`` wins. Typed rows that
    do not win are dropped: earlier occurrences, and the typed rows of a record whose last
    occurrence did not parse. Rows without an id all stay (the suites quarantine them).

    Keys are hashed into partitions of about ``partition_rows`` rows and each partition is deduped
    on its own (every occurrence of a key falls in the same partition), so memory stays bounded
    however many records the run holds (see :func:`_key_partitions`).
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    id_column = entity.table.primary_key[0]
    columns = ["tenant_id", id_column, "_seq"]
    parts = max(1, -(-pq.ParquetFile(parent_path).metadata.num_rows // partition_rows))
    unparsed = normalizer_quarantine.filter(pc.is_valid(normalizer_quarantine["record_id"]))
    unparsed = unparsed.select(["tenant_id", "record_id", "_seq"]).rename_columns(columns)
    unparsed_parts = _partition_of(unparsed[id_column], parts)
    dropped: list[Any] = []
    kept = duplicates = 0
    for part, typed in _key_partitions(parent_path, columns, parts):
        others = unparsed.filter(pa.array(unparsed_parts == part))
        rows = pa.concat_tables([typed, others.cast(typed.schema)]).combine_chunks()
        seqs = rows["_seq"].to_numpy()
        is_typed = np.arange(rows.num_rows) < typed.num_rows
        tenants = pc.dictionary_encode(rows["tenant_id"].chunk(0))
        ids = pc.dictionary_encode(rows[id_column].chunk(0))
        present = pc.and_(tenants.is_valid(), ids.is_valid()).to_numpy(zero_copy_only=False)
        codes = tenants.indices.to_numpy(zero_copy_only=False).astype(np.int64) * len(ids.dictionary)
        codes += ids.indices.to_numpy(zero_copy_only=False)
        # Occurrences of each key side by side, oldest first; the last of each run wins.
        order = np.flatnonzero(present)
        order = order[np.lexsort((seqs[order], codes[order]))]
        ordered = codes[order]
        last = np.append(ordered[1:] != ordered[:-1], True) if len(ordered) else np.zeros(0, bool)
        losers = order[~last]
        dropped.append(seqs[losers[is_typed[losers]]])
        winners = order[last]
        starts = np.flatnonzero(np.append(True, last[:-1]))
        with_typed = np.maximum.reduceat(is_typed[order], starts) if len(order) else np.zeros(0, bool)
        superseded = int(np.count_nonzero(with_typed & ~is_typed[winners]))
        part_kept = int(np.count_nonzero(is_typed[winners])) + int(np.count_nonzero(~present[is_typed]))
        kept += part_kept
        duplicates += typed.num_rows - part_kept - superseded
    return _Winners(
        dropped=pa.array(np.concatenate(dropped) if dropped else np.zeros(0, np.int64), type=pa.int64()),
        kept=kept,
        duplicates=duplicates,
    )


def _key_partitions(path: Path, columns: list[str], parts: int) -> Iterator[tuple[int, pa.Table]]:
    """Yield ``(partition, rows)`` of a Parquet file's ``columns``, hashed on the second column, one at a time.

    With more than one partition the file is read once: each row group is split by partition into
    Arrow IPC spill files beside ``path``, which are then read back one by one and removed. Memory
    holds one partition; time stays linear in the file.
    """
    import numpy as np
    import pyarrow as pa

    with _parquet_file(path, compact=True) as file:
        schema = file.schema_arrow.empty_table().select(columns).schema
    if parts == 1:
        yield 0, pa.concat_tables([schema.empty_table(), *_row_groups(path, columns, compact=True)])
        return
    with tempfile.TemporaryDirectory(prefix="_keys-", dir=path.parent) as spill:
        files = [Path(spill) / f"part-{part}.arrow" for part in range(parts)]
        writers = [pa.ipc.new_file(file, schema) for file in files]
        try:
            for group in _row_groups(path, columns, compact=True):
                numbers = _partition_of(group[columns[1]], parts)
                order = np.argsort(numbers, kind="stable")
                bounds = np.searchsorted(numbers[order], np.arange(parts + 1))
                group = group.take(pa.array(order))
                for part, writer in enumerate(writers):
                    if bounds[part + 1] > bounds[part]:
                        writer.write_table(group.slice(bounds[part], bounds[part + 1] - bounds[part]))
        finally:
            for writer in writers:
                writer.close()
        for part, file in enumerate(files):
            with pa.OSFile(str(file)) as source:
                rows = pa.ipc.open_file(source).read_all()
            file.unlink()
            yield part, rows


def _partition_of(ids: pa.ChunkedArray | pa.Array, parts: int) -> Any:
    """Return a partition number below ``parts`` for each string, from its last two bytes.

    Only consistency matters for correctness (equal strings, equal partitions); record ids end in
    hexadecimal digits or counters, which spread well.
    """
    import numpy as np
    import pyarrow as pa

    array = ids.combine_chunks() if isinstance(ids, pa.ChunkedArray) else ids
    array = array.cast(pa.large_string())
    _validity, offsets_buffer, data_buffer = array.buffers()
    offsets = np.frombuffer(offsets_buffer, dtype=np.int64)[array.offset : array.offset + len(array) + 1]
    if data_buffer is None or not len(array):
        return np.zeros(len(array), dtype=np.int64)
    data = np.frombuffer(data_buffer, dtype=np.uint8)
    ends = offsets[1:]
    lengths = ends - offsets[:-1]
    last = np.where(lengths > 0, data[np.clip(ends - 1, 0, len(data) - 1)], 0).astype(np.int64)
    second = np.where(lengths > 1, data[np.clip(ends - 2, 0, len(data) - 1)], 0).astype(np.int64)
    return (last * 31 + second) % parts


def _parquet_file(path: Path, compact: bool) -> pq.ParquetFile:
    """Open a Parquet file; ``compact`` reads the low-cardinality string columns as dictionaries.

    Those are :data:`xero.normalize.DICTIONARY_COLUMNS` (``tenant_id``, statuses, codes …): one
    copy of each distinct value instead of one per row.
    """
    import pyarrow.parquet as pq

    from xero.normalize import DICTIONARY_COLUMNS

    dictionaries = (
        [name for name in pq.read_schema(path).names if name in DICTIONARY_COLUMNS] if compact else None
    )
    return pq.ParquetFile(path, read_dictionary=dictionaries)


def _row_groups(path: Path, columns: list[str] | None, *, compact: bool = False) -> Iterator[pa.Table]:
    """Yield the row groups of a Parquet file (only ``columns``, when given), one at a time.

    ``compact`` reads low-cardinality strings as dictionaries (see :func:`_parquet_file`).
    """
    with _parquet_file(path, compact) as file:
        for index in range(file.num_row_groups):
            group = file.read_row_group(index, columns=columns, use_threads=False)
            if group.num_rows:
                yield group


class _Following:
    """Reads a child table alongside its parents: the rows up to a given parent ``_seq``.

    Children are written in their parents' order, so their ``_seq`` never decreases.
    """

    def __init__(self, path: Path, columns: list[str] | None) -> None:
        self._groups = _row_groups(path, columns, compact=True)
        self._carry: list[pa.Table] = []
        self._done = False

    def until(self, high: int) -> pa.Table | None:
        """Return the rows with ``_seq <= high`` not returned before (``None`` when there are none)."""
        import numpy as np
        import pyarrow as pa

        taken: list[pa.Table] = []
        while True:
            if not self._carry:
                if self._done:
                    break
                group = next(self._groups, None)
                if group is None:
                    self._done = True
                    break
                self._carry.append(group)
            head = self._carry[0]
            seqs = head["_seq"].to_numpy()
            cut = int(np.searchsorted(seqs, high, side="right"))
            if cut == head.num_rows:
                taken.append(self._carry.pop(0))
                continue
            if cut:
                taken.append(head.slice(0, cut))
                self._carry[0] = head.slice(cut)
            break
        if not taken:
            return None
        return taken[0] if len(taken) == 1 else pa.concat_tables(taken)


def _chunks(
    entity: Entity,
    normalized_dir: Path,
    columns: dict[str, list[str] | None],
    chunk_rows: int,
) -> Iterator[tuple[pa.Table, dict[str, pa.Table]]]:
    """Yield parent rows about ``chunk_rows`` at a time, each with its children's rows.

    Only ``columns`` of each table are read (``None``: every column), low-cardinality strings as
    dictionaries; parents and children are streamed side by side in ``_seq`` order, so memory stays
    bounded by the chunk.
    """
    import pyarrow as pa

    from xero.normalize import table_path

    followers = {
        child.name: _Following(table_path(normalized_dir, child.name), columns[child.name])
        for child in entity.children
    }
    schemas: dict[str, pa.Table] = {}
    pending: list[pa.Table] = []
    pending_rows = 0

    def emit() -> tuple[pa.Table, dict[str, pa.Table]]:
        parents = pending[0] if len(pending) == 1 else pa.concat_tables(pending)
        high = parents["_seq"][-1].as_py()
        children = {}
        for name, follower in followers.items():
            rows = follower.until(high)
            if rows is None:
                rows = schemas[name]
            children[name] = rows
        return parents, children

    for child in entity.children:
        with _parquet_file(table_path(normalized_dir, child.name), compact=True) as file:
            schemas[child.name] = file.schema_arrow.empty_table()
        if columns[child.name] is not None:
            schemas[child.name] = schemas[child.name].select(columns[child.name])
    parents = table_path(normalized_dir, entity.table.name)
    for group in _row_groups(parents, columns[entity.table.name], compact=True):
        pending.append(group)
        pending_rows += group.num_rows
        if pending_rows >= chunk_rows:
            yield emit()
            pending, pending_rows = [], 0
    if pending:
        yield emit()


def _without(rows: pa.Table, seqs: pa.Array) -> pa.Table:
    """Return ``rows`` without those whose ``_seq`` is in ``seqs``."""
    import pyarrow.compute as pc

    if not len(seqs):
        return rows
    removed = pc.is_in(rows["_seq"], value_set=seqs)
    return rows.filter(pc.invert(removed)) if pc.any(removed).as_py() else rows


def _merge(into: dict[int, list[str]], found: dict[int, list[str]]) -> None:
    for seq, reasons in found.items():
        into.setdefault(seq, []).extend(reasons)


def _link_or_copy(source: Path, target: Path) -> None:
    """Make ``target`` hold the same bytes as ``source`` (a hard link where the filesystem allows)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    target.unlink(missing_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def _context(gx: Any) -> Any:
    """Return an in-memory context: no analytics, no progress bars, no Data Docs site of its own."""
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
    )
    return gx.get_context(mode="ephemeral", project_config=config)


@dataclass(frozen=True)
class DocsLabel:
    """Whose validation a Data Docs page reports: the organisation and the run.

    :param tenant_id: the organisation's id.
    :param run_id: the Airflow run (or any label of this validation).
    :param tenant_name: the organisation's name, shown in the index.
    """

    tenant_id: str
    run_id: str
    tenant_name: str | None = None


def _publish_docs(
    site: Path, label: DocsLabel | None, result: ValidationResult, suites: dict[str, _Suite], failed: bool
) -> Path:
    """Publish ``result`` and what each expectation saw as this validation's page of the Data Docs site."""
    from datetime import UTC

    label = label or DocsLabel("unknown", f"manual__{datetime.now(UTC):%Y-%m-%dT%H:%M:%S}")
    report = Report(
        tenant_id=label.tenant_id,
        tenant_name=label.tenant_name,
        entity=result.entity,
        run_id=label.run_id,
        status="failed" if failed else "quarantined" if result.quarantined else "passed",
        records=result.records,
        kept=result.records - result.quarantined,
        quarantined=result.quarantined,
        quarantined_by_normalizer=result.quarantined_by_normalizer,
        quarantined_by_validator=result.quarantined_by_validator,
        duplicates_dropped=result.duplicates_dropped,
        bad_share=result.bad_share,
        max_bad_share=result.max_bad_share,
        rows=dict(result.rows),
        reasons=dict(result.reasons),
        warnings=_warnings(result),
        checks=[outcome for suite in suites.values() for outcome in suite.tally.outcomes],
    )
    return publish(site, report)


def validate_tables(
    entity: Entity | str,
    normalized_dir: Path,
    out_dir: Path,
    max_bad_share: float = 0.05,
    data_docs_dir: Path | None = None,
    *,
    max_bad_rows: int | None = DEFAULT_MAX_BAD_ROWS,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    docs_label: DocsLabel | None = None,
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
    :param data_docs_dir: when given, the Data Docs site (:mod:`xero.datadocs`) this validation's page is
        published into, whether or not the run passes.
    :param max_bad_rows: quarantined records always allowed, whatever their share (``None``: the
        share alone decides).
    :param chunk_rows: parent rows validated at once.
    :param docs_label: the organisation and run the page reports (default: an unknown organisation, now).
    :raises XeroValidationFailed: when ``quarantined / records`` exceeds ``max_bad_share`` and
        ``quarantined`` exceeds ``max_bad_rows``.
    """
    from xero.normalize import system_memory_pool

    if isinstance(entity, str):
        entity = get_entity(entity)
    if not 0 <= max_bad_share <= 1:
        raise ValueError(f"max_bad_share must be between 0 and 1, got {max_bad_share!r}")
    if max_bad_rows is not None and max_bad_rows < 0:
        raise ValueError(f"max_bad_rows must be 0 or more, got {max_bad_rows!r}")
    with system_memory_pool():
        return _validate(
            entity,
            Path(normalized_dir),
            Path(out_dir),
            max_bad_share,
            max_bad_rows,
            data_docs_dir,
            chunk_rows,
            docs_label,
        )


def _validate(
    entity: Entity,
    normalized_dir: Path,
    out_dir: Path,
    max_bad_share: float,
    max_bad_rows: int | None,
    data_docs_dir: Path | None,
    chunk_rows: int,
    docs_label: DocsLabel | None,
) -> ValidationResult:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from xero.normalize import QUARANTINE_DIR, ParquetSink, quarantine_path, table_path
    from xero.schema import QUARANTINE_SCHEMA, arrow_schema

    source_quarantine = quarantine_path(normalized_dir)
    if source_quarantine.exists():
        normalizer_quarantine = pq.read_table(source_quarantine, schema=QUARANTINE_SCHEMA)
    else:
        normalizer_quarantine = QUARANTINE_SCHEMA.empty_table()
    winners = _winners(entity, table_path(normalized_dir, entity.table.name), normalizer_quarantine)

    gx = _import_gx()
    context = _context(gx)
    suites = {table.name: _Suite(gx, context, entity, table) for table in entity.tables}
    rules = _RULES.get(entity.name, ())
    parent_name = entity.table.name
    cursor = next((c.name for c in entity.table.columns if c.source == entity.cursor_field), None)

    # Pass 1: the columns the checks need (never ``_raw``), chunk by chunk; remember the failures.
    reads: dict[str, list[str] | None] = {}
    for table in entity.tables:
        needed = set(suites[table.name].columns)
        for rule in rules:
            needed.update(rule.reads.get(table.name, ()))
        if table is entity.table and cursor:
            needed.add(cursor)
        reads[table.name] = sorted(needed)
    bad: dict[int, list[str]] = {}
    warned: dict[int, list[str]] = {}
    max_cursor: datetime | None = None
    for parents, children in _chunks(entity, normalized_dir, reads, chunk_rows):
        parents = _without(parents, winners.dropped)
        children = {name: _without(rows, winners.dropped) for name, rows in children.items()}
        helpers: dict[str, pa.Array] = {}
        for rule in rules:
            if rule.helpers is not None:
                helpers.update(rule.helpers(parents, children))
        found, warnings = suites[parent_name].failures(parents, helpers, "")
        for name, child_rows in children.items():
            child_found, child_warnings = suites[name].failures(child_rows, {}, f"{name}: ")
            _merge(found, child_found)
            _merge(warnings, child_warnings)
        _merge(bad, found)
        _merge(warned, warnings)
        if cursor is not None and parents.num_rows:
            good = _without(parents, pa.array(sorted(found), type=pa.int64()))
            chunk_max = pc.max(good[cursor]).as_py() if good.num_rows else None
            if chunk_max is not None and (max_cursor is None or chunk_max > max_cursor):
                max_cursor = chunk_max

    # Pass 2: copy the kept rows (a plain link when a table loses none) and quarantine the failures.
    bad_seqs = pa.array(sorted(bad), type=pa.int64())
    removed = pa.concat_arrays([bad_seqs, winners.dropped.cast(pa.int64())])
    files: dict[str, Path] = {table.name: table_path(out_dir, table.name) for table in entity.tables}
    files[QUARANTINE_DIR] = quarantine_path(out_dir)
    rows: Counter[str] = Counter({table.name: 0 for table in entity.tables})
    copies = {}
    for table in entity.tables:
        source = table_path(normalized_dir, table.name)
        if len(removed):
            copies[table.name] = (files[table.name], arrow_schema(table))
        else:
            _link_or_copy(source, files[table.name])
            rows[table.name] = pq.ParquetFile(source).metadata.num_rows
    copies[QUARANTINE_DIR] = (files[QUARANTINE_DIR], QUARANTINE_SCHEMA)

    reasons: Counter[str] = Counter()
    for reason in normalizer_quarantine["reason"].to_pylist():
        reasons.update(reason_key(reason))
    validator_bad = 0
    id_column = entity.table.primary_key[0]
    sink = ParquetSink(copies)
    try:
        sink.write(QUARANTINE_DIR, normalizer_quarantine)
        for table in entity.tables:
            if table.name not in copies:
                continue
            for group in _row_groups(table_path(normalized_dir, table.name), None):
                kept = _without(group, removed)
                sink.write(table.name, kept)
                rows[table.name] += kept.num_rows
                if table is not entity.table or not bad:
                    continue
                failed = group.filter(pc.is_in(group["_seq"], value_set=bad_seqs))
                if not failed.num_rows:
                    continue
                texts = ["; ".join(dict.fromkeys(bad[seq])) for seq in failed["_seq"].to_pylist()]
                for text in texts:
                    reasons.update(reason_key(text))
                validator_bad += failed.num_rows
                count = failed.num_rows
                sink.write(
                    QUARANTINE_DIR,
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
                    ),
                )
    finally:
        sink.close()

    warning_counts: Counter[str] = Counter()
    warned_kept = 0
    for seq, texts in warned.items():
        if seq not in bad:
            warned_kept += 1
            warning_counts.update(key for text in dict.fromkeys(texts) for key in reason_key(text))
    normalizer_bad = normalizer_quarantine.num_rows
    records = winners.kept + normalizer_bad
    quarantined = normalizer_bad + validator_bad
    result = ValidationResult(
        entity=entity.name,
        records=records,
        quarantined=quarantined,
        quarantined_by_normalizer=normalizer_bad,
        quarantined_by_validator=validator_bad,
        duplicates_dropped=winners.duplicates,
        rows=dict(rows),
        bad_share=quarantined / records if records else 0.0,
        max_bad_share=max_bad_share,
        reasons=dict(reasons.most_common()),
        max_cursor=max_cursor,
        files={name: str(path) for name, path in files.items()},
        max_bad_rows=max_bad_rows,
        warned=warned_kept,
        warnings=dict(warning_counts.most_common()),
    )
    failed = result.over_threshold
    if data_docs_dir is not None:
        page = _publish_docs(Path(data_docs_dir), docs_label, result, suites, failed)
        result = dataclasses.replace(result, data_docs=str(page))
    if failed:
        raise XeroValidationFailed(result)
    return result
