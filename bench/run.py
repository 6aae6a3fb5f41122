"""The CPU benchmark suite: the engine against its baselines, side by side, in one invocation.

    python bench/run.py                 # every measure (the suite about 33 minutes on 2 cores, 12 of them the
                                        # scale measure, 6 scale_10k; quality about 2 hours, warm_start 6 minutes);
                                        # rewrites their sections of docs/benchmarks.md
    python bench/run.py --quick         # a smoke run of every measure (under a minute); prints, writes no doc
    python bench/run.py --only search,overhead --no-write --json out.json
    python bench/run.py --only quality  # search quality on replayed learning curves; its own section
    python bench/run.py --only warm_start  # what --warm-start buys on the same curves; its own section
    python bench/run.py --only quality --full-trainings 10  # a short budget (about 30 minutes); its own section
    python bench/run.py --only quality --methods default,two_at_a_time,optuna_script --benchmarks mnist_cnn \
        --seeds 20 --no-write       # some methods, benchmarks or seeds only (prints; without --no-write the
                                    # section then holds only those)

Measures (each a ratio of two things run in this invocation, the median of repeats):
  search       the default search vs random+FIFO vs random+ASHA on MNIST-10k (same trials and max epochs, several seeds)
  overhead     the same configurations through autotune.fit vs the recipe's train() standalone, with a breakdown
  memory       peak memory of driver + Ray + workers with 1 vs 2 concurrent trials on the same data
  scale        hundreds of trivial trials (1 and 10 epochs): seconds per trial, ms per report, driver memory
  scale_10k    10,000 trivial trials (about 6 minutes): seconds per trial at the start and the end, driver RSS
  concurrency  1 training x 2 threads vs 2 trainings x 1 thread: aggregate samples/s
  quality      regret against epochs spent of each search method (and a plain Optuna script) on replayed
               learning curves (bench/quality.py), equal epoch budgets (40 full trainings), 10 seeds
  warm_start   the second half of a split budget on the same curves, started cold or warm from the first half

Run it on a quiet machine (`cat /proc/loadavg` under 0.7, no test run going): the load average at the start and
the end is recorded with the figures. Every search uses Ray with num_cpus=2 and a fresh temporary folder.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
import time
import warnings
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import quality
from common import MNIST, fmt, machine, median, quiet_progress, shared_ray, verdict, write_section
from measures import CHECKPOINT_EVERY, SCALE_GOAL_S, TEN_K_RSS_MIB, TEN_K_SLOWDOWN, walls_note

MEASURES = ("search", "overhead", "memory", "scale", "scale_10k", "concurrency", "quality", "warm_start")
SUITE = MEASURES[:6]  # the measures of the suite section; quality and warm_start write sections of their own
QUIET_LOAD = 0.7  # a 1-minute load average under this counts as a quiet machine
BIG_FAKE = {"dataset": "fake", "samples": 24000, "image_size": 48, "channels": 3, "val_fraction": 0.1,
            "test_fraction": 0.1}  # 166 MB of uint8 pixels: a copy per trial shows
ZERO_COPY = {"RAY_ENABLE_ZERO_COPY_TORCH_TENSORS": "1"}
CNN = {"arch": "simple_cnn", "width": {"grid": [8, 16]}, "depth": 3}
SMALL_MLP = {"arch": "mlp", "width": 32, "depth": 1}  # memory: the data and the processes matter, not the model

FULL: dict[str, dict[str, Any]] = {
    "search": {"seeds": [0, 1, 2], "trials": 30, "epochs": 9, "target": 0.96},
    "overhead": {"repeats": 3, "epochs": 3, "model": CNN, "lrs": [0.02, 0.05, 0.1, 0.2]},  # 8 configurations
    "memory": {"trials": 4, "epochs": 2, "model": SMALL_MLP, "repeats": 1,
               "variants": ["mnist", "fake", "fake_zero_copy"]},
    "scale": {"runs": [{"sampler": "random", "trials": 500, "epochs": 1}, {"sampler": "tpe", "trials": 500, "epochs": 1},
                       {"sampler": "random", "trials": 1000, "epochs": 10, "repeats": 3},  # the goal's run
                       {"sampler": "random", "trials": 1000, "epochs": 10, "checkpoint_every": 1}]},
    "scale_10k": {"trials": 10000, "rss_at": [1000, 5000, 10000]},
    "concurrency": {"repeats": 3, "epochs": 3, "model": {"arch": "simple_cnn", "width": 16, "depth": 3}},
    "quality": {"benchmarks": quality.available(), "seeds": list(range(10)), "full_trainings": quality.FULL_TRAININGS,
                "methods": ["default", "tpe+asha", "random+asha", "random+fifo", "hyperband", "optuna_script"]},
    "warm_start": {"benchmarks": quality.available(), "seeds": list(range(5))},
}
QUICK: dict[str, dict[str, Any]] = {
    "search": {"seeds": [0], "trials": 4, "epochs": 2, "target": 0.8},
    "overhead": {"repeats": 1, "epochs": 1, "model": {"arch": "simple_cnn", "width": 4, "depth": 3},
                 "lrs": [0.05, 0.1], "inline": True},
    "memory": {"trials": 2, "epochs": 3, "model": SMALL_MLP, "repeats": 1, "variants": ["mnist"], "inline": True},
    "scale": {"runs": [{"sampler": "random", "trials": 10, "epochs": 2, "repeats": 2}], "inline": True},
    "scale_10k": {"trials": 20, "rss_at": [10, 20], "inline": True},
    "concurrency": {"repeats": 1, "epochs": 1, "model": {"arch": "mlp", "width": 64, "depth": 1}},
    "quality": {"benchmarks": ["synthetic"], "methods": ["default", "random+fifo", "optuna_script"], "seeds": [0],
                "full_trainings": 2},
    "warm_start": {"benchmarks": ["synthetic"], "seeds": [0], "full_trainings": 2},
}


def run(only: list[str], settings: dict[str, dict[str, Any]], work: Path) -> dict[str, Any]:
    import measures

    import autotune.api  # noqa: F401  (imported once here, so that no measured search pays for importing
    import autotune.engine.search  # noqa: F401  the engine, Ray, Optuna and torch: they stay imported)
    import autotune.recipes.image_classification  # noqa: F401

    variants = {"mnist": {"data": measures.MNIST_DATA}, "fake": {"data": BIG_FAKE},
                "fake_zero_copy": {"data": BIG_FAKE, "env": ZERO_COPY}}
    results: dict[str, Any] = {}
    for name in only:
        print(f"{name}:", flush=True)
        began = time.perf_counter()
        args = dict(settings[name])
        if name == "search":
            results[name] = measures.search_efficiency(work, **args)
        elif name == "overhead":
            results[name] = measures.engine_overhead(work, **args)
        elif name == "memory":
            args["variants"] = {v: variants[v] for v in args["variants"]}
            results[name] = measures.data_sharing(**args)
        elif name == "scale":
            results[name] = measures.driver_scale(**args)
        elif name == "scale_10k":
            results[name] = measures.ten_thousand(**args)
        elif name == "quality":
            results[name] = quality.quality(**args)
        elif name == "warm_start":
            results[name] = quality.warm_start_gain(**args)
        else:
            results[name] = measures.concurrency(**args)
        results[name]["seconds"] = time.perf_counter() - began
        results[name]["settings"] = settings[name]
    return results


# ------------------------------------------------------------------------------------------- Markdown
def render(results: dict[str, Any], info: dict[str, Any], command: str) -> str:
    lines = [
        "## CPU suite: the engine against its baselines, side by side",
        "",
        f"Command: `{command}` ({info['minutes']:.1f} minutes, {info['date']}). Every ratio compares two things run "
        "in this one invocation; a figure is the median of the repeats or seeds. Rerun it on a quiet machine: the "
        "machine is shared, and other work slows the wall times.",
        "",
        f"Machine: {info['cpu']}, {info['cores']} cores, {info['ram_gib']} GiB RAM, {info['os']}; Python "
        f"{info['python']}, torch {info['torch']}, ray {info['ray']}, optuna {info['optuna']}, numpy {info['numpy']}. "
        f"Ray gets num_cpus=2. Load average (1 min) {info['load_start']:.2f} at the start, {info['load_end']:.2f} "
        "at the end.",
        "",
        "| # | measure | result | goal | verdict |",
        "|---|---|---|---|---|",
    ]
    if info["quick"]:
        lines[2] += (" **Quick run**: tiny settings and one Ray shared by every search (memory and scale measured "
                     "in this process): it checks that the suite runs; its figures mean nothing.")
    lines += [_goal_row(name, results[name]) for name in SUITE if name in results]
    lines += [_gpu_row(info.get("cuda"))]
    for name in SUITE:
        if name in results:
            lines += ["", *SECTIONS[name](results[name])]
    return "\n".join(lines)


def _gpu_row(cuda: bool | None) -> str:
    """The table's row for the GPU suite, which bench/gpu.py runs: that this machine has no GPU only where torch saw
    none (`cuda`, recorded with the figures; None: figures from before it was)."""
    where = ("not run here: no GPU is lent to this machine ([how to run it](#gpu-suite))" if cuda is False else
             "run apart, by `python bench/gpu.py` ([its results](#gpu-suite-results))")
    return (f"| 6 | GPU suite | {where} | per-trial samples/s vs standalone; 1/2/4/8 trials on one GPU; time to 99 % "
            "| n/a |")


def _goal_row(name: str, r: dict[str, Any]) -> str:
    if name == "search":
        return (f"| 1 | search efficiency | the default's best val {r['val_gap_points']:+.2f} points vs random+FIFO. "
                f"Whole search: {r['epoch_ratio']:.2f}x its trial-epochs, {r['wall_ratio']:.2f}x its wall time "
                f"({verdict(r['met'])}). Until the default came within 0.3 points of random+FIFO's final best: "
                f"{fmt(r['reach_epoch_ratio'])}x, {fmt(r['reach_wall_ratio'])}x ({verdict(r['met_anytime'])}) | "
                "within 0.3 points, <= 0.35x trial-epochs, <= 0.4x wall time | "
                f"{verdict(r['met'] or r['met_anytime'])}: {_search_reading(r)} |")
    if name == "overhead":
        return (f"| 2 | engine overhead | `autotune run` wall = {r['process_ratio']:.2f}x the `autotune train` "
                f"commands' sum / {r['concurrency']} ({verdict(r['met'])}); the `fit` call alone = "
                f"{r['ratio']:.2f}x the recipe's train() calls / {r['concurrency']} "
                f"({verdict(r['met_in_process'])}); largest part: {r['largest']} | <= 1.10x | "
                f"{verdict(r['met'])}: {_overhead_reading(r)} |")
    if name == "memory":
        first_name, first = next(iter(r["variants"].items()))
        return (f"| 3 | data loaded once | 2 concurrent trials = {first['pss_ratio']:.2f}x the peak memory (PSS) of 1 "
                f"({first_name}; summed RSS, which counts each shared library once per process: "
                f"{first['rss_ratio']:.2f}x) | <= 1.3x | {verdict(r['met'])} |")
    if name == "scale":
        goal = r["runs"][r["goal_run"]]
        text = "; ".join(f"{v['sampler']} {v['trials']} x {v['epochs']}{_every(v)}: {v['wall_s']:.0f} s{walls_note(v)}, "
                         f"{v['ms_per_report']:.1f} ms/report" for v in r["runs"])
        return (f"| 4 | driver scale (trivial trials) | {text} | {goal['trials']:,} trials x {goal['epochs']} epochs "
                f"in <= {SCALE_GOAL_S:.0f} s | {verdict(r['met'])} |")
    if name == "scale_10k":
        v = r["run"]
        at = ", ".join(f"{fmt(mib, '.0f')} MiB at {int(n):,}" for n, mib in v["rss_at_mib"].items())
        return (f"| 4b | ten thousand trivial trials | s/trial {v['first_tenth_s_per_trial']:.3f} in the first tenth, "
                f"{v['last_tenth_s_per_trial']:.3f} in the last ({fmt(v['slowdown'])}x); driver RSS {at} | driver RSS "
                f"< {TEN_K_RSS_MIB:.0f} MiB, last tenth <= {TEN_K_SLOWDOWN}x the first | {verdict(r['met'])} |")
    return (f"| 5 | concurrency choice | 2 trials x 1 thread = {r['ratio']:.2f}x the samples/s of 1 trial x 2 "
            f"threads | the better one is the default | {r['better']} is better |")


def _overhead_reading(r: dict[str, Any]) -> str:
    """Which of measure 2's readings the verdict holds for: the commands (each standalone configuration a fresh
    process, paying imports and the data's load) or the `fit` call against the train() calls alone."""
    if r["met"] == r["met_in_process"]:
        return "both readings"
    return "the commands, not in process" if r["met"] else "in process, not the commands"


