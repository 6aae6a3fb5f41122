"""`autotune ls versions MODEL_DIR`: a canonical model's history, oldest first: each export and rollback, the run and
trial that made the version, the decision and its reason, and whether the version is current, kept (a rollback can
go back to it) or deleted."""
from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from autotune.cli.common import terminal_width
from autotune.engine.export import CARD, versions_dir
from autotune.engine.summary import format_table
from autotune.errors import UserError
from autotune.model_dir import canonical_link, read_card
from autotune.paths import expanded, shown

HEADERS = ["created", "version", "run", "trial", "decision", "now", "reason"]


def list_versions(model_dir: str) -> None:
    """Print the history of the canonical model `model_dir` (or of the one a link to it leads to) as a table."""
    given = expanded(model_dir)
    target = canonical_link(given) or given
    card = read_card(target)
    if not target.is_symlink() or not isinstance(card.get("history"), list):
        raise UserError(f"{shown(given)} is not a canonical model (a link to a version folder, as `autotune run` "
                        "exports it): it has no versions; give models/NAME, e.g. `autotune ls versions models/digits`")
    current = target.resolve().name
    kept = {p.name for p in versions_dir(target).iterdir() if (p / CARD).is_file()}
    rows = [_row(entry, current, kept, _trials(target, kept)) for entry in card["history"]]
    print(format_table(HEADERS, rows, terminal_width()))
    made = f"trial {card.get('trial_id', '?')} of run {card.get('run_name', '?')}"
    print(f"\n{shown(target)} is version {current} ({made}); `autotune rollback {shlex.quote(shown(target))} --to "
          "VERSION` makes a kept one current again")


def _trials(target: Path, kept: set[str]) -> dict[str, str]:
    """The trial that made each kept version, from its card (a history written before entries named the trial)."""
    trials = {}
    for version in kept:
        try:
            trials[version] = str(read_card(versions_dir(target) / version).get("trial_id") or "-")
        except UserError:  # a card that cannot be read: its trial is unknown
            continue
    return trials


def _row(entry: dict[str, Any], current: str, kept: set[str], trials: dict[str, str]) -> list[Any]:
    """One history entry: when, which version, its run (by name) and trial (`trials`: of each kept version, for an
    entry that names none), the decision, and the version now."""
    version = str(entry.get("version") or "?")
    run = str(entry.get("run") or "-").rstrip("/")
    decision = ("rolled back to" if entry.get("rolled_back_from") else
                "promoted" if entry.get("promoted") else "not promoted")
    now = "current" if version == current else "kept" if version in kept else "deleted"
    return [str(entry.get("created") or "-").replace("T", " ")[:19], version, shown(Path(run).name or run),
            entry.get("trial_id") or trials.get(version, "-"), decision, now, entry.get("reason") or ""]
