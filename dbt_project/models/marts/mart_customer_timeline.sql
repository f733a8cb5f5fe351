-- The journey of each customer, newest first: their fct_journey_events to as_of, ranked (event_rank
-- 1 = the newest; events at the same instant: the greatest event_id first, on every engine). A view:
-- nothing to build, and a support tool reads one customer's timeline with
--   select * from marts.mart_customer_timeline where customer_key = ? order by event_rank
-- (docs/warehouse.md, "Customer 360 and timeline").
{{ config(materialized='view') }}

with events as (
    select * from {{ ref('fct_journey_events') }}
    where event_date <= {{ cx_as_of() }}
)

select
    customer_key,
    cast(row_number() over (partition by customer_key order by event_ts desc, event_id desc) as bigint)
        as event_rank,
    event_id,
    event_ts,
    event_date,
    stage,
    touchpoint,
    event_type,
    channel,
    moment,
    moment_reason,
    amount,
    currency,
    source_system,
    source_entity,
    source_key
from events
