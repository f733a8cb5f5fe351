{{ config(**cx_fact_config('source_key')) }}
-- Every source identifier a served record key is made of (order_id, invoice_id, ...; macros/keys.sql,
-- cx_source_id_mentions) with its key, cx_pseudonym(kind, source_id): the facts read their keys here
-- (cx_source_key) instead of hashing every identifier they reference again, and restricted.source_key_link
-- is this map without the records of people who asked for erasure. Restricted, as int_customer_keys (the
-- customer keys' map, erased people's too): never published (docs/privacy.md, "The restricted schema").
--
-- Incremental as source_key_link was (macros/incremental_facts.sql; docs/warehouse.md, "Incremental facts"):
-- a row keeps `last_drop_date`, the newest drop among the staging records that mention its id. A night
-- hashes and inserts the ids of the records from the window's drops (or rewritten by the run, or after the
-- newest drop held: cx_new_record); a re-run (the table holds rows from the window's drops or later)
-- recomputes every row, as the full build. A held row the full build has no row for is written as if from
-- a drop after as_of, so that the run's end deletes it (cx_fact_drop_later on DuckDB, the delete+insert swap
-- on Spark). var rotate_keys (a new key secret changes every key) forces a full rebuild.
{%- set sources = cx_source_id_mentions() %}
{%- if is_incremental() %}
{#- a re-run: the table holds rows from the window's drops or later (the re-run of an older window, or of
    the last one after a corrected re-extract). Its records may be gone or older: everything is recomputed -#}
{%- set rerun = cx_key_map_rerun() %}

with redo as (
    -- on a re-run, every held row
    select held.kind, held.source_id, held.source_key
    from {{ this }} as held
    where {{ rerun }}
),

mentions as (
{%- else %}

-- every staging record that mentions an id, with its drop; on a night, the records of the night's drops
with mentions as (
{%- endif %}
    {%- for kind, refs in sources.items() %}
    {%- set outer = loop %}
    {%- for model, column, filter in refs %}
    select '{{ kind }}' as kind, {{ column }} as source_id, drop_date
    from {{ ref(model) }}
    where {{ column }} is not null{% if filter %} and {{ filter }}{% endif %}
    {%- if is_incremental() %}
      and ({{ cx_new_record('drop_date') }} or {{ rerun }})
    {%- endif %}
    {% if not (outer.last and loop.last) %}union all{% endif %}
    {%- endfor %}
    {%- endfor %}
),

ids as (
    select kind, source_id, max(drop_date) as last_drop_date
    from mentions
    group by kind, source_id
),

keyed as (
    {%- for kind in sources %}
    select kind, {{ cx_pseudonym(kind, 'source_id') }} as source_key, source_id, last_drop_date
    from ids
    where kind = '{{ kind }}'
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
)

-- the held rows the run has none for are deleted at its end (cx_key_map_rows, macros/keys.sql)
{{ cx_key_map_rows('keyed') }}
