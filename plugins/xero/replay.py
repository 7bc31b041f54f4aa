"""Quarantine review and replay: list what was held back, and load what passes the current rules.

``python -m xero quarantine list|replay`` (see :mod:`xero.__main__`) calls these. Quarantined rows keep the
record's JSON as Xero sent it (``_raw``), so a record quarantined by a rule that was too strict, or by a parser
that has since learnt a new format, is not lost when the watermark moves past it: a replay re-validates it with
the current normaliser and suites and loads it if it passes.

A replay works per tenant × entity, on the latest quarantined read of each record (older reads of the same
record go with it): records that pass are merged like a sync's (never over a newer stored version, see
:meth:`xero.warehouse.Warehouse.load_replayed`), their quarantine rows are removed and their rows' stale marks
cleared, all in one transaction; records that still fail stay quarantined with the reason they fail for now.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xero.entities import get_entity

if TYPE_CHECKING:
    from xero.warehouse import Warehouse
    from xero.warehouse.loader import ReplayLoadResult

log = logging.getLogger(__name__)

#: Rows shown by :func:`list_quarantine` unless told otherwise.
DEFAULT_LIMIT = 50


@dataclass(frozen=True)
class QuarantineFilter:
    """Which quarantine rows to list or replay; every given condition must hold.

    :param tenant_id: the organisation.
    :param entity: the entity's registry name (``invoices``…).
    :param reason: a substring of the reason, case-insensitive.
    :param run_id: the run that quarantined the rows.
    """

    tenant_id: str | None = None
    entity: str | None = None
    reason: str | None = None
    run_id: str | None = None

    def __post_init__(self) -> None:
        if self.entity is not None:
            get_entity(self.entity)  # an unknown entity is named with the known ones

    def where(self) -> tuple[str, list[Any]]:
        """Return the SQL condition over ``_quarantine`` and its parameters."""
        clauses, params = ["true"], []
        for column, value in (
            ("tenant_id", self.tenant_id),
            ("entity", self.entity),
            ("_run_id", self.run_id),
        ):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if self.reason:
            clauses.append("strpos(lower(reason), ?) > 0")
            params.append(self.reason.lower())
        return " AND ".join(clauses), params


@dataclass(frozen=True)
class QuarantineListing:
    """What :func:`list_quarantine` found.

    :param counts: ``(tenant_id, entity, reason, rows)``, most rows first.
    :param rows: ``(tenant_id, entity, record_id, run_id, quarantined_at, reason)``, newest first.
    :param total: rows matching the filter.
    """

    counts: list[tuple[str, str, str, int]]
    rows: list[tuple[Any, ...]]
    total: int


def list_quarantine(
    warehouse: Warehouse, where: QuarantineFilter, limit: int = DEFAULT_LIMIT
) -> QuarantineListing:
    """Return the quarantine rows matching ``where``: counts per tenant × entity × reason, and the newest rows."""
    condition, params = where.where()
    counts = [
        (tenant, entity, reason, int(n))
        for tenant, entity, reason, n in warehouse.query(
            f"SELECT tenant_id, entity, reason, count(*) FROM {{{{ schema }}}}._quarantine WHERE {condition} "
            "GROUP BY 1, 2, 3 ORDER BY 4 DESC, 1, 2, 3",
            params,
        )
    ]
    rows = warehouse.query(
        "SELECT tenant_id, entity, record_id, _run_id, _quarantined_at, reason FROM {{ schema }}._quarantine "
        f"WHERE {condition} ORDER BY _quarantined_at DESC, _run_id DESC, row_index LIMIT {int(limit)}",
        params,
    )
    return QuarantineListing(counts=counts, rows=rows, total=sum(n for *_, n in counts))


@dataclass(frozen=True)
class _Quarantined:
    run_id: str
    row_index: int
    record_id: str | None
    raw: str | None
    reason: str


@dataclass
class ReplayOutcome:
    """What the replay of one tenant × entity did.

    :param candidates: records re-validated (the latest quarantined read of each).
    :param loaded: what loading the records that passed changed (``None`` when none passed).
    :param still_failing: records still quarantined, with the reason they fail for now.
    :param unreadable: quarantine rows whose ``_raw`` is no JSON record (a malformed page): left as they are.
    """

    tenant_id: str
    entity: str
    candidates: int = 0
    loaded: ReplayLoadResult | None = None
    still_failing: dict[str, str] = field(default_factory=dict)
    unreadable: int = 0


def replay(
    warehouse: Warehouse, where: QuarantineFilter, run_id: str | None = None, work_dir: Path | None = None
) -> list[ReplayOutcome]:
    """Re-validate the quarantined records matching ``where`` with the current rules and load those that pass.

    :param run_id: stored on the rows written (default ``replay__<UTC time>``).
    :param work_dir: where the temporary files go (default: a temporary folder, removed afterwards).
    :return: one outcome per tenant × entity that had matching rows.
    """
    run_id = run_id or f"replay__{datetime.now(UTC):%Y-%m-%dT%H:%M:%S}"
    condition, params = where.where()
    groups = warehouse.query(
        f"SELECT DISTINCT tenant_id, entity FROM {{{{ schema }}}}._quarantine WHERE {condition} ORDER BY 1, 2",
        params,
    )
    outcomes = []
    with _folder(work_dir) as folder:
        for number, (tenant_id, entity) in enumerate(groups):
            outcomes.append(
                _replay_one(warehouse, where, tenant_id, entity, run_id, folder / f"{number:04d}-{entity}")
            )
    return outcomes


@contextmanager
def _folder(work_dir: Path | None) -> Iterator[Path]:
    if work_dir is not None:
        Path(work_dir).mkdir(parents=True, exist_ok=True)
        yield Path(work_dir)
        return
    with tempfile.TemporaryDirectory(prefix="xero-replay-") as folder:
        yield Path(folder)


def _replay_one(
    warehouse: Warehouse, where: QuarantineFilter, tenant_id: str, entity: str, run_id: str, folder: Path
) -> ReplayOutcome:
    """Replay the matching quarantine rows of one tenant × entity (see :func:`replay`)."""
    import pyarrow.parquet as pq

    from xero.normalize import normalize_pages, quarantine_path
    from xero.validate import validate_tables

    spec = get_entity(entity)
    condition, params = where.where()
    found = [
        _Quarantined(quarantine_run, int(row_index), record_id, raw, reason)
        for quarantine_run, row_index, record_id, raw, reason in warehouse.query(
            "SELECT _run_id, row_index, record_id, _raw, reason FROM {{ schema }}._quarantine "
            f"WHERE {condition} AND tenant_id = ? AND entity = ? "
            "ORDER BY _quarantined_at, _run_id, row_index",
            [*params, tenant_id, entity],
        )
    ]
    # The latest read of each record decides; older reads of it are settled with it.
    latest: dict[str, _Quarantined] = {}
    older: dict[str, list[_Quarantined]] = {}
    singles: list[_Quarantined] = []
    for row in found:
        if row.record_id is None:
            singles.append(row)
            continue
        if row.record_id in latest:
            older.setdefault(row.record_id, []).append(latest[row.record_id])
        latest[row.record_id] = row
    outcome = ReplayOutcome(tenant_id=tenant_id, entity=entity)
    candidates: list[_Quarantined] = []
    for row in [*latest.values(), *singles]:
        if _is_record(row.raw):
            candidates.append(row)
        else:
            outcome.unreadable += 1
    outcome.candidates = len(candidates)
    if not candidates:
        return outcome

    folder.mkdir(parents=True, exist_ok=True)
    page = folder / "page-00001.json"
    page.write_text("[" + ",".join(row.raw or "" for row in candidates) + "]", encoding="utf-8")
    normalize_pages(spec, tenant_id, [page], folder / "normalized")
    validated = folder / "validated"
    validate_tables(spec, folder / "normalized", validated, max_bad_share=1.0, max_bad_rows=None)
    failed = pq.read_table(quarantine_path(validated), columns=["_seq", "reason"]).to_pylist()
    reasons = {int(item["_seq"]): item["reason"] for item in failed}
    resolved: list[tuple[str, int]] = []
    failing: list[tuple[str, int, str]] = []
    for seq, row in enumerate(candidates):
        if seq in reasons:
            failing.append((row.run_id, row.row_index, reasons[seq]))
            outcome.still_failing[row.record_id or f"{row.run_id}#{row.row_index}"] = reasons[seq]
            continue
        resolved.append((row.run_id, row.row_index))
        resolved += [(old.run_id, old.row_index) for old in older.get(row.record_id or "", [])]
    outcome.loaded = warehouse.load_replayed(tenant_id, spec, validated, run_id, resolved, failing)
    return outcome


def _is_record(raw: str | None) -> bool:
    """Return whether ``raw`` is one JSON object (a record), as opposed to a malformed page or nothing."""
    if not raw:
        return False
    try:
        return isinstance(json.loads(raw), dict)
    except ValueError:
        return False
