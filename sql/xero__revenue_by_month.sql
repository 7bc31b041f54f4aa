-- xero__revenue_by_month: sales per tenant, calendar month, currency and account class, from the lines of
-- sales invoices (ACCREC).
-- Rule: revenue counts AUTHORISED and PAID sales invoices, by invoice date, as Xero's Profit and Loss does
-- (accrual basis); DRAFT, SUBMITTED (awaiting approval), VOIDED and DELETED invoices are excluded. Amounts are
-- never added across currencies: each row is one invoice currency, with its base-currency equivalent beside it.
--
-- Grain: one row per tenant_id, revenue_month, currency_code, account_class
-- Depends on: xero__invoice_line_items
--
-- Columns:
--   tenant_id           Xero organisation (tenant)
--   tenant_name         name of the organisation (the tenant id until the organisation is loaded)
--   revenue_month       first day of the month of the invoice date
--   currency_code       invoice currency
--   account_class       class of the account the lines are posted to (null when no account matched)
--   invoice_count       distinct invoices with lines in the group
--   line_count          lines counted
--   line_amount         sum of line amounts as Xero stores them (tax included on Inclusive invoices)
--   tax_amount          sum of tax on the lines
--   net_amount          sum of line amounts excluding tax
--   base_currency_code  the organisation's base currency
--   net_amount_base     net_amount in the base currency at each invoice's rate (null when a rate is unknown)
with line_items as (
    select * from xero__invoice_line_items
),

sales_lines as (
    select
        line_items.*,
        cast(date_trunc('month', invoice_date) as date) as revenue_month
    from line_items
    where invoice_type = 'ACCREC'
        and invoice_status in ('AUTHORISED', 'PAID')
),

final as (
    select
        tenant_id,
        tenant_name,
        revenue_month,
        currency_code,
        account_class,
        count(distinct invoice_id) as invoice_count,
        count(*) as line_count,
        sum(line_amount) as line_amount,
        sum(coalesce(tax_amount, 0)) as tax_amount,
        sum(net_line_amount) as net_amount,
        base_currency_code,
        case
            when count(*) = count(net_line_amount_base) then sum(net_line_amount_base)
        end as net_amount_base
    from sales_lines
    group by tenant_id, tenant_name, revenue_month, currency_code, account_class, base_currency_code
)

select * from final
