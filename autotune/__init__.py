"""autotune: config-first hyperparameter search for PyTorch.

    import autotune
    result = autotune.fit("search_spaces/digits.yaml", overrides=["search.trials=8"])
    model = autotune.load_model(result.model_dir)

Importing autotune is light: the engine (ray, optuna) and torch load only when used.
"""
from __future__ import annotations

import importlib
from typing import Any

from autotune.errors import AutotuneError, SearchFailed, SpaceError, TrialError, UnknownNameError, UserError
from autotune.registry import register

__version__ = "0.2.0.dev0"

__all__ = [
    "AutotuneError", "SearchFailed", "SpaceError", "TrialError", "UnknownNameError", "UserError",
    "register", "load_space", "fit", "export", "load_model", "SearchResult", "__version__",
]

_LAZY = {
    "load_space": "autotune.api",
    "fit": "autotune.api",
    "export": "autotune.api",
    "SearchResult": "autotune.engine.result",
    "load_model": "autotune.model_dir",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'autotune' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The lazy names too, for tab completion."""
    return sorted({*globals(), *__all__})
