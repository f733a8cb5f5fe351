{{ config(**cx_fact_config('invoice_key', changes='fct_invoices_changes')) }}
-- One row per invoice with what was paid and refunded against it.
--
-- Incremental (macros/incremental_facts.sql; docs/warehouse.md, "Incremental facts"): a night recomputes
-- the changed invoices only, the invoices with a record (the invoice, a payment of it, or a refund of one
-- of its payments) from the window's drops or rewritten by the run, the invoices whose row came from
-- those drops or later, the invoices whose customer_key changed (an erasure request or an identity
-- merge), and the invoices whose records' sum of drops (source_drop_days) differs from the held row's (an
-- invoice that lost a payment re-applied to another invoice, and that payment's refunds; cx_changed_keys
-- (summary=...)); the rows of invoices gone from staging are deleted. Nothing here depends on as_of itself (an
-- open invoice past its due date is not flagged "overdue as of today"), so open invoices need no nightly
-- pass. var rotate_keys forces a full refresh.

-- the invoices' records and, on a night, the changed invoices (macros/fact_changes.sql)
with {{ fct_invoices_changes(staged=cx_staged_changed_keys()) }},

invoices as (
    select * from {{ ref('stg_billing__invoices') }}
    {{ cx_where_changed('invoice_id') }}
),

-- the newest drop among the invoice's records and the sum of their drops (the next night's comparison)
invoice_drops as (
    {{ cx_record_summary('invoice_records', 'invoice_id', where=cx_where_changed('invoice_id')) }}
),

paid as (
    select invoice_id, cast(sum(case when status = 'succeeded' then amount_minor else 0 end) as bigint) as paid_minor,
           count(*) as payment_attempts, cast(sum(case when status = 'failed' then 1 else 0 end) as bigint) as failed_attempts
    from {{ ref('stg_billing__payments') }}
    {{ cx_where_changed('invoice_id') }}
    group by invoice_id
),

refunded as (
    select invoice_id, cast(sum(amount_minor) as bigint) as refunded_minor
    from {{ ref('int_refunds_with_invoices') }}
    where invoice_id is not null
    {{ cx_where_changed('invoice_id', keyword='and') }}
    group by invoice_id
)

select
    {{ cx_source_key('invoice', 'i.invoice_id', 'ik') }} as invoice_key,
    k.customer_key,
    {{ cx_source_key('billing-account', 'i.billing_account_id', 'bk') }} as billing_account_key,
    {{ cx_source_key('order', 'i.order_id', 'ok') }} as order_key,
    {{ cx_source_key('subscription', 'i.subscription_id', 'sk') }} as subscription_key,
    i.issued_at,
    {{ utc_date('i.issued_at') }} as issue_date,
    i.due_at,
    i.amount_due_minor,
    i.currency,
    i.status,
    coalesce(pd.paid_minor, 0) as paid_minor,
    coalesce(pd.payment_attempts, 0) as payment_attempts,
    coalesce(pd.failed_attempts, 0) as failed_attempts,
    coalesce(rf.refunded_minor, 0) as refunded_minor,
    idr.last_drop_date,
    idr.source_drop_days
from invoices as i
inner join invoice_drops as idr on idr.invoice_id = i.invoice_id
left join paid as pd on pd.invoice_id = i.invoice_id
left join refunded as rf on rf.invoice_id = i.invoice_id
left join {{ ref('int_customer_keys') }} as k
    on k.identifier = {{ customer_identifier('i.ref_customer_id', 'i.ref_email_hash') }}
-- the record keys from the map of identifiers to keys (macros/keys.sql)
{{ cx_source_key_join('invoice', 'i.invoice_id', 'ik') }}
{{ cx_source_key_join('billing-account', 'i.billing_account_id', 'bk') }}
{{ cx_source_key_join('order', 'i.order_id', 'ok') }}
{{ cx_source_key_join('subscription', 'i.subscription_id', 'sk') }}
