"""The image_classification recipe with wall-clock stamps in every report, for the benchmarks.

Training is the shipped recipe's, unchanged; each report's metrics also carry
- `t_start`: when `train()` was entered (time.time(), the same clock in the driver and every trial);
- `t_report`: when the recipe called report (the epoch and its validation are done);
- `report_s_prev`: how long the previous report call took (writing and persisting the checkpoint, when the
  engine keeps it, and the metrics);
- `t_process`: when the process running the trial (a Ray worker) was created;
- `cpu_thread_s`, `cpu_process_s`: CPU seconds since `train()` began, of its thread and of its whole process
  (the difference is what other threads of the process, e.g. Ray's, used meanwhile);
- `pss_mib`, `anon_mib`: the process's proportional and private (anonymous) memory, from /proc: a trial
  holding its own copy of the data has it in its anonymous memory.
A space uses it with `recipe: <repo>/bench/timed_recipe.py`.

While the file `START_TOGETHER` holds `DIR:N` (the memory measure writes it for its 2 concurrent trials), each
`train()` first leaves a file in DIR and waits until N are there (at most 120 s): the trials a measure runs side by
side then train side by side, however far apart their worker processes finished starting. A file, not an
environment variable: the quick suite's Ray is started before the measure, so its workers never see one set then.
"""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

from autotune.recipes import Checkpoint, Report
from autotune.recipes import image_classification as base

SCHEMA = base.SCHEMA
TRAINING_ONLY_DATA_KEYS = base.TRAINING_ONLY_DATA_KEYS
load_data, evaluate, export, dry_run = base.load_data, base.evaluate, base.export, base.dry_run


def _process_created() -> float:
    """This process's creation time (time.time() clock), from /proc: its start and the uptime, since boot."""
    ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
    uptime = float(Path("/proc/uptime").read_text().split()[0])
    return time.time() - (uptime - ticks / os.sysconf("SC_CLK_TCK"))


def _memory_mib() -> dict[str, float]:
    wanted = {"Pss": "pss_mib", "Anonymous": "anon_mib"}
    out = {}
    for line in Path("/proc/self/smaps_rollup").read_text().splitlines():
        key = line.split(":", 1)[0]
        if key in wanted:
            out[wanted[key]] = int(line.split()[1]) / 1024
    return out


START_TOGETHER = Path(tempfile.gettempdir(), "autotune-bench-start-together")


def _start_together() -> None:
    """Wait, at most 120 s, until the number of trials `START_TOGETHER` names have entered `train()`."""
    try:
        folder, count = START_TOGETHER.read_text().rsplit(":", 1)
    except FileNotFoundError:
        return
    Path(folder, f"{os.getpid()}-{time.time_ns()}").touch()
    deadline = time.time() + 120
    while len(os.listdir(folder)) < int(count) and time.time() < deadline:
        time.sleep(0.05)


def train(config: dict[str, Any], report: Report, *, data: Any = None, checkpoint: str | None = None) -> None:
    _start_together()
    started, previous, process = time.time(), 0.0, _process_created()
    thread_cpu, process_cpu = time.thread_time(), time.process_time()

    def timed(metrics: dict[str, float], checkpoint: Checkpoint) -> None:
        nonlocal previous
        called = time.time()
        report({**metrics, "t_start": started, "t_report": called, "report_s_prev": previous,
                "t_process": process, "cpu_thread_s": time.thread_time() - thread_cpu,
                "cpu_process_s": time.process_time() - process_cpu, **_memory_mib()}, checkpoint)
        previous = time.time() - called

    base.train(config, timed, data=data, checkpoint=checkpoint)
