"""Run the dbt project against a data directory (thin wrapper over dbt's programmatic runner)."""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from ingestion import settings

if TYPE_CHECKING:
    from dagster_dbt import DbtProject

DBT_PROJECT = Path(__file__).resolve().parents[1] / "dbt_project"
# the dbt of this interpreter's environment, whether or not the venv is activated: `make dev` runs
# .venv/bin/dagster with .venv/bin off PATH, where a bare `dbt` is not found
DBT_EXECUTABLE = str(Path(sys.executable).parent / "dbt")


# the flags of a night's `dbt build` (the Dagster step's, and the bare runs that stand for it in the benchmarks):
# - unit tests check the SQL, not the data: CI runs them (`make test`); nightly builds skip them;
# - no artifacts: dbt writes manifest.json after its parse and again at the end, graph.gpickle and
#   run_results.json, about 1 s of a night (8 % at 10k customers; benchmarks/RESULTS.md, "The unique tests on
#   hashes, and a night without dbt's artifacts"). The node results the night records (its tests in the
#   data-health record) come from dbt itself: its results in process (node_results), its event stream in the
#   Dagster step (node_result, node_message). `cxw build` and a user's `dbt build` still write the artifacts. A
#   night removes an earlier run's artifacts from its dbt target folder first (clear_artifacts), so that none is
#   read as this night's.
NIGHTLY_ARGS = ["--exclude-resource-type", "unit_test", "--no-write-json"]
ARTIFACTS = ("manifest.json", "run_results.json", "graph.gpickle", "semantic_manifest.json")


def window_vars(start: dt.date, end: dt.date) -> dict[str, str]:
    """dbt vars of the business-date window [start, end) (half-open); as_of = its last day."""
    return {"min_date": start.isoformat(), "max_date": end.isoformat(),
            "as_of": (end - dt.timedelta(days=1)).isoformat()}


# the run's window reaches dbt in these environment variables, read only while executing (macros/as_of.sql
# cx_window_var), so a new night keeps dbt's partial parse: new --vars would make dbt parse the whole
# project again. Set for every dbt call (empty when the call has none: --vars or the project's default then)
RUN_WINDOW_ENV = {"as_of": "CX_RUN_AS_OF", "min_date": "CX_RUN_MIN_DATE", "max_date": "CX_RUN_MAX_DATE"}


def window_env(dbt_vars: dict | None) -> tuple[dict[str, str], dict]:
    """``dbt_vars`` split into the window's environment (``RUN_WINDOW_ENV``, every name set) and the
    other vars, which go on the command line (``--vars``; rare ones such as ``rotate_keys``)."""
    rest = dict(dbt_vars or {})
    return {env: str(rest.pop(name, "")) for name, env in RUN_WINDOW_ENV.items()}, rest


# when the last successful warehouse build of a data directory started (per engine, in dbt's target
# folder): drops landed after it are new to the warehouse, whatever their business date
BUILT_MARK = "cx_last_build.json"


def landed_since_build(data_dir: Path, target: str | None) -> dt.date | None:
    """The earliest business date of the drops landed since the last successful build started (their
    load-audit files are newer), or None: none, or no build recorded yet.

    A drop delivered late (days or months after its business date, ingested on arrival) is older than
    the next night's window: the incremental models (staging, facts, the KPI mart) would not look at it.
    The nightly widens its dbt window back to that date instead (``window_from``): the incremental models
    take a window of any length, and the results are as of the same ``as_of``."""
    mark = target_path(data_dir, target) / BUILT_MARK
    audit = Path(data_dir) / "raw" / "_load_audit"
    if not mark.exists() or not audit.is_dir():
        return None
    since = json.loads(mark.read_text(encoding="utf-8"))["started"]
    dates = [dt.date.fromisoformat(folder.name.split("=", 1)[1])
             for folder in audit.glob("*/business_date=*")
             if any(f.stat().st_mtime > since for f in folder.iterdir() if f.suffix == ".parquet")]
    return min(dates, default=None)


