"""Privacy of what BI reads (docs/privacy.md), checked on the served copy a real night publishes.

* Every value of every served table (the DuckDB file and each Parquet file) is scanned for e-mail
  addresses, phone numbers, every name and e-mail the CRM delivered, and every source identifier.
* A GDPR erasure request arrives in night two's CRM drop; after the night: the person's old key,
  CRM id, e-mail, phone and name are in no served table and in no kept Parquet version, their rows
  still count under the new key, and no restricted link resolves that key.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import duckdb
import polars as pl
import pytest

from ingestion.keys import load_secret, pseudonym
from tests import drop_edit
from tests.reliability import conftest
from tests.reliability.harness import NIGHT_ONE, NIGHT_TWO, Site, cxw

CATEGORY = "privacy"  # the section of RELIABILITY.md
record = functools.partial(conftest.record, category=CATEGORY)
# all in make reliability: a night of its own (make test scans the marts the same way, by value, and
# looks for the key secret in every file dbt wrote: tests/test_warehouse.py)
pytestmark = [pytest.mark.reliability, pytest.mark.reliability_full]

EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[a-z]{2,}")
PHONE = re.compile(r"^\+?[0-9][0-9 .]{8,}$")


def _served_frames(site: Site) -> dict[str, pl.DataFrame]:
    """Every served table: the DuckDB file's, and every file of every kept Parquet version."""
    serving = site.data / "serving"
    frames: dict[str, pl.DataFrame] = {}
    with duckdb.connect(str(serving / "cx.duckdb"), read_only=True) as con:
        for (name,) in con.execute("select table_name from information_schema.tables").fetchall():
            frames[f"cx.duckdb:{name}"] = con.sql(f'select * from "{name}"').pl()
    for version in sorted((serving / "parquet_versions").iterdir()):
        for f in sorted(version.glob("*.parquet")):
            frames[f"parquet_versions/{version.name}/{f.name}"] = pl.read_parquet(f)
    return frames


def _text_values(frames: dict[str, pl.DataFrame]) -> dict[tuple[str, str], set[str]]:
    out = {}
    for name, df in frames.items():
        for col, dtype in df.schema.items():
            if dtype == pl.Utf8:
                out[(name, col)] = set(df[col].drop_nulls().unique())
    return out


def _crm(site: Site) -> pl.DataFrame:
    rows = []
    for day in (NIGHT_ONE, NIGHT_TWO):
        rows += drop_edit.read(drop_edit.folder(site.data / "landing", "crm", day), "crm", "customers")[1]
    return pl.DataFrame(rows)


# identifiers of things, not of people or their records: a campaign, a questionnaire, a product
CATALOG_IDS = {"campaign_id", "survey_id", "question_id", "product_id", "sku"}


def _source_ids(site: Site) -> set[str]:
    """Every identifier of a person or a record the four systems delivered (fields named *_id, and
    customer references), catalog identifiers aside."""
    ids: set[str] = set()
    for system, entities in {"crm": ("customers", "support_cases", "campaign_touches"),
                             "erp": ("orders", "order_lines", "shipments", "returns"),
                             "billing": ("invoices", "payments", "refunds", "subscriptions"),
                             "survey": ("responses",)}.items():
        for day in (NIGHT_ONE, NIGHT_TWO):
            drop = drop_edit.folder(site.data / "landing", system, day)
            for entity in entities:
                try:
                    _, rows = drop_edit.read(drop, system, entity)
                except FileNotFoundError:
                    continue
                for r in rows:
                    ids |= {str(v) for k, v in r.items() if (k.endswith("_id") or k == "customer_ref") and v
                            and k not in CATALOG_IDS
                            and "@" not in str(v)}
    return ids


