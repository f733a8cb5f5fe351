"""What BI tools read, read the way they read it: through SQLAlchemy's DuckDB dialect (``duckdb_engine``,
as Superset and notebooks do) on the published ``serving/cx.duckdb``, opened read-only (docs/bi.md).

A small company (generated drops, ingested, ``dbt build`` without tests, the Python analyses, the drops'
data-health rows) is published as a night publishes it. Then, through ``sqlalchemy.inspect`` and the
engine only: every served table and view is listed and read completely, and

* no served column is named like personal data: the restricted models' columns that no served model
  declares (dbt_project/models/marts/restricted/*.yml against the marts' YAML and the analyses'
  schemas) and the landing contract's personal columns (ingestion/contract.py: the columns the
  restricted models hold personal data from, and every identifier of a person or record);
* no served cell holds a personal value the landing files delivered (e-mails, case-insensitively;
  phones; first and last names; cities; every source identifier), nor one the warehouse derived from
  them and keeps in ``restricted`` (E.164 phones, person ids, the source ids behind record keys), nor
  anything shaped like an e-mail or a phone number (tests/reliability/test_privacy.py's patterns);
* the served views are views, readable through SQLAlchemy, and have no Parquet file;
* both read-only spellings docs/bi.md gives (``connect_args``, and Superset's ``?access_mode=read_only``
  URI) open the file and refuse writes.

Column reflection (``Inspector.get_columns``) fails with SQLAlchemy >= 2.0.45 on duckdb_engine 0.17: marked
xfail below; the column names come from the query results, as a SQL editor gets them.

And what people look at, on the same published file (one build for the module): ``cxw report``
(reporting/build.py) makes one offline HTML page of the served marts, opened in Debian's headless
Chromium with every non-file request aborted and recorded (tests/test_data_docs_offline.py's launch):
every chart is drawn, nothing is logged as an error, nothing leaves the file; the numbers in the page's
``data-cell`` cells equal the served marts.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl
import pytest
import sqlalchemy as sa
import yaml
from packaging.version import Version

from analytics import run as A
from expectations import health
from expectations.drops import drop_health
from ingestion import contract as C
from orchestration.publish import HEALTH_TABLE, publish
from orchestration.warehouse import DBT_PROJECT
from reporting import stats
from reporting.build import build_report
from simulator import GeneratorConfig

from .browser import offline_page
from .company import build_models, land, last_day
from .landing import read_entity
from .reliability.test_privacy import CATALOG_IDS, EMAIL, PHONE

# a small company: a few seconds beyond dbt's own start and parse. The churn tables need months of history
# and fct_refunds a refund: they are served empty here, their columns checked all the same
COMPANY = GeneratorConfig(customers=800, days=4, start=dt.date(2026, 10, 12), seed=41)
AS_OF = last_day(COMPANY)
PUBLICATION = "_publication"
EMAIL_ANYWHERE = re.compile(EMAIL.pattern, re.IGNORECASE)
TOKEN = re.compile(r"[\w@.+-]+")
# the views the marts serve (docs/journey.md, docs/warehouse.md)
VIEWS = {"mart_customer_profile_daily", "mart_customer_timeline"}


@dataclass
class Served:
    data: Path
    db: Path


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Served:
    data = tmp_path_factory.mktemp("served_bi")
    rows = []
    land(data, COMPANY, lambda zones, system, day, result: rows.extend(drop_health(zones, system, day, result)))
    build_models(data, AS_OF)
    outputs = A.run_all(data / "warehouse.duckdb", AS_OF)
    assert not [p for o in outputs for p in o.problems]
    publication = publish(data / "warehouse.duckdb", data / "serving", AS_OF.isoformat(),
                          health=health.to_frame(rows, source="ingestion"))
    return Served(data, publication.database)


@contextmanager
def _engine(url: str, **kw: object) -> Iterator[sa.Engine]:
    engine = sa.create_engine(url, **kw)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def engine(served: Served) -> Iterator[sa.Engine]:
    """What a notebook writes: the served file, read-only through ``connect_args``."""
    with _engine(f"duckdb:///{served.db}", connect_args={"read_only": True}) as e:
        yield e


@dataclass
class Relation:
    kind: str  # "table" or "view"
    columns: list[str]
    rows: list[tuple]


@pytest.fixture(scope="module")
def relations(engine: sa.Engine) -> dict[str, Relation]:
    return read_relations(engine)


def read_relations(engine: sa.Engine) -> dict[str, Relation]:
    """Every table and view of schema main, listed by the inspector and read completely."""
    inspector = sa.inspect(engine)
    listed = [(n, "table") for n in inspector.get_table_names(schema="main")]
    listed += [(n, "view") for n in inspector.get_view_names(schema="main")]
    out = {}
    with engine.connect() as con:
        for name, kind in listed:
            result = con.execute(sa.select(sa.text("*")).select_from(sa.table(name, schema="main")))
            out[name] = Relation(kind, list(result.keys()), [tuple(r) for r in result.fetchall()])
    return out


# ---- what personal data is, from the project itself ---------------------------------------------------
def _yaml_columns(files: list[Path]) -> dict[str, set[str]]:
    out = {}
    for f in files:
        for model in yaml.safe_load(f.read_text(encoding="utf-8")).get("models") or []:
            out[model["name"]] = {c["name"] for c in model.get("columns") or []}
    return out


def _served_by_design() -> set[str]:
    """Every column a served relation declares: the marts' YAML, the analyses' schemas, data_health."""
    marts = DBT_PROJECT / "models" / "marts"
    names = set().union(*_yaml_columns(sorted(marts.glob("*.yml"))).values())
    for analysis in A.ANALYSES:
        for schema in A.schemas(analysis).values():
            names |= set(schema)
    return names | set(health.SCHEMA)


def _restricted_columns() -> dict[str, set[str]]:
    return _yaml_columns(sorted((DBT_PROJECT / "models" / "marts" / "restricted").glob("*.yml")))


def _is_identifier(column: str) -> bool:
    """A contract column naming a person or one of their records (tests/reliability/test_privacy.py)."""
    return (column.endswith("_id") or column == "customer_ref") and column not in CATALOG_IDS


def _restricted_only() -> set[str]:
    """The restricted models' columns no served relation declares."""
    return set().union(*_restricted_columns().values()) - _served_by_design()


