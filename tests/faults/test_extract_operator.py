"""The extract operator's answers to Xero's two slow conditions: an offline organisation reschedules the
task instead of holding a worker, and a spent daily limit ends it successfully with a warning."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowRescheduleException

from xero import pipeline
from xero.exceptions import XeroOrganisationOffline
from xero.operators import XeroExtractOperator


def _operator(**kwargs: Any) -> XeroExtractOperator:
    return XeroExtractOperator(
        task_id="extract", tenant_id="t", entity="invoices", data_dir="/tmp/x", **kwargs
    )


def _offline(*args: Any, **kwargs: Any) -> dict[str, Any]:
    raise XeroOrganisationOffline(
        "Xero GET Invoices (tenant t): HTTP 503 The Organisation is offline", status=503
    )


def test_offline_organisation_reschedules_minutes_later(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pipeline, "extract", _offline)
    before = datetime.now(UTC)
    with pytest.raises(AirflowRescheduleException) as info:
        _operator().execute({"run_id": "r", "task_reschedule_count": 2})
    assert (
        before + timedelta(seconds=299)
        <= info.value.reschedule_date
        <= datetime.now(UTC) + timedelta(seconds=301)
    )


def test_offline_for_too_long_fails_into_the_ordinary_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pipeline, "extract", _offline)
    with pytest.raises(XeroOrganisationOffline):
        _operator(offline_max_reschedules=3).execute({"run_id": "r", "task_reschedule_count": 3})


def test_daily_stop_ends_successfully_with_a_warning(monkeypatch: pytest.MonkeyPatch, caplog, capsys) -> None:
    stopped = {"records": 40, "stopped": "daily limit reached, resumes after 2026-03-02 12:00:00 UTC"}
    monkeypatch.setattr(pipeline, "extract", lambda *args, **kwargs: stopped)
    assert _operator().execute({"run_id": "r"}) == stopped
    logged = caplog.text + capsys.readouterr().out
    assert "daily limit reached, resumes after 2026-03-02 12:00:00 UTC" in logged
    assert "warning" in logged.lower()
