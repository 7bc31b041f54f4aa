"""The run's summary: a readable table per tenant × entity, and a failure naming each failed part and why."""

from __future__ import annotations

from typing import Any

import pytest

from xero import pipeline, summary
from xero.operators import XeroLoadOperator, reporting_failure

TARGETS = [
    {"tenant_id": "t1", "tenant_name": "Acme Ltd", "entity": "invoices", "modified_since": None},
    {"tenant_id": "t1", "tenant_name": "Acme Ltd", "entity": "payments", "modified_since": None},
    {"tenant_id": "t2", "tenant_name": "Bolt plc", "entity": "invoices", "modified_since": None},
    {"tenant_id": "t2", "tenant_name": "Bolt plc", "entity": "payments", "modified_since": None},
]


def loaded(tenant: str, name: str, entity: str, **values: Any) -> dict[str, Any]:
    return {
        "tenant_id": tenant,
        "tenant_name": name,
        "entity": entity,
        "records": 12,
        "api_calls": 2,
        "inserted": 9,
        "updated": 1,
        "unchanged": 1,
        "quarantined": 1,
        "warnings": 2,
        "stale": 1,
        "rows_changed": {"invoice": 10, "invoice_line_item": 30},
        **values,
    }


def test_every_chain_is_a_row_and_each_failure_is_named_with_its_error() -> None:
    error = summary.failure_record(
        "extract", TARGETS[1], PermissionError("missing scope: add accounting.payments.read")
    )
    report = summary.summarize(
        [loaded("t1", "Acme Ltd", "invoices"), loaded("t2", "Bolt plc", "payments", stopped="daily limit")],
        targets=TARGETS,
        extracted=[{"tenant_id": "t2", "entity": "invoices", "records": 40, "api_calls": 1}],
        failures=[error],
        states={"sync.extract_2": "success", "sync.validate_2": "failed", "sync.load_2": "upstream_failed"},
    )
    assert [row["state"] for row in report["rows"]] == [
        "ok",
        "FAILED at extract: PermissionError: missing scope: add accounting.payments.read",
        "FAILED at validate: task failed, no error recorded (see its log)",
        "ok, daily limit",
    ]
    lines = report["table"].splitlines()
    assert lines[0].split() == [
        "tenant",
        "entity",
        "read",
        "loaded",
        "quarantined",
        "warnings",
        "stale",
        "calls",
        "state",
    ]
    assert lines[2].split() == ["Acme", "Ltd", "invoices", "12", "11", "1", "2", "1", "2", "ok"]
    assert lines[4].split()[:9] == ["Bolt", "plc", "invoices", "40", "-", "-", "-", "-", "1"]
    with pytest.raises(summary.XeroRunFailed) as failed:
        summary.raise_for_failures(report)
    message = str(failed.value)
    assert message.splitlines() == [
        "2 part(s) of the Xero sync failed (everything else loaded):",
        "  Acme Ltd × payments: extract failed: PermissionError: missing scope: add accounting.payments.read",
        "  Bolt plc × invoices: validate failed: task failed, no error recorded (see its log)",
    ]


def test_a_run_where_everything_loaded_passes() -> None:
    report = summary.summarize(
        [loaded(t["tenant_id"], t["tenant_name"], t["entity"]) for t in TARGETS], targets=TARGETS
    )
    assert report["failed"] == []
    summary.raise_for_failures(report)
    assert report["tenants"]["t1"]["entities"]["invoices"]["stale"] == 1


def test_failed_plan_and_marts_fail_the_run() -> None:
    report = summary.summarize(
        [], targets=None, failures=[summary.failure_record("plan", {}, RuntimeError("warehouse down"))]
    )
    assert [(f["step"], f["error"]) for f in report["failed"]] == [("plan", "RuntimeError: warehouse down")]
    report = summary.summarize(
        [loaded(t["tenant_id"], t["tenant_name"], t["entity"]) for t in TARGETS],
        targets=TARGETS,
        states={"plan": "success", "marts": "failed", "sync.load_0": "success"},
    )
    with pytest.raises(summary.XeroRunFailed, match=r"the run: marts failed: task failed"):
        summary.raise_for_failures(report)


def test_long_errors_are_cut() -> None:
    record = summary.failure_record("load", TARGETS[0], ValueError("x" * 2000))
    assert len(record["error"]) == summary.ERROR_CHARS
    assert record["tenant_name"] == "Acme Ltd" and record["entity"] == "invoices"


def test_changes_count_rows_per_table() -> None:
    assert summary.changes(
        [
            loaded("t1", "Acme Ltd", "invoices"),
            loaded("t2", "Bolt plc", "payments", rows_changed={"payment": 3}),
        ]
    ) == {"rows_changed": {"invoice": 10, "invoice_line_item": 30, "payment": 3}, "loads": 2}


class _TaskInstance:
    def __init__(self) -> None:
        self.pushed: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


def test_a_failing_step_leaves_its_error_for_the_summary(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any) -> dict[str, Any]:
        raise ConnectionError("warehouse connection 'xero_warehouse' unreachable")

    monkeypatch.setattr(pipeline, "load", broken)
    operator = XeroLoadOperator(task_id="load", transformed=TARGETS[2])
    ti = _TaskInstance()
    with pytest.raises(ConnectionError):
        operator.execute({"ti": ti, "run_id": "r"})
    assert ti.pushed[summary.FAILURE_KEY] == {
        "tenant_id": "t2",
        "tenant_name": "Bolt plc",
        "entity": "invoices",
        "step": "load",
        "error": "ConnectionError: warehouse connection 'xero_warehouse' unreachable",
    }


def test_a_reschedule_is_no_failure() -> None:
    from datetime import UTC, datetime

    from airflow.sdk.exceptions import AirflowRescheduleException

    ti = _TaskInstance()
    with pytest.raises(AirflowRescheduleException), reporting_failure({"ti": ti}, "extract", TARGETS[0]):
        raise AirflowRescheduleException(reschedule_date=datetime.now(UTC))
    assert ti.pushed == {}
