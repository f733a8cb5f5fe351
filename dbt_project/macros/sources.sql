{#- The raw zone as sources, per engine (models/staging/_sources.yml).
    DuckDB: dbt-duckdb reads each source's `external_location` (read_parquet over the nightly files).
    Spark: a view per source over the same files (`raw_glob`, Spark's parquet.`path` with a glob), made
    or replaced before each run (on-run-start), so files added since the last run are read, and a
    contract version that adds columns is picked up (spark.sql.parquet.mergeSchema, docs/spark.md).
    An entity with no file yet gets no view: its models fail naming the missing source view. -#}
{% macro cx_register_sources() -%}
    {{ return(adapter.dispatch('cx_register_sources')()) }}
{%- endmacro %}

{% macro default__cx_register_sources() -%}
{%- endmacro %}

{% macro spark__cx_register_sources() -%}
    {%- if execute -%}
        {%- set schemas = [] -%}
        {%- for node in graph.sources.values() if node.package_name == project_name -%}
            {%- if node.schema not in schemas -%}
                {%- do run_query('create database if not exists ' ~ node.schema) -%}
                {%- do schemas.append(node.schema) -%}
            {%- endif -%}
            {%- set glob = (node.meta.raw_glob or node.source_meta.raw_glob) | replace('{name}', node.name) -%}
            {%- do run_query('create or replace view ' ~ node.schema ~ '.' ~ node.identifier
                             ~ ' as select * from parquet.`' ~ glob ~ '`') -%}
        {%- endfor -%}
    {%- endif -%}
{%- endmacro %}
