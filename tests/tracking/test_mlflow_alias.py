"""`point_champion`: the registry's `champion` alias moved to the model version of an autotune version (a rollback,
an export of a chosen trial), found by the tag `autotune.version` the search's tracker writes; where it cannot be,
one UserError saying what the alias still names and the fix. On a sqlite store."""
from __future__ import annotations

import sys

import pytest

from autotune.errors import UserError

mlflow = pytest.importorskip("mlflow")

from autotune.tracking.mlflow_alias import point_champion  # noqa: E402


@pytest.fixture(scope="module")
def registry(tmp_path_factory) -> str:
    """A sqlite store whose registered model `wine` has versions 1 and 2, tagged autotune versions A and B (made
    once: a new store takes seconds to migrate)."""
    folder = tmp_path_factory.mktemp("registry")
    uri = f"sqlite:///{folder}/mlflow.db"
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)  # a sqlite store keeps its artifacts in ./mlruns
        client = mlflow.tracking.MlflowClient(tracking_uri=uri)
        client.create_registered_model("wine")
        for autotune_version in ("A", "B"):
            client.create_model_version("wine", str(folder), tags={"autotune.version": autotune_version})
    return uri


@pytest.fixture()
def store(registry) -> str:
    """The registry with `champion` on version 2, as two promoted searches leave it."""
    mlflow.tracking.MlflowClient(tracking_uri=registry).set_registered_model_alias("wine", "champion", "2")
    return registry


def _champion(uri: str) -> str:
    return str(mlflow.tracking.MlflowClient(tracking_uri=uri).get_model_version_by_alias("wine", "champion").version)


def test_champion_follows_the_autotune_version_back_and_forth(store):
    """A rollback to A, then an export that makes B current again: the alias stayed on version 2 throughout."""
    assert point_champion(store, "wine", "A") == "MLflow: models:/wine@champion -> version 1 (autotune version A)"
    assert _champion(store) == "1"
    assert point_champion(store, "wine", "B") == "MLflow: models:/wine@champion -> version 2 (autotune version B)"
    assert _champion(store) == "2"


def test_a_version_never_registered_is_one_line_with_what_the_alias_still_names(store):
    with pytest.raises(UserError) as caught:
        point_champion(store, "wine", "C")
    message = str(caught.value)
    assert "autotune version C was never registered as a version of wine" in message
    assert "models:/wine@champion still names version 2 (autotune version B)" in message
    assert "create_model_version('wine'" in message and "\n" not in message
    assert _champion(store) == "2"


def test_a_registered_model_that_is_not_there_is_one_line(store):
    with pytest.raises(UserError, match="has no registered model 'beer'.*no alias changed"):
        point_champion(store, "beer", "A")


def test_an_unreachable_server_is_one_line_and_the_alias_unchanged(free_port):
    with pytest.raises(UserError) as caught:
        point_champion(f"http://bob:s3cret@127.0.0.1:{free_port()}", "wine", "A")
    message = str(caught.value)
    assert message.startswith("MLflow: cannot point models:/wine@champion at autotune version A (")
    assert "the alias is unchanged: once http://bob:***@127.0.0.1:" in message and "s3cret" not in message
    assert "set_registered_model_alias('wine', 'champion', N)" in message


def test_mlflow_not_installed_is_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow.tracking", None)  # `from mlflow.tracking import ...` raises ImportError
    with pytest.raises(UserError, match=r'not installed \(pip install "autotune\[mlflow\]"\); the alias is unchanged'):
        point_champion("sqlite:///unused.db", "wine", "A")


def test_autotune_rollback_moves_the_champion_with_the_canonical_model(store, tmp_path, capsys, monkeypatch):
    """`autotune rollback` moved models/wine and left models:/wine@champion on the model rolled back from: the
    cards of a search that registered its exports (`registered`) name the registry, and the alias follows."""
    import json

    from autotune.cli import main
    from autotune.engine.export import export_model, versions_dir

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    target = tmp_path / "models" / "wine"
    for value in (0.5, 0.6):
        def write(out, value=value):
            (out / "weights.json").write_text(json.dumps({"value": value}))
            return {}

        export_model(target, write=write, evaluate=lambda d: {"test_accuracy": 0.5}, metric="test_accuracy",
                     mode="max", promote="always",
                     card={"name": "wine", "registered": {"mlflow": {"uri": store, "name": "wine"}}})
    first, second = sorted(p.name for p in versions_dir(target).iterdir())
    client = mlflow.tracking.MlflowClient(tracking_uri=store)
    for number, version in (("1", first), ("2", second)):  # as the search's tracker tags what it registers
        client.set_model_version_tag("wine", number, "autotune.version", version)
    assert main(["rollback", str(target)]) == 0
    assert _champion(store) == "1"
    assert f"MLflow: models:/wine@champion -> version 1 (autotune version {first})" in capsys.readouterr().out
    client.delete_model_version_tag("wine", "2", "autotune.version")  # a version the registry does not know
    assert main(["rollback", str(target), "--to", second]) == 0
    assert _champion(store) == "1"
    out = capsys.readouterr().out  # the local rollback is done: the registry's refusal is a line after it
    assert f"version {second} is current" in out and f"autotune version {second} was never registered" in out
