"""The canonical model is replaced atomically, by policy, one exporter at a time."""
from __future__ import annotations

import errno
import getpass
import json
import os
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from autotune.engine import export as export_module
from autotune.engine.export import export_model, refuse_unwritable, versions_dir
from autotune.errors import StorageFull, UserError


def writer(value: float, *, sleep: float = 0.0, crash_after_first_file: bool = False, log: list | None = None):
    def write(out: Path) -> dict:
        started = time.perf_counter()
        (out / "weights.json").write_text(json.dumps({"value": value}))
        if crash_after_first_file:
            raise OSError("disk full (injected)")
        time.sleep(sleep)
        (out / "extra.bin").write_bytes(b"x" * 1024)
        if log is not None:
            log.append((started, time.perf_counter()))
        return {"labels": ["a"], "value": value}

    return write


def evaluate(model_dir: Path) -> dict:
    return {"test_accuracy": json.loads((Path(model_dir) / "weights.json").read_text())["value"]}


def export(target: Path, value: float, promote: str = "always", min_improvement: float = 0.0, **kwargs) -> dict:
    return export_model(target, write=writer(value, **kwargs), evaluate=evaluate, card={"name": f"v{value}"},
                        metric="test_accuracy", mode="max", promote=promote, min_improvement=min_improvement)


def load(target: Path) -> dict:
    card = json.loads((target / "model.json").read_text())
    assert evaluate(target)["test_accuracy"] == card["value"]  # weights and card belong together
    return card


def test_the_first_export_creates_the_canonical_link(tmp_path):
    target = tmp_path / "models" / "m"
    decision = export(target, 0.5)
    assert decision["promoted"] and target.is_symlink()
    card = load(target)
    assert card["value"] == 0.5 and card["test_metrics"] == {"test_accuracy": 0.5}
    assert card["promotion"]["reason"] == "no canonical model yet"


def test_the_card_records_the_sha_256_of_each_model_file(tmp_path):
    """A pipeline that publishes or copies the model folder checks it against its card (`sha256sum` agrees)."""
    import hashlib

    target = tmp_path / "models" / "m"
    export(target, 0.5)
    files = load(target)["files"]
    assert files == {name: hashlib.sha256((target / name).read_bytes()).hexdigest()
                     for name in ("extra.bin", "weights.json")}


@pytest.mark.parametrize("where", ["write", "evaluate", "card", "swap"])
def test_a_crash_during_export_leaves_the_previous_model_intact(tmp_path, monkeypatch, where):
    target = tmp_path / "m"
    export(target, 0.5)
    if where == "write":
        with pytest.raises(OSError, match="injected"):
            export(target, 0.9, crash_after_first_file=True)
    else:
        failing = {"evaluate": "_decide", "card": "_write_json", "swap": "_point"}[where]

        def crash(*args, **kwargs):
            raise OSError(f"crash in {failing} (injected)")

        monkeypatch.setattr(export_module, failing, crash)
        with pytest.raises(OSError, match="injected"):
            export(target, 0.9)
        monkeypatch.undo()
    assert load(target)["value"] == 0.5
    # The next export cleans the partial version up and succeeds.
    export(target, 0.7)
    assert load(target)["value"] == 0.7
    assert not [p for p in versions_dir(target).iterdir() if p.name.endswith(".partial")]


@pytest.mark.parametrize("raised", ["oserror", "recipe"])
def test_a_full_disk_during_export_says_so_removes_its_part_and_keeps_the_model(tmp_path, raised):
    """A full disk under the model folder left a traceback (or the recipe's one line, `OSError: [Errno 28]`) and
    the new version's part in a `.partial` folder, holding the space a second try needs, until the next export.
    Now the part is removed and StorageFull says which folder filled up, how much was written, and that the
    canonical model is unchanged; the recipe's call wraps the OSError (`recipes.call`), which counts the same."""
    target = tmp_path / "m"
    export(target, 0.5)

    def write(out: Path) -> dict:
        (out / "weights.json").write_bytes(b"x" * 3000)
        full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        if raised == "oserror":
            raise full
        raise UserError("recipe function 'export' failed: OSError: [Errno 28] No space left on device") from full

    with pytest.raises(StorageFull) as caught:
        export_model(target, write=write, evaluate=evaluate, card={}, metric="test_accuracy", mode="max",
                     promote="always")
    assert str(caught.value).startswith(f"no room for the model {target}: the disk of {tmp_path} filled up after "
                                        "3.0 kB of the new version (")
    assert "the canonical model is unchanged; free space there" in str(caught.value)
    assert [p.name for p in versions_dir(target).iterdir() if p.name.endswith(".partial")] == []
    assert load(target)["value"] == 0.5


