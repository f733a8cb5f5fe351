"""Smoke run of the benchmark harness at a tiny scale: every stage runs in its own process on the
same generated data, the five measures are reported, and the compared stages did the same work.
No timing assertions: times at this scale mean nothing."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest

from benchmarks import harness
from benchmarks.__main__ import main


def test_the_harness_measures_all_five_at_tiny_scale(tmp_path: Path) -> None:
    results = tmp_path / "RESULTS.md"
    assert main(["--scale", "tiny", "--workdir", str(tmp_path / "work"), "--record", "--results", str(results)]) == 0

    text = results.read_text(encoding="utf-8")
    for row in ("| 0 | generate", "| 1 | ingestion", "| 2 | full `dbt build`", "| 2b |", "| 3 | nightly run",
                "| 3c | the next night with nothing new", "| 4 | Dagster"):
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
    assert res["nightly_bare_full"]["last"]["kpi_rows"] == res["nightly_dagster"]["last"]["kpi_rows"]
    # the floor's night: the bare night first (its KPI rows kept), then the next window's build with every test
    nothing = res["nightly_nothing"]["last"]
    assert nothing["kpi_rows"] >= res["nightly_bare"]["last"]["kpi_rows"] and nothing["night_before_seconds"] > 0
    assert nothing["dbt"]["tests"] == res["nightly_bare"]["last"]["dbt"]["tests"]
    # the bare run of the job's work ran the job's steps, under the same names
    assert set(res["nightly_bare_full"]["steps"]) == set(res["nightly_dagster"]["steps"])
    assert res["dbt_full_build"]["last"]["tests"] > 100
    # every stage reports its own peak memory, and the ratios are computable
    for stage in ("generate", "ingest_ours", "ingest_bare", "dbt_full_build", "dbt_kpi_only", "handwritten_sql",
                  "nightly_bare", "nightly_nothing", "nightly_bare_full", "nightly_dagster"):
        assert res[stage]["peak_rss_mib"] > 0, stage
    assert set(harness.ratios(res)) >= {"ingestion", "build", "incremental", "night_floor", "dagster",
                                        "dagster_dbt_step", "dagster_equal_work", harness.STEP_RATIO + harness.DBT_STEP}
    assert harness.DBT_STEP in res["nightly_dagster"]["last"]["steps"]
    assert "its dbt step" in text and "against the same work bare" in text
    # both nights record where their publish spent its time (the serving asset's metadata, Publication.summary)
    for stage in ("nightly_bare_full", "nightly_dagster"):
        spent = res[stage]["last"]["publication"]["seconds_by_part"]
        assert {"fingerprint", "parquet"} <= set(spent) and all(t >= 0 for t in spent.values()), spent
        assert res[stage]["last"]["publication"]["slowest_tables"], stage
    assert "Its publish: " in text
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


def test_a_scale_leaves_measures_out_runs_them_in_its_order_and_a_cut_run_renders(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Scale L's shape at tiny size, within a memory limit the build cannot meet: ingestion interleaved with bare
    polars, the full build (failed within the limit, recorded, then built within the default), one bare night on
    that build (no copy of the warehouse, within the default limit), the hand-written script last."""
    monkeypatch.setenv(harness.MEMORY_ENV, "1MB")
    scale = dataclasses.replace(harness.SCALES["L"], customers=harness.SCALES["tiny"].customers,
                                days=harness.SCALES["tiny"].days)
    logs: list[str] = []
    res = harness.run(scale, tmp_path / "work", log=logs.append)
    ran = [line.strip().split(" ...")[0] for line in logs if " ..." in line]
    assert ran == ["generate", "ingest_bare", "ingest_ours", "dbt_full_build", "dbt_full_build", "nightly_bare",
                   "handwritten_sql", "handwritten_sql"]
    # the memory target is the full build's: the night runs within the default limit
    assert res["nights_memory_limit"] == harness.DEFAULT_MEMORY_LIMIT
    assert any(harness.DEFAULT_MEMORY_LIMIT in line for line in logs if line.strip().startswith("nightly_bare"))
    assert "nightly_dagster" not in res and "nightly_bare_full" not in res and "dbt_kpi_only" not in res
    # the build that ran out is on record: the limit, where it stopped, what it reached; the re-run within the
    # default limit is the build measured, and the night ran on top of it
    failed = res["dbt_full_build" + harness.LIMITED]
    assert failed["memory_limit"] == "1MB" and failed["seconds"] > 0 and failed["peak_rss_mib"] > 0
    assert "memory" in failed["error"].lower(), failed["error"]
    assert any(harness.DEFAULT_MEMORY_LIMIT in line for line in logs if line.strip().startswith("dbt_full_build"))
    assert res["nightly_bare"]["last"]["kpi_rows"] >= res["dbt_full_build"]["last"]["kpi_rows"] > 0
    assert not (tmp_path / "work" / "L" / "history.duckdb").exists()
    assert res["ingest_bare"]["last"]["rows"] == res["ingest_ours"]["last"]["rows"] == res["rows"] > 0
    assert res["handwritten_sql"]["last"]["kpi_rows"] == res["dbt_full_build"]["last"]["kpi_rows"] > 0
    assert set(harness.ratios(res)) == {"ingestion", "build", "incremental"}
    text = harness.render(res)
    assert "| 3 | nightly run" in text and "| 4 |" not in text and "the Dagster night" in text
    assert "| 2m | full `dbt build` within memory_limit=1MB | **failed** after" in text
    assert "| 2m | hand-written SQL within memory_limit=1MB | **failed** after" in text
    monkeypatch.delenv(harness.MEMORY_ENV)
    # every stage's figures were saved as they came
    work = tmp_path / "work" / "L"
    assert json.loads((work / "partial.json").read_text(encoding="utf-8"))["ingest_bare"] == res["ingest_bare"]
    # the drops are reused with the generation figures that describe them
    again = harness.run(dataclasses.replace(scale, measures=("ingest",)), tmp_path / "work", reuse_landing=True,
                        log=logs.append)
    assert again["generate"] == res["generate"]

    # a night that runs out of memory (as L's did within 12 GB): recorded with its error, not raised, and rendered.
    # The build the harness requires before a night is stood in for by the build above (its figures): the night
    # then runs on an empty warehouse and runs out of memory at its first model all the same, and the test saves a
    # second full build (about 40 s of CI)
    real_stage = harness.run_stage

    def built_above(name: str, data: Path, *args: object, **kwargs: object) -> dict:
        if name != "dbt_full_build":
            return real_stage(name, data, *args, **kwargs)
        duckdb.connect(str(data / "warehouse.duckdb")).close()  # an empty warehouse
        return dict(res["dbt_full_build"]["last"])

    monkeypatch.setattr(harness, "run_stage", built_above)
    before = len(logs)
    monkeypatch.setenv(harness.MEMORY_ENV, "12GB")
    monkeypatch.setattr(harness, "DEFAULT_MEMORY_LIMIT", "1MB")  # the nights' limit
    night = harness.run(dataclasses.replace(scale, measures=("ingest", "build", "nightly")), tmp_path / "work",
                        reuse_landing=True, log=logs.append)
    monkeypatch.setattr(harness, "run_stage", real_stage)
    ran = [line.strip() for line in logs[before:] if " ..." in line]
    assert ran == ["ingest_ours ...", f"nightly_bare ... ({harness.MEMORY_ENV}=1MB)"]  # no second build
    failed = night["nightly_bare" + harness.FAILED]
    assert "nightly_bare" not in night and failed["memory_limit"] == "1MB" and failed["seconds"] > 0
    assert "Out of Memory Error" in failed["error"] and failed["peak_rss_mib"] > 0
    text = harness.render(night)
    assert (f"| 3 | nightly run, one new day on {scale.days - 1} days of history (bare) within memory_limit=1MB "
            "| **failed** after") in text
    assert ": Out of Memory Error: " in text and "the Dagster night" in text and "nights (bare" not in text

    # under a reduced limit, only running out of memory is the memory target's failure: any other error ends the run
    builds: list[object] = []

    def broken(name: str, *args: object, **kwargs: object) -> dict:
        if name == "dbt_full_build":
            builds.append(kwargs.get("env"))
            raise harness.StageError("Catalog Error: Table with name x does not exist!", seconds=1.0, peak_rss_mib=1.0)
        return real_stage(name, *args, **kwargs)

    monkeypatch.setattr(harness, "run_stage", broken)
    with pytest.raises(harness.StageError, match="Catalog Error"):
        harness.run(dataclasses.replace(scale, measures=("ingest", "build")), tmp_path / "work", reuse_landing=True,
                    log=logs.append)
    assert builds == [None]  # not retried within the default limit, and not recorded as the memory target's miss
    assert "dbt_full_build" + harness.LIMITED not in json.loads((work / "partial.json").read_text(encoding="utf-8"))
    monkeypatch.setattr(harness, "run_stage", real_stage)
    monkeypatch.delenv(harness.MEMORY_ENV)

    # a run cut short after ingestion: rendered and recorded with what it has, the rest named as not measured
    cut = {k: v for k, v in res.items() if k not in ("dbt_full_build", "handwritten_sql", "ingest_bare",
                                                      "nightly_bare") and not k.endswith(harness.LIMITED)}
    (tmp_path / "cut.json").write_text(json.dumps(cut), encoding="utf-8")
    results = tmp_path / "RESULTS.md"
    assert main(["--render", str(tmp_path / "cut.json"), "--record", "--results", str(results)]) == 0
    text = results.read_text(encoding="utf-8")
    assert "| 0 | generate" in text and "| 1 | ingestion of every drop" in text
    assert "| 2 |" not in text and "| 3 |" not in text
    assert ("Not measured in this run: bare polars ingestion, full build, hand-written SQL, "
            "`dbt run -s +kpi_experience_daily`, nights (bare and Dagster).") in text


