"""The code location loads the way `make dev` loads it: venv not activated, under `dagster dev`.

`dagster dev` sets DAGSTER_IS_DEV_CLI, so ``dbt_project.prepare_if_dev()`` re-parses the dbt project
at import. With ``.venv/bin`` off PATH there is no ``dbt`` to find there: the parse must use the dbt
next to the running interpreter, as the ``dbt`` resource does.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_code_location_loads_under_dagster_dev_without_venv_on_path(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    venv_bin = str(Path(sys.executable).parent)
    env.update(
        PATH=os.pathsep.join(p for p in ("/usr/bin", "/bin") if p != venv_bin),
        DAGSTER_IS_DEV_CLI="1",  # what `dagster dev` sets for the code servers it starts
        CX_DATA_DIR=str(tmp_path / "data"),
        DAGSTER_HOME=str(tmp_path / "dagster_home"),
    )
    (tmp_path / "dagster_home").mkdir()
    shutil.copy(ROOT / "dagster.yaml", tmp_path / "dagster_home" / "dagster.yaml")  # as `make install` does
    # `dagster definitions validate` imports the module code location as `dagster dev -m` does
    proc = subprocess.run([sys.executable, "-m", "dagster", "definitions", "validate",
                           "-m", "orchestration.definitions"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    output = proc.stdout + proc.stderr
    assert "not found on PATH" not in output, output[-4000:]
    assert proc.returncode == 0, output[-4000:]
    assert "Validation successful" in output, output[-4000:]
