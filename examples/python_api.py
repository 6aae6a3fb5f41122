"""The Python API: search, look at the trials, then use the exported model (what `autotune run` and
`autotune predict` do, from a script or a notebook).

    python examples/python_api.py                          # digits: 8 trials, about a minute on 2 cores
    python examples/python_api.py --trials 2 --epochs 1    # a quick look
    python examples/python_api.py --num-cpus 1             # leave a core free

Runs in the current folder under its own name, beside README's `autotune run search_spaces/digits.yaml`: the run
goes to runs/digits-python/ (started afresh each time), the model to models/digits-python/.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import autotune
from autotune import recipes

SPACE = Path(__file__).resolve().parents[1] / "search_spaces" / "digits.yaml"


def main(trials: int = 8, epochs: int = 8, num_cpus: int | None = None) -> autotune.SearchResult:
    # 1. The space: a YAML file (or a YAML string, or a dict), with overrides like `--set` on the command line.
    overrides = ["name=digits-python", f"search.trials={trials}", f"train.epochs={epochs}"]
    space = autotune.load_space(SPACE, overrides)
    print(f"searching {space.name}: {', '.join(p.name for p in space.params)}")

    # 2. The search: Ray Tune + Optuna + ASHA; the best checkpoint is exported to models/digits-python.
    # restart=True starts this example's run afresh; resume=True would continue it (as `autotune run --resume`).
    result = autotune.fit(space, num_cpus=num_cpus, restart=True)
    metric = result.metric[0]
    print(f"best trial {result.best_trial_id}: {metric} {result.best_metrics[metric]:.4f}")
    print(f"test split: {result.test_metrics}")
    print("best configuration:", result.best_params)
    columns = ["trial_id", "status", "epochs", "stopped_early", metric]
    print(result.trials[columns].sort_values(metric, ascending=False).to_string(index=False))

    # 3. The model: loads from its directory alone (model.pt + model.json), no recipe needed.
    model = autotune.load_model(result.model_dir)
    print(f"model card: {model.card['arch']}, {model.card['num_parameters']} parameters, labels {model.labels}")

    # Predict a few held-out test images (the recipe loads the same data, split the same way).
    data = recipes.load(space.recipe).load_data(result.best_config["data"])
    images, truth = data.test.x[:8].numpy(), data.test.y[:8].tolist()
    predictions = model.predict(images)  # uint8 arrays, floats in [0, 1], or PIL images of any size
    for label, probabilities, true in zip(predictions.labels, predictions.probabilities, truth):
        print(f"predicted {label} ({probabilities.max():.0%}), true {data.labels[true]}")
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--num-cpus", type=int, default=None, help="CPUs of the local Ray (default: all)")
    args = parser.parse_args()
    try:
        main(args.trials, args.epochs, args.num_cpus)
    except autotune.AutotuneError as err:  # a bad space, option or data: one line, as `autotune run` prints it
        sys.exit(f"python_api.py: error: {err}")
