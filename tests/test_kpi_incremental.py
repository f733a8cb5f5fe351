"""The incremental KPI mart, built night by night, equals a full refresh over the same raw zone, and a
night recomputes only the KPI dates whose inputs (or finality) changed.

A small company is generated and its drops are edited so that two nights deliver records belonging
to KPI dates about seven weeks old: a refund for an invoice issued then; a CRM profile update that
moves an old customer to another segment from the night on, and a corrected re-extract of another old
customer's first profile version that moves it to another segment since its first days (the segment and
persona dimensions are the customer's as of the KPI date); an erasure request of another old customer;
and a new version of an old NPS answer whose
response date moves later, so that its old date loses the answer (a date only the previous version
names). The first drop also carries answers dated years before the rest of the history (a company's
initial load): two answers of one day, one of which the second night moves 20 days later (earlier than any
date the night's other records touch, so that a bound from the delivered records misses it: the old date
must drop it and keep the other); and an answer that is the only observation of its date, which the last
night moves into the history, so that its old date loses every observation (its cells must go: the run
writes the date as a placeholder row that the post-hook deletes). The first night builds the mart from
scratch with a one-day partition window over seven weeks of history; two incremental nights follow, and
after each night the mart equals a full refresh over the same raw zone.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import shutil
from pathlib import Path

import duckdb
import polars as pl
import pytest
import yaml

from ingestion import contract as C
from ingestion.load import Zones, load_drop
from orchestration.warehouse import DBT_PROJECT, DbtError, run_dbt, window_vars
from simulator import GeneratorConfig, generate

from . import drop_edit
from .landing import read_csv_file, read_jsonl_file

START = dt.date(2026, 8, 1)
DAYS = 52
NIGHTS = [START + dt.timedelta(days=d) for d in (DAYS - 3, DAYS - 2, DAYS - 1)]
LOOKBACK = yaml.safe_load((DBT_PROJECT / "dbt_project.yml").read_text(encoding="utf-8"))["vars"]["kpi_lookback_days"]
KPI_SQL = "select * from marts.kpi_experience_daily order by kpi_date, kpi, dimension, dimension_value"


def _rewrite_manifest(folder: Path, entity: str, rows: int) -> None:
    """Refresh one file's row count and sha256 in a drop's manifest after editing the file."""
    path = folder / C.MANIFEST_NAME
    manifest = json.loads(path.read_text(encoding="utf-8"))
    for f in manifest["files"]:
        if f["entity"] == entity:
            f["rows"] = rows
            f["sha256"] = hashlib.sha256((folder / f["path"]).read_bytes()).hexdigest()
    path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def _add_old_refund(landing: Path, night: dt.date) -> dict:
    """A refund, delivered on `night`, of a succeeded payment of an EUR order invoice issued more than
    LOOKBACK + 2 days before it and not refunded yet."""
    billing = landing / "billing"
    rows = {e: [r for d in sorted(billing.iterdir()) if d.is_dir()
                for r in read_jsonl_file(d / f"{e}.jsonl")] for e in ("invoices", "payments", "refunds")}
    refunded = {r["payment_id"] for r in rows["refunds"]}
    too_recent = night - dt.timedelta(days=LOOKBACK + 2)
    invoices = {i["invoice_id"]: i for i in rows["invoices"] if i.get("order_id") and i["currency"] == "EUR"
                and dt.date.fromisoformat(i["issued_at"][:10]) < too_recent}
    payment = next(p for p in rows["payments"] if p["status"] == "succeeded" and p["invoice_id"] in invoices
                   and p["payment_id"] not in refunded)
    refund = {"refund_id": "RF99000001", "payment_id": payment["payment_id"],
              "refunded_at": f"{night.isoformat()}T10:00:00Z", "amount_minor": payment["amount_minor"],
              "currency": "EUR", "reason": "requested_by_customer"}
    folder = billing / night.isoformat()
    with (folder / "refunds.jsonl").open("a", encoding="utf-8") as f:
        f.write(json.dumps(refund) + "\n")
    _rewrite_manifest(folder, "refunds", len(read_jsonl_file(folder / "refunds.jsonl")))
    return {"issue_date": dt.date.fromisoformat(invoices[payment["invoice_id"]]["issued_at"][:10])}


def _move_old_customer(landing: Path, night: dt.date, rank: int = 0, change: dict | None = None,
                       correct_first: bool = False) -> dict:
    """A new version of a consumer who ordered in the first days, delivered on `night`: now enterprise
    (or `change`), updated on `night`; or, with `correct_first`, a corrected copy of the customer's first
    version (its updated_at kept: the same version re-extracted, which replaces the copy delivered first).
    Of those, the one with the `rank`-th most orders never cancelled in the first three drops (ties by id),
    so that some of their KPI cells lie before the lookback whatever the generator's random draws."""
    crm = landing / "crm"
    first_orders = pl.concat([read_csv_file(landing / "erp" / (START + dt.timedelta(days=d)).isoformat()
                                            / "orders.csv", "erp") for d in range(3)], how="diagonal_relaxed")
    erp = landing / "erp"
    cancelled = set(pl.concat([read_csv_file(d / "orders.csv", "erp") for d in sorted(erp.iterdir()) if d.is_dir()],
                              how="diagonal_relaxed").filter(pl.col("status") == "cancelled")["order_id"])
    counts = (first_orders.filter(pl.col("crm_customer_id").is_not_null() & ~pl.col("order_id").is_in(cancelled))
              .unique("order_id").group_by("crm_customer_id").len())
    versions = pl.concat([read_csv_file(d / "customers.csv", "crm") for d in sorted(crm.iterdir()) if d.is_dir()],
                         how="diagonal_relaxed")
    latest = versions.sort("updated_at").unique("customer_id", keep="last")
    row = (latest.filter((pl.col("segment") == "consumer") & (pl.col("is_deleted") == "false"))
           .join(counts, left_on="customer_id", right_on="crm_customer_id")
           .sort(["len", "customer_id"], descending=[True, False]).drop("len").row(rank, named=True))
    if correct_first:
        row = versions.filter(pl.col("customer_id") == row["customer_id"]).sort("updated_at").row(0, named=True)
        row |= change or {"segment": "enterprise"}
    else:
        row |= (change or {"segment": "enterprise"}) | {"updated_at": f"{night.isoformat()}T09:00:00Z"}
    path = crm / night.isoformat() / "customers.csv"
    header = next(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))
    line = io.StringIO()
    csv.writer(line, lineterminator="\n").writerow([row.get(c) or "" for c in header])
    text = path.read_text(encoding="utf-8")
    path.write_text(text + ("" if text.endswith("\n") else "\n") + line.getvalue(), encoding="utf-8")
    _rewrite_manifest(path.parent, "customers", read_csv_file(path, "crm").height)
    return {"customer_id": row["customer_id"]}


