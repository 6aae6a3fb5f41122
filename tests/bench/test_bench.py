"""Smoke tests of the benchmark scripts: they run end to end and write well-formed figures. No wall time is
ever asserted (a benchmark is not a timed test); the real figures come from `python bench/run.py`."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "bench"
MNIST = (REPO / ".." / "shared" / "data" / "mnist").resolve()
sys.path.insert(0, str(BENCH))

from common import write_section  # noqa: E402

needs_mnist = pytest.mark.skipif(not MNIST.is_dir(), reason=f"the shared MNIST set is not at {MNIST}")
RESIDUALS = ("training slower than standalone", "uneven finish")  # the overhead parts computed as what is left


def _numbers(value):
    """Every number in a nested JSON value."""
    if isinstance(value, bool):
        return
    if isinstance(value, (int, float)):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _numbers(item)
    elif isinstance(value, list):
        for item in value:
            yield from _numbers(item)


def _run(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout,
                          check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


@needs_mnist
def test_cpu_suite_quick_runs_every_measure(tmp_path):
    doc = (REPO / "docs" / "benchmarks.md").read_text()
    out = tmp_path / "suite.json"
    done = _run("bench/run.py", "--quick", "--json", str(out))
    assert (REPO / "docs" / "benchmarks.md").read_text() == doc, "--quick must not write the doc"

    figures = json.loads(out.read_text())
    results = figures["results"]
    assert set(results) == {"search", "overhead", "memory", "scale", "scale_10k", "concurrency", "quality",
                            "warm_start"}
    assert all(math.isfinite(x) for x in _numbers(results))
    assert {"cpu", "cores", "ram_gib", "torch", "ray", "load_start", "load_end"} <= set(figures["machine"])

    search = results["search"]
    assert {run["strategy"] for run in search["runs"]} == {"default", "random+fifo", "random+asha"}
    assert all(0 <= run["best_val"] <= 1 and run["trial_epochs"] >= 1 for run in search["runs"])
    assert isinstance(search["met"], bool) and isinstance(search["met_anytime"], bool)
    for seed in search["per_seed"]:  # the anytime reading: random+FIFO reaches its own bar by its last report
        fifo = next(r for r in search["runs"] if r["strategy"] == "random+fifo" and r["seed"] == seed["seed"])
        assert 1 <= seed["reach"]["random+fifo"]["trial_epochs"] <= fifo["trial_epochs"]

    overhead = results["overhead"]
    (repeat,) = overhead["repeats"]
    # measured parts are durations; a residual outside [-ideal, wall] would mean a part was mis-measured
    residuals = {k: v for k, v in overhead["parts"].items() if k.startswith(RESIDUALS)}
    assert len(residuals) == 2 and all(v >= 0 for k, v in overhead["parts"].items() if k not in residuals)
    assert all(-repeat["ideal_s"] <= v <= repeat["wall_s"] for v in residuals.values()), residuals
    assert overhead["largest"] in overhead["parts"]
    # the commands' side: `autotune train` runs cost at least the recipe's train() inside them
    assert repeat["commands_sum_s"] >= repeat["standalone_sum_s"] > 0 and repeat["process_ratio"] > 0

    memory = results["memory"]["variants"]["mnist"]
    assert memory["one"]["peak_pss_mib"] > 0 and memory["two"]["peak_pss_mib"] > 0
    assert memory["two"]["max_overlap"] == 2 and memory["one"]["max_overlap"] == 1

    (scale,) = results["scale"]["runs"]
    assert (scale["trials"], scale["epochs"], scale["reports"]) == (10, 2, 20) and scale["checkpoints"] >= 1
    assert isinstance(results["scale"]["met"], bool)
    assert len(scale["walls_s"]) == 2 and scale["walls_s"] == sorted(scale["walls_s"])  # measured twice: the slower
    assert scale["wall_s"] == scale["walls_s"][1]  # middle run (of an even count) stands for the search
    ten_k = results["scale_10k"]["run"]  # the quick run: 20 trials, RSS when 10 and 20 had started (None: no
    assert ten_k["trials"] == 20 and set(ten_k["rss_at_mib"]) == {"10", "20"}  # sample in the 0.5 s it took)
    assert all(mib is None or mib > 0 for mib in ten_k["rss_at_mib"].values())
    assert isinstance(results["scale_10k"]["met"], bool)
    assert results["concurrency"]["better"] in ("2 x 1", "1 x 2")

    text = done.stdout
    quality = results["quality"]
    limit = quality["benchmarks"]["synthetic"]["budget"]
    assert {run["method"] for run in quality["runs"]} == {"default", "random+fifo", "optuna_script"}
    for run in quality["runs"]:
        assert all(0 <= r <= 1 for r in run["regret"]) and run["regret"] == sorted(run["regret"], reverse=True)
        # the budget, and at most an epoch more per running trial (the script checks it after each trial)
        extra = quality["benchmarks"]["synthetic"]["epochs"] if run["method"] == "optuna_script" else 2
        assert limit <= run["epochs"] <= limit + extra, run
    assert set(quality["table"]["synthetic"]) == {"default", "random+fifo", "optuna_script"}

    warm = results["warm_start"]  # the second half started cold and warm: one run each, its regret falling
    assert [(r["start"], r["seed"]) for r in warm["runs"]] == [("cold", 0), ("warm", 0)]
    assert all(0 <= x <= 1 and r["regret"] == sorted(r["regret"], reverse=True) for r in warm["runs"]
               for x in r["regret"])
    assert "## Starting from what is known" in text and "| synthetic | warm |" in text

    assert "## Search quality" in text and "| **default** |" in text
    assert "## CPU suite" in text and "| # | measure | result | goal | verdict |" in text
    for row in ("| 1 | search efficiency", "| 2 | engine overhead", "| 3 | data loaded once", "| 4 | driver scale",
                "| 4b | ten thousand trivial trials", "| 5 | concurrency choice", "| 6 | GPU suite"):
        assert row in text
    import torch

    assert figures["machine"]["cuda"] is torch.cuda.is_available()
    assert ("no GPU is lent to this machine" in text) is not torch.cuda.is_available()


@needs_mnist
def test_the_quality_measure_takes_the_methods_benchmarks_and_seeds_named():
    import argparse

    import run as bench_run

    args = argparse.Namespace(methods="default,two_at_a_time", benchmarks="synthetic", seeds=3, full_trainings=10)
    settings = bench_run._chosen(bench_run.FULL, args, argparse.ArgumentParser())
    assert settings["quality"]["methods"] == ["default", "two_at_a_time"]
    assert settings["quality"]["full_trainings"] == 10 and "full_trainings" not in settings["warm_start"]
    assert bench_run.quality_section(10) == "quality_10"  # another budget's table keeps its own section
    assert bench_run.quality_section(bench_run.FULL["quality"]["full_trainings"]) == "quality"
    assert settings["quality"]["benchmarks"] == settings["warm_start"]["benchmarks"] == ["synthetic"]
    assert settings["quality"]["seeds"] == settings["warm_start"]["seeds"] == [0, 1, 2]
    assert bench_run.FULL["quality"]["seeds"] == list(range(10))  # the suite's own settings are untouched
    for flag, value, message in [("--methods", "default,nope", "unknown method(s) nope"),
                                 ("--benchmarks", "mnist", "unknown benchmark(s) mnist"),
                                 ("--seeds", "0", "--seeds must be at least 1"),
                                 ("--full-trainings", "0", "--full-trainings must be at least 1")]:
        bad = subprocess.run([sys.executable, "bench/run.py", "--only", "quality", flag, value, "--no-write"],
                             cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
        assert bad.returncode == 2 and message in bad.stderr, bad.stderr


@needs_mnist
@pytest.mark.parametrize("mode", ["processes", "engine"])
def test_gpu_suite_code_paths_run_on_the_cpu(tmp_path, mode):
    """Each packing mode end to end on the CPU (--quick: well under a minute each on 2 cores)."""
    out = tmp_path / "gpu.json"
    _run("bench/gpu.py", "--device", "cpu", "--quick", "--mode", mode, "--json", str(out))
    figures = json.loads(out.read_text())
    results = figures["results"]
    assert results["mode"] == mode and [p["k"] for p in results["packs"]] == [1, 2]
    assert all(p["per_trial"] > 0 and p["aggregate"] >= p["per_trial"] for p in results["packs"])
    assert all(1 <= p["together"] <= p["k"] for p in results["packs"])
    assert results["to_target"]["standalone"]["best_val"] > 0
    assert ("engine" in results["to_target"]) is (mode == "engine")
    if mode == "engine":
        assert 0 < results["to_target"]["engine"]["best_val"] <= 1 and results["to_target"]["engine"]["epochs"] >= 1

    import gpu

    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n")
    write_section("gpu", gpu.render(figures), doc)
    assert "| trials on the GPU |" in doc.read_text()


def _report_rows(pid: int, created: float, started: float, reports: list[tuple[float, float]]) -> list[dict]:
    """A trial's result rows as bench/timed_recipe.py writes them: (t_report, report_s_prev) per report."""
    return [{"pid": pid, "t_process": created, "t_start": started, "t_report": at, "report_s_prev": previous}
            for at, previous in reports]