def test_a_card_that_does_not_fit_leaves_the_current_card_whole_and_nothing_beside_it(tmp_path, monkeypatch):
    """A model not promoted records the try in the current card's history: a full disk during that write left a
    truncated model.json.tmp in the current version's folder."""
    target = tmp_path / "m"
    export(target, 0.8)
    before = (target / "model.json").read_text()
    real = Path.write_text

    def full(self, text, *args, **kwargs):
        real(self, text[:10])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(Path, "write_text", full)
    with pytest.raises(OSError):
        export_module._write_json(target.resolve() / "model.json", {"value": 0.1})
    monkeypatch.undo()
    assert (target / "model.json").read_text() == before
    assert sorted(p.name for p in target.resolve().iterdir()) == ["extra.bin", "model.json", "weights.json"]


def test_promote_if_better_both_ways(tmp_path):
    target = tmp_path / "m"
    export(target, 0.8, "if_better")
    worse = export(target, 0.6, "if_better")
    assert not worse["promoted"] and worse["current"] == 0.8 and worse["new"] == 0.6
    assert load(target)["value"] == 0.8
    better = export(target, 0.9, "if_better")
    assert better["promoted"] and load(target)["value"] == 0.9
    assert "better than the current model's 0.8000" in better["reason"]


def test_promote_never_only_exports_a_first_model(tmp_path):
    target = tmp_path / "m"
    assert export(target, 0.5, "never")["promoted"]
    assert not export(target, 0.9, "never")["promoted"]
    assert load(target)["value"] == 0.5


def test_old_versions_are_pruned(tmp_path):
    target = tmp_path / "m"
    for value in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6):
        export(target, value)
    versions = [p for p in versions_dir(target).iterdir()]
    assert len(versions) == 1 + export_module.KEEP_VERSIONS
    kept = sorted(json.loads((p / "model.json").read_text())["value"] for p in versions)
    assert kept == [0.3, 0.4, 0.5, 0.6]  # the newest, though all were written within one second
    assert load(target)["value"] == 0.6


def test_versions_sort_in_the_order_they_were_made_whatever_the_exporter_s_time_zone(tmp_path, monkeypatch):
    """Version folders were named by the exporting process's local time: a teammate east of the last exporter (or a
    clock set back an hour in autumn) made a version that sorted before the older ones, and the pruning, which keeps
    the newest by name, deleted the newest served versions and kept the old ones."""
    import time

    target = tmp_path / "m"
    try:
        for value, zone in ((0.1, "Etc/GMT-9"), (0.2, "Etc/GMT+9"), (0.3, "Etc/GMT-9"), (0.4, "Etc/GMT+9"),
                            (0.5, "Etc/GMT-9")):  # UTC+9 then UTC-9: a local clock 18 hours behind
            monkeypatch.setenv("TZ", zone)
            time.tzset()
            export(target, value)
    finally:
        monkeypatch.undo()
        time.tzset()
    made = [json.loads((p / "model.json").read_text())["value"] for p in sorted(versions_dir(target).iterdir())]
    assert made == sorted(made) == [0.2, 0.3, 0.4, 0.5]  # the oldest pruned, not the newest


def test_a_kill_while_an_old_version_is_deleted_leaves_no_version_to_roll_back_to(tmp_path, monkeypatch):
    """The pruning deleted a version's files in place: a kill (SIGKILL, a lost machine) in the middle left its card
    beside part of its weights, and `autotune rollback --to` made that broken version current."""
    from autotune.engine.export import roll_back

    target = tmp_path / "m"
    for value in (0.1, 0.2, 0.3, 0.4):
        export(target, value)
    oldest = min(versions_dir(target).iterdir())
    real = export_module.shutil.rmtree

    def killed_midway(path, **kwargs):  # the weights deleted, then the process is gone
        (Path(path) / "weights.json").unlink(missing_ok=True)
        raise KeyboardInterrupt

    monkeypatch.setattr(export_module.shutil, "rmtree", killed_midway)
    with pytest.raises(KeyboardInterrupt):
        export(target, 0.5)
    monkeypatch.setattr(export_module.shutil, "rmtree", real)
    with pytest.raises(UserError, match=f"version '{oldest.name}' was pruned"):
        roll_back(target, oldest.name)
    export(target, 0.6)  # the next export deletes what was left
    assert not [p for p in versions_dir(target).iterdir() if p.name.endswith(".partial")]
    assert load(target)["value"] == 0.6


