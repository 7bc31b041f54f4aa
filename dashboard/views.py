"""The dashboard's pages: each renders the rows of one named query for the chosen organisation.

Every amount is shown beside its currency and charted per currency, never summed across currencies. Tables
are static HTML tables whose containers carry stable keys (``st-key-<name>`` classes), so a browser can read
every figure back.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pandas as pd
import streamlit as st

Loader = Callable[[str, Mapping[str, Any]], pd.DataFrame]

AGING_BUCKETS = {
    "amount_current": "Current",
    "amount_1_30_days": "1–30 days",
    "amount_31_60_days": "31–60 days",
    "amount_61_90_days": "61–90 days",
    "amount_over_90_days": "Over 90 days",
    "amount_due_total": "Total due",
}
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~$:])")
LEDGERS = {"receivable": "Receivables (AR): what customers owe", "payable": "Payables (AP): what is owed"}


@dataclass(frozen=True)
class Organisation:
    """The organisation the pages show."""

    tenant_id: str
    name: str
    base_currency: str | None


@dataclass(frozen=True)
class PageContext:
    """What every page needs: the organisation and a loader of named queries."""

    organisation: Organisation
    load: Loader


UNKNOWN_CURRENCY = "(unknown)"


def currency(value: Any) -> str:
    """Show a currency code; rows whose document is not loaded have none."""
    return str(value) if value else UNKNOWN_CURRENCY


def money(value: Any) -> str:
    """Format an amount with two decimals and thousands separators; an unknown amount as ``–``."""
    if value is None or (isinstance(value, float) and value != value):
        return "–"
    return f"{Decimal(str(value)):,.2f}"


def count(value: Any) -> str:
    """Format a count with thousands separators."""
    if value is None or (isinstance(value, float) and value != value):
        return "–"
    return f"{int(value):,}"


def days(value: Any) -> str:
    """Format a number of days with one decimal."""
    if value is None or (isinstance(value, float) and value != value):
        return "–"
    return f"{Decimal(str(value)):,.1f}"


def month(value: Any) -> str:
    """Format a month (a date on its first day) as ``YYYY-MM``."""
    return pd.Timestamp(value).strftime("%Y-%m")


def day(value: Any) -> str:
    """Format a date as ``YYYY-MM-DD``."""
    if value is None or pd.isna(value):
        return "–"
    return pd.Timestamp(value).strftime("%Y-%m-%d")


def timestamp(value: Any) -> str:
    """Format a timestamp in UTC as ``YYYY-MM-DD HH:MM UTC``."""
    if value is None or pd.isna(value):
        return "–"
    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.strftime("%Y-%m-%d %H:%M UTC")


def literal(text: str) -> str:
    """Escape ``text`` so Streamlit's Markdown shows it as typed (names and reasons are data, not markup)."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def table(key: str, frame: pd.DataFrame, columns: Mapping[str, tuple[str, Callable[[Any], str]]]) -> None:
    """Show ``frame`` as a static table: ``columns`` maps a column to its header and formatter."""
    shown = pd.DataFrame(
        {header: [literal(fmt(value)) for value in frame[name]] for name, (header, fmt) in columns.items()},
        dtype=object,
    )
    with st.container(key=key):
        st.table(shown, hide_index=True)


def charts(rows: pd.DataFrame, title: str, y: Mapping[str, str], kind: str = "bar") -> None:
    """Chart the ``y`` columns (column: label) by ``month_label``, one chart per currency, side by side."""
    groups = per_currency(rows)
    for column, (code, frame) in zip(st.columns(len(groups)), groups, strict=True):
        with column:
            st.subheader(f"{title} ({code})")
            data = pd.DataFrame({"month": list(frame["month_label"])})
            for name, label in y.items():
                data[f"{label} ({code})"] = [None if v is None else float(v) for v in frame[name]]
            data = data.set_index("month")
            if kind == "line":
                st.line_chart(data, height=280)
            else:
                st.bar_chart(data, stack=False, height=280)


