"""Replaying quarantined records with the current rules: ``python -m xero quarantine list|replay``.

Records go through the real normaliser, suites and load (as a sync does), on DuckDB and PostgreSQL. A record
quarantined by a rule that was too strict loads once the rule is relaxed, clearing the stale mark of its older
row; a newer stored version is never overwritten; a record that still fails stays with its new reason.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.transform.conftest import record
from xero.__main__ import main
from xero.entities import ENTITIES
from xero.normalize import normalize_pages
from xero.replay import QuarantineFilter, list_quarantine, replay
from xero.validate import validate_tables
from xero.warehouse import Warehouse

T1, T2 = "tenant-1", "tenant-2"
WM = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.fixture
def wh(dialect: str, warehouse_factory) -> Warehouse:
    warehouse = warehouse_factory(dialect)
    warehouse.ensure_schema()
    return warehouse


@pytest.fixture
def sync(wh: Warehouse, tmp_path: Path):
    """Run one sync of ``records`` for a tenant × entity through normalise → validate → load."""
    runs = iter(range(1, 100))

    def run(tenant: str, entity: str, records: list[dict[str, Any]]) -> None:
        number = next(runs)
        base = tmp_path / f"run-{number}-{tenant}-{entity}"
        base.mkdir()
        page = base / "page-00001.json"
        page.write_text(json.dumps(records))
        normalize_pages(entity, tenant, [page], base / "normalized")
        validate_tables(entity, base / "normalized", base / "validated", max_bad_share=1.0)
        wh.load(tenant, entity, base / "validated", WM, f"run-{number}")

    return run


def invoice(number: int, when: int, **changes: Any) -> dict[str, Any]:
    """Return sample invoice ``number`` updated at ``/Date(<when>)/``."""
    return record("invoices", number, UpdatedDateUTC=f"/Date({when}+0000)/", **changes)


def invoices(wh: Warehouse, tenant: str = T1) -> dict[str, tuple]:
    return {
        invoice_id[-1]: (invoice_type, status, reference, stale_since is not None, reason)
        for invoice_id, invoice_type, status, reference, stale_since, reason in wh.query(
            "SELECT invoice_id, type, status, reference, _stale_since, _quarantine_reason "
            "FROM {{ schema }}.invoice WHERE tenant_id = ? ORDER BY 1",
            (tenant,),
        )
    }


def quarantined(wh: Warehouse) -> list[tuple]:
    return wh.query(
        "SELECT tenant_id, entity, record_id, reason FROM {{ schema }}._quarantine ORDER BY 1, 2, 3, 4"
    )


def stale_rows(wh: Warehouse, tenant: str = T1) -> int:
    [(count,)] = wh.query(
        "SELECT stale_rows FROM {{ schema }}._sync_state WHERE tenant_id = ? AND entity = 'invoices'",
        (tenant,),
    )
    return count


@pytest.fixture
def relax(monkeypatch: pytest.MonkeyPatch):
    """Accept invoice type ``ACCXYZ`` from now on (a rule that was too strict)."""

    def relaxed() -> None:
        enums = ENTITIES["invoices"].enums
        monkeypatch.setitem(enums, "type", enums["type"] | {"ACCXYZ"})

    return relaxed


def test_a_record_held_back_by_a_too_strict_rule_loads_after_the_rule_is_relaxed(
    wh: Warehouse, sync, relax
) -> None:
    sync(T1, "invoices", [invoice(1, 1_700_000_000_000), invoice(2, 1_700_000_000_000)])
    sync(
        T1,
        "invoices",
        [
            invoice(1, 1_700_000_100_000, Type="ACCXYZ", Reference="v2"),  # a newer version, quarantined
            invoice(3, 1_700_000_100_000, Type="ACCXYZ"),  # a new record, quarantined
        ],
    )
    assert invoices(wh)["1"] == ("ACCREC", "AUTHORISED", "Ref MK815", True, ANY_TYPE_REASON)
    assert stale_rows(wh) == 1
    watermark = wh.get_watermarks()[(T1, "invoices")]

    relax()
    [outcome] = replay(wh, QuarantineFilter(entity="invoices"))

    assert (outcome.candidates, outcome.still_failing) == (2, {})
    assert outcome.loaded is not None
    assert (outcome.loaded.inserted, outcome.loaded.updated, outcome.loaded.resolved) == (1, 1, 2)
    assert invoices(wh) == {
        "1": ("ACCXYZ", "AUTHORISED", "v2", False, None),
        "2": ("ACCREC", "AUTHORISED", "Ref MK815", False, None),
        "3": ("ACCXYZ", "AUTHORISED", "Ref MK815", False, None),
    }
    assert quarantined(wh) == []
    assert stale_rows(wh) == 0
    assert wh.get_watermarks()[(T1, "invoices")] == watermark  # a replay never moves the watermark
    [(lines,)] = wh.query(
        "SELECT count(*) FROM {{ schema }}.invoice_line_item WHERE invoice_id LIKE '%00000003'"
    )
    assert lines == 2  # with its children
    assert replay(wh, QuarantineFilter(entity="invoices")) == []  # nothing left to replay


ANY_TYPE_REASON = "expect_column_values_to_be_in_set(type): got 'ACCXYZ'"


def test_a_newer_stored_version_is_never_overwritten(wh: Warehouse, sync, relax) -> None:
    sync(T1, "invoices", [invoice(1, 1_700_000_000_000)])
    sync(T1, "invoices", [invoice(1, 1_700_000_100_000, Type="ACCXYZ", Reference="v2")])
    sync(T1, "invoices", [invoice(1, 1_700_000_200_000, Reference="v3")])  # Xero changed it again: loads
    assert invoices(wh)["1"] == ("ACCREC", "AUTHORISED", "v3", False, None)

    relax()
    [outcome] = replay(wh, QuarantineFilter(tenant_id=T1))
    assert outcome.loaded is not None
    assert (outcome.loaded.kept_newer, outcome.loaded.updated, outcome.loaded.resolved) == (1, 0, 1)
    assert invoices(wh)["1"] == ("ACCREC", "AUTHORISED", "v3", False, None)
    assert quarantined(wh) == []  # the older version is settled


def test_a_record_that_still_fails_stays_with_its_new_reason(wh: Warehouse, sync, relax) -> None:
    sync(T1, "invoices", [invoice(1, 1_700_000_000_000)])
    sync(T1, "invoices", [invoice(1, 1_700_000_100_000, Type="ACCXYZ", Status="FROZEN")])
    [(_, _, _, before)] = quarantined(wh)
    assert set(before.split("; ")) == {
        ANY_TYPE_REASON,
        "expect_column_values_to_be_in_set(status): got 'FROZEN'",
    }

    relax()
    [outcome] = replay(wh, QuarantineFilter())
    now = "expect_column_values_to_be_in_set(status): got 'FROZEN'"
    assert list(outcome.still_failing.values()) == [now]
    assert outcome.loaded is not None and outcome.loaded.failing == 1
    assert [row[3] for row in quarantined(wh)] == [now]
    assert invoices(wh)["1"] == ("ACCREC", "AUTHORISED", "Ref MK815", True, now)  # still stale, says why now
    assert stale_rows(wh) == 1


def test_filters_choose_what_is_listed_and_replayed(wh: Warehouse, sync, relax) -> None:
    sync(
        T1,
        "invoices",
        [invoice(1, 1_700_000_000_000, Type="ACCXYZ"), invoice(2, 1_700_000_000_000, Status="X")],
    )
    sync(T2, "invoices", [invoice(1, 1_700_000_000_000, Type="ACCXYZ")])
    sync(T1, "payments", [record("payments", 1, Amount=0)])

    listing = list_quarantine(wh, QuarantineFilter())
    assert listing.total == 4
    assert (T1, "invoices", ANY_TYPE_REASON, 1) in listing.counts
    assert len(listing.rows) == 4
    assert list_quarantine(wh, QuarantineFilter(reason="accxyz")).total == 2
    assert list_quarantine(wh, QuarantineFilter(tenant_id=T2, reason="ACCXYZ")).total == 1
    assert list_quarantine(wh, QuarantineFilter(run_id="run-3")).total == 1
    assert list_quarantine(wh, QuarantineFilter(entity="payments")).counts == [
        (T1, "payments", "expect_column_values_to_be_between(amount): got 0.0000", 1)
    ]

    relax()
    outcomes = replay(wh, QuarantineFilter(tenant_id=T1, reason="ACCXYZ"))
    assert [(o.tenant_id, o.entity, o.candidates) for o in outcomes] == [(T1, "invoices", 1)]
    assert sorted((row[0], row[1], row[2][-1]) for row in quarantined(wh)) == [
        (T1, "invoices", "2"),
        (T1, "payments", "1"),
        (T2, "invoices", "1"),
    ]
    with pytest.raises(ValueError, match="unknown"):
        QuarantineFilter(entity="widgets")


def test_the_command_line(
    wh: Warehouse, sync, relax, dialect: str, capsys: pytest.CaptureFixture[str]
) -> None:
    sync(T1, "invoices", [invoice(1, 1_700_000_000_000), invoice(2, 1_700_000_000_000, Type="ACCXYZ")])
    where = ["--conn-id", f"xero_warehouse_test_{dialect}", "--schema", wh.schema]

    assert main(["quarantine", "list", *where]) == 0
    listed = capsys.readouterr().out
    assert "1 quarantined rows:" in listed
    assert ANY_TYPE_REASON in listed and T1 in listed

    assert main(["quarantine", "replay", "--entity", "invoices", *where]) == 0
    assert (
        f"still failing: {T1} invoices {invoice(2, 0)['InvoiceID']}: {ANY_TYPE_REASON}"
        in capsys.readouterr().out
    )
    assert len(quarantined(wh)) == 1  # the rule is as strict as ever: it stays

    relax()
    assert main(["quarantine", "replay", "--entity", "invoices", "--reason", "type", *where]) == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if line.startswith("tenant "))
    assert header.split() == [
        "tenant",
        "entity",
        "replayed",
        "loaded",
        "newer",
        "kept",
        "still",
        "failing",
        "unreadable",
    ]
    assert f"{T1}  invoices" in out
    assert quarantined(wh) == []
    assert main(["quarantine", "list", *where]) == 0
    assert "No quarantined rows match." in capsys.readouterr().out
