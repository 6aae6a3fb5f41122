"""Reading a finished run: its folder (`find_run`), its files, once (`load_run` -> `Run`), and the questions every
part of the report asks of it. `Skip` is what a chart raises when it cannot be drawn for a run."""
from __future__ import annotations

import functools
import io
import json
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.fs

from autotune.engine.history import final_run, reports
from autotune.engine.locks import run_holder
from autotune.engine.relocation import relocated_summary
from autotune.engine.study import StudyData, read_study
from autotune.errors import UserError
from autotune.paths import expanded
from autotune.space import guessed_mode


@dataclass
class Run:
    """What a run directory holds, read once."""

    path: Path
    name: str
    summary: dict[str, Any]
    trials: pd.DataFrame  # one row per trial (trials.csv)
    metric: list[str]
    mode: list[str]
    histories: dict[str, pd.DataFrame]  # trial id -> one row per epoch
    study: StudyData | None = None  # the Optuna study, when study.db could be read
    model_dir: Path | None = None  # the model this run exported, when it is still there
    card: dict[str, Any] = field(default_factory=dict)
    no_model: str = ""  # why model_dir is None

    @property
    def params(self) -> list[str]:
        return [c for c in self.trials.columns if c.startswith("p:")]


TRIAL_COLUMNS = ("trial_id", "status")  # what every part of the report reads of trials.csv


class Skip(Exception):
    """A figure that cannot be drawn for this run; the message says why (shown in the report)."""


# ------------------------------------------------------------------------------------------------ reading
def find_run(folder: str | Path) -> tuple[Path, list[Path]]:
    """The run in `folder`: the folder itself when it is a run, the run that made it when it is a model folder
    (its model.json names the run), else the newest run in it (a storage folder such as runs/, holding one folder
    per run); also the other runs found there, newest first."""
    path = expanded(folder)
    if (path / "trials.csv").is_file() or (path / "model.json").is_file() or _running(path):
        return run_folder(path), []
    runs = sorted((d for d in (path.iterdir() if path.is_dir() else ()) if (d / "trials.csv").is_file()),
                  key=lambda d: ((d / "trials.csv").stat().st_mtime, d.name), reverse=True)
    if not runs:
        raise UserError(f"{path} holds no trials.csv, nor does any folder in it: not the folder of a finished "
                        "autotune run (runs/<name>/, written by `autotune run`) or a storage folder of runs")
    return runs[0], runs[1:]


def run_folder(path: Path) -> Path:
    """`path` when it is a finished run's folder; the run that made the model when it is a model folder (its
    model.json names the run's folder). A UserError saying what the folder is and what to do otherwise: a model
    whose run is not here, a search still running, or no run at all."""
    if (path / "trials.csv").is_file():
        return path
    card = _read_json(path / "model.json")
    if card.get("run_dir") and (Path(card["run_dir"]) / "trials.csv").is_file():
        return Path(card["run_dir"])
    if card:
        raise UserError(_run_not_here(path, card.get("run_uri") or card.get("run_dir")))
    if _running(path):
        raise UserError(_not_ended(path, run_holder(path, path.name)))
    raise UserError(f"{path} holds no trials.csv: not the folder of a finished autotune run "
                    "(runs/<name>/, written by `autotune run`)")


def _not_ended(path: Path, holder: str | None) -> str:
    """Why the run folder `path`, which holds no trials.csv yet, cannot be reported: its search runs (`holder`, the
    process that runs it; None: none here holds it, it may run on another machine or have been killed), and what to
    do."""
    state = f"is running ({holder})" if holder else "is still running (or was killed before it ended)"
    killed = "" if holder else " (a killed search ends with `autotune run SPACE --resume`)"
    return (f"{path} holds no trials.csv yet: its search {state}; `autotune dashboard {shlex.quote(str(path))}` "
            f"follows a running search, and `autotune report` reports it once it has ended{killed}")


def _run_not_here(path: Path, made_by: str | None) -> str:
    """Why the model folder `path` cannot be reported: the run that made it (`made_by`, its card's) is not here, or
    was deleted (its folder is gone), or its card names none."""
    there = f"{path} is a model folder (model.json), not a run, and the run that made it"
    if not made_by:
        return f"{there} is not named in its card; report a run with `autotune report RUN_DIR`"
    if "://" not in made_by and not Path(made_by).exists():
        return (f"{there}, {made_by}, is gone (deleted, or moved elsewhere): report it where it is now with "
                "`autotune report RUN_DIR` (`autotune ls runs DIR` lists a folder's runs); the model itself needs no "
                "run to predict, serve or roll back")
    return f"{there} ({made_by}) has no trials.csv here; report that run with `autotune report {made_by}` where it is"


def _running(path: Path) -> bool:
    """Whether `path` is the folder of a search that has not ended: no trials.csv yet, and trial folders or a
    process that runs it (before its first trial)."""
    return (path.is_dir() and not (path / "trials.csv").is_file()
            and (any(path.glob("trial_*/")) or run_holder(path, path.name) is not None))


def load_run(run_dir: str | Path) -> Run:
    """Read a run directory written by `autotune run` / `autotune.fit` (or the run that made a model folder)."""
    path = run_folder(expanded(run_dir))
    summary = relocated_summary(path, _read_json(path / "summary.json"))
    trials = _read_trials(path / "trials.csv")
    name = summary.get("name") or path.name
    model_dir, card, no_model = _exported_model(summary)
    study = read_study(path / "study.db", name)
    metric = list(summary.get("metric") or card.get("search", {}).get("metric") or _metric_columns(trials))
    if study is not None and len(study.directions) == len(metric):
        mode = list(study.directions)
    else:
        mode = list(summary.get("mode") or card.get("search", {}).get("mode")
                    or [guessed_mode(m) for m in metric])
    histories = _histories(path, summary.get("run_uri"), [str(t) for t in trials["trial_id"]])
    return Run(path, name, summary, trials, metric, mode, histories, study, model_dir, card, no_model)


