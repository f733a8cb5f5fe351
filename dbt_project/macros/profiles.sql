{#- Customer profiles (docs/journey.md, "Customer profiles"): every customer is negative, evasive or
    advocate on every date, by one rule written once, here. mart_customer_profiles evaluates it at every
    date a profile can change and keeps the spells; the daily view, the monthly flows and
    kpi_customer_value read those spells. -#}

{#- The rule's windows and threshold (dbt vars, defaults and reasons in dbt_project.yml), checked: whole
    numbers, windows of at least one day, a threshold of at least one moment. -#}
{% macro profile_settings() -%}
    {%- set names = {
        'answer_days': 'profile_answer_days', 'moment_days': 'profile_moment_days',
        'nps_days': 'profile_nps_days', 'negative_moments': 'profile_negative_moments',
    } -%}
    {%- set out = {} -%}
    {%- for key, name in names.items() -%}
        {%- set v = var(name) -%}
        {%- if v is not number or v is boolean or v != v | int or v < 1 -%}
            {{ exceptions.raise_compiler_error("var " ~ name ~ " must be a whole number >= 1, got '" ~ v ~ "'") }}
        {%- endif -%}
        {%- do out.update({key: v | int}) -%}
    {%- endfor -%}
    {{ return(out) }}
{%- endmacro %}

{#- The rule, over its inputs on one date d (only data dated <= d):
      latest_answer_moment                 response_moment of the customer's latest survey answer (any of
                                           nps/csat/ces) dated within the last profile_answer_days days; null: none
      negative_moments_recent              negative moments of truth (fct_journey_events, feedback answers
                                           excluded) dated within the last profile_moment_days days
      positive_answer_after_last_negative  a positive survey answer came after the latest of those moments
      latest_nps_recent_score              score of the latest NPS answer dated within the last profile_nps_days days
    First match wins: negative by the latest answer; negative by repeated negative moments that no positive
    answer followed; advocate: a promoter with no negative moment lately; evasive otherwise (also: never
    answered, or every answer too old). A window of N days holds the dates d - N + 1 .. d. -#}
{% macro customer_profile(latest_answer_moment, negative_moments_recent, positive_answer_after_last_negative,
                          latest_nps_recent_score) -%}
    {%- set s = profile_settings() -%}
    case
        when {{ latest_answer_moment }} = 'negative' then 'negative'
        when coalesce({{ negative_moments_recent }}, 0) >= {{ s.negative_moments }}
             and not coalesce({{ positive_answer_after_last_negative }}, false) then 'negative'
        when {{ latest_nps_recent_score }} >= {{ score_bands('nps').top }}
             and coalesce({{ negative_moments_recent }}, 0) = 0 then 'advocate'
        else 'evasive'
    end
{%- endmacro %}

{#- The last date profiles are known for: as_of, or the latest date of the data when that is earlier
    (a plain `dbt build` runs with as_of 9999-12-31: profiles then stop at the data, rather than letting
    every answer and moment expire by the year 9999). A scalar subquery: the latest journey event, survey
    answer or CRM profile creation to as_of. -#}
{% macro profile_horizon() -%}
    (select least({{ cx_as_of() }}, max(horizon_part)) from (
        select max(event_date) as horizon_part
        from {{ ref('fct_journey_events') }}
        where event_date <= {{ cx_as_of() }}
        union all
        select max(response_date) as horizon_part
        from {{ ref('fct_survey_responses') }}
        where response_date <= {{ cx_as_of() }}
        union all
        select max({{ utc_date('crm_created_at') }}) as horizon_part
        from {{ ref('dim_customer') }}
        where {{ utc_date('crm_created_at') }} <= {{ cx_as_of() }}
    ) as horizon_parts)
{%- endmacro %}

{#- Incremental profiles (docs/journey.md, "Customer profiles", "Incremental"): mart_customer_profiles is
    replaced customer by customer (delete+insert on customer_key). A customer's spells are a function of
    the inputs the rule reads for them and of the horizon, so a night recomputes a customer when:
      - their inputs changed: the fingerprint (input_count, input_hash: cx_profile_input_hash over every
        input) the table holds differs from the one computed now: an answer or negative moment added,
        changed, deleted or moved to/from them by a re-keying (erasure, identity merge), their first
        event or CRM creation date, or the rule's settings;
      - time passed a change date: the held recheck_on (the first change date after the horizon the
        row was built at: an answer or moment leaving its window, or the day after it for a customer
        whose first day lies past it) is on or before the new horizon;
      - the horizon moved back (the re-run of an older window): the held current spell starts after the
        new horizon.
    Customers no longer in dim_customer (a re-keying's old key) are deleted after the run
    (cx_profiles_drop_gone, a post-hook on DuckDB; on Spark the delete+insert swap keeps only known
    customers: cx_keep_known_customers). `var('rotate_keys')` rebuilds the table in full, as for the facts. -#}
{% macro cx_profiles_config() -%}
    {%- set config = {'materialized': 'incremental', 'unique_key': 'customer_key',
                      'incremental_strategy': 'delete+insert', 'on_schema_change': 'fail',
                      'cx_keep_known_customers': true,
                      'post_hook': "{{ cx_profiles_drop_gone(this) }}"} -%}
    {%- if var('rotate_keys', false) -%}
        {%- do config.update({'full_refresh': true}) -%}
    {%- endif -%}
    {{ return(config) }}
{%- endmacro %}

{#- The hash of one input of the rule (an order-independent fingerprint sums them): `kind` and its
    parts, by the engine's row hash (cx_hash_row: each engine compares it only with the one it wrote). -#}
{% macro cx_profile_input_hash(kind, parts) -%}
    {{ cx_hash_row(["'" ~ kind ~ "'"] + parts) }}
{%- endmacro %}

{#- The rule's settings as one string, hashed into every customer's fingerprint: changing a window, the
    threshold or the NPS promoter band recomputes every customer. -#}
{% macro cx_profile_settings_text() -%}
    {%- set s = profile_settings() -%}
    '{{ s.answer_days }}/{{ s.moment_days }}/{{ s.nps_days }}/{{ s.negative_moments }}/{{ score_bands('nps').top }}'
{%- endmacro %}

{#- A customer the profiles are kept for: one of dim_customer now. -#}
{% macro cx_profile_customer_known(column) -%}
    {{ column }} in (select customer_key from {{ ref('dim_customer') }})
{%- endmacro %}

{#- After an incremental run: delete the spells of customers no longer in dim_customer (DuckDB). -#}
{% macro cx_profiles_drop_gone(relation) -%}
    {{ return(adapter.dispatch('cx_profiles_drop_gone', 'cx_warehouse')(relation)) }}
{%- endmacro %}

{% macro default__cx_profiles_drop_gone(relation) -%}
    {%- if is_incremental() -%}
    delete from {{ relation }} where not ({{ cx_profile_customer_known('customer_key') }})
    {%- endif -%}
{%- endmacro %}

{% macro spark__cx_profiles_drop_gone(relation) -%}
{%- endmacro %}

{#- An answer's mark, for the as-of lookups of mart_customer_profiles: a string whose order is the answers'
    order by time, then key (the greatest mark among a customer's answers up to a date is the latest answer's),
    carrying the answer's date and a value: the time in microseconds (zero-padded), the key right-padded with
    spaces (a key sorts before the keys it begins, as in the keys' own order, given no character below the
    space; response keys are 32 hex characters), the date (10 characters), then the value. The widths are
    cx_answer_mark_widths', which the readers of a mark below take their positions from. -#}
{% macro cx_answer_mark_widths() -%}
    {{ return({'micros': 20, 'key': 64, 'date': 10}) }}
{%- endmacro %}

{% macro cx_answer_mark(ts, key, d, value) -%}
    {%- set s = dbt.type_string() -%}
    {%- set w = cx_answer_mark_widths() -%}
    {{ dbt.concat(["lpad(cast(" ~ epoch_micros(ts) ~ " as " ~ s ~ "), " ~ w.micros ~ ", '0')",
                   "rpad(" ~ key ~ ", " ~ w.key ~ ", ' ')", "cast(" ~ d ~ " as " ~ s ~ ")", value]) }}
{%- endmacro %}

{% macro cx_answer_mark_date(mark) -%}
    {%- set w = cx_answer_mark_widths() -%}
    cast(substr({{ mark }}, {{ w.micros + w.key + 1 }}, {{ w.date }}) as date)
{%- endmacro %}

{% macro cx_answer_mark_value(mark) -%}
    {%- set w = cx_answer_mark_widths() -%}
    substr({{ mark }}, {{ w.micros + w.key + w.date + 1 }})
{%- endmacro %}
