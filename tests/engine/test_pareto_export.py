"""A search of several objectives keeps each trial's best checkpoint, and `autotune export RUN_DIR --trial ID`
exports any trial of its Pareto front (the canonical model, or a plain folder); its summary says which was
exported and how to export another."""
from __future__ import annotations

import json
import shutil
import types
from pathlib import Path

import pandas as pd
import pytest

import autotune
from autotune.cli import main
from autotune.engine import checkpoints
from autotune.engine import export as export_module
from autotune.engine.checkpoints import CheckpointPolicy, TrialCheckpoints
from autotune.engine.result import SearchResult
from autotune.engine.summary import format_summary
from engine_helpers import toy_space

# two trials of the same point, one at a time: 3 epochs (the best accuracy, at epoch 3), then 1 epoch (less
# accurate, but fewer epochs): both on the front of [val_accuracy max, epoch min]
START = "[{model.x: 0.3, model.y: 0.6, train.epochs: 3}, {model.x: 0.3, model.y: 0.6, train.epochs: 1}]"


def _space(name: str, metric: str) -> str:
    text = toy_space(name, trials=2, concurrent=1, train="{epochs: {choice: [3, 1]}}",
                     search=f", sampler: random, scheduler: fifo, start: {START}")
    return text.replace("metric: val_accuracy, mode: max", metric)


@pytest.mark.parametrize(("modes", "kept"), [(("max", "min"), [1]), (("max",), [])])
def test_a_trial_below_the_best_keeps_its_best_epoch_with_several_objectives(monkeypatch, modes, kept):
    monkeypatch.setattr(checkpoints, "kv_get", lambda key: b"[0.9, -100.0]")  # the search's best kept so far
    policy = CheckpointPolicy(10, ("val_accuracy", "num_parameters")[: len(modes)], modes, "best-checkpoint:test")
    trial = TrialCheckpoints(policy, epochs=3)
    reports = [{"val_accuracy": a, "num_parameters": 10.0} for a in (0.5, 0.4, 0.3)]
    assert [epoch for epoch, report in enumerate(reports, 1) if trial.keep(report, offered=True)] == kept


def test_the_summary_names_the_export_of_the_front_and_quotes_its_commands(tmp_path):
    run_dir = tmp_path / "my runs" / "tab3"
    trials = pd.DataFrame([{"trial_id": "aa", "status": "TERMINATED", "epochs": 2, "stopped_early": False,
                            "val_accuracy": 0.9, "num_parameters": 900.0}])
    result = SearchResult(name="tab3", run_dir=run_dir, metric=("val_accuracy", "num_parameters"),
                          mode=("max", "min"), best_trial_id="aa", best_params={}, best_config={},
                          best_metrics={"val_accuracy": 0.9}, trials=trials, model_dir=tmp_path / "models" / "tab3",
                          promotion={"promoted": True, "reason": "no canonical model yet"},
                          pareto=trials.to_dict("records"))
    text = format_summary(result)
    assert (f"Exported: aa, the best val_accuracy on the Pareto front (ties: num_parameters); another trial of the "
            f"front: autotune export '{run_dir}' --trial ID") in text
    assert f"TensorBoard: tensorboard --logdir '{run_dir}'" in text
    assert "Exported:" not in format_summary(
        SearchResult(**{**result.__dict__, "metric": ("val_accuracy",), "mode": ("max",), "pareto": []}))


def _front_result(points: list[tuple[float, float]], best: str) -> SearchResult:
    """A result of two objectives (val_accuracy max, epoch_seconds min) whose front is `points`, a trial each."""
    trials = pd.DataFrame([{"trial_id": f"t{i:03d}", "status": "TERMINATED", "epochs": 5, "stopped_early": False,
                            "val_accuracy": a, "epoch_seconds": s} for i, (a, s) in enumerate(points)])
    return SearchResult(name="front", run_dir=Path("runs/front"), metric=("val_accuracy", "epoch_seconds"),
                        mode=("max", "min"), best_trial_id=best, best_params={}, best_config={},
                        best_metrics={}, trials=trials, pareto=trials.to_dict("records"))


def _front_lines(result: SearchResult) -> list[str]:
    lines = format_summary(result).splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Pareto front"))
    return lines[start: lines.index("", start)]


