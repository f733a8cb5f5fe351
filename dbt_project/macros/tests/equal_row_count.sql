{#- The model and another relation do not have the same number of rows (with unique keys and a
    relationships test from the model to the other one: the same key set). -#}
{% test equal_row_count(model, compare_model) %}
with a as (
    select count(*) as n from {{ model }}
),
b as (
    select count(*) as n from {{ compare_model }}
)
select a.n as model_rows, b.n as compare_rows
from a cross join b
where a.n <> b.n
{% endtest %}
