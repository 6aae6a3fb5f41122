"""The replay recipe and the quality measure's arithmetic, without Ray: the recorded curves are served as recorded,
a configuration snaps to its nearest grid point, a diverged one raises where it diverged, and regret is measured
against the epochs spent."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))

import quality  # noqa: E402
import replay_recipe  # noqa: E402
from autotune.errors import Diverged  # noqa: E402

TABLE = "digits_mlp"


def _config(lr: float, batch: int, width: int, depth: int, dropout: float) -> dict:
    return {"data": {"table": TABLE}, "optimizer": {"lr": lr}, "train": {"epochs": 0, "batch_size": batch},
            "model": {"width": width, "depth": depth, "dropout": dropout}}


def _replayed(config: dict, checkpoint: str | None = None) -> list[dict]:
    reports = []

    def report(metrics: dict, directory: str | None) -> None:
        assert directory and json.loads(Path(directory, "state.json").read_text())["epoch"] == metrics["epoch"]
        reports.append(metrics)

    replay_recipe.train(config, report, checkpoint=checkpoint)
    return reports


def test_a_grid_point_replays_its_recorded_curve():
    table = replay_recipe.load_table(TABLE)
    i = 100
    point = dict(zip(table.grid, table.points[i]))
    config = _config(point["optimizer.lr"], int(point["train.batch_size"]), int(point["model.width"]),
                     int(point["model.depth"]), point["model.dropout"])
    assert table.index(config) == i and not table.diverged_at[i]
    reports = _replayed(config)
    assert [r["epoch"] for r in reports] == list(range(1, table.epochs + 1))
    assert np.allclose([r["val_accuracy"] for r in reports], table.curves["val_accuracy"][i])


def test_values_between_grid_points_snap_to_the_nearest_on_a_log_scale():
    table = replay_recipe.load_table(TABLE)
    near = table.index(_config(0.0017, 16, 40, 1, 0.1))  # 0.0017 is nearer 0.001 than 0.003 in log, 40 nearer 32
    assert list(table.points[near]) == [0.001, 16, 32, 1, 0.0]
    assert list(table.points[table.index(_config(0.002, 200, 300, 3, 0.4))]) == [0.003, 256, 512, 3, 0.5]


def test_a_diverged_configuration_raises_at_the_recorded_epoch():
    table = replay_recipe.load_table(TABLE)
    i = int(np.flatnonzero(table.diverged_at)[0])
    point = dict(zip(table.grid, table.points[i]))
    config = _config(point["optimizer.lr"], int(point["train.batch_size"]), int(point["model.width"]),
                     int(point["model.depth"]), point["model.dropout"])
    reports = []
    with pytest.raises(Diverged, match=f"epoch {table.diverged_at[i]}"):
        replay_recipe.train(config, lambda m, d: reports.append(m))
    assert len(reports) == table.diverged_at[i] - 1


def test_a_resumed_trial_continues_after_its_checkpoint(tmp_path):
    config = _config(0.03, 64, 128, 2, 0.25)
    (tmp_path / "state.json").write_text(json.dumps({"epoch": 7, "config": config}))
    def values(reports: list[dict]) -> list[tuple[int, float]]:
        return [(r["epoch"], r["val_accuracy"]) for r in reports]

    reports = _replayed(config, str(tmp_path))
    assert reports[0]["epoch"] == 8 and values(reports) == values(_replayed(config))[7:]


def test_the_synthetic_curves_rank_slow_starters_last_early_and_first_late():
    slow = replay_recipe.synthetic_curve(10**-2.5, 32, 512, 3, 0.3, 50)  # the best configuration
    fast = replay_recipe.synthetic_curve(0.05, 256, 512, 3, 0.0, 50)
    assert slow[0] < fast[0] and slow.max() > fast.max() + 0.05
    assert np.array_equal(slow, replay_recipe.synthetic_curve(10**-2.5, 32, 512, 3, 0.3, 50))  # deterministic


def test_regret_follows_the_best_value_found_within_each_share_of_the_budget():
    reports = [(t, v) for t, v in enumerate([0.5, 0.7, 0.6, 0.9, 0.8, 0.95, 0.6, 0.6, 0.6, 1.0])]
    # after 1, 2 (25 % of 10, rounded), 5 and 10 epochs: best 0.5, 0.7, 0.9, 1.0 with best 1.0 and worst 0.0
    assert quality.regrets(reports, 10, best=1.0, worst=0.0) == pytest.approx([0.5, 0.3, 0.1, 0.0])
    assert quality.regrets(reports + [(99, 1.0)], 4, best=1.0, worst=0.0)[-1] == pytest.approx(0.1)  # cut at 4


def test_the_optuna_script_spends_the_budget_and_prunes():
    reports = quality.run_optuna_script("synthetic", seed=0, limit=200)
    assert 200 <= len(reports) <= 200 + replay_recipe.SYNTHETIC_EPOCHS
    best, worst = quality.bounds("synthetic")
    assert 0 <= quality.regrets(reports, 200, best, worst)[-1] < 1


def test_the_spaces_a_user_would_write_cover_each_table():
    space = quality.search_space(TABLE)
    assert space["optimizer.lr"] == {"loguniform": [0.001, 0.3]} and space["model.depth"] == {"int": [1, 3]}
    assert space["train.batch_size"] == {"choice": [16, 64, 256]}


def test_a_seed_is_stuck_beyond_twice_the_median_or_one_validation_sample():
    def verdict(worst: float, median: float, name: str = TABLE) -> bool:
        row = {"mean": [0.5, 0.1, 0.05, 0.01], "worst_final": worst, "median_final": median}
        return quality.verdicts({name: {"default": row}})[name]["no seed stuck"]

    step = quality.resolution(TABLE)
    assert verdict(0.02, 0.01) and not verdict(0.021, 0.01)  # twice the median
    assert verdict(step, 0.0) and not verdict(step * 1.5, 0.0)  # a median of 0: one image is not stuck, two are
    assert quality.resolution("synthetic") is None and not verdict(0.001, 0.0, "synthetic")


def test_a_run_of_the_default_alone_has_no_gap_to_report():
    row = {"mean": [0.5, 0.1, 0.05, 0.01], "worst_final": 0.02, "median_final": 0.01}
    assert quality._largest_gap(TABLE, {"default": row}) == ""  # `--methods default`: no goal method to trail
    behind = {"default": row, "random+fifo": {**row, "mean": [0.5, 0.1, 0.04, 0.01]}}
    assert quality._largest_gap(TABLE, behind).startswith(". Largest gap: +0.010")


def test_the_simulation_runs_the_engines_adaptive_weights(monkeypatch):
    """On the synthetic benchmark (its curves cross) the engine's weights leave the first bracket once enough
    trials went further: the adaptive search starts as ASHA's and then parts from it."""
    import simulate_brackets
    from autotune.engine.hyperband import Hyperband

    engines: list[Hyperband] = []

    class Recorded(Hyperband):
        """The engine's scheduler, kept for the test to read its weights."""

        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            engines.append(self)

    monkeypatch.setattr(simulate_brackets, "Hyperband", Recorded)
    limit = quality.budget("synthetic", 4)
    adaptive = simulate_brackets.search("synthetic", "adaptive", seed=0, limit=limit)
    asha = simulate_brackets.search("synthetic", "asha", seed=0, limit=limit)
    assert len(adaptive) >= limit and len(asha) >= limit
    # the first trials all join the bracket that stops at epoch 1, as ASHA's do: the same reports at first
    assert adaptive[:100] == asha[:100]
    [engine] = engines
    weights = engine.current_weights()
    assert weights[0] < 1 and sum(weights) == pytest.approx(1)  # no longer all to the first bracket
    assert adaptive != asha  # then trials join the brackets that stop later


