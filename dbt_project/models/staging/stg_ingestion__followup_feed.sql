-- The crm drops that delivered the follow-up feed (crm.feedback_followups), from the load audit: one
-- row per business date whose latest load attempt loaded that file. A drop of contract version 1 did
-- not deliver it (it is absent from that attempt's audit rows); a version-2 drop without any call-back
-- delivered it empty, and counts here: the company reports its call-backs, and there were none.
with audit as (
    select * from {{ source('ingestion', 'crm_load_audit') }}
    where business_date <= {{ cx_as_of() }}
),

latest_attempt as (
    select business_date, max(loaded_at) as loaded_at
    from audit
    group by business_date
)

select distinct a.business_date
from audit as a
inner join latest_attempt as l on l.business_date = a.business_date and l.loaded_at = a.loaded_at
where a.entity = 'feedback_followups' and a.status = 'loaded'
