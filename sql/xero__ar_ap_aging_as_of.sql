-- xero__ar_ap_aging_as_of: what customers owed (receivable) and what was owed to suppliers (payable) on a
-- given date, per tenant, contact and currency, in aging buckets by days past the due date.
-- Rule: as Xero's Aged Receivables and Aged Payables reports, only approved documents count: AUTHORISED
-- invoices and bills (a part-paid one counts its amount still due), never DRAFT, SUBMITTED (awaiting
-- approval), VOIDED or DELETED ones. As of a past date, a document dated on or before it is open by what
-- was still unpaid then: its amount due today plus the payments dated after the as-of date (so an invoice
-- PAID since counts as AUTHORISED then). Credit notes applied later are not added back (their dates are not
-- synced). Amounts are in the document currency (never summed across currencies).
-- Call it as: select * from xero.xero__ar_ap_aging_as_of(DATE '2026-06-30').
--
-- Grain: one row per tenant_id, ledger, contact_id, currency_code for the as-of date
-- Depends on: stg_xero__invoice, stg_xero__payment, stg_xero__contact, stg_xero__organisation
-- Kind: table function (as_of date)
--
-- Columns:
--   tenant_id              Xero organisation (tenant)
--   tenant_name            name of the organisation (the tenant id until the organisation is loaded)
--   ledger                 'receivable' (sales invoices, ACCREC) or 'payable' (bills, ACCPAY)
--   contact_id             customer or supplier
--   contact_name           name of that contact (null when the contact is not loaded)
--   currency_code          currency of the amounts
--   invoice_count          open documents counted
--   amount_current         amount due on documents not past their due date on the as-of date (or without one)
--   amount_1_30_days       amount due 1 to 30 days past the due date
--   amount_31_60_days      amount due 31 to 60 days past the due date
--   amount_61_90_days      amount due 61 to 90 days past the due date
--   amount_over_90_days    amount due more than 90 days past the due date
--   amount_due_total       total amount due (the sum of the five buckets)
--   oldest_due_date        earliest due date among the open documents
--   as_of_date             the date the aging is computed for
--   base_currency_code     the organisation's base currency
--   amount_due_total_base  amount_due_total in the base currency at each document's rate (null when unknown)
with invoices as (
    select * from {{ ref('stg_xero__invoice') }}
),

contacts as (
    select * from {{ ref('stg_xero__contact') }}
),

organisations as (
    select * from {{ ref('stg_xero__organisation') }}
),

paid_after as (
    select
        tenant_id,
        invoice_id,
        sum(amount) as amount
    from {{ ref('stg_xero__payment') }}
    where not is_deleted
        and invoice_id is not null
        and payment_date > cast(as_of as date)
    group by tenant_id, invoice_id
),

open_invoices as (
    select
        invoices.tenant_id,
        case
            when invoices.invoice_type in ('ACCREC', 'ACCRECCREDIT', 'AROVERPAYMENT', 'ARPREPAYMENT')
                then 'receivable'
            else 'payable'
        end as ledger,
        invoices.contact_id,
        invoices.currency_code,
        invoices.currency_rate,
        invoices.due_date,
        coalesce(invoices.amount_due, 0) + coalesce(paid_after.amount, 0) as amount_due,
        cast(as_of as date) as as_of_date,
        case
            when invoices.due_date is null then 0
            else cast(as_of as date) - invoices.due_date
        end as days_past_due
    from invoices
    left join paid_after
        on paid_after.tenant_id = invoices.tenant_id
        and paid_after.invoice_id = invoices.invoice_id
    where invoices.invoice_status in ('AUTHORISED', 'PAID')
        and coalesce(invoices.invoice_date, cast(as_of as date)) <= cast(as_of as date)
),

counted as (
    select
        open_invoices.*,
        organisations.base_currency_code,
        case
            when open_invoices.currency_code = organisations.base_currency_code then open_invoices.amount_due
            when open_invoices.currency_rate > 0
                then cast(round(open_invoices.amount_due / open_invoices.currency_rate, 4) as decimal(19, 4))
        end as amount_due_base
    from open_invoices
    left join organisations
        on organisations.tenant_id = open_invoices.tenant_id
    where open_invoices.amount_due <> 0
),

final as (
    select
        counted.tenant_id,
        coalesce(organisations.tenant_name, counted.tenant_id) as tenant_name,
        counted.ledger,
        counted.contact_id,
        contacts.contact_name,
        counted.currency_code,
        count(*) as invoice_count,
        sum(case when days_past_due <= 0 then amount_due else 0 end) as amount_current,
        sum(case when days_past_due between 1 and 30 then amount_due else 0 end) as amount_1_30_days,
        sum(case when days_past_due between 31 and 60 then amount_due else 0 end) as amount_31_60_days,
        sum(case when days_past_due between 61 and 90 then amount_due else 0 end) as amount_61_90_days,
        sum(case when days_past_due > 90 then amount_due else 0 end) as amount_over_90_days,
        sum(amount_due) as amount_due_total,
        min(counted.due_date) as oldest_due_date,
        counted.as_of_date,
        counted.base_currency_code,
        case when count(*) = count(amount_due_base) then sum(amount_due_base) end as amount_due_total_base
    from counted
    left join contacts
        on contacts.tenant_id = counted.tenant_id
        and contacts.contact_id = counted.contact_id
    left join organisations
        on organisations.tenant_id = counted.tenant_id
    group by
        counted.tenant_id,
        organisations.tenant_name,
        counted.ledger,
        counted.contact_id,
        contacts.contact_name,
        counted.currency_code,
        counted.as_of_date,
        counted.base_currency_code
)

select * from final
