"""The Python API as a notebook or script uses it (`autotune.fit`, `autotune.export`): its refusals name its own
arguments, a Ctrl-C ends it as documented, and it leaves the caller's process as it found it (random generators,
signal handlers)."""
from __future__ import annotations

import json
import logging
import os
import pickle
import random
import signal
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import autotune
from autotune import api
from autotune.cli import main
from autotune.engine.export import export_model
from autotune.engine.result import SearchResult
from autotune.errors import SpaceError, UserError
from autotune.run_options import from_command_line

TOY = Path(__file__).parents[1] / "engine" / "toy_recipe.py"
SPACE = (f"name: nb\nrecipe: {TOY}\nmodel: {{x: {{uniform: [0.0, 1.0]}}}}\ntrain: {{epochs: 1}}\n"
         "search: {metric: val_accuracy, mode: max, trials: 2, seed: 0}\nexport: {dir: models/nb}\n")


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """Work in an empty folder: runs/ and models/ land there."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _canonical_model(target: Path) -> dict:
    """A canonical model at `target` (a link into its versions folder), as a search's export writes one; its card."""
    def write(out: Path) -> dict:
        (out / "weights.json").write_text("{}")
        return {"labels": ["a"]}

    export_model(target, write=write, evaluate=lambda folder: {"test_accuracy": 0.5}, card={"name": "m"},
                 metric="test_accuracy", mode="max", promote="always", min_improvement=0.0)
    return json.loads((target / "model.json").read_text())


def test_export_refuses_a_canonical_model_as_out_from_python_as_from_the_command_line(in_tmp, capsys):
    """`autotune.export(run, trial, out=models/NAME)` rewrote that model's current version in place (its history
    lost); `autotune export --out` refused it. Both now refuse it in the same check, each naming its own option."""
    target = in_tmp / "models" / "m"
    card = _canonical_model(target)
    with pytest.raises(UserError, match="out .* is the canonical model") as refused:
        autotune.export("runs/nb", "t1", out=target)
    assert "e.g. out='models/NAME-trial'" in str(refused.value)
    assert "or give out=None to make the trial the new version of the run's canonical model" in str(refused.value)
    assert json.loads((target / "model.json").read_text()) == card

    (in_tmp / "runs" / "nb").mkdir(parents=True)
    assert main(["export", "runs/nb", "--trial", "t1", "--out", str(target)]) == 2
    err = capsys.readouterr().err
    assert f"--out {target} is the canonical model" in err and "e.g. --out models/NAME-trial" in err
    assert "or leave out --out to make the trial the new version of the run's canonical model" in err
    assert json.loads((target / "model.json").read_text()) == card


def test_a_ctrl_c_while_ray_starts_is_raised_once_ray_started(monkeypatch):
    """A Ctrl-C inside ray.init left Ray's processes running until the process ended (no shutdown sees a Ray that
    did not finish starting): it now waits for the start, then raises KeyboardInterrupt, and the process's own
    SIGINT handler is back."""
    from autotune.engine import search

    started = []

    def init_local(temp_dir: str, **kwargs: object) -> None:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.1)  # the handler ran by now
        started.append(temp_dir)

    monkeypatch.setattr(search, "init_local", init_local)
    monkeypatch.setattr(search, "LocalRay", lambda run, cpus, temp: SimpleNamespace(others=[], close=lambda: None))
    monkeypatch.setattr(search, "_local_ray", None)
    monkeypatch.setattr(search, "_ray_temp", None)
    monkeypatch.setattr(search.ray, "is_initialized", lambda: False)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            search._init_ray(search.RunOptions(num_cpus=1), "runs/nb")
        assert started and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, previous)


def test_a_ctrl_c_while_ray_stops_is_raised_once_ray_stopped(monkeypatch):
    """A Ctrl-C inside ray.shutdown would leave Ray half stopped: it waits for the stop, then raises
    KeyboardInterrupt, and the process's own SIGINT handler is back."""
    from autotune.engine import search

    stopped = []

    def shutdown_keeping_sigterm() -> None:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.1)  # the handler ran by now
        stopped.append(True)

    monkeypatch.setattr(search, "shutdown_keeping_sigterm", shutdown_keeping_sigterm)
    monkeypatch.setattr(search.ray, "is_initialized", lambda: True)
    monkeypatch.setattr(search, "_local_ray", None)
    monkeypatch.setattr(search, "_ray_temp", None)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            search.shutdown()
        assert stopped and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, previous)


