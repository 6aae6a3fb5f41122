"""Where teams keep their experiments: a search's trials recorded in MLflow and Weights & Biases as they run.

    tracking = Tracking.of(space)      # from the space's `tracking:` and the trackers' environment variables
    tracking.check()                   # before Ray starts: an unreachable tracker is one UserError
    tracking.start(SearchStart(...))   # the search's own run (a resumed search: the same one)
    tracking.trial_result("a1_00003", params, {"val_accuracy": 0.93}, epoch=4)
    tracking.trial_end("a1_00003", params, "stopped", "stopped early at epoch 4 of 10")
    tracking.finish(summary, model_dir, "finished", records)  # the summary; the model, when promoted; the
                                                             # search's trials as its run folder holds them

A tracker that fails during a search is dropped with one warning: the search goes on, and no trial is lost (the
run folder keeps every result). At the search's end (and at the end of a `--resume` of it, finished or not) a
tracker that can fills in what it missed from the trials' records: MLflow logs the epochs and ends of trials it did
not see, so a server that was down for part of a search holds all of it after the resume. Nothing here imports ray
or torch; each tracker imports its package when used.
"""
from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from autotune.errors import TrackerUnreachable, UserError
from autotune.run_options import option
from autotune.space.types import MlflowSettings, Space, TrackingSettings, WandbSettings

__all__ = ["INTERRUPTED", "SearchStart", "Tracker", "Tracking", "TrialRecord", "hide_passwords", "settings_of", "short"]

log = logging.getLogger("autotune")

# the stop reason a tracker records of a trial an interrupted search left running
INTERRUPTED = "the search was interrupted; `autotune run ... --resume` continues the trial"


@dataclass(frozen=True)
class SearchStart:
    """What a tracker records of a search when it starts (or is resumed)."""

    name: str
    state_dir: Path  # autotune's own state of the run (a tracker keeps its run ids there, for a resume)
    space_file: str | None
    settings: Mapping[str, Any]  # the search settings, flat: {"search.sampler": "tpe", ...}
    resumed: bool


@dataclass(frozen=True)
class TrialRecord:
    """A trial as the run folder holds it at the search's end: what a tracker fills in from where it missed some of
    the trial (down, or dropped after an error, while the trial ran)."""

    trial_id: str
    params: Mapping[str, Any]  # the sampled values, by their dotted names
    epochs: Sequence[tuple[int, Mapping[str, float]]] = ()  # each epoch once: (epoch, the recipe's metrics)
    status: str = "finished"  # finished, stopped, failed or interrupted (a resume continues it)
    reason: str = ""  # "ran all 10 epochs", "stopped early at epoch 3 of 10", "failed: ValueError: ..."
    times: Sequence[float] = ()  # when each of `epochs` was reported (seconds since 1970), where the results hold it


class Tracker(Protocol):
    label: str  # for messages: "MLflow at sqlite:///mlflow.db"
    fills_in: bool  # whether `finish` logs what the tracker missed of `trials` (a resume then completes it)

    def check(self) -> None: ...
    def start(self, search: SearchStart) -> None: ...
    def trial_result(self, trial_id: str, params: Mapping[str, Any], metrics: Mapping[str, float],
                     epoch: int) -> None: ...
    def trial_end(self, trial_id: str, params: Mapping[str, Any], status: str, reason: str) -> None: ...
    def finish(self, summary: Mapping[str, Any], model_dir: Path | None, status: str,
               trials: Sequence[TrialRecord]) -> None: ...
    def where(self) -> str: ...


def settings_of(space: Space, env: Mapping[str, str] = os.environ) -> TrackingSettings:
    """The space's `tracking:`, with the trackers the environment switches on by their own conventions, unless the
    space turns them off (`mlflow: false`): MLFLOW_TRACKING_URI turns MLflow on; WANDB_PROJECT, or WANDB_MODE
    online/offline, turns W&B on."""
    mlflow, wandb, off = space.tracking.mlflow, space.tracking.wandb, space.tracking.off
    if mlflow is None and "mlflow" not in off and env.get("MLFLOW_TRACKING_URI"):
        mlflow = MlflowSettings()
    wandb_on = bool(env.get("WANDB_PROJECT")) or env.get("WANDB_MODE") in ("online", "offline")
    if wandb is None and "wandb" not in off and wandb_on:
        wandb = WandbSettings()
    return TrackingSettings(mlflow=mlflow, wandb=wandb, off=off)


