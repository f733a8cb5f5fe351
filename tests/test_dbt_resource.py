"""The dbt resource of the Dagster definitions creates no dbt adapter handle in the step's process
(orchestration/resources.py, CxDbtCliResource): dagster-dbt's cli() creates it inside a bare ``except:``
that swallowed an interrupt (SIGTERM during it: the night ran on and published)."""

from __future__ import annotations

import inspect

from dagster_dbt import DbtCliResource

from orchestration.definitions import defs
from orchestration.resources import CxDbtCliResource


def test_the_overridden_method_is_dagster_dbts_and_is_called_by_cli() -> None:
    # an upgrade of dagster-dbt that renames or stops calling it would silently bring the handle back
    assert "_initialize_dbt_core_adapter" in vars(DbtCliResource)
    assert "self._initialize_dbt_core_adapter(" in inspect.getsource(DbtCliResource.cli)
    # ... inside the bare except this resource avoids (what swallowed the interrupt)
    assert "except:" in inspect.getsource(DbtCliResource.cli)


def test_the_definitions_dbt_resource_creates_no_adapter_handle() -> None:
    dbt = defs.resources["dbt"]
    assert isinstance(dbt, CxDbtCliResource)
    assert dbt._initialize_dbt_core_adapter(["build"]) is None