@pytest.mark.parametrize(("measures", "message"), [
    ("ingest,tea", "unknown tea"), ("build", "must include ingest"), ("ingest,nightly", "nightly needs build"),
    ("ingest,nightly,build", "nightly needs build")])
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


def _stage(seconds: float, wall: float, rss: float = 100.0, **last: object) -> dict:
    return {"seconds": seconds, "wall_seconds": wall, "peak_rss_mib": rss, "runs": 1, "all_seconds": [seconds],
            "last": {"seconds": seconds, **last}}


def test_row_4_compares_the_job_with_the_same_work_bare_step_by_step() -> None:
    """A hand-computed case: the target's ratio is the job's seconds over the bare run of its whole work
    (``nightly_bare_full``), each step's ratio beside it, and the ratios against the ingest + dbt night kept."""
    bare_steps = {"land_crm": 0.5, "cx_dbt": 50.0, "quality_gate": 4.0, "cx_analytics": 10.0,
                  "serving__cx_duckdb": 15.5}  # 80 s: nothing outside the steps
    job_steps = {"land_crm": 1.0, "cx_dbt": 60.0, "quality_gate": 4.0, "cx_analytics": 12.0,
                 "serving__cx_duckdb": 16.0}  # 93 s of the job's 100 s: 7 s outside the steps
    res = {
        "scale": {"name": "M", "customers": 100_000, "days": 365}, "date": "2026-12-01",
        "machine": {"machine": "x86_64", "cores": 2, "cpu": "cpu", "mem_gib": 24, "python": "3.11",
                    "versions": {"dagster": "1.13"}},
        "duckdb_settings": {"threads": "2"}, "first_day": "2025-11-01", "last_day": "2026-10-31",
        "landing_bytes": 2e9, "rows": 1_000, "repeat": 2, "build_repeat": 1, "total_seconds": 600,
        "dbt_full_build": _stage(85.0, 90.0, models=49, tests=440),
        "nightly_bare": _stage(50.0, 52.0, ingest_seconds=1.0, dbt_seconds=49.0, dbt={}),
        "nightly_bare_full": {**_stage(80.0, 84.0, steps=bare_steps), "steps": bare_steps},
        "nightly_dagster": {**_stage(100.0, 110.0, steps=job_steps), "steps": job_steps},
    }
    r = harness.ratios(res)
    assert r["dagster_equal_work"] == pytest.approx(1.25)  # 100 / 80
    assert r["dagster_equal_work_process"] == pytest.approx(110 / 84)
    assert r[harness.STEP_RATIO + "cx_dbt"] == pytest.approx(1.2)  # 60 / 50
    assert r[harness.STEP_RATIO + "land_crm"] == pytest.approx(2.0)
    assert r[harness.STEP_RATIO + "quality_gate"] == pytest.approx(1.0)
    assert r[harness.STEP_RATIO + "serving__cx_duckdb"] == pytest.approx(16 / 15.5)
    # the figures against the ingest + dbt night are kept
    assert r["dagster"] == pytest.approx(110 / 52) and r["dagster_work"] == pytest.approx(2.0)
    assert r["dagster_same_work"] == pytest.approx((100 - 4 - 16) / 50)
    assert r["dagster_dbt_step"] == pytest.approx(60 / 49)
    assert harness.outside_steps(res["nightly_dagster"]) == pytest.approx(7.0)

    (row,) = [line for line in harness.render(res).splitlines() if line.startswith("| 4 |")]
    assert "against the same work bare (`nightly_bare_full`" in row
    assert "**1.25×** (1.31× process)" in row
    assert "cx_dbt 60.0 / 50.0 s 1.20×; serving__cx_duckdb 16.0 / 15.5 s 1.03×; cx_analytics 12.0 / 10.0 s 1.20×" in row
    assert "land_crm 1.0 / 0.5 s 2.00×" in row and "outside the steps 7.0 / 0.0 s" in row
    assert "2.12× process, 2.00× work, 1.60× without GX and publish; its dbt step 1.22×" in row
    assert harness.TARGETS["dagster"] in row and "same work bare" in harness.TARGETS["dagster"]

    # results without the bare run of the job's work render row 4 as before
    del res["nightly_bare_full"]
    assert "dagster_equal_work" not in harness.ratios(res)
    (row,) = [line for line in harness.render(res).splitlines() if line.startswith("| 4 |")]
    assert "2.12× (2.00× work; 1.60× without GX and publish, 20.0 s; its dbt step 1.22×" in row


