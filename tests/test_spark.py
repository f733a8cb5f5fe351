"""The whole project on Spark, through a real Spark Thrift server, against the same project on DuckDB.

One generated window (across the fall-back night and a month end) is ingested once; the raw zone is
built by dbt on DuckDB and on a local Spark Thrift server (``cxw spark start``'s server, on a free port,
its warehouse and metastore in the test's data directory). ``dbt build`` on Spark runs every model,
seed, data test and unit test. Then every mart must be non-empty and equal on both engines: the same
columns and types, the same rows (order ignored), keys, counts and dates exactly, floats to 1e-9
relative; customer keys are the keyed hash of ingestion/keys.py on both. Both builds are as of the
window's day before the last (PREV). The incremental path is compared next, on the same Spark warehouse:
Spark runs the last day as a night (the KPI mart's date-partition overwrite, the delete+insert swaps),
and must equal DuckDB's full build through the last day. The parity tests read Spark's state as of PREV,
so they run before the night (file order; each checks it). The first drop carries an answer dated years
before the window, the only observation of its date, which the last day moves into the window: the KPI
mart's night must leave that date with no partition.

Bad configuration (no server, Java missing, Spark missing) gives messages naming what to do. The builds
are marked ``spark``: ``make test`` runs them (first, beside the other worker's files; the step's times
are printed with ``-s`` and written to ``spark_timings.txt``), ``make test-spark`` runs this file alone
(docs/spark.md, "Parity").
"""

from __future__ import annotations

import datetime as dt
import math
import os
import re
import shutil
import socket
import time
from pathlib import Path

import duckdb
import polars as pl
import pytest

from ingestion import contract as C
from ingestion import settings
from ingestion.keys import load_secret, pseudonym
from ingestion.load import Zones, load_drop
from orchestration import spark_mirror
from orchestration.spark_server import (
    LocalServer,
    SparkError,
    default_spark_home,
    find_java,
    is_listening,
    require_server,
)
from orchestration.warehouse import engine_target, run_dbt, target_path, window_vars
from simulator import GeneratorConfig, generate

from . import drop_edit

START = dt.date(2026, 10, 22)  # the fall-back night (25th) and the end of October inside the window
DAYS = 14
LAST = START + dt.timedelta(days=DAYS - 1)  # the night the incremental test runs
PREV = LAST - dt.timedelta(days=1)  # the as_of of both full builds the parity tests compare
ANCIENT = dt.date(2023, 6, 15)  # the date of an answer in the first drop, and of no other record
CFG = GeneratorConfig(customers=600, days=DAYS, start=START, seed=23)
SCHEMAS = ("marts", "restricted")
FLOAT_REL = 1e-9
TIMINGS: dict[str, float] = {}
NIGHT: dict[str, bool] = {"ran": False}  # set once Spark's warehouse holds the last night


