"""The project's Dagster instance (dagster.yaml) stores a batch of asset events at once
(orchestration/event_log.py, issue 18): a ranged run's planned events and its materializations, one per
asset and date, in a few transactions instead of one each, with the same event log as Dagster's own
SQLite event log (the run's log, the asset partition status, the planned and failed partitions, checks)."""

import shutil
from collections import Counter
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage

from ingestion import settings
from orchestration import event_log

ROOT = Path(__file__).resolve().parents[1]
DAYS = dg.DailyPartitionsDefinition(start_date="2026-01-01", end_date="2026-01-21")
RANGE = {"dagster/asset_partition_range_start": "2026-01-03", "dagster/asset_partition_range_end": "2026-01-12"}
RANGE_KEYS = [f"2026-01-{d:02d}" for d in range(3, 13)]
FAILING = {"fail": False}


@dg.multi_asset(specs=[dg.AssetSpec(["raw", "a"]), dg.AssetSpec(["raw", "b"]), dg.AssetSpec(["raw", "c"])],
                check_specs=[dg.AssetCheckSpec("rows", asset=["raw", "a"])], partitions_def=DAYS,
                backfill_policy=dg.BackfillPolicy.single_run())
def land(context: dg.AssetExecutionContext):  # noqa: ANN201 - a generator of results
    """Like the project's ingest assets over a range: one result per asset, a check summing up the range."""
    if FAILING["fail"]:
        raise dg.Failure("refused")
    for key in context.selected_asset_keys:
        for day in context.partition_keys:
            context.add_asset_metadata({"rows": len(day)}, asset_key=key, partition_key=day)
        yield dg.MaterializeResult(asset_key=key)
    yield dg.AssetCheckResult(asset_key=["raw", "a"], check_name="rows", passed=True)


@pytest.fixture
def batch_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """DAGSTER_EVENT_BATCH_SIZE unset before the test, as it was after it (loading the instance sets it)."""
    monkeypatch.setenv(settings.DAGSTER_EVENT_BATCH_ENV, "")
    monkeypatch.delenv(settings.DAGSTER_EVENT_BATCH_ENV)


