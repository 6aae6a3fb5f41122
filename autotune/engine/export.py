"""The canonical model: the best checkpoint exported to `export.dir`, replaced atomically, promoted by policy.

Layout (the canonical path is a symbolic link, swapped in one `os.replace`, so readers see the old model or the
new one, never a half-written directory):

    models/mnist -> .mnist.versions/20261122-231500-042137-1a2b3c
    models/.mnist.versions/<version>/   model.pt, model.json, ...
    models/.mnist.lock                  held while exporting: two runs never interleave

Another link to the canonical model (`ln -s models/mnist mnist_alias`, given as export.dir or to a rollback) is
followed to it: the export, its lock and the rollback act on models/mnist.
"""
from __future__ import annotations

import getpass
import hashlib
import json
import logging
import math
import os
import platform
import re
import shlex
import shutil
import socket
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any

from filelock import FileLock, Timeout

from autotune.engine.locks import not_a_lock_file
from autotune.engine.summary import size_text
from autotune.errors import StorageFull, UserError
from autotune.model_dir import canonical_link
from autotune.paths import blocking, expanded, out_of_space, shown, write_whole

__all__ = ["CARD", "changed_since", "export_model", "library_versions", "refuse_other_files", "refuse_unwritable",
           "roll_back", "source_digests", "versions_dir"]

log = logging.getLogger("autotune")

