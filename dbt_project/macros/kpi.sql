{#-
    KPI definitions: each KPI is defined once, here (decision log: docs/kpi-decisions.md).
-#}

{#- NPS category of a 0-10 answer: promoters 9-10, passives 7-8, detractors 0-6. -#}
{% macro nps_category(score) -%}
    case
        when {{ score }} between 9 and 10 then 'promoter'
        when {{ score }} between 7 and 8 then 'passive'
        when {{ score }} between 0 and 6 then 'detractor'
    end
{%- endmacro %}

{#- CSAT (1-5): satisfied = top-two box (4 or 5). -#}
{% macro csat_satisfied(score) -%}
    case when {{ score }} between 1 and 5 then {{ score }} >= 4 end
{%- endmacro %}

{#- First-contact resolution: a solved/closed case with exactly one customer contact and no reopen. -#}
{% macro is_first_contact_resolution(status, customer_contacts, reopened_count) -%}
    ({{ status }} in ('solved', 'closed') and {{ customer_contacts }} = 1 and {{ reopened_count }} = 0)
{%- endmacro %}

{#- On time: delivered (last line) on or before the promised date, in the Europe/Paris calendar. -#}
{% macro is_on_time(delivered_local_date, promised_date) -%}
    ({{ delivered_local_date }} <= {{ promised_date }})
{%- endmacro %}

{#- Promise gap in days: delivered local date - promised date (positive = late). -#}
{% macro promise_gap_days(delivered_local_date, promised_date) -%}
    {{ dbt.datediff(promised_date, delivered_local_date, 'day') }}
{%- endmacro %}

{#- Statistics shipped with every rate. -#}
{% macro is_reportable(n) -%}
    ({{ n }} >= {{ var('min_reportable_n', 30) }})
{%- endmacro %}

{#- Wilson score interval for x successes out of n (95 %); exact at x = 0 and x = n. -#}
{% macro wilson_low(x, n, z=1.96) -%}
    case when {{ n }} > 0 and ({{ x }}) = 0 then 0.0 when {{ n }} > 0 then greatest(0.0,
        ((({{ x }}) * 1.0 / ({{ n }})) + {{ z }} * {{ z }} / (2.0 * ({{ n }}))
         - {{ z }} * sqrt((({{ x }}) * 1.0 / ({{ n }})) * (1 - (({{ x }}) * 1.0 / ({{ n }}))) / ({{ n }})
                         + {{ z }} * {{ z }} / (4.0 * ({{ n }}) * ({{ n }}))))
        / (1 + {{ z }} * {{ z }} / ({{ n }})))
    end
{%- endmacro %}

{% macro wilson_high(x, n, z=1.96) -%}
    case when {{ n }} > 0 and ({{ x }}) = ({{ n }}) then 1.0 when {{ n }} > 0 then least(1.0,
        ((({{ x }}) * 1.0 / ({{ n }})) + {{ z }} * {{ z }} / (2.0 * ({{ n }}))
         + {{ z }} * sqrt((({{ x }}) * 1.0 / ({{ n }})) * (1 - (({{ x }}) * 1.0 / ({{ n }}))) / ({{ n }})
                         + {{ z }} * {{ z }} / (4.0 * ({{ n }}) * ({{ n }}))))
        / (1 + {{ z }} * {{ z }} / ({{ n }})))
    end
{%- endmacro %}

{#- NPS = 100 * (P - D) / N, passives in N. -#}
{% macro nps_value(promoters, detractors, n) -%}
    case when {{ n }} > 0 then 100.0 * (({{ promoters }}) - ({{ detractors }})) / ({{ n }}) end
{%- endmacro %}

{#- NPS 95 % interval, adjusted Wald (Rocks 2016): n' = n + 3, p = (P + 3/4)/n', d = (D + 3/4)/n',
    nps' = p - d, se = sqrt((p + d - nps'^2)/n'); 100 * (nps' +- 1.96 se), clipped to -100..100. -#}
{% macro nps_adjusted_wald(promoters, detractors, n, side, z=1.96) -%}
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
    case when {{ n }} > 1 then {{ mean }} {{ '-' if side == 'low' else '+' }} {{ z }} * {{ sd }} / sqrt({{ n }}) end
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