def test_the_overhead_breakdown_splits_known_stamps_into_known_parts():
    """Two workers (2 slots): worker 1 (created before the Tuner started) runs two trials, worker 2 one; each
    trial's last report is taken to last as long as its others."""
    import measures

    spans = {"preflight": (1.0, 2.0), "ray_start": (3.0, 5.0), "tuner_fit": (6.0, 20.0), "export": (21.0, 23.0)}
    hist = [_report_rows(1, 5.0, 7.0, [(9.0, 0.0), (11.0, 0.5)]),  # ends 11.5, 1 s reporting
            _report_rows(1, 5.0, 12.5, [(14.0, 0.0), (16.0, 0.5)]),  # 1 s after the first: ends 16.5, 1 s reporting
            _report_rows(2, 8.0, 9.0, [(12.0, 0.0), (18.0, 1.0)])]  # ends 19, 2 s reporting
    parts = measures.breakdown(spans, began=0.0, wall=25.0, hist=hist, standalone_s=12.0, concurrency=2)
    expected = {
        "load space": 1.0, "preflight": 1.0, "run dir": 1.0, "Ray start": 2.0, "trainable and Tuner": 1.0,
        "Tuner start until": 1.0,  # worker 2 exists 2 s after the Tuner started, over 2 slots
        "worker boot": 1.0,  # 1 s each
        "trial launch": 0.5,  # 1 s on worker 1
        "reporting": 2.0,  # 4 s
        "training slower": 1.25,  # busy 18.5 s - 4 s reporting - 12 s standalone, over 2 slots
        "uneven finish": 1.25,  # idle after each worker's last trial, (3.5 + 1) / 2, less the teardown
        "Tuner teardown": 1.0, "results": 1.0, "export": 2.0, "summary": 2.0,
    }
    assert {next(p for p in expected if k.startswith(p)): v for k, v in parts.items()} == pytest.approx(expected)
    assert sum(parts.values()) == pytest.approx(25.0 - 12.0 / 2)  # the wall time above the ideal