def test_a_ctrl_c_once_the_trials_ended_stops_fit(in_tmp, monkeypatch, caplog):
    """Ray Tune's SIGINT handler, which only asks a running search to stop, stayed until `fit` returned: a Ctrl-C (a
    notebook's Stop) while the best model was exported and tested did nothing, and `fit` returned as if none came."""
    from autotune.engine import search

    def searched(*args: object, **kwargs: object) -> tuple:
        signal.signal(signal.SIGINT, lambda number, frame: None)  # Ray Tune's, left in place
        return None, None, 0.0, False, None, None

    def exporting(*args: object, **kwargs: object) -> None:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.1)  # the handler ran by now
        raise UserError("the Ctrl-C did nothing")

    monkeypatch.setattr(search, "ray_running", lambda: True)  # the caller's Ray: left running
    monkeypatch.setattr(search, "run_search", searched)
    monkeypatch.setattr(api, "_trials_and_best", exporting)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt), caplog.at_level(logging.WARNING, logger="autotune"):
            autotune.fit(SPACE)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, previous)
    assert "The search was interrupted" in caplog.text


@pytest.mark.parametrize("resumable", [False, True])
def test_a_ctrl_c_before_the_first_trial_says_what_continues_the_run(in_tmp, monkeypatch, caplog, resumable):
    """A Ctrl-C between Ray's start and the first trial (the study's creation, the Tuner) escaped `fit` as a raw
    KeyboardInterrupt from deep inside the libraries: it is now a short one, after the line saying what continues
    the run (`resume=True` where Ray saved a search to resume; else the same call)."""
    from autotune.engine import search, storage

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(search, "run_search", interrupted)
    monkeypatch.setattr(storage, "holds_search", lambda where, name: resumable)
    with caplog.at_level(logging.WARNING, logger="autotune"), pytest.raises(KeyboardInterrupt) as stopped:
        autotune.fit(SPACE)
    assert stopped.value.__suppress_context__ and Path(stopped.traceback[-1].path).name == "api.py"
    said = ("autotune.fit(<the same space and arguments>, resume=True) continues it" if resumable else
            "interrupted before its first trial")
    assert said in caplog.text


def _draws() -> tuple[float, float, float]:
    import torch

    return random.random(), float(np.random.random()), float(torch.rand(1))


def _seed() -> None:
    import torch

    random.seed(7)
    np.random.seed(7)
    torch.manual_seed(7)


@pytest.mark.parametrize("call", ["fit", "export"])
def test_fit_and_export_leave_the_caller_s_random_generators_as_they_were(in_tmp, monkeypatch, call):
    """A notebook seeded before `fit` or `export` drew other numbers after it (models built in this process, Ray's
    start and its scheduler draw from the global generators)."""
    from autotune.engine import search

    _seed()
    expected = _draws()

    def drawing(*args: object, **kwargs: object) -> None:
        _draws()
        raise UserError("stopped after drawing")

    monkeypatch.setattr(search, "run_search", drawing)
    monkeypatch.setattr(api, "_run_state", drawing)
    _seed()
    with pytest.raises(UserError, match="stopped after drawing"):
        autotune.fit(SPACE) if call == "fit" else autotune.export("runs/nb", "t1")
    assert _draws() == expected


@pytest.mark.parametrize("call", ["fit", "export"])
def test_fit_and_export_build_models_in_float32_whatever_the_caller_s_default_dtype(in_tmp, monkeypatch, call):
    """A notebook's `torch.set_default_dtype(torch.float64)` built the exported model in float64, as trial workers do
    not: testing it on float32 images failed once every trial had run. The caller's default is its own again after."""
    import torch

    from autotune.engine import search

    seen = []

    def building(*args: object, **kwargs: object) -> None:
        seen.append(torch.get_default_dtype())
        raise UserError("stopped while building")

    monkeypatch.setattr(search, "run_search", building)
    monkeypatch.setattr(api, "_run_state", building)
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        with pytest.raises(UserError, match="stopped while building"):
            autotune.fit(SPACE) if call == "fit" else autotune.export("runs/nb", "t1")
        assert seen == [torch.float32]
        assert torch.get_default_dtype() == torch.float64
    finally:
        torch.set_default_dtype(before)


