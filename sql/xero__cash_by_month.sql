-- xero__cash_by_month: money received and money paid out per tenant, calendar month and currency.
-- Rule: cash in is what customers paid on sales invoices (ACCRECPAYMENT) plus refunds received from
-- suppliers (APCREDITPAYMENT, APOVERPAYMENTPAYMENT, APPREPAYMENTPAYMENT); cash out is what was paid on bills
-- (ACCPAYPAYMENT) plus refunds paid to customers (ARCREDITPAYMENT, AROVERPAYMENTPAYMENT,
-- ARPREPAYMENTPAYMENT). Both are positive; DELETED payments are excluded. Amounts are in the currency of the
-- document paid, by payment date; base-currency amounts use each payment's own CurrencyRate.
--
-- Grain: one row per tenant_id, cash_month, currency_code
-- Depends on: stg_xero__payment, stg_xero__invoice, stg_xero__organisation
--
-- Columns:
--   tenant_id           Xero organisation (tenant)
--   tenant_name         name of the organisation (the tenant id until the organisation is loaded)
--   cash_month          first day of the month of the payment date
--   currency_code       currency of the invoice paid (null for payments whose document is not loaded)
--   cash_in             money received (positive)
--   cash_out            money paid out (positive)
--   net_cash            cash_in - cash_out
--   payment_count       payments counted (in and out)
--   base_currency_code  the organisation's base currency
--   cash_in_base        cash_in in the base currency (null when a payment's rate is unknown)
--   cash_out_base       cash_out in the base currency (null when a payment's rate is unknown)
--   net_cash_base       cash_in_base - cash_out_base
with payments as (
    select * from stg_xero__payment
),

invoices as (
    select * from stg_xero__invoice
),

organisations as (
    select * from stg_xero__organisation
),

live_payments as (
    select
        payments.tenant_id,
        cast(date_trunc('month', payments.payment_date) as date) as cash_month,
        invoices.currency_code,
        organisations.base_currency_code,
        case
            when payments.payment_type in (
                'ACCRECPAYMENT', 'APCREDITPAYMENT', 'APOVERPAYMENTPAYMENT', 'APPREPAYMENTPAYMENT'
            ) then 'in'
            else 'out'
        end as direction,
        payments.amount,
        case
            when invoices.currency_code = organisations.base_currency_code then payments.amount
            when payments.currency_rate > 0
                then cast(round(payments.amount / payments.currency_rate, 4) as decimal(19, 4))
        end as amount_base
    from payments
    left join invoices
        on invoices.tenant_id = payments.tenant_id
        and invoices.invoice_id = payments.invoice_id
    left join organisations
        on organisations.tenant_id = payments.tenant_id
    where not payments.is_deleted
),

monthly as (
    select
        tenant_id,
        cash_month,
        currency_code,
        base_currency_code,
        sum(case when direction = 'in' then amount else 0 end) as cash_in,
        sum(case when direction = 'out' then amount else 0 end) as cash_out,
        count(*) as payment_count,
        count(case when direction = 'in' then 1 end) as in_count,
        count(case when direction = 'in' then amount_base end) as in_base_count,
        sum(case when direction = 'in' then amount_base else 0 end) as in_base,
        count(case when direction = 'out' then 1 end) as out_count,
        count(case when direction = 'out' then amount_base end) as out_base_count,
        sum(case when direction = 'out' then amount_base else 0 end) as out_base
    from live_payments
    group by tenant_id, cash_month, currency_code, base_currency_code
),

final as (
    select
        monthly.tenant_id,
        coalesce(organisations.tenant_name, monthly.tenant_id) as tenant_name,
        monthly.cash_month,
        monthly.currency_code,
        monthly.cash_in,
        monthly.cash_out,
        monthly.cash_in - monthly.cash_out as net_cash,
        monthly.payment_count,
        monthly.base_currency_code,
        case when monthly.in_count = monthly.in_base_count then monthly.in_base end as cash_in_base,
        case when monthly.out_count = monthly.out_base_count then monthly.out_base end as cash_out_base,
        case
            when monthly.in_count = monthly.in_base_count and monthly.out_count = monthly.out_base_count
                then monthly.in_base - monthly.out_base
        end as net_cash_base
    from monthly
    left join organisations
        on organisations.tenant_id = monthly.tenant_id
)

select * from final