@pytest.mark.parametrize(("stamps", "together"), [([(0.0, 1.0), (2.0, 3.0)], 1), ([(0.0, 2.0), (1.0, 3.0)], 2)])
def test_trainings_packed_in_processes_count_as_together_only_when_they_overlapped(monkeypatch, stamps, together):
    """The "ran together" column in processes mode is measured from each child's start and end stamps."""
    import gpu

    children = [{"samples_per_second": 1.0, "started": start, "ended": end} for start, end in stamps]
    monkeypatch.setattr(gpu, "_children", lambda k, args: children[:k])
    assert [t["together"] for t in gpu.packed_processes(2, {})] == [together] * 2


def test_the_gpu_row_says_no_gpu_only_where_torch_saw_none():
    import run as bench_run

    assert "no GPU is lent to this machine" in bench_run._gpu_row(False)
    for cuda in (True, None):  # a GPU here, or figures from before the suite recorded it: the row points away
        row = bench_run._gpu_row(cuda)
        assert "no GPU" not in row and "bench/gpu.py" in row and "(#gpu-suite-results)" in row


@pytest.mark.parametrize("met, in_process, shown", [
    (True, False, "| **MET**: the commands, not in process |"),
    (False, True, "| **MISSED**: in process, not the commands |"),
    (True, True, "| **MET**: both readings |"),
    (False, False, "| **MISSED**: both readings |"),
])
def test_the_overhead_verdict_names_the_reading_it_holds_for(met, in_process, shown):
    """Measure 2 has two readings (fresh processes, or the `fit` call against the train() calls): a verdict that
    holds for one only says which, as measure 1's does."""
    import run as bench_run

    r = {"process_ratio": 0.96, "concurrency": 2, "ratio": 1.27, "largest": "Ray start", "met": met,
         "met_in_process": in_process}
    assert bench_run._goal_row("overhead", r).endswith(shown)


def test_the_overhead_section_compares_the_search_with_one_script_too():
    """The goal's baseline runs each configuration as a command of its own, each paying Python's start, imports, the
    data's load and a test; a script looping over them pays that once. The section gives that comparison as well."""
    import run as bench_run

    repeat = {"commands_sum_s": 84.0, "standalone_sum_s": 60.0, "trials": 8, "process_wall_s": 42.0}
    assert bench_run.one_script_ratio(repeat, 2) == pytest.approx(42.0 / (3.0 + 30.0))
    text = bench_run._one_script_text({"repeats": [repeat, {**repeat, "process_wall_s": 33.0}], "trials": 8,
                                       "concurrency": 2})
    assert "(3.0 s a command outside train()" in text and "`autotune run` takes 1.14x (per repeat 1.27, 1.00)" in text


