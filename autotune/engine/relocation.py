"""The paths a run recorded, where they are once its folder was moved or copied.

A local run records absolute paths: the folder it started in (`started_at`), its model's folders and its space's
folder (`summary.json`). A folder of runs and models moved or copied whole (another disk, another machine, a
backup restored) keeps them where they were relative to each other:

    relocated("/srv/at/models/digits", Path("/backup/at/runs/digits"))   # /backup/at/models/digits, where the run
                                                                        # started in /srv/at/runs/digits
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["STARTED_FILE", "started_in", "relocated", "relocated_summary"]

STARTED_FILE = "started_at"  # a local run's folder when it started


def started_in(state: Path) -> Path | None:
    """The folder the local run whose state folder is `state` started in; None where it recorded none (a run of a
    URI storage, or of an autotune before runs recorded it)."""
    try:
        text = (state / STARTED_FILE).read_text().strip()
    except OSError:
        return None
    return Path(text) if text else None


def relocated(recorded: str | os.PathLike[str], state: Path) -> Path:
    """`recorded`, a path the run in `state` wrote down, where it is now: moved as the run's folder moved, when the
    two share a folder that moved with the run and the folder that held it (`models/` of `models/digits`) is there;
    else as recorded (a run not moved, or moved without it)."""
    path, started, here = Path(recorded), started_in(state), state.resolve()
    if started is None or started == here or not path.is_absolute():
        return path
    shared = Path(os.path.commonpath([started, path]))
    if shared == Path(shared.anchor):
        return path
    below = started.relative_to(shared).parts
    if below and here.parts[-len(below):] != below:
        return path
    root, inside = Path(*here.parts[:len(here.parts) - len(below)]), path.relative_to(shared)
    return root / inside if root.joinpath(*inside.parts[:1]).exists() else path


def relocated_summary(state: Path, summary: dict[str, Any]) -> dict[str, Any]:
    """`summary`, the run's summary.json, with the folders it names where they are now (`relocated`): the model's
    canonical folder and version, the space's folder, its `custom:` file and its export.dir."""
    def moved(mapping: dict[str, Any], *keys: str) -> dict[str, Any]:
        return {**mapping, **{key: str(relocated(mapping[key], state)) for key in keys
                              if isinstance(mapping.get(key), str) and mapping[key]}}

    found = moved(summary, "model_dir")
    if isinstance(summary.get("promotion"), dict):
        found["promotion"] = moved(summary["promotion"], "version_dir")
    if isinstance(summary.get("space"), dict):
        found["space"] = moved(summary["space"], "base_dir", "custom")
        if isinstance(found["space"].get("export"), dict):
            found["space"]["export"] = moved(found["space"]["export"], "dir")
    return found
