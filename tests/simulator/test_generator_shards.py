"""A company simulated in shards of customers (bounded memory, for scale L): valid drops, ids unique
across shards, references that resolve, one CSV header per file, and a truth.json that adds up."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from ingestion import contract as C
from ingestion.load import Zones, load_drop, read_audit
from simulator import GeneratorConfig, Mess, generate, shard_sizes

from ..landing import drop_dirs, read_entity

# more second profiles than the default, so that ids colliding across shards could not go unseen
CFG = GeneratorConfig(customers=900, days=6, start=dt.date(2026, 10, 22), seed=5, shard_customer_days=1_800,
                      mess=Mess(duplicate_person_rate=0.1))


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def sharded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("sharded")
    return out, generate(CFG, out).truth


@pytest.mark.parametrize(("customers", "days", "budget", "sizes"), [
    (900, 6, 1_800, [300, 300, 300]),
    (901, 6, 1_800, [226, 225, 225, 225]),  # 300 per shard at most: four shards, as even as possible
    (900, 6, 5_400, [900]),  # exactly one shard's budget
    (900, 6, 40_000_000, [900]),
    (5, 3, 2, [1, 1, 1, 1, 1]),  # a budget below one customer's days still gives one customer per shard
])
def test_shard_sizes(customers: int, days: int, budget: int, sizes: list[int]) -> None:
    cfg = GeneratorConfig(customers=customers, days=days, shard_customer_days=budget)
    assert shard_sizes(cfg) == sizes
    assert sum(sizes) == customers


def test_shard_budget_must_be_positive() -> None:
    with pytest.raises(ValueError, match="shard_customer_days"):
        GeneratorConfig(shard_customer_days=0)


def test_sharded_generation_is_deterministic_and_differs_from_one_piece(tmp_path: Path, sharded: tuple) -> None:
    root, truth = sharded
    generate(CFG, tmp_path / "again")
    assert _tree(tmp_path / "again") == _tree(root)
    assert truth["volumes"]["shards"] == 3
    generate(dataclasses.replace(CFG, shard_customer_days=40_000_000), tmp_path / "whole")
    whole = _tree(tmp_path / "whole")
    assert whole["crm/2026-10-22/customers.csv"] != _tree(root)["crm/2026-10-22/customers.csv"]


def test_every_sharded_drop_loads_and_reconciles(sharded: tuple, tmp_path: Path) -> None:
    root, truth = sharded
    zones = Zones(landing=root, raw=tmp_path / "raw", quarantine=tmp_path / "quarantine")
    for i in range(CFG.days):
        for system in C.SYSTEMS:
            load_drop(zones, system, CFG.start + dt.timedelta(days=i))
    audit = read_audit(zones)
    assert (audit["status"] == "loaded").all()
    assert (audit["loaded"] + audit["quarantined"] == audit["manifest_rows"]).all()
    # manifests count every shard's records, and the planted bad records of all shards are quarantined
    for key, n in truth["volumes"]["records_delivered"].items():
        system, name = key.split("/")
        assert audit.filter((pl.col("system") == system) & (pl.col("entity") == name))["manifest_rows"].sum() == n
    planted = sum(truth["mess"][k]["planted"] for k in ("bad_date", "bad_enum", "bad_null_key", "bad_score"))
    assert audit["quarantined"].sum() == planted > 0


def test_csv_files_have_one_header_each(sharded: tuple) -> None:
    root, _ = sharded
    for system in ("crm", "erp"):
        for folder in drop_dirs(root, system):
            for e in C.entities_of(system):
                lines = (folder / e.filename).read_bytes().decode(e.encoding).splitlines()
                header = lines[0]
                assert header.startswith(e.column_names[0] + e.separator), folder / e.filename
                assert header not in lines[1:], f"second header in {folder / e.filename}"


def test_ids_are_unique_across_shards_and_references_resolve(sharded: tuple) -> None:
    root, truth = sharded
    customers = read_entity(root, "crm", "customers").filter(pl.col("customer_id") != "")
    first_versions = customers.filter(pl.col("updated_at") == pl.col("created_at")).unique(
        ["customer_id", "updated_at"])
    # each customer of every shard once, plus the second profiles (ids above the company's size); a few
    # first versions carry a planted bad date or empty key, so not every id shows here
    ids = first_versions["customer_id"].str.slice(1).cast(pl.Int64)
    originals = first_versions.filter(ids <= CFG.customers)
    assert originals.height >= 0.99 * CFG.customers
    assert originals["customer_id"].n_unique() == originals.height  # no id shared by two people
    assert originals["email"].n_unique() == originals.height
    assert ids.filter(ids > CFG.customers).n_unique() == truth["mess"]["duplicate_person"]["planted"]

    orders = read_entity(root, "erp", "orders")
    order_ids = set(orders["order_id"].drop_nulls()) - {""}
    simulated = truth["volumes"]["simulated"]["orders"]
    numbers = sorted(int(o[1:]) for o in order_ids)
    # global numbering: the ids run up to the company's order count (an order may lose every version to the
    # planted null-key defect, hence not exactly all of them); a shard restarting at 1 would collide
    assert numbers[-1] <= simulated and len(numbers) >= 0.99 * simulated
    # references resolve, and to the right record: an order's invoice bills the order's customer, whatever
    # shard both came from (an invoice issued late on the last UTC night may name an order whose Paris-time
    # drop is after the window, and an order version with a planted empty key is not there: a handful do not
    # resolve)
    lines = read_entity(root, "erp", "order_lines")
    line_orders = set(lines["order_id"].drop_nulls())
    assert len(line_orders - order_ids) <= 0.01 * len(line_orders)
    crm_refs = set(orders["crm_customer_id"].drop_nulls())
    assert len(crm_refs - set(customers["customer_id"])) <= 0.01 * len(crm_refs)
    all_invoices = read_entity(root, "billing", "invoices")
    invoices = all_invoices.filter(pl.col("order_id").is_not_null())
    paired = invoices.join(orders.unique("order_id"), on="order_id")
    assert paired.height >= 0.98 * invoices.height > 0
    known = paired.filter(pl.col("erp_account_id").str.starts_with("EA"))  # not a guest checkout
    assert known.height > 0.9 * paired.height
    assert (known["billing_account_id"].str.slice(2) == known["erp_account_id"].str.slice(2)).all()
    payments = read_entity(root, "billing", "payments")
    assert set(payments["invoice_id"].drop_nulls()) <= set(all_invoices["invoice_id"].drop_nulls())
    responses = read_entity(root, "survey", "responses")
    about = responses.filter(pl.col("related_id").str.starts_with("O") & pl.col("customer_ref").str.starts_with("C"))
    about = about.join(orders.unique("order_id").filter(pl.col("crm_customer_id").is_not_null()),
                       left_on="related_id", right_on="order_id")
    assert about.height > 0 and (about["customer_ref"] == about["crm_customer_id"]).all()
