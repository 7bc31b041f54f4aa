"""The dashboard in headless Chromium, against a warehouse the real DAG loaded from the sandbox.

Every page's figures are read back from the browser and compared with SQL run directly on the marts, on
DuckDB (through the read copy) and on PostgreSQL. ``DASHBOARD_SCREENSHOT=<path>`` saves a screenshot of the
revenue page there (docs/dashboard.png is made this way).
"""

from __future__ import annotations

import datetime as dt
import os
from collections import Counter
from decimal import Decimal
from typing import Any

import pytest

from tests.dashboard.browser import CENT, cents, open_page, read_table, shown_amount, tenths
from tests.dashboard.conftest import DemoWarehouse, StartDashboard

pytestmark = pytest.mark.e2e


def _month(value: Any) -> str:
    return value.strftime("%Y-%m")


def _utc(value: Any) -> str:
    if value is None:
        return "–"
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _heading(page: Any, text: str) -> int:
    return page.get_by_role("heading", name=text, exact=True).count()


def check_revenue(page: Any, url: str, demo: DemoWarehouse, tenant_id: str, name: str) -> None:
    open_page(page, url, "", ".st-key-revenue-table", org=name)  # the first page is the app's home
    assert _heading(page, f"Revenue by month: {name}") == 1
    expected = {
        (_month(month), currency or "(unknown)"): (cents(net), cents(tax))
        for month, currency, net, tax in demo.sql(
            "select revenue_month, currency_code, sum(net_amount), sum(tax_amount) "
            "from xero__revenue_by_month where tenant_id = :t group by revenue_month, currency_code",
            {"t": tenant_id},
        )
    }
    shown = {
        (row["Month"], row["Currency"]): (shown_amount(row["Net revenue"]), shown_amount(row["Tax"]))
        for row in read_table(page, "revenue-table")
    }
    assert len(expected) >= 12
    assert shown == expected


