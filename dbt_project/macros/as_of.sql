{#- The run's reproducibility date (var `as_of`, passed from the Dagster partition); never the wall clock. -#}
{% macro cx_as_of() -%}
    cast('{{ var("as_of") }}' as date)
{%- endmacro %}