def test_trials_of_equal_values_share_a_row_of_the_front():
    """A search of 500 trials on a discrete space listed 138 trials of its front, a row each, for 11 points."""
    points = [(0.92, 0.05)] * 3 + [(0.97, 0.5)] * 4 + [(0.95, 0.1)]
    lines = _front_lines(_front_result(points, best="t004"))
    assert lines[0] == "Pareto front (val_accuracy max, epoch_seconds min): 8 trials at 3 points"
    assert [line.split() for line in lines[1:]] == [
        ["trial", "val_accuracy", "epoch_seconds", "same", "values"], ["-" * 5, "-" * 12, "-" * 13, "-" * 11],
        ["t004", "0.97", "0.5", "4", "trials"], ["t007", "0.95", "0.1"], ["t000", "0.92", "0.05", "3", "trials"]]


def test_a_long_front_lists_twenty_points_spread_along_it():
    points = [(0.99 - i / 100, 1.0 - i / 100) for i in range(50)]
    lines = _front_lines(_front_result(points, best="t000"))
    assert lines[0] == "Pareto front (val_accuracy max, epoch_seconds min): 50 trials"
    listed = [line.split()[0] for line in lines[3:-1]]
    assert len(listed) == 20 and listed[0] == "t000" and listed[-1] == "t049"
    assert lines[-1] == ("(30 more points between these: summary.json's pareto, the Pareto chart of autotune "
                         "report)")
    assert len(_front_lines(_front_result(points[:20], best="t000"))) == 23  # title, header, rule, 20 points


@pytest.mark.usefixtures("local_ray")
def _evaluate_watched(load, seen: list):
    """recipes.load whose recipes' evaluate() first notes in `seen` whether a model.json is beside the model."""
    def watched(name, base=None):
        module = load(name, base)
        copy = types.ModuleType(module.__name__)
        copy.__dict__.update(vars(module))

        def evaluate(model_dir, data):
            seen.append((Path(model_dir) / "model.json").exists())
            return module.evaluate(model_dir, data)

        copy.evaluate = evaluate
        return copy
    return watched


def test_export_a_trial_of_the_front(in_tmp, capsys, monkeypatch):
    result = autotune.fit(_space("front", "metric: [val_accuracy, epoch], mode: [max, min]"))
    best, small = (str(t) for t in result.trials["trial_id"])
    assert result.best_trial_id == best and {r["trial_id"] for r in result.pareto} == {best, small}
    capsys.readouterr()

    assert main(["export", "runs/front", "--trial", small]) == 0
    card = json.loads(Path("models/toy/model.json").read_text())
    assert card["trial_id"] == small and card["metrics"]["epoch"] == 1 and card["test_metrics"]
    assert "chosen by trial id" in card["promotion"]["reason"] and "chosen by trial id" in card["history"][-1]["reason"]
    out = capsys.readouterr().out
    assert f"(trial {small}; held-out test split: test_accuracy" in out
    assert "; it replaced a model that tested better on the same data (test_accuracy " in out  # the run's own export
    assert f"`autotune rollback {Path('models/toy').absolute()}` makes that one current again" in out
    assert main(["rollback", "models/toy"]) == 0  # the search's own export is back
    assert json.loads(Path("models/toy/model.json").read_text())["trial_id"] == best
    assert main(["export", "runs/front", "--trial", best]) == 0  # the canonical model already: nothing to do
    out = capsys.readouterr().out
    assert f"trial {best} of this run is the canonical model already" in out
    assert "exported before the run was stopped" not in out  # a resume's line: this run was not stopped
    assert main(["export", "runs/front", "--trial", small]) == 0
    assert main(["export", "runs/front", "--trial", best]) == 0  # back to the run's own export, chosen again
    card = json.loads(Path("models/toy/model.json").read_text())
    assert card["trial_id"] == best and card["promotion"]["policy"] == "chosen"

    assert main(["export", "runs/front", "--trial", small, "--out", "models/small"]) == 0
    plain = json.loads(Path("models/small/model.json").read_text())
    assert plain["trial_id"] == small and "promotion" not in plain and not Path("models/small").is_symlink()
    # a folder holding an earlier model's card: the tabular recipe's evaluate() read the new model by it (a
    # security walk: test_accuracy 0.3125 against 0.75, with another model's scalers)
    Path("models/stale").mkdir()
    Path("models/stale/model.json").write_text(json.dumps({**plain, "labels": ["an earlier model's"]}))
    seen, load = [], autotune.recipes.load
    monkeypatch.setattr(autotune.recipes, "load", _evaluate_watched(load, seen))
    assert main(["export", "runs/front", "--trial", small, "--out", "models/stale"]) == 0
    assert seen == [False]  # evaluated with no card in the folder, as an export into a new one
    assert json.loads(Path("models/stale/model.json").read_text())["labels"] == ["toy"]
    monkeypatch.setattr(autotune.recipes, "load", load)

    for argv, message in [
        (["--trial", "nope"], f"has no trial 'nope': give one of its trials, e.g. {best}, {small}"),
        (["--trial", small, "--out", "models/toy"], "is the canonical model"),
    ]:
        assert main(["export", "runs/front", *argv]) == 2
        assert message in capsys.readouterr().err
    for folder in Path(f"runs/front/trial_{small}").glob("checkpoint_*"):
        shutil.rmtree(folder)
    assert main(["export", "runs/front", "--trial", small]) == 2
    assert f"trial {small} kept no checkpoint" in capsys.readouterr().err
    assert main(["export", "models", "--trial", small]) == 2
    assert "not a finished autotune run" in capsys.readouterr().err
    Path("runs/front/space.json").unlink()  # as a run of an autotune before runs recorded their space
    assert main(["export", "runs/front", "--trial", small]) == 2
    assert "it has no space.json: an autotune before runs recorded their space made it" in capsys.readouterr().err


