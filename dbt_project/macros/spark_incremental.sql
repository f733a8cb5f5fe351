{#- Incremental models on Spark's plain Parquet tables (no Delta or Iceberg: their jars come from Maven).
    They support `append` and `insert_overwrite` only. Two strategies the project uses:
    - date-partitioned marts (kpi_experience_daily): `insert_overwrite` of the date partitions the run
      recomputes, where DuckDB uses `delete+insert` on the same date key (cx_date_incremental below); a
      recomputed date left with no row is written as a placeholder and its partition dropped after the run
      (cx_date_drop_placeholders);
    - `delete+insert` on a key (int_customer_key_map), which Spark cannot do in place: it is emulated
      here by writing the run's rows to a table of their own (`<table>__cx_rows`, read twice below), the
      kept rows and the run's rows to a new table, then swapping the two by renames
      (the old table is renamed away before the new one takes its name, and dropped last: a crash in
      between leaves `<table>__cx_old`, which the next run's swap replaces). Two configs drop kept rows
      as DuckDB's post-hooks do: `cx_keep_through_as_of` (a column; rows after as_of go: the facts) and
      `cx_keep_known_customers` (rows of customers gone from dim_customer go: mart_customer_profiles,
      cx_profile_customer_known), and `cx_keep_delivered` (a staging model's key: rows a corrected
      re-extract retracted go, cx_staging_retracted).
    These override dbt-spark's own two macros of the same name (the root project's macros win) and
    hand every other strategy back to them. -#}

{#- The incremental config of a model whose rows are replaced per date (`date_column`). Both strategies
    replace only the dates the run writes rows for: a date the run finds emptied (every row it held must go)
    would keep its rows. With `placeholder_column`, the model writes such a date as one placeholder row, null
    in that column (a column null in no real row), and the post-hook cx_date_drop_placeholders deletes it
    after the run, before the model's tests: the date ends with no row, as a full refresh leaves it. -#}
{% macro cx_date_incremental(date_column, placeholder_column=none) -%}
    {%- if target.type == 'spark' -%}
        {%- set config = {'incremental_strategy': 'insert_overwrite', 'partition_by': [date_column]} -%}
    {%- else -%}
        {%- set config = {'incremental_strategy': 'delete+insert', 'unique_key': [date_column]} -%}
    {%- endif -%}
    {%- if placeholder_column -%}
        {%- do config.update({'post_hook': "{{ cx_date_drop_placeholders(this, '" ~ date_column ~ "', '"
                                           ~ placeholder_column ~ "') }}"}) -%}
    {%- endif -%}
    {{ return(config) }}
{%- endmacro %}

{#- Deletes the placeholder rows (`placeholder_column` null) a date-incremental run wrote for its emptied
    dates (cx_date_incremental). DuckDB: a delete (the delete+insert already replaced the date's rows by
    the placeholder). Spark: a placeholder's date partition holds the placeholder only (insert_overwrite
    replaced the partition with the run's rows for it, and the run wrote nothing else there), so the
    partition is dropped, which removes its files; a plain Parquet table cannot delete rows. -#}
{% macro cx_date_drop_placeholders(relation, date_column, placeholder_column) -%}
    {{ return(adapter.dispatch('cx_date_drop_placeholders', 'cx_warehouse')(relation, date_column, placeholder_column)) }}
{%- endmacro %}

{% macro default__cx_date_drop_placeholders(relation, date_column, placeholder_column) -%}
    delete from {{ relation }} where {{ placeholder_column }} is null
{%- endmacro %}

{% macro spark__cx_date_drop_placeholders(relation, date_column, placeholder_column) -%}
    {%- if execute -%}
        {%- set dates = run_query('select distinct cast(' ~ date_column ~ ' as string) from ' ~ relation
                                  ~ ' where ' ~ placeholder_column ~ ' is null').columns[0].values() -%}
        {%- if dates | length > 0 -%}
    alter table {{ relation }} drop if exists
        {%- for d in dates | sort %} partition ({{ date_column }} = '{{ d }}'){{ ',' if not loop.last }}{% endfor %}
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}

{% macro dbt_spark_validate_get_incremental_strategy(raw_strategy, file_format) -%}
    {%- if raw_strategy == 'delete+insert' -%}
        {{ return(raw_strategy) }}
    {%- endif -%}
    {{ return(dbt.dbt_spark_validate_get_incremental_strategy(raw_strategy, file_format)) }}
{%- endmacro %}

{% macro dbt_spark_get_incremental_sql(strategy, source, target, existing, unique_key, incremental_predicates) -%}
    {%- if strategy == 'delete+insert' -%}
        {{ return(cx_spark_delete_insert_sql(source, target, unique_key)) }}
    {%- endif -%}
    {{ return(dbt.dbt_spark_get_incremental_sql(strategy, source, target, existing, unique_key,
                                                      incremental_predicates)) }}
{%- endmacro %}

{% macro cx_spark_delete_insert_sql(source, target, unique_key) -%}
    {%- set keys = cx_key_columns(unique_key) -%}
    {%- if not keys -%}
        {{ exceptions.raise_compiler_error("delete+insert on Spark needs a unique_key (" ~ target ~ ")") }}
    {%- endif -%}
    {%- set columns = adapter.get_columns_in_relation(target) | map(attribute='name') | list -%}
    {%- set column_list = columns | join(', ') -%}
    {%- set new = target.incorporate(path={'identifier': target.identifier ~ '__cx_new'}) -%}
    {%- set old = target.incorporate(path={'identifier': target.identifier ~ '__cx_old'}) -%}
    {#- the run's rows, written once: `source` is dbt-spark's temporary view of the model's query, which the
        statement below reads twice (the keys it replaces, the rows it adds). Spark would run the query for
        each read (a cached view was not used by both: the second read planned the whole query again). In the
        parity test's night the journey's swap took 74 s that way, 11 s this way (docs/spark.md) -#}
    {%- set rows = target.incorporate(path={'identifier': target.identifier ~ '__cx_rows'}) -%}
    {%- do run_query('drop table if exists ' ~ new) -%}
    {%- do run_query('drop table if exists ' ~ old) -%}
    {%- do run_query('drop table if exists ' ~ rows) -%}
    {%- do run_query('create table ' ~ rows ~ ' using parquet as select * from ' ~ source) -%}
    {%- call statement('cx_delete_insert_new') -%}
        create table {{ new }} using parquet as
        select {{ column_list }} from {{ target }} as t
        where not exists (
            select 1 from {{ rows }} as s
            where {% for key in keys %}s.{{ key }} = t.{{ key }}{{ ' and ' if not loop.last }}{% endfor %}
        )
        {%- if config.get('cx_keep_through_as_of') %}
          and t.{{ config.get('cx_keep_through_as_of') }} <= {{ cx_as_of() }}
        {%- endif %}
        {%- if config.get('cx_keep_known_customers') %}
          and {{ cx_profile_customer_known('t.customer_key') }}
        {%- endif %}
        {%- if config.get('cx_keep_delivered') %}
          and not {{ cx_staging_retracted('t', config.get('cx_keep_delivered'), cx_staging_raw(target)) }}
        {%- endif %}
        union all
        select {{ column_list }} from {{ rows }}
        {%- if config.get('cx_keep_through_as_of') %}
        where {{ config.get('cx_keep_through_as_of') }} <= {{ cx_as_of() }}
        {%- endif %}
    {%- endcall -%}
    {%- do run_query('alter table ' ~ target ~ ' rename to ' ~ old) -%}
    {%- do run_query('alter table ' ~ new ~ ' rename to ' ~ target) -%}
    {%- do run_query('drop table if exists ' ~ rows) -%}
    drop table if exists {{ old }}
{%- endmacro %}
