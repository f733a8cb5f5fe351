{{ config(**cx_staging_config(['order_id', 'line_no'])) }}
with current_version as (
    {{ current_version(source('erp', 'order_lines'), ['order_id', 'line_no']) }}
)

select
    order_id,
    line_no,
    sku,
    product_category,
    quantity,
    unit_price,
    quantity * unit_price as line_amount,
    _business_date as drop_date,
    -- the current version's order, compared with the next nights' versions (macros/current_version.sql)
    _version_value,
    _extracted_at,
    _source_line
from current_version
