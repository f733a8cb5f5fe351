-- One row per refund, with the payment it refunds, that payment's invoice and the invoice's order and
-- customer reference: the refunds-to-invoices join behind fct_refunds (per refund), fct_invoices
-- (refunded per invoice) and fct_orders (refunded per order).
-- invoice_id is null when the refunded payment is unknown; order_id and the customer references are
-- null when the invoice is unknown or bills no order (a subscription invoice).
with refunds as (
    select * from {{ ref('stg_billing__refunds') }}
),

payments as (
    select payment_id, invoice_id from {{ ref('stg_billing__payments') }}
),

invoices as (
    select invoice_id, order_id, ref_customer_id, ref_email_hash from {{ ref('stg_billing__invoices') }}
)

select
    r.refund_id,
    r.payment_id,
    p.invoice_id,
    i.order_id,
    i.ref_customer_id,
    i.ref_email_hash,
    r.refunded_at,
    r.amount_minor,
    r.currency,
    r.reason
from refunds as r
left join payments as p on p.payment_id = r.payment_id
left join invoices as i on i.invoice_id = p.invoice_id
