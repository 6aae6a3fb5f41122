"""autotune's recipes: one readable file each, that trains one configuration and reports each epoch.

A recipe is a module with two things required:

- `SCHEMA`: an `autotune.space.Schema` of the ingredients it reads, and what the engine needs of its trials:
  `budget`, the dotted key of the number of reports a trial makes (`train.epochs`: early stopping counts in it;
  none: the trials are searched with FIFO, and asking for early stopping is a `check` error), `metrics`, what each
  report holds and which way is better (the first is the default `search.metric`; `check` refuses others), and
  `tests`, the held-out twin `evaluate` gives of a validation metric (it decides `export.promote: if_better`);
- `train(config, report, *, data=None, checkpoint=None)`: trains one configuration, calling
  `report(metrics, checkpoint)` once per epoch; resumes from the `checkpoint` directory when given. The
  `checkpoint` reported is one of (the `Checkpoint` type below):
  - a function `save(directory)` that writes this epoch's checkpoint into the (empty) folder it is given. It is
    called at most once, before `report` returns, and only when the engine keeps this epoch's checkpoint (see
    `search.checkpoint_every` in docs/search-space.md), so a recipe pays for no checkpoint nobody keeps;
  - a folder the recipe has already written: the engine copies it when it keeps it; the recipe may delete it once
    `report` returns;
  - None: no checkpoint this epoch.

and, each optional (without it, what needs it says so in one line, or does without):

- `load_data(data: dict) -> Data`: loads the data once (per node), separate from training, and hands it to every
  trial as `data=`; its `fingerprint` (a str attribute) lets `--if-data-changed` tell new data. Without it, `data`
  is None and each trial loads what it needs;
- `evaluate(path, data) -> dict`: metrics on the held-out test split, of a checkpoint or of an exported model
  directory (the engine measures the export it ships, and compares it with the current canonical model). Without
  it, an export has no test metrics and `promote: if_better` promotes;
- `export(checkpoint, data, out_dir) -> dict`: writes a self-contained, loadable model into `out_dir`
  and returns what the model card records about it. Without it, a search exports nothing (its best checkpoint
  stays in the run) and `autotune train --out` is refused;
- `dry_run(config, data)`: builds the model and runs one forward pass, so that a model that does not fit the data
  is reported before the search starts (`autotune.preflight`);
- `lr_find(config, data, *, start, end, steps) -> autotune.vision.lr_find.Sweep`: the learning-rate range test of
  `autotune lr-find`;
- `TRAINING_ONLY_DATA_KEYS`: data keys that `load_data` ignores, so searching them still shares one load of the
  data. Searching any other `data.` key makes each trial load its own data;
- `data_for(config) -> dict`: the data section a configuration loads, where it depends on more than
  `config["data"]` (the image recipe fills an image folder's size and resizing from a pretrained model's data
  config); `train` and `evaluate` load their own data when the `data` they are given was loaded with other
  settings.

Recipes never import ray. A `recipe:` in a space is a name of a module here, or a path to a `.py` file.
"""
from __future__ import annotations

import ast
import hashlib
import importlib
import importlib.util
import os
import pkgutil
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any, TypeAlias

from autotune.errors import UnknownNameError, UserError
from autotune.registry import close_matches

__all__ = ["Checkpoint", "Report", "available", "data_section", "load", "load_data", "load_schema", "written"]

Checkpoint: TypeAlias = "Callable[[str], None] | str | os.PathLike[str] | None"  # save(directory), a folder, or none
Report: TypeAlias = "Callable[[dict[str, float], Checkpoint], None]"  # report(metrics, checkpoint), once per epoch

_REQUIRED = ("SCHEMA", "train")
# modules a recipe's SCHEMA may need that `load_schema` imports itself (the space language, the rule of
# model.pretrained and the standard library: none of them imports torch)
_LIGHT_MODULES = ("autotune.space", "autotune.errors", "autotune.vision.pretrained")


def data_section(recipe: ModuleType, config: dict[str, Any]) -> dict[str, Any]:
    """The data section `recipe.load_data` takes for `config`: its `data_for(config)`, else `config["data"]`."""
    data_for = getattr(recipe, "data_for", None)
    return data_for(config) if data_for is not None else config.get("data", {})


def load_data(recipe: ModuleType, section: dict[str, Any]) -> Any:
    """`recipe.load_data(section)`; None for a recipe without one (each trial loads what it needs itself)."""
    load = getattr(recipe, "load_data", None)
    return load(section) if load is not None else None


