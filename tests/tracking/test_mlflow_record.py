"""What the MLflow UI shows of a search, to tell nightly searches apart: the ingredients' constant values on the
parent (a `--set train.epochs=60` too), its end's tags (data fingerprint, promoted, version; no best trial where
there is none), and each registered model version tagged with its autotune version, data fingerprint and run. On a
sqlite store, through MlflowRuns without a search."""
from __future__ import annotations

import json

import pytest

mlflow = pytest.importorskip("mlflow")

from autotune.space import load_space  # noqa: E402
from autotune.space.types import MlflowSettings  # noqa: E402
from autotune.tracking import SearchStart  # noqa: E402
from autotune.tracking.mlflow_runs import MlflowRuns  # noqa: E402

SPACE = """
name: wine
recipe: image_classification
data: {dataset: digits, val_fraction: 0.15}
model: {arch: mlp, width: {choice: [16, 32]}, depth: 1}
optimizer: {name: adamw, lr: {loguniform: [1.0e-3, 3.0e-2], default: 0.01}}
train: {epochs: 3, batch_size: 64}
"""


@pytest.fixture(scope="module")
def uri(tmp_path_factory) -> str:
    """One sqlite store for the module (a new one takes seconds to migrate); each test its own experiment."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow')}/mlflow.db"


def _started(uri: str, state_dir, experiment: str, name: str = "wine", register: str | None = None) -> MlflowRuns:
    runs = MlflowRuns(MlflowSettings(uri=uri, experiment=experiment, register=register), "wine", {})
    runs.start(SearchStart(name=name, state_dir=state_dir, space_file=None, settings={"search.trials": 4},
                           resumed=False))
    return runs


def _parent(uri: str, runs: MlflowRuns):
    return mlflow.tracking.MlflowClient(tracking_uri=uri).get_run(runs.parent)


def test_the_parent_holds_the_constant_values_a_set_override_included(uri, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "space.json").write_text(load_space(SPACE, ["train.epochs=60"]).definition())
    params = _parent(uri, _started(uri, tmp_path, "constants")).data.params
    assert params == {"search.trials": "4", "data.dataset": "digits", "data.val_fraction": "0.15",
                      "model.arch": "mlp", "model.depth": "1", "optimizer.name": "adamw", "train.epochs": "60",
                      "train.batch_size": "64"}  # model.width and optimizer.lr are the trials' params


def test_more_constants_than_one_batch_takes_are_all_logged(uri, tmp_path, monkeypatch):
    """MLflow takes 100 params in one call; a long text is cut at the 6000 characters a value may hold."""
    monkeypatch.chdir(tmp_path)
    ingredients = {"model": {f"k{i}": i for i in range(150)}, "data": {"classes": ["x" * 10] * 1000}}
    (tmp_path / "space.json").write_text(json.dumps({"ingredients": ingredients}))
    params = _parent(uri, _started(uri, tmp_path, "many")).data.params
    assert len(params) == 152 and params["model.k149"] == "149" and len(params["data.classes"]) == 6000


def test_a_search_without_a_best_trial_is_not_tagged_with_one(uri, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runs = _started(uri, tmp_path, "failed")
    runs.finish({"name": "wine", "error": "every trial failed"}, None, "failed", [])
    tags = _parent(uri, runs).data.tags
    assert not {"autotune.best_trial_id", "autotune.promoted", "autotune.version"} & set(tags)


@pytest.mark.parametrize("promoted", [True, False])
def test_the_parent_is_tagged_with_its_export_s_version_fingerprint_and_promotion(uri, tmp_path, monkeypatch,
                                                                                 promoted):
    """A version not promoted is tagged too (its card says which data it was searched on)."""
    monkeypatch.chdir(tmp_path)
    version = tmp_path / "models" / "wine.versions" / "20261207-0200"
    version.mkdir(parents=True)
    (version / "model.json").write_text(json.dumps({"version": version.name, "data_fingerprint": "f1ngerprint"}))
    runs = _started(uri, tmp_path, f"promoted-{promoted}")
    runs.finish({"name": "wine", "best_trial_id": "a_00001",
                 "promotion": {"promoted": promoted, "version_dir": str(version)}}, None, "finished", [])
    tags = _parent(uri, runs).data.tags
    assert {k: v for k, v in tags.items() if k in ("autotune.best_trial_id", "autotune.promoted", "autotune.version",
                                                   "autotune.data_fingerprint")} == {
        "autotune.best_trial_id": "a_00001", "autotune.promoted": str(promoted).lower(),
        "autotune.version": "20261207-0200", "autotune.data_fingerprint": "f1ngerprint"}


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning")
def test_a_registered_model_version_is_tagged_with_its_autotune_version(uri, tmp_path, monkeypatch):
    """The version the registry made had no link back to the model folder: a rollback could not find it."""
    torch = pytest.importorskip("torch")
    monkeypatch.chdir(tmp_path)
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    torch.jit.script(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))).save(str(model_dir / "model.pt"))
    card = {"recipe": "image_classification", "input_shape": [1, 2, 2], "version": "20261207-0200",
            "data_fingerprint": "f1ngerprint"}
    (model_dir / "model.json").write_text(json.dumps(card))
    runs = _started(uri, tmp_path, "registered", name="wine-data-f1ngerpr", register="wine")
    runs.finish({"name": "wine-data-f1ngerpr", "promotion": {"promoted": True}}, model_dir, "finished", [])
    client = mlflow.tracking.MlflowClient(tracking_uri=uri)
    version = client.get_model_version_by_alias("wine", "champion")
    assert version.tags == {"autotune.version": "20261207-0200", "autotune.data_fingerprint": "f1ngerprint",
                            "autotune.run": "wine-data-f1ngerpr"}