def _write_mark(data_dir: Path, target: str | None, name: str, record: dict) -> None:
    """``record`` as JSON in file ``name`` of the dbt target folder of ``data_dir`` and ``target``, swapped in whole."""
    folder = target_path(data_dir, target)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / (name + ".tmp")
    tmp.write_text(json.dumps(record) + "\n", encoding="utf-8")
    tmp.replace(folder / name)


def mark_built(data_dir: Path, target: str | None, started: float) -> None:
    """Record that a build which started at ``started`` (time.time()) succeeded (``landed_since_build``)."""
    _write_mark(data_dir, target, BUILT_MARK, {"started": started})


# the as_of the warehouse was last built for (per engine, in dbt's target folder), by the `warehouse` asset (the
# nightly, backfills) or `cxw build`: the tests of an as_of-dependent model (a KPI's is_final) hold only for it
BUILT_AS_OF = "cx_built_as_of.json"


def record_built_as_of(data_dir: Path, target: str | None, as_of: str | None) -> None:
    """Record that a build for ``as_of`` (None: the project's default, a plain build) succeeded."""
    _write_mark(data_dir, target, BUILT_AS_OF, {"as_of": as_of})


def built_as_of(data_dir: Path, target: str | None) -> tuple[bool, str | None]:
    """(whether a build recorded its as_of, that as_of: None for the project's default)."""
    path = target_path(data_dir, target) / BUILT_AS_OF
    if not path.exists():
        return False, None
    return True, json.loads(path.read_text(encoding="utf-8"))["as_of"]


def window_from(dbt_window: dict[str, str], late: dt.date | None) -> dict[str, str]:
    """``dbt_window`` (``window_vars``) starting at ``late`` when that is earlier; as_of unchanged."""
    if late is None or late.isoformat() >= dbt_window["min_date"]:
        return dbt_window
    return {**dbt_window, "min_date": late.isoformat()}


def dbt_var(name: str):  # noqa: ANN201 - whatever the var holds
    """A var's default from dbt_project.yml: the one place a dbt threshold is declared."""
    import yaml

    project = yaml.safe_load((DBT_PROJECT / "dbt_project.yml").read_text(encoding="utf-8"))
    try:
        return project["vars"][name]
    except KeyError:
        raise KeyError(f"dbt_project.yml declares no var {name!r}") from None


class DbtError(RuntimeError):
    pass


OUT_OF_MEMORY = ("Out of Memory Error", "failed to pin block", "failed to allocate data")  # DuckDB's messages


def resource_advice(message: str, data_dir: Path | None = None) -> str | None:
    """What to do about a dbt failure DuckDB gave for lack of memory or disk (``message``: dbt's error text),
    naming the setting and its value in force; None for any other failure. Said beside the error by ``run_dbt``
    and by the Dagster dbt step."""
    from ingestion.disk import free_bytes, is_disk_full

    s = settings.current()
    if any(text in message for text in OUT_OF_MEMORY):
        return (f"DuckDB ran out of memory within memory_limit={s.duckdb_memory_limit} (CX_DUCKDB_MEMORY_LIMIT), "
                f"which dbt's {s.dbt_threads} thread(s) share (CX_DBT_THREADS): raise it if the machine has the "
                f"memory (the build at scale L, 1M customers x 2 years, fits within 5GB; docs/benchmarks.md, "
                f"'Scale L')" + (", or set CX_DBT_THREADS=1 to build one model at a time" if s.dbt_threads > 1 else "")
                + ", then re-run")
    if is_disk_full(RuntimeError(message)):
        temp = Path(s.duckdb_settings(data_dir)["temp_directory"])
        free = free_bytes(temp)
        room = f"{free / 1e9:,.1f} GB free there" if free is not None else "free space unknown"
        return (f"the disk is full: DuckDB spills to {temp} ({room}; CX_DUCKDB_TEMP_DIRECTORY) and writes the "
                f"warehouse beside it; free space, or point CX_DUCKDB_TEMP_DIRECTORY at a larger disk (a build at "
                f"scale L spills up to ~35 GB; docs/benchmarks.md)")
    return None


