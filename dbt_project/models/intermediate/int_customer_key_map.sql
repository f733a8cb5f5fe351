{{
    config(
        materialized='incremental',
        unique_key='person_id',
        incremental_strategy='delete+insert',
        full_refresh=false,
        schema='restricted',
    )
}}
-- The persisted person -> customer_key link (docs/privacy.md), in the restricted schema: never served.
-- A key is the keyed hash of the person (macros/keys.sql), so a rebuilt map reproduces the same
-- keys, and nobody without the secret can compute one from a CRM id. A person erased on request
-- gets a new key from then on ('erased-customer'): rows stay and count, under a key that no served
-- copy or link resolves. `full_refresh=false` keeps first_seen_as_of through --full-refresh.
-- A changed secret would change every key: the build stops unless the rotation is asked for
-- (var rotate_keys, `cxw keys rotate`).
{% if is_incremental() and execute and not var('rotate_keys', false) %}
    {%- set stored = run_query("select distinct key_fingerprint from " ~ this) -%}
    {%- set current = run_query("select " ~ cx_key_fingerprint()) -%}
    {%- for row in stored.rows if row[0] != current.rows[0][0] %}
        {{ exceptions.raise_compiler_error(
            "The key secret differs from the one that made the stored customer keys: every key would change. "
            ~ "Restore the secret (CX_KEY_SECRET_FILE / CX_KEY_SECRET), or rotate on purpose with `cxw keys rotate` "
            ~ "(docs/privacy.md).") }}
    {%- endfor %}
{% endif %}
with people as (
    select distinct person_id from {{ ref('int_identity_resolution') }}
),

erased as (
    -- a person any of whose CRM profiles asked for erasure
    select distinct r.person_id
    from {{ ref('int_identity_resolution') }} as r
    inner join {{ ref('stg_crm__customers') }} as c
        on r.identifier = {{ dbt.concat(["'crm:'", "c.customer_id"]) }}
    where c.is_deleted
),

wanted as (
    select
        p.person_id,
        e.person_id is not null as is_erased,
        case
            when e.person_id is not null then {{ cx_pseudonym('erased-customer', 'p.person_id') }}
            else {{ cx_pseudonym('customer', 'p.person_id') }}
        end as customer_key
    from people as p
    left join erased as e on e.person_id = p.person_id
)

select
    w.person_id,
    w.customer_key,
    w.is_erased,
    {{ cx_key_fingerprint() }} as key_fingerprint,
{% if is_incremental() %}
    coalesce(t.first_seen_as_of, {{ cx_as_of() }}) as first_seen_as_of
from wanted as w
left join {{ this }} as t on t.person_id = w.person_id
where t.person_id is null or t.customer_key <> w.customer_key
{% else %}
    {{ cx_as_of() }} as first_seen_as_of
from wanted as w
{% endif %}