@pytest.mark.parametrize("call", ["fit", "export"])
def test_optuna_is_quiet_while_fit_and_export_run_and_as_verbose_as_the_caller_set_it_after(in_tmp, monkeypatch,
                                                                                            call):
    """The search set Optuna's verbosity to WARNING for good: a notebook's own `study.optimize` after `fit` logged
    no "Trial 0 finished with value" line."""
    import optuna

    from autotune.engine import search

    seen = []

    def searching(*args: object, **kwargs: object) -> None:
        seen.append(optuna.logging.get_verbosity())
        optuna.logging.set_verbosity(optuna.logging.ERROR)  # as the engine's readers of a study may
        raise UserError("stopped while searching")

    monkeypatch.setattr(search, "run_search", searching)
    monkeypatch.setattr(api, "_run_state", searching)
    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.INFO)
    try:
        with pytest.raises(UserError, match="stopped while searching"):
            autotune.fit(SPACE) if call == "fit" else autotune.export("runs/nb", "t1")
        assert seen == [optuna.logging.WARNING]
        assert optuna.logging.get_verbosity() == optuna.logging.INFO
    finally:
        optuna.logging.set_verbosity(before)


def test_a_second_fit_at_once_in_the_process_is_refused_at_once(monkeypatch):
    """Two `fit` calls at once (threads of a notebook) both crashed deep inside Ray."""
    entered, release = threading.Event(), threading.Event()

    def slow(space: object, overrides: object) -> None:
        entered.set()
        release.wait(5)
        raise UserError("stopped by the test")

    monkeypatch.setattr(api, "load_space", slow)
    first = threading.Thread(target=lambda: pytest.raises(UserError, autotune.fit, "space.yaml"))
    first.start()
    try:
        assert entered.wait(5)
        with pytest.raises(UserError, match="another autotune.fit runs in this process"):
            autotune.fit("space.yaml")
    finally:
        release.set()
        first.join()
    with pytest.raises(UserError, match="stopped by the test"):  # the lock was let go
        autotune.fit("space.yaml")


def test_the_process_s_signal_handlers_are_its_own_after_the_search(monkeypatch):
    """Ray's SIGTERM handler (set by ray.init) stayed after `fit`, as SIGINT's and SIGUSR1's did before."""
    from autotune.engine import search

    monkeypatch.setattr(search, "ray_running", lambda: True)  # the caller's Ray: left running
    numbers = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)
    saved = {number: signal.getsignal(number) for number in numbers}
    try:
        with api._ray_for_the_search():
            for number in numbers:
                signal.signal(number, lambda *args: None)  # what Ray and Ray Tune set
        assert {number: signal.getsignal(number) for number in numbers} == saved
    finally:
        for number, handler in saved.items():
            signal.signal(number, handler)


@pytest.mark.parametrize("own", [None, "ipdb.set_trace"])
def test_breakpoint_is_the_process_s_own_after_the_ray_the_search_started(monkeypatch, own):
    """ray.init points PYTHONBREAKPOINT at Ray's debugger and leaves it: after `fit`, the program's `breakpoint()` was
    skipped with an ERROR line, or raised AttributeError where debugpy is installed (Jupyter)."""
    from autotune.engine import search

    monkeypatch.setattr(search, "ray_running", lambda: False)
    monkeypatch.setattr(search, "shutdown", lambda: None)
    if own is None:
        monkeypatch.delenv("PYTHONBREAKPOINT", raising=False)
    else:
        monkeypatch.setenv("PYTHONBREAKPOINT", own)
    with api._ray_for_the_search():
        os.environ["PYTHONBREAKPOINT"] = "ray.util.rpdb._driver_set_trace"  # what ray.init sets
    assert os.environ.get("PYTHONBREAKPOINT") == own


