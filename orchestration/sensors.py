"""The drop sensor: a complete drop (manifest present) that is new, or replaced by a re-extract,
requests the ingestion of its system for its business date."""


import hashlib
import json

import dagster as dg

from ingestion import contract as C
from ingestion.manifest import complete_drops

from .assets.ingestion import raw_asset_keys
from .partitions import daily_partitions
from .resources import CxData


def drop_requests(cx: CxData, cursor: str | None) -> tuple[list[dg.RunRequest], str]:
    """Run requests for new or re-delivered drops, and the new cursor ({system/date: manifest sha256})."""
    seen: dict[str, str] = json.loads(cursor) if cursor else {}
    valid_keys = set(daily_partitions.get_partition_keys())
    requests = []
    for system, day, folder in complete_drops(cx.zones().landing):
        digest = hashlib.sha256((folder / C.MANIFEST_NAME).read_bytes()).hexdigest()
        slot = f"{system}/{day.isoformat()}"
        if seen.get(slot) == digest or day.isoformat() not in valid_keys:
            continue
        seen[slot] = digest
        requests.append(dg.RunRequest(run_key=f"{slot}@{digest[:16]}", partition_key=day.isoformat(),
                                      asset_selection=raw_asset_keys[system], tags={"cx/system": system}))
    return requests, json.dumps(seen, sort_keys=True)


@dg.sensor(name="landing_drops", minimum_interval_seconds=60, target=dg.AssetSelection.groups("raw"),
           description="Ingest each complete drop (manifest present) when it appears or is replaced.")
def landing_drop_sensor(context: dg.SensorEvaluationContext, cx: CxData) -> dg.SensorResult:
    requests, cursor = drop_requests(cx, context.cursor)
    return dg.SensorResult(run_requests=requests, cursor=cursor)
