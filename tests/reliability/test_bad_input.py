"""Bad input, end to end through the `autotune` command: every case exits 2 with one error line that says what is
wrong, shows no traceback, and (for `autotune run`) fails before Ray starts.

The table runs each case through the sub-commands it applies to (`run`, `train`, `check`) in this process."""
from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from reliability_helpers import ray_started, unreadable_file, without_ray, write_idx

SPACE = """\
name: bad
recipe: image_classification
custom: CUSTOM
data: {dataset: fake, samples: 40, image_size: 8, classes: 3}
model: {arch: mlp, width: 16, depth: 1}
optimizer: {lr: {loguniform: [1e-3, 1e-1]}}
train: {epochs: 1, batch_size: 16}
search: {trials: 2, scheduler: fifo}
export: {dir: TMP/models/bad}
"""

CUSTOM = '''\
"""Custom components for the bad-input tests."""
import autotune
from torch import nn


@autotune.register("dataset")
def my_data(root: str, size: int = 8):
    raise ValueError(f"no labels.csv in {root}")


@autotune.register("dataset")
def dict_data(root: str):
    return {"x": [], "y": []}


@autotune.register("model")
def wide_kernel_net(in_chans: int, num_classes: int, input_size: int, dropout: float = 0.0):
    return nn.Sequential(nn.Conv2d(in_chans, 4, 7), nn.Conv2d(4, 4, 7), nn.Flatten(), nn.LazyLinear(num_classes))


@autotune.register("model")
def broken_net(in_chans: int, num_classes: int, input_size: int, dropout: float = 0.0):
    raise RuntimeError("this network needs the cuda extension")
'''


def line_of(text: str) -> int:
    """The line of CUSTOM that holds `text`."""
    return next(i for i, line in enumerate(CUSTOM.splitlines(), start=1) if text in line)