def _home(tmp_path: Path, name: str, project: bool, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / name
    home.mkdir()
    if project:
        shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")  # as `make install` does
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home


def _run(home: Path, monkeypatch: pytest.MonkeyPatch, fail: bool = False) -> tuple[dict, Counter]:
    """Run ``land`` over RANGE on the instance at ``home``; what the instance then holds, and how many
    connections its event log opened to each database while the run was created and executed."""
    monkeypatch.setitem(FAILING, "fail", fail)
    opened: Counter = Counter()
    real = SqliteEventLogStorage._connect

    def counting(self, shard: str):  # noqa: ANN001, ANN202 - the storage's connection context manager
        opened["index" if shard == "index" else "run"] += 1
        return real(self, shard)

    with dg.DagsterInstance.from_config(str(home)) as instance:
        monkeypatch.setattr(SqliteEventLogStorage, "_connect", counting)
        storage_class = type(instance.event_log_storage)
        real_batch = storage_class.store_event_batch

        def batch(self, events):  # noqa: ANN001, ANN202 - the storage's store_event_batch
            before = opened["run"] + opened["index"]
            real_batch(self, events)
            opened["batches"] += 1
            opened["connections per batch"] = max(opened["connections per batch"],
                                                  opened["run"] + opened["index"] - before)

        monkeypatch.setattr(storage_class, "store_event_batch", batch)
        result = dg.materialize([land], instance=instance, tags=RANGE, raise_on_error=False)
        monkeypatch.setattr(SqliteEventLogStorage, "_connect", real)
        monkeypatch.setattr(storage_class, "store_event_batch", real_batch)
        assert result.success is not fail
        keys = [dg.AssetKey(["raw", n]) for n in "abc"]
        logs = instance.all_logs(result.run_id)
        held = {
            "storage": type(instance.event_log_storage).__name__,
            "log": [(e.dagster_event.event_type_value, e.dagster_event.partition, e.dagster_event.step_key)
                    if e.dagster_event else ("message", None, None) for e in logs],
            "materialized": {k.to_user_string(): instance.get_materialized_partitions(k) for k in keys},
            "planned": {k.to_user_string(): sorted(r.partition_key for r in instance.fetch_planned_materializations(
                k, limit=1000).records) for k in keys},
            "failed": {k.to_user_string(): sorted(
                instance.event_log_storage.get_latest_asset_partition_materialization_attempts_without_materializations(k))
                for k in keys},
            "latest": {k.to_user_string(): instance.get_latest_materialization_event(k).dagster_event.partition
                       for k in keys if not fail},
            "metadata": sorted((r.asset_key.to_user_string(), r.partition_key, r.storage_id,
                                r.asset_materialization.metadata["rows"].value)
                               for k in keys for r in instance.fetch_materializations(k, limit=1000).records),
            # the asset key rows of the index (written once per key and batch here, once per event by Dagster)
            "asset_records": [(r.asset_entry.asset_key.to_user_string(), r.asset_entry.last_run_id == result.run_id,
                               r.asset_entry.last_materialization_record.storage_id
                               if r.asset_entry.last_materialization_record else None,
                               r.asset_entry.last_materialization_record.event_log_entry.dagster_event.partition
                               if r.asset_entry.last_materialization_record else None,
                               r.asset_entry.last_materialization_storage_id,
                               r.asset_entry.last_planned_materialization_storage_id
                               if hasattr(r.asset_entry, "last_planned_materialization_storage_id") else None)
                              for r in instance.get_asset_records(keys)],
            "check": [(r.status.value, r.event.dagster_event.event_type_value if r.event else None)
                      for r in instance.event_log_storage.get_asset_check_execution_history(
                          dg.AssetCheckKey(keys[0], "rows"), limit=10)],
            # the check's executions as the index holds them: one row per planned date, each with its event
            "check_rows": _check_rows(instance, result.run_id),
        }
    return held, opened


def _check_rows(instance: dg.DagsterInstance, run_id: str) -> list[tuple]:
    """The index's rows of the run's check executions: asset, check, date, status, and the held event's
    type, run, planned dates and whether it points at its stored event."""
    from dagster._core.storage.event_log.schema import AssetCheckExecutionsTable as T
    from dagster._serdes import deserialize_value

    storage = instance.event_log_storage
    with storage.index_connection() as conn:
        rows = conn.execute(T.select().where(T.c.run_id == run_id)).fetchall()
    out = []
    for r in rows:
        event = deserialize_value(r.evaluation_event)
        data = event.dagster_event.event_specific_data
        subset = getattr(data, "partitions_subset", None)
        out.append((r.asset_key, r.check_name, r.partition, r.execution_status, event.dagster_event.event_type_value,
                    event.run_id == run_id, sorted(subset.get_partition_keys()) if subset is not None else None,
                    r.evaluation_event_storage_id is not None))
    return sorted(out, key=repr)


def test_the_project_instance_batches_a_ranged_runs_events(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            batch_env: None) -> None:
    import os

    home = _home(tmp_path, "project", True, monkeypatch)
    held, opened = _run(home, monkeypatch)
    assert held["storage"] == "BatchingSqliteEventLogStorage"
    assert os.environ[settings.DAGSTER_EVENT_BATCH_ENV] == str(event_log.DEFAULT_BATCH_SIZE)  # loading the instance
    # the event log in the default one's directory, so an existing DAGSTER_HOME keeps its history
    assert list((home / "storage").glob("*.db")) and (home / "storage" / "index.db").exists()
    assert held["materialized"] == {f"raw/{n}": set(RANGE_KEYS) for n in "abc"}
    # 30 planned events and 30 materializations, one per asset and date: a few connections, not one (run
    # database) plus one (index) each
    log = Counter(kind for kind, _, _ in held["log"])
    assert log["ASSET_MATERIALIZATION_PLANNED"] == 30 and log["ASSET_MATERIALIZATION"] == 30
    assert opened["run"] < 30 and opened["index"] < 30, opened
    # each batch (the run's plan with its planned check, each asset's materializations) in one
    # transaction on the run's database and one on the index
    assert opened["batches"] == 4 and opened["connections per batch"] == 2, opened


def test_the_batched_event_log_holds_what_dagsters_own_holds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             batch_env: None) -> None:
    """The same run on Dagster's default SQLite instance (no dagster.yaml, event by event) and on the
    project's (batched): the same run log and the same asset status, after a run that succeeded and after
    one that failed (its dates planned and not materialized: failed in the UI)."""
    default, project = _home(tmp_path, "default", False, monkeypatch), tmp_path / "project"
    want, opened_one_by_one = _run(default, monkeypatch)
    assert want["storage"] == "SqliteEventLogStorage"
    assert opened_one_by_one["run"] >= 60 and opened_one_by_one["index"] >= 60  # Dagster's own: one each
    project = _home(tmp_path, "project", True, monkeypatch)
    got, _ = _run(project, monkeypatch)
    assert {k: v for k, v in got.items() if k != "storage"} == {k: v for k, v in want.items() if k != "storage"}
    assert got["planned"] == {f"raw/{n}": RANGE_KEYS for n in "abc"}
    planned_checks = [r for r in got["check_rows"] if r[4] == "ASSET_CHECK_EVALUATION_PLANNED"]
    assert sorted(r[2] for r in planned_checks) == RANGE_KEYS  # one row per date, each holding the one event
    assert all(r[:2] == ("[\"raw\", \"a\"]", "rows") and r[5:] == (True, RANGE_KEYS, True) for r in planned_checks)
    assert got["failed"] == {f"raw/{n}": [] for n in "abc"}
    assert [(k, d, rows) for k, d, _id, rows in got["metadata"]] == sorted(
        (f"raw/{n}", d, 10) for n in "abc" for d in RANGE_KEYS)
    assert [r[:2] + r[3:4] for r in got["asset_records"]] == [(f"raw/{n}", True, "2026-01-12") for n in "abc"]

    want_failed, _ = _run(default, monkeypatch, fail=True)
    got_failed, _ = _run(project, monkeypatch, fail=True)
    assert {k: v for k, v in got_failed.items() if k != "storage"} == {
        k: v for k, v in want_failed.items() if k != "storage"}
    assert got_failed["failed"] == {f"raw/{n}": RANGE_KEYS for n in "abc"}


def test_the_project_instance_keeps_pools_run_monitoring_and_retries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                     batch_env: None) -> None:
    """What dagster.yaml gives the daemon and the UI still holds with its event log: pools of one slot
    (claimed and freed in the event log), run monitoring, run retries, the run queue."""
    home = _home(tmp_path, "project", True, monkeypatch)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        storage = instance.event_log_storage
        assert isinstance(storage, event_log.BatchingSqliteEventLogStorage)
        assert instance.run_monitoring_enabled and instance.run_retries_enabled
        assert instance.run_retries_max_retries == 1
        assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 4
        assert storage.supports_global_concurrency_limits
        storage.initialize_concurrency_limit_to_default("duckdb_writer")
        assert storage.claim_concurrency_slot("duckdb_writer", "run-1", "step").is_claimed
        assert not storage.claim_concurrency_slot("duckdb_writer", "run-2", "step").is_claimed
        assert [s.run_id for s in storage.get_concurrency_info("duckdb_writer").claimed_slots] == ["run-1"]
        storage.free_concurrency_slots_for_run("run-1")
        assert storage.claim_concurrency_slot("duckdb_writer", "run-2", "step").is_claimed
