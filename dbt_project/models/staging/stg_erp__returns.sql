{{ config(**cx_staging_config(['return_id'])) }}
-- A return is delivered when requested and again when received; the received version wins.
with current_version as (
    {{ current_version(source('erp', 'returns'), ['return_id'], 'coalesce(received_ts, requested_ts)') }}
)

select
    return_id,
    order_id,
    line_no,
    quantity,
    reason,
    requested_ts as requested_at,
    received_ts as received_at,
    _business_date as drop_date,
    -- the current version's order, compared with the next nights' versions (macros/current_version.sql)
    _version_value,
    _extracted_at,
    _source_line
from current_version
