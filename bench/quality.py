"""Search quality: how close each search method gets to the best model, against the epochs it has spent.

Every method searches the same replayed learning curves (bench/replay_recipe.py: tables recorded with the shipped
recipe, and a synthetic function whose early ranking misleads) with the same budget of epochs, several seeds each.
Regret = (best known - best found) / (best known - worst), per benchmark: best and worst over every configuration
of a table (or 4,000 random ones of the synthetic function), each configuration counted at its best epoch; best
found = the best validation accuracy any trial reported so far, what the engine would export. Lower is better.

The methods: autotune with its defaults, with named samplers and schedulers, and the plain Optuna script a user
would write instead (`optuna_script`: TPE and Optuna's Hyperband pruner, one trial at a time, in this process).
"""
from __future__ import annotations

import math
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from common import BENCH, shared_ray

REPLAY = str(BENCH / "replay_recipe.py")
FRACTIONS = (0.10, 0.25, 0.50, 1.00)
# The budget: the epochs of this many trials run to their last epoch. 40 is 2,000 epochs of the synthetic curves, the
# budget of the comparison the measure was built to repeat (about 170 trials of an early-stopping search). A short
# budget, 10 (`bench/run.py --only quality --full-trainings 10`), judges the first quarter on 2.5 full trainings.
FULL_TRAININGS = 40
SPLIT_TRAININGS = 10  # the warm-start measure's budget, split in two halves
SYNTHETIC_SPACE = {"optimizer.lr": {"loguniform": [1e-4, 1e-1]}, "train.batch_size": {"choice": [16, 32, 64, 128, 256]},
                   "model.width": {"choice": [32, 64, 128, 256, 512]}, "model.depth": {"int": [1, 3]},
                   "model.dropout": {"uniform": [0.0, 0.5]}}
# Every engine search here runs one trial at a time, as the plain Optuna script does: a replayed epoch takes about
# 4 ms and a second worker process about 2 s to start, so with two workers the second trial joins late, or never on
# a short budget (its configuration drawn and lost). `two_at_a_time` shows what that does.
CONCURRENT = 1
# method -> the `search:` settings it adds (none: the engine's defaults); `optuna_script` is not the engine.
# The full run leaves out `two_at_a_time`, for time; it runs when named (`bench/run.py --only quality --methods ...`).
# v0.1's search (TPE, ASHA from epoch 1 with reduction factor 4, every trial told COMPLETE) is the `v0.1` variant
# of bench/simulate_brackets.py.
METHODS: dict[str, dict[str, Any] | None] = {
    "default": {},
    "tpe+asha": {"sampler": "tpe", "scheduler": {"asha": {"grace_period": 1, "reduction_factor": 4}}},
    "random+asha": {"sampler": "random", "scheduler": {"asha": {"grace_period": 1, "reduction_factor": 4}}},
    "random+fifo": {"sampler": "random", "scheduler": "fifo"},
    "hyperband": {"sampler": "tpe", "scheduler": "hyperband"},
    "two_at_a_time": {"max_concurrent": None},  # the default as many at a time as the 2 CPUs allow
    "optuna_script": None,
}


def available() -> list[str]:
    """The benchmarks there are: every recorded table in bench/curves/, and the synthetic function."""
    import replay_recipe

    return sorted(p.name.removesuffix(".json.gz") for p in replay_recipe.CURVES.glob("*.json.gz")) + ["synthetic"]


def _load(name: str) -> Any:
    import replay_recipe

    return replay_recipe.load_data({"table": name})


def search_space(name: str) -> dict[str, Any]:
    """The distributions a user would write for a benchmark (dotted key -> distribution): the table's learning
    rates as a log-uniform range, its batch sizes and widths as choices, depth as an integer range, dropout as a
    uniform range; the replay snaps each value to the nearest recorded one."""
    if name == "synthetic":
        return dict(SYNTHETIC_SPACE)
    grid = _load(name).grid
    space: dict[str, Any] = {}
    for key, values in grid.items():
        low, high = min(values), max(values)
        if len(values) == 1:
            space[key] = values[0]
        elif key == "optimizer.lr":
            space[key] = {"loguniform": [low, high]}
        elif key == "model.depth":
            space[key] = {"int": [int(low), int(high)]}
        elif key == "model.dropout":
            space[key] = {"uniform": [low, high]}
        else:
            space[key] = {"choice": list(values)}
    return space