def test_the_default_is_compared_with_each_goal_method_seed_by_seed():
    mine = np.asarray([[0.5, 0.2, 0.1, 0.0], [0.5, 0.4, 0.1, 0.2]])
    theirs = np.asarray([[0.5, 0.3, 0.2, 0.1], [0.5, 0.3, 0.3, 0.1]])
    mean, error = quality.paired(mine, theirs)
    assert mean == pytest.approx([0.0, 0.0, -0.15, 0.0])
    assert error == pytest.approx([0.0, 0.1, 0.05, 0.1])  # sd of (-0.1, 0.1) is 0.1414, over sqrt(2)
    runs = [{"benchmark": TABLE, "method": method, "seed": seed, "regret": list(rows[seed])}
            for method, rows in (("default", mine), ("optuna_script", theirs)) for seed in (0, 1)]
    assert quality._paired_line(runs, TABLE).endswith(
        "optuna_script +0.0000 ± 0.1000 / -0.1500 ± 0.0500 / +0.0000 ± 0.1000")
    assert quality._paired_line(runs[:3], TABLE) == ""  # one seed in common: no standard error


def test_the_warm_start_section_gives_warm_minus_cold_seed_by_seed():
    """The warm-start table's means alone read as 'warm is better' whatever the seeds' spread: under it, the paired
    difference with its standard error, and on how many seeds warm was better at 10 %."""
    warm = np.asarray([[0.0, 0.0, 0.0, 0.0], [0.3, 0.1, 0.0, 0.0]])
    cold = np.asarray([[0.4, 0.1, 0.0, 0.0], [0.1, 0.1, 0.0, 0.0]])
    runs = [{"benchmark": TABLE, "start": start, "seed": seed, "regret": list(rows[seed])}
            for start, rows in (("cold", cold), ("warm", warm)) for seed in (0, 1)]
    table = {TABLE: {start: rows.mean(axis=0).tolist() for start, rows in (("cold", cold), ("warm", warm))}}
    info = {"minutes": 1.0, "date": "2026-12-07 05:40", "load_start": 0.3}
    text = quality.render_warm_start({"runs": runs, "table": table, "seeds": [0, 1], "full_trainings": 10,
                                      "concurrent": 1}, info, "python bench/run.py --only warm_start")
    assert f"- {TABLE}: -0.100 ± 0.300 / -0.050 ± 0.050 / +0.000 ± 0.000 / +0.000 ± 0.000 " \
           "(at 10 %: warm better on 1, worse on 1 of 2 seeds)" in text
    one_seed = quality.render_warm_start({"runs": runs[::2], "table": table, "seeds": [0], "full_trainings": 10,
                                          "concurrent": 1}, info, "python bench/run.py --only warm_start")
    assert "paired by seed" not in one_seed  # one seed: no standard error