def _read_trials(path: Path) -> pd.DataFrame:
    """trials.csv, one row per trial; a UserError naming the file when it is damaged, empty or not the engine's."""
    try:
        trials = pd.read_csv(path, dtype={"trial_id": str})
    except (OSError, ValueError) as err:  # pandas' ParserError and EmptyDataError are ValueErrors
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise UserError(_unreadable(path, reason)) from None
    missing = [column for column in TRIAL_COLUMNS if column not in trials.columns]
    if missing:
        raise UserError(_unreadable(path, f"it has no {' or '.join(missing)} column"))
    return trials


def _unreadable(path: Path, reason: str) -> str:
    """The message of a trials.csv that cannot be read, and what to do."""
    return (f"the run's trials.csv is unreadable: {path}: {reason}; re-run the search (autotune run SPACE "
            "--restart) or restore the file from a copy of the run folder")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _metric_columns(trials: pd.DataFrame) -> list[str]:
    """The metric columns of trials.csv: the engine writes them between `stopped_early` and `seconds`."""
    columns = list(trials.columns)
    if "stopped_early" in columns and "seconds" in columns:
        found = columns[columns.index("stopped_early") + 1 : columns.index("seconds")]
        if found:
            return found
    raise UserError("cannot tell the search metric: neither summary.json nor the model card names it")


def _exported_model(summary: dict[str, Any]) -> tuple[Path | None, dict[str, Any], str]:
    """The model this run exported: its version directory (kept even when not promoted), else the canonical
    directory if it still holds this run's model (its card names this run and its best trial). Returns the
    directory and its card, or None, {} and why there is none."""
    version = (summary.get("promotion") or {}).get("version_dir")
    canonical = summary.get("model_dir")
    if not version and not canonical:
        return None, {}, "the run exported no model (summary.json names no model directory)"
    trial, name = summary.get("best_trial_id"), summary.get("name")
    for candidate in (version, canonical):
        card = _read_json(Path(candidate) / "model.json") if candidate else {}
        if card and card.get("trial_id") == trial and card.get("run_name", card.get("name")) == name:
            return Path(candidate), card, ""
    why = f"the model this run exported (trial {trial}) is no longer there"
    if version:
        why += f": its version {version} was removed"
    other = _read_json(Path(canonical) / "model.json") if canonical else {}
    if other:
        why += (f"; {canonical} now holds another model (trial {other.get('trial_id')} of run "
                f"{other.get('run_name', other.get('name'))}), which this report does not describe")
    return None, {}, why


def _histories(path: Path, run_uri: str | None, trial_ids: list[str]) -> dict[str, pd.DataFrame]:
    """Each trial's history, from its folder in the run folder; for a run in a URI storage, whose run folder is the
    local mirror of its state (summary.json names the URI), from the trial folders in the URI."""
    if run_uri and not any((path / f"trial_{t}").is_dir() for t in trial_ids):
        try:
            fs, root = pyarrow.fs.FileSystem.from_uri(run_uri)
        except (OSError, ValueError):  # the storage cannot be opened here: the charts say no trial has a history
            return {t: pd.DataFrame() for t in trial_ids}
        return {t: _history(functools.partial(_read_uri, fs, f"{root}/trial_{t}")) for t in trial_ids}
    return {t: _history(lambda name, t=t: (path / f"trial_{t}" / name).read_text()) for t in trial_ids}


def _read_uri(fs: pyarrow.fs.FileSystem, folder: str, name: str) -> str:
    with fs.open_input_stream(f"{folder}/{name}") as stream:
        return stream.read().decode()


def _history(read: Callable[[str], str]) -> pd.DataFrame:
    """A trial's metrics per epoch, from progress.csv (or result.json, one JSON object per line), each read with
    `read(file name)`; each epoch once, from the run that went on where the trial continued from a checkpoint
    (`final_run`)."""
    try:
        frame = pd.read_csv(io.StringIO(read("progress.csv")))
    except (OSError, ValueError):
        try:
            frame = reports(read("result.json"))
        except (OSError, ValueError):  # ValueError: not UTF-8
            return pd.DataFrame()
    if "epoch" not in frame and "training_iteration" in frame:
        frame["epoch"] = frame["training_iteration"]
    return final_run(frame)


# ----------------------------------------------------------------------------------------- asked of a run
def finished(run: Run) -> pd.DataFrame:
    """The trials that reported the first metric."""
    values = pd.to_numeric(run.trials[run.metric[0]], errors="coerce")
    return run.trials[values.notna() & (run.trials["status"] != "ERROR")]


def target_trial(run: Run) -> str | None:
    """The trial that reached the search's stop target and so ended it (summary.json's `ended`, as
    `autotune.engine.search` words it: "trial <id> reached the stop target (...)"); None when none did."""
    found = re.match(r"trial (\S+) reached the stop target", str(run.summary.get("ended") or ""))
    return found.group(1) if found else None


def front_ids(run: Run) -> set[str] | None:
    """The trials on the Pareto front of all the objectives (summary.json's); None for a search of one objective."""
    if len(run.metric) < 2:
        return None
    return {str(p.get("trial_id")) for p in run.summary.get("pareto") or []}


def best_trial_id(run: Run) -> str | None:
    """The run's best trial: the summary's, else the exported model card's (None without either)."""
    return run.summary.get("best_trial_id") or run.card.get("trial_id")
