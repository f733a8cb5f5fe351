-- Closing the loop: one item per unhappy survey answer (what response_moment counts as negative: NPS
-- 0-6, CSAT 1-2, CES 1-3; or any answer whose comment the tagger finds negative: trigger), with the company's call-backs (crm.feedback_followups) judged against the
-- follow-up promise (seed brand_promises, measure follow_up: 48 elapsed hours by default), at the end
-- of judged_through (as_of, or the last drop of the feed when as_of lies beyond it). Status and breach: macros/followups.sql. next_nps_score: the customer's first NPS answer
-- after the due time, within followup_recovery_days, to see whether a call-back in time recovers them.
with responses as (
    select * from {{ ref('fct_survey_responses') }}
    where response_date <= {{ cx_as_of() }}
),

attempts as (
    select * from {{ ref('int_feedback_followup_attempts') }}
),

-- the drops that delivered the feed: the first one starts the tracking; the last one bounds what can be
-- judged (to as_of, or to that drop when as_of lies beyond the data, as in a plain `dbt build`: a
-- call-back not delivered yet is not a call-back never made)
feed as (
    select
        min(business_date) as first_drop_date,
        least({{ cx_as_of() }}, coalesce(max(business_date), {{ cx_as_of() }})) as judged_through
    from {{ ref('stg_ingestion__followup_feed') }}
),

unhappy as (
    select
        response_key,
        customer_key,
        survey_type,
        touchpoint,
        score,
        responded_at,
        response_date,
        -- why the answer needs a call-back: its score, else its comment's tone (ingestion/comments.py)
        case when {{ response_moment('survey_type', 'score') }} = 'negative' then 'score' else 'comment' end
            as trigger
    from responses
    where {{ response_moment('survey_type', 'score') }} = 'negative'
       or comment_polarity = 'negative'
),

promise as (
    {{ promise_for('unhappy', 'response_key', 'follow_up') }}
),

-- the attempts on the answer or after it (delivered by as_of: int_feedback_followup_attempts)
attempts_per_item as (
    select
        a.response_key,
        cast(count(*) as bigint) as attempts,
        min(case when a.is_contact then a.contacted_at end) as first_contact_at
    from attempts as a
    inner join unhappy as u on u.response_key = a.response_key
    where a.contacted_at >= u.responded_at
    group by a.response_key
),

first_contact_channel as (
    select response_key, channel from (
        select
            a.response_key,
            a.channel,
            row_number() over (partition by a.response_key order by a.contacted_at, a.channel) as rn
        from attempts as a
        inner join attempts_per_item as p on p.response_key = a.response_key and p.first_contact_at = a.contacted_at
        where a.is_contact
    ) as ranked
    where rn = 1
),

-- the feed covers an answer given on or after the first drop that delivered it, or on or after its
-- earliest attempt (a first drop may carry years of call-backs)
coverage as (
    select
        least(
            coalesce(f.first_drop_date, e.first_attempt_date),
            coalesce(e.first_attempt_date, f.first_drop_date)
        ) as tracked_from,
        f.judged_through
    from feed as f
    cross join (select min({{ utc_date('contacted_at') }}) as first_attempt_date from attempts) as e
),

items as (
    select
        u.*,
        p.promise_id,
        p.promise_target as promise_hours,
        {{ dbt.dateadd('second', 'cast(round(p.promise_target * 3600) as bigint)', 'u.responded_at') }} as due_at,
        coalesce(a.attempts, 0) as attempts,
        a.first_contact_at,
        fc.channel as first_contact_channel,
        coalesce(u.response_date >= c.tracked_from, false) as is_tracked,
        c.judged_through
    from unhappy as u
    left join promise as p on p.response_key = u.response_key
    left join attempts_per_item as a on a.response_key = u.response_key
    left join first_contact_channel as fc on fc.response_key = u.response_key
    cross join coverage as c
),

-- the customer's first NPS answer after the due time, within followup_recovery_days
next_nps as (
    select response_key, next_nps_score, next_nps_at from (
        select
            i.response_key,
            r.score as next_nps_score,
            r.responded_at as next_nps_at,
            row_number() over (partition by i.response_key order by r.responded_at, r.response_key) as rn
        from items as i
        inner join responses as r
            on r.customer_key = i.customer_key
            and r.survey_type = 'nps'
            and r.responded_at > i.due_at
            and r.responded_at <= {{ dbt.dateadd('day', var('followup_recovery_days'), 'i.due_at') }}
    ) as ranked
    where rn = 1
),

judged as (
    select
        i.*,
        {{ followup_status('i.is_tracked', 'i.first_contact_at', 'i.due_at', 'i.judged_through') }} as status
    from items as i
)

select
    j.response_key,
    j.customer_key,
    j.survey_type,
    j.touchpoint,
    j.score,
    j.trigger,
    j.responded_at,
    j.response_date,
    j.promise_id,
    j.promise_hours,
    j.due_at,
    {{ utc_date('j.due_at') }} as due_date,
    j.is_tracked,
    j.attempts,
    j.first_contact_at,
    j.first_contact_channel,
    {{ hours_between('j.responded_at', 'j.first_contact_at') }} as hours_to_contact,
    j.status,
    {{ followup_is_breached('j.status') }} as is_breached,
    -- when the outcome became known: the contact that kept the promise, or the due time that broke it
    case
        when j.status = 'contacted_in_time' then {{ utc_date('j.first_contact_at') }}
        when j.status in ('contacted_late', 'never') then {{ utc_date('j.due_at') }}
    end as outcome_date,
    j.judged_through,
    n.next_nps_score,
    n.next_nps_at
from judged as j
left join next_nps as n on n.response_key = j.response_key
