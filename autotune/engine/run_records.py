"""What a run records about itself in its state folder, read and written with the standard library only, so that
`autotune ls runs` reads them without importing Ray:

    record_start(state, space)    # at its start: space.json, space.trials, space.budgets
    recorded_space(state)         # the definition of the search it runs (space.json)
    started_trials(state)         # the search.trials it started with, which a resume keeps
    started_budgets(state)        # the time and epoch budgets it started with, which a resume keeps
    recorded_summary(state)       # summary.json, written at its end, its folders where they are now
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autotune.engine.relocation import relocated_summary

if TYPE_CHECKING:
    from autotune.space.types import Space

__all__ = ["BUDGETS", "BUDGETS_FILE", "SPACE_FILE", "TRIALS_FILE", "record_space", "record_start", "recorded_space",
           "recorded_end", "recorded_summary", "started_budgets", "started_trials"]

SPACE_FILE = "space.json"  # the definition of the search (what space.fingerprint hashes)
TRIALS_FILE = "space.trials"  # the search.trials a run started with (its definition leaves the budget out)
BUDGETS_FILE = "space.budgets"  # the search.time_budget and epoch_budget it started with (JSON, null: none)
BUDGETS = ("time_budget", "epoch_budget")


def record_start(state: Path, space: Space) -> None:
    """Record in the state folder `state` of a run that starts the search it runs, its trial count and budgets."""
    record_space(state, space)
    (state / TRIALS_FILE).write_text(f"{space.search.trials}\n")
    budgets = {key: getattr(space.search, key) for key in BUDGETS}
    (state / BUDGETS_FILE).write_text(json.dumps(budgets) + "\n")


def record_space(state: Path, space: Space) -> None:
    """space.json beside space.fingerprint: the definition it hashes, so that a refused resume can name the keys
    that changed."""
    state.mkdir(parents=True, exist_ok=True)
    (state / SPACE_FILE).write_text(space.definition() + "\n")


def recorded_space(state: Path) -> dict[str, Any] | None:
    """The definition of the search recorded in the run's state folder `state` (recipe, ingredients, search: what
    its fingerprint hashes); None for a run started before it was recorded."""
    recorded = _json(state / SPACE_FILE)
    return recorded if isinstance(recorded, dict) else None


def recorded_summary(state: Path) -> dict[str, Any] | None:
    """The summary.json the run whose state folder is `state` wrote at its end, the folders it names where they are
    now (a run moved with its models: `relocated_summary`); None when it wrote none (a run killed before its end), or
    one that cannot be read."""
    summary = _json(state / "summary.json")
    return relocated_summary(state, summary) if isinstance(summary, dict) else None


def recorded_end(state: Path) -> dict[str, Any] | None:
    """The summary.json of the run whose state folder is `state` where it records the run's end (its trials run, a
    budget or a target reached, a failure); None where the run was interrupted, or killed before its end."""
    summary = recorded_summary(state)
    return summary if summary is not None and summary.get("interrupted") is False else None


def started_budgets(state: Path) -> dict[str, Any] | None:
    """The search.time_budget and epoch_budget (`BUDGETS`; None: none) the run whose state folder is `state` started
    with, which Ray keeps when it resumes the run; None for a run started before they were recorded."""
    budgets = _json(state / BUDGETS_FILE)
    return budgets if isinstance(budgets, dict) else None


def started_trials(state: Path) -> int | None:
    """The `search.trials` the run whose state folder is `state` started with, which Ray keeps when it resumes the
    run; None for a run started before it was recorded."""
    try:
        return int((state / TRIALS_FILE).read_text())
    except (OSError, ValueError):
        return None


def _json(path: Path) -> Any:
    """The JSON value in the file `path`; None where it cannot be read."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None