def with_venv_dbt(project: DbtProject) -> DbtProject:
    """``project`` with a preparer that runs ``DBT_EXECUTABLE``.

    dagster-dbt's default preparer (``project.prepare_if_dev()`` under ``dagster dev``, and
    ``dagster-dbt project prepare-and-package``) runs a ``DbtCliResource`` with its default
    executable, a bare ``dbt`` looked up on PATH. This one is the same preparer (dbt deps, dbt parse,
    under its guard against concurrent updates) running the dbt of this environment. dagster-dbt
    0.29 takes no ``preparer`` argument, so it replaces the record's field.
    """
    from dagster_dbt import DagsterDbtProjectPreparer
    from dagster_shared.record import replace

    from orchestration.resources import CxDbtCliResource as DbtCliResource  # no adapter handle (resources.py)

    class VenvDbtPreparer(DagsterDbtProjectPreparer):
        # overrides of the two steps that build a DbtCliResource (dagster-dbt 0.29); if a later
        # dagster-dbt renames them, tests/test_dagster_dev_load.py fails with "not found on PATH"
        # (dbt's YAML reads CX_DATA_DIR and the DuckDB settings: set from ingestion/settings.py)
        def _prepare_packages(self, project: DbtProject) -> None:
            with settings.exported():
                DbtCliResource(project_dir=project, dbt_executable=DBT_EXECUTABLE).cli(
                    ["deps", "--quiet"], target_path=project.target_path).wait()

        def _prepare_manifest(self, project: DbtProject) -> None:
            with settings.exported():
                DbtCliResource(project_dir=project, dbt_executable=DBT_EXECUTABLE).cli(
                    self._prepare_project_cli_args, target_path=project.target_path).wait()
            self._invalidate_seeds_in_partial_parse(project)

    return replace(project, preparer=VenvDbtPreparer())


def manifest_is_stale(manifest_path: Path) -> bool:
    """Missing, or older than a file of the dbt project (models, macros, seeds, tests, project file)."""
    manifest_path = Path(manifest_path)
    if not manifest_path.exists():
        return True
    built = manifest_path.stat().st_mtime
    sources = [DBT_PROJECT / "dbt_project.yml", DBT_PROJECT / "profiles.yml"]
    for folder in ("models", "macros", "seeds", "tests", "snapshots"):
        sources += [p for p in (DBT_PROJECT / folder).rglob("*") if p.is_file()]
    return any(p.stat().st_mtime > built for p in sources if p.exists())


