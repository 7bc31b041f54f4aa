-- xero__invoice_line_items: every invoice line enriched with its invoice, contact and account, for
-- dashboards that slice sales and purchases by customer, supplier, account or month. One row per line
-- (the joins never fan out); lines of every invoice status are kept, filter on invoice_status.
-- The account is matched by account_id when the line has one, else by account_code within the tenant
-- (preferring an active account when a code was reused). Base-currency amounts use the invoice's
-- CurrencyRate (units of invoice currency per unit of base currency); they are null when the rate is unknown.
--
-- Grain: one row per tenant_id, line_item_id
-- Depends on: stg_xero__invoice_line_item, stg_xero__invoice, stg_xero__contact, stg_xero__account, stg_xero__organisation
--
-- Columns:
--   tenant_id          Xero organisation (tenant)
--   tenant_name        name of the organisation (the tenant id until the organisation is loaded)
--   invoice_id         the invoice the line is on
--   line_item_id       the line (unique within the tenant)
--   line_number        1-based position of the line on the invoice
--   invoice_number     invoice number
--   invoice_type       ACCREC (sales) or ACCPAY (purchases)
--   invoice_status     DRAFT, SUBMITTED, AUTHORISED, PAID, VOIDED or DELETED
--   invoice_date       the invoice's date
--   due_date           the invoice's due date
--   currency_code      invoice currency
--   currency_rate      invoice currency per unit of base currency
--   line_amount_types  Exclusive, Inclusive or NoTax
--   contact_id         the invoice's customer or supplier
--   contact_name       name of that contact (null when the contact is not loaded)
--   description        line description
--   item_code          inventory item code
--   quantity           quantity
--   unit_amount        price per unit
--   discount_rate      discount percentage
--   discount_amount    discount amount
--   tax_type           tax type of the line
--   tax_amount         tax on the line
--   line_amount        line amount as Xero stores it (includes tax when line_amount_types = 'Inclusive')
--   net_line_amount    line amount excluding tax
--   account_id         account the line is posted to (matched as described above)
--   account_code       code of that account (the line's own code when no account matched)
--   account_name       name of that account
--   account_type       type of that account (REVENUE, SALES, EXPENSE, …)
--   account_class      class of that account (REVENUE, EXPENSE, ASSET, LIABILITY, EQUITY)
--   is_deleted         the invoice is deleted
--   is_voided          the invoice is voided
--   base_currency_code    the organisation's base currency
--   net_line_amount_base  net_line_amount in the base currency (null when no rate is known)
with line_items as (
    select * from stg_xero__invoice_line_item
),

invoices as (
    select * from stg_xero__invoice
),

contacts as (
    select * from stg_xero__contact
),

accounts as (
    select * from stg_xero__account
),

organisations as (
    select * from stg_xero__organisation
),

accounts_by_code as (
    select * from (
        select
            accounts.*,
            row_number() over (
                partition by tenant_id, account_code
                order by
                    case account_status when 'ACTIVE' then 0 when 'ARCHIVED' then 1 else 2 end,
                    updated_date_utc desc nulls last,
                    account_id
            ) as code_rank
        from accounts
        where account_code is not null
    ) ranked
    where code_rank = 1
),

joined as (
    select
        line_items.tenant_id,
        coalesce(organisations.tenant_name, line_items.tenant_id) as tenant_name,
        line_items.invoice_id,
        line_items.line_item_id,
        line_items.line_number,
        invoices.invoice_number,
        invoices.invoice_type,
        invoices.invoice_status,
        invoices.invoice_date,
        invoices.due_date,
        invoices.currency_code,
        invoices.currency_rate,
        invoices.line_amount_types,
        invoices.contact_id,
        contacts.contact_name,
        line_items.description,
        line_items.item_code,
        line_items.quantity,
        line_items.unit_amount,
        line_items.discount_rate,
        line_items.discount_amount,
        line_items.tax_type,
        line_items.tax_amount,
        line_items.line_amount,
        case
            when invoices.line_amount_types = 'Inclusive'
                then line_items.line_amount - coalesce(line_items.tax_amount, 0)
            else line_items.line_amount
        end as net_line_amount,
        coalesce(accounts_by_id.account_id, accounts_by_code.account_id, line_items.account_id) as account_id,
        coalesce(accounts_by_id.account_code, accounts_by_code.account_code, line_items.account_code)
            as account_code,
        coalesce(accounts_by_id.account_name, accounts_by_code.account_name) as account_name,
        coalesce(accounts_by_id.account_type, accounts_by_code.account_type) as account_type,
        coalesce(accounts_by_id.account_class, accounts_by_code.account_class) as account_class,
        coalesce(invoices.is_deleted, false) as is_deleted,
        coalesce(invoices.is_voided, false) as is_voided,
        organisations.base_currency_code
    from line_items
    left join invoices
        on invoices.tenant_id = line_items.tenant_id
        and invoices.invoice_id = line_items.invoice_id
    left join organisations
        on organisations.tenant_id = line_items.tenant_id
    left join contacts
        on contacts.tenant_id = invoices.tenant_id
        and contacts.contact_id = invoices.contact_id
    left join accounts as accounts_by_id
        on accounts_by_id.tenant_id = line_items.tenant_id
        and accounts_by_id.account_id = line_items.account_id
    left join accounts_by_code
        on line_items.account_id is null
        and accounts_by_code.tenant_id = line_items.tenant_id
        and accounts_by_code.account_code = line_items.account_code
),

final as (
    select
        joined.*,
        case
            when currency_code = base_currency_code then net_line_amount
            when currency_rate > 0 then cast(round(net_line_amount / currency_rate, 4) as decimal(19, 4))
        end as net_line_amount_base
    from joined
)

select * from final
