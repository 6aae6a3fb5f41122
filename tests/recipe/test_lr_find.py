"""`autotune lr-find`: the range test's own logic on losses of known shape, and the command on digits, whose
suggestion must train well."""
from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import yaml

from autotune.cli import main
from autotune.cli.lr_find import notes
from autotune.errors import UserError
from autotune.vision.lr_find import range_test

REPO = Path(__file__).parents[2]
GOOD_LR = 0.05  # SGD on digits with the shipped space's model: > 0.9 val accuracy in 2 epochs (test_train.py)


def test_the_suggestion_is_a_decade_below_the_least_loss():
    sweep = range_test(lambda lr: (math.log10(lr) + 2) ** 2 + 1, start=1e-5, end=1.0, steps=100)
    assert 1e-2 <= sweep.best_lr <= 10**-1.4  # the least loss is at 1e-2; the moving average trails it a little
    assert sweep.suggestion == pytest.approx(sweep.best_lr / 10)
    low, high = sweep.search_range
    assert low < sweep.suggestion < high == sweep.best_lr
    assert not sweep.still_falling


def test_a_loss_still_falling_at_the_sweep_s_end_says_so():
    """The least loss at the last rate tried: the suggestion (a decade below) comes from the sweep's edge."""
    sweep = range_test(lambda lr: 2 - math.log10(lr) / 10, start=1e-5, end=1e-2, steps=60)
    assert sweep.still_falling and sweep.best_lr == pytest.approx(1e-2)


def test_the_sweep_stops_where_the_loss_diverges():
    sweep = range_test(lambda lr: 1.0 if lr < 1e-2 else 1.0 + (lr * 1e3) ** 2, start=1e-6, end=10.0, steps=100)
    assert sweep.lrs[-1] < 0.1 and max(sweep.losses) > 4 * min(sweep.losses)
    nan = range_test(lambda lr: 1.0 if lr < 1e-3 else float("nan"), start=1e-6, end=1.0, steps=50)
    assert nan.lrs[-1] < 1e-3
    with pytest.raises(UserError, match=r"not finite from the first batches: .*--start, 1e-06 here"):
        range_test(lambda lr: float("nan"), start=1e-6, end=1.0, steps=50)  # one line from lr-find, as every UserError


def test_a_loss_that_rose_from_the_first_rate_says_every_rate_was_too_high():
    """Rates all above the divergence point: the least loss is the first, and the suggestion (a decade below the
    first rate) was never tried: the note says so and names a lower --start."""
    sweep = range_test(lambda lr: 1.0 + lr, start=10.0, end=1e4, steps=50)
    assert sweep.rose_from_start and sweep.suggestion < sweep.lrs[0]
    (note,) = notes(sweep)
    assert "every rate swept was too high" in note and "--start 0.1" in note, note


def test_a_loss_that_hardly_fell_says_the_suggestion_follows_the_noise():
    """A model that does not train (a frozen random backbone): a flat, noisy loss, least somewhere in the middle."""
    wobble = iter([2.3 + 0.02 * math.sin(i) for i in range(100)])
    sweep = range_test(lambda lr: next(wobble), start=1e-6, end=1.0, steps=100)
    assert sweep.hardly_fell and not sweep.rose_from_start
    assert any("the loss hardly fell" in note and "--steps" in note for note in notes(sweep)), notes(sweep)
    falling = range_test(lambda lr: (math.log10(lr) + 2) ** 2 + 1, start=1e-5, end=1.0, steps=100)
    assert notes(falling) == []


def test_lr_find_on_digits_suggests_a_rate_that_trains_well(tmp_path, capsys):
    png = tmp_path / "lr.png"
    assert main(["lr-find", str(REPO / "search_spaces" / "digits.yaml"), "--out", str(png)]) == 0
    out = capsys.readouterr().out
    suggested = float(re.search(r"suggested learning rate: (\S+)", out).group(1))
    assert GOOD_LR / 10 <= suggested <= GOOD_LR * 10, out
    assert "note:" not in out, out
    assert "default optimizer = 'sgd' (given in the space)" in out  # the configuration swept, as `train` prints it
    assert "the sweep trained optimizer 'sgd', the default option of the space's optimizer choice" in out, out
    assert "paste into the 'sgd' option of the space's optimizer section:" in out, out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    pasted = yaml.safe_load(out.split("optimizer section:\n", 1)[1])
    low, high = pasted["lr"]["loguniform"]
    assert isinstance(low, float) and low < suggested < high
    assert pasted["lr"]["default"] == pytest.approx(suggested, rel=0.02)  # the search's first trial
    line = out.split("optimizer section:\n", 1)[1].strip().removeprefix("lr: ")
    assert main(["check", str(REPO / "search_spaces" / "digits.yaml"), "--set", "optimizer.name=sgd",
                 "--set", f"optimizer.lr={line}"]) == 0
    checked = capsys.readouterr().out
    assert re.search(r"optimizer\.lr +loguniform .* \(given in the space\)", checked), checked
    assert "first trials: 1 known configuration(s) (the default configuration)" in checked, checked

    assert main(["train", str(REPO / "search_spaces" / "digits.yaml"), "--set", f"optimizer.lr={suggested}"]) == 0
    trained = capsys.readouterr().out  # the space's own default configuration, at the suggested rate
    assert float(re.search(r"test: test_accuracy ([0-9.]+)", trained).group(1)) > 0.9, trained


