"""Ray's private APIs that the engine's checkpoints and logs rely on, in one place: an upgrade of Ray that changes
one of them breaks this file only. Each use says why no public API does.
"""
from __future__ import annotations

from ray.experimental import internal_kv
from ray.tune.logger import TBXLoggerCallback
from tensorboardX import SummaryWriter

__all__ = ["kv_delete", "kv_get", "kv_put", "TensorBoardLogger"]

# The Ray cluster's own key-value store (held by its GCS): the driver publishes there what every trial reads while
# it runs (the rank of the best checkpoint of the search so far). Ray's public alternative is an actor, a process
# of its own per search.
_NAMESPACE = "autotune"


def kv_put(key: str, value: bytes) -> None:
    internal_kv._internal_kv_put(key, value, overwrite=True, namespace=_NAMESPACE)


def kv_get(key: str) -> bytes | None:
    return internal_kv._internal_kv_get(key, namespace=_NAMESPACE)


def kv_delete(key: str) -> None:
    internal_kv._internal_kv_del(key, namespace=_NAMESPACE)


class _Writer(SummaryWriter):
    def flush(self) -> None:
        """Nothing: Ray flushes after every result, and tensorboardX's flush waits for the disk (fsync). The
        writer's own thread writes every 30 s, and closing the writer at the trial's end flushes it."""


class TensorBoardLogger(TBXLoggerCallback):
    """Ray's TensorBoard logger (the same files and scalars per trial) without waiting for the disk after each
    result: a killed search loses the last 30 s of a running trial's TensorBoard scalars, not its results."""

    def __init__(self) -> None:
        super().__init__()
        self._summary_writer_cls = _Writer  # private: Ray's only way to choose the writer it opens per trial