def test_write_section_replaces_its_own_markers_only(tmp_path):
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\n<!-- a:start -->\nold a\n<!-- a:end -->\n\nhand-written\n")
    write_section("b", "new b", doc)
    write_section("a", "new a", doc)
    text = doc.read_text()
    assert "old a" not in text and "new a" in text and "hand-written" in text
    assert text.index("<!-- a:start -->") < text.index("hand-written") < text.index("<!-- b:start -->")
    write_section("b", "newer b", doc)
    assert doc.read_text().count("<!-- b:start -->") == 1 and "newer b" in doc.read_text()


def test_standalone_section_names_its_date_load_and_split():
    """The standalone speeds say when they were taken, on how busy a machine, and the split they trained on (the
    recipe's keyed split, not exactly 8k / 1k / 1k): a reader can tell a table older than the recipe it measures."""
    import standalone

    data = SimpleNamespace(train=range(7959), val=range(997), test=range(1044))
    text = standalone.render(["| mlp | 1 | 2.00 | 0.900 |"], data, command="python bench/standalone.py", epochs=3,
                             batch_size=128, load=(0.31, 0.52), date="2026-12-07 05:40")
    assert "(2026-12-07 05:40; load average 0.3 at the start, 0.5 at the end)" in text
    assert "split 7959 train / 997 val / 1044 test" in text and "median of epochs 2..3" in text
    assert text.endswith("| mlp | 1 | 2.00 | 0.900 |")


@needs_mnist
def test_standalone_speed_runs():
    done = _run("bench/standalone.py", "--no-write", "--epochs", "1")
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ")]
    assert len(rows) == 3  # one per model


def test_image_folder_bench_runs_and_two_readers_decode_each_image_once(tmp_path):
    done = subprocess.run([sys.executable, str(BENCH / "image_folder.py"), "--images", "40", "--no-write"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")})
    assert done.returncode == 0, done.stderr[-3000:]
    rows = {line.split(" | ")[0].strip("| "): line for line in done.stdout.splitlines() if line.startswith("| ")}
    assert "40 for 40 images" in rows["decodes, 2 trials loading at once from an empty cache"]
    assert "cached load and first epoch" in rows["images/s"] and "MiB for half the folder" in done.stdout


def test_trials_of_the_memory_measure_start_training_together(tmp_path, monkeypatch):
    """With START_TOGETHER naming 2 trials, the first to enter train() waits until the second has (the memory
    measure's 2 concurrent trials then overlap however far apart their workers started); without it, nothing waits."""
    import threading
    import time

    import timed_recipe

    started = tmp_path / "started"
    started.mkdir()
    monkeypatch.setattr(timed_recipe, "START_TOGETHER", tmp_path / "start-together")
    timed_recipe.START_TOGETHER.write_text(f"{started}:2")
    entered: list[float] = []
    first = threading.Thread(target=lambda: (timed_recipe._start_together(), entered.append(time.time())))
    first.start()
    deadline = time.time() + 10
    while not any(started.iterdir()) and time.time() < deadline:  # it has come to the barrier
        time.sleep(0.05)
    time.sleep(0.5)  # time to go through it, if it did not wait
    assert any(started.iterdir()) and first.is_alive() and not entered  # alone, it waits
    second_entered = time.time()
    timed_recipe._start_together()  # the second trial
    first.join(timeout=10)
    assert entered and entered[0] >= second_entered
    assert len(list(started.iterdir())) == 2

    timed_recipe.START_TOGETHER.unlink()
    timed_recipe._start_together()  # no barrier: returns at once, leaves nothing
    assert len(list(started.iterdir())) == 2


@pytest.mark.parametrize("script", ["simulate_brackets.py", "simulate_compare.py", "simulate_equal_trials.py"])
def test_a_simulation_script_without_its_arguments_prints_its_usage(script):
    done = subprocess.run([sys.executable, str(BENCH / script)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"python bench/{script}" in done.stderr


def test_a_part_of_the_suite_is_not_written_over_its_whole_section():
    """`python bench/run.py --only scale` rewrote the suite section with measure 4 alone, dropping the figures of
    measures 1, 2, 3, 4b and 5: a run of part of the suite names what it left out, and its section is not written."""
    import run

    assert run.partial_suite({"scale": {}, "quality": {}}) == ["search", "overhead", "memory", "scale_10k",
                                                                "concurrency"]
    assert run.partial_suite({name: {} for name in run.SUITE}) == []
    assert run.partial_suite({"quality": {}, "warm_start": {}}) == []  # sections of their own