def test_bad_options_are_one_line(tmp_path, capsys):
    assert main(["lr-find", str(REPO / "search_spaces" / "digits.yaml"), "--start", "1", "--end", "0.1"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--start" in err, err


def test_lr_find_on_a_table_suggests_a_rate_that_trains_well(tmp_path, capsys):
    """The tabular recipe's range test: breast_cancer's space (AdamW, whose searched range is 3e-4 to 1e-2), and a
    regression table through the recipe's function, whose loss is the standardised target's squared error."""
    from autotune.recipes import tabular

    space = str(REPO / "search_spaces" / "tabular.yaml")
    png = tmp_path / "lr.png"
    assert main(["lr-find", space, "--steps", "60", "--out", str(png)]) == 0
    out = capsys.readouterr().out
    suggested = float(re.search(r"suggested learning rate: (\S+)", out).group(1))
    assert 3e-4 <= suggested <= 3e-2, out
    assert "paste into the space's optimizer section:" in out and "optimizer choice" not in out, out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["train", space, "--set", f"optimizer.lr={suggested}", "--set", "train.epochs=4"]) == 0
    trained = capsys.readouterr().out  # the space's default configuration, at the suggested rate
    assert float(re.search(r"test_accuracy ([0-9.]+)", trained).group(1)) > 0.9, trained

    sweep = tabular.lr_find({"data": {"dataset": "diabetes"}}, start=1e-5, end=10.0, steps=60)
    assert sweep.losses[0] == pytest.approx(1.0, abs=0.5)  # an untrained model's error on a standardised target
    assert min(sweep.losses) < 0.8 * sweep.losses[0] and 1e-4 < sweep.best_lr < 10.0


def test_the_image_range_test_clips_gradients_as_training_does():
    """train.grad_clip lets training take rates that would diverge unclipped; the range test ignored it, so it
    stopped (and suggested) where clipped training would still have learned."""
    from autotune.recipes import image_classification as recipe

    data = recipe.load_data({"dataset": "digits"})

    def sweep(clip: float | None):
        config = {"data": {"dataset": "digits"}, "train": {"grad_clip": clip, "batch_size": 256}}
        return recipe.lr_find(config, data, start=0.1, end=1e3, steps=20)

    assert len(sweep(None).lrs) < 20  # unclipped, the loss diverges before the rate reaches 10^3
    assert len(sweep(1e-3).lrs) == 20  # each step's gradient at most 10^-3 long: it never does


def test_a_model_or_recipe_that_fails_is_one_line(tmp_path, capsys):
    """A timm model that takes 224x224 images only, on 8x8 digits, was a traceback of timm's (train says it in one
    line); so was any exception of a recipe's own lr_find."""
    space = tmp_path / "vit.yaml"
    space.write_text("name: vit\nrecipe: image_classification\ndata: {dataset: digits}\n"
                     "model: {arch: vit_tiny_patch16_224}\n")
    assert main(["lr-find", str(space), "--steps", "10", "--out", str(tmp_path / "lr.png")]) == 2
    err = capsys.readouterr().err
    assert "model 'vit_tiny_patch16_224' does not fit 8x8 inputs: AssertionError" in err, err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "lr.png").exists(), err

    (tmp_path / "mine.py").write_text(
        "from autotune.space.schema import Field, Schema, Section\n"
        "SCHEMA = Schema(fit=Section(lr=Field(float, default=0.1), steps=Field(int, default=2)), budget='fit.steps',\n"
        "                metrics={'val_mse': 'min'})\n\n\n"
        "def train(config, report, *, data=None, checkpoint=None):\n    pass\n\n\n"
        "def lr_find(config, data, *, start, end, steps):\n    raise RuntimeError('no batches')\n")
    (tmp_path / "mine.yaml").write_text("name: mine\nrecipe: mine.py\n")
    assert main(["lr-find", str(tmp_path / "mine.yaml"), "--out", str(tmp_path / "lr.png")]) == 2
    err = capsys.readouterr().err
    assert "recipe function 'lr_find' (mine.py, line 11) failed: RuntimeError: no batches" in err, err
    assert len(err.strip().splitlines()) == 1, err
