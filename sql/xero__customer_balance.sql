-- xero__customer_balance: what each customer owes and how they pay, per tenant, customer and currency, as of
-- today (the session's current date).
-- Rule: outstanding and overdue count AUTHORISED sales invoices (ACCREC) only, as the aged receivables do
-- (never DRAFT, SUBMITTED, VOIDED or DELETED); invoiced counts AUTHORISED and PAID ones, as revenue does;
-- paid counts customer payments (ACCRECPAYMENT) that are not DELETED, by payment date. The last 12 months are
-- the 12 months up to and including today. Amounts are in the invoice currency.
--
-- Grain: one row per tenant_id, contact_id, currency_code (customers with an open, invoiced or paid amount)
-- Depends on: stg_xero__invoice, stg_xero__payment, stg_xero__contact, stg_xero__organisation
--
-- Columns:
--   tenant_id                Xero organisation (tenant)
--   tenant_name              name of the organisation (the tenant id until the organisation is loaded)
--   contact_id               the customer
--   contact_name             name of the customer (null when the contact is not loaded)
--   currency_code            invoice currency
--   outstanding              amount due on AUTHORISED sales invoices
--   overdue                  the part of outstanding whose due date has passed
--   open_invoice_count       AUTHORISED sales invoices with an amount due
--   invoiced_last_12_months  total (tax included) of AUTHORISED and PAID sales invoices dated in the last 12 months
--   paid_last_12_months      customer payments dated in the last 12 months
--   avg_days_to_pay          average days from invoice date to fully paid, over invoices fully paid in the last
--                            12 months (null when none)
--   base_currency_code       the organisation's base currency
--   outstanding_base         outstanding in the base currency at each invoice's rate (null when a rate is unknown)
with invoices as (
    select * from stg_xero__invoice
    where invoice_type = 'ACCREC'
),

payments as (
    select * from stg_xero__payment
    where payment_type = 'ACCRECPAYMENT'
        and not is_deleted
),

contacts as (
    select * from stg_xero__contact
),

organisations as (
    select * from stg_xero__organisation
),

window_start as (
    select cast(current_date - interval '12 months' as date) as first_day
),

open_invoices as (
    select
        invoices.tenant_id,
        invoices.contact_id,
        invoices.currency_code,
        sum(invoices.amount_due) as outstanding,
        sum(case when invoices.due_date < current_date then invoices.amount_due else 0 end) as overdue,
        count(*) as open_invoice_count,
        case
            when count(*) = count(
                case
                    when invoices.currency_code = organisations.base_currency_code then invoices.amount_due
                    when invoices.currency_rate > 0 then invoices.amount_due
                end
            )
                then sum(
                    case
                        when invoices.currency_code = organisations.base_currency_code then invoices.amount_due
                        else cast(round(invoices.amount_due / invoices.currency_rate, 4) as decimal(19, 4))
                    end
                )
        end as outstanding_base
    from invoices
    left join organisations
        on organisations.tenant_id = invoices.tenant_id
    where invoices.invoice_status = 'AUTHORISED'
        and invoices.amount_due <> 0
    group by invoices.tenant_id, invoices.contact_id, invoices.currency_code
),

invoiced as (
    select
        invoices.tenant_id,
        invoices.contact_id,
        invoices.currency_code,
        sum(invoices.total) as invoiced_last_12_months
    from invoices
    cross join window_start
    where invoices.invoice_status in ('AUTHORISED', 'PAID')
        and invoices.invoice_date > window_start.first_day
        and invoices.invoice_date <= current_date
    group by invoices.tenant_id, invoices.contact_id, invoices.currency_code
),

paid as (
    select
        invoices.tenant_id,
        invoices.contact_id,
        invoices.currency_code,
        sum(payments.amount) as paid_last_12_months
    from payments
    inner join invoices
        on invoices.tenant_id = payments.tenant_id
        and invoices.invoice_id = payments.invoice_id
    cross join window_start
    where payments.payment_date > window_start.first_day
        and payments.payment_date <= current_date
    group by invoices.tenant_id, invoices.contact_id, invoices.currency_code
),

days_to_pay as (
    select
        invoices.tenant_id,
        invoices.contact_id,
        invoices.currency_code,
        cast(avg(invoices.fully_paid_on_date - invoices.invoice_date) as decimal(10, 1)) as avg_days_to_pay
    from invoices
    cross join window_start
    where invoices.invoice_status = 'PAID'
        and invoices.fully_paid_on_date > window_start.first_day
        and invoices.fully_paid_on_date <= current_date
    group by invoices.tenant_id, invoices.contact_id, invoices.currency_code
),

customers as (
    select tenant_id, contact_id, currency_code from open_invoices
    union
    select tenant_id, contact_id, currency_code from invoiced
    union
    select tenant_id, contact_id, currency_code from paid
),

final as (
    select
        customers.tenant_id,
        coalesce(organisations.tenant_name, customers.tenant_id) as tenant_name,
        customers.contact_id,
        contacts.contact_name,
        customers.currency_code,
        coalesce(open_invoices.outstanding, 0) as outstanding,
        coalesce(open_invoices.overdue, 0) as overdue,
        coalesce(open_invoices.open_invoice_count, 0) as open_invoice_count,
        coalesce(invoiced.invoiced_last_12_months, 0) as invoiced_last_12_months,
        coalesce(paid.paid_last_12_months, 0) as paid_last_12_months,
        days_to_pay.avg_days_to_pay,
        organisations.base_currency_code,
        case
            when open_invoices.tenant_id is null then 0
            else open_invoices.outstanding_base
        end as outstanding_base
    from customers
    left join open_invoices
        on open_invoices.tenant_id = customers.tenant_id
        and open_invoices.contact_id = customers.contact_id
        and open_invoices.currency_code is not distinct from customers.currency_code
    left join invoiced
        on invoiced.tenant_id = customers.tenant_id
        and invoiced.contact_id = customers.contact_id
        and invoiced.currency_code is not distinct from customers.currency_code
    left join paid
        on paid.tenant_id = customers.tenant_id
        and paid.contact_id = customers.contact_id
        and paid.currency_code is not distinct from customers.currency_code
    left join days_to_pay
        on days_to_pay.tenant_id = customers.tenant_id
        and days_to_pay.contact_id = customers.contact_id
        and days_to_pay.currency_code is not distinct from customers.currency_code
    left join contacts
        on contacts.tenant_id = customers.tenant_id
        and contacts.contact_id = customers.contact_id
    left join organisations
        on organisations.tenant_id = customers.tenant_id
)

select * from final
