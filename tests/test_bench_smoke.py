"""The benchmarks of ``make bench`` at a tiny scale: every figure is produced and call counts are the minimum.

No timing is asserted (the machine decides those); only that the code runs and counts what it should.
"""

from __future__ import annotations

import json
from pathlib import Path

from bench import sync_bench

HEADLINE_KEYS = (
    "full_sync_calls",
    "min_calls",
    "calls_ratio",
    "noop_calls_per_entity",
    "records_per_s",
    "peak_rss_mb",
    "calls_per_min_sustained",
    "throttled_429s",
    "dag_parse_s",
    "publish_s",
    "read_copy_mb",
)


def test_minimum_calls_counts_pages_and_fixed_calls() -> None:
    counts = {"organisation": 1, "accounts": 40, "contacts": 1000, "invoices": 1001, "payments": 0}
    # token + connections + organisation and accounts (unpaged) + 1 + 2 pages + an empty page for payments
    assert sync_bench.minimum_calls(counts) == 2 + 1 + 1 + 1 + 2 + 1


def test_main_writes_every_figure(tmp_path: Path) -> None:
    output = tmp_path / "results.json"
    code = sync_bench.main(
        [
            "--invoices",
            "1200",
            "--rss-sizes",
            "",
            "--dag-repeats",
            "1",
            "--call-sizes",
            "1100",
            "--rate-calls",
            "3",
            "--output",
            str(output),
        ]
    )
    assert code == 0
    results = json.loads(output.read_text())
    for key in HEADLINE_KEYS:
        assert isinstance(results[key], int | float), key
    assert results["full_sync_calls"] == results["min_calls"]
    assert results["noop_calls_per_entity"] == 1.0
    assert results["throughput"]["1200"]["records"] == 1200
    assert results["throughput"]["1200"]["inserted"] == 1200
    assert results["peak_rss_mb_1200"] > 0
    assert set(results["throughput"]["1200"]["steps"]) == {"extract", "transform", "load"}
    assert results["throughput"]["1200"]["read_copy_mb"] > 0  # the read copy was published
    assert results["full_sync"]["1100"]["calls_by_endpoint"]["Invoices"] == 2
    assert results["rate"]["pages"] == 3
    assert results["rate"]["throttled_429s"] == 0
    assert results["dag"]["import_errors"] == 0


def test_sandbox_contact_cache_follows_changes() -> None:
    """The sandbox renders each embedded contact once for speed; a change must still show on the next page."""
    from xero_sandbox import Sandbox, SandboxConfig

    sb = Sandbox(SandboxConfig(seed=3, tenants=1, contacts=20, invoices=200))
    tenant = sb.tenants[0].tenant_id
    first = next(iter(sb.records(tenant, "invoices")))
    contact_id = first["Contact"]["ContactID"]
    assert first["Contact"]["ContactStatus"] == "ACTIVE"
    sb.archive_contact(tenant, contact_id)
    embedded = [
        r["Contact"] for r in sb.records(tenant, "invoices") if r["Contact"]["ContactID"] == contact_id
    ]
    assert len(embedded) > 1
    assert {c["ContactStatus"] for c in embedded} == {"ARCHIVED"}
    embedded[0]["Name"] = "changed by a caller"
    assert all(
        r["Contact"]["Name"] != "changed by a caller"
        for r in sb.records(tenant, "invoices")
        if r["Contact"]["ContactID"] == contact_id
    )
