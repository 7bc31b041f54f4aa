"""The validation reports ("Data Docs"): one static, self-contained HTML site under the data directory.

Every validation of one organisation × entity publishes a report page into the site, and the site's index lists
the organisations (by name) × entities × their last runs (:data:`DEFAULT_KEEP_RUNS`, or ``XERO_DATA_DOCS_RUNS``);
older reports are pruned. Pages are rendered here from the Great Expectations validation results (what each
expectation evaluated and how many rows failed it) and the quarantine counts, with inline CSS and no script or
external asset, so they render the same offline, from disk or served by the Airflow api-server
(:mod:`xero.plugin`). Site layout::

    <data_dir>/data_docs/index.html
    <data_dir>/data_docs/<tenant>/<entity>/<run>.html   (the report)
    <data_dir>/data_docs/<tenant>/<entity>/<run>.json   (the figures behind it)
    <data_dir>/data_docs/<tenant>/<entity>/runs.json    (the runs kept; the index is built from these)

Concurrent validations of one run publish side by side: each writes its own files, and the index is rebuilt under
an exclusive ``flock`` on ``<site>/.lock`` from every ``runs.json`` present, so the last writer's index lists them
all.
Jinja2 is imported when a page is rendered, never at import.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_KEEP_RUNS",
    "KEEP_RUNS_ENV",
    "CheckTally",
    "IndexEntry",
    "Report",
    "keep_runs",
    "publish",
    "report_page",
    "site_dir",
]

#: Runs kept per organisation × entity when ``XERO_DATA_DOCS_RUNS`` is not set.
DEFAULT_KEEP_RUNS = 10
#: Environment variable overriding :data:`DEFAULT_KEEP_RUNS`.
KEEP_RUNS_ENV = "XERO_DATA_DOCS_RUNS"
#: The site's folder under the data directory.
SITE_FOLDER = "data_docs"
#: Reasons listed on a report page.
REPORT_REASONS = 20
#: The list of an organisation × entity's runs in its folder, which the index is built from.
RUNS_FILE = "runs.json"

_TEMPLATES = Path(__file__).with_name("templates") / "datadocs"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def path_part(text: str) -> str:
    """Return ``text`` usable as one path component (run ids contain ``:`` and ``+``)."""
    return _UNSAFE.sub("_", text)


def site_dir(data_dir: str | Path) -> Path:
    """Return the Data Docs site of a data directory."""
    return Path(data_dir) / SITE_FOLDER


def report_page(tenant_id: str, entity: str, run_id: str) -> str:
    """Return the report page of one validation, relative to the site root (a URL path, ``/``-separated)."""
    return f"{path_part(tenant_id)}/{path_part(entity)}/{path_part(run_id)}.html"


def keep_runs() -> int:
    """Return how many runs per organisation × entity the site keeps (``XERO_DATA_DOCS_RUNS``, default 10)."""
    raw = os.environ.get(KEEP_RUNS_ENV, "").strip()
    if not raw:
        return DEFAULT_KEEP_RUNS
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(
            f"{KEEP_RUNS_ENV} must be a whole number of runs (at least 1), got {raw!r}"
        ) from None
    if value < 1:
        raise ValueError(f"{KEEP_RUNS_ENV} must be at least 1, got {value}")
    return value


@dataclass
class CheckOutcome:
    """What one expectation saw over a whole validation (all its chunks).

    :param table: the table it checks.
    :param expectation: the expectation and its columns, e.g. ``expect_column_values_to_not_be_null(total)``.
    :param severity: ``error`` (failing rows are quarantined) or ``warning`` (they load, counted).
    :param evaluated: rows evaluated.
    :param failed: rows that failed it.
    """

    table: str
    expectation: str
    severity: str = "error"
    evaluated: int = 0
    failed: int = 0


class CheckTally:
    """Adds up one suite's Great Expectations results chunk by chunk, per expectation, in suite order."""

    def __init__(self, table: str, checks: Sequence[Any]) -> None:
        """:param checks: the suite's checks (``expectation`` with its ``id``, ``label``, optional ``severity``)."""
        self._by_id: dict[str, CheckOutcome] = {}
        self.outcomes: list[CheckOutcome] = []
        for check in checks:
            outcome = CheckOutcome(table, check.label, str(getattr(check, "severity", "error")))
            self._by_id[str(check.expectation.id)] = outcome
            self.outcomes.append(outcome)

    def add(self, validation: Any) -> None:
        """Count one ``ExpectationSuiteValidationResult``: rows evaluated and failing per expectation."""
        for result in validation.results:
            outcome = self._by_id.get(str(result.expectation_config.id))
            if outcome is None:
                continue
            figures = result.result or {}
            outcome.evaluated += int(figures.get("element_count") or 0)
            outcome.failed += int(figures.get("unexpected_count") or 0)