def test_resuming_an_ended_run_names_a_new_run_s_arguments_as_the_caller_writes_them(tmp_path, caplog):
    """From Python the two arguments had no comma between them (`warm_start='...' overrides=[...]`)."""
    from autotune.engine import search
    from autotune.engine.storage import run_location

    space = autotune.load_space(SPACE)
    where = run_location(str(tmp_path), space.name)
    where.state.mkdir(parents=True)
    (where.state / "summary.json").write_text(json.dumps({"interrupted": False, "ended": None}))
    with caplog.at_level(logging.WARNING, logger="autotune"):
        search._ended_before(space, where)
        with from_command_line():
            search._ended_before(space, where)
    python, command_line = [r.getMessage() for r in caplog.records if "this run ended" in r.getMessage()]
    tail = " (where export.dir is made from the name, as models/${name} is, also override export.dir=models/nb to " \
           "export where this run does)"
    assert python.endswith(f"from its trials: warm_start='{where.experiment}', overrides=['name=nb-2']{tail}")
    assert command_line.endswith(f"from its trials: --warm-start {where.experiment} --set name=nb-2{tail}")


@pytest.mark.parametrize("overrides, python, command_line", [
    (["train.epochs"], "<overrides>:1: train.epochs: an override is KEY=VALUE (got 'train.epochs'); "
                       "e.g. overrides=['train.epochs=3']",
     "<--set>:1: train.epochs: an override is KEY=VALUE (got 'train.epochs'); e.g. --set train.epochs=3"),
    (["train.epochs=3", "model.x.y=1"], "<overrides>:2: model.x: cannot set model.x.y: this key is a distribution; "
                                        "override the whole key: overrides=['model.x=...'], or its default: "
                                        "overrides=['model.x.default=...']",
     "<--set>:2: model.x: cannot set model.x.y: this key is a distribution; override the whole key: "
     "--set 'model.x=...', or its default: --set model.x.default=..."),
])
def test_a_bad_override_is_named_as_the_caller_gave_it(overrides, python, command_line):
    """`fit(space, overrides=["train.epochs"])` answered `<--set>:1: ... e.g. --set train.epochs=3`, naming the
    command line's flag to a Python caller."""
    with pytest.raises(SpaceError) as refused:
        autotune.load_space(SPACE, overrides)
    assert python in str(refused.value)
    with from_command_line(), pytest.raises(SpaceError) as refused:
        autotune.load_space(SPACE, overrides)
    assert command_line in str(refused.value)


def test_a_loaded_image_model_shows_its_folder_and_classes(tmp_path):
    """A notebook showed `<autotune.vision.predictor.Predictor object at 0x...>`."""
    import torch

    from autotune.vision.predictor import Predictor

    card = {"name": "digits", "labels": [str(i) for i in range(10)], "input_shape": [1, 8, 8]}
    model = Predictor(torch.nn.Flatten(), card, tmp_path / "digits")  # a module as TorchScript loads one
    assert repr(model) == (f"Predictor({str(tmp_path / 'digits')!r}: image classification of 10 classes "
                           "(0, 1, 2, 3, 4, ...), input 1x8x8)")


@pytest.mark.parametrize("theirs, ours", [("best_score_", "best_metrics[metric]"), ("cv_results_", "trials (a "),
                                          ("best_params_", "best_params"), ("best_estimator_", "load_model")])
def test_scikit_learns_result_attributes_name_the_results_own(theirs, ours):
    """`result.best_score_`, as a GridSearchCV user writes it, was a bare AttributeError."""
    result = SearchResult("nb", Path("runs/nb"), ("val_roc_auc",), ("max",), "t1", {}, {}, {}, pd.DataFrame())
    with pytest.raises(AttributeError, match=f"has no attribute '{theirs}'; scikit-learn's {theirs} is") as caught:
        getattr(result, theirs)
    assert ours in str(caught.value)
    with pytest.raises(AttributeError, match="^'SearchResult' object has no attribute 'bogus'$"):
        result.bogus  # noqa: B018
    assert pickle.loads(pickle.dumps(result)).best_trial_id == "t1"
