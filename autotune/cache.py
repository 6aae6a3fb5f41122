"""autotune's cache folder, for what it keeps between runs (timm's model names, the local state of URI runs)."""
from __future__ import annotations

import os
from pathlib import Path

from autotune.errors import NoHome
from autotune.paths import home

__all__ = ["cache_dir", "run_mirror"]


def cache_dir() -> Path:
    """$XDG_CACHE_HOME/autotune, by default ~/.cache/autotune (a relative XDG_CACHE_HOME is ignored, as the XDG
    specification says); NoHome, naming XDG_CACHE_HOME, where neither gives a folder."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    if os.path.isabs(base):
        return Path(base) / "autotune"
    try:
        return home() / ".cache" / "autotune"
    except NoHome as err:
        raise NoHome(f"{err}, nor is XDG_CACHE_HOME set, for autotune's cache folder; set XDG_CACHE_HOME to a folder "
                     "you can write") from None


def run_mirror(uri: str) -> Path:
    """The local folder that mirrors a run (or a storage of runs) kept at a URI: autotune's own state of it, the
    Optuna study, summary.json and trials.csv. s3://bucket/runs/digits?region=x -> CACHE/runs/s3/bucket/runs/digits
    (the query left out)."""
    scheme, rest = uri.partition("?")[0].split("://", 1)
    return cache_dir() / "runs" / scheme / rest.strip("/")