def test_figures_on_every_page_equal_the_marts(
    demo_warehouse: DemoWarehouse, start_dashboard: StartDashboard, page: Any
) -> None:
    demo = demo_warehouse
    server = start_dashboard(demo.env)
    organisations = demo.sql("select tenant_id, name from organisation order by name")
    assert len(organisations) == 2 and all(name for _, name in organisations)
    (tenant_id, name), (other_id, other_name) = organisations

    # Revenue by month: every month and currency.
    check_revenue(page, server.url, demo, tenant_id, name)
    screenshot = os.environ.get("DASHBOARD_SCREENSHOT")
    if screenshot and demo.dialect == "duckdb":
        page.screenshot(path=screenshot)

    # The organisation picker: choosing the other organisation shows its figures.
    page.get_by_test_id("stSelectbox").click()
    page.get_by_role("option", name=other_name, exact=True).click()
    page.get_by_role("heading", name=f"Revenue by month: {other_name}", exact=True).wait_for(timeout=60_000)
    assert f"org={other_name.replace(' ', '+')}" in page.url
    check_revenue(page, server.url, demo, other_id, other_name)

    # Cash in and out by month.
    open_page(page, server.url, "cash", ".st-key-cash-table", org=name)
    expected_cash = {
        (_month(month), currency or "(unknown)"): (cents(cash_in), cents(cash_out), cents(net), int(count))
        for month, currency, cash_in, cash_out, net, count in demo.sql(
            "select cash_month, currency_code, cash_in, cash_out, net_cash, payment_count "
            "from xero__cash_by_month where tenant_id = :t",
            {"t": tenant_id},
        )
    }
    shown_cash = {
        (row["Month"], row["Currency"]): (
            shown_amount(row["Cash in"]),
            shown_amount(row["Cash out"]),
            shown_amount(row["Net cash"]),
            int(row["Payments"].replace(",", "")),
        )
        for row in read_table(page, "cash-table")
    }
    assert expected_cash and shown_cash == expected_cash
    assert any(cash_out for _, cash_out, _, _ in expected_cash.values())

    # AR and AP aging as of a date inside the data, so several buckets hold money.
    [(last_invoice,)] = demo.sql("select max(date) from invoice where tenant_id = :t", {"t": tenant_id})
    as_of = last_invoice - dt.timedelta(days=120)
    open_page(page, server.url, "aging", ".st-key-aging-receivable-totals", org=name, as_of=as_of.isoformat())
    buckets = {
        "Current": "amount_current",
        "1–30 days": "amount_1_30_days",
        "31–60 days": "amount_31_60_days",
        "61–90 days": "amount_61_90_days",
        "Over 90 days": "amount_over_90_days",
        "Total due": "amount_due_total",
    }
    sums = ", ".join(f"sum({column})" for column in buckets.values())
    aging = "xero__ar_ap_aging_as_of(cast(:d as date))"
    for ledger in ("receivable", "payable"):
        expected_totals = {
            currency or "(unknown)": [cents(value) for value in values]
            for ledger_name, currency, *values in demo.sql(
                f"select ledger, currency_code, {sums} from {aging} where tenant_id = :t group by 1, 2",
                {"t": tenant_id, "d": as_of},
            )
            if ledger_name == ledger
        }
        shown_totals = {
            row["Currency"]: [shown_amount(row[label]) for label in buckets]
            for row in read_table(page, f"aging-{ledger}-totals")
        }
        assert shown_totals == expected_totals
        filled = {
            bucket
            for amounts in expected_totals.values()
            for bucket, amount in enumerate(amounts[:5])
            if amount
        }
        assert len(filled) >= 2  # the as-of date spreads the money over several buckets
        expected_contacts = Counter(
            (contact or "(contact not loaded)", currency or "(unknown)", cents(total), int(count))
            for contact, currency, total, count in demo.sql(
                f"select contact_name, currency_code, amount_due_total, invoice_count from {aging} "
                "where tenant_id = :t and ledger = :l",
                {"t": tenant_id, "d": as_of, "l": ledger},
            )
        )
        shown_contacts = Counter(
            (row["Contact"], row["Currency"], shown_amount(row["Total due"]), int(row["Invoices"]))
            for row in read_table(page, f"aging-{ledger}-contacts")
        )
        assert shown_contacts == expected_contacts

    # Top customers: the ten largest amounts invoiced over 12 months, each with its balance.
    open_page(page, server.url, "top-customers", ".st-key-top-customers-table", org=name)
    balances = demo.sql(
        "select contact_name, currency_code, invoiced_last_12_months, outstanding, overdue "
        "from xero__customer_balance where tenant_id = :t",
        {"t": tenant_id},
    )
    shown_top = read_table(page, "top-customers-table")
    currencies = {currency or "(unknown)" for _, currency, *_ in balances}
    for code in currencies:  # the ten customers invoiced most within each currency
        invoiced = sorted(
            (Decimal(str(row[2] or 0)).quantize(CENT) for row in balances if (row[1] or "(unknown)") == code),
            reverse=True,
        )[:10]
        shown_invoiced = [
            shown_amount(row["Invoiced, 12 months"]) or Decimal(0)
            for row in shown_top
            if row["Currency"] == code
        ]
        assert sorted(shown_invoiced, reverse=True) == invoiced
    assert len(shown_top) == sum(
        min(10, sum(1 for b in balances if (b[1] or "(unknown)") == code)) for code in currencies
    )
    by_customer = {(contact, currency): row for contact, currency, *row in balances}
    for row in shown_top:
        _, outstanding, overdue = by_customer[(row["Customer"], row["Currency"])]
        assert shown_amount(row["Outstanding"]) == cents(outstanding)
        assert shown_amount(row["Overdue"]) == cents(overdue)

    # Days sales outstanding.
    open_page(page, server.url, "dso", ".st-key-dso-table", org=name)
    expected_dso = {
        (_month(month), currency or "(unknown)"): (cents(receivables), tenths(dso))
        for month, currency, receivables, dso in demo.sql(
            "select month, currency_code, receivables_end, dso_days from xero__dso_by_month where tenant_id = :t",
            {"t": tenant_id},
        )
    }
    shown_dso = {
        (row["Month"], row["Currency"]): (
            shown_amount(row["Receivables at month end"]),
            None if row["DSO days"] == "–" else Decimal(row["DSO days"].replace(",", "")),
        )
        for row in read_table(page, "dso-table")
    }
    assert expected_dso and shown_dso == expected_dso

    # Data freshness: every organisation × entity.
    open_page(page, server.url, "freshness", ".st-key-freshness-table", org=name)
    expected_freshness = {
        (tenant_name, entity): (_utc(watermark), _utc(last_run), int(rows), int(stale), int(quarantined))
        for tenant_name, entity, watermark, last_run, rows, stale, quarantined in demo.sql(
            "select tenant_name, entity, watermark, last_run_at, rows_in_table, stale_rows, quarantined_rows "
            "from xero__data_freshness"
        )
    }
    shown_freshness = {
        (row["Organisation"], row["Entity"]): (
            row["Watermark"],
            row["Last run"],
            int(row["Rows"].replace(",", "")),
            int(row["Stale rows"].replace(",", "")),
            int(row["Quarantined rows"].replace(",", "")),
        )
        for row in read_table(page, "freshness-table")
    }
    [(synced,)] = demo.sql("select count(*) from _sync_state")
    assert len(expected_freshness) == synced >= 2 * 4
    assert shown_freshness == expected_freshness

    # Quarantine counts: the record with an unparseable date is there.
    open_page(page, server.url, "quarantine", ".st-key-quarantine-table", org=name)
    expected_quarantine = {
        (tenant_name, entity, table_name): int(count)
        for tenant_name, entity, table_name, count in demo.sql(
            "select organisation.name, q.entity, q.table_name, count(*) from _quarantine as q "
            "join organisation on organisation.tenant_id = q.tenant_id group by 1, 2, 3"
        )
    }
    shown_quarantine = {
        (row["Organisation"], row["Entity"], row["Table"]): int(row["Quarantined rows"])
        for row in read_table(page, "quarantine-table")
    }
    assert sum(expected_quarantine.values()) >= 1
    assert shown_quarantine == expected_quarantine
    assert "Traceback" not in server.output()
