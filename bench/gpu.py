"""The GPU suite: trials packed on one GPU against standalone training, and the time to 99 % on MNIST.

    python bench/gpu.py                              # on a CUDA machine: measures, rewrites the gpu section
    python bench/gpu.py --no-write --json gpu.json   # keep the raw figures
    python bench/gpu.py --render gpu.json            # write the gpu section from figures taken elsewhere
    python bench/gpu.py --device cpu --quick         # no GPU: check that every code path runs (figures mean nothing)

Measures, on MNIST-10k (8k train / 1k val / 1k test) with the image_classification recipe, simple_cnn:
  standalone   one training alone on the GPU (the recipe's train(), no Ray): training samples/s
  packed       1, 2, 4 and 8 trials at once on the one GPU: per-trial and aggregate samples/s against standalone
  99 %         one trial of a strong configuration: seconds until validation accuracy first reaches 0.99,
               standalone and (engine mode) through autotune.fit with `search.stop: {val_accuracy: 0.99}`

Packing runs in one of two modes. `engine` (the default when Ray imports): `autotune.fit` with
`resources: {cpu: cores / k, gpu: 1 / k}`, k trials of one configuration (`train.seed` as a grid). `processes`
(the default without Ray): k processes each training on the same GPU, started together behind a barrier: what Ray
does with a fractional GPU (k worker processes sharing one CUDA device), without the engine around it. The lent
GPU machines have no Ray (see docs/benchmarks.md, "GPU suite", for how to run this there).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from common import BENCH, MNIST, fmt, machine, median, quiet_progress, shared_ray, write_section

MODEL = {"arch": "simple_cnn", "width": 32, "depth": 3}
OPTIMIZER = {"name": "sgd", "lr": 0.05, "momentum": 0.9}
# reaches 0.99 on the 1k validation split at epoch 9 of 12 on a CPU (one-cycle, light augmentation)
STRONG = {
    "model": MODEL,
    "optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": True, "schedule": "onecycle"},
    "train": {"epochs": 12, "batch_size": 128, "label_smoothing": 0.1},
    "augment": "light",
}
FULL = {"packs": [1, 2, 4, 8], "epochs": 6, "target": 0.99, "model": MODEL}
QUICK = {"packs": [1, 2], "epochs": 2, "target": 0.5, "model": {"arch": "mlp", "width": 64, "depth": 1}}


def data_config(root: Path, augment: str = "none") -> dict[str, Any]:
    return {"dataset": "idx", "root": str(root), "val_fraction": 0.1, "test_fraction": 0.1, "augment": augment}


def steady(reports: list[dict[str, Any]]) -> float:
    """Median training samples/s of epochs 2.. (epoch 1 pays for warm-up: cuDNN autotuning, allocations)."""
    return median(r["samples_per_second"] for r in (reports[1:] or reports))


# ------------------------------------------------------------------------------------------ standalone
def train_alone(args: dict[str, Any]) -> dict[str, Any]:
    """One training in this process (the recipe's own loop); optionally waits at a barrier first so that k of
    these start together. Returns its reports and the seconds until `target` was first reached."""
    import torch
    from autotune.recipes import image_classification as recipe

    torch.set_num_threads(args["threads"])
    spec = args["spec"]
    data = recipe.load_data(data_config(Path(args["root"]), spec.get("augment", "none")))
    config = {"model": spec["model"], "optimizer": spec["optimizer"],
              "train": {**spec["train"], "device": args["device"]},
              "data": data_config(Path(args["root"]), spec.get("augment", "none"))}
    if args.get("barrier"):
        barrier = Path(args["barrier"])
        (barrier / f"ready-{os.getpid()}").touch()
        deadline = time.time() + 300
        while len(list(barrier.glob("ready-*"))) < args["parties"] and time.time() < deadline:
            time.sleep(0.02)
    reports: list[dict[str, Any]] = []
    began, started = time.perf_counter(), time.time()
    reached: list[float] = []

    def report(metrics: dict[str, Any], _dir: str | None) -> None:
        reports.append(dict(metrics))
        if not reached and metrics["val_accuracy"] >= args.get("target", 2.0):
            reached.append(time.perf_counter() - began)

    recipe.train(config, report, data=data)
    return {"reports": reports, "samples_per_second": steady(reports), "to_target_s": reached[0] if reached else None,
            "best_val": max(r["val_accuracy"] for r in reports), "seconds": time.perf_counter() - began,
            "started": started, "ended": time.time()}


def _children(k: int, args: dict[str, Any]) -> list[dict[str, Any]]:
    """k trainings at once, each in its own process (`python bench/gpu.py --child ARGS`), behind a barrier."""
    barrier = Path(tempfile.mkdtemp(prefix="autotune-gpu-barrier-"))
    try:
        command = [sys.executable, str(Path(__file__))]
        payload = json.dumps({**args, "barrier": str(barrier), "parties": k})
        processes = [subprocess.Popen([*command, "--child", payload], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True) for _ in range(k)]
        results = []
        for process in processes:
            out, err = process.communicate()
            lines = [ln for ln in out.splitlines() if ln.startswith("RESULT ")]
            if not lines:
                raise RuntimeError(f"a packed training failed (exit {process.returncode}):\n{err[-3000:]}")
            results.append(json.loads(lines[-1][len("RESULT "):]))
        return results
    finally:
        shutil.rmtree(barrier, ignore_errors=True)


def ran_together(starts: list[float], ends: list[float]) -> int:
    """How many trainings had started (time.time(), one clock for every process) before the first one ended."""
    return sum(1 for s in starts if s < min(ends))


def packed_processes(k: int, alone_args: dict[str, Any]) -> list[dict[str, Any]]:
    """k trainings at once in k processes sharing the device, the cores split among them."""
    cores = os.cpu_count() or 1
    trials = _children(k, {**alone_args, "threads": max(1, cores // k)})
    together = ran_together([t["started"] for t in trials], [t["ended"] for t in trials])
    return [{**t, "together": together} for t in trials]


def plain_spec(model: dict[str, Any], epochs: int) -> dict[str, Any]:
    return {"model": model, "optimizer": OPTIMIZER, "train": {"epochs": epochs, "batch_size": 128}}


# ------------------------------------------------------------------------------------------------ engine
def _fit(space: dict[str, Any], work: Path, gpu: bool) -> tuple[Any, float]:
    import autotune

    began = time.time()
    result = autotune.fit(space, storage=str(work / "runs"), num_cpus=os.cpu_count(), num_gpus=1 if gpu else None)
    return result, began


def _reports(result: Any) -> list[list[dict[str, Any]]]:
    return [[json.loads(line) for line in Path(path, "result.json").read_text().splitlines() if line.strip()]
            for path in result.trials["path"]]


def packed_engine(k: int, settings: dict[str, Any], root: Path, device: str, work: Path) -> list[dict[str, Any]]:
    """k trials of one configuration through autotune.fit, sharing the GPU (`gpu: 1/k`)."""
    cores = os.cpu_count() or 1
    space = {
        "name": f"gpu_pack_{k}", "recipe": str(BENCH / "timed_recipe.py"), "data": data_config(root),
        "model": settings["model"], "optimizer": OPTIMIZER,
        "train": {"epochs": settings["epochs"], "batch_size": 128, "device": device, "seed": {"grid": list(range(k))}},
        "search": {"trials": k, "sampler": "grid", "scheduler": "fifo",
                   "resources": {"cpu": max(1, cores // k), "gpu": 1 / k}},
        "export": {"dir": str(work / "models" / f"gpu_pack_{k}")},
    }
    result, _ = _fit(space, work, device == "cuda")
    trials = _reports(result)
    together = ran_together([t[0]["t_start"] for t in trials], [t[-1]["t_report"] for t in trials])
    return [{"samples_per_second": steady(t), "together": together} for t in trials]


def time_to_target_engine(root: Path, device: str, target: float, work: Path, spec: dict[str, Any]
                          ) -> dict[str, Any]:
    """One trial of `spec` through autotune.fit, stopped at `target`: seconds from `fit` until it was reached."""
    space = {
        "name": "gpu_to_target", "recipe": str(BENCH / "timed_recipe.py"),
        "data": data_config(root, spec.get("augment", "none")), "model": spec["model"],
        "optimizer": spec["optimizer"],
        "train": {**spec["train"], "device": device, "seed": {"grid": [0]}},
        "search": {"trials": 1, "sampler": "grid", "scheduler": "fifo", "stop": {"val_accuracy": target},
                   "resources": {"cpu": os.cpu_count() or 1, "gpu": 1}},
        "export": {"dir": str(work / "models" / "gpu_to_target")},
    }
    result, began = _fit(space, work, device == "cuda")
    rows = _reports(result)[0]
    reached = [r["t_report"] - began for r in rows if r["val_accuracy"] >= target]
    return {"to_target_s": reached[0] if reached else None, "best_val": max(r["val_accuracy"] for r in rows),
            "epochs": len(rows)}


# -------------------------------------------------------------------------------------------------- suite
def run(settings: dict[str, Any], root: Path, device: str, mode: str, strong: dict[str, Any]) -> dict[str, Any]:
    cores = os.cpu_count() or 1
    alone_args = {"root": str(root), "device": device, "threads": cores,
                  "spec": plain_spec(settings["model"], settings["epochs"])}
    alone = _children(1, alone_args)[0]["samples_per_second"]
    print(f"standalone: {alone:,.0f} samples/s", flush=True)
    work = Path(tempfile.mkdtemp(prefix="autotune-gpu-"))
    try:
        packs = []
        for k in settings["packs"]:
            if mode == "engine":
                trials = packed_engine(k, settings, root, device, work)
            else:
                trials = packed_processes(k, alone_args)
            per_trial = median(t["samples_per_second"] for t in trials)
            aggregate = sum(t["samples_per_second"] for t in trials)
            packs.append({"k": k, "per_trial": per_trial, "aggregate": aggregate, "per_trial_ratio": per_trial / alone,
                          "aggregate_ratio": aggregate / alone, "together": min(t["together"] for t in trials)})
            print(f"{k} packed: {per_trial:,.0f} samples/s per trial, {aggregate:,.0f} in all", flush=True)
        target = settings["target"]
        standalone = _children(1, {"root": str(root), "device": device, "threads": cores, "spec": strong,
                                   "target": target})[0]
        to_target = {"standalone": {k: standalone[k] for k in ("to_target_s", "best_val")}}
        if mode == "engine":
            to_target["engine"] = time_to_target_engine(root, device, target, work, strong)
        print(f"time to {target}: {to_target}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {"device": device, "mode": mode, "standalone": alone, "packs": packs, "target": target,
            "to_target": to_target, "settings": settings, "strong": strong, "gpu": _gpu_name(device)}


def _gpu_name(device: str) -> str:
    if device != "cuda":
        return "none (CPU)"
    import torch

    return f"{torch.cuda.get_device_name(0)}, CUDA {torch.version.cuda}"


def render(figures: dict[str, Any]) -> str:
    r, info = figures["results"], figures["machine"]
    model = ", ".join(f"{k} {v}" for k, v in r["settings"]["model"].items())
    lines = [
        "## GPU suite results",
        "",
        f"Command: `{figures['command']}` ({figures['date']}), mode `{r['mode']}`. GPU: {r['gpu']}; "
        f"{info['cpu']}, {info['cores']} cores; torch {info['torch']}, ray {info['ray']}.",
        "",
        f"{model}, batch 128, {r['settings']['epochs']} epochs on MNIST-10k; samples/s = training samples per "
        f"second, median of epochs 2.. . Standalone: {r['standalone']:,.0f} samples/s.",
        "",
        "| trials on the GPU | ran together | per-trial samples/s | per trial / standalone | all trials samples/s "
        "| all / standalone |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [f"| {p['k']} | {p['together']} | {p['per_trial']:,.0f} | {p['per_trial_ratio']:.2f} | "
              f"{p['aggregate']:,.0f} | {p['aggregate_ratio']:.2f} |" for p in r["packs"]]
    strong = r["strong"]
    described = ", ".join(f"{k} {v}" for k, v in strong["model"].items())
    lines += ["", f"Time to {r['target']} validation accuracy, one trial ({described}; "
              f"{json.dumps(strong['optimizer'])}; {json.dumps(strong['train'])}; augment {strong['augment']}):", ""]
    for how, t in r["to_target"].items():
        lines.append(f"- {how}: {fmt(t['to_target_s'], '.1f', ' s')} (best val {t['best_val']:.4f})")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--mode", choices=("engine", "processes"),
                        help="default: engine where Ray is installed, else processes")
    parser.add_argument("--mnist", type=Path, default=MNIST, help="folder of the MNIST IDX .gz files")
    parser.add_argument("--quick", action="store_true", help="tiny settings; writes no doc")
    parser.add_argument("--no-write", action="store_true", help="leave docs/benchmarks.md alone")
    parser.add_argument("--json", metavar="PATH", help="also write the raw figures here")
    parser.add_argument("--render", metavar="PATH", help="write the gpu section from a --json file; measure nothing")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    quiet_progress()
    if args.child:
        print("RESULT " + json.dumps(train_alone(json.loads(args.child))), flush=True)
        return 0
    if args.render:
        write_section("gpu", render(json.loads(Path(args.render).read_text())))
        return 0
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            parser.error("torch sees no CUDA device; run on a GPU machine, or --device cpu --quick to check the code")
    if not args.mnist.is_dir():
        parser.error(f"no MNIST at {args.mnist}; give --mnist DIR")
    mode = args.mode or ("engine" if _has_ray() else "processes")
    settings = QUICK if args.quick else FULL
    strong = {**STRONG, "model": settings["model"], "train": {**STRONG["train"], "epochs": 2}} if args.quick else STRONG
    command = " ".join(["python bench/gpu.py", *sys.argv[1:]])
    # a quick engine run's searches share one Ray (about 5 s a search); a measured one starts its own, as users do
    with shared_ray() if args.quick and mode == "engine" else nullcontext():
        results = run(settings, args.mnist.resolve(), args.device, mode, strong)
    figures = {"machine": machine(), "command": command, "date": time.strftime("%Y-%m-%d %H:%M"), "results": results}
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    text = render(figures)
    print(text)
    if not (args.quick or args.no_write):
        write_section("gpu", text)
    return 0


def _has_ray() -> bool:
    return importlib.util.find_spec("ray") is not None


if __name__ == "__main__":
    sys.exit(main())
