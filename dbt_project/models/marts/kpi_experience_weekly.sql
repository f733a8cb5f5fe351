{{ config(materialized='table') }}
-- CX KPIs per ISO week (Monday to Sunday, of the cells' UTC KPI dates), in the long form of
-- kpi_experience_daily, with the same statistics computed from each week's components
-- (macros/kpi_experience.sql, kpi_cell_columns), never from averages of daily values:
-- * counts (n, NPS promoters and detractors, rate successes) and ratio amounts: sums of the daily cells;
-- * a mean's standard deviation: pooled from the daily n, mean and sd (sum of squares
--   = (n - 1) sd^2 + n mean^2 per day);
-- * medians do not recombine: they are taken from the week's observations (kpi_observations).
-- A week's cell is final once its last day is: final_date = the Sunday + the KPI's finality window, so a
-- week not over by as_of is provisional. Built whole from the daily mart (one row per day and cell),
-- which costs little beside the observations the daily mart reads incrementally; as of the run's as_of, so
-- a partition's re-run reproduces it.
{%- set kinds = kpi_kinds() %}
{%- set medians = [] %}
{%- for kpi, kind in kinds.items() if kind == 'median' %}{% do medians.append(kpi) %}{% endfor %}
{%- set float = type_double() %}
{%- set week_of_day = 'cast(' ~ dbt.date_trunc('week', 'kpi_date') ~ ' as date)' %}

with daily as (
    select
        d.*,
        case kpi
            {%- for kpi, kind in kinds.items() if kind != 'median' %}
            when '{{ kpi }}' then '{{ kind }}'
            {%- endfor %}
        end as kind
    from {{ ref('kpi_experience_daily') }} as d
    -- the cells up to the run's as_of: the daily mart keeps later cells when an older partition runs again
    -- over a newer table, and the weekly mart is then the one of that partition
    where kpi not in ('{{ medians | join("', '") }}')
      and kpi_date < {{ cx_max_date() }}
      and kpi_date <= {{ cx_as_of() }}
),

-- the daily cells' components, summed per week
summed as (
    select
        {{ week_of_day }} as week_start,
        kpi,
        kind,
        dimension,
        dimension_value,
        cast(sum(n) as {{ dbt.type_bigint() }}) as n,
        sum(promoters) as promoters,
        sum(detractors) as detractors,
        cast(sum(successes) as {{ float }}) as successes,
        sum(case when kind = 'mean' then numerator end) as measure_sum,
        -- a mean's sum of squares: (n - 1) sd^2 + n mean^2 per day (sd is null for a single observation)
        sum(case when kind = 'mean' then (n - 1) * coalesce(sd, 0.0) * coalesce(sd, 0.0) + n * value * value end)
            as measure_sum_squares,
        sum(case when kind = 'ratio' then numerator end) as ratio_numerator,
        sum(case when kind = 'ratio' then denominator end) as ratio_denominator
    from daily
    group by {{ week_of_day }}, kpi, kind, dimension, dimension_value
),

additive as (
    select
        week_start, kpi, kind, dimension, dimension_value, n, promoters, detractors, successes,
        measure_sum,
        measure_sum / n as measure_mean,
        case when n > 1 then sqrt(greatest(0.0, (measure_sum_squares - measure_sum * measure_sum / n) / (n - 1)))
        end as measure_sd,
        cast(null as {{ float }}) as measure_median,
        ratio_numerator, ratio_denominator
    from summed
),

-- the medians, from their observations
customers as (
{{ cx_customer_attributes_by_date() }}
),

{%- for family in kpi_families_of(medians) %}
{{ family }} as (
{{ kpi_family_sql(family) }}
),
{%- endfor %}

median_observations as (
    select o.*, c.segment, c.persona
    from ({{ kpi_observations(medians) }}) as o
    left join customers as c on {{ cx_customer_on_date('c', 'o.customer_key', 'o.kpi_date') }}
    where o.kpi_date < {{ cx_max_date() }}
      and o.kpi_date <= {{ cx_as_of() }}
),

medians as (
{{ kpi_grouped('median_observations', week_of_day, 'week_start') }}
),

weekly as (
    select week_start, kpi, kind, dimension, dimension_value, n, promoters, detractors, successes, measure_sum,
           measure_mean, measure_sd, measure_median, ratio_numerator, ratio_denominator
    from additive
    union all
    select week_start, kpi, kind, dimension, dimension_value, n, promoters, detractors, successes, measure_sum,
           measure_mean, measure_sd, measure_median, ratio_numerator, ratio_denominator
    from medians
),

finality as (
    select *, {{ kpi_final_date('kpi', 'cast(' ~ dbt.dateadd('day', 6, 'week_start') ~ ' as date)') }} as final_date
    from weekly
)

select
    week_start,
    kpi,
    dimension,
    dimension_value,
    {{ kpi_cell_columns() }}
from finality
