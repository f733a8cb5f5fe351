"""The business-date partitions shared by every daily asset.

Built from the settings when this module is imported (``CX_PARTITIONS_START``, ingestion/settings.py):
like the rest of Dagster's definitions, they hold the settings of the process that loads them.
"""

from __future__ import annotations

import datetime as dt

import dagster as dg

from ingestion import settings

# first business date a partition exists for; drops before it cannot be ingested
PARTITIONS_START = settings.current().partitions_start.isoformat()
daily_partitions = dg.DailyPartitionsDefinition(start_date=PARTITIONS_START)


def window_days(context: dg.AssetExecutionContext) -> list[dt.date]:
    """The business dates of the run's partition window (one partition, or a backfill range)."""
    window = context.partition_time_window
    return [window.start.date() + dt.timedelta(days=i) for i in range((window.end - window.start).days)]
