"""The measures of the CPU suite; `bench/run.py` runs them and writes the figures into docs/benchmarks.md.

Each measure returns a dict of plain values (JSON-ready). Measures that must see a fresh process (memory of the
process tree, two trainings side by side) run this file as a child: `python bench/measures.py KIND 'JSON'`, which
prints one line `RESULT {...}`.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from itertools import pairwise
from pathlib import Path
from typing import Any

from autotune.space.types import SearchSettings
from common import BENCH, MNIST_DATA, TreeSampler, fmt, median, memory_mib, quiet_progress, ratio

CPUS = 2  # Ray's num_cpus in every search here, whatever the machine has: the figures compare 2-core setups
TIMED = str(BENCH / "timed_recipe.py")
TRIVIAL = str(BENCH / "trivial_recipe.py")
ASHA = "asha"  # Ray's ASHA as the engine sets it up by default: grace period 1, reduction factor 4
# strategy -> (sampler, scheduler); None: the engine's default (TPE, scheduler auto)
STRATEGIES = {"default": (None, None), "random+fifo": ("random", "fifo"), "random+asha": ("random", ASHA)}
GAP_POINTS, EPOCHS_GOAL, WALL_GOAL = 0.3, 0.35, 0.4  # measure 1's goal: within 0.3 points, <= 0.35x, <= 0.4x
OVERHEAD_GOAL = 1.10  # measure 2's goal: search wall <= 1.10 x standalone sum / concurrency
CHECKPOINT_EVERY = SearchSettings.checkpoint_every  # the engine's default; the scale goal is measured with it
SCALE_GOAL_S = 120.0  # measure 4's goal: 1,000 trivial trials x 10 epochs (10,000 reports) in about 2 minutes
TEN_K_RSS_MIB, TEN_K_SLOWDOWN = 600.0, 1.5  # 4b's goal: 10,000 trials, driver RSS < 600 MiB, last tenth <= 1.5x first


# ----------------------------------------------------------------------------------------------- spaces
def mlp_space(name: str, work: Path, *, sampler: str | None, scheduler: Any, seed: int, trials: int,
              epochs: int) -> dict:
    """A space where the search matters: SGD's learning rate over four decades, momentum, weight decay, width,
    depth, dropout and batch size of an MLP (fast on a CPU; 0.1 to 1 s an epoch of MNIST-10k)."""
    return {
        "name": name, "recipe": TIMED, "data": MNIST_DATA,
        "model": {"arch": "mlp", "width": {"choice": [32, 64, 128, 256, 512]}, "depth": {"int": [1, 3]},
                  "dropout": {"uniform": [0.0, 0.5]}},
        "optimizer": {"name": "sgd", "lr": {"loguniform": [1e-4, 1.0]}, "momentum": {"uniform": [0.0, 0.99]},
                      "weight_decay": {"loguniform": [1e-6, 1e-2]}},
        "train": {"epochs": epochs, "batch_size": {"choice": [32, 64, 128, 256]}, "device": "cpu"},
        "search": {"trials": trials, "seed": seed, **({"sampler": sampler} if sampler else {}),
                   **({"scheduler": scheduler} if scheduler else {})},
        "export": {"dir": str(work / "models" / name)},
    }


def fifo_space(name: str, work: Path, *, model: dict, seed: int, trials: int, epochs: int,
               concurrent: int | None = None, data: dict | None = None) -> dict:
    """`model` (a model section, may hold distributions) with SGD at a log-uniform learning rate; random + FIFO,
    so every trial runs every epoch and the same configurations can be trained again standalone."""
    return {
        "name": name, "recipe": TIMED, "data": data or MNIST_DATA, "model": model,
        "optimizer": {"name": "sgd", "lr": {"loguniform": [0.01, 0.2]}, "momentum": 0.9},
        "train": {"epochs": epochs, "batch_size": 128, "device": "cpu"},
        "search": {"trials": trials, "sampler": "random", "scheduler": "fifo", "seed": seed,
                   **({"max_concurrent": concurrent} if concurrent else {})},
        "export": {"dir": str(work / "models" / name)},
    }


def grid_space(name: str, work: Path, *, model: dict, lrs: list[float], epochs: int) -> tuple[dict, list[dict]]:
    """`model` (its searched keys as `grid`) with SGD over the learning rates `lrs`; grid sampler + FIFO: every
    configuration runs once, every epoch. Returns the space and its configurations (parameter -> value), known
    before the search, so that they can be trained standalone before or after it."""
    from itertools import product

    import autotune

    space = fifo_space(name, work, model=model, seed=0, trials=1, epochs=epochs)
    space["optimizer"]["lr"] = {"grid": lrs}
    space["search"]["sampler"] = "grid"
    params = autotune.load_space(space).params
    configs = [dict(zip((p.name for p in params), values)) for values in product(*(p.dist.labels for p in params))]
    space["search"]["trials"] = len(configs)
    return space, configs


# ----------------------------------------------------------------------------------------------- helpers
class Phases:
    """Wall-clock spans (time.time()) of the engine's phases inside `autotune.fit`, by wrapping its functions
    for the duration of a `with` block. Spans: preflight, ray_start, run_search, tuner_fit, export, summary,
    ray_shutdown."""

    TARGETS = (("autotune.api", "preflight", "preflight"), ("autotune.engine.search", "_init_ray", "ray_start"),
               ("autotune.engine.search", "run_search", "run_search"), ("autotune.api", "_export", "export"),
               ("autotune.api", "_write_summary", "summary"), ("autotune.engine.search", "shutdown", "ray_shutdown"))

    def __init__(self) -> None:
        self.spans: dict[str, tuple[float, float]] = {}
        self._undo: list[tuple[Any, str, Any]] = []

    def _wrap(self, label: str, function: Any) -> Any:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.time()
            try:
                return function(*args, **kwargs)
            finally:
                self.spans[label] = (start, time.time())
        return timed

    def __enter__(self) -> Phases:
        import importlib

        from ray import tune

        targets = [(importlib.import_module(module), name, label) for module, name, label in self.TARGETS]
        for owner, name, label in [*targets, (tune.Tuner, "fit", "tuner_fit")]:
            original = getattr(owner, name)
            self._undo.append((owner, name, original))
            setattr(owner, name, self._wrap(label, original))
        return self

    def __exit__(self, *exc: object) -> None:
        for owner, name, original in reversed(self._undo):
            setattr(owner, name, original)

    def seconds(self, label: str) -> float:
        start, end = self.spans.get(label, (0.0, 0.0))
        return end - start


def run_fit(space: dict, work: Path) -> tuple[Any, float, float, Phases]:
    """`autotune.fit(space)` with its own storage under `work`: (result, start time, wall seconds, phases)."""
    import autotune

    with Phases() as phases:
        began, clock = time.time(), time.perf_counter()
        result = autotune.fit(space, storage=str(work / "runs"), num_cpus=CPUS)
        wall = time.perf_counter() - clock
    return result, began, wall, phases


def histories(result: Any) -> list[list[dict[str, Any]]]:
    """Every trial's reports, from its result.json (one JSON object a line; none for a trial that never ran)."""
    out = []
    for path in result.trials["path"]:
        file = Path(path, "result.json")
        lines = file.read_text().splitlines() if file.is_file() else []
        out.append([json.loads(line) for line in lines if line.strip()])
    return out


