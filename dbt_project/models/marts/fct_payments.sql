{{ config(**cx_fact_config('payment_key', changes='fct_payments_changes')) }}
-- One row per payment attempt.
--
-- Incremental (macros/incremental_facts.sql; docs/warehouse.md, "Incremental facts"): a night recomputes
-- the changed payments only, the payments with a record (the payment, or its invoice, which gives the
-- order, subscription and customer) from the window's drops or rewritten by the run, the payments whose
-- row came from those drops or later, and the payments whose customer_key changed (an erasure request or
-- an identity merge re-keys the invoice's customer); the rows of payments gone from staging are deleted.
-- Nothing here depends on as_of itself. var rotate_keys forces a full refresh.

-- the payments' records and, on a night, the changed payments (macros/fact_changes.sql)
with {{ fct_payments_changes(staged=cx_staged_changed_keys()) }},

payments as (
    select * from {{ ref('stg_billing__payments') }}
    {{ cx_where_changed('payment_id') }}
)

select
    {{ cx_source_key('payment', 'p.payment_id', 'pk') }} as payment_key,
    {{ cx_source_key('invoice', 'p.invoice_id', 'ik') }} as invoice_key,
    {{ cx_source_key('order', 'i.order_id', 'ok') }} as order_key,
    {{ cx_source_key('subscription', 'i.subscription_id', 'sk') }} as subscription_key,
    k.customer_key,
    p.attempted_at,
    {{ utc_date('p.attempted_at') }} as attempt_date,
    p.amount_minor,
    p.currency,
    p.method,
    p.status,
    p.status = 'failed' as is_failed,
    p.failure_reason,
    -- the newest drop among the payment's records, the payment and its invoice (the next night's comparison)
    case when i.drop_date > p.drop_date then i.drop_date else p.drop_date end as last_drop_date
from payments as p
left join {{ ref('stg_billing__invoices') }} as i on i.invoice_id = p.invoice_id
left join {{ ref('int_customer_keys') }} as k
    on k.identifier = {{ customer_identifier('i.ref_customer_id', 'i.ref_email_hash') }}
-- the record keys from the map of identifiers to keys (macros/keys.sql)
{{ cx_source_key_join('payment', 'p.payment_id', 'pk') }}
{{ cx_source_key_join('invoice', 'p.invoice_id', 'ik') }}
{{ cx_source_key_join('order', 'i.order_id', 'ok') }}
{{ cx_source_key_join('subscription', 'i.subscription_id', 'sk') }}
