-- Historical CLV per customer and currency: revenue invoiced (non-void) net of refunds, to as_of;
-- with the customer's current experience profile (negative / evasive / advocate: the current spell of
-- mart_customer_profiles, docs/journey.md "Customer profiles") and their latest NPS score.
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
),

profiles as (
    select customer_key, profile
    from {{ ref('mart_customer_profiles') }}
    where is_current
)

select
    i.customer_key,
    i.currency,
    i.invoices,
    i.invoiced_minor,
    coalesce(r.refunded_minor, 0) as refunded_minor,
    i.invoiced_minor - coalesce(r.refunded_minor, 0) as clv_minor,
    n.score as latest_nps_score,
    -- every customer of dim_customer has a current spell; evasive is the profile of one without data
    coalesce(p.profile, 'evasive') as experience_profile
from invoiced as i
left join refunded as r on r.customer_key = i.customer_key and r.currency = i.currency
left join latest_nps as n on n.customer_key = i.customer_key
left join profiles as p on p.customer_key = i.customer_key
