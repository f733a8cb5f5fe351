"""``cxw``: the project's command line. Each command is thin wiring around framework-free code."""

from __future__ import annotations

import dataclasses
import datetime as dt
import resource
import sys
import time
from pathlib import Path

import click

from ingestion import settings
from orchestration.keys_cli import keys_group


def _parse_date(_ctx: click.Context, _param: click.Parameter, value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date in YYYY-MM-DD form") from None


def _stop_on_sigterm() -> None:
    """SIGTERM stops ``cxw`` like Ctrl-C: the run in progress is interrupted (Dagster stops its step and
    its dbt subprocess), marked failed, its slots freed; atomic writes leave the previous versions."""
    import signal
    import threading

    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, signal.default_int_handler)


class _CxGroup(click.Group):
    """``cxw``'s top group: a malformed setting (settings.SettingsError, read wherever a command first needs the
    settings) is a one-line error naming the variable, not a traceback."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except settings.SettingsError as exc:
            raise click.ClickException(f"{exc} (docs/settings.md)") from None


@click.group(cls=_CxGroup)
def main() -> None:
    """Customer-experience warehouse: land, validate, model and publish CX data."""
    _stop_on_sigterm()


@main.command()
@click.option("--customers", type=click.IntRange(min=1), default=2_000, show_default=True, help="Customers simulated.")
@click.option("--days", type=click.IntRange(min=1), default=30, show_default=True, help="Nightly drops per system.")
@click.option("--start", callback=_parse_date, default="2026-10-10", show_default=True,
              help="First business date (YYYY-MM-DD).")
@click.option("--seed", type=int, default=42, show_default=True, help="Random seed: same seed, same bytes.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Landing root. Default: $CX_DATA_DIR/landing.")
@click.option("--set", "overrides", multiple=True, metavar="SECTION.FIELD=VALUE",
              help="Override a mess rate or effect size, e.g. --set mess.resend_rate=0.05 (repeatable).")
@click.option("--shard-customer-days", type=click.IntRange(min=1), default=None,
              help="Simulate customers in shards of at most this many customer-days (bounds memory; "
                   "default 40,000,000, a 5-6 GiB peak). Changes the bytes, like the seed.")
def generate(
    customers: int, days: int, start: dt.date, seed: int, out: Path | None, overrides: tuple[str, ...],
    shard_customer_days: int | None,
) -> None:
    """Simulate the company and write one nightly drop per system and business date."""
    try:
        from simulator import TRUTH_FILE, GeneratorConfig
        from simulator import generate as run
        from simulator.overrides import OverrideError, apply_overrides
    except ModuleNotFoundError as exc:  # numpy: an optional dependency group of the package
        raise click.ClickException(f"cxw generate needs the simulator's dependencies ({exc.name} is missing): "
                                   "pip install 'cx-warehouse[simulator]'") from None

    cfg = GeneratorConfig(customers=customers, days=days, start=start, seed=seed)
    if shard_customer_days:
        cfg = dataclasses.replace(cfg, shard_customer_days=shard_customer_days)
    try:
        cfg = apply_overrides(cfg, overrides)
    except OverrideError as exc:
        raise click.BadParameter(str(exc), param_hint="--set") from None
    out = out or settings.landing_dir()
    t0 = time.perf_counter()
    bars: dict[str, click.progressbar] = {}
    labels = {"simulate": "simulating days ", "write": "writing drops   ", "shards": "simulating shards"}

    def progress(stage: str, advance: int, total: int) -> None:
        if stage not in bars:
            for other in bars.values():
                other.render_finish()
            bars[stage] = click.progressbar(length=total, label=labels.get(stage, stage), file=sys.stderr,
                                            show_pos=True)
            bars[stage].render_progress()
        bars[stage].update(advance)

    result = run(cfg, out, progress)
    for bar in bars.values():
        bar.render_finish()
    elapsed = time.perf_counter() - t0
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    click.echo(f"wrote {cfg.days} nights x 4 systems to {out} (truth: {out / TRUTH_FILE})")
    width = max(len(k) for k in result.rows)
    for entity, n in result.rows.items():
        click.echo(f"  {entity:<{width}}  {n:>10,} records")
    click.echo(f"wall time {elapsed:.1f} s, peak memory {peak_mib:,.0f} MiB")


# in-process runs log warnings and errors only; the Dagster UI keeps the full event log
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def _date_range(date: dt.date | None, start: dt.date | None, end: dt.date | None) -> list[dt.date]:
    """``--date D`` or ``--start A --end B`` (first and last business date, both inclusive)."""
    if date and (start or end):
        raise click.UsageError("give either --date or --start/--end, not both")
    if date:
        return [date]
    if not (start and end):
        raise click.UsageError("give --date YYYY-MM-DD, or --start and --end (inclusive)")
    if end < start:
        raise click.UsageError(f"--end {end} is before --start {start}")
    return [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]


def _require_partitions(days: list[dt.date]) -> None:
    """Refuse business dates without a daily partition (usage error, exit 2): dates before
    CX_PARTITIONS_START, and dates not over yet. Checked before anything runs."""
    from orchestration.partitions import daily_partitions

    known = set(daily_partitions.get_partition_keys())
    outside = [d for d in days if d.isoformat() not in known]
    if outside:
        first, last = daily_partitions.get_first_partition_key(), daily_partitions.get_last_partition_key()
        raise click.UsageError(f"{outside[0]} is not a business-date partition: partitions run from {first} to {last} "
                               "(a night's drop is ingested once the day is over; set CX_PARTITIONS_START for "
                               "earlier history)")


def _instance():  # noqa: ANN202 - DagsterInstance, imported lazily to keep `cxw --help` fast
    from dagster import DagsterInstance

    return DagsterInstance.get() if settings.current().dagster_home else DagsterInstance.ephemeral()


def _ingest_chunks(days: list[dt.date]) -> list[list[dt.date]]:
    """The business dates to ingest as ranges of consecutive dates, each of at most MAX_DAYS_PER_RUN:
    one Dagster run each (a date alone is run as its own partition, like the nightly run)."""
    from orchestration.assets.ingestion import MAX_DAYS_PER_RUN

    chunks: list[list[dt.date]] = []
    for day in sorted(set(days)):
        if chunks and day - chunks[-1][-1] == dt.timedelta(days=1) and len(chunks[-1]) < MAX_DAYS_PER_RUN:
            chunks[-1].append(day)
        else:
            chunks.append([day])
    return chunks


def _run_ingest(instance, chunk: list[dt.date], on_day) -> object:  # noqa: ANN001 - Dagster types
    """Run the `ingest` job over ``chunk`` (consecutive dates) in one run, calling ``on_day(system, day)``
    as each drop is landed."""
    from orchestration.assets.ingestion import on_day_landed

    with on_day_landed(on_day):
        if len(chunk) == 1:
            return _execute("ingest", instance, partition_key=chunk[0].isoformat())
        return _execute("ingest", instance, tags={"dagster/asset_partition_range_start": chunk[0].isoformat(),
                                                  "dagster/asset_partition_range_end": chunk[-1].isoformat()})


def _ingest_outcomes(result, chunk: list[dt.date]) -> list[tuple[str, str, str, str, str]]:  # noqa: ANN001
    """What an ingest run reports, per business date where it can tell: ``(kind, date, where, name, message)``
    with kind ``failed`` (a step failed; a ranged run names each refused drop), ``error`` or ``warn`` (a
    check that did not pass, error or warning severity; ``where`` is the asset, ``name`` the check)."""
    from dagster import AssetCheckSeverity, DagsterEventType

    label = chunk[0].isoformat() if len(chunk) == 1 else f"{chunk[0]}..{chunk[-1]}"
    out = []
    for event in result.all_events:
        if event.event_type == DagsterEventType.STEP_FAILURE:
            data = event.event_specific_data
            meta = data.user_failure_data.metadata if data.user_failure_data else {}
            if "refused" in meta:
                for r in meta["refused"].value:
                    out.append(("failed", r["business_date"], event.step_key, "",
                                f"{r['system']} drop for {r['business_date']} refused: {r['file']}: {r['problem']}"))
            else:
                message = data.error.message.strip().splitlines() if data.error else []
                out.append(("failed", label, event.step_key, "", message[-1] if message else ""))
        if event.event_type == DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = event.event_specific_data
            if evaluation.passed:
                continue
            kind = "error" if evaluation.severity == AssetCheckSeverity.ERROR else "warn"
            asset = evaluation.asset_key.to_user_string()
            if "not_passed" in evaluation.metadata:  # a ranged run: one result naming each date
                for day, f in evaluation.metadata["not_passed"].value.items():
                    out.append((kind, day, asset, evaluation.check_name, f["message"] or f["status"]))
            else:
                out.append((kind, label, asset, evaluation.check_name, evaluation.description or ""))
    return out


@main.command()
@click.option("--date", "date", callback=_parse_date, default=None, help="One business date (YYYY-MM-DD).")
@click.option("--start", callback=_parse_date, default=None, help="First business date of a range (inclusive).")
@click.option("--end", callback=_parse_date, default=None, help="Last business date of a range (inclusive).")
@click.option("--all", "all_drops", is_flag=True, help="Every business date with a complete drop in the landing zone.")
@click.option("--verbose", "-v", is_flag=True, help="One line per business date and system.")
def ingest(date: dt.date | None, start: dt.date | None, end: dt.date | None, all_drops: bool, verbose: bool) -> None:
    """Land the drops of one business date, or a range, into the raw zone (runs the Dagster `ingest` job,
    once per range of consecutive dates)."""
    from ingestion import contract as C
    from ingestion.load import latest_attempts, read_audit, summarize_attempts
    from ingestion.manifest import complete_drops
    from orchestration.resources import CxData

    zones = CxData().zones()
    if all_drops:
        if date or start or end:
            raise click.UsageError("--all takes no dates")
        days = sorted({day for _, day, _ in complete_drops(zones.landing)})
        if not days:
            raise click.UsageError(f"no complete drop under {zones.landing}")
    else:
        days = _date_range(date, start, end)
    _require_partitions(days)
    instance = _instance()
    _prepare(instance)
    failed = []
    missing: dict[tuple[str, str], str] = {}
    # one run per range of consecutive dates; the bar moves as each system's drop of each date lands
    with click.progressbar(length=len(days) * len(C.SYSTEMS), label="ingesting", file=sys.stderr, show_pos=True,
                           item_show_func=lambda d: d or "") as bar:
        def landed(system: str, day: dt.date) -> None:
            bar.update(1, f"{day.isoformat()} {system}")

        for chunk in _ingest_chunks(days):
            for kind, day, where, name, message in _ingest_outcomes(_run_ingest(instance, chunk, landed), chunk):
                if kind == "failed":
                    failed.append((day, where, message))
                # a drop not delivered is a warning in the nightly run; asked for by name here, it is an error
                elif name == "drop_delivered":
                    missing[(day, where.split("/")[1])] = message
    latest = latest_attempts(read_audit(zones), days)
    if verbose:
        for row in summarize_attempts(latest, by=("business_date", "system")).iter_rows(named=True):
            click.echo(f"{row['business_date']} {row['system']:<8} {'refused' if row['refused'] else 'loaded':<8} "
                       f"{row['loaded']:>9,} loaded {row['quarantined']:>7,} quarantined")
    click.echo(f"{'system':<8} {'drops':>5} {'refused':>7} {'files':>5} {'manifest rows':>13} {'loaded':>10} "
               f"{'quarantined':>11}  reconciled")
    for s in summarize_attempts(latest, by=("system",)).iter_rows(named=True):
        click.echo(f"{s['system']:<8} {s['drops']:>5} {s['refused']:>7} {s['files']:>5} {s['manifest_rows']:>13,} "
                   f"{s['loaded']:>10,} {s['quarantined']:>11,}  {'yes' if s['reconciled'] else 'NO'}")
    click.echo(f"raw zone: {zones.raw}   quarantine: {zones.quarantine}   audit: {zones.raw / '_load_audit'}")
    for day, step, message in failed:
        click.echo(f"FAILED {day} {step}: {message}", err=True)
    for (day, system), message in sorted(missing.items()):
        click.echo(f"NOT DELIVERED {day} {system}: {message}", err=True)
    if failed or missing:
        sys.exit(1)


@main.command()
@click.option("--as-of", "as_of", callback=_parse_date, default=None,
              help="Only drops with business_date <= this date count (default: everything loaded).")
@click.option("--full-refresh", is_flag=True, help="Rebuild incremental models (customer keys are kept).")
def build(as_of: dt.date | None, full_refresh: bool) -> None:
    """Build and test the dbt warehouse ($CX_DATA_DIR/warehouse.duckdb, or on Spark with CX_ENGINE=spark)
    from the raw zone."""
    from ingestion.keys import KeySecretError
    from orchestration.spark_mirror import MirrorError
    from orchestration.spark_server import SparkError
    from orchestration.warehouse import DbtError, engine_target, record_built_as_of, run_dbt, spark_read_back

    args = ["build", *(["--full-refresh"] if full_refresh else [])]
    _take_writer_lock()
    t0 = time.perf_counter()
    try:
        dbt_vars = {"as_of": as_of.isoformat()} if as_of else None
        results = run_dbt(args, dbt_vars=dbt_vars)
        if engine_target() == "spark":
            spark_read_back(dbt_vars=dbt_vars)
        record_built_as_of(settings.data_dir(), engine_target(), as_of.isoformat() if as_of else None)
    except (DbtError, SparkError, MirrorError, KeySecretError) as exc:
        raise click.ClickException(str(exc)) from None
    counts: dict[str, int] = {}
    for r in results:
        kind = r.node.resource_type.value if hasattr(r.node.resource_type, "value") else str(r.node.resource_type)
        counts[kind] = counts.get(kind, 0) + 1
    click.echo(f"dbt build passed in {time.perf_counter() - t0:.0f} s: "
               + ", ".join(f"{n} {k}s" for k, n in sorted(counts.items())))
    path = settings.warehouse_path()
    _run_analytics(path, as_of)
    _print_kpis(path, "marts.")
    click.echo(f"warehouse: {path}")


def _run_analytics(path: Path, as_of: dt.date | None) -> None:
    """The Python analyses (analytics/run.py) over the warehouse just built, as of ``as_of`` or the data's
    last date; a table that breaks its declared schema is not written and the command fails."""
    from analytics import run as A

    day = as_of or A.data_as_of(path)
    if day is None:
        click.echo("analyses skipped: the warehouse has no data yet")
        return
    t0 = time.perf_counter()
    outputs = A.run_all(path, day)
    bad = [p for o in outputs for p in o.problems]
    if bad:
        raise click.ClickException("analyses not written (declared schema): " + "; ".join(bad))
    click.echo(f"analyses as of {day} in {time.perf_counter() - t0:.0f} s: "
               + ", ".join(f"{o.table} ({o.frame.height:,} rows)" for o in outputs))


def _print_kpis(path: Path, prefix: str = "") -> None:
    """The latest day's KPIs (all customers) from the warehouse or its published copy."""
    import duckdb

    table = f"{prefix}kpi_experience_daily"
    with duckdb.connect(str(path), read_only=True) as con:
        day = con.execute(f"select max(kpi_date) from {table}").fetchone()[0]
        rows = con.execute(f"select kpi, value, n, ci_low, ci_high, is_reportable from {table} "
                           "where dimension = 'all' and kpi_date = ? order by kpi", [day]).fetchall()
    click.echo(f"KPIs of {day} (all customers; * = not reportable, n < 30):")
    for kpi, value, n, lo, hi, ok in rows:
        interval = f"[{lo:.3g}, {hi:.3g}]" if lo is not None else ""
        shown = f"{value:>9.3f}" if value is not None else f"{'-':>9}"
        click.echo(f"  {kpi:<30} {shown}  n={n:<5} {interval}{'' if ok else ' *'}")