def _nested(flat: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for key, value in flat.items():
        section, name = key.split(".")
        out.setdefault(section, {})[name] = value
    return out


def bounds(name: str) -> tuple[float, float]:
    """(best known, worst): over every configuration of a table, or 4,000 random ones of the synthetic
    function; each configuration at its best epoch."""
    data = _load(name)
    if name != "synthetic":
        best = np.nanmax(data.curves["val_accuracy"], axis=1)
        return float(best.max()), float(best.min())
    rng = np.random.default_rng(0)
    values = [float(data.curve(_nested(_sample(SYNTHETIC_SPACE, rng)))[0]["val_accuracy"].max())
              for _ in range(4000)]
    return max(values), min(values)


def resolution(name: str) -> float | None:
    """The regret of one validation sample on a recorded table (its smallest step of val accuracy over the best
    known minus the worst): regrets closer than this differ by less than one image. None for the synthetic one."""
    if name == "synthetic":
        return None
    values = np.unique(_load(name).curves["val_accuracy"])
    best, worst = bounds(name)
    return float(np.diff(values[np.isfinite(values)]).min() / (best - worst))


def _sample(space: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
    out = {}
    for key, dist in space.items():
        kind, args = next(iter(dist.items()))
        out[key] = {"loguniform": lambda a: float(math.exp(rng.uniform(math.log(a[0]), math.log(a[1])))),
                    "uniform": lambda a: float(rng.uniform(a[0], a[1])),
                    "int": lambda a: int(rng.integers(a[0], a[1] + 1)),
                    "choice": lambda a: a[int(rng.integers(len(a)))]}[kind](args)
    return out


def budget(name: str, full_trainings: int = FULL_TRAININGS) -> int:
    return full_trainings * _load(name).epochs


# ---------------------------------------------------------------------------------------------- the runs
def engine_space(name: str, method: str, seed: int, work: Path, limit: int) -> dict[str, Any]:
    """The replay search of benchmark `name` by `method`, `limit` epochs in all."""
    space = _nested(search_space(name))
    space["data"] = {"table": name}
    space["train"]["epochs"] = _load(name).epochs
    settings = METHODS[method] or {}
    return {
        "name": f"{name}-{method.replace('+', '_')}-s{seed}", "recipe": REPLAY, **space,
        "search": {"trials": limit, "epoch_budget": limit, "seed": seed, "keep_checkpoints": 1,
                   "max_concurrent": CONCURRENT, **settings},
        "export": {"dir": str(work / "models")},
    }


def run_engine(name: str, method: str, seed: int, work: Path, limit: int, *, keep: bool = False,
               **options: Any) -> list[tuple[float, float]]:
    """One replay search through `autotune.fit` (CONCURRENT trials at a time): every report's (time, val accuracy).
    `options` go to `fit`; `keep` keeps the run folder (work/runs/<space name>)."""
    import autotune
    from measures import histories

    result = autotune.fit(engine_space(name, method, seed, work, limit), storage=str(work / "runs"), num_cpus=2,
                          export=False, progress_seconds=0, **options)
    reports = [(row["t_report"], row["val_accuracy"]) for rows in histories(result) for row in rows]
    if not keep:
        shutil.rmtree(work / "runs", ignore_errors=True)
    return sorted(reports)


def warm_start_gain(*, benchmarks: list[str], seeds: list[int], full_trainings: int = SPLIT_TRAININGS
                    ) -> dict[str, Any]:
    """The second half of a split budget, warm against cold: a first search spends half the budget; a second
    one spends the other half, started cold (a new seed) or warm (`warm_start=` the first run: its trials are the
    sampler's history). Regret of the second search's own reports at FRACTIONS of its half."""
    runs = []
    with shared_ray(), tempfile.TemporaryDirectory(prefix="autotune-warm-", ignore_cleanup_errors=True) as tmp:
        work = Path(tmp)
        for name in benchmarks:
            best, worst = bounds(name)
            half = budget(name, full_trainings) // 2
            for seed in seeds:
                first = engine_space(name, "default", seed, work, half)["name"]
                run_engine(name, "default", seed, work, half, keep=True)
                for start in ("cold", "warm"):
                    options = {"warm_start": str(work / "runs" / first)} if start == "warm" else {}
                    reports = run_engine(name, "default", seed + 1000, work, half, keep=True, restart=True,
                                         **options)
                    runs.append({"benchmark": name, "start": start, "seed": seed,
                                 "regret": regrets(reports, half, best, worst)})
                    print(f"  {time.strftime('%H:%M:%S')} warm start {name} seed {seed} {start}: regret "
                          f"{' / '.join(f'{r:.3f}' for r in runs[-1]['regret'])}", flush=True)
                shutil.rmtree(work / "runs", ignore_errors=True)
    table = {name: {start: np.mean([r["regret"] for r in runs if r["benchmark"] == name and r["start"] == start],
                                   axis=0).tolist() for start in ("cold", "warm")} for name in benchmarks}
    return {"benchmarks": benchmarks, "seeds": seeds, "full_trainings": full_trainings, "concurrent": CONCURRENT,
            "runs": runs, "table": table}


def render_warm_start(r: dict[str, Any], info: dict[str, Any], command: str) -> str:
    """The warm-start section of docs/benchmarks.md."""
    lines = [
        "## Starting from what is known: the second half of a split budget, warm against cold",
        "",
        f"Command: `{command}` ({info['minutes']:.1f} minutes, {info['date']}; load average {info['load_start']:.2f} "
        f"at the start). Per benchmark and seed ({len(r['seeds'])} seeds): a first search with the defaults spends "
        f"half of a budget of {r['full_trainings']} full trainings (the quality measure's short one); a second one "
        "spends the other half, started cold (a new seed) or warm (`--warm-start` the first run: its trials are the "
        "sampler's history, the same new seed). Regret of the second search's own reports (best found by it alone) at "
        "10/25/50/100 % of its half, " + ("one trial at a time as in the quality measure" if r.get("concurrent", 2) == 1
                                          else "2 trials at a time") + ". Lower is better."
        + (" **Quick run**: its figures mean nothing." if info.get("quick") else ""),
        "",
        "| benchmark | start | 10 % | 25 % | 50 % | 100 % |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for name, starts in r["table"].items():
        for start, mean in starts.items():
            lines.append(f"| {name} | {start} | " + " | ".join(f"{v:.3f}" for v in mean) + " |")
    gains = [_warm_gain(r["runs"], name) for name in r["table"]]
    if any(gains):
        lines += ["", "Warm minus cold, paired by seed (± one standard error; negative: warm found better), at "
                  "10 / 25 / 50 / 100 %; a difference within about two standard errors is not told apart from noise "
                  "by these seeds:", "", *(gain for gain in gains if gain)]
    return "\n".join(lines)


def _warm_gain(runs: list[dict[str, Any]], name: str) -> str:
    """One line: benchmark `name`'s warm minus cold regret, paired by seed, with standard errors and how many seeds
    each way at 10 % (empty with fewer than 2 seeds)."""
    by_start = {start: {r["seed"]: r["regret"] for r in runs if r["benchmark"] == name and r["start"] == start}
                for start in ("warm", "cold")}
    seeds = sorted(by_start["warm"].keys() & by_start["cold"].keys())
    if len(seeds) < 2:
        return ""
    warm, cold = (np.asarray([by_start[start][s] for s in seeds]) for start in ("warm", "cold"))
    mean, error = paired(warm, cold)
    better, worse = int((warm[:, 0] < cold[:, 0]).sum()), int((warm[:, 0] > cold[:, 0]).sum())
    return (f"- {name}: " + " / ".join(f"{m:+.3f} ± {e:.3f}" for m, e in zip(mean, error))
            + f" (at 10 %: warm better on {better}, worse on {worse} of {len(seeds)} seeds)")


def run_optuna_script(name: str, seed: int, limit: int) -> list[tuple[float, float]]:
    """The plain Optuna script a user would write: TPE, Optuna's Hyperband pruner from 1 epoch to the last with
    reduction factor 3, one trial at a time, until the epoch budget is spent."""
    import optuna

    from autotune.errors import TrialError

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # no warning per diverged (failed) trial
    data, space, epochs = _load(name), search_space(name), _load(name).epochs
    reports: list[tuple[float, float]] = []

    def objective(trial: optuna.Trial) -> float:
        config = _nested({key: _suggest(trial, key, dist) for key, dist in space.items()})
        curve = data.curve(config)[0]["val_accuracy"]
        for epoch in range(1, epochs + 1):
            if epoch == data.diverges(config):
                raise TrialError("non-finite loss")
            reports.append((time.perf_counter(), float(curve[epoch - 1])))
            trial.report(float(curve[epoch - 1]), epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return float(curve[-1])

    def spent(study: optuna.Study, trial: Any) -> None:
        if len(reports) >= limit:
            study.stop()

    study = optuna.create_study(study_name=study_name(name, seed), direction="maximize",
                                sampler=optuna.samplers.TPESampler(seed=seed),
                                pruner=optuna.pruners.HyperbandPruner(min_resource=1, max_resource=epochs,
                                                                      reduction_factor=3))
    study.optimize(objective, n_trials=limit, callbacks=[spent], catch=(TrialError,))
    return reports


def study_name(name: str, seed: int) -> str:
    """The Optuna study's name for benchmark `name` and `seed`. Optuna's HyperbandPruner draws each trial's bracket
    from a hash of the study's name and the trial's number, and an unnamed study gets a random name: named, a
    seed's search repeats."""
    return f"{name}-seed{seed}"


def _suggest(trial: Any, key: str, dist: Any) -> Any:
    kind, args = next(iter(dist.items()))
    if kind == "loguniform":
        return trial.suggest_float(key, args[0], args[1], log=True)
    if kind == "uniform":
        return trial.suggest_float(key, args[0], args[1])
    if kind == "int":
        return trial.suggest_int(key, args[0], args[1])
    return trial.suggest_categorical(key, args)


def regrets(reports: list[tuple[float, float]], limit: int, best: float, worst: float) -> list[float]:
    """Regret after FRACTIONS of `limit` epochs: reports in time order, each one epoch spent."""
    found = np.maximum.accumulate([value for _, value in reports[:limit]]) if reports else np.array([])
    out = []
    for fraction in FRACTIONS:
        spent = max(1, int(round(fraction * limit)))
        value = found[min(spent, len(found)) - 1] if len(found) else worst
        out.append(float((best - value) / (best - worst)))
    return out


def quality(*, benchmarks: list[str], methods: list[str], seeds: list[int], full_trainings: int = FULL_TRAININGS
            ) -> dict[str, Any]:
    """Every method on every benchmark with every seed: regret at FRACTIONS of the budget, the epochs spent and
    the wall seconds of each search."""
    runs = []
    with shared_ray(), tempfile.TemporaryDirectory(prefix="autotune-quality-", ignore_cleanup_errors=True) as tmp:
        work = Path(tmp)
        for name in benchmarks:
            best, worst = bounds(name)
            limit = budget(name, full_trainings)
            for seed in seeds:
                for method in methods:
                    began = time.perf_counter()
                    reports = (run_optuna_script(name, seed, limit) if method == "optuna_script"
                               else run_engine(name, method, seed, work, limit))
                    runs.append({"benchmark": name, "method": method, "seed": seed,
                                 "regret": regrets(reports, limit, best, worst), "epochs": len(reports),
                                 "seconds": time.perf_counter() - began})
                    print(f"  {time.strftime('%H:%M:%S')} quality {name} {method} seed {seed}: regret "
                          f"{' / '.join(f'{r:.3f}' for r in runs[-1]['regret'])}, {len(reports)} epochs, "
                          f"{runs[-1]['seconds']:.1f} s", flush=True)
    return {"benchmarks": {name: {"budget": budget(name, full_trainings), "epochs": _load(name).epochs,
                                  "best": bounds(name)[0], "worst": bounds(name)[1]} for name in benchmarks},
            "methods": methods, "seeds": seeds, "full_trainings": full_trainings, "fractions": list(FRACTIONS),
            "concurrent": CONCURRENT, "runs": runs, "table": summarize(runs, benchmarks, methods)}


def summarize(runs: list[dict[str, Any]], benchmarks: list[str], methods: list[str]) -> dict[str, Any]:
    """benchmark -> method -> mean regret per fraction, the worst seed's and the median seed's at 100 %."""
    table: dict[str, Any] = {}
    for name in benchmarks:
        table[name] = {}
        for method in methods:
            mine = np.asarray([r["regret"] for r in runs if r["benchmark"] == name and r["method"] == method])
            if len(mine):
                table[name][method] = summary_row(mine)
    return table


def summary_row(regret: np.ndarray) -> dict[str, Any]:
    """One method's row (seeds x fractions of regret): the mean per fraction, the worst and median seed at 100 %."""
    return {"mean": regret.mean(axis=0).tolist(), "worst_final": float(regret[:, -1].max()),
            "median_final": float(np.median(regret[:, -1]))}


# ---------------------------------------------------------------------------------------------- Markdown
GOAL_METHODS = ("optuna_script", "random+fifo")  # the default must be at or below each, at 25, 50 and 100 %


def verdicts(table: dict[str, Any]) -> dict[str, dict[str, bool]]:
    """Per benchmark: whether the default's mean regret is at or below each GOAL_METHODS' at 25, 50 and 100 % of
    the budget, and whether no seed is stuck: its regret at 100 % at most twice the median seed's, or at most one
    validation sample (with a median of 0, twice the median would call a seed one image away stuck)."""
    out = {}
    for name, methods in table.items():
        default = methods.get("default")
        if default is None:
            continue
        out[name] = {f"<= {other}": all(default["mean"][i] <= methods[other]["mean"][i] + 1e-12 for i in (1, 2, 3))
                     for other in GOAL_METHODS if other in methods}
        floor = resolution(name) or 0.0
        out[name]["no seed stuck"] = default["worst_final"] <= max(2 * default["median_final"], floor) + 1e-12
    return out


def paired(mine: np.ndarray, theirs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard error of `mine - theirs`, seed by seed (rows: seeds, the same in both; columns: fractions
    of the budget)."""
    differences = np.asarray(mine, dtype=float) - np.asarray(theirs, dtype=float)
    return differences.mean(axis=0), differences.std(axis=0, ddof=1) / np.sqrt(len(differences))


def _paired_line(runs: list[dict[str, Any]], name: str) -> str:
    """The default minus each GOAL_METHODS' regret at 25, 50 and 100 %, paired by seed, with standard errors."""
    def by_seed(method: str) -> dict[int, list[float]]:
        return {r["seed"]: r["regret"] for r in runs if r["benchmark"] == name and r["method"] == method}

    mine, parts = by_seed("default"), []
    for other in GOAL_METHODS:
        theirs = by_seed(other)
        seeds = sorted(mine.keys() & theirs.keys())
        if len(seeds) < 2:
            continue
        mean, error = paired(np.asarray([mine[s] for s in seeds]), np.asarray([theirs[s] for s in seeds]))
        parts.append(f"{other} " + " / ".join(f"{mean[i]:+.4f} ± {error[i]:.4f}" for i in (1, 2, 3)))
    return f"Default minus, paired by seed (± one standard error), at 25 / 50 / 100 %: {'; '.join(parts)}" if parts \
        else ""


def _largest_gap(name: str, methods: dict[str, Any]) -> str:
    """Where the default trails a goal method most (at 25, 50 or 100 %), in regret and in validation samples."""
    gaps = [(methods["default"]["mean"][i] - methods[other]["mean"][i], FRACTIONS[i], other)
            for other in GOAL_METHODS if other in methods for i in (1, 2, 3)]
    if not gaps:  # a run of the default without a goal method (`--methods default`)
        return ""
    gap, fraction, other = max(gaps)
    if gap <= 1e-12:
        return ""
    step = resolution(name)
    samples = f" = {gap / step:.1f} validation samples" if step else ""
    return f". Largest gap: {gap:+.3f}{samples}, behind {other} at {fraction:.0%}"


def render(r: dict[str, Any], info: dict[str, Any], command: str) -> str:
    """The quality section of docs/benchmarks.md."""
    checks = verdicts(r["table"])
    met = bool(checks) and all(all(v.values()) for v in checks.values())
    lines = [
        "## Search quality: regret against epochs, every method on the same curves"
        + ("" if r["full_trainings"] == FULL_TRAININGS else f", a budget of {r['full_trainings']} full trainings"),
        "",
        f"Command: `{command}` ({info['minutes']:.1f} minutes, {info['date']}; load average {info['load_start']:.2f} "
        f"at the start, {info['load_end']:.2f} at the end). Seeds {r['seeds'][0]}..{r['seeds'][-1]} "
        f"({len(r['seeds'])}) per method and benchmark; each search gets the epochs of {r['full_trainings']} "
        "trials run to their last epoch (`search.epoch_budget`), "
        + ("one trial at a time like the plain Optuna script (a replayed epoch takes about 4 ms and a second worker "
           "about 2 s to start: two at a time, the second trial joins late; `two_at_a_time` is the default so). "
           if r.get("concurrent", 2) == 1 else "2 trials at a time; the plain Optuna script runs one at a time. ")
        + "Regret = (best known - best found) / (best known - worst), best found = the best validation "
        "accuracy reported so far. Lower is better. *One val sample*: the regret of one validation image on that "
        "table (its validation split is small); regrets closer than it differ by less than one image. *No seed "
        "stuck*: the worst seed's regret at 100 % is at most twice the median seed's, or at most one val sample. "
        "The goal compares means as they fall; under each table, the default's difference from each goal method, "
        "seed by seed, with its standard error: a difference within about two standard errors is not told apart "
        "from noise by these seeds."
        + (" **Quick run**: one seed and a tiny budget: it checks that the measure runs; its figures mean nothing."
           if info.get("quick") else ""),
        "",
        "| benchmark | curves | epochs per trial | budget (epochs) | best known | worst | one val sample |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for name, b in r["benchmarks"].items():
        source = "synthetic_curve (bench/replay_recipe.py)" if name == "synthetic" else f"bench/curves/{name}.json.gz"
        step = resolution(name)
        lines.append(f"| {name} | {source} | {b['epochs']} | {b['budget']} | {b['best']:.4f} | {b['worst']:.4f} | "
                     f"{'-' if step is None else f'{step:.4f}'} |")
    for name, methods in r["table"].items():
        lines += ["", f"### {name}", "", "| method | 10 % | 25 % | 50 % | 100 % | worst seed at 100 % | median seed |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        for method, row in methods.items():
            cells = " | ".join(f"{v:.3f}" for v in row["mean"])
            bold = "**" if method == "default" else ""
            lines.append(f"| {bold}{method}{bold} | {cells} | {row['worst_final']:.3f} | {row['median_final']:.3f} |")
        if name in checks:
            lines += ["", "Goal: " + ", ".join(f"{k}: {'met' if v else 'missed'}" for k, v in checks[name].items())
                      + _largest_gap(name, methods)]
        paired_line = _paired_line(r["runs"], name)
        if paired_line:
            lines += ["", paired_line + "."]
    lines += ["", f"Verdict: {'met' if met else 'missed'} (the default at or below the plain Optuna script and "
              "random search at 25, 50 and 100 % on every benchmark, and no seed stuck)."]
    return "\n".join(lines)