def _before_the_night() -> None:
    """The parity tests compare Spark's warehouse as of PREV: the incremental test's night changes it."""
    assert not NIGHT["ran"], ("Spark's warehouse already holds the last night: the parity tests run before "
                              "test_incremental_runs_on_spark_equal_the_full_build (keep the file's order)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ingest(data: Path, landing: Path) -> None:
    shutil.copytree(landing, data / "landing")
    zones = Zones(data / "landing", data / "raw", data / "quarantine")
    for i in range(DAYS):
        for system in C.SYSTEMS:
            load_drop(zones, system, START + dt.timedelta(days=i))


@pytest.fixture(scope="module")
def landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("spark_landing")
    generate(CFG, root)
    _plant_ancient_answer(root)
    return root


def _plant_ancient_answer(landing: Path) -> None:
    """A copy of an NPS answer, dated ANCIENT, in the first drop (a company's initial load), and its new
    version on the last day, answered on the window's fifth day: the date ANCIENT loses every observation
    on the last night (the KPI mart writes it as a placeholder and drops its partition after the run)."""
    template = next(r for d in sorted(p for p in (landing / "survey").iterdir() if p.is_dir())
                    for r in drop_edit.read(d, "survey", "responses")[1]
                    if r["survey_type"] == "nps" and r["touchpoint"] == "relationship"
                    and any(a.get("question_id") == "nps" and a.get("value") == 10 for a in r["answers"]))

    def at(day: str, hour: int) -> dict:
        return {"sent_at": f"{day}T{hour - 1:02d}:00:00Z", "responded_at": f"{day}T{hour:02d}:00:00Z"}

    answer = template | {"response_id": "r-ancient-1"} | at(ANCIENT.isoformat(), 10)
    moved = answer | at((START + dt.timedelta(days=4)).isoformat(), 10)
    for day, version in ((START, answer), (START + dt.timedelta(days=DAYS - 1), moved)):
        drop = drop_edit.folder(landing, "survey", day)
        _, rows = drop_edit.read(drop, "survey", "responses")
        drop_edit.write(drop, "survey", "responses", None, [*rows, version])


@pytest.fixture(scope="module")
def spark_data(landing: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch_module):
    """A data directory with its raw zone and a running local Thrift server (stopped after the module)."""
    data = tmp_path_factory.mktemp("spark_data")
    _ingest(data, landing)
    monkeypatch_module.setenv("CX_DATA_DIR", str(data))
    monkeypatch_module.setenv("CX_SPARK_PORT", str(_free_port()))
    monkeypatch_module.setenv("CX_SPARK_DRIVER_MEMORY", "2g")
    # a property of no effect, to see CX_SPARK_CONF reach the server (test_cx_spark_conf_reaches_the_server)
    monkeypatch_module.setenv("CX_SPARK_CONF", "spark.cx.conf_probe=on")
    server = LocalServer.from_settings(data)
    started = time.perf_counter()
    server.start(echo=lambda _m: None)
    TIMINGS["server start"] = time.perf_counter() - started
    try:
        yield data
    finally:
        server.stop(echo=lambda _m: None)
        _record_timings(data)


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def _record_timings(data: Path) -> None:
    lines = [f"{name}: {seconds:.0f} s" for name, seconds in TIMINGS.items()]
    (data / "spark_timings.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\nSpark step:", "; ".join(lines))


def _timed(name: str, fn, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
    started = time.perf_counter()
    try:
        return fn(*args, **kwargs)
    finally:
        TIMINGS[name] = time.perf_counter() - started


def _manifest(data: Path) -> dict:
    import json

    # the DuckDB build's manifest: its contract types are the DuckDB spellings the mirror casts to
    return json.loads((target_path(data, engine_target("duckdb")) / "manifest.json").read_text(encoding="utf-8"))


def _duckdb_build(duck: Path, landing: Path, as_of: dt.date, label: str) -> Path:
    """Every drop of the window landed into ``duck``, then DuckDB's models and seeds as of ``as_of`` (its data and
    unit tests run in make test's test_warehouse.py)."""
    _ingest(duck, landing)
    _timed(label, run_dbt, ["build", "--exclude-resource-type", "test", "--exclude-resource-type", "unit_test"],
           data_dir=duck, dbt_vars={"as_of": as_of.isoformat()}, engine="duckdb")
    return duck


@pytest.fixture(scope="module")
def built(spark_data: Path, landing: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(DuckDB warehouse, DuckDB file reading what Spark built), both full builds as of PREV. Spark's build
    is also the history the incremental test's night runs on (no second build of it)."""
    duck = _duckdb_build(tmp_path_factory.mktemp("duck_data"), landing, PREV, "duckdb build")
    # every model, seed, data test and unit test, on Spark
    _timed("spark build (all tests)", run_dbt, ["build"], data_dir=spark_data, dbt_vars={"as_of": PREV.isoformat()},
           engine="spark")
    mirror = spark_data / "spark_mirror.duckdb"
    spark_mirror.refresh(mirror, LocalServer.from_settings(spark_data).warehouse_dir, _manifest(duck))
    return duck / "warehouse.duckdb", mirror


def _tables(path: Path, views: bool = True) -> dict[str, pl.DataFrame]:
    """Every relation of SCHEMAS; with ``views=False`` (a DuckDB build) not the dbt views: the mirror of
    a Spark build has none (a view holds no files: spark_mirror.spark_tables), and the one the project
    has is compared on its own (test_the_daily_profile_view_is_the_same_on_spark_and_duckdb). On the
    mirror every relation is a view over Spark's files: keep them."""
    kinds = "" if views else " and table_type <> 'VIEW'"
    with duckdb.connect(str(path), read_only=True) as con:
        names = con.execute("select table_schema, table_name from information_schema.tables where table_schema in "
                            f"({', '.join(repr(s) for s in SCHEMAS)}){kinds} order by 1, 2").fetchall()
        return {f"{s}.{t}": con.sql(f'select * from "{s}"."{t}"').pl() for s, t in names}


def _sorted(df: pl.DataFrame) -> pl.DataFrame:
    """Rows in a canonical order: by every non-float column, then the floats to 6 significant digits."""
    floats = [c for c, t in df.schema.items() if t in (pl.Float32, pl.Float64)]
    exact = [c for c in df.columns if c not in floats]
    keys = [pl.col(c).cast(pl.String) for c in exact] + [
        pl.col(c).map_elements(lambda v: f"{v:.6g}", return_dtype=pl.String) for c in floats]
    return df.sort(keys, nulls_last=True) if keys else df


# served columns whose values are the engine's own by design, compared for presence and type only: the
# fingerprints that sum the engine's row hash (macros/keys.sql cx_hash_row), which each engine compares
# only with the one it wrote
ENGINE_OWN = {"marts.fct_customer_stage_transitions": {"journey_fingerprint"},
              "marts.mart_customer_profiles": {"input_hash"},
              "marts.kpi_experience_daily": {"input_hash"}}


def assert_same_table(name: str, a: pl.DataFrame, b: pl.DataFrame) -> None:
    assert sorted(a.columns) == sorted(b.columns), f"{name}: columns differ: {a.columns} vs {b.columns}"
    b = b.select(a.columns)
    assert dict(a.schema) == dict(b.schema), f"{name}: types differ: {a.schema} vs {b.schema}"
    assert a.height == b.height, f"{name}: {a.height} rows on DuckDB, {b.height} on Spark"
    own = ENGINE_OWN.get(name, set())
    a, b = _sorted(a.drop(own)), _sorted(b.drop(own))
    for col in a.columns:
        left, right = a[col].to_list(), b[col].to_list()
        if a.schema[col] in (pl.Float32, pl.Float64):
            bad = [(i, x, y) for i, (x, y) in enumerate(zip(left, right, strict=True))
                   if not ((x is None and y is None) or (x is not None and y is not None
                           and math.isclose(x, y, rel_tol=FLOAT_REL, abs_tol=1e-12)))]
        else:
            bad = [(i, x, y) for i, (x, y) in enumerate(zip(left, right, strict=True)) if x != y]
        assert not bad, f"{name}.{col}: {len(bad)} values differ, first (row, duckdb, spark): {bad[:3]}"


@pytest.mark.spark
def test_every_mart_is_the_same_on_spark_and_duckdb(built: tuple[Path, Path]) -> None:
    _before_the_night()
    duck, spark = built
    a, b = _tables(duck, views=False), _tables(spark)
    assert set(a) == set(b), f"tables only on DuckDB: {set(a) - set(b)}, only on Spark: {set(b) - set(a)}"
    assert len([t for t in a if t.startswith("marts.")]) >= 15
    empty = sorted(t for t, df in a.items() if df.height == 0)
    assert not empty, f"empty on DuckDB (the window proves nothing for them): {empty}"
    for name in sorted(a):
        assert_same_table(name, a[name], b[name])


@pytest.mark.spark
def test_the_daily_profile_view_is_the_same_on_spark_and_duckdb(built: tuple[Path, Path]) -> None:
    """The dbt view mart_customer_profile_daily holds no data, so the mirror has no copy of it; it is read
    through the Thrift server. Its engine-specific part is the day generator (explode_days: Spark's
    explode(sequence()), DuckDB's generate_series), and its input, mart_customer_profiles, is compared
    above: customers per day and profile must be the same on both engines."""
    from pyhive import hive

    _before_the_night()
    duck, _ = built
    sql = ("select cast(profile_date as string) as d, profile, count(*) as n "
           "from marts.mart_customer_profile_daily group by profile_date, profile")
    with hive.connect(host="127.0.0.1", port=int(os.environ["CX_SPARK_PORT"])) as con:
        cursor = con.cursor()
        cursor.execute(sql)
        on_spark = sorted((str(d), p, int(n)) for d, p, n in cursor.fetchall())
        cursor.close()
    with duckdb.connect(str(duck), read_only=True) as con:
        on_duck = sorted((d, p, int(n)) for d, p, n in con.execute(sql).fetchall())
    assert len(on_duck) > 100 and on_spark == on_duck


@pytest.mark.spark
def test_the_views_served_from_a_spark_build_are_duckdbs(spark_data: Path, built: tuple[Path, Path]) -> None:
    """After a Spark build, spark_read_back makes warehouse.duckdb the window onto Spark's tables and
    creates dbt's views in it (dbt run on DuckDB, with the build's as_of): what the publish serves as
    views from a Spark build is what it serves from a DuckDB build."""
    from orchestration.warehouse import spark_read_back

    _before_the_night()
    duck, _ = built
    spark_read_back(spark_data, {"as_of": PREV.isoformat()})
    window = spark_data / "warehouse.duckdb"
    with duckdb.connect(str(window), read_only=True) as con:
        views = {t for (t,) in con.execute("select table_name from information_schema.tables "
                                           "where table_schema = 'marts' and table_type = 'VIEW'").fetchall()}
    with duckdb.connect(str(duck), read_only=True) as con:
        expected = {t for (t,) in con.execute("select table_name from information_schema.tables "
                                              "where table_schema = 'marts' and table_type = 'VIEW'").fetchall()}
    assert {"mart_customer_profile_daily", "mart_customer_timeline"} <= expected <= views  # (the window's tables
    for view in sorted(expected):  # are DuckDB views over Spark's files too)
        assert_same_table(f"marts.{view}", _relation(duck, f"marts.{view}"), _relation(window, f"marts.{view}"))


def _relation(path: Path, name: str) -> pl.DataFrame:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.sql(f"select * from {name}").pl()


@pytest.mark.spark
def test_customer_keys_are_the_keyed_hash_on_both_engines(built: tuple[Path, Path], landing: Path) -> None:
    _before_the_night()
    duck, spark = built
    sql = ("select l.customer_key, i.identifier from restricted.customer_key_link as l "
           "join restricted.int_customer_keys as i on i.customer_key = l.customer_key "
           "where i.identifier like 'crm:%' order by 2")
    with duckdb.connect(str(duck), read_only=True) as con:
        on_duck = con.sql(sql).pl()
    with duckdb.connect(str(spark), read_only=True) as con:
        on_spark = con.sql(sql).pl()
    assert on_duck.height > 100 and on_duck.equals(on_spark)
    with duckdb.connect(str(duck), read_only=True) as con:
        person = dict(con.execute("select identifier, person_id from intermediate.int_identity_resolution").fetchall())
        erased = {p for (p,) in con.execute(
            "select person_id from restricted.int_customer_key_map where is_erased").fetchall()}
    secret = load_secret()
    for key, identifier in on_spark.head(50).iter_rows():
        p = person[identifier]
        assert key == pseudonym("erased-customer" if p in erased else "customer", p, secret)


@pytest.mark.spark
def test_the_key_secret_is_in_no_file_spark_or_dbt_wrote(built: tuple[Path, Path], spark_data: Path) -> None:
    """The secret reaches Spark as a session parameter: not in the server's log, metastore or tables,
    nor in dbt's logs and compiled SQL (the macro reads `${spark.cx.key_secret}`)."""
    secret = load_secret().encode()
    scanned = 0
    for path in spark_data.rglob("*"):
        if path.is_file() and not path.is_symlink():
            scanned += 1
            assert secret not in path.read_bytes(), f"the key secret is in {path}"
    assert scanned > 100 and (spark_data / "spark" / "thriftserver.log").stat().st_size > 0


@pytest.fixture(scope="module")
def duck_last(landing: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """DuckDB's full build through the last day (models and seeds): what Spark's night must equal."""
    duck = _duckdb_build(tmp_path_factory.mktemp("duck_last"), landing, LAST, "duckdb build through the last day")
    return duck / "warehouse.duckdb"


@pytest.mark.spark
def test_incremental_runs_on_spark_equal_the_full_build(spark_data: Path, built: tuple[Path, Path],
                                                        duck_last: Path) -> None:
    """On Spark's full build as of the day before the last (the parity tests' build: every model, the key
    map holding the persons seen through that day), Spark runs the last day as a partition window over the
    key map, the seven incremental facts (fct_orders, fct_support_cases, fct_survey_responses, fct_invoices,
    fct_payments, fct_refunds, fct_subscriptions), fct_journey_events and fct_customer_stage_transitions,
    source_key_link, the KPI mart and mart_customer_profiles, and what they read: the KPI mart (date-partition
    overwrite), the key map, the seven facts, the journey and its transitions, the link and the profiles
    (delete+insert swaps) equal DuckDB's full build through the last day. (Tests ran in the full build:
    `dbt run` here.) Everything the KPI mart reads runs too: its tables (the promise outcomes, the follow-ups)
    hold the day before the last from the full build, and the KPI mart's rows of the last day read them."""
    duck, last = duck_last, LAST
    models = ("+int_customer_key_map +fct_orders +fct_support_cases +fct_survey_responses +fct_invoices "
              "+fct_payments +fct_refunds +fct_subscriptions +fct_customer_stage_transitions +source_key_link "
              "+kpi_experience_daily +mart_customer_profiles")
    from pyhive import hive

    ancient = f"select count(*) from marts.kpi_experience_daily where kpi_date = date '{ANCIENT.isoformat()}'"
    with hive.connect(host="127.0.0.1", port=int(os.environ["CX_SPARK_PORT"])) as con:
        cursor = con.cursor()
        cursor.execute(ancient)
        assert cursor.fetchone()[0] > 0, "the planted answer's date has no cell before the night"
        cursor.close()
    NIGHT["ran"] = True
    _timed("spark incremental night", run_dbt, ["run", "--select", models], data_dir=spark_data,
           dbt_vars=window_vars(last, last + dt.timedelta(days=1)), engine="spark")
    # the night emptied the date ANCIENT: its placeholder was written, then its partition dropped
    with hive.connect(host="127.0.0.1", port=int(os.environ["CX_SPARK_PORT"])) as con:
        cursor = con.cursor()
        cursor.execute(ancient)
        assert cursor.fetchone()[0] == 0, "the emptied date kept cells"
        cursor.execute("show partitions marts.kpi_experience_daily")
        assert not [p for (p,) in cursor.fetchall() if ANCIENT.isoformat() in p], "the emptied date kept a partition"
        # the swaps left none of their own tables (<table>__cx_rows, __cx_new, __cx_old)
        for schema in ("staging", "marts", "restricted"):
            cursor.execute(f"show tables in {schema} like '*__cx_*'")
            assert not cursor.fetchall(), f"a swap left a table in {schema}"
        cursor.close()
    # each swap read the night's rows from the table it wrote them to, never dbt-spark's view of the model's query
    # (Spark runs the query again for each read of the view: docs/spark.md, "Parity")
    swaps = [statement.split(None, 1) for log in sorted((spark_data / "dbt_logs").glob("dbt.log*"))
             for statement in log.read_text(encoding="utf-8", errors="replace").split("create table ")[1:]]
    swaps = [(name, re.split(r"\n(?:\x1b\[0m)?\d\d:\d\d:\d\d", rest, maxsplit=1)[0])  # to the log's next line
             for name, rest in swaps if name.endswith("__cx_new")]
    assert len(swaps) >= 20, [name for name, _ in swaps]
    assert not [name for name, sql in swaps if "__dbt_tmp" in sql or "__cx_rows" not in sql]
    mirror = spark_data / "spark_incremental.duckdb"
    spark_mirror.refresh(mirror, LocalServer.from_settings(spark_data).warehouse_dir, _manifest(duck.parent))
    a, b = _tables(duck, views=False), _tables(mirror)
    first_seen = b["restricted.int_customer_key_map"]["first_seen_as_of"]
    assert (first_seen == last).sum() > 0, "no person first seen on the last day: the swap was not exercised"
    assert (first_seen == last - dt.timedelta(days=1)).sum() > 0
    assert_same_table("marts.kpi_experience_daily", a["marts.kpi_experience_daily"], b["marts.kpi_experience_daily"])
    # fct_orders: the night recomputed orders placed before it (deliveries, returns, refunds), through the swap
    orders = b["marts.fct_orders"]
    older = orders.filter((pl.col("last_drop_date") == last)
                          & (pl.col("ordered_local_date") < last - dt.timedelta(days=1)))
    assert older.height > 0, "the last night changed no older order: the swap was not exercised"
    assert orders["order_key"].is_unique().all(), "the delete+insert swap duplicated an order"
    assert_same_table("marts.fct_orders", a["marts.fct_orders"], orders)
    # the other incremental facts (docs/warehouse.md, "Incremental facts"): the same swap
    for fact, key in (("marts.fct_support_cases", "case_key"), ("marts.fct_survey_responses", "response_key"),
                      ("marts.fct_invoices", "invoice_key"), ("marts.fct_payments", "payment_key"),
                      ("marts.fct_refunds", "refund_key"), ("marts.fct_subscriptions", "subscription_key")):
        assert (b[fact]["last_drop_date"] == last).sum() > 0, f"the last night changed no row of {fact}"
        assert b[fact][key].is_unique().all(), f"the delete+insert swap duplicated a row of {fact}"
        assert_same_table(fact, a[fact], b[fact])
    # the journey (on source_key) and its transitions (on customer_key): the same swap, with the rows of
    # keys that have none now left out (macros/incremental_facts.sql cx_fact_rows)
    events, transitions = b["marts.fct_journey_events"], b["marts.fct_customer_stage_transitions"]
    assert (events["last_drop_date"] == last).sum() > 0, "the last night changed no journey event"
    assert events.filter((pl.col("last_drop_date") == last)
                         & (pl.col("event_date") < last - dt.timedelta(days=1))).height > 0, "no older event"
    assert events["event_id"].is_unique().all(), "the delete+insert swap duplicated an event"
    assert events["last_drop_date"].is_not_null().all() and transitions["last_drop_date"].is_not_null().all()
    assert (transitions["last_drop_date"] == last).sum() > 0, "the last night changed no customer's transitions"
    for table in ("marts.fct_journey_events", "marts.fct_customer_stage_transitions"):
        assert_same_table(table, a[table], b[table])
    # mart_customer_profiles (docs/journey.md, "Incremental profiles"): the customers the night recomputed
    # (new inputs, a change date passed, new customers) replace theirs through the same swap
    profiles = b["marts.mart_customer_profiles"]
    assert profiles.filter(pl.col("valid_from") == last).height > 0, "the last night started no spell"
    assert profiles.select("customer_key", "valid_from").is_unique().all(), "the swap duplicated a spell"
    assert_same_table("marts.mart_customer_profiles", a["marts.mart_customer_profiles"], profiles)
    # source_key_link: the night's keys inserted through the swap, the erased people's rows left out
    link = b["restricted.source_key_link"]
    assert (link["last_drop_date"] == last).sum() > 0, "the last night added no key to source_key_link"
    assert link["source_key"].is_unique().all(), "the delete+insert swap duplicated a key of source_key_link"
    assert_same_table("restricted.source_key_link", a["restricted.source_key_link"], link)
    # The key map: one row per person, and every person of the full build with the same key and erasure.
    # first_seen_as_of is the as_of of the run that first saw the person (every person on a full build).
    # A map run night by night also keeps the persons that a later night merged into another one (their
    # person_id no longer resolves), on both engines: those are left out of the comparison.
    full, nightly = a["restricted.int_customer_key_map"], b["restricted.int_customer_key_map"]
    assert nightly["person_id"].is_unique().all(), "the delete+insert swap duplicated a person"
    kept = nightly.filter(pl.col("person_id").is_in(full["person_id"].implode()))
    assert_same_table("restricted.int_customer_key_map", full.drop("first_seen_as_of"), kept.drop("first_seen_as_of"))


@pytest.mark.spark
def test_cx_spark_conf_reaches_the_server(spark_data: Path) -> None:
    from pyhive import hive

    with hive.connect(host="127.0.0.1", port=int(os.environ["CX_SPARK_PORT"])) as con:
        cursor = con.cursor()
        cursor.execute("set spark.cx.conf_probe")
        assert cursor.fetchall() == [("spark.cx.conf_probe", "on")]
        cursor.execute("set spark.sql.adaptive.enabled")  # the project's default where CX_SPARK_CONF is silent
        assert cursor.fetchall() == [("spark.sql.adaptive.enabled", "false")]
        cursor.close()


def test_cx_spark_conf_comes_after_the_defaults_and_may_not_set_what_the_build_relies_on(tmp_path: Path) -> None:
    conf = (("spark.sql.adaptive.enabled", "true"), ("spark.sql.codegen.wholeStage", "true"))
    home = tmp_path / "home"
    (home / "bin").mkdir(parents=True)
    (home / "bin" / "spark-submit").write_text("")
    command = LocalServer(tmp_path, "127.0.0.1", 1, home, conf=conf).command()
    confs = [command[i + 1] for i, arg in enumerate(command) if arg == "--conf"]
    # spark-submit keeps the last value of a key: the user's come last, just before the primary resource
    assert confs[-2:] == ["spark.sql.adaptive.enabled=true", "spark.sql.codegen.wholeStage=true"]
    assert "spark.sql.adaptive.enabled=false" in confs[:-2] and command[-1] == "spark-internal"
    for key, says in (("spark.sql.session.timeZone", "UTC everywhere"), ("spark.driver.memory",
                                                                          "CX_SPARK_DRIVER_MEMORY"),
                      ("spark.sql.warehouse.dir", "CX_SPARK_WAREHOUSE_DIR")):
        server = LocalServer(tmp_path, "127.0.0.1", 1, home, conf=(*conf, (key, "x")))
        with pytest.raises(SparkError, match=rf"CX_SPARK_CONF may not set {re.escape(key)} \(.*{says}"):
            server.command()
    assert settings.Settings.from_env({"CX_SPARK_CONF": " spark.a=1\tspark.b=x=y "}).spark_conf == (
        ("spark.a", "1"), ("spark.b", "x=y"))
    for raw in ("adaptive=true", "spark.a", "spark.a=", "spark.=1"):
        with pytest.raises(settings.SettingsError, match=r"CX_SPARK_CONF=.* is not a Spark property as key=value"):
            settings.Settings.from_env({"CX_SPARK_CONF": raw})


# --- bad configuration: messages that say what to start, install or set -----------------------------

def test_no_server_names_what_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    port = _free_port()
    with pytest.raises(SparkError, match=rf"No Spark Thrift server answers at 127.0.0.1:{port}.*`cxw spark start`"):
        require_server("127.0.0.1", port)


def test_dbt_on_spark_without_a_server_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CX_SPARK_PORT", str(_free_port()))
    with pytest.raises(SparkError, match="cxw spark start"):
        run_dbt(["build"], data_dir=tmp_path, engine="spark")


def test_java_missing_names_the_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SparkError, match="openjdk-17-jre-headless"):
        find_java()
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "nojava"))
    with pytest.raises(SparkError, match=r"JAVA_HOME=.*nojava has no bin/java"):
        find_java()


def test_spark_missing_names_make_install(tmp_path: Path) -> None:
    server = LocalServer(tmp_path, "127.0.0.1", _free_port(), tmp_path / "no-spark")
    with pytest.raises(SparkError, match="make install.*CX_SPARK_HOME"):
        server.start(echo=lambda _m: None)


def test_port_taken_by_another_process(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        server = LocalServer(tmp_path, "127.0.0.1", port, default_spark_home())
        with pytest.raises(SparkError, match=f"127.0.0.1:{port} is taken by another process.*CX_SPARK_PORT"):
            server.start(echo=lambda _m: None)



def test_start_waits_for_the_listener_and_stop_ends_the_whole_process_group(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The server's life cycle on a stand-in `spark-submit` (a shell wrapper that starts a listening child,
    like Spark's wrapper around the JVM): start returns once the port answers, the pid file records
    the group, stop ends wrapper and child, and a second start of a running server says so."""
    import json
    import sys

    home = tmp_path / "spark-home"
    (home / "bin").mkdir(parents=True)
    (tmp_path / "java" / "bin").mkdir(parents=True)
    (tmp_path / "java" / "bin" / "java").write_text("#!/bin/sh\n")
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "java"))
    port = _free_port()
    # listens after a second, like a JVM that takes its time to start
    listener = (f"import socket, time; time.sleep(1); s = socket.socket(); s.bind(('127.0.0.1', {port})); "
                "s.listen(); time.sleep(600)")
    script = home / "bin" / "spark-submit"
    script.write_text(f"#!/bin/sh\n{sys.executable} -c \"{listener}\" &\nwait\n")
    script.chmod(0o755)
    server = LocalServer(tmp_path / "data", "127.0.0.1", port, home)
    said: list[str] = []
    record = server.start(timeout=30, echo=said.append)
    assert said[-1].startswith(f"Spark Thrift server listening on 127.0.0.1:{port}")
    assert json.loads(server.pid_path.read_text())["pgid"] == record["pid"]
    assert (server.root / "conf" / "log4j2.properties").exists()
    assert server.start(echo=said.append)["pid"] == record["pid"] and "already running" in said[-1]
    assert server.stop(echo=said.append)
    deadline = time.time() + 10
    while time.time() < deadline and is_listening("127.0.0.1", port):
        time.sleep(0.2)
    with pytest.raises(SparkError, match="No Spark Thrift server answers"):
        require_server("127.0.0.1", port)
    assert not server.pid_path.exists() and not server.stop(echo=said.append)
