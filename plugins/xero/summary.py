"""The run's report: one row per tenant × entity, what failed and why, and what the loads changed.

The operators call these at the end of a run (:class:`xero.operators.XeroSummaryOperator`) and from the marts
step (the Asset event's extra). A failing step leaves a :func:`failure_record` in XCom under
:data:`FAILURE_KEY`; :func:`summarize` joins the plan's targets, the load results, those records and the run's
task states, and :func:`raise_for_failures` fails the run naming every failed part, so alerting sees it while
everything else has loaded.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

log = logging.getLogger(__name__)

#: XCom key of the record a failing step leaves for the run's summary (:func:`failure_record`).
FAILURE_KEY = "xero_failure"
#: Longest error text kept in a failure record (the run's failure message quotes it whole).
ERROR_CHARS = 500
#: Longest state shown in the summary table (errors are quoted whole in the run's failure message).
TABLE_STATE_CHARS = 110


class XeroRunFailed(Exception):
    """Some tenants × entities (or the run's own steps) failed; the others loaded.

    :param failed: the failure records (tenant, entity, step, error), as in :func:`summarize`.
    """

    def __init__(self, failed: Sequence[Mapping[str, Any]]) -> None:
        self.failed = list(failed)
        lines = [f"  {_who(item)}: {item['step']} failed: {item['error']}" for item in self.failed]
        super().__init__(
            f"{len(self.failed)} part(s) of the Xero sync failed (everything else loaded):\n"
            + "\n".join(lines)
        )


def failure_record(step: str, target: Mapping[str, Any], error: BaseException) -> dict[str, Any]:
    """Return what the summary needs to name a failed step: tenant, entity, step and the error's message."""
    text = f"{type(error).__name__}: {error}".strip()
    return {
        "tenant_id": target.get("tenant_id"),
        "tenant_name": target.get("tenant_name"),
        "entity": target.get("entity"),
        "step": step,
        "error": _cut(text, ERROR_CHARS),
    }


def _who(item: Mapping[str, Any]) -> str:
    """Return ``tenant name × entity`` of a record (the run itself for plan and marts)."""
    if not item.get("tenant_id") and not item.get("entity"):
        return "the run"
    return f"{item.get('tenant_name') or item.get('tenant_id')} × {item.get('entity')}"


def changes(loaded: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Return what a run's loads changed: rows written per table (inserted, updated, children replaced)."""
    rows: dict[str, int] = {}
    count = 0
    for item in loaded:
        count += 1
        for table, written in (item.get("rows_changed") or {}).items():
            rows[table] = rows.get(table, 0) + int(written)
    return {"rows_changed": dict(sorted(rows.items())), "loads": count}


def _run_failure(step: str, error: str) -> dict[str, Any]:
    return {"tenant_id": None, "tenant_name": None, "entity": None, "step": step, "error": error}


def _chain_state(states: Mapping[str, str], chain_task_ids: Sequence[str], index: int) -> tuple[str, str]:
    """Return the first step of chain ``index`` that did not succeed and its state, from the run's task states."""
    for task_id in chain_task_ids:
        state = states.get(f"{task_id}_{index}")
        if state not in ("success", None):
            return task_id.rsplit(".", 1)[-1], str(state)
    return chain_task_ids[-1].rsplit(".", 1)[-1], "no result"


def summarize(
    loaded: Iterable[dict[str, Any]],
    *,
    targets: Sequence[Mapping[str, Any]] | None = None,
    extracted: Iterable[Mapping[str, Any]] = (),
    failures: Iterable[Mapping[str, Any]] = (),
    states: Mapping[str, str] | None = None,
    chain_task_ids: Sequence[str] = ("sync.extract", "sync.validate", "sync.load"),
) -> dict[str, Any]:
    """Return the run's report: totals per tenant, one row per tenant × entity, what failed, and a table.

    :param loaded: the load results of the chains that committed.
    :param targets: the plan's targets (one chain each, in map-index order); ``None`` when the plan failed.
    :param extracted: the extract results (records read and calls of chains that failed later).
    :param failures: the records failing steps left (:func:`failure_record`).
    :param states: the run's task states by task id (``<task_id>_<map_index>`` for mapped ones), so a step
        killed before it could leave a record is reported too.
    :param chain_task_ids: the steps of a chain, in order.
    :return: ``tenants`` (totals per tenant, entities, early stops), ``rows`` (per tenant × entity),
        ``failed`` (tenant, entity, step, error) and ``table`` (the rows as text).
    """
    loaded = list(loaded)
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
            for key in ("records", "api_calls", "inserted", "updated", "unchanged", "quarantined", "stale")
        }
        if item.get("stopped"):
            totals.setdefault("stopped", {})[item["entity"]] = item["stopped"]
            log.warning(
                "%s %s: %s", item.get("tenant_name") or item["tenant_id"], item["entity"], item["stopped"]
            )

    def key(item: Mapping[str, Any]) -> tuple[Any, Any]:
        return item.get("tenant_id"), item.get("entity")

    by_load = {key(item): item for item in loaded}
    by_extract = {key(item): item for item in extracted}
    by_failure: dict[tuple[Any, Any], Mapping[str, Any]] = {}
    failed: list[dict[str, Any]] = []
    for failure in failures:
        if failure.get("entity"):
            by_failure.setdefault(key(failure), failure)
        else:  # the plan or the marts
            failed.append(dict(failure))
    rows: list[dict[str, Any]] = []
    for index, target in enumerate(targets if targets is not None else loaded):
        done = by_load.get(key(target))
        read = done or by_extract.get(key(target)) or {}
        row = {
            "tenant_id": target["tenant_id"],
            "tenant_name": target.get("tenant_name") or read.get("tenant_name"),
            "entity": target["entity"],
            "read": read.get("records"),
            "loaded": None if done is None else done["inserted"] + done["updated"] + done["unchanged"],
            "quarantined": None if done is None else done.get("quarantined"),
            "warnings": None if done is None else done.get("warnings"),
            "stale": None if done is None else done.get("stale"),
            "calls": read.get("api_calls"),
            "state": "ok" if done is None or not done.get("stopped") else f"ok, {done['stopped']}",
        }
        if done is None:
            failure = dict(by_failure.get(key(target)) or {})
            if not failure:
                step, state = _chain_state(states or {}, chain_task_ids, index)
                failure = {"step": step, "error": f"task {state}, no error recorded (see its log)"}
            failure.update(tenant_id=row["tenant_id"], tenant_name=row["tenant_name"], entity=row["entity"])
            failed.append(failure)
            row["state"] = f"FAILED at {failure['step']}: {failure['error']}"
        rows.append(row)
    reported = {failure["step"] for failure in failed if not failure.get("entity")}
    for task_id, state in sorted((states or {}).items()):
        in_chain = any(task_id.startswith(f"{chain}_") for chain in chain_task_ids)
        if state in ("failed", "upstream_failed") and not in_chain and task_id not in reported:
            failed.insert(0, _run_failure(task_id, f"task {state} (see its log)"))
    if targets is None and not any(not item.get("entity") for item in failed):
        failed.insert(0, _run_failure("plan", "returned no targets"))
    return {"tenants": tenants, "rows": rows, "failed": failed, "table": _table(rows)}


def _table(rows: Sequence[Mapping[str, Any]]) -> str:
    """Render the summary rows as a plain-text table."""
    from tabulate import tabulate

    headers = ["tenant", "entity", "read", "loaded", "quarantined", "warnings", "stale", "calls", "state"]
    body = [
        [
            row["tenant_name"] or row["tenant_id"],
            row["entity"],
            *("-" if row[name] is None else row[name] for name in headers[2:8]),
            _cut(row["state"], TABLE_STATE_CHARS),
        ]
        for row in rows
    ]
    return tabulate(body, headers=headers, disable_numparse=True) if body else "(nothing was planned)"


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def raise_for_failures(report: Mapping[str, Any]) -> None:
    """Raise :class:`XeroRunFailed` naming every failed tenant × entity (or run step) of ``report``."""
    if report["failed"]:
        raise XeroRunFailed(report["failed"])
