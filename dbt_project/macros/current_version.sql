{#-
    The current version of each key in a raw-zone relation, among the drops delivered up to the
    run's `as_of` date: the newest `version_expr`, then the
    newest drop, then the latest extract and the last line (a re-send is an exact copy).
    Portable (row_number instead of QUALIFY, which Spark SQL lacks).

    Incremental staging (cx_staging_config below; docs/warehouse.md, "Incremental staging"): on an
    incremental run only the keys the run touches are ranked again, over every version the raw zone
    holds of them up to as_of, and their rows replaced (delete+insert on the key). A key is touched when
      - a drop delivers a version of it (new records, late updates, resends, a CRM erasure request: each
        is a new version of its key) from the window's first date, or from the day after the newest drop
        the table holds when that is earlier (a run that follows the re-run of an older window catches
        up on the drops in between), up to the window's end and as_of;
      - its row in the table came from a drop on or after the window's first date: a corrected re-extract
        replaces such a drop in the raw zone, and a re-run of an older window over a newer table must
        give the key its version as of then.
    No other key has a version in the raw zone that the table has not ranked, so the result equals a
    full refresh as of as_of; the keys of drops after as_of that have no version by as_of (a re-run of
    an older window) are deleted after the merge (cx_staging_config's post-hook).
    `delivered`: the relation whose drops touch keys, when `relation` is a filtered view of it
    (stg_crm__customers ranks the versions before an erasure request: the request touches the key).
    `also_touched`: a query of more keys to rank again, for a model whose rows depend on other records
    than their own versions (stg_survey__responses drops the comment of a person who asked for erasure:
    an erasure request touches every answer of theirs that still holds one).
-#}
{% macro current_version(relation, key, version_expr=none, delivered=none, also_touched=none) -%}
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
        where (delivered._business_date >= cast('{{ var("min_date") }}' as date)
               or delivered._business_date > (select max(drop_date) from {{ this }}))
          and delivered._business_date < cast('{{ var("max_date") }}' as date)
          and delivered._business_date <= {{ cx_as_of() }}
        union
        select {{ key | join(', ') }} from {{ this }} as held
        where held.drop_date >= cast('{{ var("min_date") }}' as date)
        {%- if also_touched %}
        union
        select {{ key | join(', ') }} from ({{ also_touched }}) as also_touched
        {%- endif %}
    ) as touched
        on {% for k in key %}touched.{{ k }} = src.{{ k }}{{ ' and ' if not loop.last }}{% endfor %}
    {%- endif %}
    where src._business_date <= {{ cx_as_of() }}
) as versions
where _version_rank = 1
{%- endmacro %}

{#- The config of a staging model: incremental on its key (see current_version). DuckDB deletes the
    touched keys' rows and inserts their current versions, then (post-hook) the rows of drops after as_of
    left by keys that had no version by then; Spark's plain Parquet tables cannot delete, so the same
    strategy rewrites the table there, keeping only rows of drops up to as_of (`cx_keep_through_as_of`,
    macros/spark_incremental.sql). -#}
{% macro cx_staging_config(key) -%}
    {{ return({'materialized': 'incremental', 'unique_key': key, 'incremental_strategy': 'delete+insert',
               'on_schema_change': 'fail', 'cx_keep_through_as_of': 'drop_date',
               'post_hook': "{{ cx_staging_drop_later(this) }}"}) }}
{%- endmacro %}

{#- After a staging run: delete the rows of drops after as_of (none unless the run re-did an older window;
    DuckDB; Spark keeps `cx_keep_through_as_of` in its rewrite instead). -#}
{% macro cx_staging_drop_later(relation) -%}
    {{ return(adapter.dispatch('cx_staging_drop_later', 'cx_warehouse')(relation)) }}
{%- endmacro %}

{% macro default__cx_staging_drop_later(relation) -%}
    delete from {{ relation }} where drop_date > {{ cx_as_of() }}
{%- endmacro %}

{% macro spark__cx_staging_drop_later(relation) -%}
{%- endmacro %}
