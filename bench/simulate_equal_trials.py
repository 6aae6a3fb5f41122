"""Measure 1's comparison (bench/measures.py `search_efficiency`) on a recorded table, over many seeds: every method
gets the same number of trials of at most MAX_T epochs, as measure 1 gives each search 30 trials of 9 epochs on
MNIST-10k. No Ray: the searches of bench/simulate_brackets.py, the recorded curves cut at MAX_T.

    python bench/simulate_equal_trials.py TRIALS MAX_T SEEDS VARIANTS BENCHMARKS
    python bench/simulate_equal_trials.py 30 9 99 adaptive,nostop mnist_mlp

Per variant, against random search (every trial to MAX_T, on the same seeds): the mean best value found minus
random search's, in points, with its standard error; the trial-epochs spent; and measure 1's anytime reading, the
trial-epochs until a report came within 0.3 points of random search's best, over all random search spent. Measure 1
reports the median of 3 seeds: the spread of that median over consecutive blocks of 3 seeds is printed too.
"""
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import simulate_brackets  # noqa: E402
from common import arguments  # noqa: E402
from measures import GAP_POINTS  # noqa: E402

BLOCK = 3  # measure 1's seeds


def reach(values: list[float], bar: float) -> int | None:
    """The reports spent when one first reached `bar`; None if none did."""
    return next((count for count, value in enumerate(values, start=1) if value >= bar), None)


def compare(name: str, variant: str, seeds: range, trials: int, max_t: int) -> str:
    """One line: `variant` against random search on `seeds`."""
    runs = {v: [[value for _, value in simulate_brackets.search(name, v, seed, 0, trials=trials, max_t=max_t)]
                for seed in seeds] for v in ("random", variant)}
    base, other = runs["random"], runs[variant]
    gap = 100 * np.asarray([max(o) - max(b) for o, b in zip(other, base)])
    ratios = np.asarray([(reach(o, max(b) - GAP_POINTS / 100) or np.inf) / len(b) for o, b in zip(other, base)])
    blocks = [float(np.median(ratios[i:i + BLOCK])) for i in range(0, len(ratios) - BLOCK + 1, BLOCK)]
    return (f"{name:10s} {variant:9s} best {np.mean([max(o) for o in other]):.4f} "
            f"({gap.mean():+.3f} ± {gap.std(ddof=1) / np.sqrt(len(gap)):.3f} points against random search), "
            f"trial-epochs {np.mean([len(o) for o in other]):.0f} against {np.mean([len(b) for b in base]):.0f}; "
            f"to within {GAP_POINTS} points of random search's best: median {_ratio(np.median(ratios))}, "
            f"medians of {BLOCK} seeds {_ratio(np.percentile(blocks, 10, method='nearest'))} to "
            f"{_ratio(np.percentile(blocks, 90, method='nearest'))} (10th to 90th percentile); "
            f"never within it: {np.isinf(ratios).sum()} of {len(ratios)} seeds")


def _ratio(value: float) -> str:
    return "never" if np.isinf(value) else f"{value:.2f}x"


def main() -> None:
    given = arguments(__doc__, 5)
    trials, max_t, seeds = int(given[0]), int(given[1]), range(int(given[2]))
    for name in given[4].split(","):
        for variant in given[3].split(","):
            print(compare(name, variant, seeds, trials, max_t), flush=True)


if __name__ == "__main__":
    main()
