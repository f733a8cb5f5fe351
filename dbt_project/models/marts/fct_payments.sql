-- One row per payment attempt.
select
    {{ cx_pseudonym('payment', 'p.payment_id') }} as payment_key,
    {{ cx_pseudonym('invoice', 'p.invoice_id') }} as invoice_key,
    {{ cx_pseudonym('order', 'i.order_id') }} as order_key,
    {{ cx_pseudonym('subscription', 'i.subscription_id') }} as subscription_key,
    k.customer_key,
    p.attempted_at,
    {{ utc_date('p.attempted_at') }} as attempt_date,
    p.amount_minor,
    p.currency,
    p.method,
    p.status,
    p.status = 'failed' as is_failed,
    p.failure_reason
from {{ ref('stg_billing__payments') }} as p
left join {{ ref('stg_billing__invoices') }} as i on i.invoice_id = p.invoice_id
left join {{ ref('int_customer_keys') }} as k
    on k.identifier = {{ customer_identifier('i.ref_customer_id', 'i.ref_email_hash') }}
