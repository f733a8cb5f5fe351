"""Smoke run of the benchmark harness at a tiny scale: every stage runs in its own process on the
same generated data, the five measures are reported, and the compared stages did the same work.
No timing assertions: times at this scale mean nothing."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from benchmarks import harness
from benchmarks.__main__ import main


def test_the_harness_measures_all_five_at_tiny_scale(tmp_path: Path) -> None:
    results = tmp_path / "RESULTS.md"
    assert main(["--scale", "tiny", "--workdir", str(tmp_path / "work"), "--record", "--results", str(results)]) == 0

    text = results.read_text(encoding="utf-8")
    for row in ("| 0 | generate", "| 1 | ingestion", "| 2 | full `dbt build`", "| 2b |", "| 3 | nightly run",
                "| 4 | Dagster"):
        assert row in text, row
    (raw,) = (tmp_path / "results").glob("*-tiny.json")
    res = json.loads(raw.read_text(encoding="utf-8"))

    truth = json.loads((tmp_path / "work" / "tiny" / "landing" / "truth.json").read_text(encoding="utf-8"))
    assert res["rows"] == sum(truth["volumes"]["records_delivered"].values()) > 0
    # the compared stages did the same work
    assert res["ingest_bare"]["last"]["rows"] == res["ingest_ours"]["last"]["rows"]
    assert res["handwritten_sql"]["last"]["kpi_rows"] == res["dbt_full_build"]["last"]["kpi_rows"] > 0
    assert res["dbt_kpi_only"]["last"]["kpi_rows"] == res["dbt_full_build"]["last"]["kpi_rows"]
    assert res["nightly_dagster"]["last"]["kpi_rows"] == res["nightly_bare"]["last"]["kpi_rows"] > 0
    assert res["dbt_full_build"]["last"]["tests"] > 100
    # every stage reports its own peak memory, and the ratios are computable
    for stage in ("generate", "ingest_ours", "ingest_bare", "dbt_full_build", "dbt_kpi_only", "handwritten_sql",
                  "nightly_bare", "nightly_dagster"):
        assert res[stage]["peak_rss_mib"] > 0, stage
    assert set(harness.ratios(res)) >= {"ingestion", "build", "incremental", "dagster", "dagster_dbt_step"}
    assert harness.DBT_STEP in res["nightly_dagster"]["last"]["steps"]
    assert "its dbt step" in text
    assert res["duckdb_settings"]["threads"] and res["duckdb_settings"]["memory_limit"]


def test_duckdb_settings_follow_the_environment(monkeypatch, tmp_path: Path) -> None:  # noqa: ANN001
    from ingestion import settings

    for _key, (env, _default) in settings.DUCKDB_SETTINGS_ENV.items():
        monkeypatch.delenv(env, raising=False)
    monkeypatch.setenv("CX_DATA_DIR", str(tmp_path))
    assert settings.duckdb_settings() == {"threads": "2", "memory_limit": "12GB", "preserve_insertion_order": "false",
                                          "temp_directory": str(tmp_path / "duckdb_tmp")}
    monkeypatch.setenv("CX_DUCKDB_THREADS", "8")
    monkeypatch.setenv("CX_DUCKDB_MEMORY_LIMIT", "20GB")
    monkeypatch.setenv("CX_DUCKDB_TEMP_DIRECTORY", "/scratch/spill")
    got = settings.duckdb_settings()
    assert (got["threads"], got["memory_limit"], got["temp_directory"]) == ("8", "20GB", "/scratch/spill")


def test_dbt_profile_reads_the_same_duckdb_settings() -> None:
    """dbt's profile cannot import Python: it must name the same variables with the same defaults."""
    from ingestion import settings

    profile = (Path(__file__).resolve().parents[1] / "dbt_project" / "profiles.yml").read_text(encoding="utf-8")
    for key, (env, default) in settings.DUCKDB_SETTINGS_ENV.items():
        expected = f"env_var('{env}', '{default}')" if default is not None else f"env_var('{env}', "
        assert f"{key}: \"{{{{ {expected}" in profile, (key, expected)


