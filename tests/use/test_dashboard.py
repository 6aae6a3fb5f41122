"""`autotune dashboard`: the real optuna-dashboard serving a run's study on loopback, read through its own HTTP API
(the tiny search's finished run; a storage folder whose newest run is still running); and the one-line errors."""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import optuna
import pytest

from use_support import STARTUP_SECONDS, free_port, stop

pytest.importorskip("optuna_dashboard")

ADDRESS = re.compile(r"^optuna-dashboard: (http://127\.0\.0\.1:(\d+))/dashboard/ \(study (\S+), (\d+) trials\); "
                     r"ctrl-C to stop$", re.M)


def get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


@contextmanager
def dashboard(folder: Path, log_path: Path, port: int | None) -> Iterator[tuple[str, str, int]]:
    """`autotune dashboard FOLDER` in a subprocess on 127.0.0.1:`port` (None: a free one, and another if another
    process took it before the dashboard bound it), its output in `log_path`; yields its address, printed output and
    the port it was given once /api/studies answers, and stops the server on exit."""
    for _ in range(3):
        chosen = free_port() if port is None else port
        process, found, output = _started(folder, log_path, chosen)
        if process.returncode is None or port is not None or "is taken" not in output:
            break
    try:
        if process.returncode is not None:
            pytest.fail(f"the dashboard exited with {process.returncode}:\n{output}")
        yield found, output, chosen
    finally:
        stop(process)


def _started(folder: Path, log_path: Path, port: int) -> tuple[subprocess.Popen, str, str]:
    """The dashboard's process, its address once /api/studies answers (or "" once it has exited), and its output."""
    with log_path.open("w") as log:
        process = subprocess.Popen([sys.executable, "-m", "autotune", "dashboard", str(folder), "--port", str(port)],
                                   stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + STARTUP_SECONDS
    while True:
        output = log_path.read_text()
        if process.poll() is not None:
            return process, "", log_path.read_text()
        found = ADDRESS.search(output)
        if found:
            try:
                get(f"{found[1]}/api/studies")
                return process, found[1], output
            except (urllib.error.URLError, ConnectionError):
                pass
        if time.monotonic() > deadline:
            stop(process)
            pytest.fail(f"the dashboard did not answer /api/studies within {STARTUP_SECONDS} s:\n{output}")
        time.sleep(0.1)


def served_study(url: str) -> tuple[str, list[dict]]:
    """The only study optuna-dashboard lists at `url`: its name and its trials."""
    studies = get(f"{url}/api/studies")["study_summaries"]
    assert len(studies) == 1, studies
    return studies[0]["study_name"], get(f"{url}/api/studies/{studies[0]['study_id']}")["trials"]


def trials_in(db: Path, name: str) -> list[tuple[int, str]]:
    """(number, state) of every trial of the study `name` in `db`, read with Optuna."""
    study = optuna.load_study(study_name=name, storage=f"sqlite:///{db}")
    return [(t.number, t.state.name) for t in study.get_trials(deepcopy=False)]


def as_read(trials: list[dict]) -> list[tuple[int, str]]:
    return [(t["number"], t["state"].upper()) for t in trials]


@pytest.fixture(scope="module")
def storage_folder(tmp_path_factory) -> Path:
    """runs/ holding a finished study `old` and, written later, a study `live` whose last trial still runs (no
    trials.csv: the search has not ended)."""
    runs = tmp_path_factory.mktemp("dashboard") / "runs"
    for name, values in (("old", [0.1, 0.2]), ("live", [0.3, 0.5, 0.4])):
        (runs / name).mkdir(parents=True)
        study = optuna.create_study(study_name=name, storage=f"sqlite:///{runs / name / 'study.db'}",
                                    direction="maximize")
        for value in values:
            trial = study.ask()
            trial.suggest_float("lr", 1e-3, 1e-1, log=True)
            study.tell(trial, value)
        study.ask().suggest_float("lr", 1e-3, 1e-1, log=True)  # RUNNING
    os.utime(runs / "old" / "study.db", (time.time() - 60, time.time() - 60))
    return runs


def test_the_dashboard_serves_the_run_with_all_its_trials(searched, tmp_path):
    expected = trials_in(searched.run_dir / "study.db", "tiny")
    with dashboard(searched.run_dir, tmp_path / "dashboard.log", None) as (url, output, port):
        name, trials = served_study(url)
    assert url == f"http://127.0.0.1:{port}"
    assert name == "tiny" and len(trials) == len(expected) > 0
    assert as_read(trials) == expected
    assert ADDRESS.search(output).group(3, 4) == ("tiny", str(len(expected)))


def test_a_storage_folder_serves_its_newest_run_while_it_runs(storage_folder, tmp_path):
    expected = trials_in(storage_folder / "live" / "study.db", "live")
    with dashboard(storage_folder, tmp_path / "dashboard.log", 0) as (url, output, _):
        name, trials = served_study(url)
    assert name == "live" and as_read(trials) == expected and expected[-1] == (3, "RUNNING")
    assert f"the newest of 2 runs in {storage_folder}; the others: old" in output
    assert int(url.rsplit(":", 1)[1]) > 0


def test_a_folder_without_a_run_is_one_line(cli, tmp_path):
    code, out, err = cli("dashboard", tmp_path)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "holds no study.db" in err and "Traceback" not in err


def test_a_study_db_that_is_not_optuna_is_one_line(cli, tmp_path):
    (tmp_path / "study.db").write_text("not a database")
    code, out, err = cli("dashboard", tmp_path)
    assert code == 2 and err.count("\n") == 1 and "cannot read the Optuna study" in err


def test_a_taken_port_is_one_line(cli, storage_folder):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        code, out, err = cli("dashboard", storage_folder / "old", "--port", taken.getsockname()[1])
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "is taken" in err and "--port 0" in err


def test_a_missing_dashboard_extra_says_what_to_install(cli, storage_folder, monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna_dashboard", None)  # `import optuna_dashboard` now raises ImportError
    code, out, err = cli("dashboard", storage_folder)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and 'pip install "autotune[dashboard]"' in err and "optuna_dashboard" in err
