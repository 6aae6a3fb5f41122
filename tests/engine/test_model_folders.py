"""The folders around a canonical model (docs/retraining.md "Versions, and going back to one"): what `train --out`,
an alias link, a read-only folder, a plain folder an export replaces and a copied link do to it."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from filelock import FileLock
from test_export import evaluate, export, load, writer

import autotune.cli
from autotune.engine.export import export_model, library_versions, roll_back, versions_dir
from autotune.errors import UserError

TOY = Path(__file__).with_name("toy_recipe.py")


@pytest.mark.parametrize("out", ["m", "version"])
def test_train_out_refuses_a_canonical_model(tmp_path, capsys, out):
    """`train --out models/m` would overwrite the current version in place (behind a `serve`, losing its history):
    refused in one line, as is a version folder itself."""
    target = tmp_path / "m"
    version = export(target, 0.5)["version_dir"]
    space = tmp_path / "space.yaml"
    space.write_text(f"name: m\nrecipe: {TOY}\nmodel: {{x: {{uniform: [0, 1]}}}}\ntrain: {{epochs: 1}}\n"
                     "search: {metric: val_accuracy, mode: max}\n")
    folder = target if out == "m" else version
    assert autotune.cli.main(["train", str(space), "--out", str(folder)]) == 2
    err = capsys.readouterr().err
    assert "writing into it would replace its current version in place; give a new folder" in err
    assert "run a search" in err and len(err.strip().splitlines()) == 1
    assert load(target)["value"] == 0.5 and len(load(target)["history"]) == 1


def test_export_out_refuses_a_canonical_model_and_says_to_leave_out_out(tmp_path, capsys):
    """`autotune export RUN --trial ID --out models/m` suggested a whole new search (`autotune run SPACE --set
    export.dir=models/m`), where leaving out --out makes the trial the canonical model's new version."""
    target = tmp_path / "m"
    export(target, 0.5)
    (tmp_path / "run").mkdir()
    assert autotune.cli.main(["export", str(tmp_path / "run"), "--trial", "t1", "--out", str(target)]) == 2
    err = capsys.readouterr().err
    assert err.endswith("e.g. --out models/NAME-trial, or leave out --out to make the trial the new version of the "
                        "run's canonical model (its export.dir; `autotune rollback` goes back)\n")
    assert len(err.strip().splitlines()) == 1


def test_train_out_s_hint_is_a_command_that_pastes_into_a_shell(tmp_path, capsys):
    """The refusal's `autotune run SPACE --set export.dir=PATH` is quoted for the shell (a path with a space or a
    `#` was cut there)."""
    target = tmp_path / "my models #2" / "m"
    export(target, 0.5)
    space = tmp_path / "space.yaml"
    space.write_text(f"name: m\nrecipe: {TOY}\nmodel: {{x: {{uniform: [0, 1]}}}}\ntrain: {{epochs: 1}}\n"
                     "search: {metric: val_accuracy, mode: max}\n")
    assert autotune.cli.main(["train", str(space), "--out", str(target)]) == 2
    assert f"--set 'export.dir={target}'`" in capsys.readouterr().err


def image_card(labels: int, shape: list[int], names: list[str] | None = None):
    def write(out: Path) -> dict:
        return {**writer(0.5)(out), "labels": names or [str(i) for i in range(labels)], "input_shape": shape}
    return write


