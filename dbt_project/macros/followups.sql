{#- Closing the loop (docs/kpi-decisions.md, "Closing the loop"): the status of one follow-up item, an
    unhappy survey answer the company promised to call back (seed brand_promises, measure follow_up).

    is_tracked        the company delivers its call-backs (crm.feedback_followups) for this answer
    first_contact_at  the first attempt that reached the customer or left a message, by as_of (null: none)
    due_at            the answer + the promise's hours, in elapsed UTC time (a DST change moves no hour)
    as_of             the date the status is judged at the end of (+ 1 day, 00:00 UTC): the run's as_of, or
                      the feed's last drop when as_of lies beyond it (mart_feedback_followups.judged_through)

    not_tracked        no follow-up feed covers the answer: nothing can be said (never a breach)
    contacted_in_time  first contact at or before the due time (the due instant itself is in time)
    contacted_late     first contact after the due time
    open               no contact yet, and the due time is still ahead at the end of as_of
    never              no contact, and the due time has passed (a contact may still come: then late) -#}
{% macro followup_status(is_tracked, first_contact_at, due_at, as_of) -%}
    case
        when not {{ is_tracked }} then 'not_tracked'
        when {{ first_contact_at }} is not null and {{ first_contact_at }} <= {{ due_at }} then 'contacted_in_time'
        when {{ first_contact_at }} is not null then 'contacted_late'
        when {{ utc_date(due_at) }} > {{ as_of }} then 'open'
        else 'never'
    end
{%- endmacro %}

{#- A follow-up status that breaks the promise. -#}
{% macro followup_is_breached(status) -%}
    ({{ status }} in ('contacted_late', 'never'))
{%- endmacro %}
