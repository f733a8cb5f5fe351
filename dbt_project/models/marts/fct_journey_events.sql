{{ config(**cx_fact_config('source_key', changes='journey_change_ctes', stage_first='changed_touch_customers')) }}
-- One row per touchpoint across all systems: the customer journey as one event stream, with
-- stages and moments of truth (docs/journey.md). Anonymous touches (no id, no e-mail) are excluded.
-- source_key is the pseudonymous key of the source record (the facts' order_key, case_key, ...; for a
-- campaign touch and a return, keyed here with the kinds 'touch' and 'return'): no source identifier.
-- Each event family is a CTE of journey_events (macros/journey.sql): its records, and per event the
-- SQL of its columns; a family of several events reads its records once.
--
-- Incremental on source_key (macros/incremental_facts.sql; docs/warehouse.md, "Incremental facts"): a
-- source record's events are a function of its fact row (or its touch, or its return and its order's
-- row) and its customer_key, so a night recomputes the changed source keys only: those whose row (the
-- facts' last_drop_date, a touch's drop, a return's drop and its order's last_drop_date) comes from the
-- window's drops or after the newest drop held, those held with last_drop_date >= min_date (a re-run of
-- an older window), those whose customer_key differs from the held rows' (an erasure request, an identity
-- merge), held ones with no source now, and orders whose fct_orders source_drop_days differs from their
-- held events' (an order that lost a record re-pointed to another order keeps an old last_drop_date). Touches are compared per customer (count and sum of times,
-- changed_touch_customers) so that only the touches of changed customers and of the new drops are
-- hashed; the other sources per key (cx_changed_keys, one full outer join with the held rows). All held
-- rows of a changed key are replaced by its events now, possibly none (cx_fact_rows: an order no longer
-- cancelled, a payment no longer failed, a customer_key become null); rows from drops after as_of are
-- deleted. Nothing here depends on as_of itself; var rotate_keys forces a full rebuild.
--
-- The sources' CTEs and the changed keys' are journey_change_ctes (macros/journey.sql). On DuckDB the
-- pre-hooks compute changed_touch_customers, then the changed keys, into temporary tables first
-- (cx_stage_changed_keys) and the query reads them from there. In one query, at 2 years x 1M customers
-- (scale L), the night ran out of 12 GB (DuckDB materializes the CTEs a query reads twice, and the
-- comparison reads every source key and every touch; inlining the largest did not make it fit); split in
-- two, the night's journey takes 58 s there.
-- Spark computes them in the query.
{%- set f = type_double() %}
{%- set billing = journey_billing_facts() %}
{%- set payment_failed = journey_payment_failed() %}
with {{ journey_change_ctes(staged=cx_staged_changed_keys(),
                          staged_first=cx_staged_changed_keys('changed_touch_customers')) }},

lost as (
    select {{ cx_pseudonym('order', 'order_id') }} as order_key, min(updated_at) as lost_at
    from {{ ref('stg_erp__shipments') }}
    where status = 'lost'
    group by order_id
),

orders as (
    select o.*, l.lost_at
    from {{ ref('fct_orders') }} as o
    left join lost as l on l.order_key = o.order_key
    {{ cx_where_changed('o.order_key', key='source_key') }}
),

changed_touches as (
    select * from touches {{ cx_where_changed('touch_key', key='source_key') }}
),

changed_returns as (
    select * from returns {{ cx_where_changed('return_key', key='source_key') }}
),

cases as (
    select * from {{ ref('fct_support_cases') }} {{ cx_where_changed('case_key', key='source_key') }}
),
{%- for name, (fact, key) in billing.items() %}

changed_{{ name }} as (
    select * from {{ ref(fact) }} {{ cx_where_changed(key, key='source_key') }}
),
{%- endfor %}

responses as (
    select * from {{ ref('fct_survey_responses') }} {{ cx_where_changed('response_key', key='source_key') }}
),

