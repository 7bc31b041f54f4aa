"""The hook against the local Xero sandbox over real HTTP: calls spent, lossless paging, faults, tokens."""

from __future__ import annotations

import json
import multiprocessing
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import tenacity

from xero.auth import TokenManager
from xero.client import parse_updated
from xero.entities import ACCOUNTS, CONTACTS, INVOICES
from xero.hooks import XeroHook
from xero.scopes import requested_scopes
from xero.tokens import FileLock, FileTokenStore

sandbox = pytest.importorskip("xero_sandbox")

START = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
GRANULAR = requested_scopes("granular", offline_access=False)


@pytest.fixture
def sb() -> Any:
    return sandbox.Sandbox(
        sandbox.SandboxConfig(
            seed=11, tenants=2, accounts=30, contacts=120, invoices=2500, clock_start=START, frozen_clock=True
        )
    )


@pytest.fixture
def url(sb) -> Iterator[str]:
    with sb.serve() as base_url:
        yield base_url


@pytest.fixture
def xero(sb, url, monkeypatch, tmp_path) -> XeroHook:
    """A hook on a fresh consent (granular scopes) against the served sandbox."""
    connection = sandbox.airflow_connection(
        url,
        client_id=sb.config.client_id,
        client_secret=sb.config.client_secret,
        token_file=tmp_path / "tokens.json",
        refresh_token=sb.issue_refresh_token(GRANULAR),
    )
    monkeypatch.setenv("AIRFLOW_CONN_XERO_DEFAULT", json.dumps(connection))
    sb.reset_requests()
    return XeroHook(sleep=lambda seconds: None, retry_wait=tenacity.wait_none())


def accounting_calls(sb, endpoint: str) -> list[Any]:
    return [r for r in sb.requests if r.endpoint == endpoint]


def ids(pages, field: str = "InvoiceID") -> list[str]:
    return [record[field] for page in pages for record in page.records]


def test_tenants_and_test_connection(sb, xero) -> None:
    tenants = xero.list_tenants()
    assert [t.tenant_id for t in tenants] == [t.tenant_id for t in sb.tenants]
    assert all(t.tenant_name for t in tenants)
    ok, message = xero.test_connection()
    assert ok, message


def test_full_sync_costs_ceil_records_over_1000_calls(sb, xero) -> None:
    tenant = sb.tenants[0].tenant_id
    pages = list(xero.iter_pages(tenant, INVOICES, None))
    assert set(ids(pages)) == {r["InvoiceID"] for r in sb.records(tenant, "invoices")}
    calls = accounting_calls(sb, "Invoices")
    assert len(calls) == 3 == xero.calls[tenant]
    assert [c.params for c in calls] == [
        {"page": str(n), "pageSize": "1000", "includeArchived": "true"} for n in (1, 2, 3)
    ]
    assert all(c.status == 200 for c in calls)


def test_unchanged_tenant_costs_one_call_per_entity(sb, xero) -> None:
    tenant = sb.tenants[0].tenant_id
    for entity in (ACCOUNTS, CONTACTS, INVOICES):
        pages = list(xero.iter_pages(tenant, entity, None))
        latest = max(parse_updated(r["UpdatedDateUTC"]) for p in pages for r in p.records)
        sb.reset_requests()
        again = list(xero.iter_pages(tenant, entity, latest))
        assert len(accounting_calls(sb, entity.path)) == 1, entity.name
        assert sum(len(p.records) for p in again) <= len(pages[0].records)


def test_update_between_pages_loses_nothing(sb, xero) -> None:
    tenant = sb.tenants[0].tenant_id
    everything = {r["InvoiceID"] for r in sb.records(tenant, "invoices")}
    sb.faults.script("Invoices", nth=2, kind="update_between_pages")

    pages = list(xero.iter_pages(tenant, INVOICES, None))

    assert set(ids(pages)) == everything
    assert any(p.pass_number == 2 for p in pages)
    calls = accounting_calls(sb, "Invoices")
    assert calls[3].if_modified_since is not None and calls[3].params["page"] == "1"
    assert len(calls) == xero.calls[tenant]


@pytest.mark.parametrize("kind", ["500", "reset", "truncated_json", "malformed_json", "429_minute"])
def test_transient_faults_are_retried(sb, xero, kind) -> None:
    tenant = sb.tenants[0].tenant_id
    sb.faults.script("Invoices", nth=2, kind=kind)
    pages = list(xero.iter_pages(tenant, INVOICES, None))
    assert len(set(ids(pages))) == sb.count(tenant, "invoices")
    assert len(accounting_calls(sb, "Invoices")) == 4


def test_offline_organisation_is_raised_at_once_for_a_reschedule(sb, xero) -> None:
    from xero.exceptions import XeroOrganisationOffline

    tenant = sb.tenants[0].tenant_id
    sb.faults.script("Invoices", nth=2, kind="503_org_offline")
    with pytest.raises(XeroOrganisationOffline, match="The Organisation is offline"):
        list(xero.iter_pages(tenant, INVOICES, None))
    assert len(accounting_calls(sb, "Invoices")) == 2  # no wait, no resend: the task reschedules itself


def test_daily_limit_stops_cleanly(sb, xero) -> None:
    from xero.exceptions import XeroDailyLimitReached

    tenant = sb.tenants[0].tenant_id
    sb.faults.script("Invoices", nth=2, kind="429_day")
    iterator = xero.iter_pages(tenant, INVOICES, None)
    assert len(next(iterator).records) == 1000
    with pytest.raises(XeroDailyLimitReached) as info:
        next(iterator)
    assert info.value.retry_after is not None
    assert len(accounting_calls(sb, "Invoices")) == 2


def test_token_expired_mid_run_refreshes_once(sb, xero) -> None:
    tenant = sb.tenants[0].tenant_id
    sb.faults.script("Invoices", nth=2, kind="token_expired")
    pages = list(xero.iter_pages(tenant, INVOICES, None))
    assert len(set(ids(pages))) == sb.count(tenant, "invoices")
    assert xero.token_manager.refresh_count == 2  # the bootstrap and the forced one


def _refresh_in_process(token_url: str, store_path: str, queue: Any) -> None:
    manager = TokenManager(
        client_id="sandbox-client",
        client_secret="sandbox-secret",
        token_url=token_url,
        store=FileTokenStore(store_path),
        lock=FileLock(store_path + ".lock"),
    )
    try:
        queue.put(("ok", manager.access_token()[:12], manager.refresh_count))
    except Exception as exc:  # report to the parent
        queue.put(("error", type(exc).__name__, 0))


def test_concurrent_processes_spend_the_refresh_token_once(sb, url, tmp_path: Path) -> None:
    store_path = str(tmp_path / "shared.json")
    FileTokenStore(store_path).save({"refresh_token": sb.issue_refresh_token(GRANULAR), "expires_at": 0})
    context = multiprocessing.get_context("fork")  # the children only run client code
    queue = context.Queue()
    sb.reset_requests()
    workers = [
        context.Process(target=_refresh_in_process, args=(f"{url}/connect/token", store_path, queue))
        for _ in range(4)
    ]
    for worker in workers:
        worker.start()
    results = [queue.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)

    assert [r[0] for r in results] == ["ok"] * 4, results
    assert len({r[1] for r in results}) == 1  # everyone uses the same access token
    assert sum(r[2] for r in results) == 1  # and exactly one process refreshed
    token_calls = [r for r in sb.requests if r.path.endswith("/connect/token")]
    assert len(token_calls) == 1 and token_calls[0].status == 200
