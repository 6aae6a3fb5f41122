"""The C heap's free pages handed back to the system (glibc's `malloc_trim`; nothing elsewhere).

glibc keeps what a process frees for its next allocations, in one heap (arena) per thread that allocated it; a
thread does not reuse another's arena. The driver's transient work and each trial's data, deserialized by a thread of
its own in a reused trial worker, leave freed pages that are otherwise never returned."""
from __future__ import annotations

import ctypes
from collections.abc import Callable

__all__ = ["trim_heap"]


def _find_malloc_trim() -> Callable[[int], int] | None:
    """glibc's `malloc_trim(pad)`, which returns every arena's free pages to the system; None without glibc."""
    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None


_malloc_trim = _find_malloc_trim()


def trim_heap() -> None:
    """Hand the C heap's free pages back to the system (nothing without glibc)."""
    if _malloc_trim is not None:
        _malloc_trim(0)
