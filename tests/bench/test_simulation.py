"""The search-quality simulation (bench/simulate_brackets.py) runs the engine's default search report for report,
so its figures over hundreds of seeds are the engine's: the same TPE, bracket draws and rung decisions, without
Ray. Its `rayrule` variant (Ray's own rung rule, the engine's before) makes other decisions on the same seeds."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import quality  # noqa: E402
import simulate_brackets  # noqa: E402

pytestmark = pytest.mark.usefixtures("local_ray")


@pytest.mark.parametrize("name, full_trainings, seed", [("mnist_cnn", 4, 1), ("synthetic", 4, 2)])
def test_the_simulated_default_is_the_engines_search_report_for_report(tmp_path, name, full_trainings, seed):
    limit = quality.budget(name, full_trainings)
    engine = [value for _, value in quality.run_engine(name, "default", seed, tmp_path, limit)]
    simulated = [value for _, value in simulate_brackets.search(name, "adaptive", seed, limit)]
    assert len(engine) == limit and simulated[:limit] == engine
    ray_rule = [value for _, value in simulate_brackets.search(name, "adaptive+rayrule", seed, limit)]
    assert ray_rule[:limit] != engine  # the rung rule decides something in these searches