def test_the_simulations_variants_are_the_default_with_one_change_each():
    import simulate_brackets

    sampler, scheduler = simulate_brackets.modified("adaptive+startup5+min3+tau1", seed=0, epochs=27)
    assert sampler._n_startup_trials == 5 and scheduler.min_trials == 3 and scheduler.power == 1.0
    with pytest.raises(ValueError, match="unknown modifier"):
        simulate_brackets.modified("adaptive+nonsense", seed=0, epochs=27)
    limit = quality.budget("mnist_cnn", 3)
    for variant in ("adaptive+rand0.2", "adaptive+bohb", "adaptive+hbfirst+maxt"):
        assert len(simulate_brackets.search("mnist_cnn", variant, seed=0, limit=limit)) >= limit
    # with no modifier, the variant is the engine's adaptive default, report for report
    assert simulate_brackets.search("mnist_cnn", "adaptive+", seed=1, limit=limit) == simulate_brackets.search(
        "mnist_cnn", "adaptive", seed=1, limit=limit)


def test_the_plain_optuna_script_repeats_and_the_simulation_runs_the_same_script():
    import simulate_brackets

    limit = quality.budget(TABLE, 4)
    first = [value for _, value in quality.run_optuna_script(TABLE, 3, limit)]
    assert [value for _, value in quality.run_optuna_script(TABLE, 3, limit)] == first  # its brackets follow the seed
    assert [value for _, value in simulate_brackets.search(TABLE, "script", seed=3, limit=limit)] == first
    assert [value for _, value in quality.run_optuna_script(TABLE, 4, limit)] != first


def test_the_simulation_tells_v01s_stopped_trials_complete_and_todays_pruned():
    import simulate_brackets

    limit = quality.budget(TABLE, 6)
    told_pruned = simulate_brackets.search(TABLE, "asha4", seed=0, limit=limit)
    told_complete = simulate_brackets.search(TABLE, "v0.1", seed=0, limit=limit)
    assert len(told_pruned) >= limit and len(told_complete) >= limit
    assert told_pruned[:10] == told_complete[:10]  # the same random start-up trials, stopped at the same rungs
    assert told_pruned != told_complete  # then TPE, told otherwise, proposes otherwise
