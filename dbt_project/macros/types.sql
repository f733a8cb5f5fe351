{#- A 64-bit float on every engine. dbt's cross-database `type_float()` is a 32-bit FLOAT on DuckDB and
    Spark: amounts and ratios lost digits in it (about 7 significant), and the two engines then disagreed
    in the last ones. Both spell the 64-bit type `double`; another engine gets its own version here. -#}
{% macro type_double() -%}
    {{ return(adapter.dispatch('type_double', 'cx_warehouse')()) }}
{%- endmacro %}

{% macro default__type_double() -%}
    {{ return('double') }}
{%- endmacro %}
