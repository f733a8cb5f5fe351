"""The nightly run through Dagster: ingest -> dbt -> checks -> publish, in-process.

* three nights run green, and re-running night two reproduces night two's marts exactly;
* an empty survey extract (responses collapsing to zero) is bad news, not a wrong number: the
  night is published, with the warning in the served data-health record (wrong numbers that block
  the publish: tests/test_gates.py);
* a reader querying the published file in a loop never errors or sees a partial state while
  several publishes happen.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pytest
from click.testing import CliRunner

from expectations import health
from ingestion import contract as C
from orchestration.cli import _report, main
from orchestration.definitions import defs
from orchestration.night import VERIFY_SOURCE
from orchestration.publish import publish, served_as_of
from orchestration.warehouse import ARTIFACTS
from simulator import GeneratorConfig, generate

START = dt.date(2026, 10, 12)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("nightly")
    generate(GeneratorConfig(customers=3_000, days=4, start=START, seed=21), data / "landing")
    return data


@pytest.fixture(scope="module")
def three_nights(data_dir: Path) -> Iterator[tuple[dg.DagsterInstance, dict]]:
    """Nights one to three, run once for the module: (instance, marts after each night)."""
    with pytest.MonkeyPatch.context() as mp, dg.instance_for_test() as instance:
        mp.setenv("CX_DATA_DIR", str(data_dir))
        snapshots = {}
        for day in [START + dt.timedelta(days=i) for i in range(3)]:
            ok, problems, checks = nightly(instance, day)
            assert ok, problems
            assert all(c.passed or c.severity == dg.AssetCheckSeverity.WARN for c in checks)
            assert {c.check_name for c in checks} >= {"kpi_value_in_scale", "response_score_in_scale",
                                                      "order_id_unique", "kpi_n_matches_facts",
                                                      "reconciles_with_manifest", "drop_volume"}
            snapshots[day] = marts(data_dir, day)
        yield instance, snapshots


@pytest.fixture()
def env(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CX_DATA_DIR", str(data_dir))
    return data_dir


def nightly(instance: dg.DagsterInstance, day: dt.date) -> tuple[bool, list[str], list]:
    result = defs.resolve_job_def("nightly").execute_in_process(
        partition_key=day.isoformat(), instance=instance, raise_on_error=False,
        run_config={"loggers": {"console": {"config": {"log_level": "ERROR"}}}})
    return result.success, _report(result, day.isoformat()), result.get_asset_check_evaluations()


def marts(data: Path, as_of: dt.date) -> dict[str, pl.DataFrame]:
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        tables = [r[0] for r in con.execute("select table_name from information_schema.tables "
                                            "where table_schema = 'marts' order by 1").fetchall()]
        out = {}
        for t in tables:
            df = con.sql(f"select * from marts.{t}").pl()
            if t == "kpi_experience_daily":
                df = df.filter(pl.col("kpi_date") <= as_of)
            out[t] = df.sort(df.columns, nulls_last=True)
        return out


def test_three_nights_then_rerun_of_night_two(three_nights: tuple, env: Path) -> None:
    instance, snapshots = three_nights
    night_two = START + dt.timedelta(days=1)
    assert (env / "docs" / "gx" / "index.html").exists()
    with duckdb.connect(str(env / "serving" / "cx.duckdb"), read_only=True) as con:
        assert "dim_customer_pii" not in {r[0] for r in con.execute("show tables").fetchall()}
    ok, problems, _ = nightly(instance, night_two)
    assert ok, problems
    with duckdb.connect(str(env / "serving" / "cx.duckdb"), read_only=True) as con:
        assert con.execute("select distinct as_of from _publication").fetchall() == [(night_two.isoformat(),)]
    again = marts(env, night_two)
    assert again.keys() == snapshots[night_two].keys() and len(again) >= 15
    for table, df in again.items():
        _assert_same(df, snapshots[night_two][table], table)


def test_nights_after_the_first_keep_dbts_parse(three_nights: tuple, env: Path) -> None:
    """The nightly's dbt runs in the data directory's target folder, with the window in its environment
    (docs/orchestration.md): the first night parses the project, the next ones reuse that parse."""
    reparsed, kept = set(), set()  # dbt invocations
    for log in sorted((env / "dbt_target").glob("dbt.log*")):  # dagster-dbt's JSON log lines, rotated
        for line in log.read_text(encoding="utf-8").splitlines():
            if "partial pars" in line or "full parse" in line:
                info = json.loads(line)["info"]
                if "Unable to do partial parsing" in info["msg"] or "Starting full parse" in info["msg"]:
                    reparsed.add(info["invocation_id"])
                elif "skipping partial parsing" in info["msg"] or "no changes found" in info["msg"]:
                    kept.add(info["invocation_id"])
    assert len(kept) >= 2, (kept, reparsed)  # nights two and three
    assert len(reparsed) <= 1, reparsed  # night one at most


def test_a_night_records_its_dbt_tests_from_dbts_events_without_its_artifacts(three_nights: tuple,
                                                                                  env: Path) -> None:
    """A night's dbt writes no artifacts (NIGHTLY_ARGS: --no-write-json) and the step takes each node's result
    from dbt's events (orchestration/warehouse.py node_result): the target folder holds no manifest.json,
    run_results.json or graph.gpickle, and the last night's data-health record counts as many dbt tests, each
    with its result, as its dbt log says the invocation ended (read here from dbt's debug-level NodeFinished, which
    the step never sees)."""
    target = env / "dbt_target"
    assert not [name for name in ARTIFACTS if (target / name).exists()]
    finished: dict[str, list[dict]] = {}  # invocation -> the results of its tests, from dbt's JSON log
    for log in sorted((target).glob("dbt.log*")):
        for line in log.read_text(encoding="utf-8").splitlines():
            event = json.loads(line)  # each node's end twice: its result line, and NodeFinished (debug)
            if event["info"]["name"] != "NodeFinished":
                continue
            unique_id, result = event["data"]["node_info"]["unique_id"], event["data"].get("run_result") or {}
            if unique_id.startswith("test.") and result.get("status"):
                finished.setdefault(event["info"]["invocation_id"], []).append({"unique_id": unique_id,
                                                                                "status": result["status"]})
    last_night = START + dt.timedelta(days=2)
    frame = health.read(env, [last_night]).filter(pl.col("source") == "dbt")
    recorded = frame["subject"].str.extract(r"^(\d+) dbt tests$").cast(pl.Int64).sum()
    ran = [tests for tests in finished.values() if len(tests) == recorded]
    assert recorded > 150 and ran, (recorded, sorted(len(t) for t in finished.values()))
    assert {t["status"] for t in ran[-1]} == {"pass"} and set(frame["status"]) == {"pass"}


def test_a_night_whose_dbt_test_fails_says_why_in_dbts_words(three_nights: tuple, data_dir: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Without run_results.json, a failed dbt test still reads as dbt says it (node_message: the event dbt ends a
    run with): on a copy of the data, two of night one's orders held twice in fct_orders, the re-run of the last
    night built fails its dbt step naming the test, and the data-health record holds the blocking
    `unique` row of fct_orders with dbt's "Got 2 results", and the tests dbt skipped downstream as not passed.
    The orders are of night one, which the re-run does not write: fct_orders' audit is dropped, as after a full
    refresh, so that the night tests it in full (a night's tests read the rows it wrote: macros/night_tests.sql)."""
    copy = tmp_path / "data"
    shutil.copytree(data_dir, copy, symlinks=True)  # serving/parquet is a symlink to the served version
    with duckdb.connect(str(copy / "warehouse.duckdb")) as con:
        # the last night built (night three, or four once the empty-survey test ran), re-run below
        (last_night,) = con.execute("select max(last_drop_date) from marts.fct_orders").fetchone()
        con.execute("insert into marts.fct_orders select * from marts.fct_orders where order_key in "
                    "(select order_key from marts.fct_orders where last_drop_date = ? order by 1 limit 2)", [START])
        con.execute("drop table cx_audit.fct_orders")
    monkeypatch.setenv("CX_DATA_DIR", str(copy))
    with dg.instance_for_test() as instance:
        ok, problems, _ = nightly(instance, last_night)
    assert not ok and any("step cx_dbt failed" in p and "unique_fct_orders_order_key fail" in p
                          for p in problems), problems
    rows = health.read(copy, [last_night]).filter((pl.col("source") == "dbt") & (pl.col("status") == "fail"))
    (row,) = rows.filter((pl.col("check_name") == "unique") & (pl.col("asset") == "fct_orders")).to_dicts()
    assert "unique_fct_orders_order_key: fail Got 2 results, configured to fail if != 0" in row["message"], row
    # dbt skips what reads fct_orders, and the tests of those models: recorded as not passed (their SKIP lines)
    skipped = rows.filter(pl.col("message").str.contains(": skipped"))
    assert "fct_journey_events" in skipped["asset"].to_list(), rows.select("check_name", "asset", "message")


