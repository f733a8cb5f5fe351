{{
    config(
        materialized='incremental',
        unique_key='person_id',
        incremental_strategy='delete+insert',
        full_refresh=false,
    )
}}
-- The persisted person -> customer_key mapping. `full_refresh=false` keeps it through
-- `dbt build --full-refresh`, so every person keeps its key across nightly runs and rebuilds.
-- A new person gets the hash of its person_id, so even a rebuilt map reproduces the same keys.
select
    person_id,
    {{ dbt.hash('person_id') }} as customer_key,
    {{ cx_as_of() }} as first_seen_as_of
from (select distinct person_id from {{ ref('int_identity_resolution') }}) as people
{% if is_incremental() %}
where person_id not in (select person_id from {{ this }})
{% endif %}
