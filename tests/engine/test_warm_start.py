"""Starting a search from what is known: the default configuration and `search.start` run first; `--warm-start`
tells the sampler an earlier run's finished trials (copied into the new study, not run again)."""
from __future__ import annotations

import hashlib
import json
import logging
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

import autotune
from autotune.engine.warm_start import add_history, read_history
from autotune.errors import UserError
from autotune.space import load_space
from engine_helpers import TOY, toy_space

COMPLETE, PRUNED, FAIL = optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.FAIL
X = optuna.distributions.FloatDistribution(0.0, 1.0)

# A conditional space: the model is one of two options (labelled by position), each with its own parameters.
CONDITIONAL = """\
  choice:
    - {kind: plain, x: {uniform: [0.0, 1.0], default: 0.25}, y: 0.5}
    - {kind: wide, x: {uniform: [0.0, 1.0]}, y: {uniform: [0.0, 1.0], default: 0.75},
       extra: {uniform: [0.0, 1.0], default: 0.5}}
  default: 1
"""
START = "[{model: 0, 'model[0].x': 0.1}, {model: 1, 'model[1].x': 0.9}, {model: 1}]"


def _trials(run_dir: Path, name: str) -> list[optuna.trial.FrozenTrial]:
    study = optuna.load_study(study_name=name, storage=f"sqlite:///{run_dir}/study.db")
    return sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)


def _conditional_space(trials: int) -> str:
    return toy_space("first", trials=trials, concurrent=1, model="\n" + CONDITIONAL, train="{epochs: 1}",
                     search=f", scheduler: fifo, start: {START}")