def test_a_nights_steps_are_the_medians_of_its_runs() -> None:
    runs = [{"seconds": s, "wall_seconds": s, "peak_rss_mib": 1.0, "steps": {"cx_dbt": s, "land_crm": 1.0}}
            for s in (10.0, 30.0, 20.0)]
    assert harness._summary(runs)["steps"] == {"cx_dbt": 20.0, "land_crm": 1.0}
    assert "steps" not in harness._summary([{"seconds": 1.0, "wall_seconds": 1.0, "peak_rss_mib": 1.0}])


def test_a_nights_parts_are_the_medians_of_its_runs_not_the_last_runs() -> None:
    """Hand-computed, from S's run of 2026-12-04 17:43: three nights of 20.9, 17.0 and 27.6 s printed as
    "20.89 s (ingest 0.2 s, dbt 27.4 s)", the parts of the last, slowest run beside the median. Each part is
    the median over the runs (a dbt dict one level deep too), and rows 3, 3c and the dbt step's ratio use
    them; results recorded before keep their last run's parts, said as such."""
    def night(seconds: float, dbt: float, models: float) -> dict:
        return {"seconds": seconds, "wall_seconds": seconds + 1, "peak_rss_mib": 600.0, "ingest_seconds": 0.2,
                "dbt_seconds": dbt, "kpi_rows": 4734, "dbt": {"models": 50, "model_seconds": models},
                "slowest": [["kpi_experience_daily", 1.0]], "ok": True, "steps": {"cx_dbt": dbt}}

    runs = [night(20.9, 20.7, 10.0), night(17.0, 16.8, 14.0), night(27.6, 27.4, 14.5)]
    summary = harness._summary(runs)
    assert summary["seconds"] == 20.9 and summary["last"] == runs[-1]
    assert summary["parts"] == {"seconds": 20.9, "wall_seconds": 21.9, "peak_rss_mib": 600.0, "ingest_seconds": 0.2,
                                "dbt_seconds": 20.7, "kpi_rows": 4734, "dbt": {"models": 50, "model_seconds": 14.0}}
    assert summary["steps"] == {"cx_dbt": 20.7}  # the steps' medians are held once, as before
    res = _night_run("S", 10_000, 30, 20.9)
    res["nightly_bare"] = summary
    res["nightly_nothing"] = summary
    res["nightly_dagster"] = {**_stage(30.0, 31.0, steps={"cx_dbt": 24.84}), "steps": {"cx_dbt": 24.84}}
    rows = {line.split(" |")[0]: line for line in harness.render(res).splitlines() if line.startswith("| 3")}
    assert "| 20.90 s (ingest 0.2 s, dbt 20.7 s) |" in rows["| 3"]
    assert "| 20.90 s (models 14.0 s + tests 0.0 s summed) |" in rows["| 3c"]
    assert harness.ratios(res)["dagster_dbt_step"] == pytest.approx(24.84 / 20.7)
    # results recorded before: the last run's parts, said so
    del res["nightly_bare"]["parts"]
    (row,) = [line for line in harness.render(res).splitlines() if line.startswith("| 3 |")]
    assert "| 20.90 s (its last run: ingest 0.2 s, dbt 27.4 s) |" in row


