"""`autotune ls runs [DIR]`: the runs of a storage folder, newest first: how each ended, what it found, what became of
its model, and what it holds on disk (its checkpoints apart)."""
from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autotune.cli.common import terminal_width
from autotune.engine.locks import run_holder
from autotune.engine.run_records import SPACE_FILE, recorded_space, recorded_summary, started_trials
from autotune.engine.summary import format_table, size_text
from autotune.errors import UserError
from autotune.paths import expanded, owned, readable, shown

if TYPE_CHECKING:
    from autotune.engine.study import Progress

HEADERS = ["run", "ended", "status", "trials", "best", "test", "model", "disk", "checkpoints"]
GUIDE = "docs/reliability.md, 'What may be deleted'"
RUN_FILES = ("summary.json", "trials.csv", SPACE_FILE)  # what `autotune run` writes (an older one: no space.json)


def list_runs(folder: str) -> None:
    """Print the table of the runs in `folder` (runs/ by default), then their total size and what may be deleted."""
    path = expanded(folder)
    if not path.is_dir():
        why = "it is a file" if path.exists() else "it does not exist"
        raise UserError(f"{shown(path)} is not a folder of runs ({why}); give the storage folder of your searches, "
                        "e.g. `autotune ls runs runs`")
    runs = sorted((d for d in path.iterdir() if _is_run(d)), key=_when, reverse=True)
    if not runs:
        print(f"no runs in {shown(path)} (a run is a folder that `autotune run` wrote, holding {', '.join(RUN_FILES)})")
        return
    rows, total, kept = [], 0, 0
    for run in runs:
        if not readable(run):  # a teammate's run under umask 077: listed, where it ended the whole listing
            rows.append([shown(run.name), "-", f"not readable by you ({owned(run)})", *["-"] * (len(HEADERS) - 3)])
            continue
        size, checkpoints, count = _disk(run)
        total, kept = total + size, kept + checkpoints
        rows.append([*_row(run), size_text(size), f"{size_text(checkpoints)} ({count})"])
    print(format_table(HEADERS, rows, terminal_width()))
    runs_text = f"{len(runs)} run{'s' * (len(runs) != 1)}"
    print(f"\n{runs_text}, {size_text(total)} on disk, {size_text(kept)} of it in checkpoints: a finished run's "
          f"checkpoints serve only `autotune export RUN --trial ID`, an interrupted run's its --resume; what each "
          f"file is for and what may be deleted: {GUIDE}")


def _is_run(folder: Path) -> bool:
    """Whether `folder` is a run's: `autotune run` wrote one of RUN_FILES into it (not a set-aside `.orphaned`)."""
    return (folder.is_dir() and not folder.name.endswith(".orphaned")
            and (not readable(folder) or any((folder / name).is_file() for name in RUN_FILES)))


def _when(run: Path) -> float:
    """When the run last ended (its summary.json, its trials.csv), else when it started (its space.json); a run
    this user cannot read, when its folder last changed."""
    if not readable(run):
        return run.stat().st_mtime
    return next((run / name).stat().st_mtime for name in RUN_FILES if (run / name).is_file())


def _row(run: Path) -> list[str]:
    """The run's name, when it ended, its status, trials, best trial, its model's test score and the model, from its
    summary.json; how far a run got that wrote none, or that runs, from its study."""
    summary = recorded_summary(run) or {}  # {}: it wrote none (running, or killed)
    holder = run_holder(run, run.name)
    progress = _progress(run) if holder or not summary else None
    ended = _clock(run / "summary.json") if summary else "-"
    best = _best(summary) if summary or progress is None else _best_so_far(run, progress)
    return [shown(run.name), ended, _status(summary, holder), _trials(run, progress), best, _tested(summary),
            _model(summary)]


def _searched(run: Path) -> dict[str, Any]:
    """The `search` section the run recorded in its space.json ({} for a run of an autotune that did not)."""
    return (recorded_space(run) or {}).get("search") or {}