def test_retrains_that_are_not_promoted_do_not_push_out_the_versions_that_were_served(tmp_path):
    target = tmp_path / "m"
    for value in (0.5, 0.6, 0.7, 0.8):
        export(target, value)  # each the canonical model in turn
    for value in (0.1, 0.2, 0.3, 0.4):
        assert not export(target, value, "if_better")["promoted"]
    kept = sorted(json.loads((p / "model.json").read_text())["value"] for p in versions_dir(target).iterdir())
    assert kept == [0.4, 0.5, 0.6, 0.7, 0.8]  # the current one, the 3 served before it, the newest that lost
    assert load(target)["value"] == 0.8


def test_a_rollback_makes_an_earlier_version_current_and_records_it(tmp_path):
    from autotune.engine.export import roll_back
    from autotune.errors import UserError

    target = tmp_path / "m"
    versions = {value: export(target, value)["version_dir"] for value in (0.5, 0.6, 0.7)}
    left, now = roll_back(target)  # the one current before
    assert (left, now) == (Path(versions[0.7]).name, Path(versions[0.6]).name) and load(target)["value"] == 0.6
    history = load(target)["history"]
    assert [h["version"] for h in history] == [Path(versions[v]).name for v in (0.5, 0.6, 0.7)] + [now]
    assert history[-1]["reason"] == f"rolled back from version {left} (autotune rollback)"
    promotion = load(target)["promotion"]  # the card's decision is the rollback, not its export's stale one
    assert promotion["reason"] == history[-1]["reason"] and promotion["rolled_back_from"] == left
    assert promotion["promoted"] is True and promotion["created"] == history[-1]["created"]
    assert roll_back(target, Path(versions[0.7]).name)[1] == Path(versions[0.7]).name  # forward again, by name
    assert load(target)["value"] == 0.7
    for to, words in [(Path(versions[0.7]).name, "is the canonical model"), ("v9", "has no version 'v9'")]:
        with pytest.raises(UserError, match=words):
            roll_back(target, to)
    first = tmp_path / "n"
    export(first, 0.5)
    with pytest.raises(UserError, match="has no earlier version to go back to: no other version has been the "
                                        "canonical model$"):  # it said they "were left by a rollback or deleted"
        roll_back(first)
    assert not export(first, 0.4, "if_better")["promoted"]
    with pytest.raises(UserError, match=f"been the canonical model; name a kept one with --to \\(`autotune ls "
                                        f"versions {first}` lists them\\)$"):
        roll_back(first)
    oldest = Path(export(first, 0.51)["version_dir"]).name
    for value in (0.52, 0.53, 0.54, 0.55):  # the oldest is pruned: 3 earlier versions are kept
        export(first, value)
    with pytest.raises(UserError, match=f"version '{oldest}' was pruned \\(3 that were the canonical model before "
                                        "the current one are kept\\); its versions: "):
        roll_back(first, oldest)
    with pytest.raises(UserError, match="is not a canonical model"):
        roll_back(Path(versions[0.5]))


# Which trial made each version: the history named its run alone, and a pruned version's trial was lost with it.
def test_each_history_entry_names_the_trial_that_made_its_version(tmp_path):
    from autotune.engine.export import roll_back

    target = tmp_path / "m"
    for trial, value in (("t1", 0.5), ("t2", 0.6), ("t3", 0.4)):
        export_model(target, write=writer(value), evaluate=evaluate, card={"name": "m", "trial_id": trial,
                     "run_dir": f"runs/{trial}"}, metric="test_accuracy", mode="max", promote="if_better")
    roll_back(target)
    history = load(target)["history"]
    assert [(h["trial_id"], h["run"], h["promoted"]) for h in history] == [
        ("t1", "runs/t1", True), ("t2", "runs/t2", True), ("t3", "runs/t3", False), ("t1", "runs/t1", True)]


def test_each_history_entry_and_a_rollback_name_who_made_them(tmp_path, monkeypatch):
    """The card and its history said when each version was exported or rolled back to, never by whom: a reviewer
    of a model had no record of who ran its search or moved the canonical link. Each entry, and a rollback's
    promotion, names the user and host (the export's from its card's `created_by`)."""
    from autotune.engine.export import roll_back

    target = tmp_path / "m"
    for trial, user in (("t1", "ana"), ("t2", "ben")):
        export_model(target, write=writer(0.5), evaluate=evaluate, metric="test_accuracy", mode="max",
                     promote="always", card={"name": "m", "trial_id": trial,
                                             "created_by": {"user": user, "host": "build-1"}})
    monkeypatch.setattr(export_module.getpass, "getuser", lambda: "cara")
    monkeypatch.setattr(export_module.socket, "gethostname", lambda: "laptop")
    roll_back(target)
    card = load(target)
    assert [h["created_by"]["user"] for h in card["history"]] == ["ana", "ben", "cara"]
    assert card["promotion"]["created_by"] == card["history"][-1]["created_by"] == {"user": "cara", "host": "laptop"}


