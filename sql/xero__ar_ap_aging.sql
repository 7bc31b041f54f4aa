-- xero__ar_ap_aging: what customers owe (receivable) and what is owed to suppliers (payable), per
-- tenant, contact and currency, in aging buckets by days past the due date as of today.
-- Counts every invoice with an amount due except VOIDED, DELETED and DRAFT ones; amounts are in the
-- invoice currency (never summed across currencies).
--
-- Columns:
--   tenant_id            Xero organisation (tenant)
--   ledger               'receivable' (sales invoices, ACCREC…) or 'payable' (bills, ACCPAY…)
--   contact_id           customer or supplier
--   contact_name         name of that contact (null when the contact is not loaded)
--   currency_code        currency of the amounts
--   invoice_count        open invoices counted
--   amount_current       amount due on invoices not yet past their due date (or without one)
--   amount_1_30_days     amount due 1 to 30 days past the due date
--   amount_31_60_days    amount due 31 to 60 days past the due date
--   amount_61_90_days    amount due 61 to 90 days past the due date
--   amount_over_90_days  amount due more than 90 days past the due date
--   amount_due_total     total amount due (the sum of the five buckets)
--   oldest_due_date      earliest due date among the open invoices
--   as_of_date           the date the aging is computed for (today in the session's time zone)
create or replace view xero__ar_ap_aging as
with invoices as (
    select * from stg_xero__invoice
),

contacts as (
    select * from stg_xero__contact
),

open_invoices as (
    select
        invoices.*,
        case
            when invoice_type in ('ACCREC', 'ACCRECCREDIT', 'AROVERPAYMENT', 'ARPREPAYMENT') then 'receivable'
            else 'payable'
        end as ledger,
        current_date as as_of_date,
        case when due_date is null then 0 else current_date - due_date end as days_past_due
    from invoices
    where coalesce(invoice_status, '') not in ('VOIDED', 'DELETED', 'DRAFT')
        and amount_due <> 0
),

final as (
    select
        open_invoices.tenant_id,
        open_invoices.ledger,
        open_invoices.contact_id,
        contacts.contact_name,
        open_invoices.currency_code,
        count(*) as invoice_count,
        sum(case when days_past_due <= 0 then amount_due else 0 end) as amount_current,
        sum(case when days_past_due between 1 and 30 then amount_due else 0 end) as amount_1_30_days,
        sum(case when days_past_due between 31 and 60 then amount_due else 0 end) as amount_31_60_days,
        sum(case when days_past_due between 61 and 90 then amount_due else 0 end) as amount_61_90_days,
        sum(case when days_past_due > 90 then amount_due else 0 end) as amount_over_90_days,
        sum(amount_due) as amount_due_total,
        min(open_invoices.due_date) as oldest_due_date,
        open_invoices.as_of_date
    from open_invoices
    left join contacts
        on contacts.tenant_id = open_invoices.tenant_id
        and contacts.contact_id = open_invoices.contact_id
    group by
        open_invoices.tenant_id,
        open_invoices.ledger,
        open_invoices.contact_id,
        contacts.contact_name,
        open_invoices.currency_code,
        open_invoices.as_of_date
)

select * from final
