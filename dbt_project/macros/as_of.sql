{#- The run's reproducibility date (var `as_of`, passed from the Dagster partition); never the wall clock. -#}
{% macro cx_as_of() -%}
    cast('{{ var("as_of") }}' as date)
{%- endmacro %}

{#- A staging row delivered by a drop of the run's partition window: drop date >= min_date and
    < max_date (half-open), and <= as_of. -#}
{% macro cx_delivered_in_window(drop_date='drop_date') -%}
    ({{ drop_date }} >= cast('{{ var("min_date") }}' as date)
     and {{ drop_date }} < cast('{{ var("max_date") }}' as date)
     and {{ drop_date }} <= {{ cx_as_of() }})
{%- endmacro %}