touch_events as (
    {{ journey_events('changed_touches', [{
        'source_system': "'crm'", 'source_entity': "'campaign_touches'",
        'source_key': 'touch_key', 'customer_key': 'customer_key', 'event_ts': 'touched_at', 'last_drop_date': 'drop_date',
        'stage': "'discovery'", 'touchpoint': "'marketing'",
        'channel': 'channel', 'event_type': dbt.concat(["'touch_'", "touch_type"]),
        'moment': "case when touch_type in ('clicked', 'visited') then 'positive' else 'neutral' end",
        'moment_reason': "case when touch_type in ('clicked', 'visited') then 'engaged with a campaign' end",
    }]) }}
),

order_events as (
    {{ journey_events('orders', shared={
        'source_system': "'erp'", 'source_key': 'order_key', 'customer_key': 'customer_key', 'channel': 'sales_channel',
        'amount': 'cast(total_amount as ' ~ f ~ ')', 'currency': 'currency', 'last_drop_date': 'last_drop_date',
        'source_drop_days': 'source_drop_days',
    }, events=[
        {'event_type': "'order_placed'", 'source_entity': "'orders'", 'event_ts': 'ordered_at',
         'stage': "'purchase'", 'touchpoint': "'purchase'", 'moment': "'neutral'"},
        {'event_type': "'order_cancelled'", 'where': "status = 'cancelled'", 'source_entity': "'orders'",
         'event_ts': 'status_updated_at', 'stage': "'purchase'", 'touchpoint': "'purchase'", 'moment': "'negative'",
         'moment_reason': "'cancelled order'"},
        {'event_type': "'order_delivered'", 'where': 'is_delivered', 'source_entity': "'orders'",
         'event_ts': 'delivered_at', 'stage': "'delivery'", 'touchpoint': "'delivery'",
         'moment': delivery_moment('is_on_time', 'is_in_full'),
         'moment_reason': delivery_moment_reason('is_on_time', 'is_in_full')},
        {'event_type': "'parcel_lost'", 'where': 'lost_at is not null', 'source_entity': "'shipments'",
         'event_ts': 'lost_at', 'stage': "'delivery'", 'touchpoint': "'delivery'", 'moment': "'negative'",
         'moment_reason': "'lost parcel'"},
    ]) }}
),

return_events as (
    {{ journey_events('changed_returns', [{
        'source_system': "'erp'", 'source_entity': "'returns'", 'source_key': 'return_key',
        'customer_key': 'customer_key', 'event_ts': 'returned_at', 'stage': "'delivery'", 'touchpoint': "'delivery'",
        'channel': 'sales_channel', 'event_type': "'return'", 'moment': "'negative'",
        'moment_reason': dbt.concat(["'return: '", "reason"]), 'last_drop_date': 'last_drop_date',
    }]) }}
),

case_events as (
    {{ journey_events('cases', shared={
        'source_system': "'crm'", 'source_entity': "'support_cases'", 'source_key': 'case_key',
        'customer_key': 'customer_key', 'stage': "'support'", 'touchpoint': "'support'", 'channel': 'channel',
        'last_drop_date': 'last_drop_date',
    }, events=[
        {'event_type': "'case_opened'", 'event_ts': 'opened_at', 'moment': "'neutral'"},
        {'event_type': "'case_resolved'", 'where': 'is_resolved', 'event_ts': 'resolved_at',
         'moment': case_moment('reopened_count', 'customer_contacts'),
         'moment_reason': case_moment_reason('reopened_count', 'customer_contacts')},
    ]) }}
),

invoice_events as (
    {{ journey_events('changed_invoices', [{
        'source_system': "'billing'", 'source_entity': "'invoices'", 'source_key': 'invoice_key',
        'customer_key': 'customer_key', 'event_ts': 'issued_at',
        'stage': "case when subscription_key is not null then 'renewal' else 'billing' end", 'touchpoint': "'billing'",
        'event_type': "case when subscription_key is not null then 'renewal_invoiced' else 'invoiced' end",
        'moment': "'neutral'", 'amount': 'cast(amount_due_minor as ' ~ f ~ ') / 100', 'currency': 'currency',
        'last_drop_date': 'last_drop_date',
    }]) }}
),

