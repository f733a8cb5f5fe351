{#- Incremental facts (docs/warehouse.md, "Incremental facts"): a fact keyed by a pseudonymous key
    (order_key, ...) built from staging rows that each carry the drop they came from (drop_date). The
    fact keeps, per row, the newest drop among the records it was built from (`last_drop_date`), as
    staging keeps each row's drop_date. An incremental run recomputes the changed keys only
    (cx_changed_keys), and the rows of the changed keys replace the table's (delete+insert on the key);
    held rows built from drops after as_of that were not recomputed (their records are gone: a re-run of
    an older window) are deleted after the run (post-hook on DuckDB, in the rewrite on Spark).

    The pattern, for the next facts (fct_support_cases, fct_survey_responses, fct_journey_events):
      config(**cx_fact_config('case_key'))
      a CTE of every (source key, drop_date) the fact is built from          -> records
      (incremental only) a CTE of every source key, its fact key and the
      columns that change without a record of its own (customer_key)     -> keyed_now
      changed as ({{ cx_changed_keys('records', 'keyed_now', 'case_id', 'case_key') }})
      and each import CTE filtered with {{ cx_where_changed('case_id', 'changed') }}. -#}

{#- The config of an incremental fact keyed by `key`. `var('rotate_keys')` (cxw keys rotate) rebuilds it
    in full: a new key secret changes every pseudonymous key, which delete+insert on the key cannot
    replace. `cx_keep_through_as_of` is read by the Spark delete+insert rewrite (macros/spark_incremental.sql). -#}
{% macro cx_fact_config(key, drop_column='last_drop_date') -%}
    {%- set config = {'materialized': 'incremental', 'unique_key': key, 'incremental_strategy': 'delete+insert',
                      'on_schema_change': 'fail', 'cx_keep_through_as_of': drop_column,
                      'post_hook': "{{ cx_fact_drop_later(this, '" ~ drop_column ~ "') }}"} -%}
    {%- if var('rotate_keys', false) -%}
        {%- do config.update({'full_refresh': true}) -%}
    {%- endif -%}
    {{ return(config) }}
{%- endmacro %}

{#- The source keys an incremental run recomputes (a select of `key`), from:
    - `records`, a relation or CTE of (`key`, drop_date): every staging record the fact's rows are built
      from. Changed: a record of a drop on or after the window's first date (the window's drops, and rows
      a corrected re-extract or the re-run of an older window rewrote), or after the newest drop the
      table holds (a night after the re-run of an older window catches up on the drops in between);
    - `keyed_now`, a relation or CTE of every current source key with its fact key (`fact_key`) and the
      `compare` columns as the full build computes them now: changed when the table's row came from a
      drop on or after the window's first date (its records may have been rewritten or deleted: a re-run
      of an older window), or when a compared column differs (customer_key: an erasure request or an
      identity merge re-keys a customer without a record of the fact changing). -#}
{% macro cx_changed_keys(records, keyed_now, key, fact_key, compare=['customer_key'], drop_column='last_drop_date') -%}
    select r.{{ key }}
    from {{ records }} as r
    where {{ cx_new_record('r.drop_date', drop_column) }}
    union
    select n.{{ key }}
    from {{ keyed_now }} as n
    inner join {{ this }} as held on held.{{ fact_key }} = n.{{ fact_key }}
    where held.{{ drop_column }} >= {{ cx_min_date() }}
    {%- for column in compare %}
       or not (held.{{ column }} = n.{{ column }} or (held.{{ column }} is null and n.{{ column }} is null))
    {%- endfor %}
{%- endmacro %}

{#- A staging record an incremental run must read (`drop_date`, its drop): from a drop on or after the
    window's first date (the window's drops, and the records a corrected re-extract or the re-run of an
    older window rewrote), or after the newest drop the table holds (`drop_column` of {{ this }}: a night
    after the re-run of an older window catches up on the drops in between). -#}
{% macro cx_new_record(drop_date='drop_date', drop_column='last_drop_date') -%}
    ({{ drop_date }} >= {{ cx_min_date() }}
     or {{ drop_date }} > (select max(held.{{ drop_column }}) from {{ this }} as held))
{%- endmacro %}

{#- A filter on the changed keys (`changed`, a CTE of cx_changed_keys) on incremental runs; nothing on a
    full build. `keyword`: 'where', or 'and' after a where clause of the caller. -#}
{% macro cx_where_changed(column, changed='changed', key=none, keyword='where') -%}
    {%- if is_incremental() -%}
    {{ keyword }} {{ column }} in (select {{ key or column.split('.')[-1] }} from {{ changed }})
    {%- endif -%}
{%- endmacro %}

{#- After a fact's run: delete the rows built from drops after as_of (a re-run of an older window left
    them: their records are gone from staging); DuckDB. Spark keeps only rows up to as_of in its
    delete+insert rewrite instead, kept and recomputed alike (cx_keep_through_as_of). -#}
{% macro cx_fact_drop_later(relation, drop_column) -%}
    {{ return(adapter.dispatch('cx_fact_drop_later', 'cx_warehouse')(relation, drop_column)) }}
{%- endmacro %}

{% macro default__cx_fact_drop_later(relation, drop_column) -%}
    {#- a full build selected only drops up to as_of: nothing to delete, no scan -#}
    {%- if is_incremental() -%}
    delete from {{ relation }} where {{ drop_column }} > {{ cx_as_of() }}
    {%- endif -%}
{%- endmacro %}

{% macro spark__cx_fact_drop_later(relation, drop_column) -%}
{%- endmacro %}
