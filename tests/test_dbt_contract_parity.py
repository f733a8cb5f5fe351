"""The landing contract (ingestion/contract.py) is the single source the dbt project follows.

dbt cannot import Python, so its YAML restates what the contract declares: the enums, as
``accepted_values`` tests. These tests fail when the two drift, naming the YAML, the column and the
difference. The sources' Dagster asset keys are not restated at all: the translator derives them
from the contract (``CxDbtTranslator.get_asset_key``), checked here too.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ingestion import contract as C

ROOT = Path(__file__).resolve().parents[1]
PROJECT = ROOT / "dbt_project"

# mart columns that carry a contract enum through unchanged: (model, column) -> (system, entity, column)
MART_ENUMS = {
    ("fct_orders", "status"): ("erp", "orders", "status"),
    ("fct_support_cases", "priority"): ("crm", "support_cases", "priority"),
    ("fct_invoices", "status"): ("billing", "invoices", "status"),
    ("fct_payments", "status"): ("billing", "payments", "status"),
    ("fct_refunds", "reason"): ("billing", "refunds", "reason"),
}


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The project parsed once, into a target of its own (no database needed)."""
    from dbt.cli.main import dbtRunner

    tmp = tmp_path_factory.mktemp("parity")
    result = dbtRunner().invoke(["parse", "--project-dir", str(PROJECT), "--profiles-dir", str(PROJECT),
                                 "--target-path", str(tmp / "target"), "--log-path", str(tmp / "logs"),
                                 "--no-partial-parse", "--quiet"])
    assert result.success, result.exception
    return json.loads((tmp / "target" / "manifest.json").read_text(encoding="utf-8"))


def accepted_values(manifest: dict) -> dict[tuple[str, str], list[tuple[str, list[str]]]]:
    """(model, column) -> [(YAML file, values)] of every enumeration a test accepts on a model column: dbt's
    `accepted_values` on a column, and each column of a model's `accepted_values_columns` (its enumerations in one
    test, macros/tests/generic_tests.sql)."""
    found: dict[tuple[str, str], list[tuple[str, list[str]]]] = {}
    for node in manifest["nodes"].values():
        meta = node.get("test_metadata") or {}
        if node["resource_type"] != "test" or meta.get("name") not in ("accepted_values", "accepted_values_columns"):
            continue
        model = (node.get("attached_node") or "").split(".")[-1]
        kwargs = meta.get("kwargs") or {}
        if meta["name"] == "accepted_values_columns":
            columns = dict(kwargs["columns"])
        else:
            columns = {node.get("column_name") or kwargs.get("column_name"): kwargs["values"]}
        for column, values in columns.items():
            found.setdefault((model, column), []).append((node["original_file_path"], list(values)))
    return found


def test_the_enumerations_of_a_model_are_read_from_its_one_test(manifest: dict) -> None:
    """`accepted_values` above sees a model's `accepted_values_columns` test column by column (the staging models
    hold theirs so): stg_erp__orders' two enumerations, with the contract's values, from its one test."""
    tests = accepted_values(manifest)
    orders = C.ENTITIES[("erp", "orders")]
    for column in ("sales_channel", "status"):
        ((path, values),) = tests[("stg_erp__orders", column)]
        assert path.endswith("stg_erp__orders.yml") and values == list(orders.column(column).enum)


def staging_entity(model: str) -> tuple[str, str] | None:
    match = re.fullmatch(r"stg_([a-z]+)__([a-z_]+)", model)
    return (match[1], match[2]) if match else None


def difference(yaml_values: list[str], enum: tuple[str, ...]) -> str:
    missing = [v for v in enum if v not in yaml_values]
    extra = [v for v in yaml_values if v not in enum]
    dupes = sorted({v for v in yaml_values if yaml_values.count(v) > 1})
    return "; ".join(part for part in (
        f"missing {missing}" if missing else "", f"not in the contract {extra}" if extra else "",
        f"repeated {dupes}" if dupes else "") if part)


