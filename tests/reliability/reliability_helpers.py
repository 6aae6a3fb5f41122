"""Helpers of the bad-input tests (a module of its own: every test folder has a `conftest`)."""
from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

__all__ = ["write_idx", "ray_started", "without_ray", "unreadable_file", "saved_reports", "TOY", "STRICT"]


_spec = importlib.util.spec_from_file_location("autotune_tests_recipe_conftest",
                                               Path(__file__).parents[1] / "recipe" / "conftest.py")
_recipe_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_recipe_fixtures)
write_idx = _recipe_fixtures.write_idx  # an IDX file as MNIST ships them

_spec = importlib.util.spec_from_file_location("autotune_tests_engine_helpers",
                                               Path(__file__).parents[1] / "engine" / "engine_helpers.py")
_engine_helpers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_engine_helpers)
TOY = _engine_helpers.TOY  # the engine tests' toy recipe: no torch, a second of work at most
saved_reports = _engine_helpers.saved_reports  # what Ray's saved state knows of each trial
STRICT = str(Path(__file__).with_name("strict_recipe.py"))


def ray_started() -> bool:
    ray = sys.modules.get("ray")
    return ray is not None and ray.is_initialized()


def without_ray() -> None:
    """Shut down a Ray that an earlier test of this process left (tests/use's, for its session): whether a command
    starts one is told only without it."""
    if ray_started():
        sys.modules["ray"].shutdown()


def unreadable_file(path: Path) -> Path:
    """A file this process cannot read: mode 000, or for root (who reads anything) a link to /proc/self/mem,
    whose first page read fails with EIO."""
    if os.geteuid() != 0:
        path.write_text("name: x\n")
        path.chmod(0)
        return path
    if not Path("/proc/self/mem").exists():
        pytest.skip("running as root without /proc: no file is unreadable")
    path.symlink_to("/proc/self/mem")
    return path
