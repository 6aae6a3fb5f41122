"""`autotune ls`: kinds with counts, names by kind and pattern, recipes, unknown kinds."""
from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

import autotune.cli
import autotune.recipes
from autotune import registry


@pytest.fixture
def cli(cli, monkeypatch) -> Callable[..., tuple[int, str, str]]:
    """`autotune ls ARGV...` (tests/conftest.py's `cli`) over a registry of the test's own widgets only."""
    monkeypatch.setattr(registry, "_builtins_loaded", True)  # only the test's own entries, no torch
    monkeypatch.setattr(registry, "_entries", {"widget": {}})
    monkeypatch.setattr(registry, "_fallbacks", {})
    for name in ("resnet_a", "resnet_b", "vgg"):
        registry.register("widget", name)(lambda: None)
    registry.add_fallback("widget", lambda name: None, lambda pattern: [f"lib_{pattern.strip('*')}"])
    return lambda *argv: cli("ls", *argv)


def test_kinds_with_counts(cli):
    code, out, _ = cli()
    assert code == 0
    assert "widgets" in out and " 3" in out and "recipes" in out


@pytest.mark.parametrize("kind", ["widgets", "widget"])
def test_names_of_a_kind(cli, kind):
    code, out, _ = cli(kind)
    assert code == 0
    assert out.split() == ["resnet_a", "resnet_b", "vgg"]


def test_pattern_includes_fallback_names(cli):
    code, out, _ = cli("widgets", "res*")
    assert code == 0
    assert out.split() == ["lib_res", "resnet_a", "resnet_b"]


def test_recipes(cli):
    code, out, _ = cli("recipes")
    assert code == 0
    assert out.split() == autotune.recipes.available()


def test_unknown_kind_exits_2_with_close_matches(cli):
    code, out, err = cli("widgts")
    assert code == 2
    assert "unknown kind 'widgts'" in err and "did you mean 'widgets'" in err
    assert "Traceback" not in out + err


@pytest.mark.parametrize("word, said", [("verisons", "did you mean 'versions'"),
                                         ("bogus", "kinds: widgets, recipes, runs, versions")])
def test_an_unknown_kind_names_runs_and_versions_too(cli, word, said):
    """The help's KIND takes runs and versions, but an unknown kind listed the registered kinds and recipes only."""
    code, _, err = cli(word)
    assert code == 2
    assert said in err


def test_the_built_in_kinds_with_the_optimizers(monkeypatch, capsys):
    """The real registry (no fixture): datasets, models and optimizers are built-in kinds."""
    present = {k: m for k, m in autotune.cli.COMMANDS.items() if k == "ls"}
    monkeypatch.setattr(autotune.cli, "COMMANDS", present)
    assert autotune.cli.main(["ls", "optimizers"]) == 0
    listed = capsys.readouterr().out.split()  # other tests' custom files may have added their own
    assert {"adam", "adamw", "sgd"} <= set(listed) and listed == sorted(listed)
    assert autotune.cli.main(["ls"]) == 0
    kinds = dict(line.split() for line in capsys.readouterr().out.splitlines())
    assert kinds["optimizers"] == str(len(listed)) and int(kinds["models"]) >= 2 and int(kinds["datasets"]) >= 7


