{#- The Europe/Paris calendar date of a UTC timestamp (on-time delivery is judged locally). -#}
{% macro local_date(ts, tz="Europe/Paris") -%}
    {{ return(adapter.dispatch('local_date', 'cx_warehouse')(ts, tz)) }}
{%- endmacro %}

{% macro default__local_date(ts, tz) -%}
    cast(from_utc_timestamp({{ ts }}, '{{ tz }}') as date)
{%- endmacro %}

{% macro duckdb__local_date(ts, tz) -%}
    cast(timezone('{{ tz }}', {{ ts }}) as date)
{%- endmacro %}

{#- The UTC calendar date of a timestamp. -#}
{% macro utc_date(ts) -%}
    {{ return(adapter.dispatch('utc_date', 'cx_warehouse')(ts)) }}
{%- endmacro %}

{% macro default__utc_date(ts) -%}
    cast({{ ts }} as date)
{%- endmacro %}

{% macro duckdb__utc_date(ts) -%}
    cast(timezone('UTC', {{ ts }}) as date)
{%- endmacro %}

{#- Hours between two timestamps, fractional. -#}
{% macro hours_between(start_ts, end_ts) -%}
    ({{ dbt.datediff(start_ts, end_ts, 'second') }} / 3600.0)
{%- endmacro %}