def test_a_scale_without_the_disk_it_needs_is_refused_before_any_stage(tmp_path: Path) -> None:
    """Scale L ran out of disk hours in (DuckDB's spill beside 30 GB of drops): a scale's disk need is checked
    first, in proportion to customers x days when they are overridden."""
    exabyte = harness.Scale("huge", 300, 4, 1, 1, disk_gb=(("drops", 1e9),))
    with pytest.raises(harness.DiskError, match=r"scale huge needs ~1,000,000,000 GB of free disk under .*huge"):
        harness.run(exabyte, tmp_path)
    assert not (tmp_path / "huge" / "landing").exists(), "refused after generating"
    # L's 100 GB at 10 customers x 2 days is a few kB: the check passes
    small_l = dataclasses.replace(harness.SCALES["L"], customers=10, days=2)
    harness.check_disk(small_l, tmp_path, reuse_landing=False)
    assert sum(gb for _part, gb in harness.SCALES["L"].disk_gb) == 100


def test_the_disk_a_run_needs_is_that_of_its_measures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """L's ingestion against bare polars needs its drops and two copies of them (44 GB), not the warehouse's
    spill (100 GB in all): a machine with 60 GB free can measure it."""
    L = harness.SCALES["L"]
    ingestion = dataclasses.replace(L, measures=("ingest", "bare"))
    assert ingestion.disk_need_gb() == {"drops": 32, "raw": 5, "bare": 7}
    assert dataclasses.replace(L, measures=("ingest",)).disk_need_gb() == {"drops": 32, "raw": 5}
    assert sum(dataclasses.replace(L, measures=("ingest", "build")).disk_need_gb().values()) == 93
    free = shutil.disk_usage(tmp_path)._replace(free=60 * 10**9)
    monkeypatch.setattr(harness.shutil, "disk_usage", lambda _path: free)
    harness.check_disk(ingestion, tmp_path, reuse_landing=False)
    with pytest.raises(harness.DiskError, match=r"needs ~100 GB .*\(drops 32, raw and quarantine zones 5, "
                                                r"bare polars' copy 7, warehouse file and DuckDB's spill 56;"):
        harness.check_disk(L, tmp_path, reuse_landing=False)
    # drops reused from an earlier run count as available: 60 GB free beside 45 GB of them is enough for L
    landing = tmp_path / "landing"
    landing.mkdir()
    with (landing / "drops.bin").open("wb") as fh:
        fh.truncate(45 * 10**9)  # sparse: its size counts, not its blocks
    harness.check_disk(L, tmp_path, reuse_landing=True)


