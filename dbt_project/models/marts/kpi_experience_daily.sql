{{
    config(
        materialized='incremental',
        on_schema_change='fail',
        **cx_date_incremental('kpi_date', placeholder_column='kpi'),
    )
}}
-- CX KPIs per day, in long form, with sample size, 95 % interval and finality (docs/kpi-decisions.md).
-- kpi_date is the UTC date of the measured event: the response, the delivery, the first response,
-- the resolution, the invoice or the payment attempt. final_date is the date from which the cell can
-- no longer change (kpi_date + the KPI's finality window, kpi_finality_days); is_final = final_date
-- <= as_of; is_reportable needs enough observations and a final cell.
--
-- Which KPI dates a run computes (always < max_date and <= as_of, with the data delivered up to as_of):
-- * first build or full refresh: every KPI date (a first drop may carry years of history);
-- * incremental run: the KPI dates whose cells can differ from the held ones, and only those:
--   - a date whose inputs differ: the run fingerprints every date's observations as the aggregation
--     reads them (channel, touchpoint, promise, the customer's segment and persona, the measures), per
--     KPI date and KPI: input_count (observations) and input_hash (the sum of a 40-bit hash of each,
--     macros/keys.sql cx_hash_row, the engine's native row hash), held on every row of the date and
--     KPI. A date differs when one of its KPIs has a fingerprint now and none held, none now and one held, or another one.
--     This covers both versions of every changed record without reading them: the new version's dates
--     gain or change an observation, the old version's lose or change one (a record whose date moved,
--     a deleted or erased record, a customer re-keyed or moved to another segment, a follow-up judged
--     further); and nothing else is recomputed, however old the record;
--   - a date with a cell whose finality moved with as_of: is_final held <> (final_date <= as_of) now
--     (a cell turning final on a forward night; after the re-run of an older window, the reverse).
--   The fingerprint pass reads every observation and hashes it into its date's and KPI's sums (cheaper than
--   the aggregation: grouping sets over six breakdowns, medians, standard deviations, but it reads the whole
--   history: the cost of this model's night that grows with history); the dates it finds are read again,
--   and are the only ones aggregated. Held cells after as_of or on/after max_date (the re-run of an older window
--   over a newer table) are neither compared nor replaced, as before.
--   A found date with no observation left (all its records withdrawn, erased or moved to other dates)
--   aggregates to no cell, and delete+insert (insert_overwrite on Spark) replaces only the dates the run
--   writes rows for: the run writes it as one placeholder row (the date, every other column null) and the
--   post-hook deletes it (Spark: drops the date's partition) before the model's tests run
--   (macros/spark_incremental.sql cx_date_incremental, cx_date_drop_placeholders). The date ends with no
--   cell, as in a full refresh.
{{ kpi_check_finality() }}

-- each customer's segment and persona by date (macros/kpi_experience.sql)
with customers as (
{{ cx_customer_attributes_by_date() }}
),

-- the KPI families' records, each with its customer, channel and touchpoint (macros/kpi_experience.sql)
{%- for family in kpi_families_of() %}
{{ family }} as (
{{ kpi_family_sql(family) }}
),
{%- endfor %}

-- one row per KPI observation
observations as (
{{ kpi_observations() }}
),

-- the observations of the dates a run can compute, with the customer's attributes (joined once)
with_customer as (
{{ kpi_with_customer('observations', 'o.kpi_date < ' ~ cx_max_date() ~ ' and o.kpi_date <= ' ~ cx_as_of()) }}
),

-- every date's and KPI's fingerprint: what the aggregation below reads (macros/kpi_experience.sql)
fingerprints as (
    select kpi_date, kpi, count(*) as input_count,
           cast(sum({{ kpi_observation_hash() }}) as {{ dbt.type_bigint() }}) as input_hash
    from with_customer
    group by kpi_date, kpi
),

{%- if is_incremental() %}
{#- a table built before a served column (an upgrade) stops here with the fix; with as_of, so that the
    rebuilt cells' finality is right at once (docs/warehouse.md, section The daily KPI mart) -#}
{%- do cx_require_held_columns(how="run `cxw build --as-of <the last night> --full-refresh` once, or `dbt build "
    ~ "--full-refresh -s kpi_experience_daily --vars '{as_of: <the last night>}'` (docs/warehouse.md, section "
    ~ "The daily KPI mart)") %}

-- the held fingerprints of the same dates, and whether a cell's finality moved with as_of
held as (
    select kpi_date, kpi, min(input_count) as input_count, min(input_hash) as input_hash,
           max(case when is_final = (final_date <= {{ cx_as_of() }}) then 0 else 1 end) as finality_moved
    from {{ this }}
    where kpi_date < {{ cx_max_date() }}
      and kpi_date <= {{ cx_as_of() }}
    group by kpi_date, kpi
),

recompute_dates as (
    select distinct coalesce(f.kpi_date, h.kpi_date) as kpi_date
    from fingerprints as f
    full outer join held as h on h.kpi_date = f.kpi_date and h.kpi = f.kpi
    where f.kpi is null or h.kpi is null
       or f.input_count <> h.input_count or f.input_hash <> h.input_hash
       or h.finality_moved = 1
),
{%- endif %}

-- the dates a run computes. A full build: every date of the pass above. An incremental run: the dates found
-- above, their observations read again from the families and joined with the customers again, instead of
-- kept from the fingerprint pass. Kept, the pass's observations are a table as large as the history's
-- observations with every column (DuckDB materializes a CTE read twice: at L 140 M rows, 21 GB, most of
-- it spilled, most of the night's time of this model); read again, the fingerprint pass streams into its
-- aggregate, and the few dates' observations are what is kept (docs/warehouse.md, The daily KPI mart)
{%- if is_incremental() %}
recomputed_observations as (
{{ kpi_observations() }}
),

windowed as (
{{ kpi_with_customer('recomputed_observations', 'o.kpi_date in (select kpi_date from recompute_dates)') }}
),
{%- else %}
windowed as (
    select * from with_customer
),
{%- endif %}

-- every dimension in one aggregation, a dimension's cells its known values (macros/kpi_experience.sql)
aggregated as (
{{ kpi_grouped('windowed', 'kpi_date', 'kpi_date') }}
),

-- each cell with its finality and its date's and KPI's fingerprint (the same on every cell of both)
finality as (
    select a.*, {{ kpi_final_date('a.kpi', 'a.kpi_date') }} as final_date, f.input_count, f.input_hash
    from aggregated as a
    inner join fingerprints as f on f.kpi_date = a.kpi_date and f.kpi = a.kpi
)

select
    kpi_date,
    kpi,
    dimension,
    dimension_value,
    {{ kpi_cell_columns() }},
    input_count,
    input_hash
from finality
{%- if is_incremental() %}
-- the recomputed dates with no observation left: one placeholder row each (kpi null: no cell has a null
-- kpi), deleted after the run by the post-hook (cx_date_drop_placeholders), so that the date's held cells
-- are replaced by none. Every column null but the date (a column added above and not here fails the union)
union all
select
    r.kpi_date,
    {%- for column in ['kpi', 'dimension', 'dimension_value', 'numerator', 'denominator', 'value', 'n',
                       'promoters', 'detractors', 'successes', 'sd', 'ci_low', 'ci_high', 'final_date',
                       'is_final', 'is_reportable', 'input_count', 'input_hash'] %}
    null as {{ column }}{{ ',' if not loop.last }}
    {%- endfor %}
from recompute_dates as r
where not exists (select 1 from fingerprints as f where f.kpi_date = r.kpi_date)
{%- endif %}
