"""The hardware a search ran on, as a paper's appendix or a benchmark gives it: `machine()`. Imports only the
standard library (torch, for the GPUs, where it is already imported)."""
from __future__ import annotations

import os
import platform
import sys
from pathlib import Path
from typing import Any

__all__ = ["machine", "ram_bytes", "usable_cpus"]


def machine() -> dict[str, Any]:
    """The CPU's model, its cores, the memory in GiB (None where the system does not say), the operating system,
    and the GPUs torch sees, by name (none on a CPU machine, or where torch is not imported: this never imports
    it)."""
    return {"cpu": _cpu(), "cores": os.cpu_count(), "ram_gib": _ram_gib(), "os": platform.platform(terse=True),
            "gpus": _gpus()}


def usable_cpus() -> int:
    """The CPUs this process may run on: its CPU affinity (a batch scheduler's allocation, `taskset`), where the
    system keeps one, else the machine's cores."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS and Windows keep no affinity
        return os.cpu_count() or 1


def _cpu() -> str:
    """The CPU's model name (Linux's /proc/cpuinfo), else what `platform` says of the processor."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ram_gib() -> float | None:
    ram = ram_bytes()
    return None if ram is None else round(ram / 2**30, 1)


def ram_bytes() -> int | None:
    """The machine's memory in bytes; None where the system does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):  # no sysconf (Windows), or a name the system lacks
        return None


def _gpus() -> list[str]:
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available():
        return []
    return [torch.cuda.get_device_name(index) for index in range(torch.cuda.device_count())]
