"""One package talks to Ray and Optuna: no module outside autotune/engine imports either (the recipes included)."""
from __future__ import annotations

import ast
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
