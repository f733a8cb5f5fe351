{#- The brand's promises (seed brand_promises): the one source of the targets records are judged by.

    promise_for(records, key, measure, channel, priority): a select of (key, promise_id, promise_target)
    giving each record of the relation or CTE `records` the promise of `measure` that applies to it:
    the rows whose channel and priority match the record's (columns of `records`, or none) or are '*';
    of those, the most specific (a priority beats a channel, both beat neither). A record no promise
    applies to gets no row (left join it). Portable: an equi-join and row_number, no correlated
    subquery (Spark refuses non-equality correlated predicates). -#}
{% macro promise_for(records, key, measure, channel=none, priority=none) -%}
    select {{ key }}, promise_id, promise_target
    from (
        select
            r.{{ key }},
            p.promise_id,
            p.target as promise_target,
            row_number() over (
                partition by r.{{ key }}
                order by case when p.priority = '*' then 0 else 2 end
                    + case when p.channel = '*' then 0 else 1 end desc
            ) as specificity_rank
        from {{ records }} as r
        inner join {{ ref('brand_promises') }} as p
            on p.measure = '{{ measure }}'
            and (p.channel = '*'{% if channel %} or p.channel = r.{{ channel }}{% endif %})
            and (p.priority = '*'{% if priority %} or p.priority = r.{{ priority }}{% endif %})
    ) as matched
    where specificity_rank = 1
{%- endmacro %}