def _print_analytics(path: Path) -> None:
    """What to fix first and what it is worth: the top three NPS drivers and the revenue at stake (served)."""
    import duckdb

    from analytics import drivers, value

    with duckdb.connect(str(path), read_only=True) as con:
        tables = {t for (t,) in con.execute("select table_name from information_schema.tables "
                                            "where table_schema = 'main'").fetchall()}
        if not {"mart_experience_drivers", "mart_experience_value"} <= tables:
            return
        drv = con.sql("select * from mart_experience_drivers").pl()
        found = drivers.top_drivers(drv, outcome="nps", k=3)
        top = found if found.height == 3 else drivers.top_drivers(drv, outcome="nps", k=3, reportable_only=False)
        stake = value.revenue_at_stake(con.sql("select * from mart_experience_value").pl())
    click.echo("top drivers of NPS: what to fix first (mean score with the moment in the 90 days before the "
               "answer minus without, 95 % interval; share of the joint model's R²; * = not reportable, n < 30):")
    for i, row in enumerate(top.iter_rows(named=True), 1):
        interval = (f"[{row['effect_ci_low']:+.2f}, {row['effect_ci_high']:+.2f}]"
                    if row["effect_ci_low"] is not None else "")
        effect = f"{row['effect']:+6.2f}" if row["effect"] is not None else f"{'-':>6}"
        click.echo(f"  {i}. {row['moment']:<24} {effect} points {interval:<16} n={row['n_with']:<6} "
                   f"importance {row['importance']:.0%}{'' if row['is_reportable'] else ' *'}")
    if not top.height:
        click.echo("  (none yet: no NPS answer has a moment of truth before it)")
    amount, lo, hi, currency = stake
    if amount is not None:
        interval = f" [{lo:,.0f}, {hi:,.0f}]" if lo is not None and hi is not None else ""
        click.echo(f"revenue at stake from today's negative customers: {amount:,.0f} {currency} a year{interval}")


