-- stg_xero__contact: customers and suppliers, one row per contact per tenant.
-- Every contact is kept (archived ones are flagged, not dropped).
--
-- Grain: one row per tenant_id, contact_id
-- Depends on: none
--
-- Columns:
--   tenant_id                       Xero organisation (tenant) the contact belongs to
--   contact_id                      Xero ContactID, unique within the tenant
--   contact_number                  contact number from an external system
--   account_number                  the organisation's account number for the contact
--   contact_status                  ACTIVE, ARCHIVED or GDPRREQUEST
--   contact_name                    contact (organisation or person) name
--   first_name                      first name of the primary person
--   last_name                       last name of the primary person
--   email_address                   email address of the primary person
--   company_number                  company registration number
--   tax_number                      tax number (ABN, GST number, VAT number, …)
--   is_supplier                     the contact has bills (IsSupplier)
--   is_customer                     the contact has sales invoices (IsCustomer)
--   default_currency                default currency for the contact's invoices
--   accounts_receivable_tax_type    default tax type on sales to the contact
--   accounts_payable_tax_type       default tax type on purchases from the contact
--   sales_default_account_code      default account code for sales to the contact
--   purchases_default_account_code  default account code for purchases from the contact
--   merged_to_contact_id            the contact this one was merged into, if any
--   website                         website address
--   has_attachments                 the contact has attachments
--   is_archived                     contact_status = 'ARCHIVED'
--   updated_date_utc                last change in Xero (UTC)
--   _loaded_at                      when the warehouse last stored a change to this row (UTC)
--   _run_id                         pipeline run that stored it
with source as (
    select * from contact
),

final as (
    select
        tenant_id,
        contact_id,
        contact_number,
        account_number,
        contact_status,
        name as contact_name,
        first_name,
        last_name,
        email_address,
        company_number,
        tax_number,
        is_supplier,
        is_customer,
        default_currency,
        accounts_receivable_tax_type,
        accounts_payable_tax_type,
        sales_default_account_code,
        purchases_default_account_code,
        merged_to_contact_id,
        website,
        has_attachments,
        coalesce(contact_status = 'ARCHIVED', false) as is_archived,
        updated_date_utc,
        _loaded_at,
        _run_id
    from source
)

select * from final
