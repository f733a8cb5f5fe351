"""The writer lock (orchestration/writer.py): one writer per data directory, whoever started it.

Held by another process, it is waited for, naming the holder; the wait gives up after
``CX_SLOT_WAIT_SECONDS`` with a message naming the holder; a holder that dies frees it at once (the
kernel releases an ``flock``); within one process it is reentrant; ``cxw`` writing commands take
it, read-only ones do not; a run launched by Dagster's daemon holds it in its executor.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import dagster as dg
import pytest
from click.testing import CliRunner

from orchestration import writer
from orchestration.cli import main

ROOT = Path(__file__).resolve().parents[1]

HOLDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from orchestration import writer
    writer.acquire(Path(sys.argv[1]), "cxw nightly --date 2026-10-13", timeout=0)
    writer.note_run(Path(sys.argv[1]), "3f2a9c1e0000")
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
    print("releasing", time.time(), flush=True)  # the process ends: the kernel releases the lock
""")


def hold(data_dir: Path, seconds: float) -> subprocess.Popen:
    """Another process holding the lock for ``seconds`` (returns once it holds it)."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(data_dir), str(seconds)], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_held_lock_is_waited_for_naming_its_holder(tmp_path: Path) -> None:
    other = hold(tmp_path, 1.5)
    said: list[str] = []
    t0 = time.monotonic()
    writer.acquire(tmp_path, "cxw publish --date 2026-10-13", said.append, timeout=30, poll=0.1)
    waited = time.monotonic() - t0
    try:
        assert other.wait(timeout=10) == 0
        assert waited > 0.5
        waiting = [line for line in said if line.startswith("waiting")]
        assert len(waiting) == 1, said  # said once, not once per poll
        assert f"pid {other.pid} on" in waiting[0] and "cxw nightly --date 2026-10-13" in waiting[0]
        assert "run 3f2a9c1e" in waiting[0] and "since" in waiting[0] and "CX_SLOT_WAIT_SECONDS" in waiting[0]
        assert said[-1].startswith("took the writer lock")
        assert writer.holder(tmp_path)["command"] == "cxw publish --date 2026-10-13"
        assert writer.holder(tmp_path)["pid"] == os.getpid()
    finally:
        writer.release(tmp_path)
    assert not writer.held_here(tmp_path)


def test_the_wait_gives_up_with_a_message_naming_the_holder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    other = hold(tmp_path, 30)
    try:
        monkeypatch.setenv("CX_SLOT_WAIT_SECONDS", "0.5")  # the same setting as the pool wait
        t0 = time.monotonic()
        with pytest.raises(writer.WriterBusy) as err:
            writer.acquire(tmp_path, "cxw nightly --date 2026-10-14", lambda _: None, poll=0.1)
        assert time.monotonic() - t0 < 5
        message = str(err.value)
        assert "gave up after 0 s" in message or "gave up after 1 s" in message
        assert f"pid {other.pid}" in message and "cxw nightly --date 2026-10-13" in message
        assert "CX_SLOT_WAIT_SECONDS" in message and "Terminate" in message
        assert not writer.held_here(tmp_path)
        with pytest.raises(writer.WriterBusy, match="the run is CANCELING"):  # terminated while it waits
            writer.acquire(tmp_path, "dagster run", lambda _: None, timeout=60, poll=0.1,
                           stop=lambda: "the run is CANCELING")
    finally:
        other.kill()
        other.wait()


def test_a_holder_that_dies_frees_the_lock(tmp_path: Path) -> None:
    other = hold(tmp_path, 60)
    other.send_signal(signal.SIGKILL)  # no finally, no cleanup: the kernel releases the flock
    other.wait()
    said: list[str] = []
    with writer.held(tmp_path, "cxw nightly --date 2026-10-13", said.append, timeout=0):
        assert writer.held_here(tmp_path)
        assert writer.holder(tmp_path)["pid"] == os.getpid()  # the dead holder's name is replaced
    assert said == []


def test_the_lock_is_reentrant_within_a_process(tmp_path: Path) -> None:
    probe = "import sys; from pathlib import Path; from orchestration import writer; " \
            "writer.acquire(Path(sys.argv[1]), 'probe', lambda _: None, timeout=0)"

    def other_can_take_it() -> bool:
        return subprocess.run([sys.executable, "-c", probe, str(tmp_path)], cwd=ROOT, capture_output=True,
                              timeout=60).returncode == 0

    writer.acquire(tmp_path, "cxw backfill", timeout=0)
    writer.acquire(tmp_path, "cxw backfill", timeout=0)  # a second run of the same backfill: no wait
    writer.release(tmp_path)
    assert writer.held_here(tmp_path)
    assert not other_can_take_it()
    writer.release(tmp_path)
    assert not writer.held_here(tmp_path)
    assert other_can_take_it()


def test_writing_commands_take_the_lock_read_only_ones_do_not(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CX_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CX_SLOT_WAIT_SECONDS", "0.5")
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    other = hold(tmp_path, 30)
    try:
        built = CliRunner().invoke(main, ["build"])
        assert built.exit_code == 1, built.output
        assert "waiting for the writer lock" in built.output and f"pid {other.pid}" in built.output
        assert "gave up after" in built.output and "cxw nightly --date 2026-10-13" in built.output
        listed = CliRunner().invoke(main, ["recover"])  # lists unfinished runs: never waits for a writer
        assert listed.exit_code == 0, listed.output
        assert "waiting" not in listed.output
        assert "nothing served yet" in CliRunner().invoke(main, ["status"]).output
    finally:
        other.kill()
        other.wait()
    assert not writer.held_here(tmp_path)


# --- a run launched by the daemon: the code location's executor holds the lock ----------------------------

@dg.op
def writes(context) -> float:  # noqa: ANN001 - Dagster reads the hint: none under `from __future__`
    data_dir = Path(os.environ["CX_DATA_DIR"])
    assert writer.held_here(data_dir), "the step runs without the writer lock"
    context.log.info("writing")
    return time.time()


@dg.job(executor_def=writer.writer_executor())
def daemon_job() -> None:
    writes()


def test_a_run_launched_by_dagster_waits_for_the_writer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``execute_job`` with the job's own executor is what a run worker does for a run the daemon
    launched (the schedule, the drop sensor): it waits for the holder, then runs holding the lock."""
    monkeypatch.setenv("CX_DATA_DIR", str(tmp_path / "data"))
    other = hold(tmp_path / "data", 6)  # longer than execute_job takes to reach its executor
    (tmp_path / "home").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "home")) as instance:
        with dg.execute_job(dg.reconstructable(daemon_job), instance=instance,
                            run_config={"execution": {"config": {"in_process": {}}}},
                            tags={"dagster/sensor_name": "landing_drops"}) as result:
            ended = time.time()
            assert result.success
            wrote_at = result.output_for_node("writes")
        assert other.wait(timeout=10) == 0
        released_at = float(other.stdout.readline().split()[1])
        messages = [e.message for e in instance.all_logs(result.run_id) if e.message]
    waiting = next(m for m in messages if m.startswith("waiting for the writer lock"))
    assert f"pid {other.pid}" in waiting and "cxw nightly" in waiting
    assert released_at <= wrote_at <= ended  # the step ran once the holder had gone, not before
    assert not writer.held_here(tmp_path / "data")
    assert writer.holder(tmp_path / "data")["command"] == "dagster run of daemon_job, sensor landing_drops"


def test_replaced_parquet_versions_stay_for_readers_in_flight(tmp_path: Path) -> None:
    """``publish._prune``: the two newest versions stay; an older one goes once it has not been the
    served one for ``PARQUET_GRACE_SECONDS`` (its successor was linked that long ago)."""
    from orchestration.publish import PARQUET_GRACE_SECONDS, _prune

    now = time.time()
    ages = {"v1": 3600, "v2": 2 * PARQUET_GRACE_SECONDS, "v3": PARQUET_GRACE_SECONDS / 2, "v4": 1, "v5": 0}
    for name, age in ages.items():
        (tmp_path / name).mkdir()
        os.utime(tmp_path / name, (now - age, now - age))
    _prune(tmp_path, tmp_path / "v5", now)
    # v1 was replaced when v2 was linked (long ago); v2 when v3 was (less than the grace ago): it stays
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v2", "v3", "v4", "v5"]
    _prune(tmp_path, tmp_path / "v5", now + PARQUET_GRACE_SECONDS)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v4", "v5"]
