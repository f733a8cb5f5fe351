-- Stage transitions per customer: each time the journey moves to another stage, when, from
-- which stage, and how long the customer stayed in the previous one (hours). Events at the same
-- instant are ordered by event_id, here and for left_at: two changes at one instant (a stage entered
-- and left at once) must follow each other in the same order on every engine and every run.
with ordered as (
    select
        customer_key, event_ts, event_id, stage,
        lag(stage) over (partition by customer_key order by event_ts, event_id) as previous_stage
    from {{ ref('fct_journey_events') }}
),

changes as (
    select customer_key, event_ts as entered_at, event_id, stage, previous_stage
    from ordered
    where previous_stage is null or previous_stage <> stage
)

select
    customer_key,
    stage,
    previous_stage,
    entered_at,
    lead(entered_at) over (partition by customer_key order by entered_at, event_id) as left_at,
    {{ hours_between('entered_at', 'lead(entered_at) over (partition by customer_key order by entered_at, event_id)') }}
        as hours_in_stage
from changes
