"""The image recipe's keys as `check` and the preflight see them, before any data loads: a path built by
interpolation made absolute as a plain one is, the resize keys and a weights file checked with their lines, and
`train.freeze_epochs` that never lets the backbone train warned of. No torch, no Ray, no timm (the paths do not
depend on the model: simple_cnn and mlp stand in for timm's networks)."""
from __future__ import annotations

import logging
import textwrap

import pytest

import autotune
import autotune.recipes
from autotune.cli import main
from autotune.errors import SpaceError, UserError
from autotune.preflight import model_configs
from autotune.recipes import image_classification as recipe
from autotune.space import load_space


def _space(text: str, *overrides: str):
    return load_space(textwrap.dedent(text).rstrip("\n") + "\n", overrides, schema_for=autotune.recipes.load_schema)


def _problems(text: str, *overrides: str) -> list[str]:
    with pytest.raises(SpaceError) as caught:
        _space(text, *overrides)
    return [f"{p.line}: {p.path}: {p.message}; {p.fix}" for p in caught.value.problems]


def test_an_interpolated_weights_path_is_absolute_in_each_trial_and_in_the_preflight(tmp_path, monkeypatch):
    """`pretrained: weights/${model.arch}.safetensors` stayed relative: check and the preflight (in the working
    directory) passed, then every trial failed in its own folder (`no such weights file`)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "weights").mkdir()
    for arch in ("simple_cnn", "mlp"):
        (tmp_path / "weights" / f"{arch}.safetensors").touch()
    space = _space("model: {arch: {choice: [simple_cnn, mlp]}, pretrained: 'weights/${model.arch}.safetensors'}")
    monkeypatch.chdir(tmp_path / "weights")  # a trial's own folder
    (param,) = space.params
    trials = [space.config({param.name: arch})["model"]["pretrained"] for arch in param.dist.labels]
    assert trials == [str(tmp_path / "weights" / f"{arch}.safetensors") for arch in ("simple_cnn", "mlp")]
    assert [config["model"]["pretrained"] for _, config in model_configs(space)] == trials


def test_a_missing_weights_file_is_a_problem_at_its_line_before_the_data_loads(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "simple_cnn.safetensors").touch()
    problems = _problems("""\
        name: weights
        model: {arch: simple_cnn, pretrained: weights/simple_cnn.safetensors}
        """)
    missing = tmp_path / "weights" / "simple_cnn.safetensors"
    assert problems == [f"2: model.pretrained: no such weights file ({missing} does "
                        "not exist); give the path of a weights file, relative to the working directory, or true for "
                        "timm's weights; "]
    space = _space("model: {arch: simple_cnn, pretrained: simple_cnn.safetensors}")
    assert space.config({})["model"]["pretrained"] == str(tmp_path / "simple_cnn.safetensors")
    interpolated = _problems("model: {arch: {choice: [simple_cnn, mlp]}, pretrained: '${model.arch}.safetensors'}")
    assert len(interpolated) == 1 and "mlp.safetensors does not exist" in interpolated[0]


@pytest.mark.parametrize("override, problem", [
    ("data.interpolation=bilinearr", "data.interpolation: must be one of nearest, bilinear, bicubic, lanczos, box, "
                                     "hamming; did you mean 'bilinear'?"),
    ("data.crop_pct=1.5", "data.crop_pct: must be <= 1.0; "),
    ("data.crop_pct=0", "data.crop_pct: must be > 0; "),
    ("data.crop_pct={uniform: [0, 1]}", "data.crop_pct.uniform: the range [0.0, 1.0] reaches 0.0, but values must "
                                        "be > 0; narrow the distribution"),
])
def test_the_resize_keys_are_checked_with_their_line(override, problem):
    """They were refused only by `run`, after the data loaded, without file:line or did-you-mean."""
    assert _problems("data: {dataset: image_folder, root: .}", override) == [f"1: {problem}"]


def test_the_resize_keys_left_unset_reach_no_dataset():
    space = _space("data: {dataset: digits}")
    assert "interpolation" not in recipe.data_for(space.config({}))
    assert "crop_pct" not in recipe._load_settings(space.config({})["data"])
    given = _space("data: {dataset: image_folder, root: ., interpolation: bicubic, crop_pct: 0.9}")
    assert {k: recipe.data_for(given.config({}))[k] for k in ("interpolation", "crop_pct")} == \
        {"interpolation": "bicubic", "crop_pct": 0.9}


def test_each_interpolation_is_a_pillow_filter_the_resize_applies():
    from PIL import Image

    from autotune.vision.datasets import INTERPOLATIONS
    from autotune.vision.inference import Resize

    for name in INTERPOLATIONS:
        Resize(interpolation=name)  # refuses a name it does not know
        assert Image.Resampling[name.upper()] is not None


FROZEN = "train.freeze_epochs: is 3 and train.epochs 3: the backbone stays frozen in every epoch, so only the " \
         "classifier trains"


def test_freeze_epochs_that_reach_the_epochs_are_warned_of_by_check_train_and_fit_before_the_data_loads(
        tmp_path, capsys, caplog):
    space = _space("train: {epochs: 3, freeze_epochs: {int: [0, 3]}}")
    assert [f"{p.line}: {p.path}: {p.message}; {p.fix}" for p in space.warnings] == \
        [f"1: {FROZEN} (when train.freeze_epochs=3); lower it below train.epochs (e.g. 1), or leave it if only the "
         "classifier should train"]
    assert _space("train: {epochs: 3, freeze_epochs: 2}").warnings == ()
    (tmp_path / "space.yaml").write_text("train: {epochs: 3, freeze_epochs: 3}\n")
    assert main(["check", str(tmp_path / "space.yaml")]) == 0
    assert f"warning: {tmp_path / 'space.yaml'}:1: {FROZEN};" in capsys.readouterr().out
    missing = tmp_path / "space_missing.yaml"  # data that cannot load: the warning comes first
    missing.write_text(f"data: {{dataset: image_folder, root: {tmp_path / 'no_folder'}}}\n"
                       "train: {epochs: 2, freeze_epochs: 5}\n")
    assert main(["train", str(missing)]) == 2
    err = capsys.readouterr().err
    assert err.index("warning: ") < err.index("no_folder") and "train.freeze_epochs: is 5 and train.epochs 2" in err
    with caplog.at_level(logging.WARNING, logger="autotune"), pytest.raises(UserError, match="no_folder"):
        autotune.fit(str(missing), storage=str(tmp_path / "runs"), export=False)
    assert "train.freeze_epochs: is 5 and train.epochs 2" in caplog.text
