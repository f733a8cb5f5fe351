{{ config(**cx_fact_config('customer_key')) }}
-- Stage transitions per customer: each time the journey moves to another stage, when, from
-- which stage, and how long the customer stayed in the previous one (hours). Events at the same
-- instant are ordered by event_id, here and for left_at: two changes at one instant (a stage entered
-- and left at once) must follow each other in the same order on every engine and every run.
--
-- Incremental on customer_key (macros/incremental_facts.sql; docs/warehouse.md, "Incremental facts"): a
-- customer's transitions are a function of their journey's (event_id, event_ts, stage), which a night
-- can change without a drop of its own (events re-keyed to the customer keep their older drops) and by
-- deleting events (the journey keeps no trace of them). So every row holds its customer's
-- journey_fingerprint (the sum of the engine's row hash of each event's event_id, stage and event_ts,
-- cx_hash_row: each engine compares it only with the one it wrote) and last_drop_date
-- (the newest drop of their events); a night recomputes the customers whose fingerprint or last_drop_date
-- differs from the held ones, who have events from the window's drops, or whom the journey no longer
-- holds (their transitions are deleted: cx_fact_rows). One pass over the journey's events per night
-- (a hash and a sum) instead of ordering them all; var rotate_keys forces a full rebuild.
with journeys as (
    select
        customer_key,
        cast(sum({{ cx_hash_row(['event_id', 'stage', 'event_ts']) }}) as bigint) as journey_fingerprint,
        max(last_drop_date) as last_drop_date,
        max(last_drop_date) as drop_date
    from {{ ref('fct_journey_events') }}
    group by customer_key
),
{%- if is_incremental() %}

changed as (
    {{ cx_changed_keys('journeys', 'journeys', 'customer_key', 'customer_key',
                       compare=['journey_fingerprint', 'last_drop_date'], gone=true) }}
),
{%- endif %}

ordered as (
    select
        customer_key, event_ts, event_id, stage,
        lag(stage) over (partition by customer_key order by event_ts, event_id) as previous_stage
    from {{ ref('fct_journey_events') }}
    {{ cx_where_changed('customer_key') }}
),

changes as (
    select customer_key, event_ts as entered_at, event_id, stage, previous_stage
    from ordered
    where previous_stage is null or previous_stage <> stage
),

transitions as (
    select
        c.customer_key,
        c.stage,
        c.previous_stage,
        c.entered_at,
        lead(c.entered_at) over (partition by c.customer_key order by c.entered_at, c.event_id) as left_at,
        {{ hours_between('c.entered_at', 'lead(c.entered_at) over (partition by c.customer_key order by c.entered_at, c.event_id)') }}
            as hours_in_stage,
        j.journey_fingerprint,
        j.last_drop_date
    from changes as c
    inner join journeys as j on j.customer_key = c.customer_key
)

{{ cx_fact_rows('transitions', 'customer_key') }}