def _move_old_answer(landing: Path, night: dt.date) -> dict:
    """A new version, delivered on `night`, of the first NPS answer (ties by id): answered 20 days later
    (still weeks before `night`). Its old date loses the answer: only the previous version names that date."""
    survey = landing / "survey"
    answers = [r for d in sorted(survey.iterdir()) if d.is_dir() for r in read_jsonl_file(d / "responses.jsonl")]
    answer = min((r for r in answers if r["survey_type"] == "nps"
                  and any(a.get("question_id") == "nps" and a.get("value") is not None for a in r["answers"])),
                 key=lambda r: (r["responded_at"], r["response_id"]))
    day = dt.date.fromisoformat(answer["responded_at"][:10])
    assert day < night - dt.timedelta(days=LOOKBACK), day
    later = dt.datetime.fromisoformat(answer["responded_at"].replace("Z", "+00:00")) + dt.timedelta(days=20)
    moved = answer | {"responded_at": later.strftime("%Y-%m-%dT%H:%M:%SZ")}
    folder = survey / night.isoformat()
    with (folder / "responses.jsonl").open("a", encoding="utf-8") as f:
        f.write(json.dumps(moved) + "\n")
    _rewrite_manifest(folder, "responses", len(read_jsonl_file(folder / "responses.jsonl")))
    return {"old_date": day, "new_date": later.date()}


