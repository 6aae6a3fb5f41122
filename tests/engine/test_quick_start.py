"""The README's quick start, `autotune run search_spaces/digits.yaml`, as a real process (a little smaller):
what it prints (a summary, and no Ray noise), where it writes (runs/ and models/ here, never ~/ray_results),
and the model card it exports."""
from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from autotune.machine import machine

DIGITS = Path(__file__).parents[2] / "search_spaces" / "digits.yaml"
TRIALS = 3
LOADING = r"loading the data: \d+ s so far \(it is read once, before the first trial starts\)"  # autotune's, on a slow load


@pytest.fixture(scope="module")
def quick_start(tmp_path_factory) -> SimpleNamespace:
    """One run of the installed `autotune` command in an empty folder, with HOME an empty folder too, and none
    of Ray's settings inherited from this test process (the engine must quiet Ray by itself)."""
    work = tmp_path_factory.mktemp("quick_start")
    home = work / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "TUNE_"))}
    command = Path(sys.executable).with_name("autotune")
    run = subprocess.Popen(
        [str(command), "run", str(DIGITS), "--set", f"search.trials={TRIALS}", "--set", "train.epochs=2"],
        cwd=work, env={**env, "HOME": str(home)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    out, err = run.communicate(timeout=300)
    assert run.returncode == 0, out + err
    return SimpleNamespace(work=work, home=home, out=out, err=err,
                           temp_dir_left=Path(f"/tmp/rt_{run.pid}").exists(),  # the local Ray's (engine.search)
                           trials=pd.read_csv(work / "runs" / "digits" / "trials.csv", dtype={"trial_id": str}),
                           card=json.loads((work / "models" / "digits" / "model.json").read_text()))


def test_the_quick_start_prints_a_summary_and_exports_the_model(quick_start):
    out, work = quick_start.out, quick_start.work
    assert re.match(rf"(?:{LOADING}\n)*data: digits, 1252 train / 262 val / 283 test, input \(1, 8, 8\), 10 classes\n"
                    rf"Searching 'digits': {TRIALS} trials, sampler tpe, scheduler asha, metric val_accuracy\n", out)
    assert f"[{TRIALS}/{TRIALS}] trial " in out
    assert re.search(rf"^Search 'digits': {TRIALS} trials in [\d.]+ s, \d+ epochs run \(\d stopped early, 0 failed\)$",
                     out, re.M)
    assert re.search(r"^trial +val_accuracy +epochs +status +model\.arch ", out, re.M)
    for trial_id in quick_start.trials["trial_id"]:
        assert re.search(rf"^{trial_id} +0\.\d+ +[12] +(done|stopped early) ", out, re.M), trial_id
    assert re.search(r"^Held-out test split: test_accuracy=0\.\d+, test_loss=", out, re.M)
    assert f"Model: {work / 'models' / 'digits'} (promoted: no canonical model yet)" in out
    assert f"Run:   {work / 'runs' / 'digits'}" in out
    model = work / "models" / "digits"
    assert (model / "model.pt").is_file() and (model / "model.json").is_file()


def test_the_quick_start_leaves_no_ray_temp_folder(quick_start):
    assert not quick_start.temp_dir_left  # the local Ray's sockets and logs go with it


def test_the_quick_start_prints_no_ray_noise(quick_start):
    """Quiet by default: nothing on stderr, and every line on stdout is autotune's own."""
    assert quick_start.err == ""
    ours = ("data: digits, ", "Searching 'digits':", "Search 'digits':", "Stopped early after epoch ", "Best trial ",
            "Held-out test split:", "Model: ", "Run:   ", "TensorBoard: ", "trial ", "--------")
    loading = re.compile(LOADING)  # on a busy machine, the digits load takes seconds
    ids = tuple(quick_start.trials["trial_id"])
    for line in quick_start.out.splitlines():
        progress = re.match(rf"\[\d/{TRIALS}\] ", line)  # a finished trial, or the periodic status line
        assert not line or line.startswith(ours + ids) or progress or loading.fullmatch(line), \
            f"not autotune's: {line!r}"


def test_the_quick_start_writes_under_the_working_directory_never_ray_results(quick_start):
    work = quick_start.work
    assert not (quick_start.home / "ray_results").exists()
    assert not list(work.rglob("ray_results"))
    run_dir = work / "runs" / "digits"
    expected = sorted(f"trial_{t}" for t in quick_start.trials["trial_id"])
    assert sorted(p.name for p in run_dir.glob("trial_*")) == expected
    assert (run_dir / "study.db").is_file() and (run_dir / "summary.json").is_file()


def test_the_model_card_records_the_data_the_trials_and_the_versions(quick_start):
    from autotune import recipes

    card, trials = quick_start.card, quick_start.trials
    recipe = recipes.load("image_classification")
    data = recipe.load_data(card["config"]["data"])
    assert card["labels"] == [str(i) for i in range(10)] and card["input_shape"] == [1, 8, 8]
    # Normalisation: per-channel mean and std of the train split's pixels in [0, 1] (1797 digits, each held out
    # with a chance of 30 %).
    pixels = data.train.x.double() / 255
    assert len(data.train.y) + len(data.val.y) + len(data.test.y) == 1797
    assert abs(len(data.train.y) - 0.7 * 1797) < 4 * (1797 * 0.7 * 0.3) ** 0.5
    assert card["mean"] == pytest.approx([pixels.mean().item()], abs=1e-9)
    assert card["std"] == pytest.approx([pixels.std().item()], abs=1e-9)
    assert 0.2 < card["mean"][0] < 0.4 and 0.3 < card["std"][0] < 0.5  # digits: mostly dark 8x8 images
    # The fingerprint is the data's: the same data gives it again, another split does not.
    assert card["data_fingerprint"] == data.fingerprint and re.fullmatch(r"[0-9a-f]{64}", card["data_fingerprint"])
    other = recipe.load_data({**card["config"]["data"], "split_seed": 1})
    assert other.fingerprint != card["data_fingerprint"]
    # Top trials: every finished trial, best first, as trials.csv has them; the first is the exported one.
    top = card["top_trials"]
    expected = trials[trials["status"] != "ERROR"].sort_values("val_accuracy", ascending=False)
    assert [t["trial_id"] for t in top] == list(expected["trial_id"])
    assert [t["val_accuracy"] for t in top] == pytest.approx(list(expected["val_accuracy"]))
    assert [t["epochs"] for t in top] == list(expected["epochs"])
    assert top[0]["trial_id"] == card["trial_id"] and card["metrics"]["val_accuracy"] == pytest.approx(
        top[0]["val_accuracy"])
    shown = {k.removeprefix("p:"): v for k, v in top[0].items() if k.startswith("p:") and v is not None}
    assert shown.keys() == card["params"].keys()
    for name, value in card["params"].items():  # full precision: a 1e-11 learning rate must not read 0.0
        assert shown[name] == (pytest.approx(value, rel=1e-12) if isinstance(value, float) else value), name
    # The threads each trial trained on (search.resources.cpu): `autotune train MODEL_DIR` trains on as many.
    assert card["search"]["threads"] == 1 and card["search"]["trials_run"] == TRIALS == len(trials)
    # The samples its metrics were measured on (the test metrics' sample size), as the first line of the run says.
    assert card["samples"] == {"train": 1252, "val": 262, "test": 283}
    # Who ran the search, and where.
    assert card["created_by"]["host"] == platform.node() and card["history"][0]["created_by"] == card["created_by"]
    # Versions: those of this environment.
    versions = card["versions"]
    assert versions["python"] == platform.python_version()
    for dist in ("autotune", "torch", "ray", "optuna", "numpy"):
        assert versions[dist] == metadata.version(dist), dist
    # The machine, as a paper's appendix gives it (the card said only the host's name).
    assert card["machine"] == machine() and card["machine"]["cores"] == os.cpu_count()


API = """
import autotune
result = autotune.fit({digits!r}, overrides=["search.trials=2", "train.epochs=1", "search.scheduler=fifo"],
                      export=False)  # one epoch: early stopping would stop nothing (a warning says so)
print(result)
"""


def test_the_python_api_shows_the_progress_and_prints_the_summary(tmp_path):
    """README's Python API in a script that sets up no logging (as a notebook): the progress lines appear on stderr
    while the search runs, and `print(result)` is the summary `autotune run` ends with."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "TUNE_"))}
    run = subprocess.run([sys.executable, "-c", API.format(digits=str(DIGITS))], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stderr.splitlines()
    assert lines[:2] == ["data: digits, 1252 train / 262 val / 283 test, input (1, 8, 8), 10 classes",
                         "Searching 'digits': 2 trials, sampler tpe, scheduler fifo, metric val_accuracy"], lines
    assert any(line.startswith("[2/2] trial ") for line in lines), lines
    # nothing but progress: a line per ended trial, and the running trials' line (every 10 s on a busy machine)
    assert all(re.match(r"data: |Searching|\[[012]/2\] (trial |\d+s, \d+ epochs? run: )", line) for line in lines), lines
    assert re.search(r"^Search 'digits': 2 trials in [\d.]+ s, 2 epochs run ", run.stdout, re.M), run.stdout
    assert re.search(r"^Best trial \w+: epoch=1, val_accuracy=0\.\d+$", run.stdout, re.M)
    assert f"Run:   {tmp_path / 'runs' / 'digits'}" in run.stdout