def test_a_scale_leaves_measures_out_runs_them_in_its_order_and_a_cut_run_renders(tmp_path: Path) -> None:
    """Scale L's shape at tiny size: no nights, the full build before the references, bare polars last."""
    scale = dataclasses.replace(harness.SCALES["tiny"], measures=("ingest", "build", "handwritten", "bare"))
    logs: list[str] = []
    res = harness.run(scale, tmp_path / "work", log=logs.append)
    ran = [line.strip().removesuffix(" ...") for line in logs if line.endswith(" ...")]
    assert ran == ["generate", "ingest_ours", "dbt_full_build", "handwritten_sql", "ingest_bare"]
    assert "nightly_bare" not in res and "dbt_kpi_only" not in res
    assert res["ingest_bare"]["last"]["rows"] == res["ingest_ours"]["last"]["rows"] == res["rows"] > 0
    assert res["handwritten_sql"]["last"]["kpi_rows"] == res["dbt_full_build"]["last"]["kpi_rows"] > 0
    assert set(harness.ratios(res)) == {"ingestion", "build"}
    # every stage's figures were saved as they came
    work = tmp_path / "work" / "tiny"
    assert json.loads((work / "partial.json").read_text(encoding="utf-8"))["ingest_bare"] == res["ingest_bare"]
    # the drops are reused with the generation figures that describe them
    again = harness.run(dataclasses.replace(scale, measures=("ingest",)), tmp_path / "work", reuse_landing=True,
                        log=logs.append)
    assert again["generate"] == res["generate"]

    # a run cut short after ingestion: rendered and recorded with what it has, the rest named as not measured
    cut = {k: v for k, v in res.items() if k not in ("dbt_full_build", "handwritten_sql", "ingest_bare")}
    (tmp_path / "cut.json").write_text(json.dumps(cut), encoding="utf-8")
    results = tmp_path / "RESULTS.md"
    assert main(["--render", str(tmp_path / "cut.json"), "--record", "--results", str(results)]) == 0
    text = results.read_text(encoding="utf-8")
    assert "| 0 | generate" in text and "| 1 | ingestion of every drop" in text
    assert "| 2 |" not in text and "| 3 |" not in text
    assert ("Not measured in this run: bare polars ingestion, full build, hand-written SQL, "
            "`dbt run -s +kpi_experience_daily`, nights (bare and Dagster).") in text


@pytest.mark.parametrize(("measures", "message"), [
    ("ingest,tea", "unknown tea"), ("build", "must include ingest"), ("ingest,nightly", "nightly needs build")])
def test_measures_are_checked(measures: str, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--scale", "tiny", "--measures", measures])
    assert message in capsys.readouterr().err


def test_gate_growth_times_two_nights_and_the_gx_suites_read_only_the_window(tmp_path: Path) -> None:
    """``benchmarks.gate_growth`` at tiny size (days 4 and 14; no dbt tests, to stay quick): it runs, the
    GX suites of each night read exactly that night's rows, whatever the history, and the JSON is saved."""
    import datetime as dt

    import duckdb

    from benchmarks import gate_growth

    results = tmp_path / "RESULTS.md"
    results.write_text("# Benchmark results\n", encoding="utf-8")
    work = tmp_path / "work"
    assert gate_growth.main(["--customers", "300", "--days", "14", "--early", "4", "--repeat", "1", "--skip-dbt-tests",
                             "--work", str(work), "--record", "--results", str(results)]) == 0
    (raw,) = (tmp_path / "results").glob("*-gate-300x14.json")
    res = json.loads(raw.read_text(encoding="utf-8"))
    assert "gate growth, scale 300x14" in results.read_text(encoding="utf-8")
    assert set(res["ratios"]) >= {"gate", "gx"}

    window = {"kpi_experience_daily": "kpi_date = $1", "fct_survey_responses": "response_date = $1",
              "fct_orders": "ordered_local_date = $1 or delivered_local_date = $1"}
    early, late = res["nights"]["early"], res["nights"]["late"]
    assert late["build"]["mart_rows"]["fct_orders"] > 2 * early["build"]["mart_rows"]["fct_orders"]  # more history
    for night in (early, late):
        day = dt.date.fromisoformat(night["day"])
        with duckdb.connect(str(work / f"day{night['n']:03d}" / "warehouse.duckdb"), read_only=True) as con:
            for suite, where in window.items():
                n = con.execute(f"select count(*) from marts.{suite} where {where}", [day]).fetchone()[0]
                assert night["gate"]["rows_read"][suite] == n, (night["n"], suite)
        assert night["gate"]["rows_read"]["kpi_experience_daily"] > 0
        # DuckDB's profile of the suites' reads: they scan at least the rows they keep
        assert sum(night["gate"]["rows_scanned"]["gx"].values()) >= sum(night["gate"]["rows_read"].values())
        assert night["gate"]["seconds"] > 0 and night["gate"]["peak_rss_mib"] > 0
