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
      and each import CTE filtered with {{ cx_where_changed('case_id', 'changed') }}.

    A fact keyed by a parent whose records include child records that point at it (an order's lines,
    shipments, returns, invoices and refunds; an invoice's payments and their refunds) passes a `summary` of
    its records (cx_changed_keys(summary=...)): a new version of a child can point it at another parent (a
    shipment moved to another order, cash re-applied to another invoice). The new parent is recomputed (the
    record is new), but the old one has no new record and its last_drop_date can be old. It is found by its
    records now: the fact keeps per row `source_drop_days` (cx_record_summary, a contract column), the sum
    over its records of their drop as a day number (days since 1970-01-01, about 20,000 now), which a lost
    record lowers and a gained one raises; a night compares it with the sum now. It also tells apart a parent
    that loses a record and gains another from another drop the same night (a re-run of an older window or a
    retraction restoring an older version that points at it, as another record leaves it), which a count of
    records would not; and a count adds nothing to it: two counts c1 < c2 give different sums while the
    records' drops span fewer days than 20,000 / c2 (50 records over 400 days). Left unnoticed: a parent that,
    the same night, loses records and gains others that are not new (restored by a re-run or a retraction)
    whose drops add up to the same days (one record for another of the same drop). A fact keyed by its own
    record (a payment, a refund, a case) does not need it: every other record of its row is found through the
    key's own record, whose new version is new. -#}

{#- A model's unique_key as a list of its columns: a staging model gives a list, a fact one column, none gives
    none (macros/night_tests.sql, the Spark delete+insert of macros/spark_incremental.sql). -#}
{% macro cx_key_columns(unique_key) -%}
    {{ return([] if unique_key is none else [unique_key] if unique_key is string else unique_key | list) }}
{%- endmacro %}

{#- The config of an incremental fact keyed by `key`. `var('rotate_keys')` (cxw keys rotate) rebuilds it
    in full: a new key secret changes every pseudonymous key, which delete+insert on the key cannot
    replace. `cx_keep_through_as_of` is read by the Spark delete+insert rewrite (macros/spark_incremental.sql).
    `changes`: the name of the macro of the model's CTEs ending with `changed` (macros/fact_changes.sql), whose
    changed keys a pre-hook stages first on DuckDB (cx_stage_changed_keys) and the post-hook drops.
    `cx_night_tests` and the first pre-hook: a night tests only the rows it wrote (macros/night_tests.sql).
    `stage_first`: a CTE of `changes` that both the changed keys and the model's query read, staged by a
    pre-hook before them; `changes` then takes `staged_first`, the table it is staged in (fct_journey_events:
    changed_touch_customers, one pass over every touch and held touch event instead of two). -#}
{% macro cx_fact_config(key, drop_column='last_drop_date', changes=none, stage_first=none) -%}
    {%- set config = {'materialized': 'incremental', 'unique_key': key, 'incremental_strategy': 'delete+insert',
                      'on_schema_change': 'fail', 'cx_keep_through_as_of': drop_column, 'cx_night_tests': true,
                      'pre_hook': ["{{ cx_night_audit_reset() }}"],
                      'post_hook': "{{ cx_fact_drop_later(this, '" ~ drop_column ~ "') }}"} -%}
    {%- if stage_first and not changes -%}
        {{ exceptions.raise_compiler_error("cx_fact_config(stage_first=...) needs changes=...") }}
    {%- endif -%}
    {%- if changes -%}
        {%- set pre_hooks, post_hooks, first = config.pre_hook, [config.post_hook, "{{ cx_drop_staged_changed_keys() }}"], '' -%}
        {%- if stage_first -%}
            {%- do pre_hooks.append("{{ cx_stage_changed_keys(" ~ changes ~ "(), '" ~ stage_first ~ "') }}") -%}
            {%- do post_hooks.append("{{ cx_drop_staged_changed_keys('" ~ stage_first ~ "') }}") -%}
            {%- set first = "staged_first=cx_staged_changed_keys('" ~ stage_first ~ "')" -%}
        {%- endif -%}
        {%- do pre_hooks.append("{{ cx_stage_changed_keys(" ~ changes ~ "(" ~ first ~ ")) }}") -%}
        {%- do config.update({'pre_hook': pre_hooks, 'post_hook': post_hooks}) -%}
    {%- endif -%}
    {%- if var('rotate_keys', false) -%}
        {%- do config.update({'full_refresh': true}) -%}
    {%- endif -%}
    {{ return(config) }}
{%- endmacro %}

{#- The source keys an incremental run recomputes (a select of `key`): the keys of `records` new since
    the table was built (cx_new_record), and those the comparison with the held rows changes
    (cx_held_changed). `records`: a relation or CTE of (`key`, drop_date), every staging record the fact's
    rows are built from. Changed: a record of a drop on or after the window's first date (the window's
    drops, and rows a corrected re-extract or the re-run of an older window rewrote), or after the newest
    drop the table holds (a night after the re-run of an older window catches up on the drops in between).
    `summary` (a fact keyed by a parent, see above): the model's CTE of cx_record_summary(records, key), one
    row per key; the new records are then found from it (a key's newest drop is new when one of its records
    is), and its source_drop_days is compared with the held row's. The records are aggregated once for both,
    rather than held as every record (about 75 million rows for fct_orders at scale L, materialized because
    two CTEs read them: 1.1 GB more memory and about 5 s more at L). The other arguments: cx_held_changed. -#}
{% macro cx_changed_keys(records, keyed_now, key, fact_key, compare=['customer_key'], drop_column='last_drop_date',
                          gone=false, held=none, summary=none) -%}
    {%- if summary and gone -%}
        {{ exceptions.raise_compiler_error("cx_changed_keys(summary=...) does not support gone=true") }}
    {%- endif %}
    {%- do cx_require_held_columns() %}
    {%- if summary %}
    select s.{{ key }}
    from {{ summary }} as s
    where {{ cx_new_record('s.' ~ drop_column, drop_column) }}
    union
    {#- every key with the sum of its records' drops now, compared with the held row's (a parent that lost a
        record, or one that gained a record that is not new) #}
    {%- set summed_now = '(select n.*, s.source_drop_days from ' ~ keyed_now ~ ' as n left join '
                          ~ summary ~ ' as s on s.' ~ key ~ ' = n.' ~ key ~ ')' %}
    {{ cx_held_changed(summed_now, key, fact_key, compare + ['source_drop_days'], drop_column, gone, held) }}
    {%- else %}
    select r.{{ key }}
    from {{ records }} as r
    where {{ cx_new_record('r.drop_date', drop_column) }}
    union
    {{ cx_held_changed(keyed_now, key, fact_key, compare, drop_column, gone, held) }}
    {%- endif %}
{%- endmacro %}

{#- Per key of `records` (a relation or CTE of (`key`, drop_date), every staging record the fact's rows
    are built from): `drop_column`, the newest drop, and `source_drop_days`, the sum of the drops as day
    numbers (days since 1970-01-01). A fact keyed by a parent (cx_changed_keys(summary=...)) keeps both per
    row, computed here, and the next night compares source_drop_days with the records' then.
    `where`: a filter of the records (cx_where_changed). -#}
{% macro cx_record_summary(records, key, drop_column='last_drop_date', where='') -%}
    select
        {{ key }},
        max(drop_date) as {{ drop_column }},
        cast(sum({{ dbt.datediff("cast('1970-01-01' as date)", 'drop_date', 'day') }}) as bigint) as source_drop_days
    from {{ records }}
    {{ where }}
    group by {{ key }}
{%- endmacro %}

{#- An incremental run of a fact over a table built before a column of its contract (an upgrade: the
    night compares columns of the held rows, such as source_drop_days, that the table lacks) stops here
    with the fix, rather than on the engine's error about a missing column (on_schema_change='fail' would
    only be checked after that query): the table must be rebuilt once (`cxw build --as-of <the last night>
    --full-refresh`: with as_of, the rebuilt KPI cells downstream have the right finality at once). One
    query of the table's columns per fact and night. Every column of the model's YAML counts, so the list
    follows the contract. `how`: the fix, when the model needs more than the default (the KPI mart: as_of).
    Unit tests give `this` as a fixture name, not a relation: nothing to check there. -#}
{% macro cx_require_held_columns(how=none) -%}
    {%- if execute and is_incremental() and model.columns and this is not string -%}
        {%- set held = adapter.get_columns_in_relation(this) | map(attribute='name') | map('lower') | list -%}
        {%- set missing = [] -%}
        {%- for column in model.columns.keys() if column | lower not in held -%}
            {%- do missing.append(column) -%}
        {%- endfor -%}
        {%- if missing -%}
            {%- set how = how or ("run `cxw build --as-of <the last night> --full-refresh` once, or `dbt build "
                                  ~ "--full-refresh -s " ~ model.name ~ "+ --vars '{as_of: <the last night>}'` "
                                  ~ "(docs/warehouse.md, \"Incremental facts\")") -%}
            {{ exceptions.raise_compiler_error(this ~ " was built before its column(s) " ~ missing | join(', ')
               ~ " (an upgrade): " ~ how) }}
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}

{#- The keys (a select of `key`) the comparison of the held rows with the current ones changes:
    - `keyed_now`, a relation or CTE of every current source key with its fact key (`fact_key`) and the
      `compare` columns as the full build computes them now;
    - `held`: the table's rows ({{ this }} by default; some of them when the caller compares the others another
      way, fct_journey_events: a parenthesized query rather than a CTE, as the `gone` comparison on DuckDB reads
      it twice), with `fact_key`, `drop_column` and the `compare` columns.
    Changed: a key whose held row came from a drop on or after the window's first date (its records may
    have been rewritten or deleted: a re-run of an older window), or whose `compare` columns differ
    (null-safe: `is distinct from`; customer_key: an erasure request or an identity merge re-keys a customer
    without a record of the fact changing).
    `gone` (a fact keyed by the key it is recomputed on, key = fact_key, whose keys can have no row:
    fct_journey_events, fct_customer_stage_transitions): one full outer join, in which a key the table
    does not hold compares as held with nulls (a customer_key that appears: a refund whose payment
    arrives, an event re-keyed to a customer without transitions yet), and a held key that `keyed_now` no
    longer holds is changed too; its rows are replaced by none (cx_fact_rows).
    DuckDB compares 64-bit hashes (duckdb__cx_held_changed; with `gone`, duckdb__cx_held_changed_gone). -#}
{% macro cx_held_changed(keyed_now, key, fact_key, compare=['customer_key'], drop_column='last_drop_date',
                         gone=false, held=none) -%}
    {%- if gone and key != fact_key -%}
        {{ exceptions.raise_compiler_error("cx_held_changed(gone=true) needs key = fact_key, got " ~ key ~ ", " ~ fact_key) }}
    {%- endif %}
    {%- if gone -%}
        {{ return(adapter.dispatch('cx_held_changed_gone', 'cx_warehouse')(keyed_now, key, compare, drop_column,
                                                                            held)) }}
    {%- endif %}
    {{ return(adapter.dispatch('cx_held_changed', 'cx_warehouse')(keyed_now, key, fact_key, compare, drop_column,
                                                                   held)) }}
{%- endmacro %}

