"""autotune's recipes: one readable file each, that trains one configuration and reports each epoch.

A recipe is a module with:

- `SCHEMA`: an `autotune.space.Schema` of the ingredients it reads;
- `load_data(data: dict) -> Data`: loads the data once (per node), separate from training;
- `train(config, report, *, data=None, checkpoint=None)`: trains one configuration, calling
  `report(metrics, checkpoint_dir)` once per epoch; resumes from the `checkpoint` directory when given;
- `evaluate(path, data) -> dict`: metrics on the held-out test split, of a checkpoint or of an exported model
  directory (the engine measures the export it ships, and compares it with the current canonical model);
- `export(checkpoint, data, out_dir) -> dict`: writes a self-contained, loadable model into `out_dir`
  and returns what the model card records about it.

Optionally `dry_run(config, data)`: builds the model and runs one forward pass, so that a model that does not
fit the data is reported before the search starts (`autotune.preflight`). Optionally `TRAINING_ONLY_DATA_KEYS`: data keys that `load_data` ignores, so searching them still shares one
load of the data. Searching any other `data.` key makes each trial load its own data.

Recipes never import ray. A `recipe:` in a space is a name of a module here, or a path to a `.py` file.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import pkgutil
import sys
from pathlib import Path
from types import ModuleType

from autotune.errors import UnknownNameError, UserError
from autotune.registry import close_matches

__all__ = ["available", "load"]

_REQUIRED = ("SCHEMA", "load_data", "train", "evaluate", "export")


def available() -> list[str]:
    """Names of the recipes shipped in this package."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def load(name: str, base: str | Path | None = None) -> ModuleType:
    """Import the recipe `name` (a shipped recipe, or a `.py` path relative to `base`)."""
    if name.endswith(".py"):
        path = Path(name).expanduser()
        if not path.is_absolute() and base is not None:
            path = Path(base) / path
        if not path.is_file():
            raise UserError(f"recipe file {str(path)!r} does not exist")
        module_name = f"autotune_recipe_{path.stem}_{hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:10]}"
        module = sys.modules.get(module_name)
        if module is None:
            spec = importlib.util.spec_from_file_location(module_name, path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module
            spec.loader.exec_module(module)
    else:
        if name not in available():
            hint = close_matches(name, available())
            fix = f"did you mean {hint[0]!r}?" if hint else f"the shipped recipes are {', '.join(available())}"
            raise UnknownNameError(f"unknown recipe {name!r}; {fix}")
        module = importlib.import_module(f"{__name__}.{name}")
    missing = [attr for attr in _REQUIRED if not hasattr(module, attr)]
    if missing:
        raise UserError(f"recipe {name!r} lacks {', '.join(missing)}: a recipe must define {', '.join(_REQUIRED)}")
    return module
