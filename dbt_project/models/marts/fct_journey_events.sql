-- One row per touchpoint across all systems: the customer journey as one event stream, with
-- stages and moments of truth (docs/journey.md). Anonymous touches (no id, no e-mail) are excluded.
-- source_key is the pseudonymous key of the source record (the facts' order_key, case_key, ...; for a
-- campaign touch and a return, keyed here with the kinds 'touch' and 'return'): no source identifier.
{%- set s = dbt.type_string() %}
{%- set f = dbt.type_float() %}
with touches as (
    select t.*, k.customer_key
    from {{ ref('stg_crm__campaign_touches') }} as t
    inner join {{ ref('int_customer_keys') }} as k
        on k.identifier = {{ customer_identifier('t.customer_id', 't.email_hash') }}
),

lost as (
    select {{ cx_pseudonym('order', 'order_id') }} as order_key, min(updated_at) as lost_at
    from {{ ref('stg_erp__shipments') }}
    where status = 'lost'
    group by order_id
),

events as (
    select 'crm' as source_system, 'campaign_touches' as source_entity,
           {{ cx_pseudonym('touch', 'touch_id') }} as source_key,
           customer_key, touched_at as event_ts, 'discovery' as stage, 'marketing' as touchpoint,
           channel, {{ dbt.concat(["'touch_'", "touch_type"]) }} as event_type,
           case when touch_type in ('clicked', 'visited') then 'positive' else 'neutral' end as moment,
           case when touch_type in ('clicked', 'visited') then 'engaged with a campaign' end as moment_reason,
           cast(null as {{ f }}) as amount, cast(null as {{ s }}) as currency
    from touches
    union all
    select 'erp', 'orders', order_key, customer_key, ordered_at, 'purchase', 'purchase', sales_channel,
           'order_placed', 'neutral', cast(null as {{ s }}), cast(total_amount as {{ f }}), currency
    from {{ ref('fct_orders') }}
    union all
    select 'erp', 'orders', order_key, customer_key, status_updated_at, 'purchase', 'purchase',
           sales_channel, 'order_cancelled', 'negative', 'cancelled order', cast(total_amount as {{ f }}), currency
    from {{ ref('fct_orders') }} where status = 'cancelled'
    union all
    select 'erp', 'orders', order_key, customer_key, delivered_at, 'delivery', 'delivery', sales_channel,
           'order_delivered', {{ delivery_moment('is_on_time', 'is_in_full') }},
           {{ delivery_moment_reason('is_on_time', 'is_in_full') }}, cast(total_amount as {{ f }}), currency
    from {{ ref('fct_orders') }} where is_delivered
    union all
    select 'erp', 'shipments', o.order_key, o.customer_key, l.lost_at, 'delivery', 'delivery', o.sales_channel,
           'parcel_lost', 'negative', 'lost parcel', cast(o.total_amount as {{ f }}), o.currency
    from {{ ref('fct_orders') }} as o inner join lost as l on l.order_key = o.order_key
    union all
    select 'erp', 'returns', {{ cx_pseudonym('return', 'r.return_id') }}, o.customer_key,
           coalesce(r.received_at, r.requested_at), 'delivery', 'delivery', o.sales_channel, 'return', 'negative',
           {{ dbt.concat(["'return: '", "r.reason"]) }}, cast(null as {{ f }}), cast(null as {{ s }})
    from {{ ref('stg_erp__returns') }} as r
    inner join {{ ref('fct_orders') }} as o on o.order_key = {{ cx_pseudonym('order', 'r.order_id') }}
    union all
    select 'crm', 'support_cases', case_key, customer_key, opened_at, 'support', 'support', channel, 'case_opened',
           'neutral', cast(null as {{ s }}), cast(null as {{ f }}), cast(null as {{ s }})
    from {{ ref('fct_support_cases') }}
    union all
    select 'crm', 'support_cases', case_key, customer_key, resolved_at, 'support', 'support', channel,
           'case_resolved', {{ case_moment('reopened_count', 'customer_contacts') }},
           {{ case_moment_reason('reopened_count', 'customer_contacts') }}, cast(null as {{ f }}), cast(null as {{ s }})
    from {{ ref('fct_support_cases') }} where is_resolved
    union all
    select 'billing', 'invoices', invoice_key, customer_key, issued_at,
           case when subscription_key is not null then 'renewal' else 'billing' end, 'billing',
           cast(null as {{ s }}), case when subscription_key is not null then 'renewal_invoiced' else 'invoiced' end,
           'neutral', cast(null as {{ s }}), cast(amount_due_minor as {{ f }}) / 100, currency
    from {{ ref('fct_invoices') }}
    union all
    select 'billing', 'payments', payment_key, customer_key, attempted_at, 'billing', 'billing', method,
           'payment_failed', 'negative', 'failed payment', cast(amount_minor as {{ f }}) / 100, currency
    from {{ ref('fct_payments') }} where is_failed
    union all
    select 'billing', 'refunds', refund_key, customer_key, refunded_at, 'billing', 'billing', cast(null as {{ s }}),
           'refunded', case when is_service_failure then 'negative' else 'neutral' end,
           case when is_service_failure then 'service-failure refund' end,
           cast(amount_minor as {{ f }}) / 100, currency
    from {{ ref('fct_refunds') }}
    union all
    select 'billing', 'subscriptions', subscription_key, customer_key, started_at, 'renewal', 'onboarding',
           cast(null as {{ s }}), 'subscription_started', 'neutral', cast(null as {{ s }}),
           cast(mrr_minor as {{ f }}) / 100, currency
    from {{ ref('fct_subscriptions') }}
    union all
    select 'billing', 'subscriptions', subscription_key, customer_key, cancelled_at, 'renewal', 'relationship',
           cast(null as {{ s }}), 'subscription_cancelled', 'negative',
           {{ dbt.concat(["'churn: '", "coalesce(cancel_reason, 'unknown')"]) }},
           cast(mrr_minor as {{ f }}) / 100, currency
    from {{ ref('fct_subscriptions') }} where cancelled_at is not null
    union all
    select 'survey', 'responses', response_key, customer_key, responded_at, 'feedback', touchpoint,
           cast(null as {{ s }}), {{ dbt.concat(["survey_type", "'_answer'"]) }},
           {{ response_moment('survey_type', 'score') }}, {{ response_moment_reason('survey_type', 'score') }},
           cast(score as {{ f }}), cast(null as {{ s }})
    from {{ ref('fct_survey_responses') }}
)

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
    currency
from events
where event_ts is not null and customer_key is not null