def _night_run(name: str, customers: int, days: int, night_s: float, cpu: str = "cpu") -> dict:
    return {"scale": {"name": name, "customers": customers, "days": days}, "date": "2026-12-01",
            "machine": {"machine": "x86_64", "cores": 2, "cpu": cpu, "mem_gib": 24, "python": "3.11",
                        "versions": {"dagster": "1.13"}},
            "duckdb_settings": {"threads": "2", "memory_limit": "12GB", "temp_directory": f"/tmp/{name}"},
            "first_day": "2025-11-01", "last_day": "2026-10-31", "landing_bytes": 2e9, "rows": 1_000, "repeat": 2,
            "build_repeat": 1, "total_seconds": 600, "dbt_full_build": _stage(80.0, 81.0, models=49, tests=440),
            "nightly_bare": _stage(night_s, night_s + 1, rss=300.0, ingest_seconds=1.0, dbt_seconds=night_s - 1,
                                   dbt={})}


def test_row_3b_compares_the_night_with_a_smaller_scales_night_on_the_same_machine(tmp_path: Path) -> None:
    """Hand-computed: M's night 45 s against S's 15 s is 3.00x (target 1.5x); a reference from another machine,
    another DuckDB setting, a scale not smaller or without a night is refused, before a run and at render."""
    m, s = _night_run("M", 100_000, 365, 45.0), _night_run("S", 10_000, 30, 15.0)
    m["night_reference"] = harness.night_reference(m, s)
    assert harness.ratios(m)["night_growth"] == pytest.approx(3.0)
    (row,) = [line for line in harness.render(m).splitlines() if line.startswith("| 3b |")]
    assert "night of scale S (10,000 customers × 30 days; harness run of 2026-12-01, same machine)" in row
    assert "| 45.00 s | S's night 15.00 s | 3.00× |" in row and harness.TARGETS["night_growth"] in row
    assert "1.5×" in harness.TARGETS["night_growth"]
    del m["night_reference"]
    assert "night_growth" not in harness.ratios(m)
    assert not [line for line in harness.render(m).splitlines() if line.startswith("| 3b |")]

    refusals = [(_night_run("S", 10_000, 30, 15.0, cpu="other"), "another machine (cpu"),
                (_night_run("M2", 100_000, 365, 40.0), "not smaller than M"),
                ({**s, "nightly_bare": None}, "has no bare night"),
                ({**s, "duckdb_settings": {"threads": "1", "memory_limit": "12GB"}}, "other DuckDB settings")]
    for other, message in refusals:
        with pytest.raises(ValueError, match=re.escape(message)):
            harness.night_reference(m, other)
    # the command line refuses it before measuring anything, and at render
    ref = tmp_path / "S.json"
    ref.write_text(json.dumps(refusals[0][0]))
    res = tmp_path / "M.json"
    res.write_text(json.dumps(m))
    for argv in (["--render", str(res), "--night-reference", str(ref)],
                 ["--scale", "tiny", "--workdir", str(tmp_path / "w"), "--night-reference", str(ref)]):
        with pytest.raises(SystemExit):
            main(argv)
    assert not (tmp_path / "w").exists()
    ref.write_text(json.dumps(s))
    assert main(["--render", str(res), "--night-reference", str(ref)]) == 0


