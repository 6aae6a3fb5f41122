"""Every example: each YAML passes `autotune check`; python_api.py, multi_objective.yaml and the custom dataset
run for real with tiny settings."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import autotune
from autotune import recipes, registry
from autotune.errors import UnknownNameError
from autotune.report import write_report
from use_support import ROOT, search_in

EXAMPLES = ROOT / "examples"
SPACES = sorted(EXAMPLES.rglob("*.yaml"))
SHAPES = EXAMPLES / "custom_dataset"


def test_the_examples_are_there():
    names = {p.relative_to(EXAMPLES).as_posix() for p in SPACES}
    assert {"multi_objective.yaml", "custom_dataset/shapes.yaml"} <= names
    assert (EXAMPLES / "python_api.py").is_file()


@pytest.mark.parametrize("space", SPACES, ids=[p.relative_to(EXAMPLES).as_posix() for p in SPACES])
def test_example_space_passes_check(space, cli):
    code, out, err = cli("check", space)
    assert code == 0, err
    assert "parameter" in out
    first = space.read_text().splitlines()[0]
    assert first.startswith("# autotune run examples/"), "a shipped YAML opens with the command that runs it"


def import_file(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_python_api_example_runs(ray_session, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    result = import_file(EXAMPLES / "python_api.py").main(trials=2, epochs=1)
    out = capsys.readouterr().out
    assert len(result.trials) == 2 and (tmp_path / "models" / "digits-python" / "model.pt").is_file()
    assert f"best trial {result.best_trial_id}" in out and out.count("predicted ") == 8


def test_multi_objective_example_finds_a_front_and_reports_it(ray_session, tmp_path):
    run = search_in(tmp_path, EXAMPLES / "multi_objective.yaml", ["search.trials=4", "train.epochs=1"])
    trials = run.result.trials
    assert (trials["num_parameters"] > 0).all()
    assert run.result.pareto and {p["trial_id"] for p in run.result.pareto} <= set(trials["trial_id"])
    page = write_report(run.run_dir)
    assert (page.parent / "pareto.png").is_file() and "Pareto front" in page.read_text()


@pytest.fixture
def shapes_space(monkeypatch):
    monkeypatch.chdir(ROOT)  # data.root is relative to the repository root, as the YAML says
    return autotune.load_space(SHAPES / "shapes.yaml")


def test_custom_dataset_and_transform_are_registered_and_load(shapes_space):
    assert registry.exists("dataset", "shapes") and registry.exists("transform", "jitter")
    data = recipes.load(shapes_space.recipe).load_data(shapes_space.config(shapes_space.defaults()[0])["data"])
    assert data.labels == ["circle", "square", "triangle"] and data.input_shape == (1, 24, 24)
    assert len(data.train) + len(data.val) == 90 * 5  # each training image and 4 jittered copies
    assert len(data.test) == 30 and np.bincount(data.test.y.numpy()).tolist() == [10, 10, 10]


def test_an_unknown_transform_lists_the_registered_ones(shapes_space):
    dataset = registry.get("dataset", "shapes")
    with pytest.raises(UnknownNameError, match="did you mean 'jitter'"):
        dataset(str(SHAPES / "images"), transform="jiter", copies=1)


def test_jitter_shifts_and_keeps_uint8():
    import torch

    x = torch.zeros((4, 1, 24, 24), dtype=torch.uint8)
    x[:, :, 10:14, 10:14] = 255
    out = registry.get("transform", "jitter")(x, torch.Generator().manual_seed(0))
    assert out.dtype == torch.uint8 and out.shape == x.shape and not torch.equal(out, x)


def test_custom_dataset_search_exports_a_model_that_predicts_the_test_images(ray_session, tmp_path, monkeypatch,
                                                                              cli):
    monkeypatch.chdir(ROOT)  # relative data.root; runs/ and models/ go to tmp_path
    overrides = ["search.trials=2", "train.epochs=2", "search.scheduler={asha: {grace_period: 1}}",
                 f"export.dir={tmp_path / 'models' / 'shapes'}"]
    result = autotune.fit(SHAPES / "shapes.yaml", overrides=overrides, storage=str(tmp_path / "runs"), num_cpus=2)
    assert (result.trials["status"] == "TERMINATED").all()
    code, out, err = cli("predict", result.model_dir, SHAPES / "images" / "test")
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert len(rows) == 30 and {r["label"] for r in rows} <= {"circle", "square", "triangle"}


def test_make_images_draws_the_committed_images(tmp_path):
    import_file(SHAPES / "make_images.py").main(tmp_path)
    made = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*.png"))
    committed = sorted(p.relative_to(SHAPES / "images") for p in (SHAPES / "images").rglob("*.png"))
    assert made == committed and len(made) == 120
    for path in made[::7]:
        assert np.array_equal(np.asarray(Image.open(tmp_path / path)), np.asarray(Image.open(SHAPES / "images" / path)))


# ------------------------------------------------------------------------ examples/finetune/README.md, offline
def _photos(root: Path, per_class: int = 40) -> Path:
    """A folder of JPEG 'photos' of two classes users would tell apart by colour, of mixed sizes."""
    rng = np.random.default_rng(0)
    for label, colour in (("red", (200, 40, 30)), ("blue", (30, 60, 210))):
        (root / label).mkdir(parents=True)
        for i in range(per_class):
            size = (int(rng.integers(40, 90)), int(rng.integers(40, 90)))
            pixels = np.clip(rng.normal(colour, 40, (size[1], size[0], 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / label / f"{i:03d}.jpg", quality=90)
    return root


def test_the_finetune_walkthrough_runs_offline_with_a_weights_file(ray_session, tmp_path, cli):
    """README steps 3, 5 (offline: a weights file made here from timm's test network) and 6: check, search,
    predict, serve and Python on the exported model, whose card names the weights."""
    import hashlib

    import timm
    import torch
    from safetensors.torch import save_file

    from use_support import served

    photos = _photos(tmp_path / "photos")
    weights = tmp_path / "weights" / "test_resnet.safetensors"
    weights.parent.mkdir()
    torch.manual_seed(0)
    network = timm.create_model("test_resnet", num_classes=1000).train()
    with torch.no_grad():  # BatchNorm statistics of images, as a trained network's are
        for _ in range(30):
            network(torch.rand(16, 3, 32, 32) * 2 - 1)
    save_file(network.state_dict(), str(weights))
    space = ROOT / "search_spaces" / "finetune.yaml"
    offline = [f"data.root={photos}", "model.arch=test_resnet", f"model.pretrained={weights}",
               "data.image_size=32", "search.trials=2", "train.epochs=3", "train.batch_size=8",
               "optimizer.lr=3.0e-3"]
    code, out, err = cli("check", space, *[x for o in offline for x in ("--set", o)])
    assert code == 0, err
    run = search_in(tmp_path, space, offline)
    assert (run.result.trials["status"] == "TERMINATED").all()
    card = json.loads((run.model_dir / "model.json").read_text())
    assert card["pretrained"]["sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert card["labels"] == ["blue", "red"]

    code, out, err = cli("predict", run.model_dir, photos)
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert len(rows) == 80
    assert np.mean([row["label"] == Path(row["file"]).parent.name for row in rows]) >= 0.9
    files = sorted(photos.rglob("*.jpg"))
    result = autotune.load_model(run.model_dir).predict([str(f) for f in files])
    assert result.labels == [row["label"] for row in rows]
    with served(run.model_dir, tmp_path / "serve.log") as client:
        answer = client.post("/predict", files={"file": (files[0].name, files[0].read_bytes(), "image/jpeg")})
    assert answer.status_code == 200 and answer.json()["label"] == result.labels[0]