def per_currency(frame: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """Split rows by ``currency_code``, in order (rows without one together, as unknown)."""
    codes = frame["currency_code"].map(currency)
    return [(str(code), rows) for code, rows in frame.groupby(codes, sort=True)]


def no_rows(what: str) -> None:
    """Say that a page has nothing to show for the organisation."""
    st.info(f"No {what} for this organisation in the warehouse.")


def revenue_page(ctx: PageContext) -> None:
    """Net revenue per month and currency."""
    st.header(f"Revenue by month: {literal(ctx.organisation.name)}")
    st.caption(
        "Lines of sales invoices (ACCREC) that are AUTHORISED or PAID, net of tax, by invoice date, in the "
        "invoice currency; the base-currency amount uses the rate Xero gives (– when not every invoice has one)."
    )
    rows = ctx.load("revenue_by_month", {"tenant_id": ctx.organisation.tenant_id})
    if rows.empty:
        no_rows("revenue")
        return
    rows["month_label"] = [month(v) for v in rows["revenue_month"]]
    charts(rows, "Net revenue", {"net_amount": "Net revenue"})
    table(
        "revenue-table",
        rows,
        {
            "month_label": ("Month", str),
            "currency_code": ("Currency", currency),
            "net_amount": ("Net revenue", money),
            "tax_amount": ("Tax", money),
            "line_count": ("Lines", count),
            "base_currency_code": ("Base currency", lambda v: v or "–"),
            "net_amount_base": ("Net revenue (base)", money),
        },
    )


def cash_page(ctx: PageContext) -> None:
    """Cash received and paid per month and currency."""
    st.header(f"Cash in and out by month: {literal(ctx.organisation.name)}")
    st.caption(
        "Cash in: payments received on sales documents; cash out: payments made on bills. Both positive, by "
        "payment date, in the payment's currency."
    )
    rows = ctx.load("cash_by_month", {"tenant_id": ctx.organisation.tenant_id})
    if rows.empty:
        no_rows("payments")
        return
    rows["month_label"] = [month(v) for v in rows["cash_month"]]
    charts(rows, "Cash in and out", {"cash_in": "Cash in", "cash_out": "Cash out"})
    table(
        "cash-table",
        rows,
        {
            "month_label": ("Month", str),
            "currency_code": ("Currency", currency),
            "cash_in": ("Cash in", money),
            "cash_out": ("Cash out", money),
            "net_cash": ("Net cash", money),
            "payment_count": ("Payments", count),
            "base_currency_code": ("Base currency", lambda v: v or "–"),
            "cash_in_base": ("Cash in (base)", money),
            "cash_out_base": ("Cash out (base)", money),
        },
    )


def aging_page(ctx: PageContext) -> None:
    """Receivables and payables by contact and aging bucket as of a chosen date."""
    st.header(f"AR and AP aging: {literal(ctx.organisation.name)}")
    as_of = st.date_input("As of", value=dt.date.today(), key="as_of", bind="query-params")
    st.caption(
        "Approved (AUTHORISED) invoices and credit notes still open on that date, by days past their due date, "
        "as Xero's aged receivables and payables reports count them; amounts in the document currency."
    )
    rows = ctx.load("aging", {"tenant_id": ctx.organisation.tenant_id, "as_of": as_of})
    for ledger, title in LEDGERS.items():
        st.subheader(title)
        ledger_rows = rows[rows["ledger"] == ledger]
        if ledger_rows.empty:
            st.info(f"Nothing open on {as_of.isoformat()}.")
            continue
        codes = ledger_rows["currency_code"].map(currency).rename("currency_code")
        totals = ledger_rows.groupby(codes, sort=True)[[*AGING_BUCKETS, "invoice_count"]].sum().reset_index()
        table(
            f"aging-{ledger}-totals",
            totals,
            {
                "currency_code": ("Currency", currency),
                **{name: (label, money) for name, label in AGING_BUCKETS.items()},
                "invoice_count": ("Invoices", count),
            },
        )
        table(
            f"aging-{ledger}-contacts",
            ledger_rows,
            {
                "contact_name": ("Contact", lambda v: v or "(contact not loaded)"),
                "currency_code": ("Currency", currency),
                **{name: (label, money) for name, label in AGING_BUCKETS.items()},
                "invoice_count": ("Invoices", count),
                "oldest_due_date": ("Oldest due date", day),
            },
        )


def top_customers_page(ctx: PageContext) -> None:
    """The customers invoiced most over the last 12 months, per currency."""
    st.header(f"Top customers: {literal(ctx.organisation.name)}")
    top_n = st.number_input("Customers per currency", 1, 100, 10, key="top", bind="query-params")
    st.caption(
        "Ranked by the amount invoiced over the last 12 months within each currency; outstanding and overdue "
        "as of today."
    )
    rows = ctx.load("top_customers", {"tenant_id": ctx.organisation.tenant_id, "top_n": int(top_n)})
    if rows.empty:
        no_rows("customers")
        return
    table(
        "top-customers-table",
        rows,
        {
            "rank_in_currency": ("Rank", count),
            "contact_name": ("Customer", lambda v: v or "(contact not loaded)"),
            "currency_code": ("Currency", currency),
            "invoiced_last_12_months": ("Invoiced, 12 months", money),
            "paid_last_12_months": ("Paid, 12 months", money),
            "outstanding": ("Outstanding", money),
            "overdue": ("Overdue", money),
            "avg_days_to_pay": ("Average days to pay", days),
            "base_currency_code": ("Base currency", lambda v: v or "–"),
            "outstanding_base": ("Outstanding (base)", money),
        },
    )


def dso_page(ctx: PageContext) -> None:
    """Days sales outstanding per month and currency."""
    st.header(f"Days sales outstanding: {literal(ctx.organisation.name)}")
    st.caption(
        "Receivables at the end of the month ÷ that month's revenue × days in the month, per currency."
    )
    rows = ctx.load("dso_by_month", {"tenant_id": ctx.organisation.tenant_id})
    if rows.empty:
        no_rows("receivables")
        return
    rows["month_label"] = [month(v) for v in rows["month"]]
    charts(rows, "DSO in days", {"dso_days": "DSO days"}, kind="line")
    table(
        "dso-table",
        rows,
        {
            "month_label": ("Month", str),
            "currency_code": ("Currency", currency),
            "receivables_end": ("Receivables at month end", money),
            "revenue": ("Revenue", money),
            "days_in_month": ("Days", count),
            "dso_days": ("DSO days", days),
        },
    )


def freshness_page(ctx: PageContext) -> None:
    """How current each organisation × entity is, from the sync's own bookkeeping."""
    st.header("Data freshness")
    st.caption(
        "Per organisation and entity: the last change committed (watermark), the last successful run, rows in "
        "the table, rows whose newer version is quarantined (stale) and quarantined rows."
    )
    rows = ctx.load("data_freshness", {})
    table(
        "freshness-table",
        rows,
        {
            "tenant_name": ("Organisation", str),
            "entity": ("Entity", str),
            "watermark": ("Watermark", timestamp),
            "last_run_at": ("Last run", timestamp),
            "rows_in_table": ("Rows", count),
            "stale_rows": ("Stale rows", count),
            "quarantined_rows": ("Quarantined rows", count),
        },
    )


def quarantine_page(ctx: PageContext) -> None:
    """Quarantined rows per organisation, entity and table."""
    st.header("Quarantine")
    st.caption(
        "Rows that failed parsing or validation are kept in the quarantine table with their reason, never "
        "dropped. Query it for every row: select * from _quarantine."
    )
    rows = ctx.load("quarantine_counts", {})
    if rows.empty:
        st.success("No quarantined rows.")
        return
    table(
        "quarantine-table",
        rows,
        {
            "tenant_name": ("Organisation", str),
            "entity": ("Entity", str),
            "table_name": ("Table", str),
            "quarantined_rows": ("Quarantined rows", count),
            "records": ("Records", count),
            "last_quarantined_at": ("Last quarantined", timestamp),
            "example_reason": ("Example reason", str),
        },
    )