def _verify() -> tuple[int, str]:
    """`cxw verify` in this process (an ephemeral Dagster instance: DAGSTER_HOME unset by the caller)."""
    result = CliRunner().invoke(main, ["verify"], catch_exceptions=False)
    return result.exit_code, result.output


def test_the_verification_finds_a_row_no_nights_test_reads_and_holds_the_nights_until_it_is_fixed(
        three_nights: tuple, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A night's tests of fct_orders read the orders it wrote (macros/night_tests.sql); a row changed outside dbt
    (an order of night one held twice) is only seen by a run over every row. On a copy of the data after the
    nights: the verification (`cxw verify`, the weekly `verify` job) passes on the clean warehouse and records its
    tests for the served date; with the planted row, a re-run of the last night still passes (the gap the
    verification closes), the verification fails naming the test, records and serves it, and drops fct_orders'
    audit, so the next night tests every order and fails, publishing nothing, until the row is fixed. Fixed, the
    next night passes with its audit back, and so does the verification."""
    copy = tmp_path / "data"
    shutil.copytree(data_dir, copy, symlinks=True)
    monkeypatch.setenv("CX_DATA_DIR", str(copy))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    day = served_as_of(copy / "serving")
    warehouse = copy / "warehouse.duckdb"

    def verify_rows(status: str) -> pl.DataFrame:
        rows = health.read(copy, [day]).filter(pl.col("source") == VERIFY_SOURCE)
        return rows.filter(pl.col("status") == status)

    def has_audit() -> bool:
        with duckdb.connect(str(warehouse), read_only=True) as con:
            return bool(con.execute("select count(*) from information_schema.tables where table_schema = 'cx_audit' "
                                    "and table_name = 'fct_orders'").fetchone()[0])

    code, out = _verify()
    assert code == 0 and "no dbt test failed over every row" in out, out
    tests = int(re.search(r"over every row: (\d+) tests", out).group(1))
    assert f"data-health record of {day}" in out, out
    recorded = health.read(copy, [day]).filter(pl.col("source") == VERIFY_SOURCE)
    assert verify_rows("fail").is_empty() and tests > 100
    assert recorded["subject"].str.extract(r"^(\d+) ").cast(pl.Int64).sum() == tests  # every test, a row a group
    with duckdb.connect(str(warehouse)) as con:
        (last_night,) = con.execute("select max(last_drop_date) from marts.fct_orders").fetchone()
        (held,) = con.execute("select min(order_key) from marts.fct_orders where last_drop_date = ?",
                              [START]).fetchone()
        con.execute("insert into marts.fct_orders select * from marts.fct_orders where order_key = ?", [held])
    assert has_audit()
    with dg.instance_for_test() as instance:
        ok, problems, _ = nightly(instance, last_night)
    assert ok, problems  # the night's unique test reads the orders the night wrote: not this one

    code, out = _verify()
    assert code == 1 and "unique_fct_orders_order_key fail" in out and "Got 1 result" in out, out
    (row,) = verify_rows("fail").to_dicts()
    assert (row["check_name"], row["asset"], row["severity"]) == ("unique", "fct_orders", "blocking"), row
    with duckdb.connect(str(copy / "serving" / "cx.duckdb"), read_only=True) as con:  # BI sees it
        assert con.execute("select count(*) from data_health where source = ? and status = 'fail' and asset = "
                           "'fct_orders'", [VERIFY_SOURCE]).fetchone()[0] == 1
    assert not has_audit()
    published = (copy / "serving" / "cx.duckdb").stat().st_mtime_ns
    with dg.instance_for_test() as instance:
        ok, problems, _ = nightly(instance, last_night)
    assert not ok and any("unique_fct_orders_order_key fail" in p for p in problems), problems
    assert not has_audit()  # still every order, until they pass
    with duckdb.connect(str(copy / "serving" / "cx.duckdb"), read_only=True) as con:
        assert con.execute("select count(*) from _publication").fetchone()[0] > 0
    assert (copy / "serving" / "cx.duckdb").stat().st_mtime_ns != published  # only data_health was served anew

    with duckdb.connect(str(warehouse)) as con:  # fixed: one row of the order again
        con.execute("create table main.fixed as select * from marts.fct_orders where order_key = ? limit 1", [held])
        con.execute("delete from marts.fct_orders where order_key = ?", [held])
        con.execute("insert into marts.fct_orders select * from main.fixed")
        con.execute("drop table main.fixed")
    # the marts the nights built over the bad row (mart_customer_360 counted the order twice) are rebuilt by the
    # next night, which tests every order again and passes: that supersedes the verification's failure of the date,
    # which would block its publish otherwise; then every test over every row passes
    with dg.instance_for_test() as instance:
        ok, problems, _ = nightly(instance, last_night)
    assert ok, problems
    assert has_audit() and verify_rows("fail").is_empty() and not verify_rows("pass").is_empty()
    code, out = _verify()
    assert code == 0 and verify_rows("fail").is_empty(), out


def _assert_same(a: pl.DataFrame, b: pl.DataFrame, table: str) -> None:
    """Equal row for row; doubles to 1e-12 relative: DuckDB's parallel sums and standard deviations are not
    bit-reproducible between two runs over the same rows (the order partial states merge in varies)."""
    assert a.columns == b.columns and a.height == b.height, table
    for col in a.columns:
        if a.schema[col] == pl.Float64:
            assert a[col].is_null().to_list() == b[col].is_null().to_list(), (table, col)
            assert a[col].drop_nulls().to_list() == pytest.approx(b[col].drop_nulls().to_list(), rel=1e-12,
                                                                  abs=1e-12), (table, col)
        else:
            assert a[col].to_list() == b[col].to_list(), (table, col)


def test_an_empty_survey_drop_is_published_with_a_warning(three_nights: tuple, env: Path) -> None:
    instance, _ = three_nights
    # night four: the survey tool delivers an empty extract (responses collapse to zero)
    day = START + dt.timedelta(days=3)
    folder = env / "landing" / "survey" / day.isoformat()
    (folder / "responses.jsonl").write_bytes(b"")
    manifest = folder / C.MANIFEST_NAME
    m = json.loads(manifest.read_text())
    m["files"][0].update(rows=0, sha256=hashlib.sha256(b"").hexdigest())
    manifest.write_text(json.dumps(m))
    ok, problems, checks = nightly(instance, day)
    assert ok, problems
    warned = {c.check_name for c in checks if not c.passed and c.severity == dg.AssetCheckSeverity.WARN}
    assert "drop_not_empty" in warned
    assert not [c for c in checks if not c.passed and c.severity == dg.AssetCheckSeverity.ERROR]
    served = env / "serving" / "cx.duckdb"
    with duckdb.connect(str(served), read_only=True) as con:
        assert con.execute("select distinct as_of from _publication").fetchall() == [(day.isoformat(),)]
        rows = con.execute("select check_name, status, message from data_health where business_date = ? "
                           "and subject = 'survey.responses' and status = 'warn'", [day]).fetchall()
        nps_rows = con.execute("select count(*) from kpi_experience_daily where kpi = 'nps' and kpi_date = ?",
                               [day]).fetchone()[0]
    assert ("drop_not_empty", "warn") in {(c, s) for c, s, _ in rows}
    assert any("holds no record" in (m or "") for _, _, m in rows)
    assert nps_rows == 0  # no answers, no NPS cell: BI shows the gap, with its reason beside it


READER = textwrap.dedent("""
    import sys, time, duckdb
    path, seconds = sys.argv[1], float(sys.argv[2])
    deadline, reads, errors = time.time() + seconds, 0, []
    while time.time() < deadline:
        try:
            with duckdb.connect(path, read_only=True) as con:
                expected = dict(con.execute("select table_name, row_count from _publication").fetchall())
                for table, rows in expected.items():
                    if rows is None:  # a view (no stored rows: orchestration/publish.py)
                        continue
                    got = con.execute(f'select count(*) from "{table}"').fetchone()[0]
                    if got != rows:
                        errors.append(f"{table}: {got} rows, publication says {rows}")
                reads += 1
        except Exception as exc:  # noqa: BLE001 - every error counts
            errors.append(repr(exc))
    print(reads, len(errors))
    for e in errors[:5]:
        print(e)
""")


def test_readers_never_see_a_partial_publish(env: Path, tmp_path: Path) -> None:
    warehouse = env / "warehouse.duckdb"
    serving = tmp_path / "serving"
    publish(warehouse, serving, as_of="first")
    reader = subprocess.Popen([sys.executable, "-c", READER, str(serving / "cx.duckdb"), "8"],
                              stdout=subprocess.PIPE, text=True)
    for i in range(5):
        publish(warehouse, serving, as_of=f"publish-{i}")
    out, _ = reader.communicate(timeout=60)
    reads, errors = (int(x) for x in out.splitlines()[0].split())
    assert errors == 0, out
    assert reads > 5
    with duckdb.connect(str(serving / "cx.duckdb"), read_only=True) as con:
        assert con.execute("select distinct as_of from _publication").fetchall() == [("publish-4",)]
    versions = sorted(p.name for p in (serving / "parquet_versions").iterdir())
    # publishes back to back: the versions replaced less than PARQUET_GRACE_SECONDS ago stay for readers
    assert 2 <= len(versions) <= 6 and (serving / "parquet").resolve().name == versions[-1]
    assert {p.stem for p in (serving / "parquet").iterdir()} >= {"kpi_experience_daily", "fct_orders"}
