{{ config(**cx_staging_config(['shipment_id'])) }}
with current_version as (
    {{ current_version(source('erp', 'shipments'), ['shipment_id'], 'updated_ts') }}
)

select
    shipment_id,
    order_id,
    line_no,
    quantity,
    carrier,
    shipped_ts as shipped_at,
    delivered_ts as delivered_at,
    {{ local_date('delivered_ts') }} as delivered_local_date,
    status,
    updated_ts as updated_at,
    _business_date as drop_date,
    -- the current version's order, compared with the next nights' versions (macros/current_version.sql)
    _version_value,
    _extracted_at,
    _source_line
from current_version