def ensure_manifest(manifest_path: Path) -> bool:
    """Parse the project when its manifest is missing or older than the project's files (no database
    needed); return whether this call parsed it. `make install` and CI prepare it; this keeps a checkout
    whose models changed since (a pull, an edit) loadable under plain `python`, `cxw` or pytest: a stale
    manifest makes dagster-dbt fail on the first node it does not know.

    Processes that find it stale at once (pytest's workers after an edit, `cxw` beside `dagster dev`) parse
    one at a time, under an exclusive lock on ``.parse.lock`` beside the manifest, and each looks again once it
    holds the lock: the first parses, the others find it fresh. Two parses writing the same target folder at
    once left a manifest.json that was not JSON."""
    if not manifest_is_stale(manifest_path):
        return False
    import fcntl

    from dbt.cli.main import dbtRunner

    target = Path(manifest_path).parent
    target.mkdir(parents=True, exist_ok=True)
    with (target / ".parse.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not manifest_is_stale(manifest_path):
            return False
        args = ["parse", "--project-dir", str(DBT_PROJECT), "--profiles-dir", str(DBT_PROJECT),
                "--target-path", str(target), "--quiet"]
        with settings.exported():  # the sources' locations in the manifest are under CX_DATA_DIR
            result = dbtRunner().invoke(args)
            if not result.success:
                # dbt's partial parsing fails when a model's YAML entry moved to another file since the last
                # parse ("dbt found two schema.yml entries for the same resource"): parse from scratch
                result = dbtRunner().invoke([*args, "--no-partial-parse"])
    if not result.success:
        raise DbtError(f"dbt parse failed: {result.exception}")
    return True


# the profile's target for each engine (dbt_project/profiles.yml); None: the profile's default (DuckDB)
ENGINE_TARGETS = {"duckdb": None, "spark": "spark"}
# the Spark target reads the key secret from this variable (dbt scrubs DBT_ENV_SECRET_* from its logs)
SPARK_SECRET_ENV = "DBT_ENV_SECRET_CX_KEY"


def engine_target(engine: str | None = None) -> str | None:
    """The dbt target of ``engine`` (default: CX_ENGINE); None is the profile's default, DuckDB."""
    engine = engine or settings.current().engine
    if engine not in ENGINE_TARGETS:
        raise ValueError(f"unknown engine {engine!r}: one of {', '.join(ENGINE_TARGETS)}")
    return ENGINE_TARGETS[engine]


@contextmanager
def dbt_environment(data_dir: Path | None, target: str | None,
                    window: dict[str, str] | None = None) -> Iterator[None]:
    """The environment a dbt call on ``target`` reads, for the block: CX_DATA_DIR and the DuckDB
    settings; the run's window (``window``: :func:`window_env`'s first half; none: every window variable
    empty); on Spark also the key secret, after checking that the Thrift server answers (a clear
    message naming what to start, rather than dbt's connection error)."""
    extra = dict(window or window_env(None)[0])
    if target == "spark":
        from ingestion import keys
        from orchestration.spark_server import require_server

        require_server()
        extra[SPARK_SECRET_ENV] = keys.load_secret()
    with settings.exported(data_dir, extra):
        yield


def target_path(data_dir: Path, target: str | None) -> Path:
    """dbt's target folder per engine: each keeps its partial parse (the targets' YAML renders differently)."""
    return data_dir / ("dbt_target" if target is None else f"dbt_target_{target}")


def clear_artifacts(targets: Path) -> None:
    """Remove dbt's artifacts (ARTIFACTS) from the dbt target folder ``targets`` before a run that writes none
    (NIGHTLY_ARGS), or before any run whose results are read from it, so that an earlier run's are not read as
    this one's. The partial parse (partial_parse.msgpack) stays."""
    for name in ARTIFACTS:
        (targets / name).unlink(missing_ok=True)


def node_results(results: list) -> dict:
    """dbt's results of an in-process invocation (run_dbt's) as run_results.json's ``results`` hold them, with the
    fields the night reads (orchestration/night.py dbt_tests): unique_id, status, message, failures."""
    return {"results": [{"unique_id": r.node.unique_id, "status": str(r.status), "message": r.message,
                         "failures": r.failures} for r in results]}


# the info-level events of a node's end, those dbt prints a node's result line with (dagster-dbt streams them), and
# of a node skipped for an upstream failure (its SKIP line: status "skipped", as in run_results.json)
RESULT_LINES = frozenset({"LogModelResult", "LogTestResult", "LogSeedResult", "LogSnapshotResult", "SkippingDetails"})


def node_result(raw_event: Mapping) -> dict | None:
    """The result of one node from an event of dbt's structured log (``--log-format json``), as node_results gives
    it, or None when the event is not a node's end: dbt's result line of the node (RESULT_LINES), what a Dagster
    step streams. It carries no message: dbt says that at the end of the run (node_message). dbt's NodeFinished,
    which does, is logged at debug level: only dbt.log has it, and a full disk can lose it."""
    info, data = raw_event.get("info") or {}, raw_event.get("data") or {}
    node = data.get("node_info") or {}
    if info.get("name") not in RESULT_LINES:
        return None
    # the line's own `status` is what dbt prints (a model's "CREATE TABLE (12)"); the node's is in node_info
    status = node.get("node_status")
    if not node.get("unique_id") or not status:
        return None
    return {"unique_id": node["unique_id"], "status": str(status), "message": None,
            "failures": data.get("num_failures")}


def node_message(raw_event: Mapping) -> tuple[str, str] | None:
    """(unique_id, dbt's message) from the event in which dbt, at the end of a run, says why a node failed, errored
    or warned (RunResultError, RunResultWarningMessage: a test's "Got 3 results, configured to fail if != 0", a
    model's database error), or None: the message its result line (RESULT_LINES) does not carry."""
    info, data = raw_event.get("info") or {}, raw_event.get("data") or {}
    unique_id = (data.get("node_info") or {}).get("unique_id")
    if info.get("name") not in ("RunResultError", "RunResultWarningMessage") or not unique_id or not data.get("msg"):
        return None
    return unique_id, str(data["msg"])


def result_line(result: Mapping, with_message: bool = True) -> str:
    """A node's result (node_result's shape) as one line: its name and status, then the first line of dbt's message
    (``with_message``, when there is one)."""
    message = (result.get("message") or "").strip().splitlines() if with_message else []
    return f"{result['unique_id'].split('.')[2]} {result['status']}" + (f" ({message[0][:300]})" if message else "")


class StreamedResults:
    """dbt's node results gathered from its event stream (``--log-format json``: a Dagster step's), with dbt's
    words for what failed (node_result, node_message), as ``run_results.json`` would hold them (``as_dict``)."""

    def __init__(self) -> None:
        self.results: list[dict] = []
        self.messages: dict[str, str] = {}  # what went wrong, said at the end of the run, not in the result lines

    def add(self, raw_event: Mapping) -> None:
        if (result := node_result(raw_event)) is not None:
            self.results.append(result)
        elif (said := node_message(raw_event)) is not None:
            self.messages[said[0]] = said[1]

    def as_dict(self) -> dict:
        return {"results": [{**r, "message": self.messages.get(r["unique_id"], r["message"])}
                            for r in self.results]}


def release_duckdb() -> None:
    """Close the warehouse that dbt-duckdb held open for an in-process dbt invocation. The profile keeps it open
    for the whole invocation (``keep_open: true``, dbt_project/profiles.yml): otherwise dbt-duckdb closes the
    file, checkpointing it, whenever no node holds a connection, and opens it again for the next node (137
    times in a night at 100k customers x 1 year, ~15 % of its time). Kept open after the invocation, the file's
    single-writer lock would stay with this process, and a later ``duckdb.connect`` of it here with other
    settings (read-only, the publish) would fail. dbt as a subprocess (the Dagster steps) releases it on exit."""
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:  # the Spark-only install
        return
    env = DuckDBConnectionManager._ENV  # dbt-duckdb 1.11: the process's one environment, None when none
    DuckDBConnectionManager.close_all_connections()  # forgets it
    if env is not None and hasattr(env, "close"):
        env.close()  # closes its database now, not when the environment is garbage-collected


def run_dbt(args: list[str], data_dir: Path | None = None, dbt_vars: dict | None = None,
            engine: str | None = None) -> list:
    """Run ``dbt <args>`` on the project for ``data_dir`` on ``engine`` ("duckdb" or "spark"; default
    CX_ENGINE); raise ``DbtError`` naming what failed."""
    from dbt.cli.main import dbtRunner

    # resolved against the working directory, as CX_DATA_DIR is: dbt would take a relative --target-path against
    # the project folder, and write the run's artifacts there
    data_dir = Path(data_dir or settings.data_dir()).resolve()
    target = engine_target(engine)
    cli = [*args, "--project-dir", str(DBT_PROJECT), "--profiles-dir", str(DBT_PROJECT),
           "--target-path", str(target_path(data_dir, target)), "--log-path", str(data_dir / "dbt_logs")]
    if target:
        cli += ["--target", target]
    window, other_vars = window_env(dbt_vars)
    if other_vars:
        cli += ["--vars", json.dumps(other_vars)]
    results: dict[str, object] = {}  # unique_id -> dbt's result, the latest attempt's
    # on Spark's transient error: dbt retry (the nodes that errored and those skipped after them, from
    # run_results.json); a run that wrote none (--no-write-json) runs again whole (a build is idempotent on a window)
    wrote = "--no-write-json" not in args
    again = ["retry", *cli[len(args):]] if wrote else cli
    # dbt's YAML reads CX_DATA_DIR, the DuckDB settings, the secret; the macros the run's window
    with dbt_environment(data_dir, target, window):
        try:
            result = dbtRunner().invoke(cli)
            results.update((r.node.unique_id, r) for r in getattr(result.result, "results", None) or [])
            for _ in range(SPARK_RETRIES if target == "spark" else 0):
                if result.success or not spark_transient(result):
                    break
                print(f"dbt on Spark: a node failed with Spark's known transient error ({SPARK_TRANSIENT[0]}...); "
                      + ("retrying the failed nodes (dbt retry)" if wrote else "running it again"), file=sys.stderr)
                result = dbtRunner().invoke(again)
                results.update((r.node.unique_id, r) for r in getattr(result.result, "results", None) or [])
        finally:
            release_duckdb()
    if not result.success:
        failed = []
        for r in results.values():
            if str(r.status) in ("error", "fail"):
                failed.append(f"{r.node.name}: {r.status} {r.message or ''}".strip())
        said = "; ".join(failed[:10]) or str(result.exception)
        advice = resource_advice(said, data_dir)
        raise DbtError(f"dbt {' '.join(args)} failed: {said}" + (f". {advice}" if advice else ""))
    return list(results.values())


# Spark's Thrift server may fail to close a dbt session: closing a Hive session can build Hive's function registry,
# which needs the hive-llap classes Spark 4 no longer ships (apache/spark#49736), and dbt then reports the node it
# ran as an error (`java.lang.NoClassDefFoundError: org/apache/hadoop/hive/llap/security/LlapSigner$Signable`).
# It depends on which server thread closes the session: intermittent, and nothing the node's SQL did. Such a run is
# retried (SPARK_RETRIES times) rather than failed.
SPARK_TRANSIENT = ("org/apache/hadoop/hive/llap/",)
SPARK_RETRIES = 2


def spark_transient(result: object) -> bool:
    """Whether a failed dbt invocation's errors include Spark's known transient error (SPARK_TRANSIENT), and its
    only failures are errors (a failing test is never retried)."""
    nodes = list(getattr(getattr(result, "result", None), "results", None) or [])
    errors = [str(r.message or "") for r in nodes if str(r.status) == "error"]
    if any(str(r.status) == "fail" for r in nodes):
        return False
    said = [*errors, str(getattr(result, "exception", None) or "")]
    return any(sig in text for sig in SPARK_TRANSIENT for text in said)


def spark_read_back(data_dir: Path | None = None, dbt_vars: dict | None = None) -> dict[str, int]:
    """After a build on Spark: ``warehouse.duckdb`` of ``data_dir`` becomes views over the tables Spark
    built (orchestration/spark_mirror.py), typed by the project's DuckDB-parsed manifest; row counts.
    dbt's own views (``materialized='view'``) hold no files on Spark: they are created in that window by
    ``dbt run`` on DuckDB, with the build's vars (``dbt_vars``: the as_of they were built for), so the
    publish serves them as from a DuckDB build."""
    from orchestration import spark_mirror
    from orchestration.spark_server import warehouse_dir

    data_dir = Path(data_dir or settings.data_dir()).resolve()
    manifest_path = DBT_PROJECT / "target" / "manifest.json"
    ensure_manifest(manifest_path)  # parsed for the default target: contract types in DuckDB's spelling
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    counts = spark_mirror.refresh(data_dir / "warehouse.duckdb", warehouse_dir(data_dir), manifest)
    views = sorted(n["name"] for n in manifest["nodes"].values()
                   if n.get("resource_type") == "model" and n.get("config", {}).get("materialized") == "view")
    if views:
        run_dbt(["run", "--select", *views], data_dir=data_dir, dbt_vars=dbt_vars, engine="duckdb")
    return counts
