"""The fault matrix: every fault the sandbox can inject, synced to completion as a user would, loses nothing.

For each fault the sync runs (and is rerun after a failure or a daily stop) until a run completes; then every
warehouse table must equal a fault-free sync of the same sandbox data into a fresh warehouse, and one more
run must change nothing (not even ``_loaded_at``). The outcome of each fault is asserted too: retried inside
the run, stopped cleanly, or failed clearly and converged on the rerun.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.faults.conftest import Harness, clean_checksum
from xero_sandbox import Sandbox

#: fault id → (rules to script, outcomes of the runs before the one that completes, harness options)
MATRIX: dict[str, tuple[list[dict[str, Any]], list[str], dict[str, Any]]] = {
    "429_minute": ([{"endpoint": "Invoices", "nth": 2, "kind": "429_minute"}], [], {}),
    "429_day": (
        [{"endpoint": "Invoices", "nth": 2, "kind": "429_day"}],
        ["stopped: daily limit reached, resumes after"],
        {},
    ),
    "500": ([{"endpoint": "Invoices", "nth": 2, "kind": "500", "times": 2}], [], {}),
    "503_org_offline": (
        [{"endpoint": "Contacts", "nth": 2, "kind": "503_org_offline"}],
        ["XeroOrganisationOffline"],
        {},
    ),
    "delay_past_timeout": (
        [{"endpoint": "Payments", "nth": 2, "kind": "delay", "seconds": 1.6}],
        [],
        {"timeout": 1.0},
    ),
    "reset": ([{"endpoint": "Invoices", "nth": 3, "kind": "reset"}], [], {}),
    "malformed_json": ([{"endpoint": "Contacts", "nth": 1, "kind": "malformed_json"}], [], {}),
    "truncated_json": ([{"endpoint": "Invoices", "nth": 2, "kind": "truncated_json"}], [], {}),
    "token_expired": ([{"endpoint": "Invoices", "nth": 2, "kind": "token_expired"}], [], {}),
    "refresh_lost_within_grace": (
        # The refresh succeeds at Xero but its answer is lost: the spent token is honoured within the grace
        [
            {"endpoint": "Invoices", "nth": 2, "kind": "token_expired"},
            {"endpoint": "token", "nth": 2, "kind": "truncated_json"},
        ],
        None,  # retried in the run or failed and rerun: either way it converges
        {},
    ),
    "refresh_invalid_grant": (
        [
            {"endpoint": "Invoices", "nth": 2, "kind": "token_expired"},
            {"endpoint": "token", "nth": 2, "kind": "refresh_invalid_grant"},
        ],
        ["XeroAuthError"],
        {},
    ),
    "update_between_pages": ([{"endpoint": "Invoices", "nth": 2, "kind": "update_between_pages"}], [], {}),
    "duplicate_record": ([{"endpoint": "Invoices", "nth": 2, "kind": "duplicate_record"}], [], {}),
}


#: The entity each faulted endpoint belongs to (a case syncs only what its faults touch, to stay fast).
ENDPOINT_ENTITY = {
    "Accounts": "accounts",
    "Contacts": "contacts",
    "Invoices": "invoices",
    "Payments": "payments",
}


def _script(sb: Sandbox, rules: list[dict[str, Any]], tenant_id: str) -> None:
    for rule in rules:
        options = dict(rule)
        endpoint, nth, kind = options.pop("endpoint"), options.pop("nth"), options.pop("kind")
        times = options.pop("times", 1)
        scoped = endpoint not in ("token", "connections")
        sb.faults.script(endpoint, nth, kind, times=times, tenant_id=tenant_id if scoped else None, **options)


def _assert_converged(harness: Harness, sb: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    faulted = harness.checksum()
    assert faulted == clean_checksum(sb, tmp_path / "reference", monkeypatch, harness.entities)
    before = harness.snapshot(bookkeeping=True)
    results = harness.run()
    assert not any(r.get("stopped") for r in results)
    assert all(r["inserted"] == 0 and r["updated"] == 0 for r in results), results
    assert harness.snapshot(bookkeeping=True) == before


@pytest.mark.parametrize("fault", list(MATRIX))
def test_fault_converges_to_the_fault_free_warehouse(
    fault: str, sb: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rules, expected_outcomes, options = MATRIX[fault]
    entities = sorted({ENDPOINT_ENTITY.get(rule["endpoint"], "invoices") for rule in rules})
    harness = Harness(sb, tmp_path / "faulted", monkeypatch, entities=entities, **options)
    _script(sb, rules, sb.tenants[0].tenant_id)

    outcomes = harness.sync_until_done()

    assert [kind for _, kind in sb.faults.fired] == [
        r["kind"] for r in rules for _ in range(r.get("times", 1))
    ]
    if expected_outcomes is not None:
        assert len(outcomes) == len(expected_outcomes), outcomes
        for outcome, expected in zip(outcomes, expected_outcomes, strict=True):
            assert outcome.startswith(expected), outcomes
    _assert_converged(harness, sb, tmp_path, monkeypatch)


SEED = int(__import__("os").environ.get("FAULT_SEED", "3"))


def test_seeded_random_faults_converge(sb: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sb.faults.random(
        seed=SEED,
        rate=0.3,
        kinds=[
            "429_minute",
            "500",
            "503_org_offline",
            "reset",
            "malformed_json",
            "truncated_json",
            "update_between_pages",
            "duplicate_record",
        ],
    )
    harness = Harness(sb, tmp_path / "faulted", monkeypatch, page_size=5)

    outcomes = harness.sync_until_done(max_runs=10)

    print(
        f"seed {SEED}: {len(sb.faults.fired)} faults fired: {sb.faults.fired}; runs before success: {outcomes}"
    )
    kinds = {kind for _, kind in sb.faults.fired}
    assert len(sb.faults.fired) >= 6 and len(kinds) >= 4, sb.faults.fired
    assert set(outcomes) <= {
        "XeroOrganisationOffline",
        "XeroServerError",
        "XeroMalformedResponse",
        "ConnectionError",
        "XeroPagingError",
    }, outcomes
    _assert_converged(harness, sb, tmp_path, monkeypatch)
