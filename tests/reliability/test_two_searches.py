"""Two searches at once on one machine, in real `autotune run` processes: the same run is refused to the second
(and the first finishes untouched); two different runs both finish, each on its own local Ray, the second saying
that they share the CPUs."""
from __future__ import annotations

import getpass
import json
import logging
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import autotune
from autotune.engine.locks import LocalRay, hold_run, refuse_running
from autotune.engine.search import _warn_shared_cpus
from autotune.engine.storage import RunLocation, _refuse_unwritable, prepare_run, run_location
from autotune.errors import UserError
from autotune.space import load_space
from reliability_helpers import TOY


def _space(name: str, gate: Path) -> str:
    """4 trials of 3 epochs, 2 at a time, each epoch held while the file `gate` exists: the test removes it once the
    second search has done what it checks, whatever the machine's load."""
    return (f"name: {name}\nrecipe: {TOY}\nmodel: {{x: {{uniform: [0.0, 1.0]}}, y: {{uniform: [0.0, 1.0]}}}}\n"
            f"train: {{epochs: 3, hold_while_exists: {str(gate)!r}}}\n"
            f"search: {{trials: 4, max_concurrent: 2, scheduler: fifo, seed: 0, resources: {{cpu: 1}}}}\n"
            f"export: {{dir: models/{name}}}\n")


CPUS = max(2, os.cpu_count() or 1)  # each search claims the machine's cores: two claim more than it has