payment_events as (
    {{ journey_events('changed_payments', [{
        'where': payment_failed, 'source_system': "'billing'", 'source_entity': "'payments'", 'source_key': 'payment_key',
        'customer_key': 'customer_key', 'event_ts': 'attempted_at', 'stage': "'billing'", 'touchpoint': "'billing'",
        'channel': 'method', 'event_type': "'payment_failed'", 'moment': "'negative'",
        'moment_reason': "'failed payment'",
        'amount': 'cast(amount_minor as ' ~ f ~ ') / 100', 'currency': 'currency', 'last_drop_date': 'last_drop_date',
    }]) }}
),

refund_events as (
    {{ journey_events('changed_refunds', [{
        'source_system': "'billing'", 'source_entity': "'refunds'", 'source_key': 'refund_key',
        'customer_key': 'customer_key', 'event_ts': 'refunded_at', 'stage': "'billing'", 'touchpoint': "'billing'",
        'event_type': "'refunded'", 'moment': "case when is_service_failure then 'negative' else 'neutral' end",
        'moment_reason': "case when is_service_failure then 'service-failure refund' end",
        'amount': 'cast(amount_minor as ' ~ f ~ ') / 100', 'currency': 'currency', 'last_drop_date': 'last_drop_date',
    }]) }}
),

subscription_events as (
    {{ journey_events('changed_subscriptions', shared={
        'source_system': "'billing'", 'source_entity': "'subscriptions'", 'source_key': 'subscription_key',
        'customer_key': 'customer_key', 'stage': "'renewal'", 'amount': 'cast(mrr_minor as ' ~ f ~ ') / 100',
        'currency': 'currency', 'last_drop_date': 'last_drop_date',
    }, events=[
        {'event_type': "'subscription_started'", 'event_ts': 'started_at', 'touchpoint': "'onboarding'",
         'moment': "'neutral'"},
        {'event_type': "'subscription_cancelled'", 'where': 'cancelled_at is not null', 'event_ts': 'cancelled_at',
         'touchpoint': "'relationship'", 'moment': "'negative'",
         'moment_reason': dbt.concat(["'churn: '", "coalesce(cancel_reason, 'unknown')"])},
    ]) }}
),

response_events as (
    {{ journey_events('responses', [{
        'source_system': "'survey'", 'source_entity': "'responses'", 'source_key': 'response_key',
        'customer_key': 'customer_key', 'event_ts': 'responded_at', 'stage': "'feedback'", 'touchpoint': 'touchpoint',
        'event_type': dbt.concat(["survey_type", "'_answer'"]),
        'moment': response_moment('survey_type', 'score'),
        'moment_reason': response_moment_reason('survey_type', 'score'),
        'amount': 'cast(score as ' ~ f ~ ')', 'last_drop_date': 'last_drop_date',
    }]) }}
),

events as (
    {%- set families = ['touch_events', 'order_events', 'return_events', 'case_events', 'invoice_events',
                        'payment_events', 'refund_events', 'subscription_events', 'response_events'] %}
    {%- for family in families %}
    select * from {{ family }}{{ ' union all' if not loop.last }}
    {%- endfor %}
),

events_now as (
    select
        {{ cx_pseudonym("journey-event", dbt.concat(["source_system", "'|'", "event_type", "'|'", "source_key"])) }} as event_id,
        customer_key,
        event_ts,
        {{ utc_date('event_ts') }} as event_date,
        stage,
        touchpoint,
        channel,
        event_type,
        moment,
        moment_reason,
        source_system,
        source_entity,
        source_key,
        amount,
        currency,
        last_drop_date,
        source_drop_days
    from events
    where event_ts is not null and customer_key is not null
)

{{ cx_fact_rows('events_now', 'source_key') }}

