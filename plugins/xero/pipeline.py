"""The steps of one sync, as plain functions: plan, extract, transform, load, marts.

Each step takes and returns small JSON-able dicts (they travel through XCom) and passes data through files under
the run's data directory, never through XCom. Operators and DAGs call these; nothing here knows about Airflow's
task context, so the steps are easy to test and to reuse outside a DAG. Heavy libraries are imported inside the
functions that need them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import re
import shutil
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from xero.entities import ENTITIES, get_entity

log = logging.getLogger(__name__)

#: Default share of bad records in one tenant × entity above which a run fails instead of quarantining.
DEFAULT_MAX_BAD_SHARE = 0.05


def _safe(part: str) -> str:
    """Return ``part`` usable as one path component (run ids contain ``:`` and ``+``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", part)


def work_dir(data_dir: str | Path, run_id: str, tenant_id: str, entity: str) -> Path:
    """Return the directory holding one tenant × entity's files for one run."""
    return Path(data_dir) / _safe(run_id) / _safe(tenant_id) / _safe(entity)


def data_docs_dir(data_dir: str | Path, tenant_id: str, entity: str) -> Path:
    """Return where the latest validation of ``tenant_id`` × ``entity`` keeps its Great Expectations Data Docs.

    Outside the run's work directory (removed once the load commits), so the report of the latest run stays.
    """
    return Path(data_dir) / "data_docs" / _safe(tenant_id) / entity


def _reset_dir(path: Path) -> Path:
    """Empty ``path`` (a retried task starts from scratch) and return it.

    A committed load removes its run's folders once they are empty (:func:`load`), possibly between the
    creation of a parent and of ``path`` here: creating the folders is then simply tried again.
    """
    shutil.rmtree(path, ignore_errors=True)
    for attempt in range(3):
        try:
            path.mkdir(parents=True)
            break
        except FileNotFoundError:
            if attempt == 2:
                raise
    return path


def plan(
    xero_conn_id: str,
    warehouse_conn_id: str,
    schema: str,
    entities: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """Return one target per tenant × entity with the committed watermark to read changes from.

    Also creates or migrates the warehouse tables, so every later step can rely on them.
    """
    from xero.hooks import XeroHook
    from xero.warehouse import Warehouse

    names = list(entities or ENTITIES)
    for name in names:
        get_entity(name)  # fail on an unknown entity before any call is spent
    tenants = XeroHook(xero_conn_id=xero_conn_id).list_tenants()
    warehouse = Warehouse.from_conn_id(warehouse_conn_id, schema=schema)
    warehouse.ensure_schema()
    watermarks = warehouse.get_watermarks([tenant.tenant_id for tenant in tenants])
    targets = []
    for tenant in tenants:
        for name in names:
            mark = watermarks.get((tenant.tenant_id, name))
            targets.append(
                {
                    "tenant_id": tenant.tenant_id,
                    "tenant_name": tenant.tenant_name,
                    "entity": name,
                    "modified_since": mark.isoformat() if mark else None,
                }
            )
    log.info("Planned %d targets: %d tenants × %d entities", len(targets), len(tenants), len(names))
    return targets


def _write_page(path: Path, body: bytes) -> None:
    """Write one page's records (a JSON array, as Xero sent it) atomically: a killed task never leaves half a page."""
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(body)
    os.replace(tmp, path)


def _safe_cap(last: Any) -> datetime | None:
    """Return the latest watermark an interrupted read may commit, or ``None`` when any is safe.

    A read stopped in its first pass with no move detected may commit everything it landed (pages come in
    ``UpdatedDateUTC`` order). A pending recovery (``Page.recovery_since``) or an unfinished recovery pass
    means records before that point may still be unread: the watermark must not pass it.
    """
    if last is None:
        return None
    caps: list[datetime] = []
    if last.recovery_since is not None:
        caps.append(last.recovery_since)
    if last.pass_number > 1:
        caps.append(last.modified_since or datetime.min.replace(tzinfo=UTC))
    return min(caps) if caps else None


def _trim_landing(landing: Path, cursor_field: str, cap: datetime) -> int:
    """Drop landed records whose cursor is after ``cap`` (the next run reads them again); return how many.

    Kept records are written back as the JSON text Xero sent, so nothing (money least of all) is re-encoded.
    """
    import msgspec

    from xero.client import parse_updated

    def keep(raw: msgspec.Raw) -> bool:
        record = msgspec.json.decode(raw)
        when = parse_updated(record.get(cursor_field)) if isinstance(record, dict) else None
        return when is None or when <= cap

    dropped = 0
    for path in sorted(landing.glob("page-*.json")):
        records = msgspec.json.decode(path.read_bytes(), type=list[msgspec.Raw])
        kept = [raw for raw in records if keep(raw)]
        if len(kept) != len(records):
            dropped += len(records) - len(kept)
            _write_page(path, b"[" + b",".join(kept) + b"]")
    return dropped


def extract(
    xero_conn_id: str,
    tenant_id: str,
    entity: str,
    modified_since: str | None,
    data_dir: str | Path,
    run_id: str,
    tenant_name: str | None = None,
    *,
    hook_options: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Read the entity's changes since ``modified_since`` into landing files, one JSON file a page.

    When the tenant's daily call limit is reached the read stops cleanly: the pages already landed are kept
    (records after a pending recovery point are dropped, so the watermark committed downstream never passes
    a point that still had to be re-read), the result carries ``stopped`` with the time calls resume, and
    the next run goes on from the committed watermark.

    The tenant's calls are paced by a governor whose state is shared by every task on the host through
    ``XERO_GOVERNOR_DIR`` (default ``<data_dir>/_governor``), so parallel extracts of one tenant split its
    allowance instead of racing for it.

    :param hook_options: keyword arguments for :class:`~xero.hooks.XeroHook` (``sleep``, ``clock``,
        ``retry_wait``, ``governor_dir``), mostly for tests.
    """
    from xero.exceptions import XeroDailyLimitReached
    from xero.governor import STATE_DIR_ENV
    from xero.hooks import XeroHook

    spec = get_entity(entity)
    since = datetime.fromisoformat(modified_since) if modified_since else None
    base = work_dir(data_dir, run_id, tenant_id, entity)
    landing = _reset_dir(base / "landing")
    options = {"governor_dir": os.environ.get(STATE_DIR_ENV) or Path(data_dir) / "_governor"}
    hook = XeroHook(xero_conn_id=xero_conn_id, **{**options, **dict(hook_options or {})})
    pages = records = 0
    last = None
    stopped: str | None = None
    try:
        for page in hook.iter_pages(tenant_id, spec, since):
            pages += 1
            records += page.count
            _write_page(landing / f"page-{pages:05d}.json", page.body)
            last = page
    except XeroDailyLimitReached as exc:
        resume = exc.resume_at
        stopped = "daily limit reached, resumes after " + (
            f"{resume:%Y-%m-%d %H:%M:%S} UTC" if resume is not None else "the daily window resets"
        )
        cap = _safe_cap(last)
        dropped = _trim_landing(landing, spec.cursor_field, cap) if cap is not None else 0
        records -= dropped
        log.warning(
            "Xero %s for %s stopped: %s; keeping %d records from %d pages%s",
            entity,
            tenant_name or tenant_id,
            stopped,
            records,
            pages,
            f" (dropped {dropped} after {cap.isoformat()}, read again next run)" if dropped and cap else "",
        )
    calls = hook.calls.get(tenant_id, 0)
    log.info(
        "Extracted %s for %s: %d records in %d pages, %d API calls, since %s",
        entity,
        tenant_name or tenant_id,
        records,
        pages,
        calls,
        modified_since or "the beginning",
    )
    result = {
        "tenant_id": tenant_id,
        "tenant_name": tenant_name,
        "entity": entity,
        "modified_since": modified_since,
        "data_dir": str(data_dir),
        "work_dir": str(base),
        "pages": pages,
        "records": records,
        "api_calls": calls,
    }
    if stopped:
        result["stopped"] = stopped
    return result


def transform(extracted: dict[str, Any], max_bad_share: float = DEFAULT_MAX_BAD_SHARE) -> dict[str, Any]:
    """Normalise the landing pages into typed Parquet and validate them; bad rows go to quarantine.

    The validation report (Great Expectations Data Docs) of the latest run is kept under
    :func:`data_docs_dir`.
    """
    from xero.normalize import normalize_pages
    from xero.validate import validate_tables

    spec = get_entity(extracted["entity"])
    base = Path(extracted["work_dir"])
    pages = sorted((base / "landing").glob("page-*.json"))
    normalized = normalize_pages(spec, extracted["tenant_id"], pages, _reset_dir(base / "normalized"))
    validated = validate_tables(
        spec,
        base / "normalized",
        _reset_dir(base / "validated"),
        max_bad_share=max_bad_share,
        data_docs_dir=_reset_dir(data_docs_dir(extracted["data_dir"], extracted["tenant_id"], spec.name)),
    )
    watermark = normalized.max_cursor
    return {
        **extracted,
        "watermark": watermark.isoformat() if watermark else None,
        "validation": validated.summary(),
    }


def load(transformed: dict[str, Any], warehouse_conn_id: str, schema: str, run_id: str) -> dict[str, Any]:
    """Merge the validated rows into the warehouse and advance the watermark, in one transaction."""
    from xero.warehouse import Warehouse

    spec = get_entity(transformed["entity"])
    base = Path(transformed["work_dir"])
    watermark = datetime.fromisoformat(transformed["watermark"]) if transformed["watermark"] else None
    warehouse = Warehouse.from_conn_id(warehouse_conn_id, schema=schema)
    result = warehouse.load(
        transformed["tenant_id"],
        spec,
        base / "validated",
        watermark=watermark,
        run_id=run_id,
        stats={
            "api_calls": transformed["api_calls"],
            "records": transformed["records"],
            "pages": transformed["pages"],
            "tenant_name": transformed.get("tenant_name"),
            "validation": transformed["validation"],
        },
    )
    shutil.rmtree(base, ignore_errors=True)  # committed: the run's files are no longer needed
    for folder in (base.parent, base.parent.parent):  # the tenant's and the run's folders, once empty
        with contextlib.suppress(OSError):
            folder.rmdir()
    loaded = {
        "tenant_id": transformed["tenant_id"],
        "tenant_name": transformed.get("tenant_name"),
        "entity": transformed["entity"],
        "api_calls": transformed["api_calls"],
        "records": transformed["records"],
        "watermark": transformed["watermark"],
        **{key: value for key, value in dataclasses.asdict(result).items() if key != "watermark"},
    }
    if transformed.get("stopped"):
        loaded["stopped"] = transformed["stopped"]
    log.info("Loaded %s", loaded)
    return loaded


def build_marts(warehouse_conn_id: str, schema: str, sql_dir: str | Path) -> None:
    """Rebuild the staging views and dashboard marts from ``sql_dir``, then publish the DuckDB read copy."""
    from xero.warehouse import Warehouse
    from xero.warehouse.publish import publish_read_copy

    Warehouse.from_conn_id(warehouse_conn_id, schema=schema).run_sql_dir(Path(sql_dir))
    publish_read_copy(warehouse_conn_id)


def summarize(loaded: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Return the run's totals per tenant: records, calls, changes, quarantined rows and early stops.

    An entity whose read stopped early (the daily call limit) is listed under the tenant's ``stopped``
    with the reason and when calls resume; its committed records are counted like any other.
    """
    tenants: dict[str, dict[str, Any]] = {}
    for item in loaded:
        totals = tenants.setdefault(
            item["tenant_id"],
            {"tenant_name": item.get("tenant_name"), "api_calls": 0, "records": 0, "entities": {}},
        )
        totals["api_calls"] += item["api_calls"]
        totals["records"] += item["records"]
        totals["entities"][item["entity"]] = {
            key: item.get(key)
            for key in ("records", "api_calls", "inserted", "updated", "unchanged", "quarantined")
        }
        if item.get("stopped"):
            totals.setdefault("stopped", {})[item["entity"]] = item["stopped"]
            log.warning(
                "%s %s: %s", item.get("tenant_name") or item["tenant_id"], item["entity"], item["stopped"]
            )
    return {"tenants": tenants}
