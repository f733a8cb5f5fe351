-- One row per refund, in integer minor units with its currency.
select
    {{ cx_pseudonym('refund', 'r.refund_id') }} as refund_key,
    {{ cx_pseudonym('payment', 'r.payment_id') }} as payment_key,
    {{ cx_pseudonym('invoice', 'p.invoice_id') }} as invoice_key,
    {{ cx_pseudonym('order', 'i.order_id') }} as order_key,
    k.customer_key,
    r.refunded_at,
    {{ utc_date('r.refunded_at') }} as refund_date,
    r.amount_minor,
    r.currency,
    r.reason,
    r.reason = 'service_failure' as is_service_failure
from {{ ref('stg_billing__refunds') }} as r
left join {{ ref('stg_billing__payments') }} as p on p.payment_id = r.payment_id
left join {{ ref('stg_billing__invoices') }} as i on i.invoice_id = p.invoice_id
left join {{ ref('int_customer_keys') }} as k
    on k.identifier = {{ customer_identifier('i.ref_customer_id', 'i.ref_email_hash') }}