def _report(result, label: str) -> list[str]:  # noqa: ANN001 - ExecuteInProcessResult
    """Failed steps and failed checks of an in-process run, as readable lines."""
    from dagster import AssetCheckSeverity, DagsterEventType

    problems = []
    for event in result.all_events:
        if event.event_type == DagsterEventType.STEP_FAILURE:
            message = event.event_specific_data.error.message.strip().splitlines()
            problems.append(f"{label}: step {event.step_key} failed: {message[-1] if message else ''}")
        if event.event_type == DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = event.event_specific_data
            if not evaluation.passed:
                detail = evaluation.description or ""
                line = (f"{label}: check {evaluation.check_name} on {evaluation.asset_key.to_user_string()} "
                        f"failed{': ' + detail if detail else ''}")
                if evaluation.severity == AssetCheckSeverity.ERROR:
                    problems.append(line)
                else:
                    click.echo(f"warning {line}", err=True)
    return problems


def _command_line() -> str:
    return " ".join(["cxw", *sys.argv[1:]])


def _take_writer_lock() -> None:
    """Hold the data directory's writer lock until this command ends, waiting for its holder by name
    (orchestration/writer.py): one writer at a time, whoever started it (another ``cxw``, the
    schedule, the drop sensor, the UI); the wait is bounded by CX_SLOT_WAIT_SECONDS, like the pool
    wait. Reentrant: a backfill takes it once per run."""
    from orchestration import writer

    data_dir = settings.data_dir()
    try:
        writer.acquire(data_dir, _command_line(), lambda line: click.echo(line, err=True))
    except (writer.WriterBusy, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        raise click.ClickException(f"cannot take the writer lock {writer.lock_path(data_dir)}: {exc}") from None
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        ctx.call_on_close(lambda: writer.release(data_dir))


def _prepare(instance) -> None:  # noqa: ANN001 - DagsterInstance
    """Before a run: take the writer lock (waiting for its holder, named), recover what a killed run
    left behind (its run, its pool slot, half-written files), then wait for a live run holding a pool
    slot, naming it (docs/reliability.md)."""
    from orchestration import recovery

    def say(line: str) -> None:
        click.echo(line, err=True)

    _take_writer_lock()
    recovery.clean_data_dir(settings.data_dir(), say)
    try:
        recovery.wait_for_pools(instance, say)
    except (recovery.SlotWaitTimeout, ValueError) as exc:
        raise click.ClickException(str(exc)) from None


def _execute(name: str, instance=None, **kwargs):  # noqa: ANN001, ANN003, ANN202 - Dagster types
    """Run job ``name`` in this process, tagged with this process so a later run can tell if it died;
    on SIGINT/SIGTERM the run is marked failed and its pool slots freed before ``cxw`` exits."""
    from dagster._core.utils import make_new_run_id

    from orchestration import recovery, writer
    from orchestration.definitions import defs

    instance = instance or _instance()
    run_id = make_new_run_id()
    writer.note_run(settings.data_dir(), run_id)
    tags = {**kwargs.pop("tags", {}), **recovery.process_tags(f"cxw {name}")}
    try:
        return defs.resolve_job_def(name).execute_in_process(instance=instance, raise_on_error=False, run_config=QUIET,
                                                             run_id=run_id, tags=tags, **kwargs)
    except KeyboardInterrupt:
        recovery.finish_run(instance, run_id, "interrupted (SIGINT or SIGTERM)")
        raise
    except Exception as exc:
        from ingestion.disk import is_disk_full

        if not is_disk_full(exc):
            raise
        where = getattr(instance, "root_directory", None) or "the Dagster instance"
        raise click.ClickException(
            f"no space left on device for the Dagster instance ({where}): {str(exc).splitlines()[0]}. Nothing "
            "was published: BI keeps the marts it had. Free space there, then re-run") from None


GATED_JOBS = ("nightly", "warehouse", "publish")  # the jobs whose run ends with the quality gate


def _preload_great_expectations() -> None:
    """Import Great Expectations (about 11 s of CPU: pandas, scipy, altair, sqlalchemy) in a background
    thread while ingestion and dbt run, mostly in DuckDB and polars with the GIL released, so the gate
    does not wait for it at the end of the night. A failure here is left to the gate's own import."""
    import contextlib
    import threading

    def load() -> None:
        with contextlib.suppress(Exception):  # the gate imports it again and reports what fails
            import great_expectations.expectations  # noqa: F401

    threading.Thread(target=load, name="preload-great-expectations", daemon=True).start()


def _run_job(name: str, label: str, **kwargs) -> list[str]:  # noqa: ANN003
    instance = _instance()
    _prepare(instance)
    if name in GATED_JOBS:
        from orchestration.definitions import defs  # noqa: F401 - before the thread: the job's own imports first

        _preload_great_expectations()
    return _report(_execute(name, instance, **kwargs), label)


def _finish(problems: list[str]) -> None:
    path = settings.serving_dir()
    for p in problems:
        click.echo(f"FAILED {p}", err=True)
    if problems:
        click.echo(f"nothing published: BI keeps the marts it had; the data-health record in {path / 'cx.duckdb'} "
                   "says why (cxw status)", err=True)
        sys.exit(1)
    _print_kpis(path / "cx.duckdb")
    _print_analytics(path / "cx.duckdb")
    click.echo(f"published for BI: {path / 'cx.duckdb'} (DuckDB) and {path / 'parquet'}/ (Parquet)")
    click.echo(f"data health: {_health_line(path / 'cx.duckdb')} (details: cxw status)")
    click.echo(f"Great Expectations Data Docs: {settings.data_dir() / 'docs' / 'gx' / 'index.html'}")


def _health_line(served: Path) -> str:
    import duckdb

    with duckdb.connect(str(served), read_only=True) as con:
        as_of = con.execute("select max(as_of) from _publication").fetchone()[0]
        counts = dict(con.execute("select status, count(*) from data_health where business_date = cast(? as date) "
                                  "group by status", [as_of]).fetchall())
    return (f"{as_of}: {counts.get('fail', 0)} blocking failures, {counts.get('warn', 0)} warnings, "
            f"{counts.get('pass', 0)} passed, {counts.get('no_baseline', 0)} without a baseline yet")


@main.command()
@click.option("--date", "date", callback=_parse_date, required=True, help="Business date (YYYY-MM-DD).")
def nightly(date: dt.date) -> None:
    """The nightly run for one business date: ingest -> dbt -> checks -> publish."""
    _require_partitions([date])
    _finish(_run_job("nightly", str(date), partition_key=date.isoformat()))


@main.command()
@click.option("--start", callback=_parse_date, required=True, help="First business date (inclusive).")
@click.option("--end", callback=_parse_date, required=True, help="Last business date (inclusive).")
def backfill(start: dt.date, end: dt.date) -> None:
    """Ingest each business date of a range (one Dagster run per range of up to 92 dates), then build,
    check and publish once for the whole range."""
    from ingestion import contract as C

    days = _date_range(None, start, end)
    _require_partitions(days)
    problems = []
    instance = _instance()
    # one ingest run per range of at most MAX_DAYS_PER_RUN dates (each date landed in date order, with
    # its health rows, as the nightly run lands it); the bar moves as each system's drop of each date lands
    with click.progressbar(length=len(days) * len(C.SYSTEMS), label="ingesting", file=sys.stderr, show_pos=True,
                           item_show_func=lambda d: d or "") as bar:
        def landed(system: str, day: dt.date) -> None:
            bar.update(1, f"{day.isoformat()} {system}")

        for chunk in _ingest_chunks(days):
            _prepare(instance)
            for kind, day, where, name, message in _ingest_outcomes(_run_ingest(instance, chunk, landed), chunk):
                if kind == "failed":
                    problems.append(f"{day}: step {where} failed: {message}")
                elif kind == "error":
                    problems.append(f"{day}: check {name} on {where} failed{': ' + message if message else ''}")
                else:
                    click.echo(f"warning {day}: check {name} on {where} failed{': ' + message if message else ''}",
                               err=True)
    if problems:
        _finish(problems)
    click.echo(f"building the warehouse for {start} .. {end} (one dbt run), checking and publishing", err=True)
    _finish(_run_job("warehouse", f"{start}..{end}", tags={
        "dagster/asset_partition_range_start": start.isoformat(),
        "dagster/asset_partition_range_end": end.isoformat()}))


@main.command()
@click.option("--date", "date", callback=_parse_date, required=True,
              help="Business date the published data is as of (YYYY-MM-DD).")
def publish(date: dt.date) -> None:
    """Gate the current warehouse for a business date and publish it to BI (no ingest, no dbt)."""
    _require_partitions([date])
    _finish(_run_job("publish", str(date), partition_key=date.isoformat()))


@main.command()
def verify() -> None:
    """Run every dbt data test over every row (no window), as the weekly verification does: what a night's tests,
    which read only the rows the night wrote, cannot see (a row changed outside dbt). Records them in the data-health
    record of the date the warehouse was built for; a failing model is tested in full every night until it passes."""
    instance = _instance()
    _prepare(instance)
    result = _execute("verify", instance)
    problems = _report(result, "verify")
    for p in problems:
        click.echo(f"FAILED {p}", err=True)
    if problems:
        sys.exit(1)
    summary = result.output_for_node("verify_warehouse")
    recorded = (f"recorded in the data-health record of {summary['recorded_for']} (cxw status)"
                if summary["recorded_for"] else "not recorded: nothing built for a date, nothing published")
    for line in summary["warned"]:
        click.echo(f"warning {line}", err=True)
    click.echo(f"no dbt test failed over every row: {summary['tests']} tests, {summary['passed']} passed, "
               f"{len(summary['warned'])} warned; {recorded}")


@main.command()
@click.option("--run", "run_id", default=None, metavar="RUN_ID",
              help="Mark this unfinished run failed and free its pool slots (its process must be gone).")
def recover(run_id: str | None) -> None:
    """Recover what killed runs left behind (cxw does this before every run); list unfinished runs."""
    from orchestration import recovery

    instance = _instance()

    def say(line: str) -> None:
        click.echo(line)

    try:
        if run_id:
            recovery.force_fail(instance, run_id, say)
    except (LookupError, RuntimeError) as exc:
        raise click.ClickException(str(exc)) from None
    recovery.clean_data_dir(settings.data_dir(), say)
    recovery.recover(instance, say)
    held = {run: (pool, step) for pool, run, step in recovery.holders(instance)}
    for run in instance.get_runs(filters=recovery.RunsFilter(statuses=recovery.UNFINISHED)):
        alive = recovery.owner_alive(run.tags)
        state = {True: "its process is alive", None: "its process cannot be judged from here"}[alive]
        slot = f", holds the {held[run.run_id][0]} slot" if run.run_id in held else ""
        click.echo(f"unfinished: {recovery.describe(run, run.run_id)}, {run.status.value}{slot}: {state}")
    if not held and not instance.get_runs(filters=recovery.RunsFilter(statuses=recovery.UNFINISHED), limit=1):
        click.echo("no unfinished run, no pool slot held")


@main.command()
@click.option("--date", "date", callback=_parse_date, default=None,
              help="Business date whose health to show (default: the latest one recorded).")
@click.option("--all", "show_all", is_flag=True, help="List every check, passed ones too.")
def status(date: dt.date | None, show_all: bool) -> None:
    """What BI reads now, and the data health of the last night (from the served copy)."""
    import duckdb

    served = settings.serving_dir() / "cx.duckdb"
    if not served.exists():
        raise click.ClickException(f"nothing served yet: {served} does not exist (run cxw nightly or cxw backfill)")
    with duckdb.connect(str(served), read_only=True) as con:
        tables = {r[0] for r in con.execute("show tables").fetchall()}
        if "_publication" in tables:
            as_of, at, n_tables, n_rows = con.execute(
                "select max(as_of), max(published_at), count(*), sum(row_count) from _publication").fetchone()
            click.echo(f"published for BI: marts as of {as_of}, published {at:%Y-%m-%d %H:%M} UTC "
                       f"({n_tables} tables, {n_rows:,} rows) in {served}")
        else:
            as_of = None
            click.echo(f"published for BI: no marts yet in {served} (only the data-health record)")
        if "data_health" not in tables:
            click.echo("data health: no record served yet")
            return
        day = date or con.execute("select max(business_date) from data_health").fetchone()[0]
        rows = con.execute("""
            select status, severity, check_name, asset, coalesce(subject, ''), coalesce(message, ''),
                   observed_value, coalesce(expected_range, '')
            from data_health where business_date = cast(? as date)
            order by case status when 'fail' then 0 when 'warn' then 1 when 'no_baseline' then 2 else 3 end,
                     check_name, asset, subject""", [day]).fetchall()
    if not rows:
        click.echo(f"data health: nothing recorded for {day}")
        return
    counts = {s: sum(r[0] == s for r in rows) for s in ("fail", "warn", "pass", "no_baseline")}
    blocked = counts["fail"] > 0
    verdict = "BLOCKED" if blocked else ("PUBLISHED" if as_of and str(as_of) >= str(day) else "NOT PUBLISHED")
    click.echo(f"health of {day}: {verdict} -- {counts['fail']} blocking failures, {counts['warn']} warnings, "
               f"{counts['pass']} passed, {counts['no_baseline']} without a baseline yet")
    for st, _severity, check, asset, subject, message, observed, expected in rows:
        if st == "pass" and not show_all:
            continue
        label = {"fail": "FAIL", "warn": "WARN", "no_baseline": "NEW ", "pass": "ok  "}[st]
        where = f"{asset}" + (f" [{subject}]" if subject else "")
        detail = message or (f"observed {observed:g}, expected {expected}" if observed is not None else expected)
        click.echo(f"  {label} {check:<30} {where:<48} {detail}")
    if blocked:
        click.echo(f"the marts BI reads did not move (still as of {as_of}); fix what failed, then re-run the night")


@main.command()
@click.option("--date", "date", callback=_parse_date, default=None,
              help="As-of date of the report (default: the served publication's).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="HTML file to write. Default: $CX_DATA_DIR/report/cx-report-<as_of>.html.")
def report(date: dt.date | None, out: Path | None) -> None:
    """One self-contained offline HTML page of the experience, from the served marts only."""
    import duckdb

    from reporting.build import build_report

    served = settings.serving_dir() / "cx.duckdb"
    if not served.exists():
        raise click.ClickException(f"nothing served yet: {served} does not exist (run cxw nightly or cxw backfill)")
    if date is None:
        with duckdb.connect(str(served), read_only=True) as con:
            found = con.execute("select max(as_of) from _publication").fetchone()[0] if "_publication" in {
                r[0] for r in con.execute("show tables").fetchall()} else None
        date = dt.date.fromisoformat(str(found)) if found else dt.date.today()
    out = out or settings.data_dir() / "report" / f"cx-report-{date}.html"
    info = build_report(served, out, date, gx_index=settings.data_dir() / "docs" / "gx" / "index.html")
    click.echo(f"report as of {info.as_of}: {info.path} ({info.bytes / 1e6:.1f} MB, {info.charts} charts, "
               f"built in {info.seconds:.1f} s)" + (f"; skipped: {', '.join(info.skipped)}" if info.skipped else ""))


main.add_command(keys_group, name="keys")


@keys_group.command("rotate")
@click.option("--date", "date", callback=_parse_date, required=True,
              help="Business date to rebuild and publish as of (the last one run).")
def rotate(date: dt.date) -> None:
    """Re-key every customer with the key secret now configured, rebuild, and publish; earlier served
    Parquet versions (old keys) are purged. BI extracts naming a customer_key must be refreshed."""
    from ingestion.keys import KeySecretError, fingerprint, load_secret
    from orchestration.warehouse import DbtError, run_dbt

    try:
        secret = load_secret(create=False)
    except KeySecretError as exc:
        raise click.ClickException(str(exc)) from None
    _require_partitions([date])
    _take_writer_lock()
    click.echo(f"re-keying with the secret of fingerprint {fingerprint(secret)[:12]} ...")
    try:
        run_dbt(["build"], dbt_vars={"as_of": date.isoformat(), "rotate_keys": True})
    except DbtError as exc:
        raise click.ClickException(str(exc)) from None
    _finish(_run_job("publish", str(date), partition_key=date.isoformat()))
    click.echo("every customer key changed; earlier served Parquet versions were purged")


@click.group("spark")
def spark_group() -> None:
    """The local Spark Thrift server, a stand-in for a cluster (docs/spark.md)."""


def _local_server():
    from orchestration.spark_server import LocalServer

    return LocalServer.from_settings()


@spark_group.command("start")
@click.option("--timeout", type=click.FloatRange(min=1), default=240, show_default=True,
              help="Seconds to wait for the server to listen.")
def spark_start(timeout: float) -> None:
    """Start a local Spark Thrift server (warehouse and metastore under $CX_DATA_DIR/spark)."""
    from orchestration.spark_server import SparkError

    try:
        _local_server().start(timeout=timeout, echo=click.echo)
    except SparkError as exc:
        raise click.ClickException(str(exc)) from None


@spark_group.command("stop")
def spark_stop() -> None:
    """Stop the local Spark Thrift server this data directory started."""
    _local_server().stop(echo=click.echo)


@spark_group.command("status")
def spark_status() -> None:
    """Whether the Spark Thrift server dbt's `spark` target points at answers."""
    from orchestration.spark_server import is_listening

    server = _local_server()
    running = server.recorded()
    listening = is_listening(server.host, server.port)
    where = f"{server.host}:{server.port}"
    if running:
        click.echo(f"local server running: pid {running['pid']} since {running['started']}, {where} "
                   f"{'listening' if listening else 'not listening yet'}, warehouse {server.warehouse_dir}")
    elif listening:
        click.echo(f"a Spark Thrift server (not started by this data directory) answers at {where}")
    else:
        raise click.ClickException(f"nothing answers at {where}: `cxw spark start`")


main.add_command(spark_group, name="spark")


if __name__ == "__main__":
    main()
