{#-
    The KPIs of kpi_experience_daily and kpi_experience_weekly, defined once: their families (the records
    each KPI family is measured on), their observations, the aggregation and the statistics of a cell.
    Decision log: docs/kpi-decisions.md. kpi.sql holds the statistics macros (wilson_*, nps_*, mean_ci)
    and the finality windows.
-#}

{#- The KPIs (docs/kpi-decisions.md), by family: the KPIs measured on the same records, the family's
    CTE below. Each KPI is one observation per record of its family where `where` holds, dated by
    `date` and measured by the columns of its kind:
      nps           `promoter`, `detractor`: conditions, counted (numerator P - D, denominator N)
      rate          `success`: a condition, counted (successes / observations)
      mean, median  `measure`: a number, averaged or its median taken
      ratio         `numerator`, `denominator`: amounts, each summed (sum / sum); refund_rate_value's are
                    converted per invoice to whole minor units of the reporting currency: sums of whole
                    numbers are exact, so the value does not depend on the order rows are added in
    channel and touchpoint come from the family's CTE, segment and persona as of the KPI date
    (cx_customer_attributes_by_date). -#}
{% macro kpi_families() -%}
    {%- set float = type_double() -%}
    {{ return({
        'survey_answers': [
            {'kpi': 'nps', 'kind': 'nps', 'date': 'response_date',
             'where': "survey_type = 'nps' and nps_category is not null",
             'promoter': "nps_category = 'promoter'", 'detractor': "nps_category = 'detractor'"},
            {'kpi': 'csat', 'kind': 'rate', 'date': 'response_date',
             'where': "survey_type = 'csat' and csat_satisfied is not null", 'success': 'csat_satisfied'},
            {'kpi': 'ces', 'kind': 'mean', 'date': 'response_date',
             'where': "survey_type = 'ces' and ces_score is not null", 'measure': 'cast(ces_score as ' ~ float ~ ')'},
        ],
        'support_cases': [
            {'kpi': 'fcr_rate', 'kind': 'rate', 'date': 'resolved_date',
             'where': 'is_resolved and resolved_date is not null', 'success': 'is_fcr'},
            {'kpi': 'first_response_hours_p50', 'kind': 'median', 'date': 'first_response_date',
             'where': 'first_response_date is not null', 'measure': 'first_response_hours'},
            {'kpi': 'resolution_hours_p50', 'kind': 'median', 'date': 'resolved_date',
             'where': 'is_resolved and resolved_date is not null', 'measure': 'resolution_hours'},
        ],
        'deliveries': [
            {'kpi': 'on_time_delivery_rate', 'kind': 'rate', 'date': 'delivery_date', 'success': 'is_on_time'},
            {'kpi': 'otif_rate', 'kind': 'rate', 'date': 'delivery_date', 'success': 'is_otif'},
            {'kpi': 'promise_gap_days_avg', 'kind': 'mean', 'date': 'delivery_date',
             'measure': 'cast(promise_gap_days as ' ~ float ~ ')'},
        ],
        'invoiced_orders': [
            {'kpi': 'refund_rate_orders', 'kind': 'rate', 'date': 'issue_date', 'success': 'has_refund'},
            {'kpi': 'refund_rate_value', 'kind': 'ratio', 'date': 'issue_date', 'where': 'fx_rate is not null',
             'numerator': 'cast(round(refunded_minor * fx_rate) as ' ~ float ~ ')',
             'denominator': 'cast(round(amount_due_minor * fx_rate) as ' ~ float ~ ')'},
        ],
        'payment_attempts': [
            {'kpi': 'payment_failure_rate', 'kind': 'rate', 'date': 'attempt_date', 'success': 'is_failed'},
        ],
        'followup_items': [
            {'kpi': 'followup_breach_rate', 'kind': 'rate', 'date': 'outcome_date', 'where': 'outcome_date is not null',
             'success': 'is_breached'},
        ],
        'followup_backlog': [
            {'kpi': 'followup_backlog_overdue_rate', 'kind': 'rate', 'date': 'backlog_date', 'success': 'is_overdue'},
        ],
        'promise_outcomes': [
            {'kpi': 'kept_rate_delivery', 'kind': 'rate', 'date': 'promise_date', 'where': "measure = 'delivery'",
             'success': 'not is_broken'},
            {'kpi': 'kept_rate_first_response', 'kind': 'rate', 'date': 'promise_date',
             'where': "measure = 'first_response'", 'success': 'not is_broken'},
            {'kpi': 'kept_rate_resolution', 'kind': 'rate', 'date': 'promise_date', 'where': "measure = 'resolution'",
             'success': 'not is_broken'},
            {'kpi': 'kept_rate_refund', 'kind': 'rate', 'date': 'promise_date', 'where': "measure = 'refund'",
             'success': 'not is_broken'},
            {'kpi': 'kept_rate_follow_up', 'kind': 'rate', 'date': 'promise_date', 'where': "measure = 'follow_up'",
             'success': 'not is_broken'},
        ],
    }) }}
{%- endmacro %}

{#- kpi -> kind ('nps', 'rate', 'mean', 'median', 'ratio'). -#}
{% macro kpi_kinds() -%}
    {%- set kinds = {} -%}
    {%- for family, kpis in kpi_families().items() -%}{%- for k in kpis -%}{%- do kinds.update({k.kpi: k.kind}) -%}{%- endfor -%}{%- endfor -%}
    {{ return(kinds) }}
{%- endmacro %}

{#- the families whose records carry the promise they are judged by: the `promise` dimension -#}
{% macro kpi_promise_families() -%}
    {{ return(['promise_outcomes']) }}
{%- endmacro %}

{#- The KPI families' records, each with its customer, channel and touchpoint: the select of `family`'s CTE. -#}
{% macro kpi_family_sql(family) -%}
    {%- if family == 'survey_answers' %}
    select customer_key, cast(null as {{ dbt.type_string() }}) as channel, touchpoint,
           response_date, survey_type, nps_category, csat_satisfied, ces_score
    from {{ ref('fct_survey_responses') }}
    {%- elif family == 'support_cases' %}
    select customer_key, channel, 'support' as touchpoint,
           first_response_date, resolved_date, is_resolved, is_fcr, first_response_hours, resolution_hours
    from {{ ref('fct_support_cases') }}
    {%- elif family == 'deliveries' %}
    select customer_key, sales_channel as channel, 'delivery' as touchpoint,
           {{ utc_date('delivered_at') }} as delivery_date, is_on_time, is_otif, promise_gap_days
    from {{ ref('fct_orders') }}
    where is_delivered
    {%- elif family == 'invoiced_orders' %}
    -- fx_rate: reporting-currency units per unit of the invoice's currency (seed fx_rates; null when
    -- the table has no rate: the invoice is left out of value KPIs, and the gate says so)
    select o.customer_key, o.sales_channel as channel, 'billing' as touchpoint,
           i.issue_date, o.has_refund, o.refunded_minor, i.amount_due_minor,
           case when i.currency = '{{ var("reporting_currency") }}' then 1.0 else fx.rate end as fx_rate
    from {{ ref('fct_orders') }} as o
    inner join {{ ref('fct_invoices') }} as i on i.invoice_key = o.invoice_key
    left join {{ ref('fx_rates') }} as fx
        on fx.currency = i.currency and fx.reporting_currency = '{{ var("reporting_currency") }}'
    where i.status <> 'void'
    {%- elif family == 'payment_attempts' %}
    select customer_key, method as channel, 'billing' as touchpoint, attempt_date, is_failed
    from {{ ref('fct_payments') }}
    {%- elif family == 'followup_items' %}
    -- closing the loop (mart_feedback_followups): each tracked item, once kept (contact in time) or broken
    -- (the due time passed without one)
    select customer_key, cast(null as {{ dbt.type_string() }}) as channel, touchpoint,
           outcome_date, is_breached
    from {{ ref('mart_feedback_followups') }}
    {%- elif family == 'followup_backlog' %}
    -- the backlog at the end of each day: the tracked items answered by then and not contacted yet, for at
    -- most followup_backlog_days after the answer; overdue once their due time has passed
    select customer_key, channel, touchpoint, backlog_date,
           {{ utc_date('due_at') }} <= backlog_date as is_overdue
    from (
        select f.customer_key, cast(null as {{ dbt.type_string() }}) as channel, f.touchpoint, f.due_at,
               f.first_contact_at, f.judged_through,
               cast({{ dbt.dateadd('day', 's.generated_number - 1', 'f.response_date') }} as date) as backlog_date
        from {{ ref('mart_feedback_followups') }} as f
        cross join ({{ dbt.generate_series(var('followup_backlog_days') + 1) }}) as s
        where f.is_tracked
    ) as days
    where (first_contact_at is null or {{ utc_date('first_contact_at') }} > backlog_date)
      and backlog_date <= judged_through
    {%- elif family == 'promise_outcomes' %}
    -- each record judged against one of the brand's promises (fct_promise_outcomes): a kept rate per
    -- measure, and per promise in the `promise` dimension
    select customer_key, cast(null as {{ dbt.type_string() }}) as channel,
           case measure when 'delivery' then 'delivery' when 'refund' then 'billing'
                        when 'follow_up' then 'relationship' else 'support' end as touchpoint,
           promise_id as promise, measure, promise_date, is_broken
    from {{ ref('fct_promise_outcomes') }}
    {%- else %}
    {{ exceptions.raise_compiler_error("unknown KPI family " ~ family) }}
    {%- endif %}
{%- endmacro %}

{#- One row per KPI observation of the KPIs in `kpis` (default: all), from their families' CTEs, which
    must be in scope: kpi_date, kpi, kind, customer_key, channel, touchpoint, promise and the columns
    of every kind (null where a kind does not use them; the engine gives each column the widest type of
    its KPIs' expressions: measure is a double, the hours are, whatever `float` is). -#}
{% macro kpi_observations(kpis=none) -%}
    {%- set measure_types = kpi_measure_columns() %}
    {%- set selected = [] %}
    {%- for family, defs in kpi_families().items() %}{% for k in defs if kpis is none or k.kpi in kpis %}
        {%- do selected.append((family, k)) %}
    {%- endfor %}{% endfor %}
    {%- if not selected %}
        {{ exceptions.raise_compiler_error("kpi_observations: no KPI among " ~ kpis) }}
    {%- endif %}
    {%- for family, k in selected %}
    {%- set m = {} %}
    {%- if k.kind == 'nps' %}
        {%- do m.update({'is_promoter': 'case when ' ~ k.promoter ~ ' then 1 else 0 end',
                         'is_detractor': 'case when ' ~ k.detractor ~ ' then 1 else 0 end'}) %}
    {%- elif k.kind == 'rate' %}
        {%- do m.update({'is_success': 'case when ' ~ k.success ~ ' then 1.0 else 0.0 end'}) %}
    {%- elif k.kind in ('mean', 'median') %}
        {%- do m.update({'measure': k.measure}) %}
    {%- elif k.kind == 'ratio' %}
        {%- do m.update({'ratio_numerator': k.numerator, 'ratio_denominator': k.denominator}) %}
    {%- else %}
        {{ exceptions.raise_compiler_error("KPI " ~ k.kpi ~ ": unknown kind " ~ k.kind) }}
    {%- endif %}
    select
        {{ k.date }} as kpi_date, '{{ k.kpi }}' as kpi, '{{ k.kind }}' as kind,
        customer_key, channel, touchpoint,
        {{ 'promise' if family in kpi_promise_families() else 'cast(null as ' ~ dbt.type_string() ~ ')' }} as promise,
        {%- for column, type in measure_types.items() %}
        {{ m.get(column, 'cast(null as ' ~ type ~ ')') }} as {{ column }}{{ ',' if not loop.last }}
        {%- endfor %}
    from {{ family }}
    {%- if k.where %}
    where {{ k.where }}
    {%- endif %}
    {{ 'union all' if not loop.last }}
    {%- endfor %}
{%- endmacro %}

{#- The measure columns of an observation (kpi_observations), with their types; kpi_grouped aggregates them. -#}
{% macro kpi_measure_columns() -%}
    {%- set float = type_double() %}
    {{ return({
        'is_promoter': dbt.type_int(), 'is_detractor': dbt.type_int(), 'is_success': float, 'measure': float,
        'ratio_numerator': float, 'ratio_denominator': float,
    }) }}
{%- endmacro %}

{#- A 40-bit hash (macros/keys.sql cx_hash_row) of what kpi_grouped reads of one observation, besides its
    date and KPI: its breakdown values (kpi_dimensions: segment and persona as of its date) and
    its measures (kpi_measure_columns). kpi_experience_daily sums it per date and KPI (input_hash, with
    input_count), and recomputes a date whose sum or count differs from the held one: every column the
    aggregation reads must be hashed here, or a change of it alone would not be recomputed. -#}
{% macro kpi_observation_hash() -%}
    {{- cx_hash_row((kpi_dimensions() | reject('equalto', 'all') | list) + (kpi_measure_columns().keys() | list)) -}}
{%- endmacro %}

{#- The families (CTE names) of the KPIs in `kpis` (default: all). -#}
{% macro kpi_families_of(kpis=none) -%}
    {%- set families = [] -%}
    {%- for family, defs in kpi_families().items() -%}{%- for k in defs if (kpis is none or k.kpi in kpis) and family not in families -%}
        {%- do families.append(family) -%}
    {%- endfor -%}{%- endfor -%}
    {{ return(families) }}
{%- endmacro %}

{#- The customer's segment and persona on each UTC date, as ranges of dates (docs/kpi-decisions.md,
    "Segment and persona as of the date"): the versions of the person's primary CRM profile
    (dim_customer_history.is_primary_profile, the profile dim_customer describes the person by), the last
    version of a day holding for that whole day, until the day of the next version. The first known version
    also holds for every date before it (valid_from_date null): a first drop carries only the profiles'
    current versions, dated by their last update, not their history. valid_to_date (exclusive) is null for
    the current version. A select of customer_key, segment, persona, valid_from_date, valid_to_date; join it
    with cx_customer_on_date. -#}
{% macro cx_customer_attributes_by_date() -%}
    select
        customer_key,
        segment,
        persona,
        case when row_number() over (partition by customer_key order by version_date) > 1
            then version_date end as valid_from_date,
        lead(version_date) over (partition by customer_key order by version_date) as valid_to_date
    from (
        select
            customer_key, segment, persona,
            {{ utc_date('valid_from') }} as version_date,
            row_number() over (
                partition by customer_key, {{ utc_date('valid_from') }} order by valid_from desc
            ) as rank_in_day
        from {{ ref('dim_customer_history') }}
        where is_primary_profile and customer_key is not null
    ) as versions
    where rank_in_day = 1
{%- endmacro %}

{#- The join condition of a record dated `on_date` of customer `customer_key` with the version of its
    customer's attributes (`attributes`, an alias of cx_customer_attributes_by_date) on that date. -#}
{% macro cx_customer_on_date(attributes, customer_key, on_date) -%}
    {{ attributes }}.customer_key = {{ customer_key }}
    and ({{ attributes }}.valid_from_date is null or {{ attributes }}.valid_from_date <= {{ on_date }})
    and ({{ attributes }}.valid_to_date is null or {{ on_date }} < {{ attributes }}.valid_to_date)
{%- endmacro %}

{#- The observations of `relation` (alias o) where `where` holds, each with its customer's segment and persona
    on its date, from the CTE `customers` (cx_customer_attributes_by_date). -#}
{% macro kpi_with_customer(relation, where) -%}
    select o.*, c.segment, c.persona
    from {{ relation }} as o
    left join customers as c on {{ cx_customer_on_date('c', 'o.customer_key', 'o.kpi_date') }}
    where {{ where }}
{%- endmacro %}

{#- The breakdowns of every KPI cell: 'all' and one dimension at a time. -#}
{% macro kpi_dimensions() -%}
    {{ return(['all', 'segment', 'persona', 'channel', 'touchpoint', 'promise']) }}
{%- endmacro %}

{#- Every dimension in one aggregation (grouping sets) of `relation` (observations with segment and
    persona), per `period` (a column or expression, named `period_name`), kpi and kind: the observations
    are read once, not once per dimension (on Spark, five copies of the observation plan made planning
    the slowest step of a build). A dimension's cells are its known values: observations without one
    count in 'all' only. The components: n, promoters, detractors, successes, measure_sum / _mean / _sd /
    _median, ratio_numerator / _denominator. -#}
{% macro kpi_grouped(relation, period, period_name) -%}
    {%- set dims = kpi_dimensions() %}
    select * from (
        select
            {{ period }} as {{ period_name }}, kpi, kind,
            case
                {%- for dim in dims if dim != 'all' %}
                when grouping({{ dim }}) = 0 then '{{ dim }}'
                {%- endfor %}
                else 'all'
            end as dimension,
            case
                {%- for dim in dims if dim != 'all' %}
                when grouping({{ dim }}) = 0 then {{ dim }}
                {%- endfor %}
                else 'all'
            end as dimension_value,
            count(*) as n,
            sum(is_promoter) as promoters,
            sum(is_detractor) as detractors,
            sum(is_success) as successes,
            sum(measure) as measure_sum,
            avg(measure) as measure_mean,
            stddev_samp(measure) as measure_sd,
            {{ median('measure') }} as measure_median,
            sum(ratio_numerator) as ratio_numerator,
            sum(ratio_denominator) as ratio_denominator
        from {{ relation }}
        group by {{ period }}, kpi, kind, grouping sets (
            {%- for dim in dims %}
            {% if dim == 'all' %}(){% else %}({{ dim }}){% endif %}{{ ',' if not loop.last }}
            {%- endfor %}
        )
    ) as grouped
    where dimension = 'all' or dimension_value is not null
{%- endmacro %}

{#- The served columns of a KPI cell from its components (kpi_grouped's columns and final_date):
    numerator, denominator, value, n, the components (promoters, detractors, successes, sd), the 95 %
    interval, final_date, is_final and is_reportable. The components let a reader recombine cells into
    longer periods with honest intervals (kpi_experience_weekly does): sums of counts, and for means the
    pooled variance from n, mean and sd. Medians do not recombine. -#}
{% macro kpi_cell_columns() -%}
    {%- set float = type_double() %}
    case kind
        when 'nps' then cast(promoters - detractors as {{ float }})
        when 'rate' then successes
        when 'mean' then measure_sum
        when 'ratio' then ratio_numerator
    end as numerator,
    case kind when 'ratio' then ratio_denominator else cast(n as {{ float }}) end as denominator,
    case kind
        when 'nps' then {{ nps_value('promoters', 'detractors', 'n') }}
        when 'rate' then successes / n
        when 'mean' then measure_mean
        when 'median' then measure_median
        when 'ratio' then case when ratio_denominator > 0 then ratio_numerator / ratio_denominator end
    end as value,
    n,
    case kind when 'nps' then cast(promoters as {{ dbt.type_bigint() }}) end as promoters,
    case kind when 'nps' then cast(detractors as {{ dbt.type_bigint() }}) end as detractors,
    case kind when 'rate' then cast(successes as {{ dbt.type_bigint() }}) end as successes,
    case kind when 'mean' then measure_sd end as sd,
    case kind
        when 'nps' then {{ nps_adjusted_wald('promoters', 'detractors', 'n', 'low') }}
        when 'rate' then {{ wilson_low('successes', 'n') }}
        when 'mean' then {{ mean_ci('measure_mean', 'measure_sd', 'n', 'low') }}
    end as ci_low,
    case kind
        when 'nps' then {{ nps_adjusted_wald('promoters', 'detractors', 'n', 'high') }}
        when 'rate' then {{ wilson_high('successes', 'n') }}
        when 'mean' then {{ mean_ci('measure_mean', 'measure_sd', 'n', 'high') }}
    end as ci_high,
    final_date,
    final_date <= {{ cx_as_of() }} as is_final,
    {{ is_reportable('n', '(final_date <= ' ~ cx_as_of() ~ ')') }} as is_reportable
{%- endmacro %}

{#- Every KPI needs a finality window (kpi_finality_vars, macros/kpi.sql): checked at compile time. -#}
{% macro kpi_check_finality() -%}
    {%- set defined = kpi_kinds().keys() | sort %}
    {%- if defined != kpi_finality_vars().keys() | sort %}
        {{ exceptions.raise_compiler_error("kpi_families (macros/kpi_experience.sql) defines the KPIs " ~ defined
            ~ " and kpi_finality_vars (macros/kpi.sql) " ~ (kpi_finality_vars().keys() | sort)
            ~ ": every KPI needs a finality window") }}
    {%- endif %}
{%- endmacro %}