def child(kind: str, args: dict[str, Any], env: dict[str, str] | None = None, *, inline: bool = False
          ) -> dict[str, Any]:
    """Run `python bench/measures.py KIND ARGS` in a fresh process; its RESULT line, parsed. Removes the
    Ray temp folder the child left (the engine names it /tmp/rt_<pid>). `inline` (quick runs): call it here."""
    if inline:
        return CHILDREN[kind](args)
    process = subprocess.Popen(
        [sys.executable, str(Path(__file__)), kind, json.dumps(args)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})},
    )
    out, err = process.communicate()
    shutil.rmtree(f"/tmp/rt_{process.pid}", ignore_errors=True)
    for line in reversed(out.splitlines()):
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    raise RuntimeError(f"bench child {kind} {args} failed (exit {process.returncode}):\n{err[-3000:]}")


def _log(message: str) -> None:
    print(f"  {time.strftime('%H:%M:%S')} {message}", flush=True)


# ------------------------------------------------------------------------------- 1. search efficiency
def search_efficiency(work: Path, *, seeds: list[int], trials: int, epochs: int, target: float) -> dict[str, Any]:
    """The default search vs random+FIFO vs random+ASHA on MNIST-10k: same trials and max epochs, one search each per
    seed (the order of the three rotates with the seed). Per run: best val and test accuracy, trial-epochs, wall
    time of the whole `fit` (Ray start and export included), and the time until a trial first reached `target`."""
    runs = []
    names = list(STRATEGIES)
    for seed in seeds:
        for name in names[seed % 3:] + names[:seed % 3]:
            sampler, scheduler = STRATEGIES[name]
            space = mlp_space(f"{name.replace('+', '_')}_s{seed}", work, sampler=sampler, scheduler=scheduler,
                              seed=seed, trials=trials, epochs=epochs)
            result, began, wall, _ = run_fit(space, work)
            timeline = sorted((row["t_report"] - began, row.get("val_accuracy", 0.0))
                              for rows in histories(result) for row in rows)
            runs.append({
                "strategy": name, "seed": seed,
                "best_val": float(result.trials["val_accuracy"].max()),
                "test": result.test_metrics.get("test_accuracy"),
                "trial_epochs": int(result.trials["epochs"].sum()),
                "errors": result.num_errors,
                "wall_s": wall, "search_s": result.seconds,
                "to_target_s": _first_reach(timeline, target)[1],
                "timeline": timeline,
            })
            _log(f"search {name} seed {seed}: best val {runs[-1]['best_val']:.4f}, "
                 f"{runs[-1]['trial_epochs']} trial-epochs, {wall:.1f} s")
    per_seed = []
    for seed in seeds:
        by = {r["strategy"]: r for r in runs if r["seed"] == seed}
        tpe, fifo = by["default"], by["random+fifo"]
        bar = fifo["best_val"] - GAP_POINTS / 100  # random+FIFO's best, less the 0.3 points the goal allows
        reach = {name: _first_reach(run["timeline"], bar) for name, run in by.items()}
        per_seed.append({
            "seed": seed,
            "bar": bar,
            "val_gap_points": 100 * (tpe["best_val"] - fifo["best_val"]),
            "epoch_ratio": tpe["trial_epochs"] / fifo["trial_epochs"],
            "wall_ratio": tpe["wall_s"] / fifo["wall_s"],
            "search_ratio": tpe["search_s"] / fifo["search_s"],
            # the anytime reading: what the default had spent when it first came within 0.3 points of
            # random+FIFO's final best, against everything random+FIFO spent
            "reach": {name: {"trial_epochs": epochs_, "s": seconds} for name, (epochs_, seconds) in reach.items()},
            "reach_epoch_ratio": ratio(reach["default"][0], fifo["trial_epochs"]),
            "reach_wall_ratio": ratio(reach["default"][1], fifo["wall_s"]),
        })
    gap, epochs_r, wall_r = (median(s[k] for s in per_seed) for k in ("val_gap_points", "epoch_ratio", "wall_ratio"))
    reach_epochs = median(s["reach_epoch_ratio"] for s in per_seed)
    reach_wall = median(s["reach_wall_ratio"] for s in per_seed)
    reached_all = all(s["reach_epoch_ratio"] is not None for s in per_seed)
    return {
        "seeds": seeds, "trials": trials, "max_epochs": epochs, "target": target, "runs": runs,
        "per_seed": per_seed,
        "summary": {name: {key: median(r[key] for r in runs if r["strategy"] == name)
                           for key in ("best_val", "test", "trial_epochs", "wall_s", "search_s", "to_target_s")}
                    | {"reached": sum(r["to_target_s"] is not None for r in runs if r["strategy"] == name)}
                    for name in STRATEGIES},
        "val_gap_points": gap, "epoch_ratio": epochs_r, "wall_ratio": wall_r,
        "search_ratio": median(s["search_ratio"] for s in per_seed),
        "reach_epoch_ratio": reach_epochs, "reach_wall_ratio": reach_wall,
        "met": gap >= -GAP_POINTS and epochs_r <= EPOCHS_GOAL and wall_r <= WALL_GOAL,
        "met_anytime": reached_all and reach_epochs <= EPOCHS_GOAL and reach_wall <= WALL_GOAL,
    }


