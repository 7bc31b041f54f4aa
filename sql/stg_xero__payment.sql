-- stg_xero__payment: payments applied to invoices, credit notes, overpayments and prepayments,
-- one row per payment per tenant. Deleted payments are kept and flagged (is_deleted), not dropped.
--
-- Grain: one row per tenant_id, payment_id
-- Depends on: none
--
-- Columns:
--   tenant_id         Xero organisation (tenant) the payment belongs to
--   payment_id        Xero PaymentID, unique within the tenant
--   payment_type      ACCRECPAYMENT, ACCPAYPAYMENT, ARCREDITPAYMENT, APCREDITPAYMENT, … (what was paid)
--   payment_status    AUTHORISED or DELETED
--   payment_date      date of the payment (organisation calendar date)
--   amount            amount in the currency of the invoice or credit note paid
--   bank_amount       amount in the currency of the bank account
--   currency_rate     exchange rate of the payment
--   reference         payment reference
--   is_reconciled     the payment is reconciled against a bank statement line
--   invoice_id        the invoice paid, if any (stg_xero__invoice)
--   invoice_number    number of the invoice paid
--   credit_note_id    the credit note paid or refunded, if any
--   account_id        the bank account the payment went through
--   account_code      code of that bank account
--   batch_payment_id  the batch payment this payment belongs to, if any
--   has_account       the payment has a bank account
--   is_deleted        payment_status = 'DELETED'
--   updated_date_utc  last change in Xero (UTC)
--   _loaded_at        when the warehouse last stored a change to this row (UTC)
--   _run_id           pipeline run that stored it
with source as (
    select * from payment
),

final as (
    select
        tenant_id,
        payment_id,
        payment_type,
        status as payment_status,
        "date" as payment_date,
        amount,
        bank_amount,
        currency_rate,
        reference,
        is_reconciled,
        invoice_id,
        invoice_number,
        credit_note_id,
        account_id,
        account_code,
        batch_payment_id,
        has_account,
        coalesce(status = 'DELETED', false) as is_deleted,
        updated_date_utc,
        _loaded_at,
        _run_id
    from source
)

select * from final
