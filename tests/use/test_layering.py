"""One package talks to Ray and Optuna: no module outside autotune/engine imports either (the recipes included)."""
from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from use_support import ROOT

ENGINE = ROOT / "autotune" / "engine"
SOURCES = sorted([*(ROOT / "autotune").rglob("*.py"), *(ROOT / "recipes").rglob("*.py")])
ENGINE_ONLY = {"ray", "optuna"}


def engine_imports(path: Path) -> list[str]:
    """`import ray...`, `from optuna... import ...` and the like in one source file, as 'line: module'."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found += [f"{node.lineno}: {name}" for name in names if name.split(".")[0] in ENGINE_ONLY]
    return found


def test_the_scan_sees_the_engine_import_them():
    assert len(SOURCES) > 20
    assert engine_imports(ENGINE / "search.py") and engine_imports(ENGINE / "study.py")


@pytest.mark.parametrize("path", [p for p in SOURCES if ENGINE not in p.parents],
                         ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_module_outside_the_engine_imports_ray_or_optuna(path):
    assert engine_imports(path) == [], f"{path.relative_to(ROOT)} imports the engine's libraries directly"


def test_the_run_records_and_ls_runs_import_no_ray():
    """A run's records (space.json, space.trials, space.budgets, summary.json) were read in engine/storage.py, which
    imports Ray (1.2 s): `autotune ls runs` kept a copy of the space.trials reader to start in 0.4 s. Both read them
    through autotune.engine.run_records now, which imports no Ray, nor does the listing."""
    code = ("import sys, autotune.engine.run_records, autotune.cli.ls_runs; "
            "print([m for m in ('ray', 'optuna', 'torch', 'pyarrow.fs') if m in sys.modules])")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    found = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert (found.returncode, found.stdout.strip()) == (0, "[]"), found.stderr
