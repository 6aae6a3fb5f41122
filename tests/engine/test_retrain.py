"""Retraining when the data changes: nothing to do on the same data; else a warm-started, if-better search."""
from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest

from autotune.cli import main
from autotune.report.page import write_report
from autotune.report.run import load_run
from engine_helpers import TOY

pytestmark = pytest.mark.usefixtures("local_ray")

SPACE = f"""
name: retrain
recipe: {TOY}
data: {{size: 100}}
model: {{x: {{uniform: [0.0, 1.0]}}, y: {{uniform: [0.0, 1.0]}}}}
train: {{epochs: 2}}
search: {{trials: 3, max_concurrent: 2, seed: 0, scheduler: fifo, resources: {{cpu: 1}}}}
export: {{dir: models/retrain}}
"""


def _card() -> dict:
    return json.loads(Path("models/retrain/model.json").read_text())


def _study(name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=f"sqlite:///runs/{name}/study.db")


def _retrain(size: int, epochs: int, capsys) -> str:
    """`autotune run --if-data-changed` on data of `size` (the toy's fingerprint is toy-<size>), training
    `epochs` epochs (the toy's accuracy is (1 - 0.5^epochs) x how good the point is): its output."""
    code = main(["run", "space.yaml", "--set", f"data.size={size}", "--set", f"train.epochs={epochs}",
                 "--if-data-changed"])
    out = capsys.readouterr().out
    assert code == 0, out
    return out


def test_retrain_only_when_the_data_changed_and_promote_only_if_better(in_tmp, capsys):
    Path("space.yaml").write_text(SPACE)
    assert main(["run", "space.yaml", "--set", "train.epochs=1"]) == 0
    first = _card()
    assert first["data_fingerprint"] == "toy-100"
    capsys.readouterr()

    out = _retrain(100, 1, capsys)
    assert "The data is unchanged (fingerprint toy-100)" in out and "nothing to do" in out
    assert sorted(p.name for p in Path("runs").glob("[!.]*")) == ["retrain"]  # not the lock, .retrain.lock

    # New data, and a better model (2 epochs instead of 1): promoted.
    out = _retrain(200, 2, capsys)
    assert "The data changed (fingerprint toy-200, the current model's is toy-100)" in out
    study = _study("retrain-data-toy-200")
    warm, *sampled = sorted(study.trials, key=lambda t: t.number)
    assert warm.params == pytest.approx(first["params"])  # warm start: the current model comes first
    original = [t.params for t in _study("retrain").trials]
    assert all(t.params != p for t in sampled for p in original)  # a seed of its own: not a replay
    summary = json.loads(Path("runs/retrain-data-toy-200/summary.json").read_text())
    assert summary["promotion"]["policy"] == "if_better" and summary["promotion"]["promoted"] is True
    assert "is better than the current model's" in summary["promotion"]["reason"]
    assert "on the same test split" in summary["promotion"]["reason"]
    promoted = _card()
    assert promoted["data_fingerprint"] == "toy-200" and promoted["run_dir"].endswith("retrain-data-toy-200")
    assert (promoted["name"], promoted["run_name"]) == ("retrain", "retrain-data-toy-200")  # the model keeps its name
    assert load_run("runs/retrain-data-toy-200").model_dir is not None  # the report finds the run's model
    assert summary["promotion"]["replaced"] == first["version"]

    # Killed after its export, before its end was recorded: the same command resumes it, and it ends promoted.
    Path("runs/retrain-data-toy-200/summary.json").unlink()
    out = _retrain(200, 2, capsys)
    assert "was stopped before its end was recorded: resuming it" in out
    summary = json.loads(Path("runs/retrain-data-toy-200/summary.json").read_text())
    assert summary["promotion"]["promoted"] is True and _card()["version"] == promoted["version"]

    out = _retrain(200, 2, capsys)
    assert "The data is unchanged (fingerprint toy-200)" in out

    # New data, and a worse model (1 epoch again): the current model stays, and the card records the try.
    out = _retrain(300, 1, capsys)
    summary = json.loads(Path("runs/retrain-data-toy-300/summary.json").read_text())
    assert summary["promotion"]["promoted"] is False
    assert "is not better than the current model's" in summary["promotion"]["reason"]
    card = _card()
    assert card["version"] == promoted["version"] and card["data_fingerprint"] == "toy-200"
    assert summary["promotion"]["kept"] == promoted["version"]
    page = write_report("runs/retrain-data-toy-300").read_text()  # which model is current, and whose it was
    tried = Path(summary["promotion"]["version_dir"]).name
    for row in (("model version", tried), ("kept version", promoted["version"]),
                ("canonical model now", f"version {promoted['version']}")):
        assert "<tr><th>{}</th><td>{}</td></tr>".format(*row) in page, row
    assert [(h["data_fingerprint"], h["promoted"]) for h in card["history"]] == [
        ("toy-100", True), ("toy-200", True), ("toy-300", False)]

    # The same data again: searched already, so nothing is searched or exported again.
    runs = sorted(p.name for p in Path("runs").iterdir())
    out = _retrain(300, 1, capsys)
    assert "The data (fingerprint toy-300) was searched already" in out and "not promoted" in out
    assert "Nothing to do" in out
    assert sorted(p.name for p in Path("runs").iterdir()) == runs
    assert _card() == card

    # Rolled back to the first model: a retrain skips the data whose model was rolled back, and still searches
    # new data, against the first model.
    assert main(["rollback", "models/retrain"]) == 0
    assert (f"models/retrain: version {first['version']} (trial {first['trial_id']} of run {first['run_name']}) is "
            f"current (was {promoted['version']})") in capsys.readouterr().out
    assert _card()["version"] == first["version"] and _card()["data_fingerprint"] == "toy-100"
    out = _retrain(200, 2, capsys)
    assert "The data (fingerprint toy-200) was searched already" in out
    assert "its model was promoted (new test_accuracy=" in out and "Nothing to do" in out
    assert f"then rolled back (to version {first['version']}, " in out  # the rollback, not the export's reason
    assert sorted(p.name for p in Path("runs").iterdir()) == runs and _card()["version"] == first["version"]