def _study_of_a_run(folder: Path, name: str, trials: list[optuna.trial.FrozenTrial], direction: str = "maximize"
                    ) -> Path:
    """A run folder holding only its Optuna study, as an earlier run leaves it."""
    folder.mkdir(parents=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(storage=f"sqlite:///{folder}/study.db", study_name=name, direction=direction)
    study.add_trials(trials)
    return folder


def _trial(state: optuna.trial.TrialState, x: float, y: float = 0.6, value: float | None = 0.5,
           steps: dict[int, float] | None = None) -> optuna.trial.FrozenTrial:
    return optuna.trial.create_trial(state=state, value=value if state != FAIL else None,
                                     params={"model.x": x, "model.y": y}, distributions={"model.x": X, "model.y": X},
                                     intermediate_values=steps or {})


def _earlier_run(folder: Path, model: str, params: list[dict]) -> Path:
    """A run folder with its study (one COMPLETE trial per `params`) and its space.json, as a run records it."""
    space = autotune.load_space(toy_space("old", model=model))
    trials = [optuna.trial.create_trial(state=optuna.trial.TrialState.COMPLETE, value=0.5, params=p, distributions={
        name: X if isinstance(value, float) else optuna.distributions.CategoricalDistribution(
            next(q.dist.labels for q in space.params if q.name == name)) for name, value in p.items()})
        for p in params]
    run = _study_of_a_run(folder, "old", trials)
    (run / "space.json").write_text(space.definition() + "\n")
    return run


@pytest.mark.usefixtures("local_ray")
def test_the_default_configuration_then_the_start_points_are_the_first_trials(in_tmp):
    """Conditional parameters (define-by-run), a start point equal to the defaults run once, and fewer trials than
    known configurations."""
    result = autotune.fit(_conditional_space(trials=4), export=False)
    run_dir = result.run_dir
    first, *others = [t.params for t in _trials(run_dir, "first")]
    assert first == {"model": "1", "model[1].x": 0.5, "model[1].y": 0.75, "model[1].extra": 0.5}  # the defaults
    assert others[:2] == [{"model": "0", "model[0].x": 0.1},
                          {"model": "1", "model[1].x": 0.9, "model[1].y": 0.75, "model[1].extra": 0.5}]
    assert len(others) == 3 and others[2] not in (first, *others[:2])  # then the sampler's own proposal
    assert len(result.trials) == 4

    fewer = autotune.fit(_conditional_space(trials=2), export=False, restart=True)
    assert [t.params for t in _trials(fewer.run_dir, "first")] == [first, others[0]]  # no trial left waiting


@pytest.mark.usefixtures("local_ray")
def test_warm_start_tells_the_sampler_the_earlier_run_and_skips_what_no_longer_fits(in_tmp, caplog):
    earlier = autotune.fit(toy_space("earlier", trials=4, train="{epochs: 2}", search=", scheduler: fifo"),
                           export=False)
    source = _trials(earlier.run_dir, "earlier")
    storage = optuna.storages.RDBStorage(f"sqlite:///{earlier.run_dir}/study.db")
    study = optuna.load_study(study_name="earlier", storage=storage)
    study.add_trials([_trial(PRUNED, 0.2, steps={1: 0.3}), _trial(FAIL, 0.1)])  # stopped early; failed
    narrow = ("{x: {uniform: [0.0, 0.5]}, y: {uniform: [0.0, 1.0]}, extra: {uniform: [0.0, 1.0], default: 0.0}}")
    search = ", scheduler: fifo, sampler: {tpe: {n_startup_trials: 2}}"
    cold = autotune.fit(toy_space("cold", trials=2, concurrent=1, model=narrow, search=search), export=False)

    caplog.set_level(logging.INFO, logger="autotune")
    warm = autotune.fit(toy_space("warm", trials=2, concurrent=1, model=narrow, search=search), export=False,
                        warm_start=earlier.run_dir)

    fits = [t for t in source if t.params["model.x"] <= 0.5]
    copied = [t for t in _trials(warm.run_dir, "warm") if "warm_start_from" in t.user_attrs]
    assert {t.user_attrs["warm_start_from"] for t in copied} == {str(earlier.run_dir)}
    assert len(copied) == len(fits) + 1 >= 2  # the pruned one too; not the failed one, nor those with x > 0.5
    by_number = {t.number: t for t in study.get_trials(deepcopy=False)}
    for trial in copied:
        before = by_number[trial.user_attrs["warm_start_trial"]]
        # the earlier run's 2 epochs are fewer than the 4 of this space: every trial is told as stopped early
        assert (trial.state, trial.values, trial.intermediate_values) == (PRUNED, before.values,
                                                                          before.intermediate_values)
        assert trial.params == {**before.params, "model.extra": 0.0}  # a new parameter takes its default
        assert trial.distributions["model.x"].high == 0.5  # the new space's distributions
    assert PRUNED in {t.state for t in copied}
    assert len(warm.trials) == 2  # the copied trials are history, not run again
    assert (f"Warm start: the sampler was first told the finished trials of {earlier.run_dir} (not run again, not in "
            "this table)") in str(warm) and "Warm start" not in str(cold)
    new = [t.params for t in _trials(warm.run_dir, "warm") if "warm_start_from" not in t.user_attrs]
    cold_trials = [t.params for t in _trials(cold.run_dir, "cold")]
    assert new[0] == cold_trials[0] == {"model.x": 0.25, "model.y": 0.5, "model.extra": 0.0}  # the defaults first
    assert new[1] != cold_trials[1]  # same seed: TPE's proposal from the history, not a random startup one
    skipped = len(source) - len(fits)
    assert (f"warm start from {earlier.run_dir}: {len(copied)} finished trial(s) told to the sampler ({len(copied)}: "
            f"model.extra told at its default 0.0, not searched then; {len(copied) - 1}: told as stopped early "
            f"(PRUNED): it ran fewer epochs than train.epochs gives it now); {skipped} "
            f"skipped, their parameters no longer fit the space ({skipped}: model.x must be within the "
            f"distribution's range [0, 0.5]); 1 failed or unfinished, not copied") in caplog.text


def test_a_warm_start_with_the_run_s_own_seed_does_not_propose_its_configurations_again(in_tmp):
    """Fewer trials told than TPE's start-up: its proposals are still random, and a sampler seeded as the earlier
    run was would propose that run's configurations again, which the history holds already."""
    text = toy_space("{name}", trials=3, concurrent=1, train="{epochs: 1}", search=", scheduler: fifo")
    earlier = autotune.fit(text.replace("{name}", "earlier"), export=False)
    warm = autotune.fit(text.replace("{name}", "warm"), export=False, warm_start=earlier.run_dir)
    again = autotune.fit(text.replace("{name}", "again"), export=False, warm_start=earlier.run_dir)
    proposed = [[t.params for t in _trials(run.run_dir, name) if "warm_start_from" not in t.user_attrs]
                for run, name in ((warm, "warm"), (again, "again"))]
    history = [t.params for t in _trials(earlier.run_dir, "earlier")]
    assert len(proposed[0]) == 3 and not [p for p in proposed[0] if p in history], (proposed[0], history)
    assert proposed[0] == proposed[1]  # the same history and seed: the same proposals


def test_a_parameter_the_new_space_needs_without_a_default_skips_the_trial(tmp_path):
    run = _study_of_a_run(tmp_path / "old", "old", [_trial(COMPLETE, 0.2), _trial(COMPLETE, 0.4)])
    space = autotune.load_space(toy_space("new", model="{x: {uniform: [0.0, 1.0]}, y: {uniform: [0.0, 1.0]}, "
                                                       "extra: {uniform: [0.0, 1.0]}}"))
    history = read_history(run, space)
    assert history.trials == [] and dict(history.skipped) == {"model.extra is missing, and the space gives it no "
                                                              "default": 2}


def test_a_plain_optuna_script_s_study_file_seeds_the_search(tmp_path, caplog):
    """A user coming from their own Optuna script gives its SQLite file: the study named as the space, or the only
    one, is read as a run's; its metric names (Study.set_metric_names) are checked; a file of several studies, none
    named as the space, is refused naming them; a history of which nothing fits says the search starts cold."""
    db = tmp_path / "optuna_script.db"
    study = optuna.create_study(storage=f"sqlite:///{db}", study_name="my-study", direction="maximize")
    study.add_trials([_trial(COMPLETE, 0.2), _trial(PRUNED, 0.4, steps={1: 0.3})])
    space = autotune.load_space(toy_space("new"))
    history = read_history(db, space)
    assert [t.params["model.x"] for t in history.trials] == [0.2, 0.4] and history.trials[1].intermediate_values \
        == {1: 0.3}

    study.set_metric_names(["val_loss"])
    with pytest.raises(UserError, match="that run searched val_loss \\(max\\), this space searches val_accuracy"):
        read_history(db, space)

    optuna.create_study(storage=f"sqlite:///{db}", study_name="another")
    with pytest.raises(UserError, match="cannot read an Optuna study from it \\(it holds 2 studies, 'another', "
                                        "'my-study', none named 'new' as "):
        read_history(db, space)
    assert len(read_history(db, autotune.load_space(toy_space("my-study").replace(
        "val_accuracy", "val_loss"))).trials) == 2  # the study named as the space

    other = tmp_path / "renamed.sqlite"
    optuna.create_study(storage=f"sqlite:///{other}", direction="maximize").add_trial(optuna.trial.create_trial(
        value=0.5, params={"lr": 0.1}, distributions={"lr": X}))
    history = read_history(other, space)
    with caplog.at_level(logging.WARNING, logger="autotune"):
        add_history(history, tmp_path / "new.db", space)
    assert "0 finished trial(s) told to the sampler; 1 skipped" in caplog.text
    assert "the search starts from nothing: to start from them, give the space room for the values the reasons " \
           "name" in caplog.text


def test_a_pow2_takes_the_earlier_trials_on_its_powers_and_skips_the_others(tmp_path):
    """An earlier search of model.extra as integers seeds a space that searches it as {pow2: [1, 8]}: the trials on a
    power of two are told to the sampler as values of the new distribution (the powers, as Optuna's categorical)."""
    whole = optuna.distributions.IntDistribution(1, 8)
    trials = [optuna.trial.create_trial(value=0.5, params={"model.extra": x, "model.y": 0.5},
                                        distributions={"model.extra": whole, "model.y": X}) for x in (2, 3, 8)]
    run = _study_of_a_run(tmp_path / "old", "old", trials)
    space = autotune.load_space(toy_space("new", model="{extra: {pow2: [1, 8]}, y: {uniform: [0.0, 1.0]}}"))
    history = read_history(run, space)
    assert [t.params["model.extra"] for t in history.trials] == [2, 8]
    assert history.trials[0].distributions["model.extra"] == optuna.distributions.CategoricalDistribution((1, 2, 4, 8))
    assert dict(history.skipped) == {"model.extra must be a power of two (1, 2, 4, 8)": 1}


@pytest.mark.parametrize("make, words", [
    (lambda tmp: tmp / "nothere", "there is no such run folder"),
    (lambda tmp: tmp, "the folder holds no study.db"),
    (lambda tmp: (tmp / "model.json").write_text('{"run_dir": "/runs/made_it"}') and tmp,
     "the folder holds no study.db; it is an exported model, made by the run /runs/made_it: "
     "warm_start='/runs/made_it'; or give the folder of an earlier autotune run"),
    (lambda tmp: (tmp / "study.db").write_bytes(b"not a database" * 100) and tmp, "cannot read the Optuna study"),
    (lambda tmp: _study_of_a_run(tmp / "old", "old", [_trial(COMPLETE, 0.2)], direction="minimize"),
     "that run searched 1 objective(s) (min), this space searches 1 (val_accuracy max)"),
])
def test_a_run_that_cannot_seed_the_search_is_a_user_error(tmp_path, make, words):
    space = autotune.load_space(toy_space())
    with pytest.raises(UserError, match="warm_start=") as caught:
        read_history(make(tmp_path), space)
    assert words in str(caught.value) and "\n" not in str(caught.value)


def test_a_run_of_another_recipe_is_refused_and_of_other_data_warned(tmp_path, caplog):
    """A digits CNN run's values were told to a wine table's search without a word: another recipe is refused,
    another data source (dataset, file or target) warned; the same source with new rows (a retrain) says nothing."""
    space = autotune.load_space(toy_space(data="{size: 64}"))
    run = _study_of_a_run(tmp_path / "old", "old", [_trial(COMPLETE, 0.2)])
    recorded = json.loads(space.definition())
    (run / "space.json").write_text(json.dumps({**recorded, "recipe": "image_classification"}))
    with pytest.raises(UserError, match="that run trained recipe 'image_classification', this space trains .*: its "
                                        "values are another model's; warm-start from a run of the same recipe"):
        read_history(run, space)
    ingredients = {**recorded["ingredients"], "data": {"size": 64, "dataset": "digits"}}
    (run / "space.json").write_text(json.dumps({**recorded, "ingredients": ingredients}))
    with caplog.at_level(logging.WARNING, logger="autotune"):
        assert len(read_history(run, space).trials) == 1
    assert "that run trained on other data (data.dataset \"digits\" -> null)" in caplog.text
    caplog.clear()
    (run / "space.json").write_text(json.dumps(recorded))
    with caplog.at_level(logging.WARNING, logger="autotune"):
        read_history(run, space)
    assert "other data" not in caplog.text



@pytest.mark.usefixtures("local_ray")
def test_a_run_of_the_recipe_before_an_edit_is_warned(tmp_path, caplog):
    """A run whose recipe file was edited since (a metric computed otherwise, a default changed) seeded the search
    without a word, its values told as if today's code had measured them."""
    space = autotune.load_space(toy_space())
    run = _study_of_a_run(tmp_path / "old", "old", [_trial(COMPLETE, 0.2)])
    (run / "space.json").write_text(space.definition() + "\n")
    (run / "sources.json").write_text(json.dumps({"recipe": "0" * 64}))
    with caplog.at_level(logging.WARNING, logger="autotune"):
        assert len(read_history(run, space).trials) == 1
    assert (f"warm_start='{run}': the recipe file was edited since that run ran it: its trials' values, measured by "
            "the code before the edit, are told to the sampler as this code's") in caplog.text
    caplog.clear()
    (run / "sources.json").write_text(json.dumps({"recipe": hashlib.sha256(Path(TOY).read_bytes()).hexdigest()}))
    with caplog.at_level(logging.WARNING, logger="autotune"):
        read_history(run, space)
    assert "edited" not in caplog.text


RESUMABLE = toy_space("resumable", trials=4, train="{epochs: 3, sleep: 0.6}", search=", scheduler: fifo, resources: "
                      "{cpu: 1}")


def _autotune_run(cwd: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "autotune", "run", "space.yaml", "--num-cpus", "2", *args],
                            cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_an_interrupted_warm_started_run_resumes_without_warm_start(tmp_path):
    (tmp_path / "space.yaml").write_text(RESUMABLE)
    _study_of_a_run(tmp_path / "old", "old", [_trial(COMPLETE, 0.1 * i, value=0.1 * i) for i in range(3)])
    first = _autotune_run(tmp_path, "--warm-start", "old")
    run_dir = tmp_path / "runs" / "resumable"
    deadline = time.time() + 120
    while not list(run_dir.glob("trial_*/checkpoint_00000[1-9]")):  # a trial finished its second epoch
        assert first.poll() is None and time.time() < deadline, first.stdout.read()
        time.sleep(0.1)
    first.send_signal(signal.SIGINT)
    out, _ = first.communicate(timeout=120)
    assert first.returncode == 130, out
    assert "warm start from" in out and "3 finished trial(s) told to the sampler" in out
    assert "Resume with: autotune run space.yaml --num-cpus 2 --resume\n" in out  # the history is in the study

    resumed = _autotune_run(tmp_path, "--warm-start", "old")  # the same command, as a batch job requeued runs it
    out, _ = resumed.communicate(timeout=240)
    assert resumed.returncode == 0, out
    assert ("this search continues it, as --resume does (--restart starts it again); --warm-start is not told "
            "again: its study holds that history\n") in out
    trials = _trials(run_dir, "resumable")
    assert sum("warm_start_from" in t.user_attrs for t in trials) == 3  # copied once, not again on resume
    assert [t.state for t in trials if "warm_start_from" not in t.user_attrs] == [COMPLETE] * 4
    # the run and its model say where the sampler's history came from, after the resume too, and how it was seeded
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["warm_start"] == str((tmp_path / "old").resolve())
    search = json.loads((tmp_path / "models" / "toy" / "model.json").read_text())["search"]
    assert search["warm_start"] == summary["warm_start"]
    assert (search["seed"], search["sampler"], search["scheduler"], search["trials"]) == (0, "tpe", "fifo", 4)

    again = _autotune_run(tmp_path, "--resume", "--warm-start", "old")
    out, _ = again.communicate(timeout=120)
    assert again.returncode == 2 and "drop --warm-start to resume it" in out and "Traceback" not in out


# a narrowed space: a choice of sections down to one section, a choice of values down to a constant, a key left out
SECTIONS = "{choice: [{kind: plain, x: {uniform: [0.0, 1.0]}, y: 0.5}, {kind: wide, x: {uniform: [0.0, 1.0]}, y: 0.9}]}"


@pytest.mark.parametrize("model, told, skipped", [
    ("{kind: plain, x: {uniform: [0.0, 1.0], default: 0.5}, y: 0.5}", [{"model.x": 0.1}],
     'model.kind is "plain" now (a constant, or the recipe\'s default), a value the trial did not run'),
    ("{kind: wide, x: {uniform: [0.0, 1.0], default: 0.5}, y: 0.5}", [],
     'model.kind is "wide" now (a constant, or the recipe\'s default), a value the trial did not run'),
])
def test_a_choice_of_sections_narrowed_to_one_tells_only_the_trials_of_that_section(tmp_path, model, told, skipped):
    """The option's parameters are the section's now (`model[0].x` -> `model.x`), with their values; a trial of
    another option ran another model, and was told to the sampler as one of this section at its default."""
    run = _earlier_run(tmp_path / "old", SECTIONS, [{"model": "0", "model[0].x": 0.1},
                                                     {"model": "1", "model[1].x": 0.3}])
    history = read_history(run, autotune.load_space(toy_space("new", model=model)))
    assert [t.params for t in history.trials] == told
    assert skipped in history.skipped


@pytest.mark.parametrize("section, told", [
    ("{kind: wide, x: {uniform: [0.0, 1.0]}, y: 0.9}", [{"model": "1", "model[1].x": 0.1}]),
    ("{kind: plain, x: {uniform: [0.0, 1.0]}, y: 0.5}", [{"model": "0", "model[0].x": 0.1}]),
])
def test_one_section_widened_to_a_choice_of_sections_tells_its_trials_under_its_option(tmp_path, section, told):
    """A search of one section (`--set model.kind=wide`), then of the choice of sections it was an option of: its
    trials were all skipped, as `model.y is 0.5 now (a constant ...)`, the first option's constant, though the
    trials ran the other option. Now each is told under the option whose constants its section held
    (`model.x` -> `model[1].x`)."""
    run = _earlier_run(tmp_path / "old", section, [{"model.x": 0.1}])
    history = read_history(run, autotune.load_space(toy_space("new", model=SECTIONS)))
    assert [t.params for t in history.trials] == told and not history.skipped


def test_a_parameter_fixed_now_keeps_the_trials_that_ran_its_value_and_says_what_is_told_otherwise(tmp_path, caplog):
    """A key left out takes the recipe's default, a value too; a key no schema knows, left out, is dropped, and the
    log line says so, as it says which parameters the trials are told at their `default:`."""
    run = _earlier_run(tmp_path / "old", "{kind: {choice: [plain, wide]}, x: {uniform: [0.0, 1.0]}, y: "
                                         "{uniform: [0.0, 1.0]}}",
                       [{"model.kind": "plain", "model.x": 0.1, "model.y": 0.5},
                        {"model.kind": "wide", "model.x": 0.3, "model.y": 0.5},
                        {"model.kind": "plain", "model.x": 0.7, "model.y": 0.2}])
    text = toy_space("new", model="{kind: plain, x: {uniform: [0.0, 1.0]}, extra: {uniform: [0.0, 1.0], "
                                  "default: 0.25}}")
    space = autotune.load_space(text)
    history = read_history(run, space)
    assert [t.params for t in history.trials] == [{"model.x": 0.1, "model.extra": 0.25}]
    assert dict(history.skipped) == {
        'model.kind is "plain" now (a constant, or the recipe\'s default), a value the trial did not run': 1,
        "model.y is 0.5 now (a constant, or the recipe's default), a value the trial did not run": 1}

    without_schema = read_history(run, load_space(text))
    assert len(without_schema.trials) == 2 and without_schema.notes["model.y left out, no longer in the space"] == 2
    caplog.set_level(logging.INFO, logger="autotune")
    add_history(history, tmp_path / "study.db", space)
    assert (f"warm start from {run}: 1 finished trial(s) told to the sampler (1: model.extra told at its default "
            "0.25, not searched then); 2 skipped, their parameters no longer fit the space (1: ") in caplog.text


@pytest.mark.parametrize("epochs, states", [(2, [COMPLETE, PRUNED]), (4, [PRUNED, PRUNED]), (1, [COMPLETE, PRUNED])])
def test_a_trial_that_ran_fewer_epochs_than_the_new_space_gives_is_told_as_stopped_early(tmp_path, epochs, states):
    """A first search of 2 epochs, then one of 4: its complete trials' 2-epoch accuracies were told as final ones,
    ranked by TPE above the new trials stopped early at epoch 2 and level with those that ran all 4."""
    run = _study_of_a_run(tmp_path / "old", "old", [_trial(COMPLETE, 0.2, value=0.6, steps={1: 0.5, 2: 0.6}),
                                                    _trial(PRUNED, 0.4, value=0.3, steps={1: 0.3})])
    space = autotune.load_space(toy_space("new", train=f"{{epochs: {epochs}}}"))
    history = read_history(run, space)
    assert [t.state for t in history.trials] == states
    assert [(t.values, t.intermediate_values) for t in history.trials] == [([0.6], {1: 0.5, 2: 0.6}),
                                                                           ([0.3], {1: 0.3})]
    shorter = "told as stopped early (PRUNED): it ran fewer epochs than train.epochs gives it now"
    assert history.notes[shorter] == (1 if epochs > 2 else 0)
    # not run again as a first trial (a `default:` configuration): the trials as they ran, not those it ran shorter
    known = add_history(history, tmp_path / "study.db", space)
    assert known == [{"model.x": 0.4, "model.y": 0.6}] if epochs > 2 else len(known) == 2


def test_a_searched_number_of_epochs_fixed_now_is_told_as_stopped_early_not_skipped(tmp_path):
    old = autotune.load_space(toy_space("old", train="{epochs: {choice: [1, 2]}}"))
    epochs = optuna.distributions.CategoricalDistribution([1, 2])
    trial = optuna.trial.create_trial(value=0.6, params={"model.x": 0.2, "model.y": 0.6, "train.epochs": 2},
                                      distributions={"model.x": X, "model.y": X, "train.epochs": epochs},
                                      intermediate_values={1: 0.5, 2: 0.6})
    run = _study_of_a_run(tmp_path / "old", "old", [trial])
    (run / "space.json").write_text(old.definition() + "\n")
    history = read_history(run, autotune.load_space(toy_space("new", train="{epochs: 4}")))
    assert [(t.state, t.params) for t in history.trials] == [(PRUNED, {"model.x": 0.2, "model.y": 0.6})]