@dataclass
class Report:
    """The figures of one validation of one organisation × entity, as published.

    :param status: ``passed`` (nothing held back), ``quarantined`` (some records held back, within the limit)
        or ``failed`` (more than the limit: the run failed and loaded nothing of this entity).
    """

    tenant_id: str
    tenant_name: str | None
    entity: str
    run_id: str
    status: str
    records: int
    kept: int
    quarantined: int
    quarantined_by_normalizer: int
    quarantined_by_validator: int
    duplicates_dropped: int
    bad_share: float
    max_bad_share: float
    rows: dict[str, int]
    reasons: dict[str, int]
    warnings: dict[str, int] = field(default_factory=dict)
    checks: list[CheckOutcome] = field(default_factory=list)
    validated_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    @property
    def organisation(self) -> str:
        """The organisation's name, or its id when the name is unknown."""
        return self.tenant_name or self.tenant_id

    @property
    def page(self) -> str:
        """This report's page, relative to the site root."""
        return report_page(self.tenant_id, self.entity, self.run_id)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Report:
        data = json.loads(text)
        data["checks"] = [CheckOutcome(**check) for check in data.get("checks", [])]
        return cls(**data)


def publish(site: str | Path, report: Report, keep: int | None = None) -> Path:
    """Write ``report``'s page into ``site``, prune the organisation × entity to its ``keep`` latest runs and
    rebuild the index; return the page's path.

    Each organisation × entity folder keeps a ``runs.json`` listing its runs, so the index is rebuilt from one
    small file per organisation × entity, not from every report.

    :param keep: runs kept per organisation × entity (default :func:`keep_runs`).
    """
    site = Path(site)
    keep = keep_runs() if keep is None else keep
    page = site / report.page
    page.parent.mkdir(parents=True, exist_ok=True)
    with _locked(site):
        _write(page.with_suffix(".json"), report.to_json())
        _write(page, _render("run.html", report=report, index="../../index.html", reasons=_top(report)))
        runs = _prune(page.parent, keep)
        _write(page.parent / RUNS_FILE, json.dumps([asdict(run) for run in runs], indent=1))
        _write(site / "index.html", render_index(_entries(site)))
    return page


@dataclass(frozen=True)
class IndexEntry:
    """One run of one organisation × entity, as the index shows it."""

    tenant_id: str
    organisation: str
    entity: str
    run_id: str
    page: str
    status: str
    validated_at: str
    records: int
    quarantined: int

    @classmethod
    def of(cls, report: Report) -> IndexEntry:
        return cls(
            report.tenant_id,
            report.organisation,
            report.entity,
            report.run_id,
            report.page,
            report.status,
            report.validated_at,
            report.records,
            report.quarantined,
        )


def render_index(entries: Iterable[IndexEntry]) -> str:
    """Return the index page: organisations (by name) × entities, each with its runs, newest first."""
    rows: dict[tuple[str, str], list[IndexEntry]] = {}
    for entry in entries:
        rows.setdefault((entry.tenant_id, entry.entity), []).append(entry)
    table = []
    for runs in rows.values():
        runs.sort(key=lambda r: r.validated_at, reverse=True)
        table.append(_IndexRow(runs[0].organisation, runs[0].entity, runs))
    table.sort(key=lambda row: (row.organisation.casefold(), row.entity))
    columns = max((len(row.runs) for row in table), default=0)
    return _render("index.html", rows=table, columns=columns)


@dataclass
class _IndexRow:
    organisation: str
    entity: str
    runs: list[IndexEntry]


def _top(report: Report) -> list[tuple[str, int]]:
    return sorted(report.reasons.items(), key=lambda item: (-item[1], item[0]))[:REPORT_REASONS]


def _entries(site: Path) -> Iterator[IndexEntry]:
    for path in sorted(site.glob(f"*/*/{RUNS_FILE}")):
        try:
            yield from (IndexEntry(**entry) for entry in json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            continue  # unreadable: the index lists what it can read


def _prune(folder: Path, keep: int) -> list[IndexEntry]:
    """Remove the reports of one organisation × entity beyond the ``keep`` most recently validated; return the
    index entries of those kept, newest first."""
    dated = []
    for path in folder.glob("*.json"):
        if path.name == RUNS_FILE:
            continue
        try:
            dated.append((IndexEntry.of(Report.from_json(path.read_text(encoding="utf-8"))), path))
        except (OSError, ValueError, TypeError, KeyError):
            continue
    dated.sort(key=lambda item: item[0].validated_at, reverse=True)
    for _, path in dated[keep:]:
        path.with_suffix(".html").unlink(missing_ok=True)
        path.unlink(missing_ok=True)
    return [entry for entry, _ in dated[:keep]]


def _render(template: str, **values: Any) -> str:
    return _environment().get_template(template).render(**values)


@functools.cache
def _environment() -> Any:
    """Return the templates' environment (compiled once per process)."""
    import jinja2

    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(_TEMPLATES),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    environment.filters["number"] = lambda value: f"{value:,}"
    environment.filters["percent"] = lambda value: f"{value:.1%}"
    return environment


def _write(path: Path, text: str) -> None:
    """Write ``path`` atomically: a reader (the api-server) never sees half a page."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


@contextlib.contextmanager
def _locked(site: Path) -> Iterator[None]:
    site.mkdir(parents=True, exist_ok=True)
    with (site / ".lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