def test_datasets_lists_the_tabular_recipe_s_tables_too(capsys):
    """The tables `recipe: tabular` takes by name are not registered datasets (those are images), and `autotune ls
    datasets` left them out."""
    assert autotune.cli.main(["ls", "datasets"]) == 0
    out = capsys.readouterr().out
    images, tables = out.split("\ntables (recipe: tabular, data.dataset):\n")
    assert "digits" in images.split() and "wine" not in images.split()
    assert [line.split()[0] for line in tables.splitlines()] == ["csv", "wine", "breast_cancer", "diabetes"]
    assert autotune.cli.main(["ls", "datasets", "w*"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].split()[0] == "wine"


def test_one_recipe_lists_the_keys_it_reads(cli, monkeypatch):
    """`autotune ls recipes tabular` printed `tabular`: the keys a recipe reads, their types, defaults and help
    (its SCHEMA) were in docs/recipes.md and the recipe's source only. (Wrapped to the terminal's width.)"""
    monkeypatch.setenv("COLUMNS", "120")
    code, out, _ = cli("recipes", "tabular")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "recipe tabular: the keys a search space sets (section.key: type, default; what it does)"
    assert "  data.val_fraction: a number in [0, 0.9], default 0.1; share of the rows held out for validation" in out
    assert '  data.task: one of "auto", "classification", "regression", default "auto"; auto:' in out
    assert "  data.path: a string or null, default null; dataset csv: the .csv or .parquet file" in out
    schema = autotune.recipes.load_schema("tabular")
    end = next(i for i, line in enumerate(lines) if line.startswith("metrics"))
    keys = [line.split(":")[0].strip() for line in lines[:end] if line.startswith("  ") and line[2] != " "]
    assert keys == [f"{name}.{key}" for name, section in schema.sections.items() for key in section.fields]
    assert "metrics (search.metric): val_loss (min), val_accuracy (max)," in out
    assert "early stopping counts train.epochs" in " ".join(" ".join(lines[-3:]).split())


def test_a_recipe_file_lists_its_keys_and_a_missing_one_exits_2(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "120")
    (tmp_path / "mine.py").write_text(
        "from autotune.space import Field, Schema, Section\n"
        "SCHEMA = Schema(train=Section(width=Field(int, default=8, low=1, help='units per layer')))\n"
        "def load_data(config): ...\ndef train(config, report, *, data=None, checkpoint=None): ...\n")
    code, out, _ = cli("recipes", str(tmp_path / "mine.py"))
    assert code == 0, out
    assert "  train.width: an integer in [1, ], default 8; units per layer" in out
    assert "metrics (search.metric): not declared; trials not stopped early" in out
    code, out, err = cli("recipes", str(tmp_path / "nope.py"))
    assert code == 2 and "recipe file" in err and "does not exist" in err and "Traceback" not in err


def _run(runs, name: str, summary: dict | None, *, trials: int = 2, asked: int = 2, checkpoints: int = 0) -> None:
    """A run folder as `autotune run` leaves it: space.json, space.trials, trials.csv, summary.json (None: a run
    killed before its end), and `checkpoints` checkpoint folders of 1000 bytes in one trial."""
    folder = runs / name
    (folder / "trial_a1").mkdir(parents=True)
    (folder / "space.json").write_text("{}")
    (folder / "space.trials").write_text(f"{asked}\n")
    (folder / "trials.csv").write_text("trial_id\n" + "".join(f"t{i}\n" for i in range(trials)))
    for index in range(checkpoints):
        (folder / "trial_a1" / f"checkpoint_{index:06d}").mkdir()
        (folder / "trial_a1" / f"checkpoint_{index:06d}" / "state.pt").write_bytes(b"x" * 1000)
    if summary is not None:
        (folder / "summary.json").write_text(json.dumps(summary))


# Which runs a storage folder holds, what each found and what it holds on disk: there was no command for it (a user
# read each run's summary.json, or waited 20 s for `autotune report runs/` to list their names).
def test_ls_runs_lists_each_run_s_status_best_trial_model_and_disk(tmp_path, monkeypatch, capsys):
    from autotune.engine.locks import hold_run
    from autotune.engine.storage import run_location

    monkeypatch.chdir(tmp_path)
    runs, versions = tmp_path / "runs", tmp_path / "models" / ".m.versions"
    for version in ("v1", "v2", "v3"):
        (versions / version).mkdir(parents=True)
    (tmp_path / "models" / "m").symlink_to(".m.versions/v2")
    best = {"metric": ["val_accuracy"], "best_trial_id": "t0", "best_metrics": {"val_accuracy": 0.98765}}
    tested = {"test_metrics": {"test_loss": 0.07, "test_accuracy": 0.95406}}  # the exported model's held-out score

    def exported(version: str, promoted: bool) -> dict:
        return {**best, **tested, "model_dir": str(tmp_path / "models" / "m"), "interrupted": False,
                "promotion": {"promoted": promoted, "version_dir": str(versions / version)}}

    _run(runs, "current", exported("v2", True), checkpoints=3)
    _run(runs, "replaced", exported("v1", True))
    _run(runs, "kept-out", exported("v3", False))
    _run(runs, "deleted", exported("v0", True))
    _run(runs, "stopped", {**best, "interrupted": True, "model_dir": None, "promotion": {}}, asked=5)
    _run(runs, "failed", {"error": "all 2 trials failed", "interrupted": False})
    _run(runs, "killed", None, trials=0)
    _run(runs, "running", exported("v2", True))  # a resumed run: its summary is an earlier session's
    _run(runs, "older", {**best, "interrupted": False})
    (runs / "older" / "space.json").unlink()  # a run of an autotune before runs recorded their space
    (runs / "killed.orphaned").mkdir()  # a set-aside folder, and a folder of other files: no runs
    (runs / "notes").mkdir()
    with hold_run(run_location(str(runs), "running")):
        assert autotune.cli.main(["ls", "runs"]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines()[2:] if line.strip()}
    expected = {
        "current": ("finished", "val_accuracy=0.9877 (trial t0)", "test_accuracy=0.9541", "models/m: current",
                    "3.0 kB (3)"),
        "replaced": ("finished", "models/m: replaced since", "0 B (0)"),
        "kept-out": ("models/m: not promoted",),
        "deleted": ("models/m: version deleted",),
        "stopped": ("interrupted (--resume)", "2 of 5", "val_accuracy=0.9877 (trial t0)"),
        "failed": ("failed",),
        "killed": ("killed (--resume)", "0 of 2"),
        "running": (f"running (process {os.getpid()} on ",),
        "older": ("finished", "val_accuracy=0.9877 (trial t0)"),
    }
    assert "test_" not in lines["stopped"]  # no model exported: no test score
    for name, words in expected.items():
        assert all(word in lines[name] for word in words), (name, lines[name])
    assert "\n9 runs, " in out and "3.0 kB of it in checkpoints" in out and "What may be deleted" in out
    assert not {"killed.orphaned", "notes"} & set(lines)


def _studied(run: Path, direction: str) -> None:
    """`run`'s study.db as a search leaves it killed after 3 of its trials ended: one complete (best epoch 0.93),
    one stopped early, one failed, one running (best epoch 0.95 so far), and a better trial (0.99) that a warm start
    told, which the run did not run."""
    import optuna

    from autotune.engine.study import WARM_START_FROM

    study = optuna.create_study(storage=f"sqlite:///{run / 'study.db'}", study_name=run.name,
                                direction="maximize" if direction == "max" else "minimize")
    for state, curve, attrs in [("COMPLETE", [0.80, 0.93, 0.90], {}), ("PRUNED", [0.70], {}), ("FAIL", [], {}),
                                ("RUNNING", [0.85, 0.95], {}), ("COMPLETE", [0.99], {WARM_START_FROM: "runs/old"})]:
        trial = study.ask()
        trial.set_user_attr("autotune_trial_id", f"t{trial.number}")
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        for epoch, value in enumerate(curve, 1):
            trial.report(value, epoch)
        if state != "RUNNING":
            study.tell(trial, curve[-1] if state == "COMPLETE" else None, state=optuna.trial.TrialState[state])
    search = {"metric": ["val_accuracy"], "mode": [direction]}
    (run / "space.json").write_text(json.dumps({"search": search}))


# A run killed before its end writes no trials.csv: `ls runs` said "0 of 30" trials and no best for a run whose 10
# trials had ended, and "0 of N" all through a running search. Its study tells how far it got.
@pytest.mark.parametrize("direction, best", [("max", "val_accuracy=0.95 (trial t3)"),
                                             ("min", "val_accuracy=0.7 (trial t1)")])
def test_ls_runs_tells_how_far_a_killed_or_running_run_got_from_its_study(tmp_path, capsys, direction, best):
    from autotune.engine.locks import hold_run
    from autotune.engine.storage import run_location

    runs = tmp_path / "runs"
    for name in ("killed", "running"):
        _run(runs, name, None, trials=0, asked=30)
        (runs / name / "trials.csv").unlink()
        _studied(runs / name, direction)
    _run(runs, "finished", {"metric": ["val_accuracy"], "best_trial_id": "t0",
                            "best_metrics": {"val_accuracy": 0.5}, "interrupted": False}, trials=2, asked=2)
    _studied(runs / "finished", direction)  # a run with its summary: its trials.csv and summary, not its study
    with hold_run(run_location(str(runs), "running")):
        assert autotune.cli.main(["ls", "runs", str(runs)]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[2:] if line.strip()}
    assert "killed (--resume)" in lines["killed"] and "running (process" in lines["running"]
    for name in ("killed", "running"):
        assert " 3 of 30 " in lines[name] and best in lines[name], lines[name]
    assert " 2 " in lines["finished"] and "val_accuracy=0.5 (trial t0)" in lines["finished"]


def test_ls_runs_of_a_folder_that_is_not_there_exits_2(tmp_path, capsys):
    assert autotune.cli.main(["ls", "runs", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'nope'} is not a folder of runs (it does not exist)" in err and "Traceback" not in err
    assert autotune.cli.main(["ls", "runs", str(tmp_path)]) == 0
    assert f"no runs in {tmp_path}" in capsys.readouterr().out


def _export(target, trial: str, value: float) -> dict:
    """An export of trial `trial`'s model (test accuracy `value`) to the canonical model `target`, if better."""
    from autotune.engine.export import export_model

    def write(out):
        (out / "weights.json").write_text(json.dumps({"value": value}))
        return {"labels": ["a"]}

    def evaluate(folder):
        return {"test_accuracy": json.loads((Path(folder) / "weights.json").read_text())["value"]}

    return export_model(target, write=write, evaluate=evaluate,
                        card={"name": "m", "trial_id": trial, "run_dir": f"/srv/runs/run-{trial}",
                              "created": "2026-12-07T10:00:00+00:00"},
                        metric="test_accuracy", mode="max", promote="if_better")


# A canonical model's history (which run and trial made each version, what was promoted or rolled back, what is
# still on disk) had no command: `ls models/.m.versions/` shows bare version names, the card's JSON the rest.
def test_ls_versions_lists_a_canonical_model_s_exports_and_rollbacks(tmp_path, capsys):
    import shutil

    from autotune.engine.export import roll_back

    target = tmp_path / "models" / "m"
    first, second, lost = (Path(_export(target, t, v)["version_dir"]).name
                           for t, v in (("t1", 0.5), ("t2", 0.6), ("t3", 0.4)))
    roll_back(target)
    shutil.rmtree(target.parent / ".m.versions" / second)
    assert autotune.cli.main(["ls", "versions", str(target)]) == 0
    rows = [line.split(maxsplit=3)[3] for line in capsys.readouterr().out.splitlines()[2:6]]  # after date, version
    assert [row.split()[:4] for row in rows] == [
        ["run-t1", "t1", "promoted", "current"], ["run-t2", "t2", "promoted", "deleted"],
        ["run-t3", "t3", "not", "promoted"], ["run-t1", "t1", "rolled", "back"]]
    assert "kept" in rows[2] and "rolled back from version " + second in rows[3]
    for argv, words in [(["versions"], "give the canonical model whose versions to list"),
                        (["versions", str(target.parent / ".m.versions" / first)], "is not a canonical model")]:
        assert autotune.cli.main(["ls", *argv]) == 2
        assert words in capsys.readouterr().err


@pytest.mark.unprivileged
def test_a_run_or_model_this_user_cannot_read_is_named_with_its_owner_not_a_traceback(tmp_path, capsys):
    """A teammate's run and model made under `umask 077` in a shared folder: `autotune ls runs` of the whole folder,
    `ls versions`, `report` and `predict` ended in a PermissionError traceback."""
    import getpass

    runs, target = tmp_path / "runs", tmp_path / "models" / "m"
    _run(runs, "mine", {"interrupted": False})
    _run(runs, "theirs", {"interrupted": False})
    _export(target, "t1", 0.5)
    versions = target.parent / ".m.versions"
    (runs / "theirs").chmod(0o700 & ~0o500)
    versions.chmod(0)
    try:
        assert autotune.cli.main(["ls", "runs", str(runs)]) == 0
        listed = capsys.readouterr().out
        assert autotune.cli.main(["ls", "versions", str(target)]) == 2
        err = capsys.readouterr().err
    finally:
        (runs / "theirs").chmod(0o755)
        versions.chmod(0o755)
    lines = {line.split()[0]: line for line in listed.splitlines()[2:] if line.strip()}
    assert f"not readable by you ({getpass.getuser()}, d-w-------)" in lines["theirs"] and "finished" in lines["mine"]
    assert err == (f"autotune ls: error: permission denied: {target}: {versions} ({getpass.getuser()}, d---------) is "
                   f"not readable by you; ask its owner to `chmod -R g+rX {versions}` (a team's shared folder: "
                   "searches and exports run under `umask 002` make their files the group's to read and write)\n")
