"""The layout holds: ``ingestion/`` is what runs on a customer's real drops, ``simulator/`` is the simulated
company that makes demo and test data. ingestion imports without the simulator's dependencies (numpy,
an optional dependency group), and neither ingestion nor orchestration imports the simulator, except
``cxw generate``, lazily."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# what only the simulator may need (pyproject.toml, [project.optional-dependencies] simulator)
SIMULATOR_ONLY = ("numpy",)
# the one place outside the simulator (and the tests and benchmarks) that may use it: a lazy import
ALLOWED_SIMULATOR_IMPORTS = {("orchestration/cli.py", "generate")}


def _modules(package: str) -> list[str]:
    names = []
    for path in sorted((ROOT / package).rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def _import_without(modules: list[str], blocked: tuple[str, ...]) -> dict[str, str]:
    """Import each module in a fresh interpreter where ``blocked`` cannot be imported; the errors by module."""
    script = (
        "import importlib, json, sys\n"
        f"for name in {list(blocked)!r}:\n"
        "    sys.modules[name] = None  # import name -> ImportError\n"
        "errors = {}\n"
        f"for module in {modules!r}:\n"
        "    try:\n"
        "        importlib.import_module(module)\n"
        "    except Exception as exc:\n"
        "        errors[module] = f'{type(exc).__name__}: {exc}'\n"
        "print(json.dumps(errors))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_ingestion_imports_without_the_simulator_dependencies() -> None:
    modules = _modules("ingestion")
    assert "ingestion" in modules and "ingestion.load" in modules
    assert _import_without(modules, SIMULATOR_ONLY) == {}
    # the blocking works: the simulator itself does need numpy
    assert "simulator" in _import_without(["simulator"], SIMULATOR_ONLY)


def _imports(path: Path) -> list[tuple[str, str | None]]:
    """(absolute module imported, name of the outermost function it is imported in, or None at module level)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = ".".join(path.relative_to(ROOT).parent.parts)
    found: list[tuple[str, str | None]] = []

    def visit(node: ast.AST, function: str | None) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                found.extend((alias.name, function) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:  # relative: resolve against the file's package
                    base = package.split(".")[: len(package.split(".")) - child.level + 1]
                    found.append((".".join([*base, *([child.module] if child.module else [])]), function))
                else:
                    found.append((child.module or "", function))
            inner = function
            if function is None and isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                inner = child.name
            visit(child, inner)

    visit(tree, None)
    return found


def _top(module: str) -> str:
    return module.split(".")[0]


def test_ingestion_imports_neither_the_simulator_nor_dagster() -> None:
    offending = [(str(path.relative_to(ROOT)), module)
                 for path in sorted((ROOT / "ingestion").rglob("*.py"))
                 for module, _ in _imports(path)
                 if _top(module) in ("simulator", "dagster", "dagster_dbt", *SIMULATOR_ONLY)]
    assert offending == [], "ingestion/ runs on real drops: no simulator, no Dagster"


def test_only_cxw_generate_imports_the_simulator_lazily() -> None:
    found = set()
    for package in ("ingestion", "orchestration"):
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = str(path.relative_to(ROOT))
            found |= {(rel, function) for module, function in _imports(path) if _top(module) == "simulator"}
    assert found <= ALLOWED_SIMULATOR_IMPORTS, found - ALLOWED_SIMULATOR_IMPORTS


def test_simulator_imports_neither_orchestration_nor_dagster() -> None:
    offending = [(str(path.relative_to(ROOT)), module)
                 for path in sorted((ROOT / "simulator").rglob("*.py"))
                 for module, _ in _imports(path)
                 if _top(module) in ("orchestration", "dagster", "dagster_dbt")]
    assert offending == [], "the simulator writes drops; it needs the landing contract, not the orchestrator"


def test_cxw_generate_without_the_simulator_dependencies_says_what_to_install(tmp_path: Path) -> None:
    script = (f"import sys\nfor name in {list(SIMULATOR_ONLY)!r}:\n    sys.modules[name] = None\n"
              "from orchestration.cli import main\n"
              f"main(['generate', '--customers', '5', '--days', '1', '--out', {str(tmp_path / 'out')!r}])\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stderr
    assert "pip install 'cx-warehouse[simulator]'" in done.stderr
    assert not (tmp_path / "out").exists()


# --- one settings object: nothing but ingestion/settings.py touches the environment -------------------
SETTINGS_MODULE = "ingestion/settings.py"
ENV_PACKAGES = ("ingestion", "orchestration", "expectations", "simulator", "benchmarks")
ENV_FUNCTIONS = {"environ", "environb", "getenv", "getenvb", "putenv", "unsetenv"}


def _environment_uses(path: Path) -> list[str]:
    """Each place ``path`` reads or writes the environment: ``os.environ``, ``os.getenv``, ... or an
    ``environ``/``getenv`` imported from ``os``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and node.attr in ENV_FUNCTIONS
                and isinstance(node.value, ast.Name) and node.value.id in ("os", "posix")):
            found.append(f"line {node.lineno}: {node.value.id}.{node.attr}")
        elif isinstance(node, ast.ImportFrom) and node.module in ("os", "posix"):
            found += [f"line {node.lineno}: from {node.module} import {alias.name}"
                      for alias in node.names if alias.name in ENV_FUNCTIONS | {"*"}]
    return found


def test_no_environment_variable_is_read_outside_the_settings_module() -> None:
    offending = {}
    for package in ENV_PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = str(path.relative_to(ROOT))
            if rel != SETTINGS_MODULE and (uses := _environment_uses(path)):
                offending[rel] = uses
    assert offending == {}, ("read settings through ingestion/settings.py (declare a new variable in its "
                             f"VARIABLES; a child's environment: settings.subprocess_env): {offending}")
    # the check sees what it looks for
    assert _environment_uses(ROOT / SETTINGS_MODULE)