def test_a_retrain_stopped_before_its_first_trial_runs_again(in_tmp, capsys, monkeypatch):
    from ray import tune

    Path("space.yaml").write_text(SPACE)
    assert main(["run", "space.yaml"]) == 0

    def fail(self):
        raise RuntimeError("killed before the first trial (injected)")

    with monkeypatch.context() as patch:
        patch.setattr(tune.Tuner, "fit", fail)
        with pytest.raises(RuntimeError, match="injected"):
            main(["run", "space.yaml", "--set", "data.size=200", "--if-data-changed"])
    assert (Path("runs/retrain-data-toy-200") / "tuner.pkl").exists()  # what such a run leaves behind
    capsys.readouterr()

    out = _retrain(200, 2, capsys)
    assert "already exists" not in out
    assert len(_study("retrain-data-toy-200").trials) == 3
    assert json.loads(Path("runs/retrain-data-toy-200/summary.json").read_text())["interrupted"] is False


def test_a_retrain_whose_space_no_longer_holds_the_current_model_starts_without_it(in_tmp, capsys, recwarn):
    """The range narrowed past the current model's value: its configuration is not the first trial (it ran out of
    range, with Optuna's warning, and could win)."""
    Path("space.yaml").write_text(SPACE)
    assert main(["run", "space.yaml", "--set", "train.epochs=1"]) == 0
    x = _card()["params"]["model.x"]
    low, high = (0.0, x / 2) if x > 0.5 else ((1 + x) / 2, 1.0)  # a range without x
    capsys.readouterr()
    code = main(["run", "space.yaml", "--set", "data.size=200", "--set", f"model.x={{uniform: [{low}, {high}]}}",
                 "--if-data-changed"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "The current model's configuration no longer fits the space (model.x " in out
    assert "starting from the current model's configuration" not in out
    study = optuna.load_study(study_name=next(p.name for p in Path("runs").glob("retrain-data-*")),
                              storage=f"sqlite:///{next(Path('runs').glob('retrain-data-*'))}/study.db")
    assert all(low <= t.params["model.x"] <= high for t in study.trials)
    assert not [w for w in recwarn if "out of range" in str(w.message)]


SPLIT_TOY = """# the toy recipe, whose data section also takes split settings (data.split_seed, ...), which it ignores
from pathlib import Path

exec(compile(Path({toy!r}).read_text(), {toy!r}, "exec"))  # the toy's code, as this module's (so Ray's workers
_TOY = SCHEMA                                               # import this file alone)
SCHEMA = Schema(budget=_TOY.budget, metrics=_TOY.metrics, tests=_TOY.tests, checks=_TOY.checks,
                **{{**_TOY.sections, "data": Section(open=True, **_TOY.sections["data"].fields)}})
"""


def test_a_changed_split_does_not_compare_on_the_current_model_s_training_data(in_tmp, capsys):
    """The first retrain has no model to compare with; a retrain whose split seed changed cannot test the current
    model on the new test split (most of it was its training data): it is promoted as an untestable one is. A larger
    validation share moves no test sample into the train split: that comparison stands."""
    Path("split_toy.py").write_text(SPLIT_TOY.format(toy=TOY))
    Path("space.yaml").write_text(SPACE.replace(TOY, str(in_tmp / "split_toy.py"))
                                  .replace("size: 100", "size: 100, split_seed: 0").replace("trials: 3", "trials: 1"))
    out = _retrain(100, 2, capsys)
    assert "There is no current model at models/retrain yet: searching the data (fingerprint toy-100)" in out
    assert "The data changed" not in out

    def retrain(size: int, *settings: str) -> dict:
        sets = [arg for setting in settings for arg in ("--set", setting)]
        code = main(["run", "space.yaml", "--set", f"data.size={size}", *sets, "--set", "train.epochs=1",
                     "--if-data-changed"])
        assert code == 0, capsys.readouterr()
        return json.loads(Path(f"runs/retrain-data-toy-{size}/summary.json").read_text())["promotion"]

    promotion = retrain(200, "data.split_seed=2")  # 1 epoch: worse, but judged against the 2 epochs' model unfairly
    assert promotion["promoted"] is True, promotion
    assert promotion["reason"].startswith("the current model could not be evaluated: the data split changed since "
                                          "it was trained (data.split_seed 0 -> 2): about 80% of the new test split")
    promotion = retrain(300, "data.split_seed=2", "data.val_fraction=0.2")
    assert "the current model's" in promotion["reason"] and "on the same test split" in promotion["reason"]
    # a model an autotune before the keyed split exported (an upgrade walk: 72 % of the new test images were its
    # training images, and a better new model was kept out): its card records no split and predates it
    card_file = Path("models/retrain/model.json").resolve()
    card = json.loads(card_file.read_text())
    assert card["split"] == "keyed"
    card_file.write_text(json.dumps({**{k: v for k, v in card.items() if k != "split"},
                                     "created": "2026-12-04T11:28:00+00:00"}))
    promotion = retrain(400, "data.split_seed=2", "data.val_fraction=0.2")
    assert promotion["promoted"] is True, promotion
    assert promotion["reason"].startswith("the current model could not be evaluated: it was trained on a split an "
                                          "earlier autotune drew (permutation, before the keyed split of 2026-12-05)")


def test_a_retrain_of_data_another_job_searches_now_does_nothing(in_tmp, capsys):
    """Two nightly jobs overlap: the second finds the run of this data held and leaves it to the first (exit 0), where
    it said "already running; run this search under another name", exit 2, which would search the data twice."""
    from autotune.engine.locks import hold_run
    from autotune.engine.storage import run_location

    Path("space.yaml").write_text(SPACE)
    with hold_run(run_location("runs", "retrain-data-toy-300")):  # as the first job holds it
        out = _retrain(300, 1, capsys)
    assert "The data (fingerprint toy-300) is being searched already (run retrain-data-toy-300, process " in out
    assert "nothing to do" in out and not Path("models/retrain").exists()


# the toy recipe as a third party wrote it: its export() returns no data_fingerprint, and it declares no split
THIRD_PARTY_TOY = """
from pathlib import Path

exec(compile(Path({toy!r}).read_text(), {toy!r}, "exec"))  # the toy's code, as this module's
del SPLIT
_toy_export = export


def export(checkpoint, data, out_dir):
    return {{k: v for k, v in _toy_export(checkpoint, data, out_dir).items() if k != "data_fingerprint"}}
"""


def test_a_retrain_whose_search_failed_searches_that_data_again(in_tmp, capsys):
    """A night where every trial failed (a flaky mount) blocked that data: the next night resumed the ended run,
    ran no trial and failed with the old error (a failing setting fixed: exit 2, the space changed). A third party's
    export() without data_fingerprint searched the same data again each night; its own split was compared as if
    keyed, on the current model's training rows."""
    Path("third_party.py").write_text(THIRD_PARTY_TOY.format(toy=TOY))
    Path("space.yaml").write_text(SPACE.replace(TOY, str(in_tmp / "third_party.py")).replace("trials: 3", "trials: 1"))
    flaky = in_tmp / "flaky_mount"
    flaky.touch()
    night = ["run", "space.yaml", "--set", "data.size=200", "--set", f"train.unscored_if_exists={flaky}",
             "--if-data-changed"]
    assert main(night) == 1
    flaky.unlink()
    capsys.readouterr()
    code = main(night)
    out = capsys.readouterr().out
    assert code == 0, out
    assert "The last search of this data (run retrain-data-toy-200) failed, exporting no model (" in out
    assert "this run ended" not in out
    card = _card()
    assert (card["data_fingerprint"], card["split"]) == ("toy-200", "recipe")
    assert [h["data_fingerprint"] for h in card["history"]] == ["toy-200"]
    assert main(night) == 0
    assert "The data is unchanged (fingerprint toy-200)" in capsys.readouterr().out

    failing = ["run", "space.yaml", "--set", "data.size=300", "--if-data-changed"]
    assert main([*failing, "--set", "train.fail_if_x_above=-1"]) == 1  # a setting fails every trial
    capsys.readouterr()
    code = main(failing)  # fixed: another space
    out = capsys.readouterr().out
    assert code == 0, out
    promotion = json.loads(Path("runs/retrain-data-toy-300/summary.json").read_text())["promotion"]
    assert promotion["promoted"] is True
    assert promotion["reason"].startswith("the current model could not be evaluated: its data or the new data was "
                                          "split the recipe's own way"), promotion
