"""Bad command-line input, command by command: each case exits with its status and says on stderr, in one line
with no traceback, what was wrong (the file, the option, the key path) and how to fix it, before the expensive work
(training, a sweep, a search, a server).

Each case is `autotune ARGV...` run in this process; `{name}` in ARGV and in the expected words is a path of the
`paths` fixture (`{{` and `}}` are braces). The refused resume and the warm start from a run of other metrics need
a real (one-trial) run: they come last, on a local Ray."""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import shutil
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import autotune
import autotune.cli
from autotune.cli.common import pixel_count
from autotune.errors import UserError
from reliability_helpers import TOY, ray_started, without_ray

IMAGE_SPACE = """\
name: tiny
recipe: image_classification
data: {dataset: digits, val_fraction: 0.15, test_fraction: 0.15}
model: {arch: mlp, width: 16, depth: 1}
optimizer: {name: adamw, lr: 0.01}
train: {epochs: 1, batch_size: 64}
"""
TABLE_SPACE = """\
name: table
recipe: tabular
data: {dataset: breast_cancer}
model: {width: 16, depth: 1}
train: {epochs: 1, batch_size: 32}
"""
TOY_SPACE = f"""\
name: toy
recipe: {TOY}
model: {{x: {{uniform: [0.0, 1.0]}}, y: {{uniform: [0.0, 1.0]}}}}
train: {{epochs: 1}}
search: {{metric: val_accuracy, mode: max, trials: 1, scheduler: fifo, seed: 0, resources: {{cpu: 1}}}}
export: {{dir: models/toy}}
"""


@dataclass(frozen=True)
class Case:
    id: str
    argv: tuple[str, ...]  # after `autotune`, with {name} for the paths of the `paths` fixture
    code: int
    words: tuple[str, ...]  # what stderr must say (stdout for `stream="out"`)
    absent: tuple[str, ...] = ()  # what neither stream may say (the work that must not have started)
    stream: str = "err"


def _trained(space: Path, out: Path) -> Path:
    """The model `autotune train SPACE --out OUT` exports (no Ray), its output swallowed."""
    with contextlib.redirect_stdout(io.StringIO()):
        assert autotune.cli.main(["train", str(space), "--out", str(out)]) == 0
    return out


def _damaged(model: Path, copy: Path) -> Path:
    """A copy of the exported `model` whose model.pt is garbage."""
    shutil.copytree(model, copy)
    (copy / "model.pt").write_text("garbage\n")
    return copy


def _run_folder(folder: Path, trials_csv: str) -> Path:
    folder.mkdir()
    (folder / "trials.csv").write_text(trials_csv)
    return folder


