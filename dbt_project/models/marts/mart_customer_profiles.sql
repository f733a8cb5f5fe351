-- Customer profiles over time (docs/journey.md, "Customer profiles"): one row per customer and spell of
-- one profile (negative, evasive, advocate). The rule (customer_profile, macros/profiles.sql) is
-- evaluated on every date a profile can change: the customer's first day, each answer and negative
-- moment, and the day each leaves its window (date + N days); equal profiles on consecutive change
-- dates collapse into one spell. Dates to the profile horizon (as_of, or the data's last date).
-- Incremental by customer (cx_profiles_config, macros/profiles.sql): a night recomputes the customers
-- whose fingerprint of inputs or recheck_on differs from the held one; the same rule on the same change
-- dates as a full build (the *_all CTEs hold every customer's, the CTEs without the suffix the
-- recomputed customers').
{{ config(**cx_profiles_config()) }}
{%- set s = profile_settings() %}

with horizon as (
    select {{ profile_horizon() }} as horizon_date
),

answers_all as (
    select
        r.customer_key,
        r.response_date as d,
        r.responded_at as ts,
        r.response_key,
        r.survey_type,
        r.score,
        {{ response_moment('r.survey_type', 'r.score') }} as moment
    from {{ ref('fct_survey_responses') }} as r
    where r.customer_key is not null and r.response_date <= {{ cx_as_of() }}
),

-- negative moments of truth; the survey answers' own events (stage feedback) are the answers above
negatives_all as (
    select customer_key, event_date as d, event_ts as ts
    from {{ ref('fct_journey_events') }}
    where moment = 'negative' and stage <> 'feedback' and event_date <= {{ cx_as_of() }}
),

first_events_all as (
    select customer_key, min(event_date) as first_date
    from {{ ref('fct_journey_events') }}
    where event_date <= {{ cx_as_of() }}
    group by customer_key
),

first_answers_all as (
    select customer_key, min(d) as first_date
    from answers_all
    group by customer_key
),

-- every customer from their first known day (known_from): the CRM profile's creation, or their first
-- event or answer when earlier or when there is no CRM profile (known by e-mail only, or erased); the
-- horizon at the latest (first_date)
customers_all as (
    select
        c.customer_key,
        {{ utc_date('c.crm_created_at') }} as crm_date,
        e.first_date as first_event_date,
        {{ least_not_null([utc_date('c.crm_created_at'), 'e.first_date', 'a.first_date']) }} as known_from,
        coalesce(
            least(
                {{ least_not_null([utc_date('c.crm_created_at'), 'e.first_date', 'a.first_date']) }},
                h.horizon_date),
            h.horizon_date) as first_date,
        h.horizon_date
    from {{ ref('dim_customer') }} as c
    cross join horizon as h
    left join first_events_all as e on e.customer_key = c.customer_key
    left join first_answers_all as a on a.customer_key = c.customer_key
),

-- the dates a profile can change on, from the inputs: each answer and negative moment, and the day each
-- leaves its window
input_dates_all as (
    select customer_key, d from answers_all
    union all
    select customer_key, cast({{ dbt.dateadd('day', s.answer_days, 'd') }} as date) as d from answers_all
    union all
    select customer_key, cast({{ dbt.dateadd('day', s.nps_days, 'd') }} as date) as d
    from answers_all where survey_type = 'nps'
    union all
    select customer_key, d from negatives_all
    union all
    select customer_key, cast({{ dbt.dateadd('day', s.moment_days, 'd') }} as date) as d from negatives_all
),

-- the fingerprint of the inputs the rule reads for the customer: a count and an order-independent sum
-- of their hashes (cx_profile_input_hash): each answer, each negative moment, and the customer's CRM
-- creation date and first event with the rule's settings
input_hashes as (
    select customer_key, count(*) as inputs, sum(input_hash) as input_hash
    from (
        select customer_key,
               {{ cx_profile_input_hash('a', ['response_key', 'd', epoch_micros('ts'), 'survey_type', 'score',
                                              'moment']) }} as input_hash
        from answers_all
        union all
        select customer_key, {{ cx_profile_input_hash('n', ['d', epoch_micros('ts')]) }} as input_hash
        from negatives_all
    ) as i
    group by customer_key
),

-- per customer: the fingerprint, and the first date after the horizon on which the profile can change
-- with no new input (recheck_on): the next change date, or the day after the horizon for a customer whose
-- first known day lies past it (or who has none). Equal inputs and an equal recheck_on from one horizon to
-- another: no change date between the two, the same spells.
checks_all as (
    select
        c.customer_key,
        1 + coalesce(max(i.inputs), 0) as input_count,
        cast({{ cx_profile_input_hash('c', ['c.crm_date', 'c.first_event_date', cx_profile_settings_text()]) }}
             + coalesce(max(i.input_hash), 0) as {{ dbt.type_bigint() }}) as input_hash,
        {{ least_not_null([
            'min(d.d)',
            "case when c.known_from is null or c.known_from > c.horizon_date then cast("
                ~ dbt.dateadd('day', 1, 'c.horizon_date') ~ " as date) end"]) }} as recheck_on
    from customers_all as c
    left join input_hashes as i on i.customer_key = c.customer_key
    left join input_dates_all as d on d.customer_key = c.customer_key and d.d > c.horizon_date
    group by c.customer_key, c.crm_date, c.first_event_date, c.known_from, c.horizon_date
),

{% if is_incremental() -%}
-- the customers to recompute: new ones, and those whose fingerprint (an input added, changed, deleted or
-- moved to or from them by a re-keying) or recheck_on (the horizon moved past a change date, forward, or
-- back on the re-run of an older window) differs from the table's. Customers gone from dim_customer (a
-- re-keying's old key) are deleted after the run (cx_profiles_drop_gone).
changed as (
    select c.customer_key
    from checks_all as c
    left join (
        select distinct customer_key, input_count, input_hash, recheck_on from {{ this }}
    ) as held on held.customer_key = c.customer_key
    where held.customer_key is null
       or held.input_count <> c.input_count
       or held.input_hash <> c.input_hash
       -- null-safe "differs" (null: nothing expires)
       or coalesce(held.recheck_on <> c.recheck_on, held.recheck_on is not null or c.recheck_on is not null)
),

{% endif -%}
answers as (
    select * from answers_all {{ cx_where_changed('customer_key') }}
),

negatives as (
    select * from negatives_all {{ cx_where_changed('customer_key') }}
),

customers as (
    select * from customers_all {{ cx_where_changed('customer_key') }}
),

-- the change dates: the customer's first day and the inputs' dates, from the first day to the horizon
candidates as (
    select distinct c.customer_key, c.d
    from (
        select customer_key, first_date as d from customers
        union all
        select customer_key, d from input_dates_all {{ cx_where_changed('customer_key') }}
    ) as c
    inner join customers as cu
        on cu.customer_key = c.customer_key and c.d >= cu.first_date and c.d <= cu.horizon_date
),

-- on each date: the negative moments of the window and the latest of them
moments_on as (
    select
        c.customer_key,
        c.d,
        count(n.d) as negative_moments_recent,
        max(n.ts) as last_negative_ts
    from candidates as c
    left join negatives as n
        on n.customer_key = c.customer_key
       and n.d <= c.d
       and n.d > cast({{ dbt.dateadd('day', -s.moment_days, 'c.d') }} as date)
    group by c.customer_key, c.d
),

-- the answers as of each change date. The rule reads the latest answer of its answer window, the latest NPS
-- answer of its NPS window and whether a positive answer follows the last negative moment: each is the latest
-- such answer on or before the date, counted when its date is in the window (response_date is the UTC date of
-- responded_at, so a later answer is never dated earlier); "follows" compares the latest positive answer's
-- time with the last negative moment's. One running max per customer over the change dates and the answers
-- together, answers first on a date; an answer's mark (cx_answer_mark) sorts as (time, key) and carries its
-- date and value. (Before, every change date was joined to every answer its windows hold, 184 M rows at
-- scale L, and ranked by two windows: that ran out of 5 GB of memory, and of 16 GB of disk for its spill;
-- benchmarks/RESULTS.md.)
marks as (
    select
        customer_key,
        d,
        1 as is_change_date,
        negative_moments_recent,
        {{ epoch_micros('last_negative_ts') }} as last_negative_micros,
        null as answer_mark,
        null as nps_mark,
        null as positive_micros
    from moments_on
    union all
    select
        customer_key,
        d,
        0 as is_change_date,
        null as negative_moments_recent,
        null as last_negative_micros,
        {{ cx_answer_mark('ts', 'response_key', 'd', 'moment') }} as answer_mark,
        case when survey_type = 'nps'
            then {{ cx_answer_mark('ts', 'response_key', 'd', 'cast(score as ' ~ dbt.type_string() ~ ')') }}
        end as nps_mark,
        case when moment = 'positive' then {{ epoch_micros('ts') }} end as positive_micros
    from answers
),

as_of as (
    {%- set running = 'over (partition by customer_key order by d, is_change_date '
                      ~ 'rows between unbounded preceding and current row)' %}
    select
        customer_key,
        d,
        is_change_date,
        negative_moments_recent,
        last_negative_micros,
        max(answer_mark) {{ running }} as answer_mark,
        max(nps_mark) {{ running }} as nps_mark,
        max(positive_micros) {{ running }} as positive_micros
    from marks
),

inputs as (
    select
        customer_key,
        d,
        case when {{ cx_answer_mark_date('answer_mark') }} > cast({{ dbt.dateadd('day', -s.answer_days, 'd') }} as date)
            then {{ cx_answer_mark_value('answer_mark') }}
        end as latest_answer_moment,
        negative_moments_recent,
        coalesce(positive_micros > last_negative_micros, false) as positive_answer_after_last_negative,
        case when {{ cx_answer_mark_date('nps_mark') }} > cast({{ dbt.dateadd('day', -s.nps_days, 'd') }} as date)
            then cast({{ cx_answer_mark_value('nps_mark') }} as {{ dbt.type_int() }})
        end as latest_nps_recent_score
    from as_of
    where is_change_date = 1
),

evaluated as (
    select
        customer_key,
        d,
        {{ customer_profile('latest_answer_moment', 'negative_moments_recent',
                            'positive_answer_after_last_negative', 'latest_nps_recent_score') }} as profile
    from inputs
),

-- gaps and islands: a spell starts where the profile differs from the previous change date's
starts as (
    select customer_key, d, profile
    from (
        select
            customer_key,
            d,
            profile,
            lag(profile) over (partition by customer_key order by d) as previous_profile
        from evaluated
    ) as e
    where previous_profile is null or previous_profile <> profile
),

spells as (
    select
        customer_key,
        profile,
        d as valid_from,
        lead(d) over (partition by customer_key order by d) as valid_to
    from starts
)

select
    sp.customer_key,
    sp.profile,
    sp.valid_from,
    sp.valid_to,
    sp.valid_to is null as is_current,
    c.input_count,
    c.input_hash,
    c.recheck_on
from spells as sp
inner join checks_all as c on c.customer_key = sp.customer_key