def _held_from(contract_column: str, restricted_column: str) -> bool:
    """Whether a restricted column holds the contract's column, as delivered or normalized (``phone`` ->
    ``phone_e164``)."""
    return restricted_column == contract_column or restricted_column.startswith(contract_column + "_")


def personal_columns() -> dict[tuple[str, str], set[str]]:
    """The contract's personal columns per (system, entity): those a restricted-only column holds (the
    personal data behind a key), and every identifier of a person or record."""
    restricted_only = _restricted_only()
    out = {}
    for (system, entity), e in C.ENTITIES.items():
        cols = {c.name for c in e.columns if c.type == "str" and (
            _is_identifier(c.name) or any(_held_from(c.name, r) for r in restricted_only))}
        if cols:
            out[(system, entity)] = cols
    return out


def personal_column_names() -> set[str]:
    """Names no served column may have: restricted-only columns, and the contract's personal columns."""
    return _restricted_only() | set().union(*personal_columns().values())


def _restricted_personal(columns: set[str]) -> list[str]:
    """The restricted-only columns of a restricted model that hold personal data or an identifier (not,
    say, ``source_key_link.kind``)."""
    contract = set().union(*personal_columns().values())
    return sorted(c for c in columns & _restricted_only()
                  if _is_identifier(c) or any(_held_from(k, c) for k in contract))


@dataclass
class Personal:
    emails: set[str]  # lower-cased
    exact: set[str]  # a served cell equal to one of these is a leak
    tokens: set[str]  # ... and so is a cell holding one of these as a word (identifiers, phones, hashes)


@pytest.fixture(scope="module")
def personal(served: Served) -> Personal:
    return personal_values(served.data)


