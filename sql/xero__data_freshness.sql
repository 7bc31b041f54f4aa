-- xero__data_freshness: how current the warehouse is, per tenant and entity: the watermark, the last run,
-- rows held, rows kept at an older version because their newer version is quarantined, and quarantined rows.
-- One row per tenant and entity that has been synced at least once (a row in _sync_state).
--
-- Grain: one row per tenant_id, entity
-- Depends on: stg_xero__organisation
--
-- Columns:
--   tenant_id             Xero organisation (tenant)
--   tenant_name           name of the organisation (the tenant id until the organisation is loaded)
--   entity                registry entity (organisation, accounts, contacts, invoices, payments, …)
--   watermark             largest UpdatedDateUTC committed: the next run reads changes after it (null for
--                         entities read whole every run)
--   last_run_at           when the last load of this tenant and entity committed (UTC)
--   last_run_id           the pipeline run of that load
--   rows_in_table         rows of the entity's table for this tenant
--   stale_rows            rows whose newer version is quarantined, so the warehouse holds an older one
--   quarantined_rows      rows of _quarantine for this tenant and entity, every run
--   quarantined_last_run  rows quarantined by the last load
with sync_state as (
    select * from _sync_state
),

entity_rows as (
    {{ entity_rows }}
),

quarantine as (
    select
        tenant_id,
        entity,
        count(*) as quarantined_rows
    from _quarantine
    group by tenant_id, entity
),

organisations as (
    select * from stg_xero__organisation
),

final as (
    select
        sync_state.tenant_id,
        coalesce(organisations.tenant_name, sync_state.tenant_id) as tenant_name,
        sync_state.entity,
        sync_state.watermark,
        sync_state.last_run_at,
        sync_state.last_run_id,
        coalesce(entity_rows.rows_in_table, 0) as rows_in_table,
        coalesce(entity_rows.stale_rows, 0) as stale_rows,
        coalesce(quarantine.quarantined_rows, 0) as quarantined_rows,
        coalesce(sync_state.rows_quarantined, 0) as quarantined_last_run
    from sync_state
    left join entity_rows
        on entity_rows.tenant_id = sync_state.tenant_id
        and entity_rows.entity = sync_state.entity
    left join quarantine
        on quarantine.tenant_id = sync_state.tenant_id
        and quarantine.entity = sync_state.entity
    left join organisations
        on organisations.tenant_id = sync_state.tenant_id
)

select * from final
