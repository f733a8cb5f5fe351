{#-
    The current version of each key in a raw-zone relation, among the drops delivered up to the
    run's `as_of` date: the newest `version_expr`, then the
    newest drop, then the latest extract and the last line (a re-send is an exact copy).
    Portable (row_number instead of QUALIFY, which Spark SQL lacks).
-#}
{% macro current_version(relation, key, version_expr=none) -%}
select * from (
    select
        src.*,
        row_number() over (
            partition by {{ key | join(', ') }}
            order by
                {%- if version_expr %} {{ version_expr }} desc,{% endif %}
                _business_date desc, _extracted_at desc, _source_line desc
        ) as _version_rank
    from {{ relation }} as src
    where src._business_date <= {{ cx_as_of() }}
) as versions
where _version_rank = 1
{%- endmacro %}