CARD = "model.json"
KEEP_VERSIONS = 3  # versions that were the canonical model before the current one, kept for a rollback
KEEP_TRIED = 1  # versions never promoted (a retrain's model that lost), kept to look at
PREDICTS = ("target", "task")  # card fields that say what a model predicts: "if_better" compares only equal ones


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for dist in ("autotune", "torch", "torchvision", "timm", "ray", "optuna", "numpy", "scikit-learn", "pandas"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return versions


def operator() -> dict[str, str | None]:
    """Who does what the card or history entry records, and where: the login `user` (None where the system names
    no user for this process's id) and the `host`."""
    try:
        user: str | None = getpass.getuser()
    except (KeyError, OSError):  # a container's arbitrary user id, with no name in its passwd file
        user = None
    return {"user": user, "host": socket.gethostname()}


def source_digests(recipe: ModuleType, custom: str | None) -> dict[str, str]:
    """The SHA-256 of the files of the code that trains a model (the recipe module's file, the space's custom
    file), for its card, so that a model trained again can tell whether its code changed."""
    files = {"recipe": getattr(recipe, "__file__", None), "custom": custom}
    return {role: hashlib.sha256(Path(file).read_bytes()).hexdigest()
            for role, file in files.items() if file and Path(file).is_file()}


def file_digests(folder: Path, skip: tuple[str, ...] = ()) -> dict[str, str]:
    """The SHA-256 of each file of the model folder `folder` but its card and the top-level entries `skip`, by path
    relative to it, for its card (`files`): what a pipeline that publishes or copies the folder checks it by."""
    digests = {}
    for file in sorted(folder.rglob("*")):
        relative = file.relative_to(folder)
        if file.is_file() and relative.parts[0] not in (CARD, *skip):
            with file.open("rb") as f:
                digests[relative.as_posix()] = hashlib.file_digest(f, "sha256").hexdigest()
    return digests


def changed_since(card: dict[str, Any], digests: dict[str, str]) -> list[str]:
    """What differs between the code, weights and libraries that made the model of `card` and today's, one phrase
    each (`digests`: `source_digests` of today's files): "the recipe file was edited", "the pretrained weights file
    ... was replaced", "torch 2.13.0 -> 2.14.1". What a card does not record (cards before 2026-12-06 hold no
    `sources`) is not compared."""
    then = card.get("sources") if isinstance(card.get("sources"), dict) else {}
    edited = [f"the {role} file was edited" for role, digest in digests.items()
              if role in then and then[role] != digest]
    edited += _weights_changed(card.get("pretrained"))
    old = card.get("versions") if isinstance(card.get("versions"), dict) else {}
    return edited + [f"{dist} {old[dist]} -> {version}" for dist, version in library_versions().items()
                     if dist in old and old[dist] != version]


def _weights_changed(weights: Any) -> list[str]:
    """"the pretrained weights file F was replaced" (or "is gone") when the file a card's `pretrained` names no
    longer has the SHA-256 the card records; nothing for a card without one."""
    if not isinstance(weights, dict) or not weights.get("file") or not weights.get("sha256"):
        return []
    file = Path(weights["file"])
    if not file.is_file():
        return [f"the pretrained weights file {file} is gone"]
    with file.open("rb") as f:
        now = hashlib.file_digest(f, "sha256").hexdigest()
    return [] if now == weights["sha256"] else [f"the pretrained weights file {file} was replaced"]


def versions_dir(target: Path) -> Path:
    return target.parent / f".{target.name}.versions"


def _is_better(new: float, old: float, mode: str, margin: float = 0.0) -> bool:
    """Whether `new` beats `old` by more than `margin` (`mode`: max or min); a finite value beats a NaN."""
    if not math.isfinite(old):
        return math.isfinite(new)
    return new > old + margin if mode == "max" else new < old - margin


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    write_whole(path, json.dumps(payload, indent=2, sort_keys=False, default=str) + "\n")


def _fsync_tree(path: Path) -> None:
    for file in path.rglob("*"):
        if file.is_file():
            with open(file, "rb") as handle:
                os.fsync(handle.fileno())


def _point(target: Path, version: Path, kept_as: str | None = None) -> None:
    """Make `target` a link to `version` in one atomic step; a plain folder there is kept as the version `kept_as`."""
    if target.exists() and not target.is_symlink():
        # A plain directory (`autotune train --out`, or left by hand): keep it as a version, then link.
        target.rename(versions_dir(target) / (kept_as or f"previous-{uuid.uuid4().hex[:6]}"))
    link = target.parent / f".{target.name}.link-{uuid.uuid4().hex[:6]}"
    link.symlink_to(os.path.relpath(version, target.parent))
    os.replace(link, target)


def _prune(target: Path) -> None:
    """Delete partial versions and, never the current one, all but the newest KEEP_VERSIONS of those that were the
    canonical model, and the KEEP_VERSIONS that rollbacks would go back to in turn (`_earlier`), and the newest
    KEEP_TRIED of those never promoted (a retrain's model that lost to the current one): the retrains that are not
    promoted must not push out what was served."""
    current = target.resolve() if target.exists() else None  # resolved: export.dir may go through a link
    versions = sorted((p for p in versions_dir(target).iterdir() if p.is_dir()), key=lambda p: p.name)
    finished = [p for p in versions if not p.name.endswith(".partial") and p.resolve() != current]
    served = [p for p in finished if _was_canonical(p)]
    tried = [p for p in finished if p not in served]
    history = (_current_card(target) or {}).get("history", []) if current else []
    back = set(_earlier(current.name, history)[:KEEP_VERSIONS]) if current else set()
    for old in [p for p in served[:-KEEP_VERSIONS] if p.name not in back] + tried[:-KEEP_TRIED]:
        _delete(old)
    for partial in (p for p in versions if p.name.endswith(".partial")):
        shutil.rmtree(partial, ignore_errors=True)


def _delete(version: Path) -> None:
    """Delete a version folder, first renamed as a partial one in one step: a kill while its files are deleted
    leaves a folder that every reader skips and the next export deletes, never a version with its card and part of
    its weights, which `autotune rollback --to` would make current."""
    partial = version.with_name(f"{version.name}.partial")
    try:
        os.replace(version, partial)
    except OSError:  # gone already, or its folder not writable: deleted as it is, if it can be
        partial = version
    shutil.rmtree(partial, ignore_errors=True)


def _was_canonical(version: Path) -> bool:
    """Whether the version was promoted to the canonical model (its card says so); a version whose card does not
    say (a folder kept from before versions, a damaged card) counts as one."""
    try:
        promotion = json.loads((version / CARD).read_text()).get("promotion")
    except (OSError, ValueError, AttributeError):
        return True
    return not isinstance(promotion, dict) or promotion.get("promoted") is not False


def _current_card(target: Path) -> dict[str, Any] | None:
    """The canonical model's card; None when there is none, or it cannot be read (the export replaces it)."""
    try:
        return json.loads((target / CARD).read_text())
    except (OSError, ValueError):
        return None


def export_model(
    target: Path,
    *,
    write: Callable[[Path], dict[str, Any]],
    evaluate: Callable[[Path], dict[str, float]],
    card: dict[str, Any],
    metric: str,
    mode: str,
    promote: str,
    evaluate_current: Callable[[Path], dict[str, float]] | None = None,
    compared_on: str = "on the same test split",
    min_improvement: float = 0.0,
    chosen: str | None = None,
    data_fingerprint: str | None = None,
) -> dict[str, Any]:
    """Write a new version with `write(dir) -> card fields`, measure it with `evaluate(dir)`, then promote it.

    `promote`: "always" replaces the canonical model; "if_better" replaces it only when the new model beats
    the current one on the held-out `metric` (better: `mode`; the recipe's twin of the searched metric), measured
    now by `evaluate_current` (default: `evaluate`), `compared_on` saying on what data, by more than
    `min_improvement`; "never" exports only when there is no canonical model yet. `chosen`: why it is promoted
    whatever `promote` says (a trial the user chose by its id; the decision's policy is then "chosen"). Returns the
    decision (also written into the new version's card); where it replaced a model that tested better on the same
    data (whose card is read under the export's lock: another process may have promoted it a moment before), the
    returned reason says so, with the rollback that goes back to it. The canonical model's card keeps a `history`
    of every export to `target` (its version, data fingerprint, run, decision), promoted or not: a retraining job
    skips data already tried.
    `data_fingerprint`: the data's own (its `fingerprint`), recorded in the card and its history entry over what
    `write` returns: it is what a retrain compares and names its run after, so a recipe's other value (or none)
    would have it search the same data again.
    """
    target = _canonical(expanded(target).absolute())
    refuse_other_files(target)
    refuse_unwritable(target, "set export.dir to another path")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        versions_dir(target).mkdir(exist_ok=True)
    except OSError as err:
        raise UserError(f"cannot write the model to {target.parent}: {err.strerror}; set export.dir to a writable "
                        f"folder") from None
    lock = _export_lock(target, "set export.dir to a writable folder")
    try:
        # sorts by time: UTC, as teammates in other time zones, or a clock set back an hour in autumn, export too
        name = f"{datetime.now(timezone.utc).strftime('%Y%m%d-%H%M%S-%f')}-{uuid.uuid4().hex[:6]}"
        stage = versions_dir(target) / f"{name}.partial"
        with _room_for(stage, target):
            stage.mkdir()
            fields = write(stage)
        test = evaluate(stage)
        current = _current_card(target)
        other = _predicts_other(current, {**card, **fields}) if promote == "if_better" else None
        decision = ({"policy": "chosen", "promoted": True, "reason": chosen} if chosen else
                    {"policy": promote, "promoted": False, "reason": other} if other else
                    _decide(target, evaluate_current or evaluate, test, metric, mode, promote, compared_on,
                            min_improvement))
        if current is not None:  # the version it replaced, or the one that stays
            decision["replaced" if decision["promoted"] else "kept"] = current.get("version")
        payload = {**card, **fields, **({"data_fingerprint": data_fingerprint} if data_fingerprint else {}),
                   "test_metrics": test, "promotion": decision, "version": name, "files": file_digests(stage)}
        entry = _history_entry(payload, name, decision["promoted"], decision["reason"])
        kept_as = _plain_kept_as(target) if decision["promoted"] else None
        before = [_plain_entry(target, current or {}, kept_as)] if kept_as else _unrecorded(current)
        history = [*(current or {}).get("history", []), *before, entry]
        with _room_for(stage, target):
            _write_json(stage / CARD, {**payload, "history": history})
            _fsync_tree(stage)
        version = stage.with_name(name)
        os.replace(stage, version)
        if decision["promoted"]:
            _point(target, version, kept_as)
        elif current is not None:  # the current model stays, and records what was tried
            _write_json(target.resolve() / CARD, {**current, "history": history})
        _prune(target)
        decision["version_dir"] = str(version) if version.exists() else None
        if decision["promoted"] and current is not None:  # the model replaced, as read under the lock
            decision["reason"] += _replaced_better(target, current, test, metric, mode, data_fingerprint)
        return {**decision, "test_metrics": test}
    finally:
        lock.release()


@contextmanager
def _room_for(stage: Path, target: Path) -> Iterator[None]:
    """Around the writing of `stage`, the new version of the canonical model `target`: where its disk fills up
    (`out_of_space`), the stage is removed (its part would hold the space that the next try needs) and StorageFull
    says so in one line; the canonical model is left as it was."""
    try:
        yield
    except Exception as err:
        if not out_of_space(err, target.parent):
            raise
        written = sum(file.stat().st_size for file in stage.rglob("*") if file.is_file())
        shutil.rmtree(stage, ignore_errors=True)
        free = size_text(shutil.disk_usage(target.parent).free)
        raise StorageFull(f"no room for the model {shown(target)}: the disk of {shown(target.parent)} filled up after "
                          f"{size_text(written)} of the new version ({_first_line(err)}), and has {free} free without "
                          "it; the canonical model is unchanged; free space there, or export to a folder on a larger "
                          "disk") from err


def _first_line(err: BaseException) -> str:
    """`err` in one line: its message's first line (a TorchScript error runs to 60 lines), else its type's name."""
    return (str(err).strip().splitlines() or [type(err).__name__])[0]


def _replaced_better(target: Path, replaced: dict[str, Any], test: dict[str, float], metric: str, mode: str,
                     data_fingerprint: str | None) -> str:
    """What to say when the model an export replaced at `target` (its card `replaced`) tested better than the new
    one (`test`) on the same data, by the held-out `metric` that `promote: if_better` compares (better: `mode`), and
    how to go back to it; "" otherwise."""
    old, new = (replaced.get("test_metrics") or {}).get(metric), test.get(metric)
    numbers = isinstance(old, (int, float)) and isinstance(new, (int, float))
    same_data = data_fingerprint and replaced.get("data_fingerprint") == data_fingerprint
    if not numbers or not same_data or (old <= new if mode == "max" else old >= new):
        return ""
    return (f"; it replaced a model that tested better on the same data ({metric} {old:.4f} against {new:.4f}, "
            f"version {replaced.get('version')}): `autotune rollback {shlex.quote(str(target))}` makes that one "
            f"current again")


def _canonical(target: Path) -> Path:
    """`target`, or the canonical model that it leads to when it is another link to one (`ln -s models/wine
    wine_alias`): so that an export, its lock and a rollback act on models/wine, not on a second model made at
    the alias with a copy of its history."""
    link = canonical_link(target)
    if link is None or versions_dir(target).resolve() == versions_dir(link).resolve():
        return target
    return link


def refuse_other_files(target: Path) -> None:
    """A UserError when `target` holds what an export must not replace: a file, or a folder of other files (no
    model.json), which the export would move into its versions folder to put the model's link in its place. A
    model folder (`autotune train --out`, an older autotune's export), an empty folder and a link are replaced."""
    if target.is_symlink() or not target.exists():
        return
    if target.is_dir() and ((target / CARD).is_file() or not any(target.iterdir())):
        return
    what = "a folder of other files (it holds no model.json)" if target.is_dir() else "a file"
    raise UserError(f"the model folder {target} is {what}: an export would move it into {versions_dir(target)} "
                    f"and put the model's link in its place; move it away, or set export.dir to another path")


def refuse_unwritable(target: Path, fix: str) -> None:
    """A UserError naming the first of the canonical model `target`'s lock file, versions folder and versions that
    this user cannot write (a teammate's, made under `umask 022`), its owner, and the ways on (`fix` the last): an
    export writes a version there and a card into the current one, a rollback a card into another, the pruning
    deletes old ones; a search found it out after its trials (a lock it could not write), or in a traceback."""
    lock, versions = target.parent / f".{target.name}.lock", versions_dir(target)
    for path in (p for p in (lock, versions, *(versions.iterdir() if versions.is_dir() else ())) if p.exists()):
        if not os.access(path, os.W_OK):
            raise UserError(f"cannot write the model {shown(target)}: {blocking(path, f'{versions} {lock}')}; or {fix}")


def _history_entry(card: dict[str, Any], version: str, promoted: bool, reason: str) -> dict[str, Any]:
    """The history entry of the model whose card is `card`, as the version `version`: when, by whom, from which
    data, run and trial it was made, and the decision (`promoted`, `reason`)."""
    return {"version": version, "created": card.get("created"), "created_by": card.get("created_by"),
            "data_fingerprint": card.get("data_fingerprint"),
            "run": card.get("run_uri") or card.get("run_dir"), "trial_id": card.get("trial_id"), "promoted": promoted,
            "reason": reason}


def _plain_kept_as(target: Path) -> str | None:
    """The version name a plain model folder at `target` (`autotune train --out`) is kept as when an export
    replaces it; None when `target` is no plain folder."""
    return f"previous-{uuid.uuid4().hex[:6]}" if target.is_dir() and not target.is_symlink() else None


def _plain_entry(target: Path, card: dict[str, Any], kept_as: str) -> dict[str, Any]:
    """The history entry of the plain model folder at `target` (its `card`), kept as the version `kept_as`: it was
    the model there, so a rollback goes back to it."""
    return _history_entry(card, kept_as, True,
                         f"the plain folder at {target.name} (autotune train --out, or by hand), kept as a version")


def _unrecorded(current: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The history entry of the current version when its card keeps no history (an autotune before cards kept one
    exported it): it was the canonical model, so a rollback goes back to it; none otherwise."""
    if current is None or "history" in current or not current.get("version"):
        return []
    reason = (current.get("promotion") or {}).get("reason") or "the canonical model before its card kept a history"
    return [_history_entry(current, current["version"], True, reason)]


def _export_lock(target: Path, fix: str) -> FileLock:
    """The lock of the canonical model `target`, acquired: two exports (or a rollback) never interleave. A lock that
    cannot be written (a read-only folder): a UserError, ending with `fix`."""
    path = target.parent / f".{target.name}.lock"
    if (odd := not_a_lock_file(path)) is not None:  # filelock < 3.20.1 truncates through one (CVE-2025-68146)
        raise odd
    lock = FileLock(str(path))
    try:
        _acquire(lock, target)
    except Timeout:
        raise UserError(f"another run has been exporting to {target} for 10 minutes; try again later") from None
    except OSError as err:
        raise (not_a_lock_file(path) or UserError(f"cannot write the lock {path} of the model {target}: "
                                                  f"{err.strerror or err}; {fix}")) from None
    return lock


def _acquire(lock: FileLock, target: Path) -> None:
    """Take the lock of the canonical model `target`, with a line saying whom it waits for when another export or
    rollback holds it (a search's export tests both models on the test split: minutes on a large one); Timeout after
    10 minutes."""
    try:
        lock.acquire(timeout=0)
    except Timeout:
        log.info("another export or rollback of %s is under way (it holds %s): waiting for it to end",
                 shown(target), shown(Path(lock.lock_file)))
        lock.acquire(timeout=600)


def roll_back(target: Path, to: str | None = None) -> tuple[str, str]:
    """Make the version `to` (default: the one that was the canonical model before the current one, by the card's
    history, leaving out versions a rollback left) the canonical model `target` again, in one link move. Its card
    takes the current card's `history`, with an entry for the rollback, so that a retrain skips the data whose
    models it rolled back (it searches new data, against this version), and its `promotion` becomes the rollback
    (from which version, when). Returns (the version it left, the version now current); a UserError when there is
    none to go back to."""
    target = _canonical(expanded(target).absolute())
    if not target.is_symlink() or not (target / CARD).is_file():
        raise UserError(f"{target} is not a canonical model (a link to a version folder, as `autotune run` exports "
                        f"it): nothing to roll back")
    refuse_unwritable(target, "ask them to roll it back")
    lock = _export_lock(target, "a rollback moves the link and writes the card: run it where the folder is writable")
    try:
        current = target.resolve()
        versions = sorted((p for p in versions_dir(target).iterdir()
                           if p.is_dir() and not p.name.endswith(".partial") and (p / CARD).is_file()),
                          key=lambda p: p.name)
        left = _current_card(target) or {}
        if to is None:
            version = _rollback_version(target, current.name, left.get("history", []), versions)
            if version is None:
                raise _nothing_to_roll_back(target, current.name, left.get("history", []), versions)
        else:
            version = versions_dir(target) / to
            if version not in versions:
                kept = ", ".join(p.name for p in versions) or "none"
                was = any(entry.get("version") == to for entry in left.get("history", []))
                why = (f"version {to!r} was pruned ({KEEP_VERSIONS} that were the canonical model before the current "
                       f"one are kept)" if was else f"{target} has no version {to!r}")
                raise UserError(f"{why}; its versions: {kept}")
            if version.name == current.name:
                raise UserError(f"version {to} is the canonical model {target} already")
        card = json.loads((version / CARD).read_text())
        when = datetime.now(timezone.utc).isoformat(timespec="seconds")
        reason = f"rolled back from version {current.name} (autotune rollback)"
        by = operator()
        entry = {**_history_entry(card, version.name, True, reason), "created": when, "created_by": by,
                 "rolled_back_from": current.name}
        promotion = {"policy": "rollback", "promoted": True, "reason": reason, "rolled_back_from": current.name,
                     "created": when, "created_by": by}  # its export's decision stays in `history`
        _write_json(version / CARD, {**card, "promotion": promotion, "history": [*left.get("history", []), entry]})
        _point(target, version)
        return current.name, version.name
    finally:
        lock.release()


def _nothing_to_roll_back(target: Path, current: str, history: list[dict[str, Any]], versions: list[Path]) -> UserError:
    """Why a rollback of `target` finds no version to go back to: none was ever current before `current` (a first
    export), or those that were are left by a rollback or deleted; and, where other versions are kept, how to
    list them and name one."""
    before = any(entry.get("promoted") and entry.get("version") != current for entry in history)
    why = (f"the versions that were the canonical model before it were left by a rollback or deleted "
           f"({KEEP_VERSIONS} are kept)" if before else "no other version has been the canonical model")
    others = any(version.name != current for version in versions)
    fix = f"; name a kept one with --to (`autotune ls versions {shown(target)}` lists them)" if others else ""
    return UserError(f"{shown(target)} has no earlier version to go back to: {why}{fix}")


def _rollback_version(target: Path, current: str, history: list[dict[str, Any]], versions: list[Path]) -> Path | None:
    """The version a rollback of `target` goes back to (`_earlier`'s first that is kept), None when none is; a
    warning names the versions it passes over because they are gone (deleted by hand, or without their card)."""
    kept = {p.name: p for p in versions}
    earlier = _earlier(current, history)
    found = next((name for name in earlier if name in kept), None)
    gone = earlier[:earlier.index(found)] if found else earlier
    if gone and found:
        several = len(gone) > 1
        log.warning("version%s %s, current before %s, %s gone from %s (deleted, or without %s): going back to %s, "
                    "current before %s", "s" * several, ", ".join(gone), current, "are" if several else "is",
                    shown(versions_dir(target)), CARD, found, "them" if several else "it")
    return kept[found] if found else None


def _earlier(current: str, history: list[dict[str, Any]]) -> list[str]:
    """The versions that were the canonical model before `current`, by `history` (newest last), latest first: what
    rollbacks go back to, in turn. A version a rollback left, and that nothing made current again since, is not one
    (a second rollback goes on back, not to the version the first one left; after `--to` makes it current again,
    it is one)."""
    left: set[str | None] = set()
    for entry in history:
        if entry.get("promoted"):
            left.discard(entry.get("version"))
        left.add(rolled_back_from(entry))
    names: list[str] = []
    for entry in reversed(history):
        name = entry.get("version")
        if entry.get("promoted") and name != current and name not in left and name not in names:
            names.append(name)
    return names


def rolled_back_from(entry: dict[str, Any]) -> str | None:
    """The version a history entry's rollback left (None: the entry is an export's): its `rolled_back_from`, or,
    in a card written before that key, its reason's "rolled back from version V"."""
    found = re.match(r"rolled back from version (\S+)", str(entry.get("reason", "")))
    return entry.get("rolled_back_from") or (found.group(1) if found else None)


def _predicts_other(current: dict[str, Any] | None, new: dict[str, Any]) -> str | None:
    """Why a new model is not a retrain of the canonical one, when the two predict other things (a table's model:
    another target column, or another task; an image model: another dataset, told by labels in common with none of
    the current model's, or images of another number of channels): the reason it is not promoted over it by
    "if_better", which would compare scores of two different predictions (or fail to score the current model on
    the new data); None when they may be compared. A class added or dropped, or another image size, is a retrain."""
    if current is None:
        return None
    differ = [key for key in PREDICTS if current.get(key) is not None and new.get(key) is not None
              and current[key] != new[key]] + _other_images(current, new)
    if not differ:
        return None

    def what(card: dict[str, Any]) -> str:
        return ", ".join(f"{key} {_shown(card.get(key))}" for key in differ)
    return (f"the current model predicts ({what(current)}) and the new one ({what(new)}): not a retrain of it; "
            f"export the new one to a folder of its own (export.dir, or another name:), or set "
            f"export.promote: always to replace it")


def _other_images(current: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """The card fields that tell two image models (cards with an input_shape) apart as models of other datasets:
    `labels` when they share none, `input_shape` when its channels differ."""
    if not current.get("input_shape") or not new.get("input_shape"):
        return []
    labels = [] if {str(x) for x in current.get("labels") or []} & {str(x) for x in new.get("labels") or []} \
        else ["labels"]
    return labels + (["input_shape"] if current["input_shape"][0] != new["input_shape"][0] else [])


def _plain(value: Any) -> Any:
    """`value` as a card holds it once read back (tuples as lists), to compare a new card with a written one."""
    return json.loads(json.dumps(value, default=str))


def _shown(value: Any) -> str:
    """`value` in a reason: a long list of labels shortened to its first three and its length."""
    if isinstance(value, (list, tuple)) and len(value) > 5:
        return f"[{', '.join(map(repr, value[:3]))}, ... {len(value)} in all]"
    return repr(_plain(value))


def _decide(
    target: Path,
    evaluate: Callable[[Path], dict[str, float]],
    test: dict[str, float],
    metric: str,
    mode: str,
    promote: str,
    compared_on: str,
    min_improvement: float = 0.0,
) -> dict[str, Any]:
    has_current = target.exists() and (target / CARD).exists()
    if not has_current:
        return {"policy": promote, "promoted": True, "reason": "no canonical model yet"}
    if promote == "always":
        return {"policy": promote, "promoted": True, "reason": "export.promote is 'always'"}
    if promote == "never":
        return {"policy": promote, "promoted": False, "reason": "export.promote is 'never' and a model exists"}
    if metric not in test:
        return {"policy": promote, "promoted": True, "reason": f"the recipe's evaluate gives no {metric!r}; promoted"}
    try:
        current = evaluate(target.resolve())
    except Exception as err:  # an unreadable current model must not block a good new one
        return {"policy": promote, "promoted": True,
                "reason": f"the current model could not be evaluated: {_first_line(err)}"}
    new_value, old_value = test[metric], current.get(metric, float("nan"))
    promoted = _is_better(new_value, old_value, mode, min_improvement)
    margin = min_improvement and math.isfinite(old_value)
    by = f" by more than export.min_improvement={min_improvement:g}" if margin else ""
    verdict = f"{'' if promoted else 'not '}better{by} than"
    return {
        "policy": promote,
        "promoted": promoted,
        "metric": metric,
        "new": new_value,
        "current": old_value,
        "reason": f"new {metric}={new_value:.4f} is {verdict} the current model's {old_value:.4f} {compared_on}",
    }