def test_served_values_hold_no_personal_data_or_source_identifier(night_one: Site) -> None:
    frames = _served_frames(night_one)
    crm = _crm(night_one)
    personal = ({v for v in crm["email"].to_list() if v} | {v for v in crm["first_name"].to_list() if v and len(v) > 2}
                | {v for v in crm["last_name"].to_list() if v and len(v) > 2})
    ids = _source_ids(night_one)
    assert len(ids) > 1000 and len(personal) > 100
    hits = []
    for (table, col), values in _text_values(frames).items():
        for v in values:
            if EMAIL.search(v) or PHONE.match(v) or v in personal or v in ids:
                hits.append(f"{table}.{col}: {v!r}")
    cells = sum(df.height * df.width for df in frames.values())
    record(scenario="served values scanned for e-mails, phones, CRM names and source identifiers", ok=not hits,
           rows_lost=0, detail=f"{len(frames)} served tables and Parquet files, {cells} cells, {len(hits)} hits")
    assert hits == [], hits[:20]


def test_the_key_secret_is_in_no_file_a_night_wrote(night_one: Site) -> None:
    """Not in the data directory (warehouse, dbt's target and logs, serving, health, alerts) nor in the
    Dagster instance (event log, run storage: every log line and metadata entry of the night)."""
    secret = load_secret().encode()
    files = [f for root in (night_one.data, night_one.home) for f in root.rglob("*")
             if f.is_file() and not f.is_symlink()]
    leaks = [str(f) for f in files if secret in f.read_bytes()]
    assert any(f.suffix == ".db" for f in files) and any(f.name == "warehouse.duckdb" for f in files)
    record(scenario="the key secret in any file of a night (data directory and Dagster instance)", ok=not leaks,
           rows_lost=0, detail=f"{len(files)} files searched, {len(leaks)} hold the secret")
    assert leaks == []


def test_an_erasure_request_leaves_nothing_served_that_re_links(night_one: Site, tmp_path: Path) -> None:
    site = night_one.copy(tmp_path)
    secret = load_secret()
    landing = site.data / "landing"
    served = _served_frames(site)["cx.duckdb:dim_customer"]
    crm = _crm(site).unique("customer_id", keep="last")
    # a customer with orders already served, not erased: the one who asks for erasure tonight
    with duckdb.connect(str(site.data / "warehouse.duckdb"), read_only=True) as con:
        person, orders_before = con.execute(
            "select l.crm_customer_id, count(*) from restricted.customer_key_link as l "
            "inner join marts.fct_orders as o on o.customer_key = l.customer_key "
            "where l.person_id = 'crm:' || l.crm_customer_id "
            "group by 1 order by count(*) desc, 1 limit 1").fetchone()
    who = crm.filter(pl.col("customer_id") == person).row(0, named=True)
    old_key = pseudonym("customer", f"crm:{person}", secret)
    assert old_key in set(served["customer_key"])

    drop = drop_edit.folder(landing, "crm", NIGHT_TWO)
    header, rows = drop_edit.read(drop, "crm", "customers")
    request = {**who, "email": "", "phone": "", "first_name": "", "last_name": "", "city": "", "is_deleted": "true",
               "updated_at": f"{NIGHT_TWO.isoformat()}T09:00:00Z"}
    drop_edit.write(drop, "crm", "customers", header, [r for r in rows if r["customer_id"] != person] + [request])

    done = cxw(site, "nightly", "--date", NIGHT_TWO.isoformat())
    assert done.returncode == 0, done.stdout + done.stderr

    frames = _served_frames(site)
    new_key = pseudonym("erased-customer", f"crm:{person}", secret)
    personal = {v for v in (who["email"], who["phone"], person) if v}
    full_name = {who["first_name"], who["last_name"]}
    hits = []
    for (table, col), values in _text_values(frames).items():
        for v in values & (personal | {old_key}):
            hits.append(f"{table}.{col}: {v!r}")
    for name, df in frames.items():  # first and last name together in one row
        text = [c for c, t in df.schema.items() if t == pl.Utf8]
        if len(text) >= 2 and df.select(text).rows():
            both = [r for r in df.select(text).iter_rows() if full_name <= set(r)]
            hits += [f"{name}: a row holds {sorted(full_name)}"] if both else []
    dim = frames["cx.duckdb:dim_customer"]
    mine = dim.filter(pl.col("customer_key") == new_key)
    orders = frames["cx.duckdb:fct_orders"].filter(pl.col("customer_key") == new_key).height
    with duckdb.connect(str(site.data / "warehouse.duckdb"), read_only=True) as con:
        resolves = con.execute("select count(*) from restricted.customer_key_link where customer_key in (?, ?)",
                               [new_key, old_key]).fetchone()[0]
        resolves += con.execute("select count(*) from restricted.dim_customer_pii where customer_key in (?, ?)",
                                [new_key, old_key]).fetchone()[0]
    versions = sorted(p.name for p in (site.data / "serving" / "parquet_versions").iterdir())
    # every order stays theirs, those matched by e-mail in the ERP too (the request blanks the CRM e-mail)
    ok = not hits and mine.height == 1 and mine["is_erased"].item() and orders == orders_before and resolves == 0
    record(scenario="an erasure request, then the next night: served copy and every kept Parquet version",
           ok=ok, rows_lost=0,
           detail=f"{len(hits)} re-linking values in {len(frames)} served tables and files ({len(versions)} "
                  f"Parquet versions kept); the person's {orders} of {orders_before} orders still count under a key no "
                  "link resolves")
    assert hits == [], hits
    assert mine.height == 1 and mine["is_erased"].item() and mine["crm_created_at"].is_null().all()
    assert orders == orders_before > 0 and resolves == 0


