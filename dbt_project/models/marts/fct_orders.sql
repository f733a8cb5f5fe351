{{ config(**cx_fact_config('order_key', changes='fct_orders_changes')) }}
-- One row per order: an accumulating snapshot from order to payment, delivery, return and refund.
-- Delivered = every line's shipments delivered; on time = last delivery's Europe/Paris date within
-- the brand's delivery promise (seed brand_promises: days after the promised date, 0 = on or before
-- it; none applies to the sales channel: not judged); in full = delivered quantity = ordered quantity on every line;
-- OTIF = both, per order (not on-time rate x in-full rate).
--
-- Incremental (macros/incremental_facts.sql; docs/warehouse.md, "Incremental facts"): a night recomputes
-- the changed orders only, the orders with a record (order, line, shipment, return, invoice, or a refund
-- or refunded payment of one of its invoices) from the window's drops or rewritten by the run, the orders
-- whose row came from those drops or later, the orders whose customer_key changed, and the orders whose
-- records' sum of drops (source_drop_days) differs from the held row's: an order that lost a record whose
-- new version points at another order (a shipment moved by a data correction) has no new record of its
-- own (cx_changed_keys(summary=...)); the rows of orders gone from staging are deleted. Nothing here depends on as_of itself (open orders need no nightly pass).
-- A change of the seed brand_promises needs a full refresh; var rotate_keys forces one.

-- the orders' records and, on a night, the changed orders (macros/fact_changes.sql)
with {{ fct_orders_changes(staged=cx_staged_changed_keys()) }},

orders as (
    select
        order_id,
        crm_customer_id,
        email_hash,
        erp_account_id,
        sales_channel,
        currency,
        total_amount,
        status,
        updated_at,
        ordered_at,
        ordered_local_date,
        promised_delivery_date
    from {{ ref('stg_erp__orders') }}
    {{ cx_where_changed('order_id') }}
),

-- the newest drop among the order's records and the sum of their drops (the next night's comparison)
order_drops as (
    {{ cx_record_summary('order_records', 'order_id', where=cx_where_changed('order_id')) }}
),

-- the delivery promise depends on the channel alone: one row per channel
channels as (
    select distinct sales_channel from {{ ref('stg_erp__orders') }}
),

delivery_promise as (
    {{ promise_for('channels', 'sales_channel', 'delivery', channel='sales_channel') }}
),

line_delivery as (
    select
        l.order_id,
        l.line_no,
        l.quantity,
        count(s.shipment_id) as shipments,
        sum(case when s.status = 'delivered' then s.quantity else 0 end) as units_delivered,
        sum(case when s.status <> 'delivered' then 1 else 0 end) as undelivered_shipments,
        sum(case when s.status = 'lost' then 1 else 0 end) as lost_shipments,
        min(s.shipped_at) as first_shipped_at,
        max(s.delivered_at) as last_delivered_at,
        max(s.delivered_local_date) as last_delivered_local_date
    from {{ ref('stg_erp__order_lines') }} as l
    left join {{ ref('stg_erp__shipments') }} as s on s.order_id = l.order_id and s.line_no = l.line_no
    {{ cx_where_changed('l.order_id') }}
    group by l.order_id, l.line_no, l.quantity
),

-- one row per line above (a line is unique on order_id, line_no): the order's lines and their units too
delivery as (
    select
        order_id,
        count(*) as lines,
        cast(sum(quantity) as bigint) as units_ordered,
        min(first_shipped_at) as first_shipped_at,
        -- delivered when every line has shipments and all of them are delivered
        min(case when shipments > 0 and undelivered_shipments = 0 then 1 else 0 end) = 1 as is_delivered,
        max(last_delivered_at) as last_delivered_at,
        max(last_delivered_local_date) as last_delivered_local_date,
        min(case when units_delivered >= quantity then 1 else 0 end) = 1 as all_lines_in_full,
        cast(sum(units_delivered) as bigint) as units_delivered,
        sum(lost_shipments) > 0 as has_lost_shipment
    from line_delivery
    group by order_id
),

invoices as (
    select
        order_id,
        min(invoice_id) as invoice_id,
        min(issued_at) as invoiced_at,
        max(case when status = 'paid' then updated_at end) as paid_at
    from {{ ref('stg_billing__invoices') }}
    where order_id is not null
    {{ cx_where_changed('order_id', keyword='and') }}
    group by order_id
),

