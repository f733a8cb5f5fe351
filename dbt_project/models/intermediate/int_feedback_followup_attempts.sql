-- The call-back attempts (crm.feedback_followups) keyed like the survey responses they follow up
-- (response_key, macros/keys.sql), delivered by as_of: the input of mart_feedback_followups.
select
    {{ cx_pseudonym('response', 'response_id') }} as response_key,
    channel,
    contacted_at,
    outcome in ('reached', 'left_message') as is_contact
from {{ ref('stg_crm__feedback_followups') }}
where {{ utc_date('contacted_at') }} <= {{ cx_as_of() }}