@pytest.fixture(scope="module")
def taken_port() -> Iterator[int]:
    """A port something listens on."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken.getsockname()[1]


@pytest.fixture(scope="module")
def paths(tmp_path_factory, taken_port) -> dict[str, str]:
    """Every file, folder and model the cases name (two models trained for an epoch: a few seconds)."""
    tmp = tmp_path_factory.mktemp("inputs")
    for name, text in (("space.yaml", IMAGE_SPACE), ("table.yaml", TABLE_SPACE), ("toy.yaml", TOY_SPACE)):
        (tmp / name).write_text(text)
    image, table = _trained(tmp / "space.yaml", tmp / "image_model"), _trained(tmp / "table.yaml", tmp / "table_model")
    (tmp / "a_file.txt").write_text("not a folder\n")
    np.save(tmp / "seven.npy", np.zeros((8, 8), np.uint8))
    (tmp / "empty.csv").write_text("")
    (tmp / "blank.csv").write_text("\n\n")
    (tmp / "header.csv").write_text("mean radius,mean texture\n")
    (tmp / "plots.png").mkdir()
    (tmp / "notes").mkdir()
    (tmp / "notes" / "todo.txt").write_text("the user's own file\n")
    return {
        "tmp": str(tmp), "space": str(tmp / "space.yaml"), "toy": str(tmp / "toy.yaml"),
        "file": str(tmp / "a_file.txt"),
        "image": str(image), "table": str(table), "npy": str(tmp / "seven.npy"), "port": str(taken_port),
        "folder_png": str(tmp / "plots.png"), "notes": str(tmp / "notes"),
        "broken_image": str(_damaged(image, tmp / "broken_image")),
        "broken_table": str(_damaged(table, tmp / "broken_table")),
        "empty_csv": str(tmp / "empty.csv"), "blank_csv": str(tmp / "blank.csv"), "header_csv": str(tmp / "header.csv"),
        "garbage_run": str(_run_folder(tmp / "garbage_run", 'garbage,,"\n')),
        "empty_run": str(_run_folder(tmp / "empty_run", "")),
        "other_run": str(_run_folder(tmp / "other_run", "a,b\n1,2\n")),
    }


def _check(case: Case, paths: dict[str, str], cli) -> None:
    """Run the case: its exit status, its words, no traceback, nothing of `absent`, one line of error."""
    code, out, err = cli(*[arg.format(**paths) for arg in case.argv])
    assert code == case.code, out + err
    shown = " ".join((out if case.stream == "out" else err).split())  # help text wraps anywhere
    for words in case.words:
        assert words.format(**paths) in shown, shown
    assert "Traceback" not in out + err
    for words in case.absent:
        assert words.format(**paths) not in out + err, out + err
    if case.code == 2 and case.stream == "err":  # one line of error (after argparse's usage, for a usage error)
        command = case.argv[0]
        last = err.strip().splitlines()[-1]
        assert last.startswith(f"autotune {command}: error: "), err
        assert all(line.startswith("usage:") or line.startswith(" ") for line in err.strip().splitlines()[:-1]), err


CASES = [
    # 1: a damaged model.pt
    Case("predict-damaged-model", ("predict", "{broken_image}", "{npy}"), 2,
         ("{broken_image}/model.pt cannot be loaded as a TorchScript model", "export the model again")),
    Case("serve-damaged-model", ("serve", "{broken_image}"), 2,
         ("{broken_image}/model.pt cannot be loaded",), absent=("serving",)),
    Case("predict-damaged-table-model", ("predict", "{broken_table}", "{header_csv}"), 2,
         ("{broken_table}/model.pt cannot be loaded as a TorchScript model",)),
    Case("serve-damaged-table-model", ("serve", "{broken_table}"), 2,
         ("{broken_table}/model.pt cannot be loaded",), absent=("serving",)),
    # 2: serve's address
    Case("serve-port-too-high", ("serve", "{image}", "--port", "99999"), 2,
         ("argument --port: must be between 0 and 65535", "got 99999"), absent=("serving",)),
    Case("serve-port-negative", ("serve", "{image}", "--port=-1"), 2,
         ("argument --port: must be between 0 and 65535",)),
    Case("serve-port-text", ("serve", "{image}", "--port", "http"), 2, ("expected a port number 0..65535",)),
    Case("serve-port-taken", ("serve", "{image}", "--port", "{port}"), 2,
         ("port {port} on 127.0.0.1 is taken", "--port 0"), absent=("serving",)),
    Case("serve-unknown-host", ("serve", "{image}", "--host", "999.1.1.1"), 2,
         ("cannot listen on 999.1.1.1:8000", "give --host an address of this machine"), absent=("serving",)),
    Case("dashboard-port-too-high", ("dashboard", "{tmp}", "--port", "70000"), 2,
         ("argument --port: must be between 0 and 65535",)),
    # 3: report --out
    Case("report-out-is-a-file", ("report", "{garbage_run}", "--out", "{file}"), 2,
         ("--out '{file}' is a file, not a folder",)),
    Case("report-out-under-a-file", ("report", "{garbage_run}", "--out", "{file}/x"), 2,
         ("--out '{file}/x' lies under '{file}', which is a file",)),
    # 4: report of a damaged trials.csv
    Case("report-garbage-trials", ("report", "{garbage_run}"), 2,
         ("the run's trials.csv is unreadable: {garbage_run}/trials.csv", "re-run the search", "restore")),
    Case("report-empty-trials", ("report", "{empty_run}"), 2,
         ("trials.csv is unreadable: {empty_run}/trials.csv: No columns to parse",)),
    Case("report-foreign-trials", ("report", "{other_run}"), 2,
         ("trials.csv is unreadable", "it has no trial_id or status column")),
    # 5: lr-find --out, before the sweep
    Case("lr-find-out-not-an-image", ("lr-find", "{space}", "--steps", "10", "--out", "{tmp}/notes.txt"), 2,
         ("its suffix .txt is not an image format matplotlib can write", ".png", ".svg"), absent=("batches in",)),
    Case("lr-find-out-no-suffix", ("lr-find", "{space}", "--out", "{tmp}/plot"), 2, ("it has no suffix",)),
    Case("lr-find-out-under-a-file", ("lr-find", "{space}", "--out", "{file}/x.png"), 2,
         ("lies under '{file}', which is a file",), absent=("batches in",)),
    Case("lr-find-out-a-folder", ("lr-find", "{space}", "--out", "{folder_png}"), 2,
         ("--out '{folder_png}' is a folder; give a file path",)),
    # 6: train --out, before training
    Case("train-out-is-a-file", ("train", "{space}", "--out", "{file}"), 2,
         ("--out '{file}' is a file, not a folder; give a folder path",), absent=("epoch",)),
    Case("train-out-under-a-file", ("train", "{space}", "--out", "{file}/model"), 2, ("lies under",),
         absent=("epoch",)),
    Case("train-out-not-writable", ("train", "{space}", "--out", "/proc/autotune-model"), 2, ("is not writable",),
         absent=("epoch",)),
    # 16: a table with no header or no rows: one line per file, as an image recipe's empty file
    Case("predict-empty-csv", ("predict", "{table}", "{empty_csv}", "{blank_csv}"), 1,
         ("autotune predict: {empty_csv}: empty file", "autotune predict: {blank_csv}: empty file")),
    Case("predict-header-only-csv", ("predict", "{table}", "{header_csv}"), 1,
         ("autotune predict: {header_csv}: no rows: the file holds only its header",)),
    # 17: --if-data-changed with an option it overrides
    Case("run-if-data-changed-resume", ("run", "{toy}", "--if-data-changed", "--resume"), 2,
         ("--resume with --if-data-changed", "drop --resume"), absent=("Searching",)),
    Case("run-if-data-changed-no-export", ("run", "{toy}", "--if-data-changed", "--no-export"), 2,
         ("--no-export with --if-data-changed", "drop --no-export")),
    Case("run-help-says-why", ("run", "--help"), 0, ("not with --resume", "not with --no-export"), stream="out"),
    # 25: a path that does not exist, or is a file
    Case("predict-model-missing", ("predict", "{tmp}/nope", "{npy}"), 2, ("MODEL_DIR {tmp}/nope does not exist",)),
    Case("predict-model-is-a-file", ("predict", "{image}/model.pt", "{npy}"), 2,
         ("{image}/model.pt is a file, not the folder of an exported model",)),
    Case("serve-model-missing", ("serve", "{tmp}/nope"), 2, ("MODEL_DIR {tmp}/nope does not exist",)),
    Case("dashboard-run-missing", ("dashboard", "{tmp}/nope"), 2, ("RUN_DIR {tmp}/nope does not exist",)),
    Case("dashboard-run-is-a-file", ("dashboard", "{file}"), 2,
         ("{file} is a file, not the folder of an autotune run",)),
    Case("report-run-missing", ("report", "{tmp}/nope"), 2, ("RUN_DIR {tmp}/nope does not exist",)),
    Case("report-uri-not-searched-here", ("report", "s3://nobucket/runs/x"), 2,
         ("RUN_DIR s3://nobucket/runs/x has no local mirror on this machine", "run this there, or give a folder")),
    Case("dashboard-uri-not-searched-here", ("dashboard", "gs://nobucket/runs/x"), 2,
         ("RUN_DIR gs://nobucket/runs/x has no local mirror on this machine",)),
    Case("run-storage-is-a-file", ("run", "{toy}", "--storage", "{file}"), 2,
         ("--storage '{file}' is a file, not a folder",)),
    Case("run-storage-under-a-file", ("run", "{toy}", "--storage", "{file}/runs"), 2,
         ("--storage '{file}/runs' lies under '{file}', which is a file",)),
    Case("run-warm-start-is-a-file", ("run", "{toy}", "--storage", "{tmp}/runs", "--warm-start", "{file}"), 2,
         ("--warm-start {file}: it is a file, not a run folder",)),
    Case("run-warm-start-missing", ("run", "{toy}", "--storage", "{tmp}/runs", "--warm-start", "{tmp}/nope"), 2,
         ("there is no such run folder (it does not exist)",)),
    # a folder of the user's own files at export.dir: refused before the search, not moved aside after it
    Case("run-export-dir-holds-other-files", ("run", "{toy}", "--storage", "{tmp}/runs", "--set",
                                              "export.dir={notes}"), 2,
         ("the model folder {notes} is a folder of other files (it holds no model.json)",),
         absent=("Searching",)),
    # 26: an unrecognised argument gets the sub-command's usage and prefix, and the option it is close to
    Case("check-misspelt-option", ("check", "{space}", "--sett", "train.epochs=3"), 2,
         ("usage: autotune check", "autotune check: error: unrecognized arguments: --sett train.epochs=3; "
                                   "did you mean --set?")),
    Case("check-hydra-overrides", ("check", "{space}", "train.epochs=3", "+train.seed=1"), 2,
         ("usage: autotune check", "autotune check: error: unrecognized arguments: train.epochs=3 +train.seed=1; "
                                   "an override is given with --set here: --set train.epochs=3 --set train.seed=1")),
    Case("check-two-spaces", ("check", "{space}", "{toy}"), 2,
         ("usage: autotune check", "unrecognized arguments: {toy}"), absent=("did you mean",)),
    Case("predict-unknown-option", ("predict", "{image}", "{npy}", "--topk", "2"), 2,
         ("usage: autotune predict", "autotune predict: error: unrecognized arguments: --topk 2; did you mean "
                                     "--top-k?")),
    Case("run-misspelt-option", ("run", "{toy}", "--no-exprot"), 2, ("did you mean --no-export?",),
         absent=("Searching",)),
    Case("run-unknown-option", ("run", "{toy}", "--zzzz"), 2, ("unrecognized arguments: --zzzz",),
         absent=("did you mean",)),
    # 27: lr-find, one rule per message, naming the value
    Case("lr-find-steps", ("lr-find", "{space}", "--steps", "0"), 2, ("--steps must be >= 10", "got 0")),
    Case("lr-find-start", ("lr-find", "{space}", "--start", "0"), 2, ("--start must be a learning rate > 0, got 0",)),
    Case("lr-find-start-negative", ("lr-find", "{space}", "--start=-1"), 2, ("--start must be", "got -1")),
    Case("lr-find-end", ("lr-find", "{space}", "--start", "1", "--end", "0.1"), 2,
         ("--end must be a finite learning rate greater than --start (1), got 0.1",)),
    Case("lr-find-end-nan", ("lr-find", "{space}", "--end", "nan"), 2, ("--end must be", "got nan")),
    Case("lr-find-help", ("lr-find", "--help"), 0, (">= 10",), stream="out"),
    # 28: serve --max-pixels takes what its help shows
    Case("serve-max-pixels-as-shown", ("serve", "{image}", "--max-pixels", "4096x4096", "--port", "{port}"), 2,
         ("is taken",)),  # parsed: refused only for the taken port
    Case("serve-max-pixels-bad", ("serve", "{image}", "--max-pixels", "4096x"), 2,
         ("argument --max-pixels: expected a number of pixels, e.g. 16777216 or 4096x4096",)),
    Case("serve-help-default", ("serve", "--help"), 0, ("4096x4096", "WIDTHxHEIGHT"), stream="out"),
    # 29: rollback needs a canonical model (a link to its versions)
    Case("rollback-a-plain-folder", ("rollback", "{image}"), 2,
         ("is not a canonical model (a link to a version folder", "nothing to roll back")),
    Case("rollback-a-missing-folder", ("rollback", "no/such/model"), 2, ("is not a canonical model",)),
    Case("rollback-help", ("rollback", "--help"), 0, ("--to VERSION", "skips the data whose models were rolled"),
         stream="out"),
]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_bad_input_is_one_line(case, paths, cli, in_tmp):
    without_ray()
    _check(case, paths, cli)
    if case.argv[0] == "run":
        assert not ray_started()


@pytest.mark.parametrize("model", ["broken_image", "broken_table"])
def test_load_model_names_the_damaged_file(paths, model):
    with pytest.raises(UserError, match="model.pt cannot be loaded as a TorchScript model") as caught:
        autotune.load_model(paths[model])
    assert paths[model] in str(caught.value) and "\n" not in str(caught.value)


def test_the_lr_plot_is_written_where_it_was_checked(paths, cli, tmp_path):
    """--out that passes the checks is written: the check and the plot agree on the format."""
    code, out, err = cli("lr-find", paths["space"], "--steps", "10", "--out", tmp_path / "sub" / "sweep.svg")
    assert code == 0, err
    assert (tmp_path / "sub" / "sweep.svg").is_file()


@pytest.mark.parametrize(("text", "pixels"), [("4096x4096", 4096 * 4096), ("640X480", 640 * 480), ("1000", 1000),
                                              (" 8x8 ", 64)])
def test_max_pixels_reads_a_number_or_width_x_height(text, pixels):
    assert pixel_count(text) == pixels


@pytest.mark.parametrize("text", ["4096x", "x4096", "4096x4096x2", "many", "1.5x2"])
def test_max_pixels_refuses_anything_else(text):
    with pytest.raises(argparse.ArgumentTypeError, match="4096x4096"):
        pixel_count(text)


# ------------------------------------------------------------------------------------ cases on a real run
@pytest.fixture(scope="module")
def searched(paths, local_ray) -> dict[str, str]:
    """`paths`, with a one-trial toy run in {runs}/toy; {old_runs}, a copy of it as a run of an autotune that
    recorded no space.json nor the folder it started in; {unfinished_runs}, a copy without its summary.json."""
    runs = Path(paths["tmp"], "runs")
    with contextlib.chdir(paths["tmp"]), contextlib.redirect_stdout(io.StringIO()):
        assert autotune.cli.main(["run", paths["toy"], "--storage", str(runs), "--no-export", "--num-cpus", "2"]) == 0
    assert json.loads((runs / "toy" / "summary.json").read_text())["metric"] == ["val_accuracy"]
    old, unfinished = Path(paths["tmp"], "old_runs"), Path(paths["tmp"], "unfinished_runs")
    shutil.copytree(runs, old)
    (old / "toy" / "space.json").unlink()
    (old / "toy" / "started_at").unlink()
    shutil.copytree(runs, unfinished)
    (unfinished / "toy" / "summary.json").unlink()  # as a run killed before its end
    return {**paths, "runs": str(runs), "old_runs": str(old), "unfinished_runs": str(unfinished)}


RUN_CASES = [
    # 14: a warm start from a run of other metrics
    Case("warm-start-other-metric", ("run", "{toy}", "--storage", "{runs}", "--set", "name=warm", "--warm-start",
                                     "{runs}/toy", "--set", "search.metric=val_loss", "--set", "search.mode=max"), 2,
         ("--warm-start {runs}/toy: that run searched val_accuracy (max), this space searches val_loss (max)",
          "same metric(s)")),
    Case("warm-start-other-metric-without-summary",
         ("run", "{toy}", "--storage", "{runs}", "--set", "name=warm", "--warm-start", "{unfinished_runs}/toy",
          "--set", "search.metric=val_loss", "--set", "search.mode=max"), 2,
         ("that run searched val_accuracy (max), this space searches val_loss (max)",)),
    # 29: a refused resume names the key paths that changed, and only those that count
    Case("resume-changed-space", ("run", "{toy}", "--storage", "{runs}", "--resume", "--set", "train.epochs=2",
                                  "--set", "search.trials=3"), 2,
         ("the search space changed since {runs}/toy was started (train.epochs: 1 -> 2)", "--restart",
          "with --warm-start {runs}/toy to start it from that run's finished trials"),
         absent=("search.trials",)),
    # the same name run again after an edit: --resume would refuse the edited space; the ways on that keep its trials
    Case("run-again-changed-space", ("run", "{toy}", "--storage", "{runs}", "--set", "train.epochs=2"), 2,
         ("a run named 'toy' already exists at {runs}/toy, of another search space (train.epochs: 1 -> 2), which "
          "--resume cannot continue", "(--set name=... --warm-start {runs}/toy)",
          "(--restart --warm-start {runs}/toy)"),
         absent=("pass --resume",)),
    Case("resume-changed-distribution", ("run", "{toy}", "--storage", "{runs}", "--resume", "--set",
                                         "model.y={{uniform: [0.0, 0.5]}}"), 2,
         ("(model.y.uniform: [0.0, 1.0] -> [0.0, 0.5])",)),
    Case("resume-changed-space-of-an-old-run", ("run", "{toy}", "--storage", "{old_runs}", "--resume", "--set",
                                                "train.epochs=2"), 2,
         ("the search space changed since {old_runs}/toy was started; a resumed search",)),
    # a run copied elsewhere, then resumed there: it would write into the original
    Case("resume-a-copied-run", ("run", "{toy}", "--storage", "{unfinished_runs}", "--resume"), 2,
         ("the run at {unfinished_runs}/toy was started at {runs}/toy and moved or copied here",
          "--warm-start {unfinished_runs}/toy")),
]


@pytest.mark.parametrize("case", RUN_CASES, ids=lambda case: case.id)
def test_bad_input_about_a_run_is_one_line(case, searched, cli, in_tmp):
    _check(case, searched, cli)