@pytest.mark.usefixtures("local_ray")
def test_an_export_says_it_replaced_a_better_model_that_another_process_promoted_while_it_waited(in_tmp,
                                                                                                monkeypatch):
    """The model an export replaces is the one current when it takes the export's lock: two `autotune export
    --trial` at once, the worse one second, replaced the better without a word (it compared with the model current
    when it started, none or a worse one)."""
    result = autotune.fit(_space("front", "metric: [val_accuracy, epoch], mode: [max, min]"), export=False)
    best, small = (str(t) for t in result.trials["trial_id"])
    real, promoted = export_module.export_model, []

    def another_export_first(*args, **kwargs):  # another process promotes `best` before this export's lock
        monkeypatch.setattr(export_module, "export_model", real)
        promoted.append(Path(autotune.export("runs/front", best).promotion["version_dir"]).name)
        return real(*args, **kwargs)

    monkeypatch.setattr(export_module, "export_model", another_export_first)
    assert not Path("models/toy").exists()  # no model when the export of `small` starts
    reason = autotune.export("runs/front", small).promotion["reason"]
    card = json.loads(Path("models/toy/model.json").read_text())
    assert card["trial_id"] == small and card["promotion"]["replaced"] == promoted[0]
    assert "; it replaced a model that tested better on the same data (test_accuracy " in reason
    assert f"version {promoted[0]}): `autotune rollback {Path('models/toy').absolute()}` makes that one" in reason


@pytest.mark.usefixtures("local_ray")
def test_export_a_trial_of_a_single_objective_run(in_tmp, capsys):
    result = autotune.fit(_space("one", "metric: val_accuracy, mode: max"), export=False)
    best, worse = (str(t) for t in result.trials["trial_id"])
    exported = autotune.export("runs/one", best, out="models/best")
    assert exported.best_trial_id == best and json.loads(Path("models/best/model.json").read_text())["trial_id"] == best
    assert main(["export", "runs/one", "--trial", worse]) == 2  # below the best: it kept no checkpoint
    assert "kept no checkpoint" in capsys.readouterr().err


@pytest.mark.usefixtures("local_ray")
def test_promote_always_says_when_it_replaced_a_model_that_tested_better(in_tmp):
    """`export.promote: always` (the default) replaced a better model with "export.promote is 'always'" alone."""
    def space(point: str) -> str:
        return toy_space("always", trials=1, concurrent=1, train="{epochs: 1}",
                         search=f", scheduler: fifo, start: [{point}]")

    good, worse = "{model.x: 0.3, model.y: 0.6}", "{model.x: 0.9, model.y: 0.1}"
    first = autotune.fit(space(good))
    second = autotune.fit(space(worse), restart=True)
    assert second.promotion["promoted"] and second.promotion["reason"].startswith("export.promote is 'always'; it "
                                                                                  "replaced a model that tested better")
    assert f"(test_accuracy {first.test_metrics['test_accuracy']:.4f} against " in str(second)
    assert "tested better" not in autotune.fit(space(good), restart=True).promotion["reason"]
