-- stg_xero__invoice: sales invoices (ACCREC) and bills (ACCPAY), one row per invoice per tenant.
-- Every invoice is kept: drafts, deleted and voided invoices are flagged, not dropped.
--
-- Grain: one row per tenant_id, invoice_id
-- Depends on: none
--
-- Columns:
--   tenant_id              Xero organisation (tenant) the invoice belongs to
--   invoice_id             Xero InvoiceID, unique within the tenant
--   invoice_type           ACCREC (sales invoice, receivable) or ACCPAY (bill, payable)
--   invoice_number         invoice number shown on the document
--   reference              reference (sales invoices)
--   contact_id             the customer or supplier (stg_xero__contact)
--   invoice_date           the invoice's date (organisation calendar date)
--   due_date               date payment is due
--   expected_payment_date  expected payment date (sales invoices)
--   fully_paid_on_date     date the invoice was fully paid
--   invoice_status         DRAFT, SUBMITTED, AUTHORISED, PAID, VOIDED or DELETED
--   line_amount_types      Exclusive, Inclusive or NoTax: whether line amounts include tax
--   currency_code          invoice currency
--   currency_rate          units of invoice currency per unit of the organisation's base currency
--   sub_total              total excluding tax
--   total_tax              total tax
--   total                  total including tax
--   total_discount         total of discounts applied to the lines
--   amount_due             amount still to be paid
--   amount_paid            amount paid so far
--   amount_credited        amount credited by credit notes
--   is_sent_to_contact     the invoice was sent to the contact (SentToContact)
--   has_attachments        the invoice has attachments
--   is_discounted          the invoice has a discount
--   branding_theme_id      branding theme used
--   repeating_invoice_id   the repeating invoice template this was created from
--   url                    URL of the source document
--   is_receivable          invoice_type = 'ACCREC'
--   is_payable             invoice_type = 'ACCPAY'
--   is_draft               invoice_status = 'DRAFT'
--   is_deleted             invoice_status = 'DELETED'
--   is_voided              invoice_status = 'VOIDED'
--   updated_date_utc       last change in Xero (UTC)
--   _loaded_at             when the warehouse last stored a change to this row (UTC)
--   _run_id                pipeline run that stored it
with source as (
    select * from invoice
),

final as (
    select
        tenant_id,
        invoice_id,
        "type" as invoice_type,
        invoice_number,
        reference,
        contact_id,
        "date" as invoice_date,
        due_date,
        expected_payment_date,
        fully_paid_on_date,
        status as invoice_status,
        line_amount_types,
        currency_code,
        currency_rate,
        sub_total,
        total_tax,
        total,
        total_discount,
        amount_due,
        amount_paid,
        amount_credited,
        sent_to_contact as is_sent_to_contact,
        has_attachments,
        is_discounted,
        branding_theme_id,
        repeating_invoice_id,
        url,
        coalesce("type" = 'ACCREC', false) as is_receivable,
        coalesce("type" = 'ACCPAY', false) as is_payable,
        coalesce(status = 'DRAFT', false) as is_draft,
        coalesce(status = 'DELETED', false) as is_deleted,
        coalesce(status = 'VOIDED', false) as is_voided,
        updated_date_utc,
        _loaded_at,
        _run_id
    from source
)

select * from final