{% macro default__cx_held_changed_gone(keyed_now, key, compare, drop_column, held) -%}
    {{ return(cx_held_changed_exact(keyed_now, key, key, compare, drop_column, true, held)) }}
{%- endmacro %}

{% macro default__cx_held_changed(keyed_now, key, fact_key, compare, drop_column, held) -%}
    {{ return(cx_held_changed_exact(keyed_now, key, fact_key, compare, drop_column, false, held)) }}
{%- endmacro %}

{#- DuckDB: the same comparison on 64-bit hashes (`hash`) of the fact key and of the `compare` columns
    together, rather than on the columns. The held side is every row of the table, and DuckDB builds its
    join's hash table from it: at scale L, fct_orders' 13.9 million rows with their 32-character order_key
    and customer_key took 4.3 GB (on the night L's first night ran out of the default 12 GB, with
    fct_payments' night at the same time); on hashes, 24 bytes a row (benchmarks/RESULTS.md, "The night's
    key comparison on hashes, the largest facts' changed keys staged"). What a collision can do:
    - of two fact keys: a key is also compared with another key's held row, so it may be recomputed
      needlessly; never missed, as its own row still joins;
    - of a key's `compare` columns now and held (a change that hashes the same): the change is missed,
      about once in 2^64 changed keys. The exact comparison (default__) stays on Spark and for `gone`.
    `hash` is null-safe (a null hashes apart from every value, at its position) and hashes an integer the
    same at every width, so the two sides must only agree on their columns' kinds, as the contract makes
    them: a column spelled as a string on one side and a number on the other would compare as changed on
    every key (a slow night, not a wrong one). -#}
{% macro duckdb__cx_held_changed(keyed_now, key, fact_key, compare, drop_column, held) -%}
    select n.{{ key }}
    from (
        select {{ key }}, hash({{ fact_key }}) as cx_key_hash, hash({{ compare | join(', ') }}) as cx_compare_hash
        from {{ keyed_now }}
    ) as n
    inner join (
        select hash({{ fact_key }}) as cx_key_hash, hash({{ compare | join(', ') }}) as cx_compare_hash,
               {{ drop_column }}
        from {{ held or this }}
    ) as held on held.cx_key_hash = n.cx_key_hash
    where held.{{ drop_column }} >= {{ cx_min_date() }}
       or held.cx_compare_hash <> n.cx_compare_hash
{%- endmacro %}

{#- DuckDB, `gone` (a key that only the held rows or only `keyed_now` hold is changed; key = fact_key): the full
    outer join on 64-bit hashes too, rather than on the keys, which are 32-character strings. At scale M the
    journey's night spent 0.8-1.8 s of its 1.9-2.9 s comparison in that join on source_key (3.8 million held events);
    on hashes the join's build side is 24 bytes a row (benchmarks/RESULTS.md, "The journey's comparison on
    hashes"). The join yields the changed hashes; the keys are then read back from both sides by their hash (a
    gone key is only held, and its held rows are not carried through the join). The compared hash includes a
    second hash of the key (`'cx:' || key`), so that two keys whose hashes collide compare as changed (their
    compared columns may be equal: two orders of one customer with the same drops): a gone key whose hash
    collides with a present one's is then still found, and both are recomputed (one needlessly). A key is
    missed only when both 64-bit hashes of two keys collide, or when a change hashes the same (the same odds as
    duckdb__cx_held_changed's). `held` and `keyed_now` are each read twice: a CTE that holds every row is
    then materialized by DuckDB, so pass the held rows as a relation or a parenthesized query
    (fct_journey_events' held events). -#}
{% macro duckdb__cx_held_changed_gone(keyed_now, key, compare, drop_column, held) -%}
    {%- set held = held or this %}
    {%- set compared = "hash('cx:' || cast(" ~ key ~ " as varchar), " ~ compare | join(', ') ~ ")" %}
    select cx_changed.{{ key }}
    from (
        with cx_changed_hashes as (
            select coalesce(n.cx_key_hash, held.cx_key_hash) as cx_key_hash
            from (
                select hash({{ key }}) as cx_key_hash, {{ compared }} as cx_compare_hash
                from {{ keyed_now }} as now_rows
            ) as n
            full outer join (
                select hash({{ key }}) as cx_key_hash, {{ compared }} as cx_compare_hash, {{ drop_column }}
                from {{ held }} as held_rows
            ) as held on held.cx_key_hash = n.cx_key_hash
            where held.{{ drop_column }} >= {{ cx_min_date() }}
               or n.cx_key_hash is null
               or held.cx_key_hash is null
               or held.cx_compare_hash <> n.cx_compare_hash
        )
        select now_keys.{{ key }}
        from {{ keyed_now }} as now_keys
        where hash(now_keys.{{ key }}) in (select cx_key_hash from cx_changed_hashes)
        union
        select held_keys.{{ key }}
        from {{ held }} as held_keys
        where hash(held_keys.{{ key }}) in (select cx_key_hash from cx_changed_hashes)
    ) as cx_changed
{%- endmacro %}

{#- cx_held_changed by the columns themselves (null-safe `is distinct from`). -#}
{% macro cx_held_changed_exact(keyed_now, key, fact_key, compare, drop_column, gone, held) -%}
    select {{ 'coalesce(n.' ~ key ~ ', held.' ~ fact_key ~ ')' if gone else 'n.' ~ key }}
    from {{ keyed_now }} as n
    {{ 'full outer' if gone else 'inner' }} join {{ held or this }} as held on held.{{ fact_key }} = n.{{ fact_key }}
    where held.{{ drop_column }} >= {{ cx_min_date() }}
    {%- if gone %}
       or n.{{ fact_key }} is null
    {%- endif %}
    {%- for column in compare %}
       or held.{{ column }} is distinct from n.{{ column }}
    {%- endfor %}
{%- endmacro %}

{#- The select of a fact whose changed keys may come out with no row at all (fct_journey_events: an order
    no longer cancelled keeps its other events, a failed payment that succeeds loses its only one, a
    customer_key becoming null loses them all; fct_customer_stage_transitions: a customer re-keyed away
    loses every transition). delete+insert replaces only the keys the run writes, so on an incremental
    run every changed key (`changed`, a CTE of cx_changed_keys) is written: its rows of `rows`, or one row
    of the key alone with a null `drop_column`, which replaces the held rows and is deleted after the run
    with the rows from drops after as_of (cx_fact_drop_later; on Spark, cx_keep_through_as_of). `rows`
    has the model's columns in order; `columns`: those columns (the contract's by default). -#}
{% macro cx_fact_rows(rows, key, changed='changed', columns=none, drop_column='last_drop_date') -%}
    {%- if is_incremental() %}
    {%- set columns = columns or (model.columns.keys() | list) -%}
    {%- if not columns -%}
        {{ exceptions.raise_compiler_error("cx_fact_rows(" ~ rows ~ "): the model declares no columns") }}
    {%- endif %}
    select
        {%- for column in columns %}
        {{ 'c.' ~ key if column == key else 'f.' ~ column }} as {{ column }}{{ ',' if not loop.last }}
        {%- endfor %}
    from {{ changed }} as c
    left join {{ rows }} as f on f.{{ key }} = c.{{ key }}
    {%- else %}
    {#- `rows` has the model's columns, in order (a unit test's model declares none) #}
    select * from {{ rows }}
    {%- endif %}
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
    them: their records are gone from staging) and the rows of no drop (cx_fact_rows: a changed key
    that has no row now); DuckDB. Spark keeps only rows up to as_of in its delete+insert rewrite instead,
    kept and recomputed alike (cx_keep_through_as_of). -#}
{% macro cx_fact_drop_later(relation, drop_column) -%}
    {{ return(adapter.dispatch('cx_fact_drop_later', 'cx_warehouse')(relation, drop_column)) }}
{%- endmacro %}

{% macro default__cx_fact_drop_later(relation, drop_column) -%}
    {#- a full build selected only drops up to as_of: nothing to delete, no scan -#}
    {%- if is_incremental() -%}
    delete from {{ relation }} where {{ drop_column }} > {{ cx_as_of() }} or {{ drop_column }} is null
    {%- endif -%}
{%- endmacro %}

{% macro spark__cx_fact_drop_later(relation, drop_column) -%}
{%- endmacro %}

{#- The changed keys of an incremental run staged before its query (fct_journey_events, and the facts of
    macros/fact_changes.sql, through cx_fact_config(changes=...)): `ctes`, the
    model's CTEs ending with `changed` (cx_changed_keys and whatever it reads), are run by the model's
    pre-hook into a temporary table, and the model's `changed` reads that table
    (cx_staged_changed_keys(), none where nothing is staged). DuckDB only: the journey's night as one query
    ran out of 12 GB at scale L, where the comparison and the rest each fit on their own (docs/warehouse.md,
    "Incremental facts"; benchmarks/RESULTS.md); the temporary table is the session's (dbt runs a model's
    hooks and query on one connection) and is dropped by the post-hook (cx_drop_staged_changed_keys). Spark
    computes the keys in the query. A full build stages nothing. `cte`: another CTE of `ctes` to stage
    (cx_fact_config(stage_first=...)). -#}
{% macro cx_stage_changed_keys(ctes, cte='changed') -%}
    {%- set staged = cx_staged_changed_keys(cte) -%}
    {%- if staged %}
    create or replace temporary table {{ staged }} as
    with {{ ctes }}
    select * from {{ cte }}
    {%- endif %}
{%- endmacro %}

{% macro cx_drop_staged_changed_keys(cte='changed') -%}
    {%- set staged = cx_staged_changed_keys(cte) -%}
    {%- if staged %}
    drop table if exists {{ staged }}
    {%- endif %}
{%- endmacro %}

{#- The table of this model's incremental run where cx_stage_changed_keys staged its CTE `cte` (`changed`:
    the changed keys), or none. -#}
{% macro cx_staged_changed_keys(cte='changed') -%}
    {{ return(adapter.dispatch('cx_staged_changed_keys', 'cx_warehouse')(cte)) }}
{%- endmacro %}

{% macro default__cx_staged_changed_keys(cte) -%}
    {{ return(none) }}
{%- endmacro %}

{% macro duckdb__cx_staged_changed_keys(cte) -%}
    {%- set name = 'changed_keys' if cte == 'changed' else cte -%}
    {{ return('temp.main.' ~ model.name ~ '__' ~ name if is_incremental() else none) }}
{%- endmacro %}