def _search_reading(r: dict[str, Any]) -> str:
    if r["met"]:
        return "over the whole search"
    if r["met_anytime"]:
        return "until it reached random+FIFO's best, not over the whole search"
    return "neither reading"


def _search_section(r: dict[str, Any]) -> list[str]:
    lines = [
        "### 1. Search efficiency (MNIST-10k)",
        "",
        f"{r['trials']} trials of at most {r['max_epochs']} epochs per search, seeds {r['seeds']}, 2 trials at a "
        "time (1 CPU each). Space: an MLP (width 32..512, depth 1..3, dropout), SGD with lr log-uniform over "
        "1e-4..1, momentum, weight decay, batch size 32..256 (`mlp_space` in bench/measures.py). default: the "
        "engine's default search, TPE (multivariate, 10 random startup trials) with `scheduler: auto` "
        "(adaptive asynchronous Hyperband from epoch 1, reduction factor 3); random+asha: `scheduler: asha` as the "
        "engine sets it up (Ray's grace period 1, reduction factor 4). Wall time is the whole `autotune.fit` "
        "(Ray start, trials, export); search is the trials alone. Time to target: from the start of `fit` until "
        f"any trial first reports val accuracy >= {r['target']}.",
        "",
        "| strategy | best val acc | test acc | trial-epochs | wall (s) | search (s) | time to target (s) | "
        "reached target |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, s in r["summary"].items():
        lines.append(f"| {name} | {fmt(s['best_val'], '.4f')} | {fmt(s['test'], '.4f')} | "
                     f"{fmt(s['trial_epochs'], '.0f')} | {fmt(s['wall_s'], '.1f')} | {fmt(s['search_s'], '.1f')} | "
                     f"{fmt(s['to_target_s'], '.1f')} | {s['reached']}/{len(r['seeds'])} |")
    lines += ["", "Per seed, the default against random+FIFO. The goal reads two ways: the whole search's cost, or "
              "what the default had spent when it first reported a val accuracy within 0.3 points of random+FIFO's "
              "final best (the bar), against all random+FIFO spent (trial-epochs reported so far, wall time since "
              "the start of `fit`):", "",
              "| seed | best val gap (points) | trial-epochs ratio | wall ratio | search ratio | bar | "
              "to the bar: trial-epochs (default / random+asha / random+fifo) | to the bar: trial-epochs ratio | "
              "to the bar: wall ratio |",
              "|---:|---:|---:|---:|---:|---:|---|---:|---:|"]
    for s in r["per_seed"]:
        reach = " / ".join(fmt(s["reach"][name]["trial_epochs"], ".0f") for name in ("default", "random+asha",
                                                                                     "random+fifo"))
        lines.append(f"| {s['seed']} | {s['val_gap_points']:+.2f} | {s['epoch_ratio']:.2f} | {s['wall_ratio']:.2f} | "
                     f"{s['search_ratio']:.2f} | {s['bar']:.4f} | {reach} | {fmt(s['reach_epoch_ratio'])} | "
                     f"{fmt(s['reach_wall_ratio'])} |")
    errors = sum(run["errors"] for run in r["runs"])
    if errors:
        lines += ["", f"{errors} trial(s) failed over all searches (a learning rate near 1 diverges: the recipe "
                  "raises on a non-finite loss, and the trial counts with the epochs it ran)."]
    return lines


def one_script_ratio(repeat: dict[str, Any], concurrency: int) -> float:
    """`autotune run`'s wall time against one script that trains every configuration `concurrency` at a time and
    pays Python's start, imports, the data's load and the test once: one command's share of what the standalone
    commands spent outside train() (commands' sum less train() sum, over the configurations), plus the train() sum
    over `concurrency`."""
    start = (repeat["commands_sum_s"] - repeat["standalone_sum_s"]) / repeat["trials"]
    return repeat["process_wall_s"] / (start + repeat["standalone_sum_s"] / concurrency)


def _one_script_text(r: dict[str, Any]) -> str:
    """The goal's baseline pays a fresh process per configuration; what the same figures give against one script."""
    per_command = median((p["commands_sum_s"] - p["standalone_sum_s"]) / p["trials"] for p in r["repeats"])
    ratios = [one_script_ratio(p, r["concurrency"]) for p in r["repeats"]]
    return (f"The goal's standalone side starts {r['trials']} processes, each paying Python's start, imports, the "
            f"data's load and a test ({per_command:.1f} s a command outside train(), the median repeat); one script "
            f"looping over the configurations, {r['concurrency']} at a time, pays that once. Against such a script "
            f"(one command's share plus the train() sum / {r['concurrency']}), `autotune run` takes "
            f"{median(ratios):.2f}x (per repeat {', '.join(f'{x:.2f}' for x in ratios)}).")


def _overhead_section(r: dict[str, Any]) -> list[str]:
    total = sum(r["parts"].values())
    lines = [
        "### 2. Engine overhead",
        "",
        f"{r['trials']} configurations of {_model_text(r['settings']['model'])} x {r['epochs']} epochs on "
        f"MNIST-10k, lr {r['settings']['lrs']} (a grid: every configuration once), FIFO (every trial runs every "
        f"epoch), {r['concurrency']} trials at a time with 1 CPU each, through `autotune.fit` (export included) "
        "in a fresh process, as `autotune run` runs it; and the same configurations standalone, one after "
        "another: `autotune train` on each, 1 torch thread (OMP_NUM_THREADS=1, a trial's CPU share), each in a "
        "fresh process. The two sides take turns going first. Ideal = standalone sum / "
        f"{r['concurrency']}. Commands: the processes' wall times (Python start, imports, data loading, the test "
        "evaluation and exit on both sides) — the goal's measure; in-process: the `fit` call alone against the "
        "recipe's train() calls alone (no imports, data loading or test), what the engine itself adds.",
        "",
        "| repeat | first | `autotune run` (s) | `autotune train` sum (s) | commands: run / ideal | `fit` (s) | "
        "trials part (s) | train() sum (s) | in-process: fit / ideal |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [f"| {i} | {p['order'].split()[0]} | {p['process_wall_s']:.1f} | {p['commands_sum_s']:.1f} | "
              f"{p['process_ratio']:.2f} | {p['wall_s']:.1f} | {p['search_s']:.1f} | {p['standalone_sum_s']:.1f} | "
              f"{p['ratio']:.2f} |" for i, p in enumerate(r["repeats"])]
    lines += ["", _one_script_text(r)]
    lines += [
        "",
        f"Where the {total:.1f} s of `fit` above the in-process ideal go (the median repeat; trial slots are counted in wall seconds, "
        f"i.e. slot-seconds / {r['concurrency']}; stamps from each report's `t_start`/`t_report`/`report_s_prev`, "
        "written by bench/timed_recipe.py, and timers around the engine's functions):",
        "",
        "| part | seconds | share |",
        "|---|---:|---:|",
    ]
    lines += [f"| {k} | {v:.2f} | {100 * v / total:.0f} % |" for k, v in
              sorted(r["parts"].items(), key=lambda kv: -kv[1])]
    if min(r["parts"].values()) < 0:
        lines += ["", "A negative part is a residual: the trials trained faster than the same configurations "
                  "standalone. Each `autotune train` is a fresh process whose first training pays torch's one-time "
                  "warm-up (building kernels, the first checkpoint write), which a reused trial worker pays once "
                  "for all its trials."]
    cpu = r["cpu_s"]
    lines += ["", f"CPU seconds used during that `fit` ({r['chosen_wall_s']:.1f} s wall, so "
              f"{r['concurrency'] * r['chosen_wall_s']:.0f} core-seconds on {r['concurrency']} cores), by "
              "process role: "
              + ", ".join(f"{k} {v:.1f}" for k, v in sorted(cpu.items(), key=lambda kv: -kv[1]))
              + ". What the driver and Ray's daemons use while both cores train is taken from the trials."]
    lines += ["", f"Largest part: **{r['largest']}**. Fixed per search (Ray, worker processes, setup, export, "
              f"teardown, uneven finish): {r['fixed_s']:.1f} s, under 10 % only for a search of more than "
              f"{10 * r['fixed_s']:.0f} s of ideal training; per trial (launch, reporting, slower training): "
              f"{r['per_trial_s']:.2f} s, {100 * r['per_trial_share']:.0f} % of a trial's ideal time here."]
    return lines


def _memory_section(r: dict[str, Any]) -> list[str]:
    lines = [
        "### 3. Data loaded once: memory with 1 vs 2 concurrent trials",
        "",
        f"The same {r['trials']} trials ({_model_text(r['settings']['model'])}, {r['epochs']} epochs) with "
        "`max_concurrent` 1, then 2, each search in a fresh process; peak of the memory summed over the driver "
        "and every process below it (Ray's GCS, raylet, workers), sampled every 0.5 s from /proc. PSS splits "
        "shared pages (Ray's object store, libraries) among the processes mapping them; RSS counts them in each.",
        "",
        "| data | env | 1 trial PSS (MiB) | 2 trials PSS (MiB) | PSS ratio | 1 trial RSS (MiB) | 2 trials RSS (MiB) "
        "| RSS ratio | while trials run, the 2nd adds: PSS / RSS (MiB) | a trial worker: PSS / private (MiB) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, v in r["variants"].items():
        env = ", ".join(f"{k}={val}" for k, val in v["env"].items()) or "-"
        lines.append(f"| {name} | {env} | {v['one']['peak_pss_mib']:.0f} | {v['two']['peak_pss_mib']:.0f} | "
                     f"{v['pss_ratio']:.2f} | {v['one']['peak_rss_mib']:.0f} | {v['two']['peak_rss_mib']:.0f} | "
                     f"{v['rss_ratio']:.2f} | {v['second_trial_pss_mib']:.0f} / {v['second_trial_rss_mib']:.0f} | "
                     f"{v['two']['worker_pss_mib']:.0f} / {v['two']['worker_anon_mib']:.0f} |")
    lines += ["", "mnist: the shared MNIST-10k (8 MB of pixels). fake: 24k random 3x48x48 images (166 MB), so that "
              "a copy of the data per trial shows. The peaks are over the whole `fit`, loading the data included; "
              "the next column compares the peaks while the trials run (the span of `Tuner.fit`); the last one is a "
              "trial worker's own memory (from its reports, 2 trials at once): its private memory holds its copy "
              "of the data, if it has one."]
    return lines


def _every(run: dict[str, Any]) -> str:
    """How a scale run's trials keep checkpoints, where not as by default."""
    every = run["checkpoint_every"]
    return "" if every == CHECKPOINT_EVERY else f" (checkpoint_every {every}: {'each epoch' if every == 1 else every})"


def _scale_section(r: dict[str, Any]) -> list[str]:
    lines = [
        "### 4. Scale of the driver",
        "",
        "Searches of bench/trivial_recipe.py (no torch, no work; each report offers a one-file checkpoint "
        "directory), random or TPE sampler, FIFO, 2 at a time, each search in a fresh process. `fit` wall: the "
        "whole `autotune.fit` call (Ray's start and shutdown, the export). Seconds per trial and ms per report: "
        "the trials' wall time (`Tuner.fit`) / trials or reports; at the start and at the end: the mean gap "
        "between trial starts over the first and the last tenth. Checkpoints: the checkpoint folders the trials "
        f"kept (the engine persists the checkpoints its policy needs: docs/search-space.md, `checkpoint_every`, "
        f"{CHECKPOINT_EVERY} by default; `checkpoint_every 1`: a checkpoint every epoch, as before that policy). "
        "Driver RSS growth: least-squares slope of the driver's RSS over trials started, after the first tenth. "
        "The same search's wall time varies from run to run on this machine (1,000 x 10 at one commit: 71 to 154 s); "
        "a search measured more than once is shown by its median run, with every run's `fit` wall beside it.",
        "",
        "| sampler | trials x epochs | `fit` wall (s) | trials' wall (s) | s/trial | ms/report | checkpoints kept | "
        "s/trial, first tenth | s/trial, last tenth | driver RSS start -> end (MiB) | driver RSS per trial (KiB) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    lines += [f"| {v['sampler']} | {v['trials']} x {v['epochs']}{_every(v)} | {v['wall_s']:.1f}{walls_note(v)} | {v['search_s']:.1f} | "
              f"{v['s_per_trial']:.3f} | {v['ms_per_report']:.1f} | {v['checkpoints']} | "
              f"{v['first_tenth_s_per_trial']:.3f} | {v['last_tenth_s_per_trial']:.3f} | "
              f"{fmt(v['rss_start_mib'], '.0f')} -> {fmt(v['rss_end_mib'], '.0f')} | {v['rss_kib_per_trial']:.0f} |"
              for v in r["runs"]]
    return lines


def _ten_thousand_section(r: dict[str, Any]) -> list[str]:
    v = r["run"]
    marks = list(v["rss_at_mib"])
    return [
        "#### 4b. Ten thousand trials",
        "",
        f"One search of {v['trials']:,} trials of bench/trivial_recipe.py (1 epoch each), random sampler, FIFO, 2 "
        "at a time, in a fresh process; seconds per trial as in the table above; driver RSS when that many trials "
        "had started.",
        "",
        "| trials | `fit` wall (s) | trials' wall (s) | s/trial | s/trial, first tenth | s/trial, last tenth | "
        "last / first | " + " | ".join(f"driver RSS at {int(m):,} (MiB)" for m in marks) + " |",
        "|---:|---:|---:|---:|---:|---:|---:|" + "---:|" * len(marks),
        f"| {v['trials']:,} | {v['wall_s']:.1f} | {v['search_s']:.1f} | {v['s_per_trial']:.3f} | "
        f"{v['first_tenth_s_per_trial']:.3f} | {v['last_tenth_s_per_trial']:.3f} | {fmt(v['slowdown'])} | "
        + " | ".join(fmt(v["rss_at_mib"][m], ".0f") for m in marks) + " |",
    ]


def _concurrency_section(r: dict[str, Any]) -> list[str]:
    model = _model_text(r["model"])
    return [
        "### 5. Concurrency: 1 trial x 2 threads vs 2 trials x 1 thread",
        "",
        f"The recipe's training ({model}, batch 128, {r['epochs']} epochs, MNIST-10k), each in its own process as "
        "Ray runs trials; aggregate training samples/s (median of epochs 2.. of each process, summed over the "
        f"processes running at once), alternated {r['repeats']} times.",
        "",
        "| layout | engine setting on 2 cores | aggregate samples/s |",
        "|---|---|---:|",
        f"| 1 trial x 2 threads | `resources: {{cpu: 2}}` | {r['one_by_two']:,.0f} |",
        f"| 2 trials x 1 thread | `resources: {{cpu: 1}}` (the default) | {r['two_by_one']:,.0f} |",
        f"| 1 trial x 1 thread, alone (one core idle) | - | {r['one_by_one']:,.0f} |",
        "",
        f"2 x 1 / 1 x 2 = {r['ratio']:.2f}: **{r['better']}** is better. Against perfect scaling of the 1 x 1 "
        f"figure: two trainings side by side reach {100 * r['side_by_side_efficiency']:.0f} %, two threads in one "
        f"training {100 * r['thread_efficiency']:.0f} %"
        + (" (two trainings side by side slow each other down: part of 'training slower than standalone' in "
           "measure 2 is this, not the engine)." if r["side_by_side_efficiency"] < 0.95 else
           " (two trainings side by side do not slow each other down on these cores)."),
    ]


def _model_text(model: dict[str, Any]) -> str:
    return ", ".join(f"{k} {json.dumps(v) if isinstance(v, dict) else v}" for k, v in model.items())


SECTIONS = {"search": _search_section, "overhead": _overhead_section, "memory": _memory_section,
            "scale": _scale_section, "scale_10k": _ten_thousand_section, "concurrency": _concurrency_section}


def sections(results: dict[str, Any], info: dict[str, Any], command: str) -> dict[str, str]:
    """docs/benchmarks.md's sections these results rewrite: the suite's (measures 1-5) and the quality one."""
    out = {}
    if set(results) & set(SUITE):
        out["suite"] = render(results, info, command)
    if "quality" in results:
        out[quality_section(results["quality"]["full_trainings"])] = quality.render(results["quality"], info, command)
    if "warm_start" in results:
        out["warm_start"] = quality.render_warm_start(results["warm_start"], info, command)
    return out


def partial_suite(results: dict[str, Any]) -> list[str]:
    """The suite's measures missing from `results` that hold some of them: its section, which shows every measure
    of the suite, is then printed and not written (it would drop the figures of the others); [] otherwise."""
    ran = set(results) & set(SUITE)
    return [name for name in SUITE if name not in ran] if ran else []


def quality_section(full_trainings: int) -> str:
    """The quality measure's section for a budget: `quality` for its own, `quality_N` for another of N trainings."""
    return "quality" if full_trainings == quality.FULL_TRAININGS else f"quality_{full_trainings}"


# ------------------------------------------------------------------------------------------------ main
def _names(text: str, known: list[str], kind: str, parser: argparse.ArgumentParser) -> list[str]:
    """A comma-separated list of `known` names; an unknown one is the command's error."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = sorted(set(names) - set(known))
    if unknown:
        parser.error(f"unknown {kind}(s) {', '.join(unknown)}; choose from {', '.join(known)}")
    return names


def _chosen(base: dict[str, dict[str, Any]], args: argparse.Namespace, parser: argparse.ArgumentParser
            ) -> dict[str, dict[str, Any]]:
    """The settings with the quality measures' methods, benchmarks and seeds replaced where the command names them."""
    settings = {name: dict(values) for name, values in base.items()}
    if args.methods:
        settings["quality"]["methods"] = _names(args.methods, list(quality.METHODS), "method", parser)
    if args.benchmarks:
        benchmarks = _names(args.benchmarks, quality.available(), "benchmark", parser)
        settings["quality"]["benchmarks"] = settings["warm_start"]["benchmarks"] = benchmarks
    if args.seeds is not None:
        if args.seeds < 1:
            parser.error(f"--seeds must be at least 1, got {args.seeds}")
        settings["quality"]["seeds"] = settings["warm_start"]["seeds"] = list(range(args.seeds))
    if args.full_trainings is not None:
        if args.full_trainings < 1:
            parser.error(f"--full-trainings must be at least 1, got {args.full_trainings}")
        settings["quality"]["full_trainings"] = args.full_trainings
    return settings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny settings: checks that every measure runs")
    parser.add_argument("--only", default=",".join(MEASURES), help=f"comma-separated subset of {','.join(MEASURES)}")
    parser.add_argument("--no-write", action="store_true", help="leave docs/benchmarks.md alone")
    parser.add_argument("--json", metavar="PATH", help="also write the raw figures here")
    parser.add_argument("--keep", action="store_true", help="keep the runs' temporary folder")
    parser.add_argument("--render", metavar="PATH", help="rewrite the section from a --json file; measure nothing")
    parser.add_argument("--methods", help=f"quality: these methods instead ({', '.join(quality.METHODS)})")
    parser.add_argument("--benchmarks", help="quality, warm_start: these benchmarks instead (default: all)")
    parser.add_argument("--seeds", type=int, metavar="N", help="quality, warm_start: seeds 0..N-1 instead")
    parser.add_argument("--full-trainings", type=int, metavar="N",
                        help=f"quality: a budget of N full trainings instead of {quality.FULL_TRAININGS}")
    args = parser.parse_args()
    if args.render:
        saved = json.loads(Path(args.render).read_text())
        for section, text in sections(saved["results"], saved["machine"], saved["command"]).items():
            write_section(section, text)
        return 0
    only = _names(args.only, list(MEASURES), "measure", parser)
    if not MNIST.is_dir():
        parser.error(f"the shared MNIST set is not at {MNIST}")
    settings = _chosen(QUICK if args.quick else FULL, args, parser)

    import torch

    warnings.simplefilter("ignore")
    logging.getLogger("ray.tune").setLevel(logging.CRITICAL)  # failed trials (diverged lr) are expected, counted
    quiet_progress()
    info = machine()
    info["load_start"] = info.pop("load_average")
    info["cuda"] = torch.cuda.is_available()  # the GPU suite's row says whether this machine could run it
    print(f"load average {info['load_start']:.2f} at the start", flush=True)
    if info["load_start"] >= QUIET_LOAD:
        print(f"warning: the machine is busy (load {info['load_start']:.2f} >= {QUIET_LOAD}): wall times will be "
              "slower than on a quiet machine; see `pgrep -fa 'pytest|raylet'`", flush=True)
    work = Path(tempfile.mkdtemp(prefix="autotune-bench-"))
    began = time.perf_counter()
    try:
        with shared_ray() if args.quick else nullcontext():  # the memory and scale measures then run in this process
            results = run(only, settings, work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(f"/tmp/rt_{os.getpid()}", ignore_errors=True)  # the engine's Ray temp folder for this process
    info.update(load_end=os.getloadavg()[0], quick=args.quick, minutes=(time.perf_counter() - began) / 60,
                date=time.strftime("%Y-%m-%d %H:%M"))
    command = "python bench/run.py" + (" --quick" if args.quick else "") + (
        f" --only {','.join(only)}" if set(only) != set(MEASURES) else "") + "".join(
        f" --{flag} {getattr(args, flag)}" for flag in ("methods", "benchmarks", "seeds") if getattr(args, flag))
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": info, "command": command, "results": results},
                                              indent=2, default=str) + "\n")
    for section, text in sections(results, info, command).items():
        print(text)
        missing = partial_suite(results) if section == "suite" else []
        if missing and not (args.quick or args.no_write):
            print(f"not written: the suite section of docs/benchmarks.md shows every measure of the suite, and this "
                  f"run left out {', '.join(missing)}; the figures above are this run's (--json PATH keeps them)")
        elif not (args.quick or args.no_write):
            write_section(section, text)
            print(f"wrote the {section} section of {Path(__file__).resolve().parents[1] / 'docs' / 'benchmarks.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
