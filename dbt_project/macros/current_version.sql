{#-
    The current version of each key in a raw-zone relation, among the drops delivered up to the
    run's `as_of` date: the newest `version_expr`, then the
    newest drop, then the latest extract and the last line (a re-send is an exact copy).
    Portable (row_number instead of QUALIFY, which Spark SQL lacks).

    Incremental staging (cx_staging_config below; docs/warehouse.md, "Incremental staging"). The table
    keeps each row's order (_version_value, drop_date, _extracted_at, _source_line). An incremental run:
      - fast path, every key a drop delivers a version of from the window's first date (or from the day
        after the newest drop the table holds, when earlier: a night after the re-run of an older window
        catches up on the drops in between) up to the window's end and as_of: the best of those versions
        replaces the table's row when it ranks before it; the table's row is the best of every earlier
        drop, so the result is the full refresh's without reading the history;
      - slow path, keys ranked again over every raw version up to as_of: the keys whose row came from a
        drop on or after the window's first date (a corrected re-extract replaces such a drop in the raw
        zone; a re-run of an older window over a newer table must give the key its version as of then),
        and `also_touched`. They are counted before the run: with none, the history is not read.
    The keys of drops after as_of that have no version by as_of (a re-run of an older window) are
    deleted after the merge (cx_staging_config's post-hook).
    `fast=false`: every window key takes the slow path (stg_crm__customers' versions before an erasure
    request, which the table's row does not hold).
    `delivered`: the relation whose drops touch keys, when `relation` is a filtered view of it
    (stg_crm__customers ranks the versions before an erasure request: the request touches the key).
    `also_touched`: a query of more keys to rank again, for a model whose rows depend on other records
    than their own versions (stg_survey__responses drops the comment of a person who asked for erasure:
    an erasure request touches every answer of theirs that still holds one).
-#}
{% macro current_version(relation, key, version_expr=none, delivered=none, also_touched=none, fast=true) -%}
{%- set version = version_expr or 'cast(null as ' ~ dbt.type_timestamp() ~ ')' %}
{%- set on_key = [] %}{% for k in key %}{% do on_key.append('{a}.' ~ k ~ ' = {b}.' ~ k) %}{% endfor %}
{%- set in_window %}
    (delivered._business_date >= {{ cx_min_date() }}
     or delivered._business_date > (select max(drop_date) from {{ this }}))
    and delivered._business_date < {{ cx_max_date() }}
    and delivered._business_date <= {{ cx_as_of() }}
{%- endset %}
{%- if not is_incremental() %}
select * from (
    {{ cx_ranked(relation, key, version) }}
    where src._business_date <= {{ cx_as_of() }}
) as versions
where _version_rank = 1
{%- else %}
{#- the keys ranked again over every raw version: rows the table holds from the window's drops or later
    (a re-extract, a re-run of an older window), and also_touched; every window key when not `fast` -#}
{%- set slow_keys %}
    select {{ key | join(', ') }} from {{ this }} as held
    where held.drop_date >= {{ cx_min_date() }}
    {%- if also_touched %}
    union
    select {{ key | join(', ') }} from ({{ also_touched }}) as also_touched
    {%- endif %}
    {%- if not fast %}
    union
    select {{ key | join(', ') }} from {{ delivered or relation }} as delivered where {{ in_window }}
    {%- endif %}
{%- endset %}
{#- the common night has none: the full history is then not read at all (checked before the run) -#}
{%- set has_slow = true %}
{%- if execute and fast %}
    {%- set found = run_query('select count(*) from (' ~ slow_keys ~ ') as slow') %}
    {%- set has_slow = found.columns[0].values()[0] > 0 %}
{%- endif %}
select * from (
    {%- if has_slow %}
    {{ cx_ranked(relation, key, version) }}
    inner join ({{ slow_keys }}) as touched on {{ on_key | join(' and ') | replace('{a}', 'touched') | replace('{b}', 'src') }}
    where src._business_date <= {{ cx_as_of() }}
    {%- endif %}
    {%- if fast %}
    {{ 'union all' if has_slow }}
    -- every other key: its best version among the window's drops, kept when it ranks before the version
    -- the table holds (the best of every earlier drop), by the same order
    select best.* from (
        {{ cx_ranked(relation, key, version) }}
        where {{ in_window | replace('delivered.', 'src.') }}
        {%- if has_slow %}
          and not exists (select 1 from ({{ slow_keys }}) as slow
                          where {{ on_key | join(' and ') | replace('{a}', 'slow') | replace('{b}', 'src') }})
        {%- endif %}
    ) as best
    left join {{ this }} as held on {{ on_key | join(' and ') | replace('{a}', 'held') | replace('{b}', 'best') }}
    where best._version_rank = 1
      and (held.drop_date is null or {{ cx_ranks_before(
            ['best._version_value', 'best._business_date', 'best._extracted_at', 'best._source_line'],
            ['held._version_value', 'held.drop_date', 'held._extracted_at', 'held._source_line']) }})
    {%- endif %}
) as versions
where _version_rank = 1
{%- endif %}
{%- endmacro %}

{#- Every version of `relation`'s keys with its `_version_value` and `_version_rank` (1 = current): the
    newest version value, then drop, then extract, then line (a re-send is an exact copy). The caller
    adds the where clause. -#}
{% macro cx_ranked(relation, key, version) -%}
    select
        src.*,
        {{ version }} as _version_value,
        row_number() over (
            partition by {% for k in key %}src.{{ k }}{{ ', ' if not loop.last }}{% endfor %}
            order by {{ version }} desc, src._business_date desc, src._extracted_at desc, src._source_line desc
        ) as _version_rank
    from {{ relation }} as src
{%- endmacro %}

{#- Whether the tuple `a` comes before `b` in current_version's order: each column descending, a null
    after every value (the engines' default for `desc`); equal tuples do not. -#}
{% macro cx_ranks_before(a, b) -%}
    {%- set terms = [] -%}
    {%- for i in range(a | length) -%}
        {%- set equal_before = [] -%}
        {%- for j in range(i) -%}
            {%- do equal_before.append('(' ~ a[j] ~ ' = ' ~ b[j] ~ ' or (' ~ a[j] ~ ' is null and ' ~ b[j] ~ ' is null))') -%}
        {%- endfor -%}
        {%- set greater = '(' ~ a[i] ~ ' > ' ~ b[i] ~ ' or (' ~ a[i] ~ ' is not null and ' ~ b[i] ~ ' is null))' -%}
        {%- do terms.append('(' ~ (equal_before + [greater]) | join(' and ') ~ ')') -%}
    {%- endfor -%}
    ({{ terms | join(' or ') }})
{%- endmacro %}

{#- The version columns a staging model keeps for the next night's comparison (see current_version). -#}
{% macro cx_version_columns(alias) -%}
    {{ alias }}._version_value, {{ alias }}._extracted_at, {{ alias }}._source_line
{%- endmacro %}

{#- The config of a staging model: incremental on its key (see current_version). DuckDB deletes the
    touched keys' rows and inserts their current versions, then (post-hook) the rows of drops after as_of
    left by keys that had no version by then; Spark's plain Parquet tables cannot delete, so the same
    strategy rewrites the table there, keeping only rows of drops up to as_of (`cx_keep_through_as_of`,
    macros/spark_incremental.sql). `cx_night_tests` and the pre-hook: a night tests only the rows it wrote
    (macros/night_tests.sql). -#}
{% macro cx_staging_config(key) -%}
    {{ return({'materialized': 'incremental', 'unique_key': key, 'incremental_strategy': 'delete+insert',
               'on_schema_change': 'fail', 'cx_keep_through_as_of': 'drop_date', 'cx_keep_delivered': key,
               'cx_night_tests': true, 'pre_hook': ["{{ cx_night_audit_reset() }}"],
               'post_hook': "{{ cx_staging_drop_later(this) }}"}) }}
{%- endmacro %}

{#- The raw-zone source of a staging model, by the naming convention stg_<system>__<entity>. -#}
{% macro cx_staging_raw(relation) -%}
    {%- set name = relation.identifier -%}
    {%- if not (name.startswith('stg_') and '__' in name) -%}
        {{ exceptions.raise_compiler_error(name ~ ": a staging model is named stg_<system>__<entity>") }}
    {%- endif -%}
    {%- set system, entity = name[4:].split('__', 1) -%}
    {{ return(source(system, entity)) }}
{%- endmacro %}

{#- A held row of a staging model (`t`: its alias or table name) whose version a corrected re-extract
    retracted: its drop is one of the window's (a re-extract replaces such a drop in the raw zone), and
    that drop in the raw zone (`raw`) no longer holds its key. current_version's slow path ranks such a key
    again and finds no version of it there (or none at all), so the run writes no row for it and
    delete+insert alone would keep the held one. -#}
{% macro cx_staging_retracted(t, key, raw) -%}
    ({{ t }}.drop_date >= {{ cx_min_date() }}
     and not exists (
         select 1 from {{ raw }} as src
         where src._business_date >= {{ cx_min_date() }}
           and src._business_date = {{ t }}.drop_date
           {%- for k in key %}
           and src.{{ k }} = {{ t }}.{{ k }}
           {%- endfor %}
     ))
{%- endmacro %}

{#- After a staging run: delete the rows of drops after as_of (none unless the run re-did an older window)
    and the rows a corrected re-extract retracted (cx_staging_retracted); DuckDB. Spark keeps
    `cx_keep_through_as_of` and `cx_keep_delivered` in its rewrite instead. -#}
{% macro cx_staging_drop_later(relation) -%}
    {{ return(adapter.dispatch('cx_staging_drop_later', 'cx_warehouse')(relation)) }}
{%- endmacro %}

{% macro default__cx_staging_drop_later(relation) -%}
    {#- a --full-refresh selected only drops up to as_of: nothing to delete, no scan -#}
    {%- if is_incremental() -%}
    delete from {{ relation }}
    where drop_date > {{ cx_as_of() }}
       or {{ cx_staging_retracted(relation.identifier, config.get('cx_keep_delivered'), cx_staging_raw(relation)) }}
    {%- endif -%}
{%- endmacro %}

{% macro spark__cx_staging_drop_later(relation) -%}
{%- endmacro %}
