"""The project's Dagster event log: Dagster's SQLite event log, storing a batch of asset events in one
transaction per database instead of one each (issue 18: `cxw backfill`'s cost per date).

Dagster hands its event log a batch when ``DAGSTER_EVENT_BATCH_SIZE`` is above 0 in the process that
creates or executes a run: the planned events of a run when it is created (one per asset and date of a
ranged run, as the SQLite event log plans each partition apart) and the materializations of one output
over a partition range (one per date). Dagster 1.13's ``SqliteEventLogStorage`` stores a batch event by
event (``EventLogStorage.store_event_batch``): each one in its own transaction on a new connection to the
run's database and once more to the index database, each commit synced to disk, each close
checkpointing the write-ahead log. This class writes the batch once into each, with the same rows and
the same per-event bookkeeping in the index (asset keys, indexed tags, asset check executions), so the
UI, the asset partition status and everything reading the event log see what they saw before.

``dagster.yaml`` names this class as the instance's event log storage, on the same directory as the
default one (``$DAGSTER_HOME/storage``), so an existing instance keeps its history; loading it sets
``DAGSTER_EVENT_BATCH_SIZE`` (unless already set) in the process that loads the instance: ``cxw``, the
webserver, the daemon and the run workers.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any, cast

import dagster._check as check
from dagster import Field
from dagster._config import StringSource
from dagster._core.events import ASSET_CHECK_EVENTS, ASSET_EVENTS
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from dagster._core.storage.event_log.schema import AssetCheckExecutionsTable, AssetKeyTable, SqlEventLogStorageTable
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._serdes import ConfigurableClassData, serialize_value
from sqlalchemy import exc as db_exc
from sqlalchemy.engine import Connection

from ingestion import settings

if TYPE_CHECKING:
    from dagster._core.events import AssetCheckEvaluationPlanned

DEFAULT_BATCH_SIZE = 10_000  # events buffered per batch at most: a run's plan is 28 per date + checks


def storage_dir(dagster_home: str) -> str:
    """Where Dagster's default SQLite storage keeps the event logs of the instance at ``dagster_home``."""
    return os.path.join(dagster_home, "storage")