@contextmanager
def written(checkpoint: Callable[[str], None] | str | os.PathLike[str]) -> Iterator[str]:
    """The folder that holds a reported checkpoint: the recipe's own folder, or a temporary one that its
    `save(directory)` writes, removed on exit."""
    if not callable(checkpoint):
        yield os.fspath(checkpoint)
        return
    directory = tempfile.mkdtemp(prefix="autotune-checkpoint-")
    try:
        checkpoint(directory)
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def available() -> list[str]:
    """Names of the recipes shipped in this package."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def _locate(name: str, base: str | Path | None) -> tuple[Path, str]:
    """(the recipe's file, its module name) for a shipped recipe name or a `.py` path relative to `base`."""
    if name.endswith(".py"):
        path = Path(name).expanduser()
        if not path.is_absolute() and base is not None:
            path = Path(base) / path
        if not path.is_file():
            raise UserError(f"recipe file {str(path)!r} does not exist")
        digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:10]
        return path, f"autotune_recipe_{path.stem}_{digest}"
    if name not in available():
        hint = close_matches(name, available())
        fix = f"did you mean {hint[0]!r}?" if hint else f"the shipped recipes are {', '.join(available())}"
        raise UnknownNameError(f"unknown recipe {name!r}; {fix}")
    return Path(__file__).with_name(f"{name}.py"), f"{__name__}.{name}"


def _lacks(name: str, defined: Any) -> None:
    missing = [attr for attr in _REQUIRED if attr not in defined]
    if missing:
        raise UserError(f"recipe {name!r} lacks {', '.join(missing)}: a recipe must define {', '.join(_REQUIRED)}")


def load(name: str, base: str | Path | None = None) -> ModuleType:
    """Import the recipe `name` (a shipped recipe, or a `.py` path relative to `base`)."""
    path, module_name = _locate(name, base)
    module = sys.modules.get(module_name)
    if module is None and name.endswith(".py"):
        spec = importlib.util.spec_from_file_location(module_name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    elif module is None:
        module = importlib.import_module(module_name)
    _lacks(name, vars(module))
    return module


def load_schema(name: str, base: str | Path | None = None) -> Any:
    """The `SCHEMA` of recipe `name`, without importing the recipe (and torch) when it can be read alone.

    It can when `SCHEMA = ...` and the top-level statements it needs, transitively, are plain assignments,
    undecorated functions and imports of the standard library or `autotune.space`: those statements alone are run
    (as in the shipped recipe, whose SCHEMA uses `Field`, `Schema`, `Section` and `_positive`). Otherwise the
    recipe is imported. A recipe already imported gives its own SCHEMA.
    """
    path, module_name = _locate(name, base)
    module = sys.modules.get(module_name)
    if module is None:
        schema = _read_schema(name, path, module_name)
        if schema is not None:
            return schema
    return load(name, base).SCHEMA


def _read_schema(name: str, path: Path, module_name: str) -> Any:
    """SCHEMA from the statements of `path` it needs, or None when that is not possible (import the recipe)."""
    from autotune.space.schema import Schema

    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    except (OSError, UnicodeDecodeError, SyntaxError, ValueError):
        return None  # importing the recipe reports it
    defined: dict[str, ast.stmt] = {}
    for stmt in tree.body:
        for target in _defines(stmt):
            defined[target] = stmt
    if any(attr not in defined for attr in _REQUIRED):
        return None  # defined in a way this reading does not see, or missing: importing the recipe tells
    needed: list[ast.stmt] = [s for s in tree.body if isinstance(s, ast.ImportFrom) and s.module == "__future__"]
    todo, seen = ["SCHEMA"], {id(s) for s in needed}
    while todo:
        stmt = defined.get(todo.pop())
        if stmt is None or id(stmt) in seen:
            continue  # a builtin, or a name the statements define themselves
        if not _runnable(stmt):
            return None
        seen.add(id(stmt))
        needed.append(stmt)
        todo += [n.id for n in ast.walk(stmt) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)]
    needed.sort(key=lambda s: s.lineno)
    namespace: dict[str, Any] = {"__name__": module_name, "__file__": str(path)}
    try:
        exec(compile(ast.Module(body=needed, type_ignores=[]), str(path), "exec"), namespace)
    except Exception:  # importing the recipe reports the error as a recipe error
        return None
    schema = namespace.get("SCHEMA")
    return schema if isinstance(schema, Schema) else None


def _defines(stmt: ast.stmt) -> list[str]:
    """The top-level names `stmt` binds."""
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [stmt.name]
    if isinstance(stmt, (ast.Import, ast.ImportFrom)):
        return [(a.asname or a.name).split(".")[0] for a in stmt.names]
    targets = stmt.targets if isinstance(stmt, ast.Assign) else [getattr(stmt, "target", None)]
    return [n.id for t in targets if t is not None for n in ast.walk(t) if isinstance(n, ast.Name)]


def _runnable(stmt: ast.stmt) -> bool:
    """Whether running `stmt` alone is cheap and free of side effects: an assignment, an undecorated function, or
    an import of the standard library or autotune's space language."""
    if isinstance(stmt, (ast.Assign, ast.AnnAssign)):
        return True
    if isinstance(stmt, ast.FunctionDef):
        return not stmt.decorator_list
    if isinstance(stmt, ast.Import):
        return all(_light(a.name) for a in stmt.names)
    if isinstance(stmt, ast.ImportFrom):
        return stmt.level == 0 and stmt.module is not None and _light(stmt.module)
    return False


def _light(module: str) -> bool:
    top = module.split(".")[0]
    return top in sys.stdlib_module_names or any(module == m or module.startswith(m + ".") for m in _LIGHT_MODULES)