class Tracking:
    """The trackers of one search, each called in turn; one that raises is dropped with a warning."""

    def __init__(self, trackers: list[Tracker]) -> None:
        self.trackers = trackers
        self.dropped: list[Tracker] = []  # the trackers dropped after an error

    @classmethod
    def of(cls, space: Space, env: Mapping[str, str] = os.environ) -> Tracking:
        settings = settings_of(space, env)
        trackers: list[Tracker] = []
        if settings.mlflow is not None:
            from autotune.tracking.mlflow_runs import MlflowRuns

            trackers.append(MlflowRuns(settings.mlflow, space.name, env))
        if settings.wandb is not None and (settings.wandb.mode or env.get("WANDB_MODE")) != "disabled":
            from autotune.tracking.wandb_runs import WandbRuns

            trackers.append(WandbRuns(settings.wandb, space.name, env))
        return cls(trackers)

    def __bool__(self) -> bool:
        return bool(self.trackers)

    def check(self, outage_ok: bool = False) -> None:
        """Each tracker reachable and its package installed, else one UserError (before anything starts). With
        `outage_ok` (a retrain), a tracking server that does not answer, whose tracker fills in what it missed, is
        dropped with a warning instead: the search runs, and a later resume of its run fills the tracker in."""
        for tracker in list(self.trackers):
            try:
                tracker.check()
            except TrackerUnreachable as err:
                if not (outage_ok and tracker.fills_in):
                    raise
                self._drop(tracker)
                log.warning("%s; the search goes on without it: the next retrain of this data (or %s of its run) "
                            "fills it in once it answers", err, option("resume"))

    def _drop(self, tracker: Tracker) -> None:
        """Stop calling `tracker`: it is listed among the dropped (`where`, `behind`)."""
        self.trackers.remove(tracker)
        self.dropped.append(tracker)

    def _each(self, method: str, *args: Any) -> None:
        for tracker in list(self.trackers):
            try:
                getattr(tracker, method)(*args)
            except Exception as err:  # whatever the tracker's client raises: the search must go on
                self._drop(tracker)
                reason = short(hide_passwords((str(err).strip().splitlines() or [""])[0]), 300)
                log.warning("tracking: %s failed (%s: %s); the search goes on without it (every result stays in "
                            "the run folder)", tracker.label, type(err).__name__, reason)

    def start(self, search: SearchStart) -> None:
        self._each("start", search)

    def trial_result(self, trial_id: str, params: Mapping[str, Any], metrics: Mapping[str, float], epoch: int) -> None:
        self._each("trial_result", trial_id, params, metrics, epoch)

    def trial_end(self, trial_id: str, params: Mapping[str, Any], status: str, reason: str) -> None:
        self._each("trial_end", trial_id, params, status, reason)

    def finish(self, summary: Mapping[str, Any], model_dir: Path | None, status: str,
               trials: Sequence[TrialRecord]) -> None:
        """The search's end: `status` finished, interrupted (a resume continues it) or failed (every trial);
        `trials`, the search's trials (trials.csv) as the run folder holds them: what a tracker missed of them is
        filled in where it can be, and a run of another trial a tracker holds for the search (one a killed run
        started after Ray's last saved state, which its resume did not continue) is set aside."""
        self._each("finish", summary, model_dir, status, trials)

    def behind(self) -> list[str]:
        """The trackers that stopped recording after an error and fill in what they missed when the run is resumed
        (their labels: "MLflow at http://..."), for summary.json's `trackers_behind`."""
        return [tracker.label for tracker in self.dropped if tracker.fills_in]

    def where(self) -> list[str]:
        """A line per tracker: where to look at the search, or that it stopped recording after an error."""
        return [tracker.where() for tracker in self.trackers] + [
            f"{tracker.label}: stopped recording after an error (the warning above); what it holds of this search is "
            "incomplete, and every result is in the run folder" + (
                f" (a resume of this run, {option('resume')}, fills it in once it is back)" if tracker.fills_in else "")
            for tracker in self.dropped]


# `user:password@` of a URI (`http://bob:pw@host`, `postgresql://bob:pw@db/mlflow`, or one written without its
# scheme), and a database URI's `?password=...`
_USER_PASSWORD = re.compile(r"(?P<keep>(?:^|(?<=[\s'\"(/=]))[^\s'\"(/=?#@:]*:)[^\s'\"/?#]*@")
_QUERY_PASSWORD = re.compile(r"(?P<keep>[?&;]password=)[^&;\s'\"#]*", re.IGNORECASE)


def hide_passwords(text: str) -> str:
    """`text` with the password of each URI in it as `***` (`http://bob:***@host`): what autotune shows, logs or
    writes of a tracking URI, or of an error that quotes one. Hide them before cutting a text (`short`)."""
    return _QUERY_PASSWORD.sub(r"\g<keep>***", _USER_PASSWORD.sub(r"\g<keep>***@", text))


def short(text: str, limit: int) -> str:
    """`text`, cut at a word within `limit` characters, with "..." where it was cut."""
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0] + " ..."


def missing_package(tracker: str, err: ImportError) -> UserError:
    """One line for a tracker whose package (and extra: mlflow, wandb) is not installed, or is installed and fails
    to import (`err`: a module it needs is missing, as pkg_resources for mlflow 2.15 beside setuptools 81)."""
    fix = f"pip install \"autotune[{tracker}]\" (or remove tracking.{tracker} from the space)"
    if isinstance(err, ModuleNotFoundError) and (err.name or tracker).split(".")[0] == tracker:
        return UserError(f"tracking.{tracker} needs the {tracker} package: {fix}")
    return UserError(f"tracking.{tracker}: the {tracker} package is installed but does not import "
                     f"({type(err).__name__}: {err}); install a version autotune supports: {fix}")