def test_if_better_keeps_an_image_model_of_another_dataset(tmp_path):
    """digits (10 labels, 1x8x8) then RGB images of 3 other labels (3x16x16): no retrain of it, so kept with the
    reason (the current model is not scored on data it cannot read), and the new one is written as a version. A
    class added, or another image size, is a retrain: compared by score."""
    target = tmp_path / "m"
    export_model(target, write=image_card(10, [1, 8, 8]), evaluate=evaluate, card={}, metric="test_accuracy",
                 mode="max", promote="always")

    def cannot_evaluate(model_dir: Path) -> dict:
        raise RuntimeError("TorchScript: expected 3 channels")

    decision = export_model(target, write=image_card(3, [3, 16, 16], ["circle", "square", "star"]),
                            evaluate=evaluate, card={}, metric="test_accuracy", mode="max", promote="if_better",
                            evaluate_current=cannot_evaluate)
    assert not decision["promoted"] and len(load(target)["labels"]) == 10
    assert decision["reason"] == (
        "the current model predicts (labels ['0', '1', '2', ... 10 in all], input_shape [1, 8, 8]) and the new one "
        "(labels ['circle', 'square', 'star'], input_shape [3, 16, 16]): not a retrain of it; export the new one to "
        "a folder of its own (export.dir, or another name:), or set export.promote: always to replace it")
    assert Path(decision["version_dir"]).is_dir()
    grey = export_model(target, write=image_card(10, [3, 8, 8]), evaluate=evaluate, card={}, metric="test_accuracy",
                        mode="max", promote="if_better", evaluate_current=cannot_evaluate)
    assert "(input_shape [1, 8, 8]) and the new one (input_shape [3, 8, 8])" in grey["reason"]
    for labels, shape in ((11, [1, 8, 8]), (10, [1, 16, 16])):  # a class added; the images at another size
        retrain = export_model(target, write=image_card(labels, shape), evaluate=evaluate, card={},
                               metric="test_accuracy", mode="max", promote="if_better")  # compared by score
        assert "the current model predicts" not in retrain["reason"], retrain


@pytest.mark.parametrize("how", ["export", "rollback"])
def test_an_alias_link_leads_to_the_canonical_model(tmp_path, how):
    """`ln -s models/wine wine_alias`, then export.dir: wine_alias (or a rollback of it): models/wine moves, under
    its own lock; no second model is made at the alias."""
    target = tmp_path / "models" / "wine"
    first = export(target, 0.5)["version_dir"]
    export(target, 0.6)
    alias = tmp_path / "wine_alias"
    alias.symlink_to(target)
    if how == "export":
        export(alias, 0.7)
        assert load(target)["value"] == 0.7 and len(load(target)["history"]) == 3
    else:
        assert roll_back(alias)[1] == Path(first).name
        assert load(target)["value"] == 0.5
    assert alias.is_symlink() and os.readlink(alias) == str(target)
    assert not versions_dir(alias).exists() and not (tmp_path / ".wine_alias.lock").exists()


def test_a_rollback_in_a_read_only_folder_is_one_line(tmp_path, monkeypatch):
    target = tmp_path / "srv"
    export(target, 0.5)
    export(target, 0.6)

    def read_only(self, *args, **kwargs):
        raise OSError(30, "Read-only file system", self.lock_file)

    monkeypatch.setattr(FileLock, "acquire", read_only)
    with pytest.raises(UserError, match=r"cannot write the lock .*\.srv\.lock of the model .*srv: Read-only file "
                                        r"system; a rollback moves the link and writes the card"):
        roll_back(target)


def test_a_plain_folder_an_export_replaced_is_a_version_to_roll_back_to(tmp_path):
    """A `train --out` folder, then a search's export to it: kept as previous-..., with its history entry."""
    target = tmp_path / "plain"
    target.mkdir()
    writer(0.4)(target)
    (target / "model.json").write_text(json.dumps({"value": 0.4, "version": "train-20261206-120000"}))
    export(target, 0.8)
    assert load(target)["value"] == 0.8
    left, now = roll_back(target)
    assert now.startswith("previous-") and load(target)["value"] == 0.4


def test_a_link_copied_without_its_versions_folder_says_so(tmp_path, capsys):
    target = tmp_path / "models" / "srv"
    export(target, 0.5)
    copy = tmp_path / "elsewhere"
    copy.mkdir()
    (copy / "srv").symlink_to(os.readlink(target))
    assert autotune.cli.main(["predict", str(copy / "srv"), "x.png"]) == 2
    err = capsys.readouterr().err
    assert f"is a link to {os.readlink(target)}, which does not exist (a canonical model's link, copied without " \
           "its versions folder .srv.versions" in err
    with pytest.raises(UserError, match="copied without its versions folder"):
        autotune.load_model(copy / "srv")


def test_the_card_names_the_table_libraries():
    assert {"pandas", "scikit-learn"} <= library_versions().keys()


def test_the_card_names_the_autotune_that_exported_it():
    """A card's `versions.autotune` is the installed package's version, which autotune.__version__ says too: the
    two are written in two files (pyproject.toml, autotune/__init__.py), and a card of this code must not read as
    the first release's (0.1.0)."""
    assert library_versions()["autotune"] == autotune.__version__ != "0.1.0"
