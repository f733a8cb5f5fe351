"""The SQL dbt compiles for an inline query (macros evaluated), for tests that run a macro's SQL themselves."""

from __future__ import annotations

from pathlib import Path

from orchestration.warehouse import run_dbt


def compile_inline(data_dir: Path, sql: str, dbt_vars: dict | None = None) -> str:
    (result,) = run_dbt(["compile", "--inline", sql], data_dir=data_dir, dbt_vars=dbt_vars)
    return result.node.compiled_code
