"""The SQL behind every figure of the dashboard, one named query per page.

Queries name tables without a schema (the connection sets it, see :mod:`dashboard.source`) and take
SQLAlchemy bind parameters (``:tenant_id``), so the same text runs on DuckDB and PostgreSQL, in the app and
in the tests. Amounts are never added across currencies: every money row keeps its ``currency_code``, and a
``*_base`` sum is NULL unless every row of the group has a base amount.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd
import sqlalchemy as sa


@dataclass(frozen=True)
class Query:
    """One named query: its SQL and the bind parameters it needs."""

    name: str
    sql: str
    params: tuple[str, ...] = ()


ORGANISATIONS = Query(
    "organisations",
    """
    select tenant_id, name as tenant_name, base_currency
    from organisation
    union all
    select distinct tenant_id, tenant_id as tenant_name, cast(null as text) as base_currency
    from _sync_state
    where tenant_id not in (select tenant_id from organisation)
    order by tenant_name, tenant_id
    """,
)

REVENUE_BY_MONTH = Query(
    "revenue_by_month",
    """
    select
        revenue_month,
        currency_code,
        sum(line_count) as line_count,
        sum(net_amount) as net_amount,
        sum(tax_amount) as tax_amount,
        base_currency_code,
        case when count(net_amount_base) = count(*) then sum(net_amount_base) end as net_amount_base
    from xero__revenue_by_month
    where tenant_id = :tenant_id
    group by revenue_month, currency_code, base_currency_code
    order by revenue_month, currency_code
    """,
    ("tenant_id",),
)

CASH_BY_MONTH = Query(
    "cash_by_month",
    """
    select
        cash_month,
        currency_code,
        cash_in,
        cash_out,
        net_cash,
        payment_count,
        base_currency_code,
        cash_in_base,
        cash_out_base
    from xero__cash_by_month
    where tenant_id = :tenant_id
    order by cash_month, currency_code
    """,
    ("tenant_id",),
)

AGING = Query(
    "aging",
    """
    select
        ledger,
        contact_name,
        contact_id,
        currency_code,
        invoice_count,
        amount_current,
        amount_1_30_days,
        amount_31_60_days,
        amount_61_90_days,
        amount_over_90_days,
        amount_due_total,
        oldest_due_date,
        as_of_date
    from xero__ar_ap_aging_as_of(cast(:as_of as date))
    where tenant_id = :tenant_id
    order by ledger desc, currency_code, amount_due_total desc, contact_name, contact_id
    """,
    ("tenant_id", "as_of"),
)

TOP_CUSTOMERS = Query(
    "top_customers",
    """
    select *
    from (
        select
            row_number() over (
                partition by currency_code
                order by coalesce(invoiced_last_12_months, 0) desc, coalesce(outstanding, 0) desc,
                    contact_name, contact_id
            ) as rank_in_currency,
            contact_name,
            contact_id,
            currency_code,
            invoiced_last_12_months,
            paid_last_12_months,
            outstanding,
            overdue,
            avg_days_to_pay,
            base_currency_code,
            outstanding_base
        from xero__customer_balance
        where tenant_id = :tenant_id
    ) as ranked
    where rank_in_currency <= :top_n
    order by currency_code, rank_in_currency
    """,
    ("tenant_id", "top_n"),
)

DSO_BY_MONTH = Query(
    "dso_by_month",
    """
    select month, currency_code, receivables_end, revenue, days_in_month, dso_days
    from xero__dso_by_month
    where tenant_id = :tenant_id
    order by month, currency_code
    """,
    ("tenant_id",),
)

DATA_FRESHNESS = Query(
    "data_freshness",
    """
    select
        tenant_name,
        tenant_id,
        entity,
        watermark,
        last_run_at,
        rows_in_table,
        stale_rows,
        quarantined_rows
    from xero__data_freshness
    order by tenant_name, tenant_id, entity
    """,
)

QUARANTINE_COUNTS = Query(
    "quarantine_counts",
    """
    select
        coalesce(organisation.name, quarantine.tenant_id) as tenant_name,
        quarantine.tenant_id,
        quarantine.entity,
        quarantine.table_name,
        count(*) as quarantined_rows,
        count(distinct quarantine.record_id) as records,
        max(quarantine._quarantined_at) as last_quarantined_at,
        min(quarantine.reason) as example_reason
    from _quarantine as quarantine
    left join organisation
        on organisation.tenant_id = quarantine.tenant_id
    group by coalesce(organisation.name, quarantine.tenant_id), quarantine.tenant_id, quarantine.entity,
        quarantine.table_name
    order by tenant_name, quarantine.tenant_id, quarantine.entity, quarantine.table_name
    """,
)

#: Every query by name.
QUERIES: dict[str, Query] = {
    query.name: query
    for query in (
        ORGANISATIONS,
        REVENUE_BY_MONTH,
        CASH_BY_MONTH,
        AGING,
        TOP_CUSTOMERS,
        DSO_BY_MONTH,
        DATA_FRESHNESS,
        QUARANTINE_COUNTS,
    )
}


def fetch(connection: sa.Connection, name: str, params: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Run the query ``name`` on ``connection`` and return its rows; amounts stay exact ``Decimal`` values.

    :raises KeyError: for an unknown query.
    :raises ValueError: when a bind parameter the query needs is missing.
    """
    query = QUERIES[name]
    given = dict(params or {})
    missing = [param for param in query.params if param not in given]
    if missing:
        raise ValueError(f"query {name!r} needs the parameters {missing}")
    result = connection.execute(sa.text(query.sql), {param: given[param] for param in query.params})
    return pd.DataFrame(result.fetchall(), columns=list(result.keys()), dtype=object)
