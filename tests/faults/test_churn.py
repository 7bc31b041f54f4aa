"""Liveness under churn: an organisation in use while 20,000 invoices are read still syncs, completely.

The sandbox updates an invoice already served (it moves to the end of Xero's order) at a steady rate while
the sync reads: once per 2,000 records served with no rate limit, and once per 15 s of sandbox time at the
real 60 calls a minute (the client's waits move the sandbox's clock: nothing really sleeps). The run must
succeed, land every invoice at its latest version (nothing lost, nothing stale) and use a bounded number of
calls: the main pass plus at most one read by key of what follows the earliest moved record.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pytest

from tests.faults.conftest import SCHEMA, Harness, small_config
from xero.client import parse_updated
from xero_sandbox import Sandbox

INVOICES = 20_000
PAGE = 1000


def _latest_in_sandbox(sb: Sandbox, tenant_id: str) -> dict[str, object]:
    return {
        record["InvoiceID"]: parse_updated(record["UpdatedDateUTC"])
        for record in sb.records(tenant_id, "invoices")
    }


def _landed(harness: Harness) -> dict[str, object]:
    rows = harness.query(f"select invoice_id, updated_date_utc from {SCHEMA}.invoice")
    return {str(key): updated.replace(tzinfo=parse_updated("/Date(0)/").tzinfo) for key, updated in rows}


@pytest.mark.parametrize(
    ("limits", "churn"),
    [
        pytest.param(False, {"every_records": 2000}, id="an-edit-per-2000-records-read"),
        pytest.param(True, {"every_seconds": 15}, id="an-edit-per-15s-at-60-calls-a-minute"),
    ],
)
def test_a_sync_under_steady_churn_lands_everything_at_its_latest_version(
    limits: bool, churn: dict[str, float], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = replace(small_config(), invoices=INVOICES, contacts=30, max_line_items=1)
    if limits:
        config = replace(config, minute_limit=60, day_limit=5000, concurrent_limit=5)
    sb = Sandbox(config)
    tenant = sb.tenants[0].tenant_id
    with sb.serve():
        harness = Harness(sb, tmp_path / "churn", monkeypatch, page_size=PAGE, entities=["invoices"])
        edits = sb.faults.churn("invoices", tenant, seed=11, **churn)
        started = sb.clock.timestamp()

        (result,) = harness.run()

        minutes = (sb.clock.timestamp() - started) / 60
    assert result.get("stopped") is None
    landed = _landed(harness)
    latest = _latest_in_sandbox(sb, tenant)
    assert len(landed) == len(latest) == INVOICES
    assert landed == latest  # nothing lost, nothing stale
    least = math.ceil(INVOICES / PAGE)
    calls = result["api_calls"]
    print(
        f"churn {churn}: {len(edits.edited)} edits, {calls} calls for a {least}-call read"
        f" ({minutes:.1f} sandbox minutes)"
    )
    assert len(edits.edited) >= 2
    assert calls <= 2 * least + 3
    # the committed watermark is the newest version landed, never past it
    (watermark,) = harness.query(f"select watermark from {SCHEMA}._sync_state where entity = 'invoices'")[0]
    assert watermark.replace(tzinfo=None) == max(landed.values()).replace(tzinfo=None)
