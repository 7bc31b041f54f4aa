-- stg_xero__invoice_line_item: the lines of every invoice, one row per line per tenant.
-- Lines of deleted or voided invoices are kept; filter through the invoice's flags.
--
-- Grain: one row per tenant_id, line_item_id
-- Depends on: none
--
-- Columns:
--   tenant_id        Xero organisation (tenant) the line belongs to
--   invoice_id       the invoice the line is on (stg_xero__invoice)
--   line_item_id     Xero LineItemID, unique within the tenant
--   line_number      1-based position of the line on the invoice
--   description      line description
--   quantity         quantity
--   unit_amount      price per unit
--   item_code        code of the inventory item sold or bought
--   account_code     code of the account the line is posted to
--   account_id       id of the account the line is posted to (when Xero returns it)
--   tax_type         tax type of the line
--   tax_amount       tax on the line
--   line_amount      line amount (includes tax when the invoice's line_amount_types is Inclusive)
--   discount_rate    discount percentage
--   discount_amount  discount amount
--   _loaded_at       when the warehouse last stored this line (UTC)
--   _run_id          pipeline run that stored it
with source as (
    select * from invoice_line_item
),

final as (
    select
        tenant_id,
        invoice_id,
        line_item_id,
        line_number,
        description,
        quantity,
        unit_amount,
        item_code,
        account_code,
        account_id,
        tax_type,
        tax_amount,
        line_amount,
        discount_rate,
        discount_amount,
        _loaded_at,
        _run_id
    from source
)

select * from final
