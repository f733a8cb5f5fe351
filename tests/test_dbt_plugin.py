"""What orchestration/dbt_plugin.py sets in each DuckDB session dbt opens: the key secret and the session's
share of memory for intermediates (DuckDB's per-session ``operator_memory_limit``)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from ingestion.disk import DiskFull
from ingestion.keys import load_secret
from orchestration import dbt_plugin
from orchestration.warehouse import DbtError, run_dbt


@pytest.mark.parametrize(("text", "expected"), [
    ("5GB", 5 * 10**9), ("4.6 GiB", int(4.6 * 2**30)), ("1500MiB", 1500 * 2**20), ("512 bytes", 512),
    ("2kb", 2000), ("1 TiB", 2**40), ("", None), ("80%", None), ("GB", None), ("5 parsecs", None),
    ("-1", None),
])
def test_size_bytes_reads_duckdb_sizes_only(text: str, expected: int | None) -> None:
    assert dbt_plugin.size_bytes(text) == expected


def test_operator_share_auto_none_explicit_and_malformed() -> None:
    # auto: 80 % of the limit, split between the sessions, in whole KiB
    assert dbt_plugin.operator_share("auto", "5GB", 2) == f"{int(5 * 10**9 * 0.8 / 2) // 1024}KiB"
    assert dbt_plugin.operator_share("AUTO", "10GB", 4) == f"{int(10 * 10**9 * 0.8 / 4) // 1024}KiB"
    assert dbt_plugin.operator_share("", "10GB", 1) == f"{8 * 10**9 // 1024}KiB", "unset is auto"
    assert dbt_plugin.operator_share("auto", "10GB", 0) == dbt_plugin.operator_share("auto", "10GB", 1)
    # a limit DuckDB does not report as a size: nothing to share, DuckDB's default stays
    assert dbt_plugin.operator_share("auto", "unlimited", 2) is None
    assert dbt_plugin.operator_share("none", "5GB", 2) is None
    assert dbt_plugin.operator_share(" None ", "5GB", 2) is None
    assert dbt_plugin.operator_share("1500MiB", "5GB", 2) == "1500MiB"
    with pytest.raises(ValueError, match="CX_DUCKDB_OPERATOR_MEMORY_LIMIT='half'"):
        dbt_plugin.operator_share("half", "5GB", 2)


def _session_settings(con: duckdb.DuckDBPyConnection) -> tuple[str | None, str, str]:
    return con.execute("select current_setting('operator_memory_limit'), current_setting('memory_limit'), "
                       "getvariable('cx_key_secret')").fetchone()


def test_the_plugin_sets_each_session_it_is_handed() -> None:
    plugin = dbt_plugin.Plugin("cx", {"operator_memory_limit": "auto", "sessions": 2})
    # a machine whose local zone is not UTC (DuckDB's default zone is the machine's)
    con = duckdb.connect(config={"memory_limit": "2GB"})
    con.execute("set global TimeZone = 'Europe/Paris'")
    cursor = con.cursor()
    plugin.configure_connection(con)
    plugin.configure_cursor(cursor)
    for session in (con, cursor):
        share, limit, secret = _session_settings(session)
        assert secret == load_secret()
        assert session.execute("select current_setting('TimeZone')").fetchone()[0] == "UTC"
        # DuckDB reports sizes rounded to 0.1 of a unit: compare in bytes, within that rounding
        expected = dbt_plugin.size_bytes(limit) * 0.8 / 2
        assert abs(dbt_plugin.size_bytes(share) - expected) <= 0.05 * 2**30
    other = con.cursor()  # a session the plugin was not handed keeps DuckDB's default
    assert _session_settings(other)[0] is None
    assert other.execute("select current_setting('TimeZone')").fetchone()[0] == "Europe/Paris"
    plugin = dbt_plugin.Plugin("cx", {"operator_memory_limit": "none", "sessions": 2})
    plugin.configure_cursor(other)
    assert _session_settings(other)[0] is None
    with pytest.raises(ValueError, match="CX_DUCKDB_OPERATOR_MEMORY_LIMIT"):
        dbt_plugin.Plugin("cx", {"operator_memory_limit": "lots", "sessions": 2})


SHOW = "select current_setting('operator_memory_limit') as share, current_setting('memory_limit') as lim"


def _dbt_session(data: Path, *args: str) -> tuple[str | None, str]:
    results = run_dbt(["show", *args, "--inline", SHOW], data)
    row = results[0].agate_table.rows[0]
    return row["share"], row["lim"]


def test_dbt_sessions_get_their_share_through_the_profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Through profiles.yml as every dbt call runs it: the share follows CX_DUCKDB_MEMORY_LIMIT and dbt's threads
    (two by default, CX_DBT_THREADS, `--threads N`); CX_DUCKDB_OPERATOR_MEMORY_LIMIT reaches the plugin (a
    malformed value fails dbt, named). A size and `none`: the tests above, on real sessions (each dbt call here
    parses the project again, ~10 s)."""
    monkeypatch.setenv("CX_DUCKDB_MEMORY_LIMIT", "1GB")
    share, limit = _dbt_session(tmp_path)
    # both reported rounded to 0.1 MiB
    assert abs(dbt_plugin.size_bytes(share) - dbt_plugin.size_bytes(limit) * 0.8 / 2) <= 0.1 * 2**20
    # `dbt --threads 5` overrides the profile's threads: five sessions share the same 80 %
    share, limit = _dbt_session(tmp_path, "--threads", "5")
    assert abs(dbt_plugin.size_bytes(share) - dbt_plugin.size_bytes(limit) * 0.8 / 5) <= 0.1 * 2**20
    # CX_DBT_THREADS sets the profile's threads, and the sessions' shares with them: one thread takes all 80 %
    monkeypatch.setenv("CX_DBT_THREADS", "1")
    share, limit = _dbt_session(tmp_path)
    assert abs(dbt_plugin.size_bytes(share) - dbt_plugin.size_bytes(limit) * 0.8) <= 0.1 * 2**20
    concurrency = re.findall(r"Concurrency: (\d+) threads", (tmp_path / "dbt_logs" / "dbt.log").read_text("utf-8"))
    assert concurrency[-3:] == ["2", "5", "1"], concurrency
    monkeypatch.delenv("CX_DBT_THREADS")
    monkeypatch.setenv("CX_DUCKDB_OPERATOR_MEMORY_LIMIT", "lots")
    with pytest.raises(DbtError, match="CX_DUCKDB_OPERATOR_MEMORY_LIMIT='lots'"):
        _dbt_session(tmp_path)


