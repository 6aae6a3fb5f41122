"""The smallest recipe, docs/recipes.md's example: only SCHEMA (a budget key and a metric of its own) and train().
It runs through `check`, `train` and `run`; what it lacks (data, evaluate, export; predict, serve, load_model for a
model whose card names it) is done without or answered in one line."""
from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import autotune
import autotune.cli
from autotune.api import SearchFailed
from autotune.errors import UserError

DOC = (Path(__file__).parents[2] / "docs" / "recipes.md").read_text()
MINIMAL = re.search(r"^```python\n(.*?)^```", DOC, flags=re.S | re.M).group(1)  # the doc's example recipe
SPACE = re.search(r"^```yaml\n(.*?)^```", DOC, flags=re.S | re.M).group(1)  # and its space


def _files(tmp_path: Path, space: str = SPACE) -> Path:
    (tmp_path / "minimal.py").write_text(MINIMAL)
    (tmp_path / "space.yaml").write_text(space)
    return tmp_path / "space.yaml"


def test_check_knows_its_metric_and_budget(tmp_path, capsys):
    space = _files(tmp_path)
    assert autotune.cli.main(["check", str(space)]) == 0
    assert "search: val_mse (min)" in capsys.readouterr().out
    wrong_metric = SPACE.replace("seed: 0,", "metric: val_loss, seed: 0,")
    assert wrong_metric != SPACE  # the doc's space still holds the `seed: 0,` this edits
    bad = _files(tmp_path, wrong_metric)
    assert autotune.cli.main(["check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "space.yaml:4: search.metric: not a metric the recipe reports (got 'val_loss')" in err
    assert err.rstrip().endswith("it reports val_mse")


def test_train_prints_its_reports_and_says_it_has_no_evaluate(tmp_path, capsys):
    space = _files(tmp_path)
    assert autotune.cli.main(["train", str(space)]) == 0
    out = capsys.readouterr().out
    assert "epoch   8: val_mse " in out and "test: none (the recipe defines no evaluate())" in out
    assert autotune.cli.main(["train", str(space), "--out", str(tmp_path / "m")]) == 2
    assert "recipe 'minimal.py' defines no export(): --out has no model to write" in capsys.readouterr().err


def test_run_searches_with_early_stopping_in_its_own_budget_and_exports_nothing(tmp_path, local_ray, monkeypatch):
    """The space given as YAML text: its relative `recipe: minimal.py` is the working directory's, in every trial
    too (whose own working directory is its trial folder: each trial failed on a recipe file it could not find)."""
    monkeypatch.chdir(tmp_path)
    space = _files(tmp_path)
    result = autotune.fit(space.read_text(), num_cpus=2)
    assert len(result.trials) == 4 and result.best_metrics["val_mse"] < 1.0
    assert result.model_dir is None and not (tmp_path / "models").exists()
    assert set(result.trials["epochs"]) <= {2, 4, 8} and result.trials["epochs"].max() == 8
    summary = json.loads((result.run_dir / "summary.json").read_text())
    assert summary["best_trial_id"] == result.best_trial_id
    assert autotune.cli.main(["report", str(result.run_dir), "--out", str(tmp_path / "report")]) == 0
    page = (tmp_path / "report" / "report.html").read_text()
    assert "val_mse" in page and "the run exported no model" in page  # its trials charted; no model, in one line


def test_a_file_a_trial_writes_into_its_working_directory_is_named_in_a_warning(tmp_path, local_ray, monkeypatch,
                                                                                 caplog):
    """A recipe's own file written to a relative path (a plot, a log) went with Ray's temp folder, without a word:
    the run folder does not keep a trial's working directory."""
    monkeypatch.chdir(tmp_path)
    recipe = MINIMAL.replace("    a = 0.0\n", "    a = 0.0\n    Path('curve.txt').write_text('a plot')\n")
    assert recipe != MINIMAL
    (tmp_path / "minimal.py").write_text("from pathlib import Path\n" + recipe)
    space = SPACE.replace("trials: 4", "trials: 2")
    with caplog.at_level(logging.WARNING, logger="autotune"):
        result = autotune.fit(space, num_cpus=2)
    [warning] = [m for m in caplog.messages if "working directories" in m]
    assert warning.startswith("trials wrote 2 files (12 B) into their working directories, which the run folder does "
                              "not keep (a local Ray deletes them when the search ends): trial_"), warning
    assert all(f"trial_{trial_id}/curve.txt" in warning for trial_id in result.trials["trial_id"]), warning
    assert warning.endswith("; to keep a file, write it into the checkpoint folder that report() saves, or to an "
                            "absolute path")


def _model_of_minimal(tmp_path: Path) -> Path:
    """A model directory whose card names the minimal recipe (which exports nothing, and has no predict(), serve()
    or load_model())."""
    (tmp_path / "minimal.py").write_text(MINIMAL)
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.pt").write_bytes(b"")
    (model / "model.json").write_text(json.dumps({"name": "line", "recipe": "minimal.py", "base_dir": str(tmp_path)}))
    return model


def test_predict_and_load_model_say_the_recipe_has_none(tmp_path, capsys):
    model = _model_of_minimal(tmp_path)
    (tmp_path / "points.csv").write_text("x\n0.5\n")
    assert autotune.cli.main(["predict", str(model), str(tmp_path / "points.csv")]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == (f"autotune predict: error: recipe 'minimal.py' defines no predict(): autotune predict "
                                 f"cannot read inputs for the model in {model}\n")
    with pytest.raises(UserError, match=r"recipe 'minimal.py' defines no load_model\(\)"):
        autotune.load_model(model)


def test_serve_says_the_recipe_has_none_before_listening(tmp_path, capsys):
    pytest.importorskip("fastapi")
    model = _model_of_minimal(tmp_path)
    assert autotune.cli.main(["serve", str(model), "--port", "1"]) == 2
    out, err = capsys.readouterr()
    assert "serving" not in out and err == (f"autotune serve: error: recipe 'minimal.py' defines no serve(): "
                                            f"autotune serve cannot answer for the model in {model}\n")


def test_its_trials_run_without_torch_until_the_recipe_imports_it(tmp_path):
    """A recipe that does not use torch has trial workers that never import it (1-2 s and some 300 MiB each):
    each worker's first trial finds no torch. A recipe that imports torch in train() gets the trial's CPU share
    (here 1) as torch's threads, though the environment says 2 (Ray would otherwise set 1 itself, where the
    environment says nothing): the search runs in its own process, whose Ray the environment reaches."""
    seen = tmp_path / "seen.jsonl"
    probe = MINIMAL + textwrap.dedent(f"""

        import json, os, sys
        _fit_line = train

        def train(config, report, *, data=None, checkpoint=None):
            found = {{"pid": os.getpid(), "torch": "torch" in sys.modules}}
            import torch
            with open({str(seen)!r}, "a") as log:
                log.write(json.dumps({{**found, "threads": torch.get_num_threads()}}) + "\\n")
            _fit_line(config, report, data=data, checkpoint=checkpoint)
        """)
    space = _files(tmp_path)
    (tmp_path / "minimal.py").write_text(probe)
    search = f"import autotune; autotune.fit({str(space)!r}, num_cpus=2)"
    done = subprocess.run([sys.executable, "-c", search], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "2"})
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [json.loads(line) for line in seen.read_text().splitlines()]
    firsts = {}
    for row in rows:
        firsts.setdefault(row["pid"], row)
    assert len(rows) == 4 and all(not row["torch"] for row in firsts.values()), rows
    assert {row["threads"] for row in rows} == {1}, rows


REPORT = 'report({"val_mse": sum((a * x - y) ** 2 for x, y in points) / len(points)}, None)'


def test_a_report_without_the_searched_metric_is_one_line(tmp_path, capsys, local_ray, monkeypatch):
    """`check` cannot see what a report holds; the first report that lacks the searched metric ends `train` in one
    line (exit 2), and fails its trial with that line, which stops the search (every trial would fail so): it
    was Ray's traceback."""
    monkeypatch.chdir(tmp_path)
    space = _files(tmp_path)
    assert REPORT in MINIMAL  # the doc's recipe still reports so
    (tmp_path / "minimal.py").write_text(MINIMAL.replace(REPORT, REPORT.replace('"val_mse"', '"val_mes"')))
    assert autotune.cli.main(["train", str(space)]) == 2
    err = capsys.readouterr().err
    assert err == ("autotune train: error: the recipe reported val_mes but not 'val_mse', the searched metric "
                   "(search.metric): report it every epoch, or search a metric the recipe reports\n")
    with pytest.raises(SearchFailed, match=r"trials failed.*; the (first )?error: the recipe reported val_mes but"):
        autotune.fit(str(space), export=False)
    assert 1 <= len(list(Path("runs/line").glob("trial_*"))) <= 2  # of 4: the search stopped at the first failure


@pytest.mark.parametrize("report, message", [
    ('report({"val_mse": "low"}, None)', "the recipe reported 'val_mse', the searched metric (search.metric), as "
                                         "'low' (str), not a number"),
    ("pass", "the recipe's train() returned without calling report(metrics, checkpoint)"),
], ids=["text", "none"])
def test_a_broken_report_is_one_line_and_stops_the_search(report, message, tmp_path, capsys, local_ray, monkeypatch):
    """A searched metric that is not a number, or no report at all: one line from `train` (exit 2), and the search
    stops at its first trial (it was Ray's traceback from the scheduler, or from its strict metric check)."""
    monkeypatch.chdir(tmp_path)
    space = _files(tmp_path)
    (tmp_path / "minimal.py").write_text(MINIMAL.replace(REPORT, report))
    assert autotune.cli.main(["train", str(space)]) == 2
    assert capsys.readouterr().err.startswith(f"autotune train: error: {message}")
    with pytest.raises(SearchFailed, match=re.escape(f"the search stopped at the first broken report (every trial "
                                                     f"would fail so); the error: {message}")):
        autotune.fit(str(space), export=False)


def test_reports_that_are_all_nan_say_so(tmp_path, local_ray, monkeypatch, recwarn):
    monkeypatch.chdir(tmp_path)
    space = _files(tmp_path)
    (tmp_path / "minimal.py").write_text(MINIMAL.replace(REPORT, 'report({"val_mse": float("nan")}, None)'))
    with pytest.raises(SearchFailed, match=r"^no report held a finite value of 'val_mse' \(4 trials, \d+ epochs "
                                           r"reported, each NaN or infinite\): check how the recipe computes it"):
        autotune.fit(str(space), export=False)
    assert not [w for w in recwarn if "All-NaN" in str(w.message)]  # the scheduler's cutoff skips NaN itself


def test_a_metric_reported_as_a_one_value_tensor_is_its_number(tmp_path, capsys, local_ray, monkeypatch):
    """A recipe may report `torch.tensor(x)` (a loss it did not `.item()`): the engine keeps the number; a tensor of
    several values is one line."""
    monkeypatch.chdir(tmp_path)
    space = _files(tmp_path)
    tensor = REPORT.replace("report({", "import torch; report({").replace(
        "/ len(points)}", "/ len(points) * torch.ones(SHAPE)}")
    (tmp_path / "minimal.py").write_text(MINIMAL.replace(REPORT, tensor.replace("SHAPE", "()")))
    assert autotune.cli.main(["train", str(space)]) == 0
    assert re.search(r"^epoch   8: val_mse \d\.\d{4}$", capsys.readouterr().out, flags=re.M)
    result = autotune.fit(str(space), export=False)
    assert len(result.trials) == 4 and (result.trials["status"] == "TERMINATED").all()
    assert result.trials["val_mse"].map(type).eq(float).all()
    (tmp_path / "minimal.py").write_text(MINIMAL.replace(REPORT, tensor.replace("SHAPE", "2")))
    assert autotune.cli.main(["train", str(space)]) == 2
    assert "the reported metric 'val_mse' holds several values (Tensor); report one number" in capsys.readouterr().err


def test_an_exception_in_the_recipe_is_one_line_naming_its_function_file_and_line(tmp_path, capsys, monkeypatch):
    """The recipe's own code raising (not autotune's errors, which say what they mean): `train` says which function
    of which file failed, at which line, in one line; `-v` shows the traceback."""
    monkeypatch.chdir(tmp_path)
    space = _files(tmp_path)
    (tmp_path / "minimal.py").write_text(MINIMAL.replace(REPORT, "raise RuntimeError('boom')"))
    line = next(n for n, text in enumerate(MINIMAL.splitlines(), 1) if REPORT in text)
    assert autotune.cli.main(["train", str(space)]) == 2
    assert capsys.readouterr().err == (f"autotune train: error: recipe function 'train' (minimal.py, line {line}) "
                                       "failed: RuntimeError: boom\n")
    assert autotune.cli.main(["-v", "train", str(space)]) == 2
    assert "Traceback" in capsys.readouterr().err


@pytest.mark.parametrize("raised, said", [
    ("Unprintable()", "Unprintable: <its str() raised RuntimeError>"),
    ("ValueError('x' * 1_000_000)", "ValueError: " + "x" * 500 + "... (999500 more characters)"),
    ("ValueError('bad rows:\\n  3\\n  7')", "ValueError: bad rows: 3 7"),
])
def test_an_exception_that_prints_badly_is_still_one_line(tmp_path, capsys, monkeypatch, raised, said):
    """An exception whose str() raises ended `train` in autotune's own traceback of that second error, and a message
    of a megabyte was printed whole, as one line."""
    monkeypatch.chdir(tmp_path)
    space = _files(tmp_path)
    unprintable = "\n\nclass Unprintable(Exception):\n    def __str__(self):\n        raise RuntimeError('no text')\n"
    (tmp_path / "minimal.py").write_text(MINIMAL.replace(REPORT, f"raise {raised}") + unprintable)
    line = next(n for n, text in enumerate(MINIMAL.splitlines(), 1) if REPORT in text)
    assert autotune.cli.main(["train", str(space)]) == 2
    assert capsys.readouterr().err == f"autotune train: error: recipe function 'train' (minimal.py, line {line}) " \
                                      f"failed: {said}\n"


def test_a_crash_in_native_code_shows_the_recipe_s_line(tmp_path):
    """A recipe that crashed in native code (a segfault in an extension) ended `autotune train` with status 139 and
    no word of where."""
    space = _files(tmp_path)
    (tmp_path / "minimal.py").write_text(MINIMAL.replace(REPORT, "import ctypes; ctypes.string_at(0)"))
    line = next(n for n, text in enumerate(MINIMAL.splitlines(), 1) if REPORT in text)
    code = "import sys; from autotune.cli import main; sys.exit(main(sys.argv[1:]))"
    done = subprocess.run([sys.executable, "-c", code, "train", str(space)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == -11, done.stderr
    assert "Fatal Python error: Segmentation fault" in done.stderr
    assert f'minimal.py", line {line} in train' in done.stderr, done.stderr


def test_an_evaluate_that_fails_on_the_exported_model_is_one_line(in_tmp, local_ray):
    """`evaluate` is given the exported model's folder too (the engine measures the model it ships): one that reads
    only a checkpoint's files fails there, in one line naming it, and the run can be resumed to export again."""
    from engine_helpers import TOY, toy_space

    broken = Path(TOY).read_text() + textwrap.dedent("""

        def evaluate(model_dir, data):
            return json.loads((Path(model_dir) / "state.json").read_text())  # the checkpoint's file, not the model's
        """)
    Path("broken_toy.py").write_text(broken)
    space = toy_space(trials=2).replace(f"recipe: {TOY}", f"recipe: {in_tmp / 'broken_toy.py'}")
    with pytest.raises(UserError, match=r"^recipe function 'evaluate' \(broken_toy.py, line \d+\) failed: "
                                        r"FileNotFoundError: .*state.json"):
        autotune.fit(space)
    Path("broken_toy.py").write_text(Path(TOY).read_text())
    result = autotune.fit(space, resume=True)
    assert result.promotion["promoted"] and Path("models/toy/model.json").is_file()
