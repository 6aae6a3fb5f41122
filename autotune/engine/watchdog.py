"""While a search runs on a joined Ray cluster: when the whole cluster is gone (its GCS unreachable), the process
ends with one line that says where the run's state is and what continues it, and exit status `EXIT_CLUSTER_GONE`.

Without it, Ray's core worker ends the driver after 60 s from C++ ("Failed to connect to GCS within 60 seconds
... The program will terminate", exit 1): no Python handler runs, so no summary and no resume command.

    with watching_cluster("10.0.0.5:6379", "auto", where.experiment, "autotune run ... --resume"):
        grid = tuner.fit()
"""
from __future__ import annotations

import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from autotune.engine.ray_internals import gcs_reconnect_timeout_s

__all__ = ["CHECK_EVERY_S", "EXIT_CLUSTER_GONE", "ahead_of_ray_s", "watching_cluster"]

CHECK_EVERY_S = 2.0  # a TCP connect to the GCS at most this often (and at most this long each)
AHEAD_S = 10.0  # the cluster counts as gone this long before Ray's core worker would end the process
EXIT_CLUSTER_GONE = 4  # the CLI's others: 2 bad input, 3 storage full, 130 interrupted


def _reachable(host: str, port: int) -> bool:
    """Whether something accepts a TCP connection at host:port within CHECK_EVERY_S."""
    try:
        with socket.create_connection((host, port), timeout=CHECK_EVERY_S):
            return True
    except OSError:
        return False


def ahead_of_ray_s() -> float:
    """How long the GCS may stay unreachable before the cluster counts as gone: AHEAD_S less than Ray waits before
    it ends the process itself (60 s unless RAY_gcs_rpc_server_reconnect_timeout_s says otherwise), so that a GCS
    back within Ray's own time (a head with GCS fault tolerance, restarted) does not end the search."""
    return max(gcs_reconnect_timeout_s() - AHEAD_S, 2 * CHECK_EVERY_S)


def _watch(gcs_address: str, cluster: str, run_dir: str, resume: str, stop: threading.Event) -> None:
    """Until `stop` is set, check the GCS at `gcs_address`; once it has been unreachable for `ahead_of_ray_s()`,
    end the process (see `watching_cluster`)."""
    host, _, port = gcs_address.rpartition(":")
    gone_after = ahead_of_ray_s()
    lost_since: float | None = None
    while not stop.wait(CHECK_EVERY_S):
        if _reachable(host.strip("[]"), int(port)):
            lost_since = None
            continue
        lost_since = lost_since or time.monotonic()
        if time.monotonic() - lost_since >= gone_after and not stop.is_set():
            sys.stdout.flush()
            # the process's last words: stderr directly, as a logging handler may route or buffer them
            sys.stderr.write(f"autotune: the Ray cluster at {cluster} is gone (unreachable for "
                             f"{time.monotonic() - lost_since:.0f} s); the run's state is saved in {run_dir}: start "
                             f"a new cluster and continue the run with: {resume}\n")
            sys.stderr.flush()
            # Not an interrupt of the main thread (_thread.interrupt_main, then the CLI's own exit): tried, the
            # main thread, waiting in Ray's calls to the lost cluster, never acted on it, and Ray's C++ ended the
            # process after 60 s with status 1. sys.exit here would end this thread only.
            os._exit(EXIT_CLUSTER_GONE)


@contextmanager
def watching_cluster(gcs_address: str, cluster: str, run_dir: str, resume: str) -> Iterator[None]:
    """While the block runs, a daemon thread checks the cluster's GCS at `gcs_address` (HOST:PORT) every
    CHECK_EVERY_S; unreachable for `ahead_of_ray_s()`, it writes one line to stderr naming the cluster (as `cluster`),
    the run's folder `run_dir` and `resume` (what continues the run), and ends the process with status
    EXIT_CLUSTER_GONE."""
    stop = threading.Event()
    thread = threading.Thread(target=_watch, args=(gcs_address, cluster, run_dir, resume, stop), daemon=True,
                              name="autotune-cluster-watchdog")
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