refunds as (
    select
        order_id,
        true as has_refund,
        cast(sum(amount_minor) as bigint) as refunded_minor,
        min(refunded_at) as first_refunded_at
    from {{ ref('int_refunds_with_invoices') }}
    where order_id is not null
    {{ cx_where_changed('order_id', keyword='and') }}
    group by order_id
),

returns as (
    select order_id, count(*) as returns, min(received_at) as first_returned_at
    from {{ ref('stg_erp__returns') }}
    {{ cx_where_changed('order_id') }}
    group by order_id
),

-- the order's aggregates: one aggregation rather than six joins (macros/memory.sql)
combined as (
    {{ cx_combine_per_key('order_id', [
        ['order_drops', ['last_drop_date', 'source_drop_days']],
        ['delivery', ['lines', 'units_ordered', 'first_shipped_at', 'is_delivered', 'last_delivered_at',
                      'last_delivered_local_date', 'all_lines_in_full', 'units_delivered', 'has_lost_shipment']],
        ['invoices', ['invoice_id', 'invoiced_at', 'paid_at']],
        ['refunds', ['has_refund', 'refunded_minor', 'first_refunded_at']],
        ['returns', ['returns', 'first_returned_at']],
    ], required='order_drops') }}
)

select
    {{ cx_source_key('order', 'o.order_id', 'ok') }} as order_key,
    k.customer_key,
    {{ cx_source_key('erp-account', 'o.erp_account_id', 'ak') }} as erp_account_key,
    o.sales_channel,
    o.currency,
    o.total_amount,
    o.status,
    o.updated_at as status_updated_at,
    o.ordered_at,
    o.ordered_local_date,
    o.promised_delivery_date,
    coalesce(c.lines, 0) as lines,
    coalesce(c.units_ordered, 0) as units_ordered,
    c.first_shipped_at,
    coalesce(c.is_delivered, false) as is_delivered,
    case when c.is_delivered then c.last_delivered_at end as delivered_at,
    case when c.is_delivered then c.last_delivered_local_date end as delivered_local_date,
    dp.promise_id as delivery_promise_id,
    case when c.is_delivered
        then {{ is_on_time('c.last_delivered_local_date', 'o.promised_delivery_date', 'dp.promise_target') }}
    end as is_on_time,
    case when c.is_delivered then c.all_lines_in_full end as is_in_full,
    case when c.is_delivered
        then {{ is_on_time('c.last_delivered_local_date', 'o.promised_delivery_date', 'dp.promise_target') }}
            and c.all_lines_in_full
    end as is_otif,
    case when c.is_delivered
        then {{ promise_gap_days('c.last_delivered_local_date', 'o.promised_delivery_date') }}
    end as promise_gap_days,
    coalesce(c.has_lost_shipment, false) as has_lost_shipment,
    coalesce(c.units_delivered, 0) as units_delivered,
    {{ cx_source_key('invoice', 'c.invoice_id', 'ik') }} as invoice_key,
    c.invoiced_at,
    c.paid_at,
    coalesce(c.returns, 0) as returns,
    c.first_returned_at,
    coalesce(c.refunded_minor, 0) as refunded_minor,
    c.first_refunded_at,
    coalesce(c.has_refund, false) as has_refund,
    {{ hours_between('o.ordered_at', 'c.first_shipped_at') }} as hours_to_ship,
    case when c.is_delivered then {{ hours_between('o.ordered_at', 'c.last_delivered_at') }} end as hours_to_deliver,
    {{ hours_between('o.ordered_at', 'c.paid_at') }} as hours_to_pay,
    c.last_drop_date,
    c.source_drop_days
from orders as o
inner join combined as c on c.order_id = o.order_id
left join delivery_promise as dp on dp.sales_channel is not distinct from o.sales_channel
left join {{ ref('int_customer_keys') }} as k
    on k.identifier = {{ customer_identifier('o.crm_customer_id', 'o.email_hash') }}
-- the record keys from the map of identifiers to keys (macros/keys.sql)
{{ cx_source_key_join('order', 'o.order_id', 'ok') }}
{{ cx_source_key_join('erp-account', 'o.erp_account_id', 'ak') }}
{{ cx_source_key_join('invoice', 'c.invoice_id', 'ik') }}
