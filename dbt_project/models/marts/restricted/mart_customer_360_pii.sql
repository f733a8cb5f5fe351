-- Restricted: the customer 360 with the personal data behind each key, for frontline staff who must
-- see who they are talking to. Never published (orchestration/publish.py serves `marts` only).
-- Every customer of mart_customer_360 except those who asked for erasure (their key resolves to
-- nothing, and dim_customer_pii holds nothing of them); an email_only customer has no CRM profile,
-- so no personal data here either (nulls).
{%- set columns = [
    'segment', 'persona', 'customer_since', 'tenure_days', 'orders', 'orders_delivered', 'last_order_at',
    'revenue_currency', 'net_revenue_minor', 'currencies', 'net_revenue_reporting', 'open_cases', 'cases_total',
    'last_case_opened_at', 'last_contact_phone_at', 'last_contact_email_at', 'last_contact_chat_at',
    'last_contact_store_at', 'last_contact_social_at', 'last_campaign_touch_at', 'last_nps_score', 'last_nps_at',
    'last_csat_score', 'last_csat_at', 'last_ces_score', 'last_ces_at', 'journey_stage', 'last_event_at',
    'current_profile', 'open_followups', 'overdue_followups', 'promises_broken_90d',
] %}

with customer_360 as (
    select * from {{ ref('mart_customer_360') }}
    where not is_erased
),

pii as (
    select customer_key, email, phone_e164, first_name, last_name, city
    from {{ ref('dim_customer_pii') }}
)

select
    c.customer_key,
    p.email,
    p.phone_e164,
    p.first_name,
    p.last_name,
    p.city,
    {%- for column in columns %}
    c.{{ column }}{{ ',' if not loop.last }}
    {%- endfor %}
from customer_360 as c
left join pii as p on p.customer_key = c.customer_key
