"""autotune's cache folder, for what it keeps between runs (timm's model names, the local state of URI runs)."""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_dir", "run_mirror"]


def cache_dir() -> Path:
    """$XDG_CACHE_HOME/autotune, by default ~/.cache/autotune (a relative XDG_CACHE_HOME is ignored, as the XDG
    specification says)."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    return (Path(base) if os.path.isabs(base) else Path.home() / ".cache") / "autotune"


def run_mirror(uri: str) -> Path:
    """The local folder that mirrors a run (or a storage of runs) kept at a URI: autotune's own state of it, the
    Optuna study, summary.json and trials.csv. s3://bucket/runs/digits?region=x -> CACHE/runs/s3/bucket/runs/digits
    (the query left out)."""
    scheme, rest = uri.partition("?")[0].split("://", 1)
    return cache_dir() / "runs" / scheme / rest.strip("/")
