{#- the as_of judgement, computed in the row and in keyed_now alike (one definition) -#}
{%- set is_active_as_of = "(s.cancelled_at is null or " ~ utc_date('s.cancelled_at') ~ " > " ~ cx_as_of() ~ ")" -%}
{{ config(**cx_fact_config('subscription_key')) }}
-- One row per subscription: start, cancellation (churn) and whether it is active as of the run date.
--
-- Incremental (macros/incremental_facts.sql; docs/warehouse.md, "Incremental facts"): a night recomputes
-- the changed subscriptions only, the subscriptions with a version from the window's drops or rewritten
-- by the run (a start, a cancellation), the subscriptions whose row came from those drops or later, and
-- the subscriptions whose customer_key or is_active_as_of differs from what the full build computes now.
-- is_active_as_of depends on as_of itself: a subscription whose cancel date (recorded in an older drop)
-- is passed by a later night's as_of turns inactive without a record of its own, and a re-run of an older
-- window turns it active again; comparing the held value with the one computed now (keyed_now, one pass
-- over the subscriptions' keys) recomputes exactly those. The rows of subscriptions gone from staging are
-- deleted. var rotate_keys forces a full refresh.

-- every staging record a subscription is built from, with the drop it came from
with subscription_records as (
    select subscription_id, drop_date from {{ ref('stg_billing__subscriptions') }}
),
{%- if is_incremental() %}

-- every subscription with its served key, its customer key now (the key map can re-key an unchanged
-- subscription) and whether it is active as of this run's as_of (a later as_of can pass its cancel date)
keyed_now as (
    select
        s.subscription_id,
        {{ cx_source_key('subscription', 's.subscription_id', 'sk') }} as subscription_key,
        k.customer_key,
        {{ is_active_as_of }} as is_active_as_of
    from {{ ref('stg_billing__subscriptions') }} as s
    left join {{ ref('int_customer_keys') }} as k
        on k.identifier = {{ customer_identifier('s.ref_customer_id', 's.ref_email_hash') }}
    -- the record keys from the map of identifiers to keys (macros/keys.sql)
    {{ cx_source_key_join('subscription', 's.subscription_id', 'sk') }}
),

changed as (
    {{ cx_changed_keys('subscription_records', 'keyed_now', 'subscription_id', 'subscription_key',
                       compare=['customer_key', 'is_active_as_of']) }}
),
{%- endif %}

subscriptions as (
    select * from {{ ref('stg_billing__subscriptions') }}
    {{ cx_where_changed('subscription_id') }}
)

select
    {{ cx_source_key('subscription', 's.subscription_id', 'sk') }} as subscription_key,
    k.customer_key,
    s.plan,
    s.mrr_minor,
    s.currency,
    s.started_at,
    s.cancelled_at,
    s.cancel_reason,
    {{ utc_date('s.started_at') }} as start_date,
    {{ utc_date('s.cancelled_at') }} as cancel_date,
    {{ is_active_as_of }} as is_active_as_of,
    -- the drop of the subscription's current version (the next night's comparison)
    s.drop_date as last_drop_date
from subscriptions as s
left join {{ ref('int_customer_keys') }} as k
    on k.identifier = {{ customer_identifier('s.ref_customer_id', 's.ref_email_hash') }}
-- the record keys from the map of identifiers to keys (macros/keys.sql)
{{ cx_source_key_join('subscription', 's.subscription_id', 'sk') }}
