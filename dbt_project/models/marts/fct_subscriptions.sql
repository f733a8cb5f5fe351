-- One row per subscription: start, cancellation (churn) and whether it is active as of the run date.
select
    {{ cx_pseudonym('subscription', 's.subscription_id') }} as subscription_key,
    k.customer_key,
    s.plan,
    s.mrr_minor,
    s.currency,
    s.started_at,
    s.cancelled_at,
    s.cancel_reason,
    {{ utc_date('s.started_at') }} as start_date,
    {{ utc_date('s.cancelled_at') }} as cancel_date,
    s.cancelled_at is null or {{ utc_date('s.cancelled_at') }} > {{ cx_as_of() }} as is_active_as_of
from {{ ref('stg_billing__subscriptions') }} as s
left join {{ ref('int_customer_keys') }} as k
    on k.identifier = {{ customer_identifier('s.ref_customer_id', 's.ref_email_hash') }}
