-- xero__dso_by_month: days sales outstanding per tenant, calendar month and currency, from the first month
-- with a sales invoice to the current month.
-- Rule: receivables_end is what customers owed at the end of the month on AUTHORISED sales invoices, with
-- the aging's as-of rule (payments dated after the month end are still owed then; DRAFT, SUBMITTED, VOIDED
-- and DELETED invoices never count), so it equals the receivable amount_due_total of
-- xero__ar_ap_aging_as_of(month end). revenue is the total (tax included, like the receivables) of AUTHORISED
-- and PAID sales invoices dated in the month. dso_days = receivables_end / revenue * days_in_month.
--
-- Grain: one row per tenant_id, month, currency_code
-- Depends on: stg_xero__invoice, stg_xero__payment, stg_xero__organisation
--
-- Columns:
--   tenant_id        Xero organisation (tenant)
--   tenant_name      name of the organisation (the tenant id until the organisation is loaded)
--   month            first day of the month
--   currency_code    invoice currency
--   receivables_end  amount customers owed at the end of the month
--   revenue          total of sales invoices dated in the month
--   days_in_month    days in the month
--   dso_days         receivables_end / revenue * days_in_month, one decimal (null without revenue)
with recursive invoices as (
    select * from stg_xero__invoice
    where invoice_type = 'ACCREC'
        and invoice_status in ('AUTHORISED', 'PAID')
        and invoice_date is not null
),

payments as (
    select * from stg_xero__payment
    where not is_deleted
        and invoice_id is not null
),

organisations as (
    select * from stg_xero__organisation
),

paid as (
    select
        tenant_id,
        invoice_id,
        sum(amount) as amount
    from payments
    group by tenant_id, invoice_id
),

events as (
    -- an invoice adds what was owed on it before any payment; each payment takes its amount off
    select
        invoices.tenant_id,
        invoices.currency_code,
        cast(date_trunc('month', invoices.invoice_date) as date) as month,
        coalesce(invoices.amount_due, 0) + coalesce(paid.amount, 0) as receivable_change,
        coalesce(invoices.total, 0) as revenue
    from invoices
    left join paid
        on paid.tenant_id = invoices.tenant_id
        and paid.invoice_id = invoices.invoice_id
    union all
    select
        invoices.tenant_id,
        invoices.currency_code,
        cast(date_trunc('month', greatest(payments.payment_date, invoices.invoice_date)) as date) as month,
        -payments.amount as receivable_change,
        0 as revenue
    from payments
    inner join invoices
        on invoices.tenant_id = payments.tenant_id
        and invoices.invoice_id = payments.invoice_id
),

monthly as (
    select
        tenant_id,
        currency_code,
        month,
        sum(receivable_change) as receivable_change,
        sum(revenue) as revenue
    from events
    group by tenant_id, currency_code, month
),

first_months as (
    select
        tenant_id,
        currency_code,
        min(month) as first_month
    from monthly
    group by tenant_id, currency_code
),

calendar (month) as (
    select min(first_month) from first_months
    union all
    select cast(month + interval '1 month' as date)
    from calendar
    where month < (
        select greatest(max(monthly.month), cast(date_trunc('month', current_date) as date)) from monthly
    )
),

series as (
    select
        first_months.tenant_id,
        first_months.currency_code,
        calendar.month
    from first_months
    inner join calendar
        on calendar.month >= first_months.first_month
),

running as (
    select
        series.tenant_id,
        series.currency_code,
        series.month,
        sum(coalesce(monthly.receivable_change, 0)) over (
            partition by series.tenant_id, series.currency_code
            order by series.month
            rows between unbounded preceding and current row
        ) as receivables_end,
        coalesce(monthly.revenue, 0) as revenue,
        cast(extract(day from series.month + interval '1 month' - interval '1 day') as integer) as days_in_month
    from series
    left join monthly
        on monthly.tenant_id = series.tenant_id
        and monthly.currency_code is not distinct from series.currency_code
        and monthly.month = series.month
),

final as (
    select
        running.tenant_id,
        coalesce(organisations.tenant_name, running.tenant_id) as tenant_name,
        running.month,
        running.currency_code,
        running.receivables_end,
        running.revenue,
        running.days_in_month,
        case
            when running.revenue > 0
                then cast(round(running.receivables_end * running.days_in_month / running.revenue, 1) as decimal(12, 1))
        end as dso_days
    from running
    left join organisations
        on organisations.tenant_id = running.tenant_id
)

select * from final
