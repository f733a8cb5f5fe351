{{ config(**cx_fact_config('refund_key')) }}
-- One row per refund, in integer minor units with its currency.
--
-- Incremental (macros/incremental_facts.sql; docs/warehouse.md, "Incremental facts"): a night recomputes
-- the changed refunds only, the refunds with a record (the refund, the payment it refunds, or that
-- payment's invoice, which gives the order and customer) from the window's drops or rewritten by the run,
-- the refunds whose row came from those drops or later, and the refunds whose customer_key changed (an
-- erasure request or an identity merge); the rows of refunds gone from staging are deleted. Nothing here
-- depends on as_of itself. var rotate_keys forces a full refresh.

-- every staging record a refund is built from, with the drop it came from
with refund_records as (
    select refund_id, drop_date from {{ ref('stg_billing__refunds') }}
    union all
    select r.refund_id, p.drop_date
    from {{ ref('int_refunds_with_invoices') }} as r
    inner join {{ ref('stg_billing__payments') }} as p on p.payment_id = r.payment_id
    union all
    select r.refund_id, i.drop_date
    from {{ ref('int_refunds_with_invoices') }} as r
    inner join {{ ref('stg_billing__invoices') }} as i on i.invoice_id = r.invoice_id
),
{%- if is_incremental() %}

-- every refund with its served key and its customer key now (the key map can re-key an unchanged refund)
keyed_now as (
    select
        r.refund_id,
        {{ cx_source_key('refund', 'r.refund_id', 'rk') }} as refund_key,
        k.customer_key
    from {{ ref('int_refunds_with_invoices') }} as r
    left join {{ ref('int_customer_keys') }} as k
        on k.identifier = {{ customer_identifier('r.ref_customer_id', 'r.ref_email_hash') }}
    -- the record keys from the map of identifiers to keys (macros/keys.sql)
    {{ cx_source_key_join('refund', 'r.refund_id', 'rk') }}
),

changed as (
    {{ cx_changed_keys('refund_records', 'keyed_now', 'refund_id', 'refund_key') }}
),
{%- endif %}

refunds as (
    select * from {{ ref('int_refunds_with_invoices') }}
    {{ cx_where_changed('refund_id') }}
),

-- the newest drop among the refund's records (the next night's comparison)
refund_drops as (
    select refund_id, max(drop_date) as last_drop_date
    from refund_records
    {{ cx_where_changed('refund_id') }}
    group by refund_id
)

select
    {{ cx_source_key('refund', 'r.refund_id', 'rk') }} as refund_key,
    {{ cx_source_key('payment', 'r.payment_id', 'pk') }} as payment_key,
    {{ cx_source_key('invoice', 'r.invoice_id', 'ik') }} as invoice_key,
    {{ cx_source_key('order', 'r.order_id', 'ok') }} as order_key,
    k.customer_key,
    r.refunded_at,
    {{ utc_date('r.refunded_at') }} as refund_date,
    r.amount_minor,
    r.currency,
    r.reason,
    r.reason = 'service_failure' as is_service_failure,
    rd.last_drop_date
from refunds as r
inner join refund_drops as rd on rd.refund_id = r.refund_id
left join {{ ref('int_customer_keys') }} as k
    on k.identifier = {{ customer_identifier('r.ref_customer_id', 'r.ref_email_hash') }}
-- the record keys from the map of identifiers to keys (macros/keys.sql)
{{ cx_source_key_join('refund', 'r.refund_id', 'rk') }}
{{ cx_source_key_join('payment', 'r.payment_id', 'pk') }}
{{ cx_source_key_join('invoice', 'r.invoice_id', 'ik') }}
{{ cx_source_key_join('order', 'r.order_id', 'ok') }}