def test_a_lost_secret_stops_the_night_and_a_rotation_re_keys_everything(night_one: Site, tmp_path: Path) -> None:
    """A night run with another secret (the file lost, a wrong mount) stops before any key changes and BI
    keeps what it had; `cxw keys rotate` then re-keys every customer on purpose and purges old versions."""
    site = night_one.copy(tmp_path / "site")
    before = _served_frames(site)["cx.duckdb:dim_customer"]
    new = tmp_path / "new.secret"
    made = cxw(site, "keys", "new", "--out", str(new))
    assert made.returncode == 0, made.stderr
    stopped = cxw(site, "nightly", "--date", NIGHT_TWO.isoformat(), CX_KEY_SECRET_FILE=str(new))
    assert stopped.returncode != 0 and "The key secret differs" in stopped.stdout + stopped.stderr
    assert _served_frames(site)["cx.duckdb:dim_customer"].equals(before)
    rotated = cxw(site, "keys", "rotate", "--date", NIGHT_ONE.isoformat(), CX_KEY_SECRET_FILE=str(new))
    assert rotated.returncode == 0, rotated.stdout + rotated.stderr
    frames = _served_frames(site)
    after = frames["cx.duckdb:dim_customer"]
    secret = new.read_text().strip()
    with duckdb.connect(str(site.data / "warehouse.duckdb"), read_only=True) as con:
        people = dict(con.execute("select customer_key, person_id from restricted.int_customer_key_map").fetchall())
    expected = {pseudonym("erased-customer" if erased else "customer", people[k], secret)
                for k, erased in after.select("customer_key", "is_erased").rows()}
    versions = list((site.data / "serving" / "parquet_versions").iterdir())
    ok = (after.height == before.height and not set(after["customer_key"]) & set(before["customer_key"])
          and set(after["customer_key"]) == expected and len(versions) == 1)
    record(scenario="a night with another key secret, then `cxw keys rotate`", ok=ok, rows_lost=0,
           detail=f"the night stopped ({'The key secret differs' in stopped.stdout + stopped.stderr}), BI unchanged; "
                  f"rotation re-keyed {after.height} customers, {len(versions)} Parquet version kept")
    assert ok
