{#- The run's window: its reproducibility date `as_of` (passed from the Dagster partition; never the
    wall clock) and its business dates [min_date, max_date) (half-open). Each dbt call gets them in its
    environment (CX_RUN_AS_OF, CX_RUN_MIN_DATE, CX_RUN_MAX_DATE: orchestration/warehouse.py,
    RUN_WINDOW_ENV), read here only while executing, never while parsing: a night's new window then
    keeps dbt's partial parse (new --vars, or an environment variable read while parsing, make dbt
    parse the whole project again, about 5 s a night at 100k customers). Unset or empty: a --vars value
    or the project's default (a plain `dbt build --vars '{as_of: 2026-10-31}'` works as before). A unit
    test never reads the run's window: its own `overrides: vars:` or the project's default. -#}
{% macro cx_window_var(name) -%}
    {%- if execute and not (model is defined and model is not none and model.resource_type == 'unit_test') -%}
        {%- set given = {'as_of': env_var('CX_RUN_AS_OF', ''), 'min_date': env_var('CX_RUN_MIN_DATE', ''),
                         'max_date': env_var('CX_RUN_MAX_DATE', '')}[name] -%}
        {%- if given -%}{{ return(given) }}{%- endif -%}
    {%- endif -%}
    {{ return(var(name)) }}
{%- endmacro %}

{#- Whether the run has a partition window (Dagster's nightly and backfills, cxw, the benchmarks: set in the
    environment by orchestration/warehouse.py), rather than a plain `dbt build` or `dbt test` on the project's
    defaults or --vars. Read while executing only. Night tests are scoped on such a run (macros/night_tests.sql). -#}
{% macro cx_run_has_window() -%}
    {{ return(execute and env_var('CX_RUN_MIN_DATE', '') != '') }}
{%- endmacro %}

{#- The run's reproducibility date as a date. -#}
{% macro cx_as_of() -%}
    cast('{{ cx_window_var("as_of") }}' as date)
{%- endmacro %}

{#- The window's first business date, and the one after its last (half-open), as dates. -#}
{% macro cx_min_date() -%}
    cast('{{ cx_window_var("min_date") }}' as date)
{%- endmacro %}

{% macro cx_max_date() -%}
    cast('{{ cx_window_var("max_date") }}' as date)
{%- endmacro %}

{#- A staging row delivered by a drop of the run's partition window: drop date >= min_date and
    < max_date (half-open), and <= as_of. -#}
{% macro cx_delivered_in_window(drop_date='drop_date') -%}
    ({{ drop_date }} >= {{ cx_min_date() }}
     and {{ drop_date }} < {{ cx_max_date() }}
     and {{ drop_date }} <= {{ cx_as_of() }})
{%- endmacro %}