def test_a_user_the_system_cannot_name_is_recorded_as_none(monkeypatch):
    """getpass.getuser() raises in a container run as a user id with no name: the export goes on."""
    def unnamed():
        raise KeyError("getpwuid(): uid not found: 1000")

    monkeypatch.setattr(export_module.getpass, "getuser", unnamed)
    assert export_module.operator()["user"] is None


# A version deleted by hand (`rm -rf models/.m.versions/V` to free the disk) was passed over in silence: the rollback
# went to an older model than the one current before, and printed only "version ... is current".
def test_a_rollback_that_passes_over_a_deleted_version_says_so(tmp_path, capsys):
    import shutil

    import autotune.cli

    target = tmp_path / "m"
    versions = [Path(export(target, value)["version_dir"]) for value in (0.5, 0.6, 0.7)]
    shutil.rmtree(versions[1])
    assert autotune.cli.main(["rollback", str(target)]) == 0
    out = capsys.readouterr().out
    assert (f"version {versions[1].name}, current before {versions[2].name}, is gone from {versions_dir(target)} "
            f"(deleted, or without model.json): going back to {versions[0].name}, current before it") in out
    assert f"version {versions[0].name} is current (was {versions[2].name})" in out and load(target)["value"] == 0.5


def test_a_rollback_names_the_version_it_made_current_though_an_export_moved_the_link_since(tmp_path, capsys,
                                                                                             monkeypatch):
    """`autotune rollback` read the card through the link after its lock was released: a search that promoted its
    model that moment had its trial and run printed as the version rolled back to."""
    import autotune.cli

    target = tmp_path / "m"
    for trial, value in (("t1", 0.5), ("t2", 0.6)):
        export_model(target, write=writer(value), evaluate=evaluate, card={"name": "m", "trial_id": trial,
                     "run_name": f"run-{trial}"}, metric="test_accuracy", mode="max", promote="always")
    real = export_module.roll_back

    def then_an_export(*args, **kwargs):
        moved = real(*args, **kwargs)
        export_model(target, write=writer(0.7), evaluate=evaluate, card={"name": "m", "trial_id": "t3",
                     "run_name": "run-t3"}, metric="test_accuracy", mode="max", promote="always")
        return moved

    monkeypatch.setattr(export_module, "roll_back", then_an_export)
    assert autotune.cli.main(["rollback", str(target)]) == 0
    assert "(trial t1 of run run-t1) is current" in capsys.readouterr().out


def test_a_rollback_goes_back_to_a_version_whose_card_kept_no_history(tmp_path):
    """A canonical model an autotune before cards kept a history exported, replaced by a retrain: the rollback goes
    back to it (an upgrade walk: 'has no earlier version to go back to', though its folder was there)."""
    from autotune.engine.export import roll_back

    target = tmp_path / "m"
    old = Path(export(target, 0.5)["version_dir"])
    card = json.loads((old / "model.json").read_text())
    (old / "model.json").write_text(json.dumps({k: v for k, v in card.items() if k != "history"}))  # as v0.1 wrote
    export(target, 0.6)
    history = load(target)["history"]
    assert [h["version"] for h in history][:1] == [old.name] and history[0]["promoted"] is True
    assert roll_back(target)[1] == old.name and load(target)["value"] == 0.5


def test_rollbacks_go_back_through_the_versions_that_were_current_not_by_their_names(tmp_path):
    """A night's model promoted, rolled back as bad, then two more promoted: rollbacks go back in the order the
    versions were current, past the one rolled back as bad (it came second by its name: a second rollback went
    back to it), and a version an earlier card names only in its reason is left out too."""
    from autotune.engine.export import roll_back

    target = tmp_path / "m"
    name = {value: Path(export(target, value)["version_dir"]).name for value in (0.5, 0.6)}  # night 1, bad night 4
    assert roll_back(target) == (name[0.6], name[0.5])  # the bad one rolled back
    name.update({value: Path(export(target, value)["version_dir"]).name for value in (0.7, 0.8)})  # nights 5, 6
    assert roll_back(target) == (name[0.8], name[0.7])
    assert roll_back(target) == (name[0.7], name[0.5])  # not to the bad 0.6, nor forward to 0.8
    card = load(target)
    history = [{k: v for k, v in entry.items() if k != "rolled_back_from"} for entry in card["history"]]
    (target.resolve() / "model.json").write_text(json.dumps({**card, "history": history}))  # a card before the key
    name[0.9] = Path(export(target, 0.9)["version_dir"]).name  # 0.5 is kept: a rollback goes back to it
    assert roll_back(target) == (name[0.9], name[0.5])
    roll_back(target, name[0.9])  # forward again, by name: 0.9 is current again, not "left"
    name[1.0] = Path(export(target, 1.0)["version_dir"]).name
    assert roll_back(target) == (name[1.0], name[0.9])


