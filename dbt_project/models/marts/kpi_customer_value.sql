-- Historical CLV per customer and currency: revenue invoiced (non-void) net of refunds, to as_of;
-- with the customer's experience profile from their latest NPS answer (advocate / passive / negative).
with invoiced as (
    select customer_key, currency, cast(sum(amount_due_minor) as bigint) as invoiced_minor, count(*) as invoices
    from {{ ref('fct_invoices') }}
    where status <> 'void' and customer_key is not null and issue_date <= {{ cx_as_of() }}
    group by customer_key, currency
),

refunded as (
    select customer_key, currency, cast(sum(amount_minor) as bigint) as refunded_minor
    from {{ ref('fct_refunds') }}
    where customer_key is not null and refund_date <= {{ cx_as_of() }}
    group by customer_key, currency
),

latest_nps as (
    select customer_key, score from (
        select customer_key, score,
               row_number() over (partition by customer_key order by responded_at desc, response_key desc) as rn
        from {{ ref('fct_survey_responses') }}
        where survey_type = 'nps' and customer_key is not null and response_date <= {{ cx_as_of() }}
    ) as ranked
    where rn = 1
)

select
    i.customer_key,
    i.currency,
    i.invoices,
    i.invoiced_minor,
    coalesce(r.refunded_minor, 0) as refunded_minor,
    i.invoiced_minor - coalesce(r.refunded_minor, 0) as clv_minor,
    n.score as latest_nps_score,
    coalesce({{ nps_profile('n.score') }}, 'unknown') as experience_profile
from invoiced as i
left join refunded as r on r.customer_key = i.customer_key and r.currency = i.currency
left join latest_nps as n on n.customer_key = i.customer_key
