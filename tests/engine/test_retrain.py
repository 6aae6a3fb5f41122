"""Retraining when the data changes: nothing to do on the same data; else a warm-started, if-better search."""
from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest

from autotune.cli import main
from engine_helpers import TOY

pytestmark = pytest.mark.usefixtures("local_ray")

SPACE = f"""
name: retrain
recipe: {TOY}
data: {{size: 100}}
model: {{x: {{uniform: [0.0, 1.0]}}, y: {{uniform: [0.0, 1.0]}}}}
train: {{epochs: 2}}
search: {{trials: 3, max_concurrent: 2, seed: 0, resources: {{cpu: 1}}}}
export: {{dir: models/retrain}}
"""


def test_retrain_only_when_the_data_changed(in_tmp, capsys):
    Path("space.yaml").write_text(SPACE)
    assert main(["run", "space.yaml"]) == 0
    first = json.loads(Path("models/retrain/model.json").read_text())
    assert first["data_fingerprint"] == "toy-100"
    capsys.readouterr()

    assert main(["run", "space.yaml", "--if-data-changed"]) == 0
    out = capsys.readouterr().out
    assert "The data is unchanged (fingerprint toy-100)" in out and "nothing to do" in out
    assert sorted(p.name for p in Path("runs").iterdir()) == ["retrain"]

    assert main(["run", "space.yaml", "--set", "data.size=200", "--if-data-changed"]) == 0
    out = capsys.readouterr().out
    assert "The data changed (fingerprint toy-200, the current model's is toy-100)" in out
    run_dir = Path("runs/retrain-data-toy-200")
    study = optuna.load_study(study_name="retrain-data-toy-200", storage=f"sqlite:///{run_dir}/study.db")
    first_trial = min(study.trials, key=lambda t: t.number)
    assert first_trial.params == pytest.approx(first["params"])  # warm start: the current model comes first
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["promotion"]["policy"] == "if_better"
    assert "the same test split" in summary["promotion"]["reason"]
    card = json.loads(Path("models/retrain/model.json").read_text())
    assert card["data_fingerprint"] == ("toy-200" if summary["promotion"]["promoted"] else "toy-100")

    # The same new data again: the retrained model is current, or the run exists and is resumed, never redone.
    assert main(["run", "space.yaml", "--set", "data.size=200", "--if-data-changed"]) == 0
