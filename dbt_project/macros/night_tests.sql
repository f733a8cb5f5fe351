{#- Night tests over the rows a night wrote (docs/warehouse.md, "night tests over the rows the night wrote").
    DuckDB only; Spark tests every row.

    An incremental fact or staging model (cx_fact_config, cx_staging_config: config cx_night_tests) is written by
    delete+insert on its key (a staging model's may have several columns): every
    held row of a key in the batch is deleted, then the batch is inserted. So a row-level test (not null,
    accepted values, in range, expressions) can only newly fail on a row of a batch, and `unique` on the key only
    on a key of a batch. A night's tests then read only the keys written since the model's tests last passed,
    which the audit table `cx_audit.<model>` holds:
    - the write appends the batch's keys to it, in the model's transaction (duckdb__get_delete_insert_merge_sql);
    - a build that is not incremental (the first, a full refresh, a key rotation) drops it (cx_night_audit_reset,
      a pre-hook in the build's transaction): with no audit table, the tests read every row;
    - at the end of a dbt invocation, a model whose every such test ran and passed has its audit table emptied,
      or created empty (cx_night_tests_verify, on-run-end): the table is verified through this run. A test that
      failed, warned, errored or did not run leaves the keys in place, so the next run tests them again, with
      whatever the night adds;
    - a run without a window (every row tested: `cxw verify`, the weekly `verify` schedule, a plain `dbt test`)
      whose test of the model failed or errored drops the audit: the failing row may be one no run wrote (changed
      outside dbt), so the following runs test every row until the model's tests pass.
    A `unique` test on another column than the key (fct_journey_events' event_id) reads every row holding a value
    of a written row. The other tests (relationships: a parent can lose a row under an unchanged child; totals
    that must reconcile; row counts) always read every row. Rows changed outside dbt are not seen by a scoped
    test: the warehouse has no other writer (docs/warehouse.md), and only a run on a partition window scopes its
    tests (cx_run_has_window, macros/as_of.sql): a plain `dbt test` reads every row. -#}

{#- the generic tests whose failing rows are single rows of the tested model (with `unique`, see above) -#}
{% macro cx_night_scoped_tests() -%}
    {{ return(['not_null', 'not_null_columns', 'accepted_values', 'accepted_values_columns', 'in_range',
               'in_range_columns', 'expression_is_true', 'expressions_are_true', 'unique']) }}
{%- endmacro %}

{% macro cx_night_audit_relation(relation) -%}
    {{ return(api.Relation.create(database=relation.database, schema='cx_audit', identifier=relation.identifier)) }}
{%- endmacro %}

{#- the audit table of `relation` when it exists (run time only), else none -#}
{% macro cx_night_audit(relation) -%}
    {%- if not execute or target.type != 'duckdb' -%}{{ return(none) }}{%- endif -%}
    {%- set audit = cx_night_audit_relation(relation) -%}
    {%- set found = run_query("select count(*) from information_schema.tables where table_catalog = '"
        ~ audit.database ~ "' and table_schema = '" ~ audit.schema ~ "' and table_name = '" ~ audit.identifier ~ "'") -%}
    {{ return(audit if found.columns[0].values()[0] > 0 else none) }}
{%- endmacro %}

{#- on-run-start: the audit tables' schema, made once before any model (two models' transactions each creating it
    would conflict) -#}
{% macro cx_night_audit_schema() -%}
    {%- if target.type == 'duckdb' -%}
    create schema if not exists {{ target.database }}.cx_audit
    {%- endif -%}
{%- endmacro %}

{#- pre-hook of a scoped model: a build that is not incremental starts its audit over (every row tested) -#}
{% macro cx_night_audit_reset() -%}
    {%- if target.type == 'duckdb' and not is_incremental() -%}
    drop table if exists {{ cx_night_audit_relation(this) }}
    {%- endif -%}
{%- endmacro %}

{#- dbt-duckdb's delete+insert, then (a scoped model with an audit table) the batch's keys appended to it -#}
{% macro duckdb__get_delete_insert_merge_sql(target, source, unique_key, dest_columns, incremental_predicates) -%}
    {{ dbt.duckdb__get_delete_insert_merge_sql(target, source, unique_key, dest_columns, incremental_predicates) }}
    {%- set audit = cx_night_audit(target) if config.get('cx_night_tests') else none %}
    {%- if audit %};
    insert into {{ audit }} select distinct {{ cx_key_columns(unique_key) | join(', ') }} from {{ source }}
    {%- endif %}
{%- endmacro %}

{#- what a test of a scoped model reads on a run with a window: its written rows when the audit table exists
    (see above); else dbt's own (every row, or the test's `where`) -#}
{% macro duckdb__get_where_subquery(relation) -%}
    {%- set meta = model.get('test_metadata') if execute else none -%}
    {%- set tested = graph.nodes.get(model.get('attached_node')) if meta else none -%}
    {%- if tested and cx_run_has_window() and tested.config.get('cx_night_tests') and meta.name in cx_night_scoped_tests()
          and not config.get('where') and tested.relation_name and relation | string == tested.relation_name -%}
        {%- set audit = cx_night_audit(relation) -%}
        {%- if audit -%}
            {%- set columns = cx_key_columns(tested.config.unique_key) -%}
            {%- set key = columns | join(', ') -%}
            {%- set column = meta.kwargs.get('column_name') -%}
            {%- if meta.name == 'unique' and [column] != columns -%}
                {%- set scoped -%}
    (select * from {{ relation }} where {{ column }} in (
        select {{ column }} from {{ relation }} where ({{ key }}) in (select {{ key }} from {{ audit }}))) cx_night_rows
                {%- endset -%}
            {%- else -%}
                {%- set scoped -%}
    (select * from {{ relation }} where ({{ key }}) in (select {{ key }} from {{ audit }})) cx_night_rows
                {%- endset -%}
            {%- endif -%}
            {{ return(scoped) }}
        {%- endif -%}
    {%- endif -%}
    {{ return(dbt.default__get_where_subquery(relation)) }}
{%- endmacro %}

{#- on-run-end: each scoped model whose every scoped test ran in this invocation and passed is verified
    through it: its audit table is emptied, or created empty. Returns the statements (dbt runs them). -#}
{% macro cx_night_tests_verify(results) -%}
    {%- if execute and target.type == 'duckdb' -%}
    {%- set status = {} -%}
    {%- for r in results if r.node.resource_type == 'test' -%}
        {%- do status.update({r.node.unique_id: r.status | string}) -%}
    {%- endfor -%}
    {%- set scoped = {} -%}
    {%- for test in graph.nodes.values() if test.resource_type == 'test' and test.get('attached_node')
            and test.get('test_metadata') and test.test_metadata.name in cx_night_scoped_tests()
            and graph.nodes.get(test.attached_node, {}).get('config', {}).get('cx_night_tests') -%}
        {%- do scoped.setdefault(test.attached_node, []).append(status.get(test.unique_id)) -%}
    {%- endfor -%}
    {%- for model_id, statuses in scoped.items() -%}
        {%- set node = graph.nodes[model_id] -%}
        {%- set relation = api.Relation.create(database=node.database, schema=node.schema, identifier=node.alias) -%}
        {%- set audit = cx_night_audit_relation(relation) -%}
        {%- if statuses | reject('equalto', 'pass') | list | length == 0 %}
create table if not exists {{ audit }} as select {{ cx_key_columns(node.config.unique_key) | join(', ') }} from {{ relation }} where false;
delete from {{ audit }};
        {%- elif ('fail' in statuses or 'error' in statuses) and not cx_run_has_window() %}
{#- a run over every row (a plain `dbt test`, `cxw verify`, the weekly verification) found a bad row the audit may
    not hold (a row changed outside dbt): without the audit, every following run tests every row of the model
    until its tests pass again, so each night fails on it, and blocks the publish, until it is fixed #}
drop table if exists {{ audit }};
        {%- endif -%}
    {%- endfor -%}
    {%- endif -%}
{%- endmacro %}
