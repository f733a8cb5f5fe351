{#- The records and changed keys of the largest incremental facts (fct_orders, fct_invoices, fct_payments):
    the import CTEs their models open with (`with {{ fct_orders_changes(staged=cx_staged_changed_keys()) }},`)
    and that their pre-hook runs first on DuckDB (cx_fact_config(changes=...), cx_stage_changed_keys), as
    fct_journey_events' (journey_change_ctes, macros/journey.sql). Each renders the fact's records CTE (every
    staging record its rows are built from, with its drop) and, on an incremental run, `changed`: computed
    here (cx_changed_keys), or read from the staged table (`staged`).

    Why staged on DuckDB: in one query, DuckDB cannot know how few keys `changed` holds (62 thousand of 13.9
    million orders on an L night), and builds each `in (select ... from changed)` filter's hash table from
    the filtered table instead: every order with its columns, 4.7 GB for fct_orders at scale L, beside the
    comparison's own. Staged, the table's row count is known and the filters are built from the keys: the
    night's fct_orders query fits within 5 GB (it failed there in one query) and its second part takes 6 s
    at L (benchmarks/RESULTS.md, "The night's key comparison on hashes, the largest facts' changed keys
    staged"). Spark computes them in the query. No leading `with`, no trailing comma. -#}

{#- The CTEs of one fact: `<entity>_records` (`records`, a select of (<entity>_id, drop_date)) and, on an
    incremental run, `changed`: read from `staged`, or computed by cx_changed_keys from the records and
    `keyed_now` (a select of every current <entity>_id with its served key <entity>_key and the compared
    columns as the build computes them). `summed`: a fact keyed by a parent (cx_changed_keys(summary=...)),
    whose records are summed per key first (`<entity>_summary`). -#}
{% macro cx_fact_changes(entity, records, keyed_now, staged=none, summed=false) %}
    {%- set id = entity ~ '_id' %}
    -- every staging record a row of the fact is built from, with the drop it came from
    {{ entity }}_records as (
        {{ records }}
    )
{%- if is_incremental() %},
    {%- if staged %}

    changed as (
        select {{ id }} from {{ staged }}
    )
    {%- else %}
    {%- if summed %}

    -- per key: the newest drop among its records and the sum of their drops, compared with the held row's
    {{ entity }}_summary as (
        {{ cx_record_summary(entity ~ '_records', id) }}
    ),
    {%- endif %}

    -- every current key with its served key and its customer key now (the key map can re-key an unchanged row)
    keyed_now as (
        {{ keyed_now }}
    ),

    changed as (
        {{ cx_changed_keys(entity ~ '_records', 'keyed_now', id, entity ~ '_key',
                           summary=(entity ~ '_summary') if summed else none) }}
    )
    {%- endif %}
{%- endif %}
{% endmacro %}

{% macro fct_orders_changes(staged=none) %}
    {%- set records %}
        select order_id, drop_date from {{ ref('stg_erp__orders') }}
        union all
        select order_id, drop_date from {{ ref('stg_erp__order_lines') }}
        union all
        select order_id, drop_date from {{ ref('stg_erp__shipments') }}
        union all
        select order_id, drop_date from {{ ref('stg_erp__returns') }}
        union all
        select order_id, drop_date from {{ ref('stg_billing__invoices') }} where order_id is not null
        union all
        -- a refund counts on its payment's invoice's order: the refund's and the payment's drops
        select r.order_id, f.drop_date
        from {{ ref('int_refunds_with_invoices') }} as r
        inner join {{ ref('stg_billing__refunds') }} as f on f.refund_id = r.refund_id
        where r.order_id is not null
        union all
        select r.order_id, p.drop_date
        from {{ ref('int_refunds_with_invoices') }} as r
        inner join {{ ref('stg_billing__payments') }} as p on p.payment_id = r.payment_id
        where r.order_id is not null
    {%- endset %}
    {%- set keyed_now %}
        select
            o.order_id,
            {{ cx_source_key('order', 'o.order_id', 'ok') }} as order_key,
            k.customer_key
        from {{ ref('stg_erp__orders') }} as o
        left join {{ ref('int_customer_keys') }} as k
            on k.identifier = {{ customer_identifier('o.crm_customer_id', 'o.email_hash') }}
        {{ cx_source_key_join('order', 'o.order_id', 'ok') }}
    {%- endset %}
    {{ cx_fact_changes('order', records, keyed_now, staged, summed=true) }}
{% endmacro %}

{% macro fct_invoices_changes(staged=none) %}
    {%- set records %}
        select invoice_id, drop_date from {{ ref('stg_billing__invoices') }}
        union all
        select invoice_id, drop_date from {{ ref('stg_billing__payments') }} where invoice_id is not null
        union all
        -- a refund counts on its payment's invoice (the payment's own drop is the line above)
        select r.invoice_id, f.drop_date
        from {{ ref('int_refunds_with_invoices') }} as r
        inner join {{ ref('stg_billing__refunds') }} as f on f.refund_id = r.refund_id
        where r.invoice_id is not null
    {%- endset %}
    {%- set keyed_now %}
        select
            i.invoice_id,
            {{ cx_source_key('invoice', 'i.invoice_id', 'ik') }} as invoice_key,
            k.customer_key
        from {{ ref('stg_billing__invoices') }} as i
        left join {{ ref('int_customer_keys') }} as k
            on k.identifier = {{ customer_identifier('i.ref_customer_id', 'i.ref_email_hash') }}
        {{ cx_source_key_join('invoice', 'i.invoice_id', 'ik') }}
    {%- endset %}
    {{ cx_fact_changes('invoice', records, keyed_now, staged, summed=true) }}
{% endmacro %}

{% macro fct_payments_changes(staged=none) %}
    {%- set records %}
        select payment_id, drop_date from {{ ref('stg_billing__payments') }}
        union all
        select p.payment_id, i.drop_date
        from {{ ref('stg_billing__payments') }} as p
        inner join {{ ref('stg_billing__invoices') }} as i on i.invoice_id = p.invoice_id
    {%- endset %}
    {%- set keyed_now %}
        select
            p.payment_id,
            {{ cx_source_key('payment', 'p.payment_id', 'pk') }} as payment_key,
            k.customer_key
        from {{ ref('stg_billing__payments') }} as p
        left join {{ ref('stg_billing__invoices') }} as i on i.invoice_id = p.invoice_id
        left join {{ ref('int_customer_keys') }} as k
            on k.identifier = {{ customer_identifier('i.ref_customer_id', 'i.ref_email_hash') }}
        {{ cx_source_key_join('payment', 'p.payment_id', 'pk') }}
    {%- endset %}
    {{ cx_fact_changes('payment', records, keyed_now, staged) }}
{% endmacro %}