def _first_reach(timeline: list[tuple[float, float]], bar: float) -> tuple[int | None, float | None]:
    """(trial-epochs reported so far, seconds since the start of `fit`) at the first report of a val accuracy
    >= `bar`; (None, None) when no report reached it. `timeline`: every report's (seconds, val accuracy)."""
    for count, (seconds, value) in enumerate(sorted(timeline), start=1):
        if value >= bar:
            return count, seconds
    return None, None


# ------------------------------------------------------------------------------------ 2. engine overhead
def _trial_spans(hist: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Per trial: worker pid, start, end, seconds inside report calls. The last report's duration is not
    recorded (nothing reports after it): the median of the trial's others stands in for it."""
    spans = []
    for rows in hist:
        reports = [r["report_s_prev"] for r in rows[1:]]
        last = median(reports) or 0.0
        spans.append({"pid": rows[0]["pid"], "process": rows[0]["t_process"], "start": rows[0]["t_start"],
                      "end": rows[-1]["t_report"] + last, "report_s": sum(reports) + last})
    return spans


def breakdown(spans: dict[str, tuple[float, float]], began: float, wall: float, hist: list[list[dict[str, Any]]],
              standalone_s: float, concurrency: int) -> dict[str, float]:
    """The search's wall time minus the ideal (standalone sum / concurrency), in parts that add up to it.
    `spans`: the `Phases` spans of the `fit`.

    Trial slots (concurrency x the tuner's wall time) are either busy in a trial or idle; busy time splits
    into report calls and the rest, which is compared with the same configurations' standalone time."""
    tune_start, tune_end = spans["tuner_fit"]
    trials = _trial_spans(hist)
    until_process = boot = launch = 0.0
    for pid in {t["pid"] for t in trials}:
        mine = sorted((t for t in trials if t["pid"] == pid), key=lambda t: t["start"])
        created = max(mine[0]["process"], tune_start)  # a worker Ray started before the search counts from then
        until_process += created - tune_start
        boot += mine[0]["start"] - created
        launch += sum(b["start"] - a["end"] for a, b in pairwise(mine))
    busy = sum(t["end"] - t["start"] for t in trials)
    reporting = sum(t["report_s"] for t in trials)
    tail = concurrency * (tune_end - tune_start) - until_process - boot - launch - busy
    teardown = tune_end - max(t["end"] for t in trials)  # wall seconds after the last trial, all slots idle
    pre, init = spans["preflight"], spans["ray_start"]
    end_export = spans.get("export", (tune_end, tune_end))
    parts = {
        "load space and data": pre[0] - began,
        "preflight (dry-build the models)": pre[1] - pre[0],
        "run dir, searcher, scheduler": init[0] - pre[1],
        "Ray start": init[1] - init[0],
        "trainable and Tuner setup (data into the object store)": tune_start - init[1],
        "Tuner start until each worker process exists": until_process / concurrency,
        "worker boot (imports ray, torch, the recipe; gets the data)": boot / concurrency,
        "trial launch (between trials on a reused worker)": launch / concurrency,
        "reporting (metrics, and writing and copying the checkpoints kept, in report)": reporting / concurrency,
        "training slower than standalone (CPU taken by the driver and Ray)": (busy - reporting - standalone_s) / concurrency,
        "uneven finish (a slot idle while the other's last trial runs)": tail / concurrency - teardown,
        "Tuner teardown after the last trial": teardown,
        "results (trial table, best checkpoint)": end_export[0] - tune_end,
        "export (TorchScript, test evaluation, model card)": end_export[1] - end_export[0],
        "summary and Ray shutdown": began + wall - end_export[1],
    }
    return {key: round(value, 3) for key, value in parts.items()}


def _fit_child(args: dict[str, Any]) -> dict[str, Any]:
    """One `autotune.fit` in this fresh process (as `autotune run` runs it): its wall time, the engine's phases,
    every trial's reports and parameters, and the CPU used by each role of process meanwhile."""
    with TreeSampler(os.getpid(), 0.5, memory=False) as tree:
        result, began, wall, phases = run_fit(args["space"], Path(args["work"]))
    params = [{k[2:]: v for k, v in row.items() if k.startswith("p:")} for row in result.trials.to_dict("records")]
    return {"began": began, "wall_s": wall, "spans": phases.spans, "hist": histories(result), "params": params,
            "cpu_s": {k: round(v, 1) for k, v in tree.cpu_by_role().items()}}


def _train_cli_child(args: dict[str, Any]) -> dict[str, Any]:
    """`autotune train SPACE` in this fresh process, exactly as the command runs (its output included); the
    seconds inside the recipe's `train()` (the training alone, without imports, data loading or the test)."""
    import torch

    from autotune import recipes
    from autotune.cli import main

    recipe = recipes.load(args["recipe"])
    original, spent = recipe.train, []

    def timed(*a: Any, **k: Any) -> None:
        clock = time.perf_counter()
        original(*a, **k)
        spent.append(time.perf_counter() - clock)

    before = torch.get_num_threads()
    torch.set_num_threads(args["threads"])  # what OMP_NUM_THREADS gives the command in its own process
    recipe.train = timed
    try:
        code = main(["train", args["space_file"]])
    finally:
        recipe.train = original
        torch.set_num_threads(before)
    if code != 0:
        raise RuntimeError(f"autotune train {args['space_file']} exited {code}")
    return {"train_s": sum(spent)}


def _alone(space: dict, values: dict[str, Any], path: Path, *, inline: bool) -> tuple[float, float]:
    """One configuration of `space` through `autotune train`, 1 torch thread (a trial's CPU share), in a fresh
    process: (the command's wall seconds, the seconds of the recipe's train() inside it)."""
    import yaml

    import autotune

    config = autotune.load_space(space).config(values)
    path.write_text(yaml.safe_dump({"name": path.stem, "recipe": space["recipe"], **config}, sort_keys=False))
    clock = time.perf_counter()
    out = child("train_cli", {"space_file": str(path), "recipe": space["recipe"], "threads": 1},
                {"OMP_NUM_THREADS": "1"}, inline=inline)
    return time.perf_counter() - clock, out["train_s"]


def engine_overhead(work: Path, *, repeats: int, epochs: int, model: dict, lrs: list[float],
                    inline: bool = False) -> dict[str, Any]:
    """The same configurations (a grid: `model` x `lrs`) through `autotune.fit` (2 concurrent trials of 1 CPU)
    and standalone through `autotune train` one after another (1 torch thread each), every command in a fresh
    process; the order of the two sides alternates between repeats, so that a machine whose speed drifts favours
    neither. Two ratios, both against standalone sum / 2: `process_ratio` compares the commands' wall times
    (Python start, imports, data loading and exit included on both sides: the goal's measure, <= 1.10); `ratio`
    compares the `fit` call alone with the recipe's train() calls alone (what the engine itself adds). `inline`
    (quick runs): in this process."""
    concurrency = CPUS  # resources.cpu = 1
    reps = []
    for repeat in range(repeats):
        space, configs = grid_space(f"overhead_r{repeat}", work, model=model, lrs=lrs, epochs=epochs)

        def search() -> tuple[dict[str, Any], float]:
            clock = time.perf_counter()
            out = child("fit", {"space": space, "work": str(work)}, inline=inline)
            return out, time.perf_counter() - clock

        def standalone() -> list[tuple[float, float]]:
            return [_alone(space, values, work / f"alone_r{repeat}_{i}.yaml", inline=inline)
                    for i, values in enumerate(configs)]

        if repeat % 2:
            alone = standalone()
            fit, fit_process = search()
        else:
            fit, fit_process = search()
            alone = standalone()
        commands, trains = sum(a[0] for a in alone), sum(a[1] for a in alone)
        wall, ideal, process_ideal = fit["wall_s"], trains / concurrency, commands / concurrency
        search_s = fit["spans"]["tuner_fit"][1] - fit["spans"]["tuner_fit"][0]
        reps.append({
            "order": "standalone first" if repeat % 2 else "search first",
            "wall_s": wall, "search_s": search_s, "standalone_sum_s": trains, "ideal_s": ideal,
            "ratio": wall / ideal, "search_ratio": search_s / ideal,
            "process_wall_s": fit_process, "commands_sum_s": commands, "process_ideal_s": process_ideal,
            "process_ratio": fit_process / process_ideal,
            "trials": len(fit["hist"]), "epochs": sum(len(rows) for rows in fit["hist"]),
            "parts": breakdown(fit["spans"], fit["began"], wall, fit["hist"], trains, concurrency),
            "cpu_s": fit["cpu_s"],
        })
        _log(f"overhead repeat {repeat}: `fit` {wall:.1f} s vs train() sum {trains:.1f} s / {concurrency}, ratio "
             f"{wall / ideal:.2f}; commands: run {fit_process:.1f} s vs train {commands:.1f} s / {concurrency}, "
             f"ratio {fit_process / process_ideal:.2f}")
    chosen = sorted(reps, key=lambda r: r["ratio"])[len(reps) // 2]  # the median repeat's breakdown
    parts = chosen["parts"]
    largest = max(parts, key=lambda k: parts[k])
    fixed = sum(v for k, v in parts.items() if not _per_trial(k))
    per_trial = sum(v for k, v in parts.items() if _per_trial(k)) / chosen["trials"]
    ratio_, process_ratio = median(r["ratio"] for r in reps), median(r["process_ratio"] for r in reps)
    return {
        "per_trial_share": per_trial / (chosen["ideal_s"] / chosen["trials"]),
        "repeats": reps, "trials": chosen["trials"], "epochs": epochs, "concurrency": concurrency,
        "cpu_s": chosen["cpu_s"],
        "chosen_wall_s": chosen["wall_s"],
        "ratio": ratio_, "search_ratio": median(r["search_ratio"] for r in reps), "parts": parts,
        "process_ratio": process_ratio,
        "largest": largest, "fixed_s": fixed, "per_trial_s": per_trial,
        "met": process_ratio <= OVERHEAD_GOAL, "met_in_process": ratio_ <= OVERHEAD_GOAL,
    }


def _per_trial(part: str) -> bool:
    return part.startswith(("trial launch", "reporting", "training slower"))


# ---------------------------------------------------------------------------------- 3. data loaded once
def _memory_child(args: dict[str, Any]) -> dict[str, Any]:
    """One search in this fresh process, the memory of the whole process tree sampled throughout. Its first
    `concurrent` trials start training together (timed_recipe's START_TOGETHER): two trials whose workers finished
    starting a few seconds apart would otherwise barely overlap on a short quick run, and the peak would be one
    trial's."""
    from timed_recipe import START_TOGETHER

    work = Path(tempfile.mkdtemp(prefix="autotune-bench-mem-"))
    (work / "started").mkdir()
    START_TOGETHER.write_text(f"{work / 'started'}:{args['concurrent']}")
    try:
        space = fifo_space("memory", work, model=args["model"], seed=0, trials=args["trials"], epochs=args["epochs"],
                           concurrent=args["concurrent"], data=args["data"])
        with TreeSampler(os.getpid(), 0.5) as memory:
            result, _, wall, phases = run_fit(space, work)
        hist = histories(result)
        overlap = _overlap(hist)
    finally:
        START_TOGETHER.unlink(missing_ok=True)
        shutil.rmtree(work, ignore_errors=True)
    trials_rss, trials_pss = memory.peak_between(*phases.spans["tuner_fit"])
    return {"peak_rss_mib": memory.peak_rss, "peak_pss_mib": memory.peak_pss, "processes": memory.peak_processes,
            "trials_peak_rss_mib": trials_rss, "trials_peak_pss_mib": trials_pss, "wall_s": wall,
            "worker_anon_mib": median(max(r["anon_mib"] for r in rows) for rows in hist),
            "worker_pss_mib": median(max(r["pss_mib"] for r in rows) for rows in hist),
            "max_overlap": overlap}


def _overlap(hist: list[list[dict[str, Any]]]) -> int:
    """The most trials that ran at the same moment."""
    events = sorted([(rows[0]["t_start"], 1) for rows in hist] + [(rows[-1]["t_report"], -1) for rows in hist])
    most = running = 0
    for _, step in events:
        running += step
        most = max(most, running)
    return most


def data_sharing(*, variants: dict[str, dict[str, Any]], trials: int, epochs: int, model: dict,
                 repeats: int, inline: bool = False) -> dict[str, Any]:
    """Peak memory (RSS and PSS summed over driver + Ray + workers) of the same search with 1 and with 2
    concurrent trials, each in a fresh process. A variant names a dataset and, optionally, environment
    variables (e.g. Ray's zero-copy tensors). Goal on the first variant: 2 trials <= 1.3 x 1 trial."""
    out: dict[str, Any] = {}
    for name, variant in variants.items():
        runs: dict[int, list[dict[str, Any]]] = {1: [], 2: []}
        for _ in range(repeats):
            for concurrent in (1, 2):
                args = {"trials": trials, "epochs": epochs, "model": model, "concurrent": concurrent,
                        "data": variant["data"]}
                runs[concurrent].append(child("memory", args, variant.get("env"), inline=inline))
        one, two = ({k: median(r[k] for r in runs[c]) for k in runs[c][0]} for c in (1, 2))
        out[name] = {"one": one, "two": two, "rss_ratio": ratio(two["peak_rss_mib"], one["peak_rss_mib"]),
                     "pss_ratio": ratio(two["peak_pss_mib"], one["peak_pss_mib"]),
                     "second_trial_pss_mib": two["trials_peak_pss_mib"] - one["trials_peak_pss_mib"],
                     "second_trial_rss_mib": two["trials_peak_rss_mib"] - one["trials_peak_rss_mib"],
                     "env": variant.get("env", {}), "data": variant["data"]}
        _log(f"memory {name}: 1 trial {one['peak_pss_mib']:.0f} MiB, 2 trials {two['peak_pss_mib']:.0f} MiB (PSS)")
    first = next(iter(out.values()))
    return {"variants": out, "trials": trials, "epochs": epochs, "repeats": repeats,
            "met": first["pss_ratio"] <= 1.3}  # PSS: summed RSS counts each shared page once per process


# -------------------------------------------------------------------------------------- 4. driver scale
def _scale_child(args: dict[str, Any]) -> dict[str, Any]:
    """`trials` trials of `epochs` epochs of the trivial recipe in this fresh process; the driver's own RSS is
    sampled against the number of trials started (trial folders made so far); the checkpoint folders the
    trials kept are counted at the end."""
    work = Path(tempfile.mkdtemp(prefix="autotune-bench-scale-"))
    space = {"name": "scale", "recipe": TRIVIAL, "model": {"x": {"uniform": [0.0, 1.0]}},
             "train": {"epochs": args["epochs"]},
             "search": {"trials": args["trials"], "sampler": args["sampler"], "scheduler": "fifo", "seed": 0,
                        "checkpoint_every": args.get("checkpoint_every", CHECKPOINT_EVERY)},
             "export": {"dir": str(work / "models" / "scale")}}
    run_dir = work / "runs" / "scale"
    samples: list[tuple[int, float]] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(0.5):
            try:  # os.listdir, not a glob: at 10,000 folders a glob holds the driver's GIL for tens of ms
                started = sum(1 for name in os.listdir(run_dir) if name.startswith("trial_"))
            except FileNotFoundError:
                started = 0
            samples.append((started, memory_mib(os.getpid())[0]))

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        result, _, wall, phases = run_fit(space, work)
        starts = sorted(rows[0]["t_start"] for rows in histories(result))
        checkpoints = sum(1 for _ in run_dir.glob("trial_*/checkpoint_*"))
    finally:
        stop.set()
        watcher.join()
        shutil.rmtree(work, ignore_errors=True)
    tenth = max(1, len(starts) // 10)
    gaps = [b - a for a, b in pairwise(starts)]
    return {"trials": len(starts), "epochs": args["epochs"],
            "checkpoint_every": args.get("checkpoint_every", CHECKPOINT_EVERY), "wall_s": wall, "search_s": phases.seconds("tuner_fit"),
            "checkpoints": checkpoints,
            "first_tenth_s_per_trial": sum(gaps[:tenth]) / tenth, "last_tenth_s_per_trial": sum(gaps[-tenth:]) / tenth,
            "rss_kib_per_trial": _slope([(n, rss) for n, rss in samples if n >= tenth]) * 1024,
            "rss_start_mib": samples[0][1] if samples else None, "rss_end_mib": samples[-1][1] if samples else None,
            "rss_at_mib": {str(m): next((rss for n, rss in samples if n >= m), None) for m in args.get("rss_at", [])}}


def _slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of y over x (0 when there are fewer than two distinct x)."""
    if len({x for x, _ in points}) < 2:
        return 0.0
    mx, my = (sum(p[i] for p in points) / len(points) for i in (0, 1))
    return sum((x - mx) * (y - my) for x, y in points) / sum((x - mx) ** 2 for x, _ in points)


def driver_scale(*, runs: list[dict[str, Any]], inline: bool = False) -> dict[str, Any]:
    """Searches of the trivial recipe (a one-file checkpoint offered with each report), one per `runs` entry
    (sampler, trials, epochs, optionally checkpoint_every), random or TPE and FIFO, 2 trials at a time, each in a
    fresh process: the `fit`
    wall time, seconds per trial at the start and at the end, milliseconds per report, checkpoints kept, and
    driver RSS growth per trial. A run with `repeats` is measured that many times, each in a fresh process, and its
    median `fit` wall time's run stands for it (of an even count, the slower middle one; every run's wall is
    kept). The goal is the largest run's `fit` wall time."""
    out = []
    for run in runs:
        tries = sorted((child("scale", run, inline=inline) for _ in range(run.get("repeats", 1))),
                       key=lambda t: t["wall_s"])
        r = tries[len(tries) // 2]  # the median `fit` wall's run: the same search's wall time varies from run to run
        r.update(sampler=run["sampler"], reports=r["trials"] * r["epochs"], walls_s=[t["wall_s"] for t in tries])
        r.update(s_per_trial=r["search_s"] / r["trials"], ms_per_report=1000 * r["search_s"] / r["reports"])
        out.append(r)
        _log(f"scale {run['sampler']} {r['trials']} x {r['epochs']}, checkpoint_every {r['checkpoint_every']}: "
             f"fit {r['wall_s']:.1f} s{walls_note(r)}, "
             f"{r['ms_per_report']:.1f} ms/report, {r['checkpoints']} checkpoints kept, "
             f"{r['rss_kib_per_trial']:.0f} KiB driver RSS per trial")
    goal = max((r for r in out if r["checkpoint_every"] == CHECKPOINT_EVERY), key=lambda r: r["reports"])
    return {"runs": out, "goal_run": out.index(goal), "met": goal["wall_s"] <= SCALE_GOAL_S}


def walls_note(run: dict[str, Any]) -> str:
    """` (median of N runs: a, b, c s)` for a scale run measured more than once, else nothing."""
    walls = run.get("walls_s", [])
    return f" (median of {len(walls)} runs: {', '.join(f'{w:.1f}' for w in walls)} s)" if len(walls) > 1 else ""


def ten_thousand(*, trials: int, rss_at: list[int], inline: bool = False) -> dict[str, Any]:
    """One search of `trials` trivial trials of one epoch (random sampler, FIFO, 2 at a time) in a fresh process:
    seconds per trial in the first and the last tenth, and the driver's RSS when `rss_at` trials had started.
    The goal: RSS under TEN_K_RSS_MIB at the end, and the last tenth at most TEN_K_SLOWDOWN x the first."""
    r = child("scale", {"sampler": "random", "trials": trials, "epochs": 1, "rss_at": rss_at}, inline=inline)
    r.update(s_per_trial=r["search_s"] / r["trials"],
             slowdown=ratio(r["last_tenth_s_per_trial"], r["first_tenth_s_per_trial"]))
    peak = max((v for v in r["rss_at_mib"].values() if v is not None), default=r["rss_end_mib"])
    _log(f"ten thousand: {r['trials']} trials, fit {r['wall_s']:.1f} s, s/trial first tenth "
         f"{r['first_tenth_s_per_trial']:.3f}, last tenth {r['last_tenth_s_per_trial']:.3f}, driver RSS "
         + ", ".join(f"{fmt(v, '.0f')} MiB at {int(k):,}" for k, v in r["rss_at_mib"].items()))
    return {"run": r, "met": bool(peak is not None and peak < TEN_K_RSS_MIB and r["slowdown"] is not None
                                 and r["slowdown"] <= TEN_K_SLOWDOWN)}


# --------------------------------------------------------------------------------- 5. concurrency choice
def _throughput_child(args: dict[str, Any]) -> dict[str, Any]:
    """Train one configuration standalone with `threads` torch threads; median samples/s of epochs 2.."""
    import torch
    from autotune.recipes import image_classification as recipe

    torch.set_num_threads(args["threads"])
    data = recipe.load_data(MNIST_DATA)
    reports: list[dict[str, float]] = []
    config = {"model": args["model"], "train": {"epochs": args["epochs"], "batch_size": 128, "device": "cpu"},
              "optimizer": {"name": "sgd", "lr": 0.05}}
    recipe.train(config, lambda metrics, _dir: reports.append(metrics), data=data)
    steady = reports[1:] or reports
    return {"samples_per_second": median(m["samples_per_second"] for m in steady),
            "epoch_seconds": median(m["epoch_seconds"] for m in steady)}


def _side_by_side(processes: int, threads: int, args: dict[str, Any]) -> float:
    """Aggregate training samples/s of `processes` trainings run at once, `threads` torch threads each."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(processes) as pool:
        results = list(pool.map(lambda _: child("throughput", {**args, "threads": threads}), range(processes)))
    return sum(r["samples_per_second"] for r in results)


def concurrency(*, repeats: int, epochs: int, model: dict[str, Any]) -> dict[str, Any]:
    """1 training x 2 threads vs 2 trainings x 1 thread at once (each in its own process, as Ray runs trials),
    alternated `repeats` times: aggregate training samples/s. The engine gives a trial int(resources.cpu)
    threads, so `resources.cpu: 1` (the default) is 2 x 1 on 2 cores and `cpu: 2` is 1 x 2."""
    args = {"epochs": epochs, "model": model}
    runs: dict[str, list[float]] = {"one_by_two": [], "two_by_one": [], "one_by_one": []}
    for _ in range(repeats):
        runs["one_by_two"].append(_side_by_side(1, 2, args))
        runs["two_by_one"].append(_side_by_side(2, 1, args))
        runs["one_by_one"].append(_side_by_side(1, 1, args))  # one core idle: what two side by side could reach
    a, b, alone = (median(runs[k]) for k in ("one_by_two", "two_by_one", "one_by_one"))
    _log(f"concurrency: 1x2 {a:,.0f} samples/s, 2x1 {b:,.0f} samples/s, 1x1 alone {alone:,.0f} samples/s")
    return {"one_by_two": a, "two_by_one": b, "one_by_one": alone, "ratio": ratio(b, a),
            "side_by_side_efficiency": ratio(b, 2 * alone), "thread_efficiency": ratio(a, 2 * alone),
            "better": "2 x 1" if b >= a else "1 x 2", "runs": runs, "model": model, "epochs": epochs,
            "repeats": repeats}


CHILDREN = {"memory": _memory_child, "scale": _scale_child, "throughput": _throughput_child, "fit": _fit_child,
            "train_cli": _train_cli_child}

if __name__ == "__main__":
    import warnings

    warnings.simplefilter("ignore")
    quiet_progress()
    outcome = CHILDREN[sys.argv[1]](json.loads(sys.argv[2]))
    print("RESULT " + json.dumps(outcome))
