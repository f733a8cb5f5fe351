{#- Change records (docs/warehouse.md, "Change records"): a model downstream of an incremental fact
    recomputes the customers the fact's runs changed, read from a record the fact's hooks keep, instead of
    finding them by a pass over the fact's whole table each night. DuckDB only; Spark keeps the comparison.

    fct_customer_stage_transitions was that pass's first case: its night summed a hash of every journey event
    per customer (5.2 million events at scale M, the night's longest node: 6.3 s of 52 s) to find the few
    thousand customers whose journey changed, which the journey's own run had just found.

    The record of a consumer is one table, `change_log.<consumer>__changed_customers` (customer_key, everything),
    in the warehouse's own file (not served: publishing copies `marts`). Its producers (cx_fact_config(
    changed_customers_for=[consumer])) append to it in their runs' transactions:
      - an incremental run: in its pre-hook, the customers of its held rows of the keys it recomputes (the
        staged changed keys: a key re-keyed away, deleted, or replaced, whose old customer's rows change);
        in its post-hook, the customers of its rows of those keys now;
      - a full build: one row `everything` (the records before it say nothing of it), and so does the first
        run that finds no table (an upgrade, a warehouse from before the record: it cannot know what earlier
        runs changed).
    The consumer's incremental run reads the record when it holds no `everything` (cx_changed_customers_log),
    and its changed customers are the record's; otherwise it compares as it does on Spark. Every run of the
    consumer, full or not, empties the record in its post-hook, in its own transaction, creating it where it
    is missing: what it consumed goes with the rows it wrote. A run of the producer alone (the consumer not
    selected, or failed) leaves its record for the consumer's next run; a failed producer run rolls its
    record back with its rows. Over-recording costs time, never a wrong row: a recorded customer is only
    recomputed. Under-recording (a write to the producer's table outside its runs) would be missed: the
    producer's table is written only by dbt. -#}

{#- The record of `consumer`'s changed customers (a relation name). -#}
{% macro cx_change_log(consumer) -%}
    {{ return(this.database ~ '.change_log.' ~ consumer ~ '__changed_customers') }}
{%- endmacro %}

{#- Whether the record of `consumer` exists (a query at run time; false while parsing). -#}
{% macro cx_change_log_exists(consumer) -%}
    {%- if not execute -%}
        {{ return(false) }}
    {%- endif -%}
    {%- set found = run_query("select count(*) from information_schema.tables where table_catalog = '"
                              ~ this.database ~ "' and table_schema = 'change_log' and table_name = '"
                              ~ consumer ~ "__changed_customers'") -%}
    {{ return(found.columns[0].values()[0] > 0) }}
{%- endmacro %}

{#- A producer's pre-hook: the customers of its held rows of the keys its run changed (`key`; `staged`, the
    table of the changed keys, cx_staged_changed_keys), for each consumer. Nothing on a full build (the
    post-hook writes `everything`) and on Spark. -#}
{% macro cx_record_held_customers(consumers, key, staged) -%}
    {{ return(adapter.dispatch('cx_record_held_customers', 'cx_warehouse')(consumers, key, staged)) }}
{%- endmacro %}

{% macro default__cx_record_held_customers(consumers, key, staged) -%}
{%- endmacro %}

{% macro duckdb__cx_record_held_customers(consumers, key, staged) -%}
    {%- if is_incremental() and staged -%}
    {%- for consumer in consumers %}
    {{ cx_open_change_log(consumer) }}
    insert into {{ cx_change_log(consumer) }}
    select distinct customer_key, false
    from {{ this }}
    where {{ key }} in (select {{ key }} from {{ staged }}) and customer_key is not null;
    {%- endfor %}
    {%- endif -%}
{%- endmacro %}

{#- A producer's post-hook: an incremental run records the customers of its rows of the changed keys now;
    a full build records `everything`. (The rows cx_fact_drop_later deletes next, from drops after as_of,
    are held rows of changed keys: a held row from a drop on or after the window's first date is a change,
    cx_held_changed; the pre-hook recorded their customers.) -#}
{% macro cx_record_written_customers(consumers, key, staged) -%}
    {{ return(adapter.dispatch('cx_record_written_customers', 'cx_warehouse')(consumers, key, staged)) }}
{%- endmacro %}

{% macro default__cx_record_written_customers(consumers, key, staged) -%}
{%- endmacro %}

{% macro duckdb__cx_record_written_customers(consumers, key, staged) -%}
    {%- for consumer in consumers %}
    {%- if is_incremental() and staged %}
    {{ cx_open_change_log(consumer) }}
    insert into {{ cx_change_log(consumer) }}
    select distinct customer_key, false
    from {{ this }}
    where {{ key }} in (select {{ key }} from {{ staged }}) and customer_key is not null;
    {%- else %}
    create schema if not exists {{ this.database }}.change_log;
    create or replace table {{ cx_change_log(consumer) }} as
    select cast(null as {{ dbt.type_string() }}) as customer_key, true as everything;
    {%- endif %}
    {%- endfor %}
{%- endmacro %}

{#- The record of `consumer`, created where it is missing with one row `everything` (statements ending
    with `;`; nothing where it exists). -#}
{% macro cx_open_change_log(consumer) -%}
    {%- if not cx_change_log_exists(consumer) %}
    create schema if not exists {{ this.database }}.change_log;
    create table {{ cx_change_log(consumer) }} as
    select cast(null as {{ dbt.type_string() }}) as customer_key, true as everything;
    {%- endif %}
{%- endmacro %}

{#- The consumer's record to read its changed customers from (a relation name), or none: a full build, a
    run on Spark, a record missing or holding `everything` (the consumer then compares). -#}
{% macro cx_changed_customers_log() -%}
    {{ return(adapter.dispatch('cx_changed_customers_log', 'cx_warehouse')()) }}
{%- endmacro %}

{% macro default__cx_changed_customers_log() -%}
    {{ return(none) }}
{%- endmacro %}

{% macro duckdb__cx_changed_customers_log() -%}
    {%- if not (execute and is_incremental() and cx_change_log_exists(model.name)) -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set everything = run_query('select count(*) from ' ~ cx_change_log(model.name) ~ ' where everything') -%}
    {{ return(none if everything.columns[0].values()[0] > 0 else cx_change_log(model.name)) }}
{%- endmacro %}

{#- The consumer's post-hook: its record emptied (created where it is missing), in its run's transaction. -#}
{% macro cx_consume_change_log() -%}
    {{ return(adapter.dispatch('cx_consume_change_log', 'cx_warehouse')()) }}
{%- endmacro %}

{% macro default__cx_consume_change_log() -%}
{%- endmacro %}

{% macro duckdb__cx_consume_change_log() -%}
    create schema if not exists {{ this.database }}.change_log;
    create or replace table {{ cx_change_log(model.name) }} (customer_key {{ dbt.type_string() }}, everything boolean);
{%- endmacro %}
