{#- SQL shapes that keep a query within DuckDB's memory limit (CX_DUCKDB_MEMORY_LIMIT) at scale L, where
    the plain shape ran out of 5 GB (benchmarks/RESULTS.md, "Scale L within 5 GB, model by model"). -#}

{#- One row per `key` from relations or CTEs that each hold at most one row per key (`parts`: a list of
    [relation, [columns]], no column in two parts): their union all grouped by the key, each column the max
    of the one value its part gives (the other parts give null). It stands for `required` left-joined to the
    other parts on the key, and keeps the keys of `required` only. For joins that run out of memory:
    fct_orders' eight joins ran out of 5 GB at scale L on DuckDB, this aggregation (which spills) fits. -#}
{% macro cx_combine_per_key(key, parts, required) -%}
    {%- set columns = [] %}
    {%- for part in parts %}{% for column in part[1] %}
        {%- if column in columns or column == key -%}
            {{ exceptions.raise_compiler_error("cx_combine_per_key: column " ~ column
                                                ~ " is the key or in two parts") }}
        {%- endif -%}
        {%- do columns.append(column) %}
    {%- endfor %}{% endfor %}
    {%- if required not in parts | map(attribute=0) | list -%}
        {{ exceptions.raise_compiler_error("cx_combine_per_key: required part " ~ required
                                            ~ " is not among the parts") }}
    {%- endif %}
    select
        {{ key }}
        {%- for column in columns %},
        max({{ column }}) as {{ column }}
        {%- endfor %}
    from (
        {%- for part in parts %}
        select
            {{ key }},
            {{ 1 if part[0] == required else 0 }} as cx_required
            {%- for column in columns %},
            {{ column if column in part[1] else 'null' }} as {{ column }}
            {%- endfor %}
        from {{ part[0] }}
        {%- if not loop.last %}
        union all
        {%- endif %}
        {%- endfor %}
    ) as parts
    group by {{ key }}
    having max(cx_required) = 1
{%- endmacro %}
