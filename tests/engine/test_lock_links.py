"""A lock file is never written through a link: `ln -s ../victim.txt runs/.NAME.lock`, then `autotune run`, wrote
`{"pid": ..., "host": ...}` over victim.txt. A link (or a folder) where a run's or a model's lock goes is refused in
one line naming it; the file it points to is left as it was."""
from __future__ import annotations

import os

import pytest
from test_export import export

from autotune.engine.locks import LocalRay, hold_run, running
from autotune.engine.storage import RunLocation
from autotune.errors import UserError


def _victim(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    return victim


def test_a_run_lock_that_is_a_link_is_refused_and_its_target_kept(tmp_path):
    victim = _victim(tmp_path)
    runs = tmp_path / "runs"
    runs.mkdir()
    lock = runs / ".toy.lock"
    lock.symlink_to("../victim.txt")
    where = RunLocation(storage=str(runs), name="toy", state=runs / "toy")
    assert running(where) is None
    with pytest.raises(UserError) as caught:
        with hold_run(where):
            pass
    assert str(caught.value) == (f"the lock file {lock} is a symbolic link, not a file autotune wrote: remove it "
                                 "(autotune creates its own lock file there), then run again")
    assert victim.read_text() == "precious\n" and lock.is_symlink()


def test_a_run_lock_that_is_a_folder_is_refused(tmp_path):
    (tmp_path / ".toy.lock").mkdir()
    with pytest.raises(UserError, match=r"\.toy\.lock is a folder, not a file autotune wrote: remove it"):
        with hold_run(RunLocation(storage=str(tmp_path), name="toy", state=tmp_path / "toy")):
            pass


def test_a_local_ray_registration_that_is_a_link_is_left_alone(tmp_path, monkeypatch):
    """The cache's `local-ray/<pid>.json`: the search runs unregistered, the link's target untouched."""
    victim = _victim(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    folder = tmp_path / "cache" / "autotune" / "local-ray"
    folder.mkdir(parents=True)
    (folder / f"{os.getpid()}.json").symlink_to(victim)
    ray = LocalRay("toy", 2, str(tmp_path / f"rt_{os.getpid()}"))
    ray.close()
    assert victim.read_text() == "precious\n"


def test_a_model_lock_that_is_a_link_is_refused_and_its_target_kept(tmp_path):
    victim = _victim(tmp_path)
    lock = tmp_path / ".m.lock"
    lock.symlink_to(victim)
    with pytest.raises(UserError, match=rf"^the lock file {lock} is a symbolic link, not a file autotune wrote"):
        export(tmp_path / "m", 0.5)
    assert victim.read_text() == "precious\n" and not (tmp_path / "m").exists()