def test_a_version_that_lost_and_was_rolled_back_to_counts_as_served(tmp_path):
    """Rolled back to a retrain's model that was not promoted: its card says promoted by the rollback (not "not
    better than the current model's"), and later exports keep it among the versions that were served."""
    from autotune.engine.export import roll_back

    target = tmp_path / "m"
    export(target, 0.5)
    lost = Path(export(target, 0.4, promote="if_better")["version_dir"]).name
    assert "not better" in json.loads((versions_dir(target) / lost / "model.json").read_text())["promotion"]["reason"]
    roll_back(target, lost)
    assert load(target)["promotion"]["reason"].startswith("rolled back from version ")
    for value in (0.3, 0.2):  # two retrains that lose: the newest of them is kept as the one tried
        export(target, value, promote="if_better")
    export(target, 0.9, promote="if_better")
    assert (versions_dir(target) / lost).is_dir()


def test_two_exporters_never_interleave(tmp_path):
    target = tmp_path / "m"
    spans: list = []
    threads = [threading.Thread(target=export, args=(target, v), kwargs={"sleep": 0.3, "log": spans})
               for v in (0.3, 0.4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    (a_start, a_end), (b_start, b_end) = sorted(spans)
    assert a_end <= b_start, spans
    assert load(target)["value"] in (0.3, 0.4)


def test_an_export_that_waits_for_another_says_so(tmp_path, caplog):
    """A second exporter (`autotune export --trial` beside a search's export, a rollback) waited in silence while the
    first tested both models."""
    from filelock import FileLock

    target = tmp_path / "m"
    export(target, 0.3)
    held = FileLock(str(tmp_path / ".m.lock"))
    held.acquire()
    second = threading.Thread(target=export, args=(target, 0.4))
    with caplog.at_level("INFO", logger="autotune"):
        second.start()
        deadline = time.monotonic() + 30
        while "waiting for it to end" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.01)
        assert load(target)["value"] == 0.3  # it waits
        held.release()
        second.join()
    assert f"another export or rollback of {target} is under way (it holds {tmp_path / '.m.lock'}): waiting for it " \
           "to end" in caplog.text
    assert load(target)["value"] == 0.4


def test_an_unwritable_export_dir_is_a_clear_error(tmp_path):
    from autotune.errors import UserError

    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(UserError, match="cannot write the model to .*set export.dir to a writable folder"):
        export(blocker / "models" / "m", 0.5)


@pytest.mark.unprivileged
def test_a_model_whose_versions_this_user_cannot_write_is_refused_naming_the_folder_and_its_owner(tmp_path):
    """A teammate's model exported under `umask 022`: a search that exported to it ran its trials, then failed on
    the lock ("Permission denied; set export.dir to a writable folder"); with the lock writable, on the version."""
    target = tmp_path / "m"
    export(target, 0.3)
    version = target.resolve()
    version.chmod(0o555)
    try:
        with pytest.raises(UserError) as refused:
            refuse_unwritable(target, "set export.dir to another path")  # as preflight does, before the search
        with pytest.raises(UserError, match="cannot write .*or set export.dir to another path$"):
            export(target, 0.4)
        with pytest.raises(UserError, match="cannot write .*or ask them to roll it back$"):
            export_module.roll_back(target)
    finally:
        version.chmod(0o755)
    assert str(refused.value) == (
        f"cannot write the model {target}: {version} ({getpass.getuser()}, dr-xr-xr-x) is not writable by you; ask "
        f"its owner to `chmod -R g+w {tmp_path / '.m.versions'} {tmp_path / '.m.lock'}` (a team's shared folder: "
        "searches and exports run under `umask 002` make their files the group's to read and write); or set "
        "export.dir to another path")
    assert load(target)["value"] == 0.3


def test_pruning_keeps_the_current_model_when_export_dir_goes_through_a_link(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "linked").symlink_to(tmp_path / "real")
    target = tmp_path / "linked" / "m"
    export(target, 0.9, "if_better")
    for value in (0.1, 0.2, 0.3, 0.4, 0.5):  # none promoted: the current model becomes the oldest version
        assert not export(target, value, "if_better")["promoted"]
    assert load(target)["value"] == 0.9
    versions = list(versions_dir(target).iterdir())
    assert len(versions) == 1 + export_module.KEEP_TRIED  # the current one, and the newest that lost to it
    decision = export(target, 0.6, "if_better")
    assert not decision["promoted"] and decision["current"] == 0.9


@pytest.mark.parametrize("order", ["dominated first", "dominated last"])
def test_a_tie_on_the_first_objective_exports_the_checkpoint_the_others_favour(order):
    """Two objectives (accuracy up, size down): a tie on accuracy goes to the smaller model, never to one that
    the other beats on every objective."""
    from types import SimpleNamespace

    import autotune
    from autotune.api import pareto_front
    from autotune.engine.result_grid import best_checkpoint

    space = autotune.load_space(
        f"name: m\nrecipe: {Path(__file__).with_name('toy_recipe.py')}\nmodel: {{x: {{uniform: [0, 1]}}}}\n"
        "search: {metric: [val_accuracy, num_parameters], mode: [max, min], sampler: nsga2, scheduler: fifo}\n")
    big = SimpleNamespace(name="big", best_checkpoints=[("big@2", {"val_accuracy": 0.9, "num_parameters": 900.0})])
    small = SimpleNamespace(name="small", best_checkpoints=[
        ("small@1", {"val_accuracy": 0.8, "num_parameters": 100.0}),
        ("small@2", {"val_accuracy": 0.9, "num_parameters": 100.0})])
    worse = SimpleNamespace(name="worse", best_checkpoints=[("worse@2", {"val_accuracy": 0.7, "num_parameters": 50.0})])
    grid = [big, small, worse] if order == "dominated first" else [worse, small, big]
    result, checkpoint, metrics = best_checkpoint(grid, space)
    assert (result.name, checkpoint) == ("small", "small@2")
    every = pd.DataFrame([{"checkpoint": c, **m} for r in grid for c, m in r.best_checkpoints])
    assert checkpoint in [r["checkpoint"] for r in pareto_front(every, space.search.metric, space.search.mode)]


@pytest.mark.parametrize("promote, replaced", [("if_better", False), ("always", True)])
def test_a_model_of_another_target_does_not_replace_the_current_one_by_its_score(tmp_path, promote, replaced):
    """A model that predicts another column (another table's export under the same name) is no retrain of the
    canonical one: "if_better" keeps the current model, with the reason and the way out, and evaluates neither on
    the other's data; "always" replaces it as asked."""
    target = tmp_path / "m"
    churn = {"name": "tabular", "target": "churn", "task": "classification"}
    export_model(target, write=writer(0.5), evaluate=evaluate, card=churn, metric="test_accuracy", mode="max",
                 promote="always")

    def cannot_evaluate(model_dir: Path) -> dict:
        raise AssertionError("the current model is not evaluated on another target's data")

    decision = export_model(target, write=writer(0.9), evaluate=evaluate, card={**churn, "target": "progression",
                            "task": "regression"}, metric="test_accuracy", mode="max", promote=promote,
                            evaluate_current=cannot_evaluate)
    assert decision["promoted"] is replaced and load(target)["value"] == (0.9 if replaced else 0.5)
    if not replaced:
        assert decision["reason"] == (
            "the current model predicts (target 'churn', task 'classification') and the new one (target "
            "'progression', task 'regression'): not a retrain of it; export the new one to a folder of its own "
            "(export.dir, or another name:), or set export.promote: always to replace it")
    same = export_model(target, write=writer(0.95), evaluate=evaluate, card=load(target), metric="test_accuracy",
                        mode="max", promote="if_better")  # the same target: compared by score, as before
    assert same["promoted"] and "better than" in same["reason"]


def test_min_improvement_promotes_only_a_model_better_by_more_than_it(tmp_path):
    """`export.min_improvement`: if_better promotes a model better by more than the margin, in the metric's units,
    and keeps the current one against a gain within it (one test row's worth of noise); the reason says so."""
    target = tmp_path / "m"
    export(target, 0.80)
    kept = export(target, 0.81, "if_better", min_improvement=0.02)
    assert not kept["promoted"] and load(target)["value"] == 0.80
    assert kept["reason"] == ("new test_accuracy=0.8100 is not better by more than export.min_improvement=0.02 than "
                              "the current model's 0.8000 on the same test split")
    assert export(target, 0.83, "if_better", min_improvement=0.02)["promoted"] and load(target)["value"] == 0.83
    assert export(target, 0.831, "if_better")["promoted"]  # no margin: any gain


@pytest.mark.parametrize("kind", ["folder", "file"])
def test_the_user_s_own_files_at_export_dir_are_not_replaced(tmp_path, kind):
    """A folder of the user's files (no model.json) at export.dir was moved to .NAME.versions/previous-... and
    replaced by the link, the run saying only `promoted: no canonical model yet`. Refused in one line, nothing moved
    or written; an empty folder is replaced as before."""
    target = tmp_path / "m"
    if kind == "folder":
        target.mkdir()
        (target / "notes.txt").write_text("mine")
    else:
        target.write_text("mine")
    with pytest.raises(UserError) as caught:
        export(target, 0.5)
    what = "a folder of other files (it holds no model.json)" if kind == "folder" else "a file"
    assert str(caught.value) == (f"the model folder {target} is {what}: an export would move it into "
                                 f"{versions_dir(target)} and put the model's link in its place; move it away, or "
                                 "set export.dir to another path")
    assert not target.is_symlink() and not versions_dir(target).exists()
    assert (target / "notes.txt" if kind == "folder" else target).read_text() == "mine"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert export(empty, 0.5)["promoted"] and empty.is_symlink()


def test_what_changed_since_an_export_names_a_replaced_pretrained_weights_file(tmp_path):
    """`autotune train MODEL_DIR` says what changed since the export: the weights file the card records by its
    SHA-256 too (a fine-tuning walk retrained from other weights at the same path, and nothing said so)."""
    import hashlib

    from autotune.engine.export import changed_since

    weights = tmp_path / "resnet18.safetensors"
    weights.write_bytes(b"weights of night 1")
    card = {"pretrained": {"source": f"file {weights}", "file": str(weights),
                           "sha256": hashlib.sha256(b"weights of night 1").hexdigest()}}
    assert changed_since(card, {}) == []
    weights.write_bytes(b"weights of night 2")
    assert changed_since(card, {}) == [f"the pretrained weights file {weights} was replaced"]
    weights.unlink()
    assert changed_since(card, {}) == [f"the pretrained weights file {weights} is gone"]
    assert changed_since({"pretrained": {"source": "timm:resnet18", "file": None, "sha256": None}}, {}) == []


@pytest.mark.parametrize("recipe_s", [{}, {"data_fingerprint": None}, {"data_fingerprint": "the recipe's own"}])
def test_the_card_and_its_history_record_the_data_s_fingerprint_whatever_the_recipe_returns(tmp_path, recipe_s):
    """A recipe's export() that returns no data_fingerprint (or another one) left the card's null, and every
    --if-data-changed then searched the same data again: the engine records the data's own."""
    target = tmp_path / "m"

    def write(out: Path) -> dict:
        (out / "weights.json").write_text(json.dumps({"value": 0.5}))
        return {"value": 0.5, **recipe_s}

    export_model(target, write=write, evaluate=evaluate, card={"name": "m"}, metric="test_accuracy", mode="max",
                 promote="always", data_fingerprint="d05d8b39aa20")
    card = load(target)
    assert card["data_fingerprint"] == "d05d8b39aa20"
    assert [entry["data_fingerprint"] for entry in card["history"]] == ["d05d8b39aa20"]


def _scored(value: float | None):
    """An evaluate that scores every model `value` (None: it gives no test_loss), or fails on the current model
    when `value` is an exception."""
    def evaluate_current(model_dir: Path) -> dict:
        if isinstance(value, Exception):
            raise value
        return {} if value is None else {"test_loss": value}
    return evaluate_current


@pytest.mark.parametrize(("new", "current", "promoted", "reason"), [
    (0.2, 0.3, True, "new test_loss=0.2000 is better than the current model's 0.3000 on the same test split"),
    (0.4, 0.3, False, "new test_loss=0.4000 is not better than the current model's 0.3000 on the same test split"),
    (0.3, 0.3, False, "new test_loss=0.3000 is not better than"),  # a tie keeps the model that is served
    (0.3, float("nan"), True, "new test_loss=0.3000 is better than the current model's nan"),
    (0.3, None, True, "new test_loss=0.3000 is better than the current model's nan"),  # it gives no test_loss
    (float("nan"), float("nan"), False, "new test_loss=nan is not better than"),
    (None, 0.3, True, "the recipe's evaluate gives no 'test_loss'; promoted"),
    (0.3, RuntimeError("bad magic number\n  at line 2"), True,
     "the current model could not be evaluated: bad magic number"),
])
def test_if_better_promotes_only_a_better_model_of_a_loss(tmp_path, new, current, promoted, reason):
    """`promote: if_better` on a metric to minimise: a lower loss replaces the canonical model; an equal or higher
    one, or NaN, keeps it; a new model without the metric, or a current one that cannot be scored, is promoted
    (an unreadable model must not keep out a good one). The decision names the version it replaced or kept."""
    target = tmp_path / "m"
    first = export(target, 0.5)
    decision = export_model(target, write=writer(0.9), evaluate=_scored(new), card={"name": "new"},
                            metric="test_loss", mode="min", promote="if_better", evaluate_current=_scored(current))
    assert decision["promoted"] is promoted and decision["reason"].startswith(reason), decision["reason"]
    assert load(target)["value"] == (0.9 if promoted else 0.5)
    first_version = Path(first["version_dir"]).name
    assert decision["replaced" if promoted else "kept"] == first_version
    assert ("kept" if promoted else "replaced") not in decision


def test_a_reader_finds_a_whole_model_at_every_step_of_an_export(tmp_path, monkeypatch):
    """The canonical path is swapped to the new version in one `os.replace`: before and after each rename of the
    export, a reader (`serve`, `predict`) finds a whole model there, the old one until the swap, then the new one;
    never no model (a link removed, then made again)."""
    import os

    target = tmp_path / "m"
    export(target, 0.5)
    seen, replace = [], os.replace

    def watched(src, dst, *args, **kwargs):
        seen.append(load(target)["value"])
        replace(src, dst, *args, **kwargs)
        seen.append(load(target)["value"])

    monkeypatch.setattr(export_module.os, "replace", watched)
    export(target, 0.9)
    monkeypatch.undo()
    assert seen[0] == 0.5 and seen[-1] == 0.9 and set(seen) == {0.5, 0.9}, seen


def test_a_model_rolled_back_to_its_oldest_version_survives_the_pruning_of_later_exports(tmp_path):
    """After `autotune rollback --to` the oldest kept version, the canonical model is older than every other: the
    next export that is not promoted prunes the versions, never the one served, and records its try in the served
    model's card (a retrain skips the data it tried)."""
    from autotune.engine.export import roll_back

    target = tmp_path / "m"
    versions = [Path(export(target, value)["version_dir"]).name for value in (0.5, 0.6, 0.7, 0.8, 0.9)]
    kept = sorted(p.name for p in versions_dir(target).iterdir())
    roll_back(target, kept[0])
    tried = export(target, 0.95, "never")
    assert not tried["promoted"] and load(target)["value"] == 0.6 and target.resolve().name == kept[0] == versions[1]
    last = load(target)["history"][-1]
    assert (last["version"], last["promoted"]) == (Path(tried["version_dir"]).name, False)


def test_the_card_says_how_many_configurations_the_model_was_chosen_among():
    """The card's search gave `trials`, the trials asked for: a search a time budget ended after 2 of 100 read as
    the best of 100 (the multiple-comparisons question: the best of more validation scores is more optimistic).
    `trials_run` counts the trials that ran."""
    from types import SimpleNamespace

    import autotune
    from autotune.api import _search_card

    space = autotune.load_space(
        f"name: m\nrecipe: {Path(__file__).with_name('toy_recipe.py')}\nmodel: {{x: {{uniform: [0, 1]}}}}\n"
        "search: {metric: val_accuracy, mode: max, trials: 100, time_budget: 60}\n")
    ran = SimpleNamespace(trials=pd.DataFrame({"trial_id": ["a", "b"], "status": ["TERMINATED", "ERROR"]}),
                          warm_start=None)
    card = _search_card(space, ran)
    assert (card["trials"], card["trials_run"]) == (100, 2)


@pytest.mark.parametrize("search, sampler_args, scheduler_run", [
    ("{sampler: tpe}", {"multivariate": True}, {"name": "hyperband", "args": {
        "max_t": 4, "grace_period": 1, "reduction_factor": 3, "adaptive": True}}),
    ("{sampler: {tpe: {n_startup_trials: 5}}, scheduler: {asha: {grace_period: 2}}}",
     {"n_startup_trials": 5, "multivariate": True}, None),
    ("{sampler: random, scheduler: auto}", {}, {"name": "hyperband", "args": {
        "max_t": 4, "grace_period": 1, "reduction_factor": 3, "adaptive": True}}),
])
def test_the_card_records_the_sampler_and_scheduler_as_they_ran(search, sampler_args, scheduler_run):
    """A TPE searched with autotune's `multivariate: true` was recorded as `sampler_args: {}`, and `scheduler: auto`
    with no word of the Hyperband it ran: a reader who ran the search again from the card with Optuna's own
    defaults ran another search."""
    from types import SimpleNamespace

    import autotune
    from autotune.api import _search_card

    space = autotune.load_space(
        f"name: m\nrecipe: {Path(__file__).with_name('toy_recipe.py')}\nmodel: {{x: {{uniform: [0, 1]}}}}\n"
        f"train: {{epochs: 4}}\nsearch: {search}\n")
    card = _search_card(space, SimpleNamespace(trials=pd.DataFrame({"trial_id": ["a"]}), warm_start=None))
    assert card["sampler_args"] == sampler_args
    assert card.get("scheduler_run") == scheduler_run
    json.dumps(card)  # the card is JSON
