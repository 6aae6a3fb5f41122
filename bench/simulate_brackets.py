"""How asynchronous Hyperband should share trials among its brackets: an in-process simulation, no Ray.

TPE (as the engine sets it up) with asynchronous Hyperband written as an Optuna pruner (a trial draws its bracket
with the variant's weights; at each rung of its bracket it goes on only in the top 1/rf of the values recorded
there, as Ray's successive halving decides), one trial at a time, on the quality measure's benchmarks and budgets.
It is how the engine's bracket weights were chosen (docs/search-space.md); bench/quality.py measures the engine.

    python bench/simulate_brackets.py FULL_TRAININGS SEEDS VARIANTS BENCHMARKS
    python bench/simulate_brackets.py 30 50 script,random,ray,hyperband,equal synthetic,digits_mlp
    python bench/simulate_brackets.py 10 60 script,random,hyperband,asha,adaptive \
        synthetic,digits_mlp,digits_cnn,mnist_mlp,mnist_cnn

Variants: ray (Ray's weights e^-(rungs missing)), hyperband (Hyperband's n_s), equal, asha (the first bracket
only: successive halving from epoch 1), adaptive (the engine's own adaptive weights, `scheduler: auto`: the
weights of autotune.engine.hyperband.Hyperband(adaptive=True), fed every report), nostop (TPE, no stopping),
script (the plain Optuna script: TPE + HyperbandPruner), random (random search, every trial to its last epoch).
"""
import math
import sys
from pathlib import Path

import numpy as np
import optuna

sys.path.insert(0, str(Path(__file__).resolve().parent))
import quality  # noqa: E402

from autotune.engine.hyperband import Hyperband  # noqa: E402
from autotune.errors import TrialError  # noqa: E402

optuna.logging.set_verbosity(optuna.logging.ERROR)

# variant -> the weight of bracket i of n (i = 0 stops first, at epoch 1; i = n - 1 stops nothing)
WEIGHTS = {
    "ray": lambda n, rf: [math.e ** -i for i in range(n)],  # e^-(rungs missing): Ray's AsyncHyperBandScheduler
    "hyperband": lambda n, rf: [n * rf ** (n - 1 - i) / (n - i) for i in range(n)],  # Li et al.'s n_s
    "equal": lambda n, rf: [1.0] * n,
    "asha": lambda n, rf: [1.0] + [0.0] * (n - 1),
}


class AsyncHyperband(optuna.pruners.BasePruner):
    """Asynchronous Hyperband as a pruner: brackets with first rungs at rf^s epochs below max_t, plus one that stops
    nothing; a trial goes on at a rung of its bracket only if in the top 1/rf of the values recorded there.
    `engine`: the engine's scheduler, whose current weights each new trial is drawn with (fed every report)."""

    def __init__(self, max_t: int, weights: list[float], rf: float = 3, seed: int = 0,
                 engine: Hyperband | None = None) -> None:
        count = math.floor(math.log(max_t) / math.log(rf) + 1e-9) + 1
        self.rungs = [{rf ** (s + k): [] for k in range(count) if rf ** (s + k) < max_t} for s in range(count + 1)]
        self.weights = np.asarray(weights, dtype=float) / sum(weights)
        self.random, self.bracket, self.rf, self.engine = np.random.default_rng(seed), {}, rf, engine

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        if self.engine is not None:
            self.engine.record(str(trial.number), {"training_iteration": trial.last_step,
                                                   "val_accuracy": trial.intermediate_values[trial.last_step]})
        if trial.number not in self.bracket:
            weights = self.weights if self.engine is None else self.engine.current_weights()
            self.bracket[trial.number] = self.random.choice(len(self.rungs), p=weights)
        rung = self.rungs[self.bracket[trial.number]].get(trial.last_step)
        if rung is None:
            return False
        rung.append(trial.intermediate_values[trial.last_step])
        return rung[-1] < np.nanpercentile(rung, (1 - 1 / self.rf) * 100)


def search(name: str, variant: str, seed: int, limit: int) -> list[tuple[float, float]]:
    """One simulated search of `limit` epochs: its reports, in order, as bench/quality.py counts them."""
    data, space, epochs = quality._load(name), quality.search_space(name), quality._load(name).epochs
    reports: list[tuple[float, float]] = []

    def objective(trial: optuna.Trial) -> float:
        config = quality._nested({k: quality._suggest(trial, k, d) for k, d in space.items()})
        curve = data.curve(config)[0]["val_accuracy"]
        for epoch in range(1, epochs + 1):
            if epoch == data.diverges(config):
                raise TrialError("diverged")
            reports.append((0.0, float(curve[epoch - 1])))
            trial.report(float(curve[epoch - 1]), epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return float(curve[-1])

    def spent(study: optuna.Study, _: optuna.trial.FrozenTrial) -> None:
        if len(reports) >= limit:
            study.stop()

    if variant == "random":
        sampler, pruner = optuna.samplers.RandomSampler(seed=seed), optuna.pruners.NopPruner()
    elif variant == "script":
        sampler = optuna.samplers.TPESampler(seed=seed)
        pruner = optuna.pruners.HyperbandPruner(min_resource=1, max_resource=epochs, reduction_factor=3)
    else:
        sampler = optuna.samplers.TPESampler(seed=seed, multivariate=True)  # the engine's TPE
        count = math.floor(math.log(epochs) / math.log(3) + 1e-9) + 2
        engine = None
        if variant == "adaptive":
            engine = Hyperband(epochs, 1, 3, seed=seed, adaptive=True)
            engine.set_search_properties("val_accuracy", "max")
        pruner = (optuna.pruners.NopPruner() if variant == "nostop"
                  else AsyncHyperband(epochs, WEIGHTS.get(variant, WEIGHTS["hyperband"])(count, 3), seed=seed,
                                      engine=engine))
    study = optuna.create_study(direction="maximize", sampler=sampler, pruner=pruner)
    study.optimize(objective, n_trials=limit, callbacks=[spent], catch=(TrialError,))
    return reports


def main() -> None:
    full_trainings, seeds = int(sys.argv[1]), range(int(sys.argv[2]))
    for name in sys.argv[4].split(","):
        best, worst = quality.bounds(name)
        limit = quality.budget(name, full_trainings)
        for variant in sys.argv[3].split(","):
            regret = np.asarray([quality.regrets(search(name, variant, s, limit), limit, best, worst) for s in seeds])
            print(f"{name:10s} {variant:9s} mean regret " + " ".join(f"{x:.3f}" for x in regret.mean(axis=0))
                  + f"  worst {regret[:, -1].max():.3f} median {np.median(regret[:, -1]):.3f}", flush=True)


if __name__ == "__main__":
    main()