def personal_values(data: Path) -> Personal:
    """Every personal value of the landing files (plain polars: tests/landing.py), and the personal values
    the warehouse derived and keeps in ``restricted`` (normalized phones, person ids, source ids)."""
    values: set[str] = set()
    for (system, entity), cols in personal_columns().items():
        df = read_entity(data / "landing", system, entity)
        for c in cols & set(df.columns):
            values |= {str(v) for v in df[c].drop_nulls().unique().to_list() if str(v).strip()}
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        for table, cols in _restricted_columns().items():
            if secret := _restricted_personal(cols):
                frame = con.sql(f"select {', '.join(secret)} from restricted.{table}").pl()
                for c in frame.columns:
                    if frame[c].dtype == pl.String:
                        values |= set(frame[c].drop_nulls().unique().to_list())
    # a person id names its identifier: crm:<CRM id>, email:<the unkeyed e-mail hash>
    values |= {v.split(":", 1)[1] for v in values if ":" in v and "@" not in v}
    emails = {v.lower() for v in values if "@" in v}
    # a word of a served text that is an identifier, a phone or a hash (a word with a digit: names and
    # cities are words of prose too, Wilson as in "Wilson lower bound", so only a whole cell counts for them)
    tokens = {v for v in values if "@" not in v and " " not in v and re.search(r"\d", v)}
    return Personal(emails, values, tokens)


