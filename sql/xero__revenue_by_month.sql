-- xero__revenue_by_month: sales per tenant, calendar month, currency and account class, from the lines
-- of sales invoices (ACCREC) that are AUTHORISED or PAID. Drafts, submitted, voided and deleted
-- invoices are excluded. Amounts are in the invoice currency.
--
-- Columns:
--   tenant_id          Xero organisation (tenant)
--   revenue_month      first day of the month of the invoice date
--   currency_code      invoice currency
--   account_class      class of the account the lines are posted to (null when no account matched)
--   invoice_count      distinct invoices with lines in the group
--   line_count         lines counted
--   line_amount        sum of line amounts as Xero stores them (tax included on Inclusive invoices)
--   tax_amount         sum of tax on the lines
--   net_amount         sum of line amounts excluding tax
create or replace view xero__revenue_by_month as
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
        revenue_month,
        currency_code,
        account_class,
        count(distinct invoice_id) as invoice_count,
        count(*) as line_count,
        sum(line_amount) as line_amount,
        sum(coalesce(tax_amount, 0)) as tax_amount,
        sum(net_line_amount) as net_amount
    from sales_lines
    group by tenant_id, revenue_month, currency_code, account_class
)

select * from final
