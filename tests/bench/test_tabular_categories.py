"""A smoke run of bench/tabular_categories.py: one seed, one epoch, --no-write. No figure is asserted but that each
model has one, and that the doc is left alone."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_categories_and_imbalance_benchmark_runs_and_leaves_the_doc_alone():
    doc = (REPO / "docs" / "benchmarks.md").read_text()
    done = subprocess.run([sys.executable, "bench/tabular_categories.py", "--seeds", "0", "--epochs", "1",
                           "--dropouts", "0.1", "--no-write"], cwd=REPO, capture_output=True, text=True, timeout=300,
                          check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (REPO / "docs" / "benchmarks.md").read_text() == doc
    out = done.stdout
    assert out.count("## Tabular: unseen categories and imbalanced classes") == 1
    assert "Command: `python bench/tabular_categories.py --seeds 0 --epochs 1 --dropouts 0.1`" in out
    for model in ("MLP before (reserved rows drawn, no category dropout)", "MLP, category_dropout 0 ",
                  "MLP, category_dropout 0.1 ", "HGB, native categorical", "MLP without the store column"):
        (row,) = [line for line in out.splitlines() if line.startswith(f"| {model}")]
        assert len(re.findall(r"\d+\.\d ± \d+\.\d", row)) >= 2, row
    for table in ("breast_cancer", "digits"):
        rows = [line for line in out.splitlines() if line.startswith(f"| {table} |")]
        assert len(rows) == 4 and all(len(re.findall(r"[01]\.\d{3} ± ", r)) == 2 for r in rows), rows
    assert not re.search(r"\bnan\b", out)