ANCIENT = dt.date(2023, 6, 15)  # years before the history: no other record of the company is dated then
ANCIENT_PAIR = dt.date(2024, 3, 10)  # likewise, for two answers


def _at(day: dt.date, hour: int) -> str:
    return f"{day.isoformat()}T{hour:02d}:00:00Z"


def _plant_ancient_answers(landing: Path, day: dt.date, ids: list[str], night: dt.date) -> list[dict]:
    """Answers dated `day` (years before the history), added to the first drop as a company's initial load
    carries them: copies, with ids `ids`, of distinct promoters' relationship NPS answers (no follow-up
    item) of customers whose CRM profile `night` does not deliver (a profile update would make the
    previous model recompute every date of its customer)."""
    crm_ids = {r["customer_id"] for r in drop_edit.read(drop_edit.folder(landing, "crm", night), "crm", "customers")[1]}
    templates, customers = [], set()
    for d in sorted(p for p in (landing / "survey").iterdir() if p.is_dir()):
        for r in drop_edit.read(d, "survey", "responses")[1]:
            if (r["survey_type"] == "nps" and r["touchpoint"] == "relationship" and r["customer_ref"] not in crm_ids
                    and r["customer_ref"] not in customers and r["customer_ref"].startswith("C")
                    and any(a.get("question_id") == "nps" and a.get("value") == 10 for a in r["answers"])):
                templates.append(r)
                customers.add(r["customer_ref"])
    answers = [t | {"response_id": i, "sent_at": _at(day - dt.timedelta(days=1), 9), "responded_at": _at(day, 10)}
               for t, i in zip(templates, ids, strict=False)]
    assert len(answers) == len(ids)
    first = drop_edit.folder(landing, "survey", START)
    _, rows = drop_edit.read(first, "survey", "responses")
    drop_edit.write(first, "survey", "responses", None, [*rows, *answers])
    return answers


def _deliver_answered_on(landing: Path, night: dt.date, answer: dict, day: dt.date) -> None:
    """A new version of `answer`, delivered on `night`: answered on `day`."""
    drop = drop_edit.folder(landing, "survey", night)
    _, rows = drop_edit.read(drop, "survey", "responses")
    moved = answer | {"sent_at": _at(day - dt.timedelta(days=1), 9), "responded_at": _at(day, 10)}
    drop_edit.write(drop, "survey", "responses", None, [*rows, moved])


def _plant_ancient_answer(landing: Path, night: dt.date) -> dict:
    """An answer dated ANCIENT in the first drop (the only observation of its date), and its new version
    delivered on `night`, answered 10 days into the history instead: the old date loses every observation."""
    answer, = _plant_ancient_answers(landing, ANCIENT, ["r-ancient-1"], night)
    moved_to = START + dt.timedelta(days=10)
    _deliver_answered_on(landing, night, answer, moved_to)
    return {"old_date": ANCIENT, "new_date": moved_to}


def _plant_ancient_pair(landing: Path, night: dt.date) -> dict:
    """Two answers dated ANCIENT_PAIR in the first drop (its only observations), and a new version of one of
    them delivered on `night`, answered 20 days later (still years before the history): the old date keeps
    the other answer and loses this one. Earlier than every date the night's other records touch, so a
    bound from the delivered records (the new version's date) does not reach it."""
    moved, _ = _plant_ancient_answers(landing, ANCIENT_PAIR, ["r-ancient-2", "r-ancient-3"], night)
    later = ANCIENT_PAIR + dt.timedelta(days=20)
    _deliver_answered_on(landing, night, moved, later)
    return {"old_date": ANCIENT_PAIR, "new_date": later}


