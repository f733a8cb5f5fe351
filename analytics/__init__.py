"""Python analytics over the marts: key drivers, the revenue link, churn risk, comment topics.

Framework-free (never imports Dagster or ``orchestration``): the Dagster assets in
``orchestration/assets/analytics.py`` read the marts from the warehouse DuckDB file (which, after a
Spark build, holds views over the tables Spark built), call these functions with the partition's
``as_of``, check each output against its declared schema (``analytics.schema``) and write it back.
"""