@pytest.fixture
def machine_in_paris(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The local zone of this process is Europe/Paris (DuckDB's default zone is the machine's, read when a database
    is opened), then back to what it was."""
    monkeypatch.setenv("TZ", "Europe/Paris")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_dbt_sessions_run_in_utc_on_a_machine_in_paris(tmp_path: Path, machine_in_paris: None) -> None:  # noqa: ARG001
    """Through profiles.yml and the plugin as every dbt call runs: dbt's sessions are in UTC whatever the machine's
    zone, so dbt-duckdb's dateadd and datediff of timestamps mean the same as on Spark. Before, on a machine in
    Paris, two hours across the change to summer time were three and a day before it 23 hours."""
    assert duckdb.connect().execute("select current_setting('TimeZone')").fetchone()[0] == "Europe/Paris"
    start, end = "timestamptz '2026-03-29 00:30:00+00'", "timestamptz '2026-03-29 02:30:00+00'"
    day_later = "{{ dbt.dateadd('day', 1, \"timestamptz '2026-03-28 12:00:00+00'\") }}"
    results = run_dbt(["show", "--inline",
                       f"select current_setting('TimeZone') as tz, {{{{ hours_between(\"{start}\", \"{end}\") }}}} "
                       f"as hours, epoch_us({day_later}) - epoch_us(timestamptz '2026-03-28 12:00:00+00') as day_us"],
                      tmp_path)
    row = results[0].agate_table.rows[0]
    assert (row["tz"], float(row["hours"]), int(row["day_us"])) == ("UTC", 2.0, 24 * 3600 * 10**6)


# --- a dbt failure for lack of memory or disk says what to set (orchestration/warehouse.py, resource_advice) ----

def test_a_build_out_of_memory_names_the_limit_and_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A real DuckDB out-of-memory failure through run_dbt: the error keeps DuckDB's words and adds the limit in
    force with what to do."""
    monkeypatch.setenv("CX_DUCKDB_MEMORY_LIMIT", "20MB")
    heavy = "select count(*) as n from (select distinct range::varchar || 'x' as s from range(5000000)) as d"
    with pytest.raises(DbtError, match=r"Out of Memory Error") as err:
        run_dbt(["show", "--inline", heavy], tmp_path)
    said = str(err.value)
    assert "memory_limit=20MB (CX_DUCKDB_MEMORY_LIMIT)" in said and "raise it" in said, said


def test_resource_advice_for_each_kind_of_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from orchestration.warehouse import resource_advice

    monkeypatch.setenv("CX_DUCKDB_MEMORY_LIMIT", "5GB")
    for message in ("fct_orders error (Out of Memory Error: failed to allocate data of size 1.5 MiB "
                    "(4.6 GiB/4.6 GiB used))", "fct_invoices error (failed to pin block of size 256.0 KiB "
                    "(4.6 GiB/4.6 GiB used))"):
        advice = resource_advice(message, tmp_path)
        assert "memory_limit=5GB (CX_DUCKDB_MEMORY_LIMIT)" in advice and "dbt's 2 thread(s)" in advice, advice
        assert "set CX_DBT_THREADS=1" in advice, advice
    monkeypatch.setenv("CX_DBT_THREADS", "1")  # already one model at a time: only the limit is left to raise
    advice = resource_advice("fct_orders error (Out of Memory Error: failed to allocate data)", tmp_path)
    assert "dbt's 1 thread(s)" in advice and "set CX_DBT_THREADS=1" not in advice and "then re-run" in advice, advice
    monkeypatch.delenv("CX_DBT_THREADS")
    full = ('fct_journey_events error (IO Error: Could not write file "/x/duckdb_tmp/duckdb_temp_storage-0.tmp": '
            "No space left on device)")
    advice = resource_advice(full, tmp_path)
    assert f"spills to {tmp_path / 'duckdb_tmp'} (" in advice and " GB free there" in advice, advice
    # as the project's own DiskFull words it (the health record, beside dbt's failure)
    assert "CX_DUCKDB_TEMP_DIRECTORY" in resource_advice(str(DiskFull(tmp_path / "health" / "x.parquet")), tmp_path)
    monkeypatch.setenv("CX_DUCKDB_TEMP_DIRECTORY", str(tmp_path / "big" / "tmp"))
    assert f"spills to {tmp_path / 'big' / 'tmp'} (" in resource_advice(full, tmp_path)
    # anything else (a test's failure, a broken key, SQL) gets no advice: the error says it all
    for message in ("unique_fct_orders_order_key fail 3", "Binder Error: column x not found", ""):
        assert resource_advice(message, tmp_path) is None
