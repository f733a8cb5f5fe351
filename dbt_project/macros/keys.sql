{#- Pseudonymous keys (docs/privacy.md, ingestion/keys.py): a keyed hash of a source identifier,
        first 32 hex digits of sha256(secret || sha256(secret || kind || ':' || value)),
    the same on DuckDB, on Spark and in Python. `kind` names what is keyed ('customer', 'order', ...),
    so equal identifiers of different kinds get different keys. Null in, null out.
    The secret is read from the session (never written into SQL): DuckDB's variable set by the
    orchestration.dbt_plugin connection plugin, Spark's `spark.cx.pseudonym_key` session variable. -#}
{% macro cx_pseudonym(kind, expr) -%}
    substr({{ cx_sha256(cx_key_secret() ~ " || " ~ cx_sha256(cx_key_secret() ~ " || '" ~ kind ~ ":' || cast(" ~ expr ~ " as " ~ dbt.type_string() ~ ")")) }}, 1, 32)
{%- endmacro %}

{#- Names the secret in use without revealing it (ingestion/keys.py fingerprint). -#}
{% macro cx_key_fingerprint() -%}
    {{ cx_pseudonym('fingerprint', "'cx-warehouse'") }}
{%- endmacro %}

{% macro cx_sha256(expr) -%}
    {{ return(adapter.dispatch('cx_sha256')(expr)) }}
{%- endmacro %}

{% macro default__cx_sha256(expr) -%}
    sha256({{ expr }})
{%- endmacro %}

{% macro spark__cx_sha256(expr) -%}
    sha2({{ expr }}, 256)
{%- endmacro %}

{#- The secret, failing with a clear message where the session has none. -#}
{% macro cx_key_secret() -%}
    {{ return(adapter.dispatch('cx_key_secret')()) }}
{%- endmacro %}

{% macro default__cx_key_secret() -%}
    coalesce(getvariable('cx_key_secret'), error('no key secret in this session: run dbt with the cx_warehouse profile (its orchestration.dbt_plugin sets it; docs/privacy.md)'))
{%- endmacro %}

{#- Spark substitutes the session variable into the statement. Unset, it is empty; under a name Spark
    redacts, "*********(redacted)": either would key every customer with a known constant, so the
    statement fails instead (a secret has at least 32 characters, ingestion/keys.py). -#}
{% macro spark__cx_key_secret() -%}
    case when length('${spark.cx.pseudonym_key}') >= 32 and '${spark.cx.pseudonym_key}' not like '%(redacted)'
         then '${spark.cx.pseudonym_key}'
         else raise_error('no key secret in this Spark session: run dbt through cxw or set DBT_ENV_SECRET_CX_KEY (docs/spark.md)') end
{%- endmacro %}

{#- A 40-bit hash of a string as a non-negative bigint, the same on DuckDB and Spark: the first 10 hex
    digits of its md5. For order-independent fingerprints, a sum of these over a key's rows (the inputs of
    mart_customer_profiles, the journey of fct_customer_stage_transitions): a bigint sum overflows only
    past 2^23 hashed items of one key, and two different sets of items sum alike with a chance of about
    2^-40. Null in, null out. -#}
{% macro cx_hash_int(expr) -%}
    {{ return(adapter.dispatch('cx_hash_int', 'cx_warehouse')(expr)) }}
{%- endmacro %}

{% macro default__cx_hash_int(expr) -%}
    cast(conv(substr(md5({{ expr }}), 1, 10), 16, 10) as bigint)
{%- endmacro %}

{% macro duckdb__cx_hash_int(expr) -%}
    cast('0x' || substr(md5({{ expr }}), 1, 10) as bigint)
{%- endmacro %}

{#- A 40-bit hash of a row of columns (`columns`, a list of expressions) as a non-negative bigint, for a
    fingerprint that the same engine compares with the one it wrote (fct_customer_stage_transitions'
    journey_fingerprint, mart_customer_profiles' input_hash, kpi_experience_daily's input_hash):
    the engine's native row hash, several times cheaper than cx_hash_int's md5 of a spelled string (at 100k
    customers x 1 year, measured on 8.9 million rows: about 17 s of md5 against 2 s, two threads).
    Unlike cx_hash_int it is not the same on DuckDB and Spark, and an engine upgrade may change it: a held
    fingerprint then differs everywhere once (one full recompute, not a wrong result). Nulls hash apart from
    every value, at their position. Sums of it behave as cx_hash_int's (overflow past 2^23 rows of a key). -#}
{% macro cx_hash_row(columns) -%}
    {{ return(adapter.dispatch('cx_hash_row', 'cx_warehouse')(columns)) }}
{%- endmacro %}

{% macro default__cx_hash_row(columns) -%}
    {#- xxhash64 skips null arguments: each column is spelled, a null as a character no value of ours holds -#}
    shiftrightunsigned(xxhash64(
        {%- for c in columns %}coalesce(cast({{ c }} as {{ dbt.type_string() }}), chr(0)){{ ', ' if not loop.last }}{% endfor -%}
    ), 24)
{%- endmacro %}

{% macro duckdb__cx_hash_row(columns) -%}
    cast(hash({{ columns | join(', ') }}) >> 24 as bigint)
{%- endmacro %}

{#- Every source identifier a served record key is made of: kind -> [(staging model, id column, filter)].
    The one list int_source_keys (every id's key, for the facts) and restricted.source_key_link (the served
    keys back to their ids) are built from. The survey's related_id follows fct_survey_responses. -#}
{% macro cx_source_id_mentions() -%}
    {%- set survey_related = {
        'order': "touchpoint in ('purchase', 'delivery', 'onboarding')",
        'case': "touchpoint = 'support'",
        'invoice': "touchpoint = 'billing'",
    } -%}
    {{ return({
        'order': [('stg_erp__orders', 'order_id', none), ('stg_billing__invoices', 'order_id', none),
                  ('stg_survey__responses', 'related_id', survey_related['order'])],
        'erp-account': [('stg_erp__orders', 'erp_account_id', none)],
        'invoice': [('stg_billing__invoices', 'invoice_id', none), ('stg_billing__payments', 'invoice_id', none),
                    ('stg_survey__responses', 'related_id', survey_related['invoice'])],
        'billing-account': [('stg_billing__invoices', 'billing_account_id', none)],
        'subscription': [('stg_billing__subscriptions', 'subscription_id', none),
                         ('stg_billing__invoices', 'subscription_id', none)],
        'payment': [('stg_billing__payments', 'payment_id', none), ('stg_billing__refunds', 'payment_id', none)],
        'refund': [('stg_billing__refunds', 'refund_id', none)],
        'case': [('stg_crm__support_cases', 'case_id', none),
                 ('stg_survey__responses', 'related_id', survey_related['case'])],
        'response': [('stg_survey__responses', 'response_id', none)],
        'touch': [('stg_crm__campaign_touches', 'touch_id', none)],
        'return': [('stg_erp__returns', 'return_id', none)],
    }) }}
{%- endmacro %}

{#- A record's served key read from the map of identifiers to keys (int_source_keys) rather than hashed again:
    each identifier is hashed once, when it first arrives, instead of in every fact that references it
    (fct_payments keys four identifiers a row: at scale M its full build spent 3.6 of its 4.4 s of CPU on
    SHA-256; benchmarks/RESULTS.md). A fact joins the map once per reference (cx_source_key_join, in its FROM
    clause) and selects cx_source_key with the same alias. An identifier the map lacks (none should: the map
    is built from every staging record that mentions one, before the facts) is hashed, so the key is always
    cx_pseudonym(kind, expr). `alias` names the join. -#}
{% macro cx_source_key_join(kind, expr, alias) -%}
    left join {{ ref('int_source_keys') }} as {{ alias }}
        on {{ alias }}.kind = '{{ kind }}' and {{ alias }}.source_id = {{ expr }}
{%- endmacro %}

{% macro cx_source_key(kind, expr, alias) -%}
    coalesce({{ alias }}.source_key, {{ cx_pseudonym(kind, expr) }})
{%- endmacro %}

{#- The two maps of record keys (int_source_keys, source_key_link), incremental alike: `cx_key_map_rerun()` is true
    when the table holds rows from the window's drops or later (the re-run of an older window, or of the last one
    after a corrected re-extract), whose records may be gone or older: everything is recomputed, as the full
    build. `cx_key_map_rows(rows)` is the model's final select: `rows` (a CTE of kind, source_key, source_id,
    last_drop_date) and, on an incremental run, each held row of the model's `redo` CTE (kind, source_id,
    source_key) that `rows` has none for (its records are gone; from the link, its person asked for erasure), as
    if from a drop after as_of: it replaces the held row and the run's end deletes it (cx_fact_drop_later on
    DuckDB, the delete+insert swap on Spark). -#}
{% macro cx_key_map_rerun() -%}
    ((select max(held.last_drop_date) from {{ this }} as held) >= {{ cx_min_date() }})
{%- endmacro %}

{% macro cx_key_map_rows(rows) -%}
select kind, source_key, source_id, last_drop_date
from {{ rows }}
{%- if is_incremental() %}
union all
select redo.kind, redo.source_key, redo.source_id, cast({{ dbt.dateadd('day', 1, cx_as_of()) }} as date)
from redo
where redo.source_key not in (select source_key from {{ rows }})
{%- endif %}
{%- endmacro %}
