"""A smoke run of bench/image_imbalance.py: one seed, one epoch, --no-write. No figure is asserted but that each
weighting has its row, and that the doc is left alone."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_image_imbalance_benchmark_runs_and_leaves_the_doc_alone():
    doc = (REPO / "docs" / "benchmarks.md").read_text()
    done = subprocess.run([sys.executable, "bench/image_imbalance.py", "--seeds", "0", "--epochs", "1", "--no-write"],
                          cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (REPO / "docs" / "benchmarks.md").read_text() == doc
    out = done.stdout
    assert out.count("## Images: imbalanced classes (train.class_weight)") == 1
    assert "Command: `python bench/image_imbalance.py --seeds 0 --epochs 1`" in out
    for weighting in ("none", "balanced"):
        (row,) = [line for line in out.splitlines() if line.startswith(f"| {weighting} |")]
        assert len(re.findall(r"[01]\.\d{3} ± \d\.\d{3}", row)) == 2, row
    assert "Balanced against none, paired per seed: balanced accuracy " in out and not re.search(r"\bnan\b", out)