def _start(cwd: Path, space: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "XDG_CACHE_HOME": str(cwd / "cache")}
    return subprocess.Popen([sys.executable, "-m", "autotune", "run", space, "--num-cpus", str(CPUS)], cwd=cwd,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finished(run_dir: Path) -> int:
    """How many trials of the run reported their third (last) epoch."""
    lines = [line for f in run_dir.glob("trial_*/result.json") for line in f.read_text().splitlines() if line]
    return sum(json.loads(line).get("epoch") == 3 for line in lines)


def _assert_complete(process: subprocess.Popen, run_dir: Path) -> str:
    out, err = process.communicate(timeout=300)  # its own Ray, the trials and the export, beside another
    assert process.returncode == 0, out + err
    assert _finished(run_dir) == 4
    assert len((run_dir / "trials.csv").read_text().strip().splitlines()) == 1 + 4
    assert (run_dir.parents[1] / "models" / run_dir.name / "model.json").is_file()
    return out


def test_the_same_run_started_twice_is_refused_and_the_first_is_untouched(tmp_path, wait_for):
    gate = tmp_path / "gate"
    gate.touch()  # the first search's trials wait until the second was refused
    (tmp_path / "twice.yaml").write_text(_space("twice", gate))
    run_dir = tmp_path / "runs" / "twice"
    first = _start(tmp_path, "twice.yaml")
    wait_for(lambda: any(run_dir.glob("trial_*")), first, "the first search's trials", 120)

    second = _start(tmp_path, "twice.yaml")
    out, err = second.communicate(timeout=60)
    assert second.returncode == 2, out + err
    assert err.splitlines() == [
        f"autotune run: error: the run at {run_dir} is already running (process {first.pid} on "
        f"{socket.gethostname()}); wait for it to end, or run this search under another name (--set name=...)"
    ]
    assert "another autotune search" not in out  # refused before its Ray (which would say so) started
    assert _finished(run_dir) == 0 and first.poll() is None  # the refusal came while the first one ran

    gate.unlink()
    _assert_complete(first, run_dir)


def test_two_different_searches_at_once_both_finish_sharing_the_cpus(tmp_path, wait_for):
    gate = tmp_path / "gate"
    gate.touch()  # the trials of both wait until the second search has its local Ray
    for name in ("one", "two"):
        (tmp_path / f"{name}.yaml").write_text(_space(name, gate))
    registry = tmp_path / "cache" / "autotune" / "local-ray"
    first = _start(tmp_path, "one.yaml")
    wait_for(lambda: (registry / f"{first.pid}.json").is_file(), first, "the first search's local Ray", 120)
    second = _start(tmp_path, "two.yaml")
    wait_for(lambda: (registry / f"{second.pid}.json").is_file(), second, "the second search's local Ray", 120)
    assert first.poll() is None  # both run at once
    gate.unlink()

    out = _assert_complete(second, tmp_path / "runs" / "two")
    _assert_complete(first, tmp_path / "runs" / "one")
    assert (f"another autotune search runs its own Ray on this machine: {tmp_path / 'runs' / 'one'} "
            f"(pid {first.pid}, {CPUS} CPUs). This search starts one too: the searches share the {os.cpu_count()} "
            f"cores ({2 * CPUS} CPUs claimed in all)") in out, out
    assert list(registry.iterdir()) == []  # each search removed its registration at its end


@contextmanager
def _held(where: RunLocation) -> Iterator[subprocess.Popen]:
    """Another process holding the run `where` (its lock) while the block runs; killed (SIGKILL) at its end."""
    holder = subprocess.Popen(
        [sys.executable, "-c", "import time\nfrom autotune.engine.locks import hold_run\n"
         "from autotune.engine.storage import run_location\n"
         f"with hold_run(run_location({where.storage!r}, {where.name!r})):\n"
         "    print('held', flush=True)\n    time.sleep(60)\n"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        yield holder
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()


def test_a_run_held_by_a_killed_process_is_free_at_once(tmp_path):
    """The lock is the OS's: a SIGKILL releases it (a `--resume` after a kill: test_resume.py)."""
    where = run_location(str(tmp_path / "runs"), "held")
    with _held(where) as holder:
        with pytest.raises(UserError, match=f"already running \\(process {holder.pid} on "):
            with hold_run(where):
                pass
        with pytest.raises(UserError, match=f"already running \\(process {holder.pid} on "):
            refuse_running(where)  # the same refusal, before a search loads its data
    refuse_running(where)
    with hold_run(where):
        pass


def test_a_run_lock_is_made_with_the_modes_the_umask_leaves(tmp_path):
    """In a team's shared folder (`umask 002`) the run's lock file is writable by the group: it was made rw-r--r--
    whatever the umask, and a teammate's `--resume` of the run could not lock it."""
    before = os.umask(0o002)
    try:
        with hold_run(run_location(str(tmp_path / "runs"), "shared")):
            pass
    finally:
        os.umask(before)
    assert (tmp_path / "runs" / ".shared.lock").stat().st_mode & 0o777 == 0o664


@pytest.mark.unprivileged
def test_a_run_whose_lock_file_this_user_cannot_write_is_seen_running_or_named_with_its_owner(tmp_path):
    """A teammate's lock file this user cannot write: `autotune ls runs` called the teammate's running search
    killed, its `--resume` said "cannot write the run's lock file (Permission denied); give --storage a folder you
    can write", whether or not the run was running."""
    where = run_location(str(tmp_path / "runs"), "theirs")
    lock = tmp_path / "runs" / ".theirs.lock"
    with _held(where) as holder:
        lock.chmod(0o444)
        for check in (refuse_running, lambda w: hold_run(w).__enter__()):
            with pytest.raises(UserError, match=f"already running \\(process {holder.pid} on "):
                check(where)
    refuse_running(where)
    with pytest.raises(UserError) as refused:
        with hold_run(where):
            pass
    assert str(refused.value) == (
        f"cannot write the run's lock file {lock}: {lock} ({getpass.getuser()}, -r--r--r--) is not writable by you; "
        f"ask its owner to `chmod -R g+w {lock}` (a team's shared folder: searches and exports run under `umask 002` "
        "make their files the group's to read and write); no process runs the run now, so you may also remove the "
        "file")
    lock.unlink()
    (tmp_path / "runs").chmod(0o555)  # a teammate's storage folder
    try:
        with pytest.raises(UserError, match=f"cannot write the run's lock file {lock}: {tmp_path / 'runs'} \\("
                           f"{getpass.getuser()}, dr-xr-xr-x\\) is not writable by you; .* or give storage a "
                           "folder you can write$"):
            with hold_run(where):
                pass
    finally:
        (tmp_path / "runs").chmod(0o755)


@pytest.mark.unprivileged
def test_a_run_this_user_cannot_write_is_neither_resumed_nor_restarted_naming_the_file_its_owner_and_the_ways_on(
        tmp_path):
    """A teammate's run made under `umask 022`: its resume failed mid-search with SQLite's "attempt to write a
    readonly database" traceback; its --restart in pyarrow's "Cannot delete directory entry" traceback."""
    where = run_location(str(tmp_path / "runs"), "theirs")
    (where.state / "trial_1").mkdir(parents=True)
    (where.state / "study.db").write_text("")
    (where.state / "trial_1").chmod(0o555)
    try:
        with pytest.raises(UserError) as resumed:
            _refuse_unwritable(where)
        with pytest.raises(UserError) as restarted:  # a --restart failed in pyarrow's traceback, or deleted a part
            prepare_run(load_space(_space("theirs", tmp_path / "gate")), where, resume=False, restart=True)
    finally:
        (where.state / "trial_1").chmod(0o755)
    blocked = (f"{where.state / 'trial_1'} ({getpass.getuser()}, dr-xr-xr-x) is not writable by you; ask its owner "
               f"to `chmod -R g+w {where.state}` (a team's shared folder: searches and exports run under `umask 002` "
               "make their files the group's to read and write)")
    assert str(resumed.value) == (
        f"cannot resume the run at {where.state} (a resume writes into it): {blocked}; or go on from its finished "
        f"trials in a run of your own: warm_start='{where.state}' with another overrides=['name=...']")
    assert str(restarted.value) == (f"cannot start the run at {where.state} again (that deletes it): {blocked}; or "
                                    "run this search under another name (overrides=['name=...'])")
    assert (where.state / "study.db").is_file()


def test_a_run_given_as_a_folder_and_as_a_file_uri_is_one_run(tmp_path, monkeypatch):
    """`--storage runs` and `--storage file:///.../runs` are the same run folder: a `--resume` spelled with the URI
    ran while the search given the folder ran, and both exported (the URI's lock was beside its state mirror)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    (tmp_path / "link").symlink_to(tmp_path)
    folder = run_location(str(tmp_path / "runs"), "one")
    for uri in (f"file://{tmp_path}/runs", f"file://{tmp_path}/link/runs/"):
        with hold_run(folder):
            with pytest.raises(UserError, match=f"the run at {uri.rstrip('/')}/one is already running \\(process "):
                refuse_running(run_location(uri, "one"))
        with hold_run(run_location(uri, "one")):
            with pytest.raises(UserError, match=f"the run at {tmp_path}/runs/one is already running"):
                refuse_running(folder)
            with pytest.raises(UserError, match=f"the run at {uri.rstrip('/')}/one is running \\(process "):
                autotune.export(f"{uri}/one", "abc")  # read from its mirror, locked beside the folder


def test_export_and_report_of_a_run_another_process_runs_name_it_and_say_to_wait(tmp_path, cli):
    """`autotune export RUN --trial ID` of a running search said "resume it with `autotune run SPACE --resume`
    first", which that search's lock refuses, and under a resume (trials.csv of its last session) it exported a
    checkpoint of a trial still training, or none; `autotune report` before its first trial said it was no run."""
    run = tmp_path / "runs" / "held"
    run.mkdir(parents=True)
    (run / "space.json").write_text("{}")  # as a search writes it before its first trial
    holder = f"(process {os.getpid()} on {socket.gethostname()})"
    with hold_run(run_location(str(tmp_path / "runs"), "held")):
        code, _, err = cli("report", run)
        assert code == 2 and f"holds no trials.csv yet: its search is running {holder}; `autotune dashboard" in err
        for trials in ("", "trial_id\nabc\n"):  # a search, then a resume of one that ended a session
            if trials:
                (run / "trials.csv").write_text(trials)
            code, _, err = cli("export", run, "--trial", "abc")
            assert code == 2 and err == (f"autotune export: error: the run at {run} is running {holder}: its trials "
                                         "and their checkpoints change until it ends; export a trial once it has "
                                         "ended\n")
    (run / "trials.csv").unlink()
    code, _, err = cli("export", run, "--trial", "abc")  # none runs it: a killed search, to resume
    assert code == 2 and "resume it with `autotune run SPACE --resume` first" in err


def test_searches_whose_num_cpus_split_the_cores_are_not_warned(caplog):
    """The warning of another search's local Ray comes only when the searches claim more CPUs than the machine
    has: two searches that split its cores with --num-cpus, as the warning advises, are not warned."""
    cores = os.cpu_count() or 1
    with caplog.at_level(logging.WARNING, logger="autotune"):
        _warn_shared_cpus([{"run": "runs/one", "pid": 1, "num_cpus": cores - 1}], 1)
        assert not caplog.records
        _warn_shared_cpus([{"run": "runs/one", "pid": 1, "num_cpus": cores}], 1)
    assert f"the searches share the {cores} cores ({cores + 1} CPUs claimed in all)" in caplog.text


def test_a_killed_search_s_ray_temp_folder_is_removed_by_the_next_search(tmp_path, monkeypatch):
    """A search killed (SIGKILL, an OOM kill) left its local Ray's `rt_<pid>` folder behind for good, some 300 KB of
    logs and sockets each: the next search to start a local Ray removes it with the dead one's registration. A
    folder its registration names otherwise is not touched."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    folder = tmp_path / "cache" / "autotune" / "local-ray"
    folder.mkdir(parents=True)
    dead = [subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                           check=True).stdout.strip() for _ in range(2)]
    left = tmp_path / f"rt_{dead[0]}"
    (left / "session_latest" / "logs").mkdir(parents=True)
    other = tmp_path / "precious"
    other.mkdir()
    for pid, temp in zip(dead, (left, other)):
        (folder / f"{pid}.json").write_text(json.dumps({"pid": int(pid), "run": "x", "num_cpus": 1, "temp": str(temp)}))
    ray = LocalRay("toy", 1, str(tmp_path / f"rt_{os.getpid()}"))
    ray.close()
    assert ray.others == [] and not left.exists() and other.is_dir()
    assert sorted(folder.iterdir()) == []
