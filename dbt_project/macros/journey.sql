{#- Moments of truth in the journey (docs/journey.md): positive, negative or neutral, with a reason. -#}

{#- A delivered order: late beats incomplete beats on time. -#}
{% macro delivery_moment(is_on_time, is_in_full) -%}
    case
        when not {{ is_on_time }} then 'negative'
        when not {{ is_in_full }} then 'negative'
        else 'positive'
    end
{%- endmacro %}

{% macro delivery_moment_reason(is_on_time, is_in_full) -%}
    case
        when not {{ is_on_time }} then 'late delivery'
        when not {{ is_in_full }} then 'incomplete delivery'
        else 'delivered as promised'
    end
{%- endmacro %}

{#- A resolved support case: reopened, then multi-contact, are negative; first-contact resolution positive. -#}
{% macro case_moment_reason(reopened_count, customer_contacts) -%}
    case
        when {{ reopened_count }} > 0 then 'reopened case'
        when {{ customer_contacts }} > 1 then 'multi-contact case'
        else 'first-contact resolution'
    end
{%- endmacro %}

{% macro case_moment(reopened_count, customer_contacts) -%}
    case when {{ reopened_count }} > 0 or {{ customer_contacts }} > 1 then 'negative' else 'positive' end
{%- endmacro %}

{#- A survey answer: the top band of its scale is positive, the bottom band negative, the rest
    neutral (score_bands in kpi.sql: NPS promoters 9-10 / detractors 0-6, CSAT 4-5 / 1-2, CES 6-7 / 1-3). -#}
{% macro response_moment(survey_type, score) -%}
    case
    {%- for type, b in score_bands().items() %}
        when {{ survey_type }} = '{{ type }}' and {{ score }} >= {{ b.top }} then 'positive'
        when {{ survey_type }} = '{{ type }}' and {{ score }} <= {{ b.bottom }} then 'negative'
    {%- endfor %}
        else 'neutral'
    end
{%- endmacro %}

{% macro response_moment_reason(survey_type, score) -%}
    {%- set reasons = {'nps': ('promoter answer', 'detractor answer'), 'csat': ('satisfied answer', 'dissatisfied answer'),
                       'ces': ('easy answer', 'effortful answer')} -%}
    case
    {%- for type, b in score_bands().items() %}
        when {{ survey_type }} = '{{ type }}' and {{ score }} >= {{ b.top }} then '{{ reasons[type][0] }}'
        when {{ survey_type }} = '{{ type }}' and {{ score }} <= {{ b.bottom }} then '{{ reasons[type][1] }}'
    {%- endfor %}
        else 'neutral answer'
    end
{%- endmacro %}

{#- The journey events of one family (fct_journey_events): one row per record of `relation` and event
    of `events` whose `where` holds, in the columns of the event stream. Every value is a SQL
    expression on the record; `shared` holds those that all the family's events share, each event the
    rest (it overrides `shared`). channel, moment_reason, amount and currency may be left out (null);
    last_drop_date is the newest drop among the records the family's row is built from.
    A family of several events reads its records once: they are crossed with the event numbers, and
    each column takes the expression of its row's event. -#}
{% macro journey_events(relation, events, shared={}) -%}
    {%- set s = dbt.type_string() -%}
    {%- set columns = {
        'source_system': none, 'source_entity': none, 'source_key': none, 'customer_key': none, 'event_ts': none,
        'stage': none, 'touchpoint': none, 'channel': s, 'event_type': none, 'moment': none, 'moment_reason': s,
        'amount': type_double(), 'currency': s, 'last_drop_date': none,
        'source_drop_days': dbt.type_bigint(),
    } -%}
    {%- for event in events -%}
        {%- for key in event if key not in columns and key != 'where' -%}
            {{ exceptions.raise_compiler_error("journey_events(" ~ relation ~ "): unknown key " ~ key) }}
        {%- endfor -%}
    {%- endfor -%}
    {%- set several = events | length > 1 %}
    select
    {%- for column, null_type in columns.items() %}
        {%- set exprs = [] -%}
        {%- for event in events -%}{%- do exprs.append(event.get(column, shared.get(column))) -%}{%- endfor -%}
        {%- if none in exprs and null_type is none -%}
            {{ exceptions.raise_compiler_error("journey_events(" ~ relation ~ "): every event needs a " ~ column) }}
        {%- endif %}
        {% if exprs | reject('equalto', exprs[0]) | list | length == 0 -%}
            {{ exprs[0] if exprs[0] is not none else 'cast(null as ' ~ null_type ~ ')' }}
        {%- else -%}
            case e.event_no
            {%- for expr in exprs %}{% if expr is not none %} when {{ loop.index }} then {{ expr }}{% endif %}{% endfor %} end
        {%- endif %} as {{ column }}{{ ',' if not loop.last }}
    {%- endfor %}
    from {{ relation }}
    {%- if several %}
    cross join (
        {%- for event in events %}
        select {{ loop.index }} as event_no{{ ' union all' if not loop.last }}
        {%- endfor %}
    ) as e
    where
        {%- for event in events %}
        {{ 'or ' if not loop.first }}(e.event_no = {{ loop.index }}{% if event.where %} and ({{ event.where }}){% endif %})
        {%- endfor %}
    {%- elif events[0].where %}
    where {{ events[0].where }}
    {%- endif %}
{%- endmacro %}


{#- The billing facts of the journey (fct_journey_events), each keyed by its record (they carry
    last_drop_date like the other facts): name -> (fact, key). A payment has an event only when failed
    (journey_payment_failed, the column of fct_payments). -#}
{% macro journey_billing_facts() -%}
    {{ return({
        'invoices': ('fct_invoices', 'invoice_key'),
        'payments': ('fct_payments', 'payment_key'),
        'refunds': ('fct_refunds', 'refund_key'),
        'subscriptions': ('fct_subscriptions', 'subscription_key'),
    }) }}
{%- endmacro %}

{% macro journey_payment_failed() -%}
    {{ return('is_failed') }}
{%- endmacro %}

{#- The CTEs of fct_journey_events' sources (touch_records, touches, returns) and, on an incremental run,
    of its changed source keys (`changed`, cx_changed_keys: the model's header says which). Rendered by the
    model, and by its pre-hooks that stage changed_touch_customers and then the changed keys
    (cx_stage_changed_keys): `staged_first` and `staged`, the staged tables, make changed_touch_customers and
    `changed` read them instead of computing them (the touches' comparison, two group-bys over every touch
    and held touch event, is done once a night: about 0.5 s at scale M, 9 s at L). No leading `with`, no
    trailing comma. -#}
{% macro journey_change_ctes(staged=none, staged_first=none) %}
    -- every touch with its customer key now; hashed (touch_key) only where a run reads it (touches, and on an
    -- incremental run the touches of changed_touch_customers or from the new drops)
    touch_records as (
        select t.*, k.customer_key
        from {{ ref('stg_crm__campaign_touches') }} as t
        left join {{ ref('int_customer_keys') }} as k
            on k.identifier = {{ customer_identifier('t.customer_id', 't.email_hash') }}
    ),

{%- if is_incremental() %}

    -- the touches are compared per customer, unhashed (hashing every touch_id was most of a night's cost): a
    -- touch has one event, with its time, under its customer_key. Among the touches not from the new drops
    -- (cx_new_record) and the held touch events from drops before min_date, a customer whose count of touches
    -- or sum of their times (epoch microseconds) differs between now and held has touches that moved to or
    -- from them (an erasure request, an identity merge, a touch gone from staging, a touch whose held event
    -- came from a later version a re-run of an older window deleted). These customers' touches are
    -- recomputed, now (hashed: those only) and held, with the touches from the new drops and the held touch
    -- events from drops on or after min_date. Touches moved both into and out of one customer in one night
    -- with the same count and sum of times would go unnoticed.
    -- (the held touch events are read by changed_touch_customers and by `changed`: on DuckDB each is its own
    -- pre-hook's statement, cx_fact_config(stage_first=...), so no statement reads them twice, which would
    -- make DuckDB materialize every held touch event, 1.4 million at scale M)
    held_touches as (
        select source_key, customer_key, event_ts, last_drop_date
        from {{ this }}
        where source_entity = 'campaign_touches'
    ),

    changed_touch_customers as (
    {%- if staged_first %}
        select customer_key from {{ staged_first }}
    {%- else %}
        select coalesce(n.customer_key, held.customer_key) as customer_key
        from (
            select customer_key, count(*) as touches, sum(cast({{ epoch_micros('touched_at') }} as decimal(38, 0))) as time_sum
            from touch_records
            where customer_key is not null and touched_at is not null and not {{ cx_new_record('drop_date') }}
            group by customer_key
        ) as n
        full outer join (
            select customer_key, count(*) as touches, sum(cast({{ epoch_micros('event_ts') }} as decimal(38, 0))) as time_sum
            from held_touches
            where last_drop_date < {{ cx_min_date() }}
            group by customer_key
        ) as held on held.customer_key = n.customer_key
        where n.touches is distinct from held.touches or n.time_sum is distinct from held.time_sum
    {%- endif %}
    ),
{%- endif %}

    touches as (
        select t.*, {{ cx_source_key('touch', 't.touch_id', 'tk') }} as touch_key
        from touch_records as t
        -- the touch's key from the map of identifiers to keys (macros/keys.sql)
        {{ cx_source_key_join('touch', 't.touch_id', 'tk') }}
        {%- if is_incremental() %}
        where {{ cx_new_record('t.drop_date') }}
           or t.customer_key in (select customer_key from changed_touch_customers)
        {%- endif %}
    ),

    returns as (
        select {{ cx_pseudonym('return', 'r.return_id') }} as return_key, o.customer_key, o.sales_channel,
               coalesce(r.received_at, r.requested_at) as returned_at, r.reason,
               greatest(r.drop_date, o.last_drop_date) as last_drop_date
        from {{ ref('stg_erp__returns') }} as r
        left join {{ ref('fct_orders') }} as o on o.order_key = {{ cx_pseudonym('order', 'r.order_id') }}
    )
{%- if is_incremental() %},
    {%- if staged %}

    changed as (
        select source_key from {{ staged }}
    )
    {%- else %}

    -- every other current source record of an event: its source key, customer key now (null when it has no
    -- event whatever its customer: a payment not failed) and the newest drop its events are built from
    sources as (
        select order_key as source_key, customer_key, last_drop_date as drop_date, source_drop_days
        from {{ ref('fct_orders') }}
        union all
        select return_key, customer_key, last_drop_date, cast(null as {{ dbt.type_bigint() }}) from returns
        union all
        select case_key, customer_key, last_drop_date, cast(null as {{ dbt.type_bigint() }})
        from {{ ref('fct_support_cases') }}
        {%- for name, (fact, key) in journey_billing_facts().items() %}
        {#- a payment has an event only when failed: the others compare as keys without events #}
        union all
        select {{ key }}, {{ 'case when ' ~ journey_payment_failed() ~ ' then customer_key end' if name == 'payments'
                             else 'customer_key' }}, last_drop_date, cast(null as {{ dbt.type_bigint() }})
        from {{ ref(fact) }}
        {%- endfor %}
        union all
        select response_key, customer_key, last_drop_date, cast(null as {{ dbt.type_bigint() }})
        from {{ ref('fct_survey_responses') }}
    ),

    {#- the held rows other than touches: a query, not a CTE, as DuckDB's comparison reads them twice (a CTE
        read twice is materialized: every held event, 3.8 million at scale M) #}
    {%- set held_others %}
        (select source_key, customer_key, last_drop_date, source_drop_days
         from {{ this }}
         where source_entity <> 'campaign_touches')
    {%- endset %}

    -- the sources compared with the held rows: a source key without a customer has no event, so it is left
    -- out (fewer rows to join; a held key of such a source is changed all the same, as held and gone)
    keyed_sources as (
        select source_key, customer_key, source_drop_days from sources where customer_key is not null
    ),

    changed as (
        -- touches: from the new drops, or of a changed customer, now and held
        select touch_key as source_key from touches
        union
        select source_key
        from held_touches
        where last_drop_date >= {{ cx_min_date() }} or customer_key in (select customer_key from changed_touch_customers)
        union
        -- every other source key: cx_changed_keys against the held rows other than touches
        {{ cx_changed_keys('sources', 'keyed_sources', 'source_key', 'source_key', ['customer_key', 'source_drop_days'],
                           gone=true, held=held_others) }}
    )
    {%- endif %}
{%- endif %}
{%- endmacro %}