class BatchingSqliteEventLogStorage(SqliteEventLogStorage):
    """``SqliteEventLogStorage`` whose ``store_event_batch`` writes a batch of one run's asset events in
    one transaction on the run's database and one on the index database."""

    def __init__(self, base_dir: str, batch_size: int = DEFAULT_BATCH_SIZE,
                 inst_data: ConfigurableClassData | None = None) -> None:
        self._batch = threading.local()  # .conn: the index transaction of the batch this thread stores
        super().__init__(base_dir, inst_data=inst_data)
        if batch_size > 0:
            settings.batch_dagster_events(batch_size)

    @classmethod
    def config_type(cls) -> Mapping[str, Any]:
        return {"dagster_home": StringSource,
                "batch_size": Field(int, is_required=False, default_value=DEFAULT_BATCH_SIZE)}

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None,  # ty: ignore[invalid-method-override]
                          config_value: Mapping[str, Any]) -> BatchingSqliteEventLogStorage:
        return cls(storage_dir(config_value["dagster_home"]), int(config_value.get("batch_size", DEFAULT_BATCH_SIZE)),
                   inst_data=inst_data)

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        events = list(events)
        kinds = ASSET_EVENTS | ASSET_CHECK_EVENTS
        if (len(events) < 2 or len({e.run_id for e in events}) != 1
                or not all(e.is_dagster_event and e.dagster_event_type in kinds for e in events)):
            super().store_event_batch(events)  # event by event, as Dagster does
            return
        # the run's log, in the batch's order (what the run's page and its event stream read)
        rows = [self._event_to_row(e) for e in events]  # each event serialized once, for both databases
        with self.run_connection(events[0].run_id) as conn:
            # the rows of prepare_insert_event_batch, by one statement compiled once and run for each row (a
            # VALUES list of every row is compiled anew for each batch: 1.2 s of a 92-day backfill's 61 s)
            conn.execute(SqlEventLogStorageTable.insert(), rows)
        # the cross-run index, as store_event mirrors each event: the event rows (one statement), then their
        # bookkeeping (a planned check's executions too, which Dagster writes through index_connection: the
        # same transaction here)
        with self.index_transaction() as conn:
            self._batch.conn = conn
            try:
                event_ids = self._insert_index_events(conn, rows)
                asset_events, asset_ids = [], []
                for event, event_id in zip(events, event_ids, strict=True):
                    if event.dagster_event_type in ASSET_EVENTS:
                        asset_events.append(event)
                        asset_ids.append(event_id)
                    else:
                        self.store_asset_check_event(event, event_id)
                self._store_asset_entries(conn, asset_events, asset_ids)
                self._store_asset_event_tags(conn, asset_events, asset_ids)
            finally:
                self._batch.conn = None

    @staticmethod
    def _insert_index_events(conn: Connection, rows: list[dict[str, Any]]) -> list[int]:
        """Insert the event rows ``store_event`` inserts one by one into the index, in one statement; their
        ids in the order of ``rows``."""
        table = SqlEventLogStorageTable
        statement = table.insert().returning(table.c.id, sort_by_parameter_order=True)
        return [row[0] for row in conn.execute(statement, rows)]

    def _store_asset_entries(self, conn: Connection, events: list[EventLogEntry], event_ids: list[int]) -> None:
        """The asset key rows Dagster's ``_store_asset_event`` leaves after storing ``events`` in order,
        written once per asset key instead of once per event. Each event sets its columns to its own
        values (insert, else update), so the row after the last event holds, for each column, the value
        of the last event that sets it: the last event of each kind (materialization, planned,
        observation) per asset key decides, as each kind always sets the same columns."""
        index_cols = self._has_asset_key_index_cols_on_connection(conn)  # once, not once per event
        last: dict[str, dict[str, tuple[EventLogEntry, int]]] = {}  # asset key -> kind -> its last event
        for event, event_id in zip(events, event_ids, strict=True):
            dagster_event = event.dagster_event
            if dagster_event is None or dagster_event.asset_key is None:
                continue
            key = dagster_event.asset_key.to_string()
            last.setdefault(key, {}).pop(dagster_event.event_type_value, None)  # re-inserted last: order kept
            last[key][dagster_event.event_type_value] = (event, event_id)
        for key, kinds in last.items():
            values: dict[str, Any] = {}
            for event, event_id in kinds.values():  # in the order of each kind's last event: later ones win
                values.update(self._get_asset_entry_values(event, event_id, index_cols))
            if not values:
                continue
            try:  # as Dagster's _store_asset_event does it
                conn.execute(AssetKeyTable.insert().values(asset_key=key, **values))
            except db_exc.IntegrityError:
                conn.execute(AssetKeyTable.update().values(**values).where(AssetKeyTable.c.asset_key == key))

    def _store_asset_check_evaluation_planned(self, event: EventLogEntry, event_id: int | None) -> None:
        """As Dagster's: one row of the check's executions per planned partition, each holding the planned
        event; but the event serialized once, not once per partition, and the rows inserted by one compiled
        statement (a ranged run plans each check over its whole range: a year's warehouse run, 365 rows per
        check)."""
        planned = cast("AssetCheckEvaluationPlanned", check.not_none(event.dagster_event).event_specific_data)
        partition_keys = planned.partitions_subset.get_partition_keys() if planned.partitions_subset else [None]
        same = {"asset_key": planned.asset_key.to_string(), "check_name": planned.check_name, "run_id": event.run_id,
                "execution_status": AssetCheckExecutionRecordStatus.PLANNED.value,
                "evaluation_event": serialize_value(event),
                "evaluation_event_timestamp": self._event_insert_timestamp(event),
                "evaluation_event_storage_id": event_id}
        with self.index_connection() as conn:
            # one statement run for each row (compiled once; a VALUES list of every row compiles anew each time)
            conn.execute(AssetCheckExecutionsTable.insert(), [{**same, "partition": key} for key in partition_keys])

    def index_connection(self) -> AbstractContextManager[Connection]:
        """The batch's index transaction, in the thread storing a batch (Dagster's connection holds the
        storage's lock until it closes); else a connection of its own, as Dagster opens one."""
        conn = getattr(self._batch, "conn", None)
        return nullcontext(conn) if conn is not None else super().index_connection()
