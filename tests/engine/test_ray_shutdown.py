"""Stopping the Ray a search started leaves this process's signal handlers as they were."""
import logging
import os
import shutil
import signal

import pytest


def _ignores_sigterm() -> bool:
    """Whether the kernel ignores SIGTERM for this process (`signal.getsignal` gives Python's record, not that)."""
    with open("/proc/self/status") as status:
        ignored = next(int(line.split()[1], 16) for line in status if line.startswith("SigIgn:"))
    return bool(ignored >> (signal.SIGTERM - 1) & 1)


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads the kernel's record of /proc")
def test_stopping_ray_keeps_an_ignored_sigterm_ignored_while_its_processes_stop(monkeypatch):
    """Ray's core worker put the default SIGTERM handler back as it shut down, a second before Ray's own processes
    were stopped: a second SIGTERM, ignored while a search stops, killed `autotune run` then (exit -15), its summary
    and the command that resumes it unprinted. Set again only as those processes were stopped, it still did so while
    Ray removed its spilled objects just before (a CI run's search, SIGTERMed every 0.2 s, ended -15)."""
    from autotune.engine import search
    import ray
    from ray._private.node import Node

    if ray.is_initialized():
        ray.shutdown()
    temp_dir = f"/tmp/rt_{os.getpid()}_shutdown"
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING,
             _temp_dir=temp_dir)
    mine = signal.getsignal(signal.SIGTERM)
    while_stopping = []
    kill, destroy = Node.kill_all_processes, Node.destroy_external_storage

    def seen(self, *args, **kwargs):
        while_stopping.append(("kill", _ignores_sigterm()))
        return kill(self, *args, **kwargs)

    def seen_destroying(self):
        while_stopping.append(("spilled", _ignores_sigterm()))
        return destroy(self)

    monkeypatch.setattr(Node, "kill_all_processes", seen)
    monkeypatch.setattr(Node, "destroy_external_storage", seen_destroying)
    try:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        search.shutdown()
        assert while_stopping == [("spilled", True), ("kill", True)]
        assert _ignores_sigterm() and signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGTERM, mine)
        if ray.is_initialized():
            ray.shutdown()
        shutil.rmtree(temp_dir, ignore_errors=True)
    assert Node.kill_all_processes is seen  # put back as it was
    assert "disconnect" not in vars(ray._private.state.state)