def test_a_stages_peak_rss_sums_the_workers_it_starts() -> None:
    """Two children holding 120 MiB each at the same time: the tree's peak counts both (the ingestion workers'
    memory), while the stage's own high-water mark stays far below one of them. In a fresh process, as a stage
    runs: this test's worker may have grown past 120 MiB on earlier tests."""
    script = textwrap.dedent("""
        import json, subprocess, sys
        from benchmarks.stage import TreeRss
        hold = "import time; b = bytearray(120 * 2**20); print('ok', flush=True); time.sleep(1.2)"
        with TreeRss(interval=0.05) as rss:
            procs = [subprocess.Popen([sys.executable, "-c", hold], stdout=subprocess.PIPE) for _ in range(2)]
            for proc in procs:
                assert proc.stdout.readline().strip() == b"ok"  # both hold their memory now
            for proc in procs:
                proc.stdout.close()
                assert proc.wait() == 0
        print(json.dumps(rss.figures()))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1])
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    assert figures["self_peak_rss_mib"] < 120, figures
    # both children at once (one alone, with this process, would stay under self + 120)
    assert figures["peak_rss_mib"] >= 2 * 120 and figures["peak_rss_mib"] > figures["self_peak_rss_mib"] + 120, figures


def test_two_runs_recorded_in_one_minute_keep_both_result_files(tmp_path: Path) -> None:
    """``--render a.json --record`` then ``--render b.json --record`` within a minute: each run's raw figures
    are kept (the second file used to replace the first, named by the minute alone)."""
    recorded = sorted((Path(harness.__file__).parent / "results").glob("*-M.json"))[-1]
    res = json.loads(recorded.read_text(encoding="utf-8"))
    other = {**res, "total_seconds": -1.0}
    harness.record(res, tmp_path / "RESULTS.md")
    harness.record(other, tmp_path / "RESULTS.md")
    files = sorted((tmp_path / "results").glob("*.json"))
    assert [json.loads(f.read_text(encoding="utf-8"))["total_seconds"] for f in files] \
        in ([res["total_seconds"], -1.0], [-1.0, res["total_seconds"]])
    assert (tmp_path / "RESULTS.md").read_text(encoding="utf-8").count("## ") == 2


def test_the_floors_night_is_refused_when_the_next_day_has_drops(tmp_path: Path) -> None:
    """Row 3c times a night that no drop lands in: a landing that holds a drop of the day after ``--day`` is
    refused, naming the system, before the night before it lands or builds anything."""
    import argparse
    import datetime as dt

    from benchmarks.stage import STAGES

    day = dt.date(2026, 10, 31)
    landing, data = tmp_path / "landing", tmp_path / "data"
    (landing / "erp" / "2026-11-01").mkdir(parents=True)
    data.mkdir()
    with pytest.raises(RuntimeError, match=r"drops of 2026-11-01 \(erp\)"):
        STAGES["nightly_nothing"](argparse.Namespace(landing=landing, data=data, day=day))
    assert not list(data.iterdir())  # nothing landed, nothing built
