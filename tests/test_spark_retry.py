"""run_dbt on Spark retries a run that failed only with Spark's known transient error (the Thrift server failing
to close a session: orchestration/warehouse.py, SPARK_TRANSIENT), and nothing else. dbt is replaced by a fake
runner here: the error itself is intermittent (seen once in CI, tests/test_spark.py passes the rest of the time)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from types import SimpleNamespace

import pytest

from orchestration import warehouse
from orchestration.warehouse import SPARK_RETRIES, DbtError, run_dbt, spark_transient

LLAP = ("Runtime Error in model int_source_keys: java.lang.NoClassDefFoundError: "
        "org/apache/hadoop/hive/llap/security/LlapSigner$Signable")


def _node(name: str, status: str, message: str | None = None) -> SimpleNamespace:
    return SimpleNamespace(node=SimpleNamespace(name=name, unique_id=f"model.cx_warehouse.{name}"), status=status,
                           message=message)


def _result(*nodes: SimpleNamespace, exception: Exception | None = None) -> SimpleNamespace:
    success = not exception and all(n.status in ("success", "pass") for n in nodes)
    return SimpleNamespace(success=success, result=SimpleNamespace(results=list(nodes)), exception=exception)


class _Runner:
    """dbt's programmatic runner, answering each invoke() with the next of ``answers``; the calls it got."""

    def __init__(self, answers: list[SimpleNamespace]) -> None:
        self.answers, self.calls = list(answers), []

    def __call__(self) -> _Runner:  # dbtRunner() in run_dbt
        return self

    def invoke(self, cli: list[str]) -> SimpleNamespace:
        self.calls.append(cli)
        return self.answers.pop(0)


@pytest.fixture()
def fake(monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    def install(*answers: SimpleNamespace) -> _Runner:
        runner = _Runner(list(answers))
        monkeypatch.setattr("dbt.cli.main.dbtRunner", runner)
        # no Thrift server to check, no DuckDB handle to release
        monkeypatch.setattr(warehouse, "dbt_environment", lambda *_a, **_k: contextlib.nullcontext())
        monkeypatch.setattr(warehouse, "release_duckdb", lambda: None)
        return runner
    return install


def test_the_transient_error_is_retried_with_dbt_retry_and_the_results_merged(fake, tmp_path: Path) -> None:  # noqa: ANN001
    runner = fake(_result(_node("stg_a", "success"), _node("int_source_keys", "error", LLAP),
                          _node("fct_b", "skipped")),
                  _result(_node("int_source_keys", "success"), _node("fct_b", "success")))
    results = run_dbt(["build", "--select", "x+"], data_dir=tmp_path, engine="spark")
    assert [c[0] for c in runner.calls] == ["build", "retry"]
    retry = runner.calls[1]
    assert "--select" not in retry  # dbt retry takes the selection from the failed run's run_results.json
    assert retry[retry.index("--target") + 1] == "spark" and "--target-path" in retry and "--project-dir" in retry
    assert {r.node.name: r.status for r in results} == {"stg_a": "success", "int_source_keys": "success",
                                                       "fct_b": "success"}


def test_a_run_without_artifacts_is_run_again_whole(fake, tmp_path: Path) -> None:  # noqa: ANN001
    runner = fake(_result(_node("int_source_keys", "error", LLAP)), _result(_node("int_source_keys", "success")))
    run_dbt(["build", "--no-write-json"], data_dir=tmp_path, engine="spark")
    assert runner.calls[1] == runner.calls[0]  # no run_results.json to retry from


def test_a_transient_error_that_persists_fails_after_the_retries(fake, tmp_path: Path) -> None:  # noqa: ANN001
    runner = fake(*[_result(_node("int_source_keys", "error", LLAP)) for _ in range(SPARK_RETRIES + 1)])
    with pytest.raises(DbtError, match=r"int_source_keys: error .*LlapSigner"):
        run_dbt(["build"], data_dir=tmp_path, engine="spark")
    assert len(runner.calls) == SPARK_RETRIES + 1


@pytest.mark.parametrize(("engine", "answer"), [
    ("spark", _result(_node("int_source_keys", "error", "Table or view not found: raw.crm_customers"))),
    ("spark", _result(_node("int_source_keys", "error", LLAP), _node("unique_x", "fail", "Got 2 results"))),
    ("duckdb", _result(_node("int_source_keys", "error", LLAP))),
])
def test_anything_else_fails_at_once(fake, tmp_path: Path, engine: str, answer: SimpleNamespace) -> None:  # noqa: ANN001
    runner = fake(answer)
    with pytest.raises(DbtError, match="int_source_keys: error"):
        run_dbt(["build"], data_dir=tmp_path, engine=engine)
    assert len(runner.calls) == 1


def test_spark_transient_reads_node_errors_and_dbts_exception() -> None:
    assert spark_transient(_result(_node("m", "error", LLAP)))
    assert spark_transient(_result(exception=RuntimeError(LLAP)))
    assert not spark_transient(_result(_node("m", "error", "Permission denied")))
    assert not spark_transient(_result(_node("m", "error", LLAP), _node("t", "fail", "Got 1 result")))
    assert not spark_transient(_result(_node("m", "success")))
