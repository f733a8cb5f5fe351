-- Stage transitions per customer: each time the journey moves to another stage, when, from
-- which stage, and how long the customer stayed in the previous one (hours).
with ordered as (
    select
        customer_key, event_ts, stage,
        lag(stage) over (partition by customer_key order by event_ts, event_id) as previous_stage
    from {{ ref('fct_journey_events') }}
),

changes as (
    select customer_key, event_ts as entered_at, stage, previous_stage
    from ordered
    where previous_stage is null or previous_stage <> stage
)

select
    customer_key,
    stage,
    previous_stage,
    entered_at,
    lead(entered_at) over (partition by customer_key order by entered_at) as left_at,
    {{ hours_between('entered_at', 'lead(entered_at) over (partition by customer_key order by entered_at)') }}
        as hours_in_stage
from changes
