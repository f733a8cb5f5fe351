{#-
    KPI definitions: each KPI is defined once, here (decision log: docs/kpi-decisions.md).
-#}

{#- The score bands of the three survey scales, written once (docs/kpi-decisions.md): every macro
    that classifies an answer (nps_category, csat_satisfied, and in journey.sql response_moment,
    response_moment_reason, customer_profile) reads them here. Per type: the scale (min..max, as in
    ingestion/contract.py SCALES), `top`, the lowest score of the top band (NPS promoters, CSAT
    satisfied, CES easy), and `bottom`, the highest score of the bottom band (NPS detractors, CSAT
    dissatisfied, CES effortful); the scores between are passive / neutral. -#}
{% macro score_bands(survey_type=none) -%}
    {%- set bands = {
        'nps': {'min': 0, 'max': 10, 'top': 9, 'bottom': 6},
        'csat': {'min': 1, 'max': 5, 'top': 4, 'bottom': 2},
        'ces': {'min': 1, 'max': 7, 'top': 6, 'bottom': 3},
    } -%}
    {{ return(bands if survey_type is none else bands[survey_type]) }}
{%- endmacro %}

{#- NPS category of a 0-10 answer: promoters 9-10, passives 7-8, detractors 0-6. -#}
{% macro nps_category(score) -%}
    {%- set b = score_bands('nps') -%}
    case
        when {{ score }} between {{ b.top }} and {{ b.max }} then 'promoter'
        when {{ score }} between {{ b.bottom + 1 }} and {{ b.top - 1 }} then 'passive'
        when {{ score }} between {{ b.min }} and {{ b.bottom }} then 'detractor'
    end
{%- endmacro %}

{#- CSAT (1-5): satisfied = top-two box (4 or 5). -#}
{% macro csat_satisfied(score) -%}
    {%- set b = score_bands('csat') -%}
    case when {{ score }} between {{ b.min }} and {{ b.max }} then {{ score }} >= {{ b.top }} end
{%- endmacro %}

{#- First-contact resolution: a solved/closed case with exactly one customer contact and no reopen. -#}
{% macro is_first_contact_resolution(status, customer_contacts, reopened_count) -%}
    ({{ status }} in ('solved', 'closed') and {{ customer_contacts }} = 1 and {{ reopened_count }} = 0)
{%- endmacro %}

{#- On time: delivered (last line) at most `allowed_days` (the brand's delivery promise, seed
    brand_promises; 0 = on or before the promised date) after the promised date, in the Europe/Paris
    calendar; null when no promise applies. -#}
{% macro is_on_time(delivered_local_date, promised_date, allowed_days) -%}
    ({{ promise_gap_days(delivered_local_date, promised_date) }} <= {{ allowed_days }})
{%- endmacro %}

{#- Promise gap in days: delivered local date - promised date (positive = late). -#}
{% macro promise_gap_days(delivered_local_date, promised_date) -%}
    cast({{ dbt.datediff(promised_date, delivered_local_date, 'day') }} as bigint)
{%- endmacro %}

{#- Statistics shipped with every rate. A value is reportable when it rests on at least
    `min_reportable_n` observations and, where the KPI can still change after its date (`is_final`,
    see kpi_finality_days), once it is final. -#}
{% macro is_reportable(n, is_final=none) -%}
    ({{ n }} >= {{ var('min_reportable_n') }}{% if is_final is not none %} and {{ is_final }}{% endif %})
{%- endmacro %}

{#- Finality: the number of days after its KPI date during which a cell's outcome can still change
    (docs/kpi-decisions.md, "Finality"). 0: the outcome is known at the event. Otherwise the window is
    the dbt var named here (defaults in dbt_project.yml):
      refund_window_days    refunds come after the invoice that dates the refund rates;
      reopen_window_days    a solved case may be reopened, which moves it to a later resolution date;
      followup_window_days  a call-back record delivered late can turn a 'never' item into one contacted;
      delivery_window_days  a later shipment or a corrected delivery would move a delivered order.
    Every window must be <= kpi_lookback_days, checked here at compile time: a night judges again the
    gate results of the kpi_lookback_days before its window (orchestration/checks.py). kpi_experience_daily
    itself recomputes every date whose cells' finality moved with as_of, whatever its age. -#}
{% macro kpi_finality_vars() -%}
    {{ return({
        'nps': none, 'csat': none, 'ces': none, 'first_response_hours_p50': none, 'payment_failure_rate': none,
        'fcr_rate': 'reopen_window_days', 'resolution_hours_p50': 'reopen_window_days',
        'on_time_delivery_rate': 'delivery_window_days', 'otif_rate': 'delivery_window_days',
        'promise_gap_days_avg': 'delivery_window_days',
        'refund_rate_orders': 'refund_window_days', 'refund_rate_value': 'refund_window_days',
        'followup_breach_rate': 'followup_window_days', 'followup_backlog_overdue_rate': 'followup_window_days',
        'kept_rate_delivery': 'delivery_window_days', 'kept_rate_first_response': none,
        'kept_rate_resolution': 'reopen_window_days', 'kept_rate_refund': 'refund_window_days',
        'kept_rate_follow_up': 'followup_window_days',
    }) }}
{%- endmacro %}

{#- kpi -> finality window in days, validated against kpi_lookback_days. -#}
{% macro kpi_finality_days() -%}
    {%- set lookback = var('kpi_lookback_days') -%}
    {%- if lookback is not number or lookback is boolean or lookback != lookback | int or lookback < 0 -%}
        {{ exceptions.raise_compiler_error("var kpi_lookback_days must be a whole number of days >= 0, got '"
                                           ~ lookback ~ "'") }}
    {%- endif -%}
    {%- set days = {} -%}
    {%- for kpi, name in kpi_finality_vars().items() -%}
        {%- if name is none -%}
            {%- do days.update({kpi: 0}) -%}
        {%- else -%}
            {%- set d = var(name) -%}
            {%- if d is not number or d is boolean or d != d | int or d < 0 -%}
                {{ exceptions.raise_compiler_error("var " ~ name ~ " (finality window of " ~ kpi
                    ~ ") must be a whole number of days >= 0, got '" ~ d ~ "'") }}
            {%- endif -%}
            {%- if d > lookback -%}
                {{ exceptions.raise_compiler_error("var " ~ name ~ " = " ~ d ~ " (finality window of " ~ kpi
                    ~ ") exceeds kpi_lookback_days = " ~ lookback ~ ": a night judges again the gate results of the "
                    ~ lookback ~ " days before its window, and a " ~ kpi ~ " cell must turn final inside that "
                    ~ "range. Lower " ~ name
                    ~ " or raise kpi_lookback_days (docs/kpi-decisions.md, Finality).") }}
            {%- endif -%}
            {%- do days.update({kpi: d | int}) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(days) }}
{%- endmacro %}

{#- The date from which a cell of `kpi` dated `kpi_date` can no longer change: kpi_date + its window. -#}
{% macro kpi_final_date(kpi, kpi_date) -%}
    {%- set by_days = {} -%}
    {%- for k, d in kpi_finality_days().items() if d > 0 -%}
        {%- do by_days.setdefault(d, []).append(k) -%}
    {%- endfor -%}
    {%- if by_days -%}
    case
        {%- for d in by_days | sort %}
        when {{ kpi }} in ('{{ by_days[d] | sort | join("', '") }}') then cast({{ dbt.dateadd('day', d, kpi_date) }} as date)
        {%- endfor %}
        else {{ kpi_date }}
    end
    {%- else -%}
    {{ kpi_date }}
    {%- endif -%}
{%- endmacro %}

{#- The statistics below compute in double precision on every engine: a literal such as 1.96 or 4.0 is a
    DECIMAL, and Spark rounds a DECIMAL quotient to 6 decimal places once its precision runs out (seen:
    Wilson bounds of a churn rate 0.25 % apart from DuckDB's). Their inputs are cast to double first. -#}
{% macro cx_as_double(expr) -%}
    cast({{ expr }} as {{ type_double() }})
{%- endmacro %}

{#- Wilson score interval for x successes out of n (95 %); exact at x = 0 and x = n. -#}
{% macro wilson_low(x, n, z=1.96) -%}
    {%- set x, n, z = cx_as_double(x), cx_as_double(n), cx_as_double(z) -%}
    case when {{ n }} > 0 and ({{ x }}) = 0 then 0.0 when {{ n }} > 0 then greatest(0.0,
        ((({{ x }}) * 1.0 / ({{ n }})) + {{ z }} * {{ z }} / (2.0 * ({{ n }}))
         - {{ z }} * sqrt((({{ x }}) * 1.0 / ({{ n }})) * (1 - (({{ x }}) * 1.0 / ({{ n }}))) / ({{ n }})
                         + {{ z }} * {{ z }} / (4.0 * ({{ n }}) * ({{ n }}))))
        / (1 + {{ z }} * {{ z }} / ({{ n }})))
    end
{%- endmacro %}

{% macro wilson_high(x, n, z=1.96) -%}
    {%- set x, n, z = cx_as_double(x), cx_as_double(n), cx_as_double(z) -%}
    case when {{ n }} > 0 and ({{ x }}) = ({{ n }}) then 1.0 when {{ n }} > 0 then least(1.0,
        ((({{ x }}) * 1.0 / ({{ n }})) + {{ z }} * {{ z }} / (2.0 * ({{ n }}))
         + {{ z }} * sqrt((({{ x }}) * 1.0 / ({{ n }})) * (1 - (({{ x }}) * 1.0 / ({{ n }}))) / ({{ n }})
                         + {{ z }} * {{ z }} / (4.0 * ({{ n }}) * ({{ n }}))))
        / (1 + {{ z }} * {{ z }} / ({{ n }})))
    end
{%- endmacro %}

{#- NPS = 100 * (P - D) / N, passives in N. -#}
{% macro nps_value(promoters, detractors, n) -%}
    case when {{ n }} > 0 then 100.0 * {{ cx_as_double("(" ~ promoters ~ ") - (" ~ detractors ~ ")") }} / ({{ n }}) end
{%- endmacro %}

{#- NPS 95 % interval, adjusted Wald (Rocks 2016): n' = n + 3, p = (P + 3/4)/n', d = (D + 3/4)/n',
    nps' = p - d, se = sqrt((p + d - nps'^2)/n'); 100 * (nps' +- 1.96 se), clipped to -100..100. -#}
{% macro nps_adjusted_wald(promoters, detractors, n, side, z=1.96) -%}
    {%- set promoters, detractors, n, z = cx_as_double(promoters), cx_as_double(detractors), cx_as_double(n), cx_as_double(z) -%}
    {%- set p = "((" ~ promoters ~ ") + 0.75) / ((" ~ n ~ ") + 3.0)" -%}
    {%- set d = "((" ~ detractors ~ ") + 0.75) / ((" ~ n ~ ") + 3.0)" -%}
    {%- set est = "(" ~ p ~ " - " ~ d ~ ")" -%}
    {%- set se = "sqrt((" ~ p ~ " + " ~ d ~ " - " ~ est ~ " * " ~ est ~ ") / ((" ~ n ~ ") + 3.0))" -%}
    case when {{ n }} > 0 then
        {%- if side == 'low' %}
        greatest(-100.0, 100.0 * ({{ est }} - {{ z }} * {{ se }}))
        {%- else %}
        least(100.0, 100.0 * ({{ est }} + {{ z }} * {{ se }}))
        {%- endif %}
    end
{%- endmacro %}

{#- Normal interval of a mean with the sample standard deviation. -#}
{% macro mean_ci(mean, sd, n, side, z=1.96) -%}
    case when {{ n }} > 1 then {{ mean }} {{ '-' if side == 'low' else '+' }} {{ cx_as_double(z) }} * {{ sd }} / sqrt({{ n }}) end
{%- endmacro %}

{#- Median (p50), engine-specific. -#}
{% macro median(expr) -%}
    {{ return(adapter.dispatch('median', 'cx_warehouse')(expr)) }}
{%- endmacro %}

{% macro default__median(expr) -%}
    percentile({{ expr }}, 0.5)
{%- endmacro %}

{% macro duckdb__median(expr) -%}
    quantile_cont({{ expr }}, 0.5)
{%- endmacro %}

{% macro percentile(expr, q) -%}
    {{ return(adapter.dispatch('percentile', 'cx_warehouse')(expr, q)) }}
{%- endmacro %}

{% macro default__percentile(expr, q) -%}
    percentile({{ expr }}, {{ q }})
{%- endmacro %}

{% macro duckdb__percentile(expr, q) -%}
    quantile_cont({{ expr }}, {{ q }})
{%- endmacro %}
