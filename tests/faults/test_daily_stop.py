"""A spent daily limit stops a tenant cleanly: landed pages are committed, the watermark stays safe, the next
day resumes from it and the warehouse ends up equal to a sync that never stopped."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from tests.faults.conftest import Harness, clean_checksum, small_config
from xero import pipeline
from xero.client import parse_updated, truncate_to_second
from xero_sandbox import Sandbox


def _sandbox(day_limit: int) -> Iterator[Sandbox]:
    sb = Sandbox(small_config(day_limit=day_limit))
    with sb.serve():
        yield sb


@pytest.fixture
def day6() -> Iterator[Sandbox]:
    yield from _sandbox(6)


def _watermark(harness: Harness, entity: str) -> datetime | None:
    rows = harness.query(f"select watermark from xero._sync_state where entity = '{entity}'")
    return rows[0][0] if rows else None


def test_daily_limit_commits_what_was_read_and_resumes_next_day(
    sb: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sb = Sandbox(small_config(day_limit=4))
    with sb.serve():
        harness = Harness(sb, tmp_path / "stopped", monkeypatch, entities=["invoices"], page_size=10)

        [result] = harness.run()  # ends normally: no exception, no retries

        assert result["stopped"].startswith("daily limit reached, resumes after ")
        assert result["records"] == 40 and result["inserted"] == 40
        summary = pipeline.summarize([result])["tenants"][sb.tenants[0].tenant_id]
        assert summary["stopped"] == {"invoices": result["stopped"]} and summary["records"] == 40
        landed = sorted(sb.records(sb.tenants[0].tenant_id, "invoices"), key=lambda r: r["UpdatedDateUTC"])
        in_order = [r for r in sb.records(sb.tenants[0].tenant_id, "invoices")][:40]
        newest = max(parse_updated(r["UpdatedDateUTC"]) for r in in_order)
        assert _watermark(harness, "invoices") == newest
        assert harness.query("select count(*) from xero.invoice") == [(40,)]
        assert len(landed) == 60

        # The next day: the run resumes from the watermark and finishes.
        sb.clock.advance(86_400)
        sb.limits.reset()
        sb.reset_requests()
        [result] = harness.run()
        assert result.get("stopped") is None
        first = next(r for r in sb.requests if r.endpoint == "Invoices")
        assert first.if_modified_since == truncate_to_second(newest).strftime("%Y-%m-%dT%H:%M:%S")
        assert harness.checksum() == clean_checksum(sb, tmp_path / "reference", monkeypatch, ["invoices"])


@pytest.mark.parametrize("day_limit", [6, 7], ids=["before-the-recovery-pass", "inside-the-recovery-pass"])
def test_daily_stop_never_commits_past_a_pending_recovery(
    day_limit: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for sb in _sandbox(day_limit):
        tenant = sb.tenants[0].tenant_id
        original = list(sb.records(tenant, "invoices"))
        sb.faults.script("Invoices", 2, "update_between_pages", tenant_id=tenant)
        harness = Harness(sb, tmp_path / "stopped", monkeypatch, entities=["invoices"], page_size=10)

        [result] = harness.run()

        assert result["stopped"].startswith("daily limit reached")
        # The first record served was updated before page 2 (it moved to the end): it was read on page 1, so
        # the record it made the read skip sorts after the last record of page 1, where the recovery starts.
        end_of_page_1 = original[9]
        recovery_since = truncate_to_second(parse_updated(end_of_page_1["UpdatedDateUTC"]))
        watermark = _watermark(harness, "invoices")
        assert watermark is None or watermark <= recovery_since

        sb.clock.advance(86_400)
        sb.limits.reset()  # a new day, with calls enough to finish
        sb.limits.cfg = sb.config.without_limits()
        outcomes = harness.sync_until_done()
        assert outcomes == []
        assert harness.checksum() == clean_checksum(sb, tmp_path / "reference", monkeypatch, ["invoices"])
