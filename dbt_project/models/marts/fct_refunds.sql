-- One row per refund, in integer minor units with its currency.
select
    {{ cx_pseudonym('refund', 'r.refund_id') }} as refund_key,
    {{ cx_pseudonym('payment', 'r.payment_id') }} as payment_key,
    {{ cx_pseudonym('invoice', 'r.invoice_id') }} as invoice_key,
    {{ cx_pseudonym('order', 'r.order_id') }} as order_key,
    k.customer_key,
    r.refunded_at,
    {{ utc_date('r.refunded_at') }} as refund_date,
    r.amount_minor,
    r.currency,
    r.reason,
    r.reason = 'service_failure' as is_service_failure
from {{ ref('int_refunds_with_invoices') }} as r
left join {{ ref('int_customer_keys') }} as k
    on k.identifier = {{ customer_identifier('r.ref_customer_id', 'r.ref_email_hash') }}
