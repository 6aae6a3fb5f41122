"""What the benchmark scripts share: paths, the machine's description, memory of a process tree, the doc section.

Linux only: memory is read from /proc (RSS and PSS of every process below a root pid), so no psutil is needed.
"""
from __future__ import annotations

import logging
import os
import platform
import re
import shutil
import statistics
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench"
MNIST = (REPO / ".." / "shared" / "data" / "mnist").resolve()
DOC = REPO / "docs" / "benchmarks.md"
MNIST_DATA = {"dataset": "idx", "root": str(MNIST), "val_fraction": 0.1, "test_fraction": 0.1}  # 8k / 1k / 1k


def arguments(doc: str, least: int, most: int | None = None) -> list[str]:
    """The command line's arguments (`sys.argv[1:]`), `least` to `most` of them (default: exactly `least`); else
    the script's docstring `doc` on stderr and exit status 2."""
    given = sys.argv[1:]
    if not least <= len(given) <= (least if most is None else most) or {"-h", "--help"} & set(given):
        print(doc.strip(), file=sys.stderr)
        raise SystemExit(2)
    return given


def quiet_progress() -> None:
    """The engine's progress lines off: `autotune.fit` shows them to a program that set up no logging, and a
    measure runs up to thousands of searches and prints its own lines."""
    logging.getLogger("autotune").setLevel(logging.WARNING)


def machine() -> dict[str, Any]:
    """CPU model, cores, RAM, OS (`autotune.machine`, as a model card records them) and library versions, and the
    load average now."""
    from autotune.machine import machine as hardware

    versions = {}
    for package in ("torch", "ray", "optuna", "numpy"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    found = hardware()
    return {
        **{key: found[key] for key in ("cpu", "cores", "ram_gib", "os")},
        "python": platform.python_version(),
        **versions,
        "load_average": os.getloadavg()[0],
    }


# ---------------------------------------------------------------------------------------------- memory
def _parents() -> dict[int, int]:
    """pid -> parent pid of every process now."""
    parents = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                stat = Path(entry.path, "stat").read_text()
            except OSError:  # it exited meanwhile
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    return parents


def process_tree(root: int) -> list[int]:
    """`root` and every process below it (Ray's gcs_server, raylet and workers descend from the driver)."""
    children: dict[int, list[int]] = {}
    for pid, parent in _parents().items():
        children.setdefault(parent, []).append(pid)
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, ()))
    return tree


def memory_mib(pid: int) -> tuple[float, float]:
    """(RSS, PSS) of one process in MiB; PSS splits shared pages (libraries, Ray's object store) among the
    processes that map them, so PSS sums to the tree's real use. (0, 0) once it has exited."""
    values = {"Rss": 0, "Pss": 0}
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            key = line.split(":", 1)[0]
            if key in values:
                values[key] = int(line.split()[1])
    except OSError:
        pass
    return values["Rss"] / 1024, values["Pss"] / 1024


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process so far (0 once it has exited)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def role(pid: int, root: int) -> str | None:
    """What a process of the tree is: driver, Ray worker (`ray::...`: trials, idle workers, Ray's agents),
    raylet, gcs_server or other (Ray's dashboard, log monitor); None once it has exited (a zombie has no
    command line)."""
    if pid == root:
        return "driver"
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
    except OSError:
        return None
    if not command.strip():
        return None
    if command.startswith("ray::"):
        return "ray worker"
    name = command.split()[0].rsplit("/", 1)[-1]
    return name if name in ("raylet", "gcs_server") else "other"


class TreeSampler:
    """Samples the process tree under `root` in a thread: peak memory (`peak_rss`/`peak_pss`, MiB; with
    `memory=True`) and CPU seconds used by each role of process (`cpu_by_role()`).

        with TreeSampler(os.getpid()) as tree:
            work()
        tree.peak_pss, tree.cpu_by_role()
    """

    def __init__(self, root: int, interval: float = 0.25, *, memory: bool = True) -> None:
        self.root, self.interval, self.memory = root, interval, memory
        self.peak_rss = self.peak_pss = 0.0
        self.peak_processes = 0
        self.samples: list[tuple[float, float, float]] = []  # (time, rss, pss), with memory=True
        self._cpu: dict[int, tuple[str | None, float, float]] = {}  # pid -> (role, CPU s at first sight, last)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> None:
        pids = process_tree(self.root)
        initial, rss, pss = not self._cpu, 0.0, 0.0
        for pid in pids:
            if self.memory:
                r, p = memory_mib(pid)
                rss, pss = rss + r, pss + p
            used = cpu_seconds(pid)
            # a process born after the first sample counts from its birth
            kind, first, last = self._cpu.get(pid, (None, used if initial else 0.0, 0.0))
            # a worker's title changes once it runs; an exited process keeps its last role and CPU time
            self._cpu[pid] = (role(pid, self.root) or kind, first, max(used, last, first))
        if self.memory:
            self.samples.append((time.time(), rss, pss))
        self.peak_rss, self.peak_pss = max(self.peak_rss, rss), max(self.peak_pss, pss)
        self.peak_processes = max(self.peak_processes, len(pids))

    def peak_between(self, start: float, end: float) -> tuple[float, float]:
        """The highest (RSS, PSS) sampled between two time.time() stamps."""
        inside = [(rss, pss) for t, rss, pss in self.samples if start <= t <= end] or [(0.0, 0.0)]
        return max(r for r, _ in inside), max(p for _, p in inside)

    def cpu_by_role(self) -> dict[str, float]:
        """CPU seconds each role used while sampled (up to its last sample for a process that exited)."""
        out: dict[str, float] = {}
        for kind, first, last in self._cpu.values():
            out[kind or "other"] = out.get(kind or "other", 0.0) + last - first
        return out

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> TreeSampler:
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()


# ---------------------------------------------------------------------------------------------- figures
def median(values: Iterable[float | None]) -> float | None:
    """The median of the values that are not None (None when there are none)."""
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def fmt(value: float | None, spec: str = ".2f", suffix: str = "") -> str:
    return "n/a" if value is None else f"{value:{spec}}{suffix}"


def verdict(met: bool | None) -> str:
    return "n/a" if met is None else "**MET**" if met else "**MISSED**"


# ---------------------------------------------------------------------------------------------- the doc
def write_section(name: str, body: str, doc: Path = DOC) -> None:
    """Put `body` between `<!-- name:start -->` and `<!-- name:end -->` in `doc` (appended when missing)."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    section = f"{start}\n{body.strip()}\n{end}"
    text = doc.read_text() if doc.exists() else "# Benchmarks\n"
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.DOTALL)
    text = pattern.sub(lambda _: section, text) if pattern.search(text) else text.rstrip() + "\n\n" + section
    doc.write_text(text.rstrip() + "\n")


@contextmanager
def shared_ray() -> Iterator[None]:
    """One local Ray (2 CPUs) for the searches inside: each `fit` joins it rather than starting its own (about 5 s
    a search); at the end it is shut down and its temp folder removed. Nothing when this process already runs one
    (its owner shuts it down)."""
    from autotune.engine import search  # first: it quiets Ray's environment before Ray is imported

    if search.ray.is_initialized():
        yield
        return
    temp = f"/tmp/rt_{os.getpid()}"
    search.ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR,
                    _temp_dir=temp)
    try:
        yield
    finally:
        search.ray.shutdown()
        shutil.rmtree(temp, ignore_errors=True)
