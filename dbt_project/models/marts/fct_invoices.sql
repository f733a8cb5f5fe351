-- One row per invoice with what was paid and refunded against it.
with paid as (
    select invoice_id, cast(sum(case when status = 'succeeded' then amount_minor else 0 end) as bigint) as paid_minor,
           count(*) as payment_attempts, cast(sum(case when status = 'failed' then 1 else 0 end) as bigint) as failed_attempts
    from {{ ref('stg_billing__payments') }}
    group by invoice_id
),

refunded as (
    select invoice_id, cast(sum(amount_minor) as bigint) as refunded_minor
    from {{ ref('int_refunds_with_invoices') }}
    where invoice_id is not null
    group by invoice_id
)

select
    {{ cx_pseudonym('invoice', 'i.invoice_id') }} as invoice_key,
    k.customer_key,
    {{ cx_pseudonym('billing-account', 'i.billing_account_id') }} as billing_account_key,
    {{ cx_pseudonym('order', 'i.order_id') }} as order_key,
    {{ cx_pseudonym('subscription', 'i.subscription_id') }} as subscription_key,
    i.issued_at,
    {{ utc_date('i.issued_at') }} as issue_date,
    i.due_at,
    i.amount_due_minor,
    i.currency,
    i.status,
    coalesce(pd.paid_minor, 0) as paid_minor,
    coalesce(pd.payment_attempts, 0) as payment_attempts,
    coalesce(pd.failed_attempts, 0) as failed_attempts,
    coalesce(rf.refunded_minor, 0) as refunded_minor
from {{ ref('stg_billing__invoices') }} as i
left join paid as pd on pd.invoice_id = i.invoice_id
left join refunded as rf on rf.invoice_id = i.invoice_id
left join {{ ref('int_customer_keys') }} as k
    on k.identifier = {{ customer_identifier('i.ref_customer_id', 'i.ref_email_hash') }}