def _strings(value: object) -> Iterator[str]:
    """Every string in a cell, nested ones (lists, structs, maps) included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(k)
            yield from _strings(v)
    elif isinstance(value, list | tuple | set):
        for v in value:
            yield from _strings(v)


def _leak(text: str, personal: Personal) -> str | None:
    if text in personal.exact or text.lower() in personal.emails:
        return "a personal value"
    if EMAIL_ANYWHERE.search(text):
        return "an e-mail address"
    if PHONE.match(text):
        return "a phone number"
    if any(t in personal.tokens or t.lower() in personal.emails for t in TOKEN.findall(text)):
        return "an identifier in a text"
    return None


# ---- the tests ------------------------------------------------------------------------------------------
def test_every_served_relation_is_listed_and_none_is_restricted(served: Served,
                                                                relations: dict[str, Relation]) -> None:
    columns = relations[PUBLICATION].columns
    published = {r[columns.index("table_name")]: r[columns.index("row_count")] for r in relations[PUBLICATION].rows}
    tables = {n for n, r in relations.items() if r.kind == "table"}
    views = {n for n, r in relations.items() if r.kind == "view"}
    # what the publish says it served (views with no row count), plus the health record and itself
    assert tables == {n for n, c in published.items() if c is not None} | {HEALTH_TABLE, PUBLICATION}
    assert views == {n for n, c in published.items() if c is None} == VIEWS
    assert {t.name for a in A.ANALYSES for t in a.tables} <= tables  # the Python-written marts too
    assert not set(relations) & set(_restricted_columns())  # no restricted model, by name
    for name, rel in relations.items():
        if name in published and published[name] is not None:
            assert len(rel.rows) == published[name], name  # read completely
    assert relations[HEALTH_TABLE].rows, "the data-health record is served"
    # Parquet (Evidence, any Parquet reader): one file per served table, none for a view
    parquet = {f.stem for f in (served.data / "serving" / "parquet").glob("*.parquet")}
    assert parquet == tables - {PUBLICATION}


def test_no_served_column_is_personal_data(relations: dict[str, Relation]) -> None:
    forbidden = personal_column_names()
    # derived, not listed here: the personal columns of dim_customer_pii, and the source ids, are in it
    assert _restricted_columns()["dim_customer_pii"] - {"customer_key"} <= forbidden
    assert {"customer_id", "order_id", "response_id", "customer_ref"} <= forbidden
    found = {f"{name}.{c}" for name, rel in relations.items() for c in rel.columns if c.lower() in forbidden}
    assert found == set(), sorted(found)


def test_no_served_cell_holds_personal_data(relations: dict[str, Relation], personal: Personal) -> None:
    t0 = time.perf_counter()
    assert len(personal.emails) > 500 and len(personal.tokens) > 2000  # not vacuous
    hits, cells, texts = [], 0, 0
    for name, rel in relations.items():
        cells += len(rel.rows) * len(rel.columns)
        for row in rel.rows:
            for column, value in zip(rel.columns, row, strict=True):
                for text in _strings(value):
                    texts += 1
                    if (why := _leak(text, personal)) is not None:
                        hits.append(f"{name}.{column}: {why}: {text!r}")
    tables = sum(r.kind == "table" for r in relations.values())
    rows = sum(len(r.rows) for r in relations.values())
    print(f"\nserved to BI through duckdb_engine: {tables} tables, {len(relations) - tables} views, {rows} rows, "
          f"{cells} cells ({texts} strings) scanned for {len(personal.exact)} personal values: {len(hits)} hits "
          f"({time.perf_counter() - t0:.1f} s)")
    assert hits == [], hits[:20]


def test_the_served_views_are_queryable_through_sqlalchemy(engine: sa.Engine,
                                                            relations: dict[str, Relation]) -> None:
    inspector = sa.inspect(engine)
    with engine.connect() as con:
        for view in sorted(VIEWS):
            assert "create view" in inspector.get_view_definition(view, schema="main").lower()
            assert relations[view].rows and relations[view].columns, view
            # what a chart asks: an aggregate over the view, built with SQLAlchemy Core
            v = sa.table(view, sa.column("customer_key"), schema="main")
            n, keys = con.execute(sa.select(sa.func.count(), sa.func.count(v.c.customer_key.distinct()))).one()
            assert n == len(relations[view].rows) and 0 < keys <= n


@pytest.mark.parametrize("how", ["connect_args", "url"])
def test_the_served_file_is_read_only_through_the_driver(served: Served, engine: sa.Engine, how: str) -> None:
    """The two spellings docs/bi.md gives: ``connect_args`` (notebooks) and ``?access_mode=read_only``
    (Superset's SQLAlchemy URI)."""
    # one process opens a DuckDB file with one configuration at a time (docs/bi.md): close the other's
    engine.dispose()
    url, kw = (f"duckdb:///{served.db}", {"connect_args": {"read_only": True}}) if how == "connect_args" \
        else (f"duckdb:///{served.db}?access_mode=read_only", {})
    assert url.startswith("duckdb:////")  # an absolute path: four slashes, as docs/bi.md writes it
    with _engine(url, **kw) as read_only, read_only.connect() as con:
        assert con.execute(sa.text("select count(*) from dim_customer")).scalar() > 0
        with pytest.raises(sa.exc.DBAPIError, match="(?i)read.only"):
            con.execute(sa.text("create table bi_scratch (x integer)"))


@pytest.mark.xfail(Version(sa.__version__) >= Version("2.0.45"), strict=True,
                   reason="duckdb_engine <= 0.17 column reflection queries pg_catalog.pg_collation and REGCLASS "
                          "(SQLAlchemy >= 2.0.45); Superset runs SQLAlchemy 1.4, where it works (docs/bi.md)")
def test_column_reflection(engine: sa.Engine) -> None:
    assert "customer_key" in {c["name"] for c in sa.inspect(engine).get_columns("dim_customer", schema="main")}


# --- the report people look at (cxw report) -----------------------------------------------------------

PLOTLY_SCRIPT = re.compile(r"<script[^>]*>\s*/\*\*\s*\n?\s*\* plotly\.js.*?</script>", re.DOTALL)


@pytest.fixture(scope="module")
def served_copy(served: Served, tmp_path_factory: pytest.TempPathFactory) -> Served:
    """The published file, copied: the SQLAlchemy engine above keeps the original open read-only with its
    own configuration, and DuckDB refuses a second configuration on a file open in the same process."""
    db = tmp_path_factory.mktemp("report_served") / "cx.duckdb"
    shutil.copyfile(served.db, db)
    return Served(served.data, db)


@pytest.fixture(scope="module")
def report(served_copy: Served, tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    out = tmp_path_factory.mktemp("report") / "cx-report.html"
    info = build_report(served_copy.db, out, AS_OF)
    print(f"report: {info.path} ({info.bytes:,} bytes, {info.seconds:.1f} s)")
    return info


def _cells(page: str) -> dict[str, str]:
    return dict(re.findall(r'data-cell="([^"]+)" data-value="([^"]*)"', page))


def test_page_is_self_contained(report) -> None:  # noqa: ANN001
    text = report.path.read_text(encoding="utf-8")
    assert text.count("plotly.js v") >= 1
    assert len(re.findall(r"<script[^>]*>\s*/\*\*\s*\n?\s*\* plotly\.js", text)) == 1  # the library inlined once
    rest = PLOTLY_SCRIPT.sub("", text)
    assert len(rest) < len(text) - 3_000_000
    # outside the library: no URL but SVG's XML namespaces (no CDN, no web font, no src/href to the network)
    urls = {u for u in re.findall(r"\b\w+://[^\s\"'<>)]+", rest) if "www.w3.org" not in u}
    assert urls == set(), urls
    assert "@font-face" not in rest and "@import" not in rest and "@media print" in rest
    assert report.sections == ["tiles", "trends", "promises", "flows", "drivers", "followups", "health"]


def test_numbers_equal_the_served_marts(report, served_copy: Served) -> None:  # noqa: ANN001
    cells = _cells(report.path.read_text(encoding="utf-8"))
    start = AS_OF - dt.timedelta(days=6)
    with duckdb.connect(str(served_copy.db), read_only=True) as con:
        for kpi in ("csat", "fcr_rate", "on_time_delivery_rate"):
            x, n = con.execute("select sum(numerator), sum(denominator) from kpi_experience_daily where kpi = ? and "
                               "dimension = 'all' and kpi_date between ? and ?", [kpi, start, AS_OF]).fetchone()
            assert float(cells[f"tile:{kpi}:n"]) == n
            if n:
                assert float(cells[f"tile:{kpi}:value"]) == pytest.approx(x / n)
                lo, hi = stats.wilson(x, n)
                assert float(cells[f"tile:{kpi}:ci_low"]) == pytest.approx(lo)
            # the company has 4 nights: the previous 7 days are empty, so no test and no marker
            assert cells[f"tile:{kpi}:marker"] == ""
        x, n = con.execute("select sum(numerator), sum(denominator) from kpi_experience_daily where kpi = 'nps' and "
                           "dimension = 'all' and kpi_date between ? and ?", [start, AS_OF]).fetchone()
        p, d, m = con.execute("select count(*) filter (where nps_category = 'promoter'), count(*) filter (where "
                              "nps_category = 'detractor'), count(nps_category) from fct_survey_responses where "
                              "survey_type = 'nps' and response_date between ? and ?", [start, AS_OF]).fetchone()
        assert (p - d, m) == (x, n)  # the served responses count the mart's components
        assert float(cells["tile:nps:value"]) == pytest.approx(100 * x / n)
        assert float(cells["tile:nps:n"]) == n
        ces = con.execute("select avg(ces_score), count(ces_score) from fct_survey_responses where survey_type = "
                          "'ces' and response_date between ? and ?", [start, AS_OF]).fetchone()
        assert float(cells["tile:ces:value"]) == pytest.approx(ces[0]) and float(cells["tile:ces:n"]) == ces[1]
        # the weekly cells: the page shows the weekly mart, and the mart's components and intervals equal the
        # served answers counted per ISO week, with the intervals computed here by hand
        weeks = con.execute("""
            select cast(date_trunc('week', response_date) as date) as week,
                   count(*) filter (where nps_category = 'promoter'),
                   count(*) filter (where nps_category = 'detractor'),
                   count(nps_category), avg(ces_score), stddev_samp(ces_score), count(ces_score)
            from fct_survey_responses where response_date <= ? group by 1 order by 1""", [AS_OF]).fetchall()
        assert weeks
        weekly = {(k, w): (v, n, lo, hi, pr, de, sd) for k, w, v, n, lo, hi, pr, de, sd in con.execute(
            "select kpi, week_start, value, n, ci_low, ci_high, promoters, detractors, sd from kpi_experience_weekly "
            "where dimension = 'all' and kpi in ('nps', 'ces')").fetchall()}
        for week, prom, det, m, ces_mean, ces_sd, ces_n in weeks:
            if m:
                value, n, lo, hi, pr, de, _ = weekly[("nps", week)]
                assert (pr, de, n) == (prom, det, m)
                pa, da = (prom + 0.75) / (m + 3), (det + 0.75) / (m + 3)
                se = ((pa + da - (pa - da) ** 2) / (m + 3)) ** 0.5
                assert lo == pytest.approx(max(-100, 100 * (pa - da - 1.96 * se)))
                assert hi == pytest.approx(min(100, 100 * (pa - da + 1.96 * se)))
                assert float(cells[f"weekly:nps:{week}:value"]) == pytest.approx(value) == 100 * (prom - det) / m
                assert float(cells[f"weekly:nps:{week}:n"]) == m
            if ces_n:
                value, n, lo, hi, _, _, sd = weekly[("ces", week)]
                assert (value, n) == (pytest.approx(ces_mean), ces_n)
                if ces_n > 1:  # sd pooled from the daily cells equals the week's own
                    assert sd == pytest.approx(ces_sd)
                    assert lo == pytest.approx(ces_mean - 1.96 * ces_sd / ces_n ** 0.5)
                assert float(cells[f"weekly:ces:{week}:value"]) == pytest.approx(ces_mean)
        # promise gap: the latest day of each promise
        for pid, k28, n28, p50 in con.execute(
                "select promise_id, kept_rate_28d, n_28d, gap_p50 from mart_promise_gap where dimension = 'all' "
                "qualify row_number() over (partition by promise_id order by promise_date desc) = 1").fetchall():
            assert float(cells[f"promise:{pid}:n_28d"]) == n28
            assert (cells[f"promise:{pid}:kept_rate_28d"] == "") == (k28 is None)
            if k28 is not None:
                assert float(cells[f"promise:{pid}:kept_rate_28d"]) == pytest.approx(k28)
            if p50 is not None:
                assert float(cells[f"promise:{pid}:gap_p50"]) == pytest.approx(p50)
        drivers = con.execute("select moment, effect, n_with from mart_experience_drivers where outcome = 'nps' "
                              "and segment = 'all'").fetchall()
        for moment, effect, n_with in drivers:
            assert float(cells[f"driver:nps:{moment}:n_with"]) == n_with
            if effect is not None:
                assert float(cells[f"driver:nps:{moment}:effect"]) == pytest.approx(effect)
        for status, n in con.execute("select status, count(*) from mart_feedback_followups where response_date <= ? "
                                     "group by 1", [AS_OF]).fetchall():
            assert float(cells[f"followups:{status}"]) == n
        for status, n in con.execute("select status, count(*) from data_health where business_date = ? group by 1",
                                     [AS_OF]).fetchall():
            if status in ("fail", "warn", "pass", "no_baseline"):
                assert float(cells[f"health:{status}"]) == n
        for source, latest in con.execute("select source, max(business_date) from data_health where source like "
                                          "'ingest_%' group by 1").fetchall():
            assert cells[f"fresh:{source.removeprefix('ingest_')}"] == str(latest)


def test_a_missing_table_is_skipped_with_a_note(served_copy: Served, tmp_path: Path) -> None:
    old = tmp_path / "old.duckdb"
    with duckdb.connect(str(old)) as con:
        con.execute(f"attach '{served_copy.db}' as s (read_only)")
        for t in ("kpi_experience_daily", "data_health", "_publication"):
            con.execute(f'create table "{t}" as select * from s."{t}"')
    info = build_report(old, tmp_path / "old.html", AS_OF)
    text = info.path.read_text(encoding="utf-8")
    for t in ("mart_promise_gap", "kpi_profile_flows_monthly", "mart_experience_drivers", "mart_feedback_followups"):
        assert f'data-skipped="{t}"' in text
    assert "tiles" in info.sections and "promises" in info.skipped


def test_page_renders_offline_in_headless_chromium(report, tmp_path: Path) -> None:  # noqa: ANN001
    with offline_page(allowed=("file://", "data:")) as browser:
        page = browser.page
        page.goto(report.path.as_uri(), wait_until="load")
        page.wait_for_function("() => [...document.querySelectorAll('div.plotly-graph-div')].every("
                               "d => d.querySelector('svg.main-svg, canvas'))", timeout=20_000)
        drawn = page.evaluate("() => [...document.querySelectorAll('div.plotly-graph-div')].map("
                              "d => [d.id, !!d.querySelector('svg.main-svg, canvas')])")
        assert len(drawn) == report.charts and all(ok for _, ok in drawn), drawn
        shot = tmp_path / "report.png"
        page.screenshot(path=str(shot), full_page=True)
        print(f"screenshot of the report: {shot}")
    assert browser.problems == [], browser.problems
    assert shot.stat().st_size > 10_000
    assert browser.requests and all(u.startswith(("file://", "data:")) for u in browser.requests), \
        [u for u in browser.requests if not u.startswith(("file://", "data:"))]