def make_files(tmp: Path) -> None:
    """Every file and folder the cases point at, in `tmp` (small: a few KB)."""
    from PIL import Image

    (tmp / "my_functions.py").write_text(CUSTOM)
    (tmp / "broken_functions.py").write_text("import autotune\nsize = 8 / 0\n")
    (tmp / "empty").mkdir()
    (tmp / "a_file.txt").write_text("not a folder")
    (tmp / "space_dir").mkdir()
    (tmp / "space_dir" / "study.db").write_bytes(b"not an Optuna study" * 64)
    (tmp / "binary.yaml").write_bytes(b"name: \xff\xfe\x00bad\n")
    (tmp / "empty.yaml").write_text("")
    unreadable_file(tmp / "unreadable.yaml")
    pixels = np.full((6, 6, 3), 200, dtype=np.uint8)
    for root, classes in (("one_class", {"cat": 3}), ("corrupt", {"cat": 3, "dog": 0}),
                          ("splits/train", {"cat": 2, "dog": 2}), ("splits/val", {"cat": 1, "dog": 1})):
        for name, count in classes.items():
            (tmp / root / name).mkdir(parents=True)
            for i in range(count):
                Image.fromarray(pixels).save(tmp / root / name / f"{i}.png")
    (tmp / "corrupt" / "dog" / "0.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    (tmp / "corrupt" / "dog" / "1.jpg").write_bytes(b"")
    x = np.zeros((10, 8, 8), dtype=np.uint8)
    y = np.arange(10, dtype=np.uint8) % 2
    for folder in ("idx_truncated", "idx_garbage", "idx_unreadable"):
        (tmp / folder).mkdir()
        write_idx(tmp / folder / "a-labels-idx1-ubyte", y)
    write_idx(tmp / "idx_truncated" / "a-images-idx3-ubyte", x)
    data = (tmp / "idx_truncated" / "a-images-idx3-ubyte").read_bytes()
    (tmp / "idx_truncated" / "a-images-idx3-ubyte").write_bytes(data[:-50])
    (tmp / "idx_garbage" / "a-images-idx3-ubyte").write_bytes(b"GIF89a not idx at all")
    unreadable_file(tmp / "idx_unreadable" / "a-images-idx3-ubyte")


def write_space(tmp: Path, sections: tuple[tuple[str, str], ...] = ()) -> Path:
    """SPACE with the lines of `sections` (top-level key, new line) replaced, as TMP/space.yaml."""
    text = SPACE
    for key, line in sections:
        text = "\n".join(line if row.startswith(f"{key}:") else row for row in text.splitlines()) + "\n"
    path = tmp / "space.yaml"
    path.write_text(text.replace("CUSTOM", str(tmp / "my_functions.py")).replace("TMP", str(tmp)))
    return path


@dataclass(frozen=True)
class Case:
    id: str
    words: str  # what the error line must say
    sections: tuple[tuple[str, str], ...] = ()  # top-level key -> its new line in SPACE
    argv: tuple[str, ...] = ()  # after SPACE
    commands: tuple[str, ...] = ("run", "train")
    space: str = "SPACE"  # the SPACE argument (a path in TMP instead of the written space)
    usage: bool = False  # an argparse error: the command line itself is wrong
    env: tuple[tuple[str, str], ...] = ()  # environment variables set for the command


def data(text: str) -> tuple[tuple[str, str], ...]:
    return (("data", f"data: {text}"),)


def model(text: str) -> tuple[tuple[str, str], ...]:
    return (("model", f"model: {text}"),)


CASES = [
    # ---- the command line
    Case("no-space", "the following arguments are required: SPACE", space="", usage=True),
    Case("resume-and-restart", "not allowed with argument", argv=("--resume", "--restart"), commands=("run",),
         usage=True),
    Case("num-cpus-text", "--num-cpus", argv=("--num-cpus", "many"), commands=("run",), usage=True),
    Case("num-cpus-zero", "--num-cpus: must be >= 1, got 0", argv=("--num-cpus", "0"), commands=("run",),
         usage=True),
    Case("num-cpus-negative", "--num-cpus: must be >= 1, got -2", argv=("--num-cpus=-2",), commands=("run",),
         usage=True),
    Case("num-gpus-text", "--num-gpus", argv=("--num-gpus", "one"), commands=("run",), usage=True),
    Case("num-gpus-negative", "--num-gpus: must be a finite number >= 0", argv=("--num-gpus=-1",),
         commands=("run",), usage=True),
    Case("set-without-value", "expected one argument", argv=("--set",), usage=True),
    Case("unknown-flag", "unrecognized arguments: --trials", argv=("--trials", "3"), usage=True),
    Case("trial-larger-than-the-local-ray", "search.resources.cpu is 4.0 but the largest node of the local Ray has 2 "
         "CPU(s): a trial runs on one node; lower search.resources.cpu or raise --num-cpus",
         (("search", "search: {trials: 2, scheduler: fifo, resources: {cpu: 4}}"),), argv=("--num-cpus", "2"),
         commands=("run",)),
    Case("unreachable-address", "cannot reach the Ray cluster at '127.0.0.1:1': nothing listens on",
         argv=("--address", "127.0.0.1:1"), commands=("run",)),
    Case("address-without-port", "is not 'auto', HOST:PORT or ray://HOST:PORT", argv=("--address", "headnode"),
         commands=("run",)),
    Case("unreachable-RAY_ADDRESS", "cannot reach the Ray cluster at '127.0.0.1:1': nothing listens on 127.0.0.1:1; "
         "start it with `ray start --head` (see docs/cluster.md) or unset RAY_ADDRESS to run locally",
         env=(("RAY_ADDRESS", "127.0.0.1:1"),), commands=("run",)),
    Case("RAY_ADDRESS-without-port", "RAY_ADDRESS 'headnode' is not 'auto', HOST:PORT or ray://HOST:PORT",
         env=(("RAY_ADDRESS", "headnode"),), commands=("run",)),
    Case("storage-unknown-scheme", "cannot open the storage 'nosuch://bucket/runs': Unrecognized filesystem type in "
         "URI", argv=("--storage", "nosuch://bucket/runs"), commands=("run",)),
    Case("storage-unreachable", "cannot open the storage 's3://bucket/runs': ", commands=("run",),
         argv=("--storage", "s3://bucket/runs"), env=(("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:1"),
                                                      ("AWS_DEFAULT_REGION", "us-east-1"), ("AWS_EC2_METADATA_DISABLED", "true"))),
    # ---- the SPACE file
    Case("space-missing", "does not exist", space="TMP/nothere.yaml", commands=("run", "train", "check")),
    Case("space-directory", "is a directory", space="TMP/space_dir", commands=("run", "train", "check")),
    Case("space-unreadable", "cannot read the search space file", space="TMP/unreadable.yaml",
         commands=("run", "train", "check")),
    Case("space-binary", "is not UTF-8 text", space="TMP/binary.yaml", commands=("run", "train", "check")),
    Case("space-empty", "the search space is empty", space="TMP/empty.yaml", commands=("run", "train", "check")),
    Case("set-no-equals", "an override is KEY=VALUE", argv=("--set", "foo"), commands=("run", "train", "check")),
    Case("set-no-key", "an override is KEY=VALUE", argv=("--set", "=3"), commands=("run", "train", "check")),
    Case("set-parameter-name", "optimizer[sgd].lr: a parameter's name (as `autotune check` prints it), not a key "
         "path (got 'optimizer[sgd].lr=0.1'); keep the option with --set optimizer.name=sgd and set --set "
         "optimizer.lr=0.1", argv=("--set", "optimizer[sgd].lr=0.1"), commands=("run", "train", "check"),
         sections=(("optimizer", "optimizer: {choice: [{name: sgd, lr: 0.01}, {name: adamw, lr: 0.001}]}"),)),
    Case("set-bad-value", "train.epochs: must be >= 1", argv=("--set", "train.epochs=0")),
    Case("set-unknown-section", "unknown top-level key", argv=("--set", "trian.epochs=2")),
    Case("yaml-syntax", "YAML syntax error", sections=(("train", "train: {epochs: 1"),)),
    Case("yaml-recursive-alias", "refers to a value that contains it",
         sections=(("train", "train: &t {epochs: 1, again: [*t]}"),)),
    Case("nan-bound", "loguniform low must be a finite number",
         sections=(("optimizer", "optimizer: {lr: {loguniform: [.nan, 1e-1]}}"),)),
    Case("unknown-dataset", "unknown dataset 'fakee'", data("{dataset: fakee}")),
    Case("unknown-model", "unknown model 'mlpp'", model("{arch: mlpp}")),
    Case("custom-fails-to-import", "custom file broken_functions.py failed to import: ZeroDivisionError",
         (("custom", "custom: broken_functions.py"),)),
    Case("recipe-file-missing", "recipe file", (("recipe", "recipe: my_recipe.py"),)),
    Case("default-outside-range", "model.width.default: must be within the distribution's range [8, 32] (got 64)",
         model("{arch: mlp, width: {int: [8, 32], default: 64}, depth: 1}")),
    Case("start-unknown-parameter", "search.start[0].optimizer.rl: is not a searched parameter; did you mean "
         "'optimizer.lr'?", (("search", "search: {trials: 2, scheduler: fifo, start: [{optimizer.rl: 0.01}]}"),),
         commands=("run",)),  # train runs the defaults: a warning there (test_train.py)
    # ---- a warm start
    Case("warm-start-missing", "--warm-start TMP/nothere: there is no such run folder",
         argv=("--warm-start", "nothere"), commands=("run",)),
    Case("warm-start-no-study", "--warm-start TMP/empty: the folder holds no study.db",
         argv=("--warm-start", "empty"), commands=("run",)),
    Case("warm-start-unreadable-study", "cannot read the Optuna study in TMP/space_dir/study.db",
         argv=("--warm-start", "space_dir"), commands=("run",)),
    Case("warm-start-and-resume", "already holds its history; drop --warm-start to resume it",
         argv=("--warm-start", "empty", "--resume"), commands=("run",)),
    # ---- the data
    Case("idx-root-missing", "idx data.root 'TMP/nothere' is not a directory (it does not exist)",
         data("{dataset: idx, root: TMP/nothere}")),
    Case("idx-no-files", "no IDX image/label files in TMP/empty", data("{dataset: idx, root: TMP/empty}")),
    Case("idx-truncated", "a-images-idx3-ubyte is damaged", data("{dataset: idx, root: TMP/idx_truncated}")),
    Case("idx-garbage", "a-images-idx3-ubyte is not an IDX file", data("{dataset: idx, root: TMP/idx_garbage}")),
    Case("idx-unreadable", "cannot read TMP/idx_unreadable/a-images-idx3-ubyte",
         data("{dataset: idx, root: TMP/idx_unreadable}")),
    Case("folder-root-missing", "image_folder data.root 'TMP/nothere' is not a directory",
         data("{dataset: image_folder, root: TMP/nothere}")),
    Case("folder-root-is-a-file", "is not a directory (it is a file)",
         data("{dataset: image_folder, root: TMP/a_file.txt}")),
    Case("folder-empty", "holds 0 class sub-folders", data("{dataset: image_folder, root: TMP/empty}")),
    Case("folder-one-class", "holds 1 class sub-folder: cat", data("{dataset: image_folder, root: TMP/one_class}")),
    Case("split-folders", "holds train, val: split folders, not one folder per class; point data.root at "
         "'TMP/splits/train'", data("{dataset: image_folder, root: TMP/splits}")),
    Case("folder-corrupt-class", "class folder 'dog' in 'TMP/corrupt' holds no readable image",
         data("{dataset: image_folder, root: TMP/corrupt}")),
    Case("mnist-missing", "MNIST files missing in TMP/empty/MNIST/raw",
         data("{dataset: mnist, root: TMP/empty, download: false}")),
    Case("fashion-mnist-missing", "FashionMNIST files missing",
         data("{dataset: fashion_mnist, root: TMP/empty, download: false}")),
    Case("cifar10-missing", "CIFAR-10 files missing in TMP/empty/cifar-10-batches-py",
         data("{dataset: cifar10, root: TMP/empty, download: false}")),
    Case("too-few-for-val", "data.val_fraction=0.1 leaves no validation samples",
         data("{dataset: fake, samples: 3, image_size: 8}")),
    Case("no-train-left", "leaves no training samples",  # held-out shares under 1, rounded up to every sample
         data("{dataset: fake, samples: 2, image_size: 8, val_fraction: 0.45, test_fraction: 0.45}")),
    Case("no-test-left", "data.test_fraction=0.0 leaves no test samples",
         data("{dataset: fake, samples: 40, image_size: 8, test_fraction: 0.0}")),
    Case("class-missing-from-train", "the train split holds no sample of class 'class_3' (6 train / 3 val / 3 test",
         data("{dataset: fake, samples: 12, image_size: 8, classes: 4, val_fraction: 0.2, test_fraction: 0.2}")),
    Case("dataset-raises", f"dataset 'my_data' (my_functions.py, line {line_of('no labels.csv')}) failed: "
         "ValueError: no labels.csv in", data("{dataset: my_data, root: TMP}")),
    Case("dataset-returns-a-dict", "dataset 'dict_data' returned a dict", data("{dataset: dict_data}")),
    Case("dataset-unknown-argument", "dataset 'fake' takes no argument 'colour'; its arguments: samples",
         data("{dataset: fake, colour: true}")),
    Case("dataset-custom-argument", "dataset 'my_data' takes no argument 'sise'; did you mean 'size'?",
         data("{dataset: my_data, sise: 3}")),
    # ---- the model and the export: the dry build before launch
    Case("model-unknown-argument", "model 'mlp' takes no argument 'kernel'; its arguments: width, depth, dropout",
         model("{arch: mlp, kernel: 5}")),
    Case("model-does-not-fit", "model 'wide_kernel_net' does not fit 8x8 inputs: RuntimeError:",
         model("{arch: wide_kernel_net}")),
    Case("model-option-does-not-fit", "the searched option model.arch='wide_kernel_net': model 'wide_kernel_net' "
         "does not fit 8x8 inputs", model("{arch: {choice: [mlp, wide_kernel_net]}}"), commands=("run",)),
    Case("model-factory-raises", f"model 'broken_net' (my_functions.py, line {line_of('cuda extension')}) failed: "
         "RuntimeError: this network", model("{arch: broken_net}")),
    Case("export-dir-not-writable", "export.dir 'TMP/a_file.txt/models/bad' is not writable (Not a directory",
         (("export", "export: {dir: TMP/a_file.txt/models/bad}"),), commands=("run",)),
    Case("export-dir-is-a-file", "export.dir 'TMP/a_file.txt' is a file",
         (("export", "export: {dir: TMP/a_file.txt}"),), commands=("run",)),
]
pytestmark = pytest.mark.usefixtures("registry_restored")  # my_functions.py registers names
PARAMS = [pytest.param(case, command, id=f"{case.id}-{command}") for case in CASES for command in case.commands]


def test_the_table_is_large_enough():
    assert len(CASES) >= 40 and len(PARAMS) >= 80
    assert len({case.id for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case, command", PARAMS)
def test_bad_input_exits_2_with_one_line(case, command, cli, in_tmp, monkeypatch):
    without_ray()
    tmp = in_tmp
    for name, value in case.env:
        monkeypatch.setenv(name, value)
    make_files(tmp)
    space = case.space.replace("SPACE", str(write_space(tmp, case.sections))).replace("TMP", str(tmp))
    argv = [command, *([space] if space else []), *case.argv]
    if command == "run":
        argv += ([] if "--storage" in case.argv else ["--storage", str(tmp / "runs")]) + (
            [] if "--num-cpus" in " ".join(case.argv) else ["--num-cpus", "1"])

    code, out, err = cli(*argv)

    started = ray_started()
    if started:  # a bug: leave no Ray behind for the next test
        import ray

        ray.shutdown()
    errors = [line for line in err.splitlines() if ": error: " in line]
    assert code == 2, (out, err)
    assert "Traceback" not in out + err
    assert len(errors) == 1, err
    words = case.words.replace("TMP", str(tmp))
    where = err if errors[0].endswith(" in the search space:") else errors[0]  # SpaceError: a line per problem
    assert words in where, err
    assert errors[0].startswith(f"autotune {command}: error: " if not case.usage else "autotune")
    assert not started, "Ray started before the input was checked"


@pytest.mark.parametrize("where", ["before the sub-command", "after it", "as --verbose after SPACE"])
@pytest.mark.parametrize("command", ["train", "run"])
def test_verbose_shows_the_traceback(cli, in_tmp, command, where):
    make_files(in_tmp)
    space = write_space(in_tmp, data("{dataset: idx, root: TMP}"))
    argv = {"before the sub-command": ["-v", command, space], "after it": [command, "-v", space],
            "as --verbose after SPACE": [command, space, "--verbose"]}[where]
    code, _, err = cli(*argv)
    assert code == 2 and "Traceback" in err and "no IDX image/label files" in err


@pytest.mark.parametrize("argv, count", [(["run", "x"], 0), (["run", "x", "-v"], 1), (["-v", "run", "x", "-vv"], 3)])
def test_verbose_counts_before_and_after_the_sub_command(cli, monkeypatch, argv, count):
    import autotune.cli.run

    seen = []
    monkeypatch.setattr(autotune.cli.run, "run", lambda args: seen.append(args.verbose) or 0)
    assert cli(*argv)[0] == 0
    assert seen == [count]


def test_a_corrupt_image_is_skipped_with_a_warning_and_training_goes_on(cli, in_tmp, log_records):
    from PIL import Image


    make_files(in_tmp)
    for label, value in (("cat", 0), ("dog", 255)):
        (in_tmp / "folder" / label).mkdir(parents=True)
        for i in range(8):
            Image.fromarray(np.full((6, 6, 3), value, dtype=np.uint8)).save(in_tmp / "folder" / label / f"{i}.png")
    (in_tmp / "folder" / "dog" / "8.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    (in_tmp / "folder" / ".ipynb_checkpoints").mkdir()  # hidden: not a class
    space = write_space(in_tmp, data("{dataset: image_folder, root: TMP/folder, image_size: 8, val_fraction: 0.2, "
                                     "test_fraction: 0.2}"))
    code, out, err = cli("train", space)
    assert code == 0, err
    [warning] = [r for r in log_records.records if "skipped" in r.getMessage()]  # not a class missing from a split
    assert warning.levelname == "WARNING" and warning.name == "autotune"
    assert "image_folder: skipped 1 of 17 image files" in warning.getMessage()
    assert "dog/8.png (OSError)" in warning.getMessage()
    assert "2 classes" in out and "test: test_accuracy" in out


def test_in_a_real_process_the_error_is_one_line(tmp_path):
    make_files(tmp_path)
    space = write_space(tmp_path, data("{dataset: my_data, root: TMP}"))
    code = "import sys; from autotune.cli import main; sys.exit(main(sys.argv[1:]))"
    result = subprocess.run([sys.executable, "-c", code, "train", str(space)], capture_output=True,
                            text=True, timeout=120, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"autotune train: error: dataset 'my_data' (my_functions.py, line 8) failed: ValueError: no labels.csv in "
        f"{tmp_path}"]
