{#- Our own generic tests (no dbt packages on these machines). -#}

{#- Rows whose combination of columns is not unique. -#}
{% test unique_combination(model, columns) %}
select {{ columns | join(', ') }}, count(*) as n
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}

{#- Values outside [min_value, max_value] (either bound optional; nulls pass). -#}
{% test in_range(model, column_name, min_value=none, max_value=none) %}
select {{ column_name }}
from {{ model }}
where {{ column_name }} is not null
  and (
      {%- if min_value is not none %} {{ column_name }} < {{ min_value }}{% else %} false{% endif %}
      or {%- if max_value is not none %} {{ column_name }} > {{ max_value }}{% else %} false{% endif %}
  )
{% endtest %}

{#- Rows where a boolean SQL expression does not hold. -#}
{% test expression_is_true(model, expression, column_name=none) %}
select *
from {{ model }}
where not ({{ expression }})
{% endtest %}

{#- A model's row-level invariants, in one test: a row per expression that does not hold on every row, with how
    many rows break it. One scan of the model and one test node for all its invariants, instead of
    `expression_is_true` once per expression (a node's fixed cost; benchmarks/RESULTS.md, "One test per model
    for the invariants"). As `expression_is_true`, a row where an expression is null passes. Its failures are
    the rows that break an expression (a row breaking two counts twice); the failing rows name the expressions
    (`dbt show --select <the test>`; the data-health message lists the expressions tested). The label is the
    expression with its quotes turned into double quotes (a literal both engines read alike). -#}
{% test expressions_are_true(model, expressions) %}
{{ config(fail_calc='coalesce(sum(failing_rows), 0)') }}
{%- set cases = [] %}
{%- for expression in expressions %}
    {%- do cases.append((expression | replace("'", '"') | replace("\\", "/"), 'not (' ~ expression ~ ')')) %}
{%- endfor %}
{{ cx_rows_per_case(model, cases, 'expression', 'failing_rows') }}
{% endtest %}

{#- The sum of an expression equals the same sum on another relation. `compare_distinct` names columns
    that identify a record in the other relation (e.g. a raw zone holding re-sent copies). -#}
{% test reconciles_with(model, expression, compare_model, compare_expression=none, where=none, compare_where=none,
                        compare_distinct=none) %}
with a as (
    select coalesce(sum({{ expression }}), 0) as total from {{ model }} {% if where %}where {{ where }}{% endif %}
),
compared as (
    {% if compare_distinct %}
    select distinct {{ compare_distinct | join(', ') }}, {{ compare_expression or expression }} as v
    {% else %}
    select {{ compare_expression or expression }} as v
    {% endif %}
    from {{ compare_model }} {% if compare_where %}where {{ compare_where }}{% endif %}
),
b as (
    select coalesce(sum(v), 0) as total from compared
)
select a.total as model_total, b.total as compare_total
from a cross join b
where a.total <> b.total
{% endtest %}

{#- A model's required columns, in one test: a row per column that holds nulls, with how many. One scan of the
    model and one test node for all its required columns, instead of dbt's `not_null` once per column (a
    node's fixed cost: about 30 % of a night at S; benchmarks/RESULTS.md, "The `not_null` tests' share at S").
    Its failures are the null values; the failing rows name the columns (`dbt show --select <the test>`, and
    the data-health message lists the columns tested). -#}
{% test not_null_columns(model, columns) %}
{{ config(fail_calc='coalesce(sum(null_rows), 0)') }}
{%- set cases = [] %}
{%- for column in columns %}
    {%- do cases.append((column, column ~ ' is null')) %}
{%- endfor %}
{{ cx_rows_per_case(model, cases, 'column_name', 'null_rows') }}
{% endtest %}

{#- A model's enumerations, in one test: `columns` maps each column to its accepted values (dbt's
    `accepted_values`, quoted as strings: a null passes). A row per column holding other values, with how many
    rows hold them. One test node for all of a model's enumerations, instead of dbt's `accepted_values` once per
    column (a node's fixed cost, about 12 ms of dbt's own work at night; benchmarks/RESULTS.md, "A model's
    enumerations and ranges in one test each"). Each column is grouped first, as dbt's test does, and only its
    distinct values compared: cheaper than comparing every row (4x, measured there). Its failures are the rows
    holding a value not accepted; the failing rows name the columns (`dbt show --select <the test>`; the
    data-health message lists the columns tested). tests/test_dbt_contract_parity.py reads `columns` to check
    the enumerations against the landing contract. -#}
{% test accepted_values_columns(model, columns) %}
{{ config(fail_calc='coalesce(sum(unexpected_rows), 0)') }}
{%- for column, values in columns.items() %}
{%- set quoted = [] %}
{%- for value in values %}
    {%- do quoted.append("'" ~ (value | string | replace("'", "''")) ~ "'") %}
{%- endfor %}
select column_name, unexpected_rows
from (
    select '{{ column }}' as column_name, sum(n) as unexpected_rows
    from (select {{ column }} as value_field, count(*) as n from {{ model }} group by {{ column }}) as grouped
    where value_field not in ({{ quoted | join(', ') }})
) as counted
where unexpected_rows > 0
{% if not loop.last %}union all{% endif %}
{%- endfor %}
{% endtest %}

{#- A model's ranges, in one test: `columns` maps each column to its bounds (`min_value`, `max_value`, either
    optional, inclusive, as `in_range`: a null passes). A row per column holding values outside its bounds, with
    how many rows hold them. One test node per model, as accepted_values_columns; each column filtered on its own,
    so that the engine skips the row groups whose statistics lie within the bounds. The label is the column with
    its bounds (`refund_amount >= 0`, `rate in [0, 1]`). -#}
{% test in_range_columns(model, columns) %}
{{ config(fail_calc='coalesce(sum(out_of_range_rows), 0)') }}
{%- for column, bounds in columns.items() %}
{%- set low, high = bounds.get('min_value'), bounds.get('max_value') %}
{%- if low is none and high is none %}
    {{ exceptions.raise_compiler_error("in_range_columns: " ~ column ~ " has neither min_value nor max_value") }}
{%- endif %}
{%- set outside = [] %}
{%- if low is not none %}{% do outside.append(column ~ ' < ' ~ low) %}{% endif %}
{%- if high is not none %}{% do outside.append(column ~ ' > ' ~ high) %}{% endif %}
{%- if low is not none and high is not none %}
    {%- set label = column ~ ' in [' ~ low ~ ', ' ~ high ~ ']' %}
{%- elif low is not none %}
    {%- set label = column ~ ' >= ' ~ low %}
{%- else %}
    {%- set label = column ~ ' <= ' ~ high %}
{%- endif %}
select range, out_of_range_rows
from (
    select '{{ label | replace("'", '"') }}' as range, count(*) as out_of_range_rows
    from {{ model }}
    where {{ outside | join(' or ') }}
) as counted
where out_of_range_rows > 0
{% if not loop.last %}union all{% endif %}
{%- endfor %}
{% endtest %}

{#- The one scan behind not_null_columns and expressions_are_true: `cases` is a list of (label, condition); a row
    (label as `label_column`, the rows of `model` meeting the condition as `count_column`) per case that some row
    meets. The labels are SQL string literals' contents (no quote in them). -#}
{% macro cx_rows_per_case(model, cases, label_column, count_column) %}
with counts as (
    select
        {%- for _label, condition in cases %}
        sum(case when {{ condition }} then 1 else 0 end) as n_{{ loop.index }}{{ ',' if not loop.last }}
        {%- endfor %}
    from {{ model }}
)
{%- for label, _condition in cases %}
select '{{ label }}' as {{ label_column }}, n_{{ loop.index }} as {{ count_column }}
from counts where n_{{ loop.index }} > 0
{% if not loop.last %}union all{% endif %}
{%- endfor %}
{% endmacro %}