def test_staging_accepted_values_equal_the_contract_enums(manifest: dict) -> None:
    tests = accepted_values(manifest)
    problems = []
    # every enum column of the contract has exactly one accepted_values test, with the contract's values
    for (system, entity), e in C.ENTITIES.items():
        model = f"stg_{system}__{entity}"
        for column in (c for c in e.columns if c.enum):
            found = tests.get((model, column.name), [])
            if not found:
                problems.append(f"{model}.{column.name}: no accepted_values test for the contract enum "
                                f"{list(column.enum)} (dbt_project/models/staging/{model}.yml)")
            elif len(found) > 1:
                problems.append(f"{model}.{column.name}: {len(found)} accepted_values tests ({found[0][0]})")
            for path, values in found:
                if diff := difference(values, column.enum):
                    problems.append(f"{path}: {model}.{column.name} differs from {system}.{entity}.{column.name} "
                                    f"in ingestion/contract.py: {diff}")
    # and no staging accepted_values test restates something the contract does not declare
    for (model, column), found in tests.items():
        key = staging_entity(model)
        if key is None:
            continue
        declared = C.ENTITIES.get(key)
        enum = declared.column(column).enum if declared and column in declared.column_names else None
        if enum is None:
            problems.append(f"{found[0][0]}: {model}.{column} has an accepted_values test but the contract "
                            "declares no enum for it")
    assert not problems, "\n".join(problems)


def test_mart_accepted_values_equal_the_contract_enums(manifest: dict) -> None:
    tests = accepted_values(manifest)
    problems = []
    for (model, column), (system, entity, source_column) in MART_ENUMS.items():
        enum = C.ENTITIES[(system, entity)].column(source_column).enum
        found = tests.get((model, column), [])
        if not found:
            problems.append(f"{model}.{column}: no accepted_values test for {system}.{entity}.{source_column}")
        for path, values in found:
            if diff := difference(values, enum):
                problems.append(f"{path}: {model}.{column} differs from {system}.{entity}.{source_column} "
                                f"in ingestion/contract.py: {diff}")
    assert not problems, "\n".join(problems)


def test_score_bands_span_the_contract_scales() -> None:
    """macros/kpi.sql score_bands: each survey scale as ingestion/contract.py SCALES declares it."""
    text = (PROJECT / "macros" / "kpi.sql").read_text(encoding="utf-8")
    bands = {t: (int(lo), int(hi), int(top), int(bottom)) for t, lo, hi, top, bottom in re.findall(
        r"'(\w+)': \{'min': (\d+), 'max': (\d+), 'top': (\d+), 'bottom': (\d+)\}", text)}
    assert set(bands) == set(C.SURVEY_TYPES) == set(C.SCALES)
    for survey_type, (lo, hi, top, bottom) in bands.items():
        assert (lo, hi) == C.SCALES[survey_type], (
            f"score_bands {survey_type}: {lo}-{hi}, contract {C.SCALES[survey_type]}")
        assert lo <= bottom < top <= hi, f"score_bands {survey_type}: bottom {bottom}, top {top}"


def translator_key(props: dict):  # noqa: ANN201
    from orchestration.assets.warehouse import translator
    return translator.get_asset_key(props)


def test_sources_are_the_contract_entities_and_their_raw_assets(manifest: dict) -> None:
    from orchestration.assets.ingestion import ingest_assets, raw_key
    from orchestration.assets.warehouse import translator

    sources = {(s["source_name"], s["name"]): s for s in manifest["sources"].values()}
    audits = {("ingestion", f"{system}_load_audit"): system for system in C.AUDITED_SYSTEMS}
    for (source, name), system in audits.items():  # the load audits: the raw assets land_<system> writes too
        props = sources.pop((source, name))
        assert translator_key(props) == raw_key(system, C.LOAD_AUDIT)
    assert set(sources) == set(C.ENTITIES), (
        f"models/staging/_sources.yml: missing {sorted(set(C.ENTITIES) - set(sources))}, "
        f"not in the contract {sorted(set(sources) - set(C.ENTITIES))}")
    landed = {key for assets in ingest_assets for key in assets.keys}
    for (system, entity), props in sources.items():
        # the key is derived, never written: a hand-written one would be silently ignored
        assert "asset_key" not in (props.get("meta") or {}).get("dagster", {}), (
            f"{props['original_file_path']}: {system}.{entity} writes meta.dagster.asset_key; "
            "CxDbtTranslator derives it from the contract")
        key = translator.get_asset_key(props)
        assert key == raw_key(system, entity) and key in landed, f"{system}.{entity} -> {key.to_user_string()}"


def test_dbt_assets_depend_on_the_landed_raw_assets() -> None:
    """One lineage graph: the dbt assets' upstream keys are exactly the raw assets ingestion lands."""
    from orchestration.assets.ingestion import ingest_assets
    from orchestration.assets.warehouse import cx_dbt

    landed = {key for assets in ingest_assets for key in assets.keys}
    upstream = {dep.asset_key for spec in cx_dbt.specs for dep in spec.deps} - set(cx_dbt.keys)
    assert upstream == landed, (f"not landed: {sorted(k.to_user_string() for k in upstream - landed)}; "
                                f"landed, not read by dbt: {sorted(k.to_user_string() for k in landed - upstream)}")
