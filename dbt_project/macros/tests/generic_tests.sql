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

{#- Groups (`partition_by`) whose ranks (`column_name`) are not exactly 1, 2, ..., n, n the group's rows:
    a rank missing (null), below 1, repeated, or a gap. One pass over the model (each test of a view
    computes the view again): n ranks, none null, n distinct, the least 1 and the greatest n are exactly
    1..n. Stands for not_null(rank), in_range(rank >= 1) and unique_combination(group, rank) together. -#}
{% test ranks_one_to_n(model, column_name, partition_by) %}
select
    {{ partition_by }},
    count(*) as n,
    count({{ column_name }}) as ranked,
    count(distinct {{ column_name }}) as distinct_ranks,
    min({{ column_name }}) as least_rank,
    max({{ column_name }}) as greatest_rank
from {{ model }}
group by {{ partition_by }}
having count({{ column_name }}) <> count(*)
    or count(distinct {{ column_name }}) <> count(*)
    or min({{ column_name }}) <> 1
    or max({{ column_name }}) <> count(*)
{% endtest %}
