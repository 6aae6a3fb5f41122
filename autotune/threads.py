"""The threads torch trains on: a trial's CPU share, recorded in the model card, so that `autotune train MODEL_DIR`
trains on as many (a sum split over other threads rounds otherwise, and the weights drift apart over the epochs).

    use_threads(trial_threads(space.search.resources.cpu))
"""
from __future__ import annotations

import os
import sys

__all__ = ["trial_threads", "use_threads"]


def trial_threads(cpus: float) -> int:
    """The threads of a trial given `cpus` (search.resources.cpu): its whole CPUs, at least 1."""
    return max(1, int(cpus))


def use_threads(threads: int) -> None:
    """Give torch `threads`: set now where torch is imported, else at its import (OMP_NUM_THREADS, which torch reads
    then). A recipe that does not use torch never imports it: 1-2 s and some 300 MiB of every trial worker."""
    torch = sys.modules.get("torch")
    if torch is None:
        os.environ["OMP_NUM_THREADS"] = str(threads)
    elif torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
