{#-
    The current version of each key in a raw-zone relation, among the drops delivered up to the
    run's `as_of` date: the newest `version_expr`, then the
    newest drop, then the latest extract and the last line (a re-send is an exact copy).
    Portable (row_number instead of QUALIFY, which Spark SQL lacks).

    Incremental staging (cx_staging_config below; docs/warehouse.md, "Incremental staging"): on an
    incremental run only the keys the run's window touches are ranked again, over every version the raw
    zone holds of them, and replace their rows (delete+insert on the key). A key is touched when
      - a drop of the window delivers a version of it (new records, late updates, resends, a CRM erasure
        request: each is a new version of its key), or
      - its current row in the table came from a drop of the window (a corrected re-extract replaces
        that drop in the raw zone: the key's best version may now be an older one).
    Every other key's versions are unchanged in the raw zone, so its current version is too: the
    result equals a full refresh. The versions ranked are those delivered up to as_of, or up to the
    newest drop the table already holds when a run re-does an older window (a re-extract re-runs its
    own partition, over a table that has later drops): the touched keys must not go back in time
    while the rest of the table stays current.
    `delivered`: the relation whose window drops touch keys, when `relation` is a filtered view of it
    (stg_crm__customers ranks the versions before an erasure request: the request touches the key).
-#}
{% macro current_version(relation, key, version_expr=none, delivered=none) -%}
{%- set incremental = is_incremental() %}
select * from (
    select
        src.*,
        row_number() over (
            partition by {% for k in key %}src.{{ k }}{{ ', ' if not loop.last }}{% endfor %}
            order by
                {%- if version_expr %} {{ version_expr }} desc,{% endif %}
                src._business_date desc, src._extracted_at desc, src._source_line desc
        ) as _version_rank
    from {{ relation }} as src
    {%- if incremental %}
    inner join (
        select {{ key | join(', ') }} from {{ delivered or relation }} as delivered
        where {{ cx_delivered_in_window('delivered._business_date') }}
        union
        select {{ key | join(', ') }} from {{ this }} as held
        where {{ cx_delivered_in_window('held.drop_date') }}
    ) as touched
        on {% for k in key %}touched.{{ k }} = src.{{ k }}{{ ' and ' if not loop.last }}{% endfor %}
    where src._business_date <= {{ cx_staging_horizon() }}
    {%- else %}
    where src._business_date <= {{ cx_as_of() }}
    {%- endif %}
) as versions
where _version_rank = 1
{%- endmacro %}

{#- The newest drop an incremental staging run ranks: as_of, or the newest drop the table holds when later. -#}
{% macro cx_staging_horizon() -%}
    (select case when max(drop_date) > {{ cx_as_of() }} then max(drop_date) else {{ cx_as_of() }} end from {{ this }})
{%- endmacro %}

{#- The config of a staging model: incremental on its key (see current_version). DuckDB deletes the
    touched keys' rows and inserts their current versions; Spark's plain Parquet tables cannot delete,
    so the same strategy rewrites the table there (macros/spark_incremental.sql). -#}
{% macro cx_staging_config(key) -%}
    {{ return({'materialized': 'incremental', 'unique_key': key, 'incremental_strategy': 'delete+insert',
               'on_schema_change': 'fail'}) }}
{%- endmacro %}
