"""The simulation's saved regrets (bench/simulate_brackets.py), side by side: per benchmark and variant, mean
regret at 25 / 50 / 100 % of the budget, the worst and median seed at 100 %, the quality measure's goal checks
against `script` and `random`, and each variant's difference from `adaptive`, paired by seed, with its standard
error (* beyond two).

    python bench/simulate_compare.py SEED_SETS [BENCHMARKS] [VARIANTS]
    python bench/simulate_compare.py 60,60o60      # seeds 0-59 and 60-119 (SEED_OFFSET=60), pooled
"""
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import quality  # noqa: E402
from common import arguments  # noqa: E402

OUT = Path(os.environ.get("SIM_OUT", Path(__file__).parent / "sim_out"))
BENCHMARKS = ["synthetic", "digits_mlp", "digits_cnn", "mnist_mlp", "mnist_cnn"]


def pooled(name: str, sets: list[str]) -> dict[str, np.ndarray]:
    """variant -> its regrets (seeds x fractions) over every seed set saved for it."""
    variants = sorted({p.name.split("__")[1] for p in OUT.glob(f"{name}__*__{sets[0]}.npy")})
    files = {v: [OUT / f"{name}__{v}__{s}.npy" for s in sets] for v in variants}
    return {v: np.concatenate([np.load(f) for f in fs]) for v, fs in files.items() if all(f.exists() for f in fs)}


def main() -> None:
    given = arguments(__doc__, 1, 3)
    sets = given[0].split(",")
    names = given[1].split(",") if len(given) > 1 else BENCHMARKS
    only = set(given[2].split(",")) | {"adaptive", "script", "random"} if len(given) > 2 else None
    for name in names:
        runs = {v: r for v, r in pooled(name, sets).items() if only is None or v in only}
        if not runs:
            print(f"\n{name}: no saved regrets for seed sets {given[0]} in {OUT}")
            continue
        print(f"\n{name}: {len(next(iter(runs.values())))} seeds; goal: M = at or below script and random at 25, "
              "50 and 100 %, S = no seed stuck, - = missed")
        print(f"{'variant':30s}    25 %    50 %   100 %  worst  median goal  minus adaptive at 25 / 50 / 100 %")
        for variant, regret in runs.items():
            table = {"default": quality.summary_row(regret), **{
                m: quality.summary_row(runs[v]) for m, v in (("optuna_script", "script"), ("random+fifo", "random"))
                if v in runs}}
            checks = quality.verdicts({name: table})[name]
            goal = ("M" if all(v for k, v in checks.items() if k.startswith("<=")) else "-") + (
                "S" if checks["no seed stuck"] else "-")
            versus = ""
            if variant != "adaptive" and "adaptive" in runs:
                mean, error = quality.paired(regret, runs["adaptive"])
                versus = "  ".join(f"{mean[i]:+.4f} ± {error[i]:.4f}{'*' if abs(mean[i]) > 2 * error[i] else ' '}"
                                   for i in (1, 2, 3))
            m = regret.mean(axis=0)
            print(f"{variant:30s} {m[1]:7.3f} {m[2]:7.3f} {m[3]:7.3f} {regret[:, -1].max():6.3f} "
                  f"{np.median(regret[:, -1]):7.3f} {goal:4s} {versus}")


if __name__ == "__main__":
    main()