def _progress(run: Path) -> Progress | None:
    """How far the run got by its study.db (its trials that ended, its best epoch); None without a readable one."""
    from autotune.engine.study import run_progress  # Optuna: only for a run that was killed or runs

    direction = (_searched(run).get("mode") or ["max"])[0]  # none recorded: no metric either, no best shown
    return run_progress(run / "study.db", run.name, direction) if (run / "study.db").is_file() else None


def _clock(file: Path) -> str:
    """`file`'s modification time, local, to the minute."""
    return datetime.fromtimestamp(file.stat().st_mtime).strftime("%Y-%m-%d %H:%M")


def _status(summary: dict[str, Any], holder: str | None) -> str:
    """How the run ended, from its summary; "running (process N on HOST)" while a process holds its lock (a
    resumed run's summary is an earlier session's)."""
    if holder:
        return f"running ({holder})"
    if not summary:
        return "killed (--resume)"
    if summary.get("error"):
        return "failed"
    return "interrupted (--resume)" if summary.get("interrupted") else "finished"


def _trials(run: Path, progress: Progress | None) -> str:
    """"N" trials that ended, by its study's `progress` where given, else its trials.csv; "N of M" when it asked for
    more."""
    try:
        done = progress.ended if progress else max(len((run / "trials.csv").read_text().splitlines()) - 1, 0)
    except OSError:
        done = 0
    asked = started_trials(run) or done
    return f"{done}" if done >= asked else f"{done} of {asked}"


def _best(summary: dict[str, Any]) -> str:
    """"val_accuracy=0.9885 (trial 0e6586e6)", each metric of several; "-" without a best trial."""
    metrics, trial = summary.get("best_metrics") or {}, summary.get("best_trial_id")
    if not trial:
        return "-"
    values = ", ".join(f"{m}={metrics[m]:.4g}" for m in summary.get("metric") or []
                       if isinstance(metrics.get(m), (int, float)))
    return f"{values} (trial {trial})"


def _best_so_far(run: Path, progress: Progress) -> str:
    """"val_accuracy=0.9847 (trial 3d9d97ca)": the best epoch so far of a run without a summary, by its study; "-"
    before one ended, or where the study holds no epochs (several metrics)."""
    metrics = _searched(run).get("metric") or []
    if progress.best is None or not metrics:
        return "-"
    trial, value = progress.best
    return f"{metrics[0]}={value:.4g} (trial {trial})"


def _tested(summary: dict[str, Any]) -> str:
    """The exported model's held-out score of each searched metric's test twin (`val_accuracy` ->
    `"test_accuracy=0.9894"`), as its summary recorded it; "-" without a test metric of that name."""
    tested = summary.get("test_metrics") or {}
    twins = [f"test_{m.removeprefix('val_')}" for m in summary.get("metric") or [] if m.startswith("val_")]
    values = ", ".join(f"{t}={tested[t]:.4g}" for t in twins if isinstance(tested.get(t), (int, float)))
    return values or "-"


def _model(summary: dict[str, Any]) -> str:
    """The canonical model the run exported to, and whether its version is current, was replaced since, was not
    promoted or is deleted; "-" when it exported none."""
    version, canonical = (summary.get("promotion") or {}).get("version_dir"), summary.get("model_dir")
    if not version or not canonical:
        return "-"
    where = os.path.relpath(canonical) if Path(canonical).is_relative_to(Path.cwd()) else canonical
    if not Path(version).is_dir():
        return f"{shown(where)}: version deleted"
    if Path(canonical).resolve() == Path(version).resolve():
        return f"{shown(where)}: current"
    return f"{shown(where)}: " + ("replaced since" if summary["promotion"].get("promoted") else "not promoted")


def _disk(run: Path) -> tuple[int, int, int]:
    """The bytes of the run's files, those of its trials' checkpoints, and how many checkpoints they are."""
    total = checkpoints = count = 0
    for folder, subfolders, files in os.walk(run):
        size = sum(os.lstat(os.path.join(folder, name)).st_size for name in files)
        total += size
        inside = Path(folder).relative_to(run).parts
        if len(inside) >= 2 and inside[1].startswith("checkpoint_"):
            checkpoints += size
        if len(inside) == 1:
            count += sum(d.startswith("checkpoint_") for d in subfolders)
    return total, checkpoints, count
