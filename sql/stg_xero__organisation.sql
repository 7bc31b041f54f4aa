-- stg_xero__organisation: the organisations (tenants) synced, one row per tenant, with the name and base
-- currency every mart is labelled with.
--
-- Grain: one row per tenant_id
-- Depends on: none
--
-- Columns:
--   tenant_id                 Xero organisation (tenant) id
--   organisation_id           Xero OrganisationID (the same as tenant_id)
--   tenant_name               display name of the organisation shown in Xero
--   legal_name                legal name, shown on reports
--   short_code                Xero's short code of the organisation
--   base_currency_code        base currency: the currency of every *_base amount of the marts
--   country_code              country of the organisation (ISO 3166 alpha-2)
--   timezone                  Xero time zone name (e.g. NEWZEALANDSTANDARDTIME)
--   financial_year_end_day    day of the financial year end
--   financial_year_end_month  month of the financial year end
--   organisation_type         COMPANY, SOLE_TRADER, CHARITY, TRUST, …
--   organisation_status       ACTIVE when the API can reach it
--   is_demo_company           the organisation is Xero's demo company
--   created_date_utc          when the organisation was created in Xero (UTC)
--   _loaded_at                when the warehouse last stored a change to this row (UTC)
--   _run_id                   pipeline run that stored it
with source as (
    select * from organisation
),

final as (
    select
        tenant_id,
        organisation_id,
        name as tenant_name,
        legal_name,
        short_code,
        base_currency as base_currency_code,
        country_code,
        timezone,
        financial_year_end_day,
        financial_year_end_month,
        organisation_type,
        organisation_status,
        is_demo_company,
        created_date_utc,
        _loaded_at,
        _run_id
    from source
)

select * from final
