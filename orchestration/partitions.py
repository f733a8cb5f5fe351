"""The business-date partitions shared by every daily asset."""

from __future__ import annotations

import os

import dagster as dg

# first business date a partition exists for; drops before it cannot be ingested
PARTITIONS_START = os.environ.get("CX_PARTITIONS_START", "2024-01-01")
daily_partitions = dg.DailyPartitionsDefinition(start_date=PARTITIONS_START)
