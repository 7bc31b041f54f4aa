-- stg_xero__account: the chart of accounts, one row per account per tenant, with analysis-friendly names.
-- Every account is kept (archived and deleted ones are flagged, not dropped).
--
-- Grain: one row per tenant_id, account_id
-- Depends on: none
--
-- Columns:
--   tenant_id                   Xero organisation (tenant) the account belongs to
--   account_id                  Xero AccountID, unique within the tenant
--   account_code                code shown in Xero (e.g. 200); unique per tenant among active accounts
--   account_name                account name
--   account_type                Xero account type (REVENUE, EXPENSE, BANK, CURRENT, …)
--   account_class               reporting class: ASSET, EQUITY, EXPENSE, LIABILITY or REVENUE
--   account_status              ACTIVE, ARCHIVED or DELETED
--   description                 account description
--   tax_type                    default tax type of the account
--   currency_code               currency of a bank account
--   bank_account_number         bank account number (bank accounts only)
--   bank_account_type           BANK, CREDITCARD or PAYPAL (bank accounts only)
--   is_payments_enabled         payments can be applied to this account (EnablePaymentsToAccount)
--   is_shown_in_expense_claims  the account is offered in expense claims (ShowInExpenseClaims)
--   system_account              system role of the account (DEBTORS, CREDITORS, …), null for ordinary accounts
--   reporting_code              reporting code
--   reporting_code_name         reporting code name
--   has_attachments             the account has attachments
--   is_archived                 account_status = 'ARCHIVED'
--   is_deleted                  account_status = 'DELETED'
--   updated_date_utc            last change in Xero (UTC)
--   _loaded_at                  when the warehouse last stored a change to this row (UTC)
--   _run_id                     pipeline run that stored it
with source as (
    select * from account
),

final as (
    select
        tenant_id,
        account_id,
        code as account_code,
        name as account_name,
        "type" as account_type,
        "class" as account_class,
        status as account_status,
        description,
        tax_type,
        currency_code,
        bank_account_number,
        bank_account_type,
        enable_payments_to_account as is_payments_enabled,
        show_in_expense_claims as is_shown_in_expense_claims,
        system_account,
        reporting_code,
        reporting_code_name,
        has_attachments,
        coalesce(status = 'ARCHIVED', false) as is_archived,
        coalesce(status = 'DELETED', false) as is_deleted,
        updated_date_utc,
        _loaded_at,
        _run_id
    from source
)

select * from final
