"""autotune's cache folder, for what it keeps between runs (timm's model names, the local state of URI runs)."""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_dir"]


def cache_dir() -> Path:
    """$XDG_CACHE_HOME/autotune, by default ~/.cache/autotune (a relative XDG_CACHE_HOME is ignored, as the XDG
    specification says)."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    return (Path(base) if os.path.isabs(base) else Path.home() / ".cache") / "autotune"