@pytest.fixture(scope="module")
def company(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    data = tmp_path_factory.mktemp("kpi_incremental")
    cfg = GeneratorConfig(customers=300, days=DAYS, start=START, seed=7)
    generate(cfg, data / "landing")
    edits = {"refund": _add_old_refund(data / "landing", NIGHTS[2]),
             "customer": _move_old_customer(data / "landing", NIGHTS[1]),
             "erased": _move_old_customer(data / "landing", NIGHTS[1], rank=1, change={"is_deleted": "true"}),
             "corrected": _move_old_customer(data / "landing", NIGHTS[1], rank=2, correct_first=True),
             "answer": _move_old_answer(data / "landing", NIGHTS[1])}
    # after the edits above: the CRM profiles they deliver are avoided
    edits["ancient"] = _plant_ancient_answer(data / "landing", NIGHTS[2])
    edits["pair"] = _plant_ancient_pair(data / "landing", NIGHTS[1])
    zones = Zones(data / "landing", data / "raw", data / "quarantine")
    for i in range(DAYS):
        for system in C.SYSTEMS:
            load = load_drop(zones, system, START + dt.timedelta(days=i))
            assert load.status == "loaded", (system, load.error)
    return data, edits


def _mart(data: Path) -> pl.DataFrame:
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        return con.sql(KPI_SQL).pl()


def _full_refresh(data: Path, night: dt.date) -> pl.DataFrame:
    """The mart rebuilt from scratch as of `night` over the same raw zone and upstream models, on a copy
    of the warehouse: the incremental table is left as the night built it."""
    warehouse = data / "warehouse.duckdb"
    kept = data / "warehouse.incremental.duckdb"
    shutil.copy2(warehouse, kept)
    try:
        run_dbt(["run", "--full-refresh", "--select", "kpi_experience_daily"], data_dir=data,
                dbt_vars={"as_of": night.isoformat()})
        return _mart(data)
    finally:
        kept.replace(warehouse)


def _assert_same(a: pl.DataFrame, b: pl.DataFrame, what: str = "") -> None:
    assert a.columns == b.columns, what
    assert a.height == b.height, (what, a.join(b, on=KEY, how="anti").select(KEY).head(10).rows(),
                                  b.join(a, on=KEY, how="anti").select(KEY).head(10).rows())
    for col in a.columns:
        if a.schema[col] == pl.Float64:
            assert a[col].is_null().to_list() == b[col].is_null().to_list(), (what, col)
            assert a[col].drop_nulls().to_list() == pytest.approx(b[col].drop_nulls().to_list(), rel=1e-9,
                                                                  abs=1e-9), (what, col)
        else:
            assert a[col].to_list() == b[col].to_list(), (what, col)


KEY = ["kpi_date", "kpi", "dimension", "dimension_value"]
MARKER = -1.0  # sd of the held rows before the last night: a standard deviation is never negative


def _mark_held(data: Path) -> None:
    """Mark every row the table holds (sd = MARKER, kept aside): a row the night rewrites loses it."""
    with duckdb.connect(str(data / "warehouse.duckdb")) as con:
        con.sql("create or replace table main.kpi_held_sd as select kpi_date, kpi, dimension, dimension_value, sd "
                "from marts.kpi_experience_daily")
        con.sql(f"update marts.kpi_experience_daily set sd = {MARKER}")


def _unmark_kept(data: Path) -> pl.DataFrame:
    """The keys of the rows the night kept (still marked), whose sd is then put back."""
    with duckdb.connect(str(data / "warehouse.duckdb")) as con:
        kept = con.sql(f"select {', '.join(KEY)} from marts.kpi_experience_daily where sd = {MARKER}").pl()
        con.sql(f"""update marts.kpi_experience_daily as t set sd = h.sd from main.kpi_held_sd as h
                    where t.sd = {MARKER} and {' and '.join(f't.{k} = h.{k}' for k in KEY)}""")
        con.sql("drop table main.kpi_held_sd")
    return kept


def _changed_before(old: pl.DataFrame, new: pl.DataFrame, before: dt.date) -> pl.DataFrame:
    """Rows dated before `before` that differ between two builds of the mart."""
    key = ["kpi_date", "kpi", "dimension", "dimension_value"]
    o, n = (df.filter(pl.col("kpi_date") < before) for df in (old, new))
    return n.join(o, on=key, how="full", suffix="_old", coalesce=True).filter(
        (pl.col("n") != pl.col("n_old")) | (pl.col("value") != pl.col("value_old"))
        | pl.col("n").is_null() | pl.col("n_old").is_null())


def test_night_by_night_equals_full_refresh(company: tuple[Path, dict]) -> None:
    data, edits = company
    built = []
    run_dbt(["seed"], data_dir=data)  # `dbt run` builds models only: the rate table is a seed
    for i, night in enumerate(NIGHTS):
        # the last night also runs the data tests of the models it builds (is_final / is_reportable
        # against as_of among them); cautious: not the tests that reach models outside the selection
        build = ["build", "--exclude-resource-type", "unit_test", "--indirect-selection", "cautious"]
        args = build if i == len(NIGHTS) - 1 else ["run"]
        if i == len(NIGHTS) - 1:
            _mark_held(data)
        run_dbt([*args, "--select", "+kpi_experience_daily"], data_dir=data,
                dbt_vars=window_vars(night, night + dt.timedelta(days=1)))
        if i == len(NIGHTS) - 1:
            kept = _unmark_kept(data)
        built.append(_mart(data))
        # no placeholder row is left, and every night's table is the full refresh's, row for row
        assert built[-1].filter(pl.col("kpi").is_null()).height == 0
        _assert_same(built[-1], _full_refresh(data, night), f"night {night}: incremental vs full refresh")

    # first night, no table yet: every KPI date up to as_of, not just the partition's day
    first = built[0]
    assert first["kpi_date"].min() <= START + dt.timedelta(days=1)
    assert first["kpi_date"].max() == NIGHTS[0]

    # the late records reached cells older than the lookback, and the nights recomputed them
    moved = _changed_before(built[0], built[1], NIGHTS[1] - dt.timedelta(days=LOOKBACK))
    # the corrected first version moved an old customer's segment since its first days (as of the KPI date)
    assert moved.filter(pl.col("dimension") == "segment").height > 0, "segment correction not recomputed"
    refunded = _changed_before(built[1], built[2], NIGHTS[2] - dt.timedelta(days=LOOKBACK)).filter(
        (pl.col("kpi") == "refund_rate_value") & (pl.col("dimension") == "all"))
    assert refunded["kpi_date"].to_list() == [edits["refund"]["issue_date"]]

    # the answer's new version moved it 20 days later: its old date lost it, its new date gained it
    answer = edits["answer"]
    nps = {d: b.filter((pl.col("kpi") == "nps") & (pl.col("dimension") == "all")
                       & pl.col("kpi_date").is_in([answer["old_date"], answer["new_date"]]))
           .select("kpi_date", "n").rows() for d, b in (("before", built[0]), ("after", built[1]))}
    before, after = dict(nps["before"]), dict(nps["after"])
    assert after.get(answer["old_date"], 0) == before[answer["old_date"]] - 1, (before, after)
    assert after[answer["new_date"]] == before.get(answer["new_date"], 0) + 1, (before, after)

    # one of the two ancient answers moved 20 days later: its old date keeps the other one only
    pair = edits["pair"]
    pair_n = [dict(b.filter((pl.col("kpi") == "nps") & (pl.col("dimension") == "all")
                            & pl.col("kpi_date").is_in([pair["old_date"], pair["new_date"]]))
                   .select("kpi_date", "n").rows()) for b in built[:2]]
    assert pair_n == [{pair["old_date"]: 2}, {pair["old_date"]: 1, pair["new_date"]: 1}], pair_n

    # the ancient answer was the only observation of its date: the last night moved it into the history,
    # and the date has no cell left (its NPS cell would otherwise keep counting the answer)
    ancient = edits["ancient"]
    assert set(built[1].filter(pl.col("kpi_date") == ancient["old_date"])["kpi"].to_list()) == {"nps"}
    assert built[2].filter(pl.col("kpi_date") == ancient["old_date"]).height == 0
    nps_new = [b.filter((pl.col("kpi") == "nps") & (pl.col("dimension") == "all")
                        & (pl.col("kpi_date") == ancient["new_date"]))["n"].sum() for b in built[1:]]
    assert nps_new[1] == nps_new[0] + 1, nps_new

    # the last night recomputed only the dates whose fingerprint or finality moved: the refund's old
    # issue date among them, not every date after it (the rows it kept carry the marker sd = -1); a date
    # left with no observation was recomputed into no row
    held, now = built[1], built[2]
    rewritten = now.join(kept, on=KEY, how="anti")
    emptied = set(held["kpi_date"].to_list()) - set(now["kpi_date"].to_list())
    assert emptied == {ancient["old_date"]}, sorted(emptied)
    recomputed = set(rewritten["kpi_date"].to_list()) | emptied
    assert edits["refund"]["issue_date"] in recomputed
    state = ["kpi_date", "kpi", "input_count", "input_hash", "is_final"]
    moved_state = set(held.select(state).unique().join(now.select(state).unique(), on=state, how="anti")
                      ["kpi_date"].to_list()) | set(now.select(state).unique().join(
                          held.select(state).unique(), on=state, how="anti")["kpi_date"].to_list())
    assert recomputed == moved_state, sorted(recomputed ^ moved_state)
    between = {d for d in held["kpi_date"].unique().to_list() if edits["refund"]["issue_date"] < d < NIGHTS[2]}
    assert between - recomputed, "every date after the refund's issue date was recomputed"
    share = rewritten.height / now.height
    assert share < 0.5, f"{rewritten.height} of {now.height} rows recomputed"
    print(f"last night: {len(recomputed)} of {now['kpi_date'].n_unique()} dates, {rewritten.height} of "
          f"{now.height} rows recomputed")

    # the model's unit tests (kpi_finality.yml: finality, the incremental path, the placeholder of an
    # emptied date), on the warehouse these nights built
    run_dbt(["test", "--select", "kpi_experience_daily,resource_type:unit_test"], data_dir=data)


def test_a_mart_built_before_its_fingerprint_stops_the_night_with_the_fix(
        company: tuple[Path, dict], tmp_path: Path) -> None:
    """An upgrade: the KPI mart built before its column input_hash (a copy of the nights' warehouse with the
    column dropped) stops the next incremental run with the fix, a full refresh with as_of (so that the
    rebuilt cells' finality is right at once), not with the engine's error about the column the night reads."""
    data, _ = company
    for zone in ("raw", "quarantine"):
        shutil.copytree(data / zone, tmp_path / zone)
    # its own first night (the test above builds into the company's folder, in some order of the tests)
    run_dbt(["seed"], data_dir=tmp_path)
    run_dbt(["run", "--select", "+kpi_experience_daily"], data_dir=tmp_path,
            dbt_vars=window_vars(NIGHTS[0], NIGHTS[0] + dt.timedelta(days=1)))
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        con.execute("alter table marts.kpi_experience_daily drop column input_hash")
    with pytest.raises(DbtError, match=r"kpi_experience_daily.* before its column\(s\) input_hash .*"
                                       r"--as-of <the last night> --full-refresh"):
        run_dbt(["run", "--select", "kpi_experience_daily"], data_dir=tmp_path,
                dbt_vars=window_vars(NIGHTS[1], NIGHTS[1] + dt.timedelta(days=1)))
