-- xero__cash_received_by_month: payments per tenant, calendar month, payment type and currency, for
-- cash-flow dashboards. Deleted payments are excluded; every other payment is counted.
--
-- Columns:
--   tenant_id      Xero organisation (tenant)
--   payment_month  first day of the month of the payment date
--   payment_type   ACCRECPAYMENT (customer paid an invoice), ACCPAYPAYMENT (bill paid), ARCREDITPAYMENT,
--                  APCREDITPAYMENT, and the overpayment and prepayment refund types
--   cash_direction 'in' (money received by the organisation) or 'out' (money paid out)
--   currency_code  currency of the invoice paid (null for payments not on an invoice)
--   payment_count  payments counted
--   amount         sum of payment amounts in the currency of what was paid
--   bank_amount    sum of amounts in the bank account's currency
create or replace view xero__cash_received_by_month as
with payments as (
    select * from stg_xero__payment
),

invoices as (
    select * from stg_xero__invoice
),

live_payments as (
    select
        payments.*,
        cast(date_trunc('month', payments.payment_date) as date) as payment_month,
        case
            when payments.payment_type in (
                'ACCRECPAYMENT', 'APCREDITPAYMENT', 'APOVERPAYMENTPAYMENT', 'APPREPAYMENTPAYMENT'
            ) then 'in'
            else 'out'
        end as cash_direction,
        invoices.currency_code
    from payments
    left join invoices
        on invoices.tenant_id = payments.tenant_id
        and invoices.invoice_id = payments.invoice_id
    where not payments.is_deleted
),

final as (
    select
        tenant_id,
        payment_month,
        payment_type,
        cash_direction,
        currency_code,
        count(*) as payment_count,
        sum(amount) as amount,
        sum(bank_amount) as bank_amount
    from live_payments
    group by tenant_id, payment_month, payment_type, cash_direction, currency_code
)

select * from final
