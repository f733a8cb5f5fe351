{#- dbt's `unique` test on DuckDB: the same rows (each value held by more than one row, with its count) found in
    two steps. First the 64-bit hashes (`hash`) held by more than one row: the aggregation's table holds
    integers rather than the values, most of them 32-character keys (the three largest `unique` tests of a night,
    on int_source_keys, source_key_link and fct_journey_events, group 3 to 5 million keys at scale M). Then the
    values whose hash is one of those, grouped exactly: a hash shared by two different values (a collision)
    yields no row, so the test fails exactly when dbt's own would, with the same rows. When nothing repeats, the
    second step reads nothing (DuckDB skips the probe of an empty join). benchmarks/RESULTS.md, "The unique tests
    on hashes, and a night without dbt's artifacts". Other engines keep dbt's (default__test_unique); dbt reaches
    this one through the project's `dispatch` (dbt_project.yml). -#}
{% macro duckdb__test_unique(model, column_name) %}
with cx_repeated_hashes as (
    select hash({{ column_name }}) as cx_hash
    from {{ model }}
    where {{ column_name }} is not null
    group by hash({{ column_name }})
    having count(*) > 1
)

select
    {{ column_name }} as unique_field,
    count(*) as n_records
from {{ model }}
where {{ column_name }} is not null
  and hash({{ column_name }}) in (select cx_hash from cx_repeated_hashes)
group by {{ column_name }}
having count(*) > 1
{% endmacro %}
