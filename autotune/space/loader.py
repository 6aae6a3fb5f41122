"""`load_space`: a YAML search space (file, text or dict) + `--set` overrides -> a validated Space.

Every problem in the file is collected, then one SpaceError names them all (file:line: key.path: ...).
"""
from __future__ import annotations

import copy
import hashlib
import importlib.util
import sys
import traceback
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path as FilePath
from types import ModuleType
from typing import Any

from autotune import registry
from autotune.errors import AutotuneError, Problem, SpaceError, UserError
from autotune.space._parse import Builder, dist_kind
from autotune.space._settings import check_sampler, parse_export, parse_search
from autotune.space._tree import InterpError, materialize, resolve, wrap_interpolations
from autotune.space._yaml import MAX_DEPTH, Locations, Path, load_yaml, show_path
from autotune.space.schema import Schema
from autotune.space.types import Choice, Space, default_values

__all__ = ["load_space", "import_custom", "TOP_KEYS"]

TOP_KEYS = ("name", "recipe", "custom", "search", "export")
DEFAULT_RECIPE = "image_classification"
OVERRIDE_FILE = "<--set>"

SchemaFor = Callable[[str, "str | None"], Schema]


def _expand(path: str | FilePath) -> FilePath:
    """`path` with `~` expanded (a `~user` that does not exist is kept as written: it then does not exist)."""
    try:
        return FilePath(path).expanduser()
    except RuntimeError:
        return FilePath(path)


def _user_file(name: str | FilePath, base: str | None = None) -> FilePath | None:
    """The absolute path of the file `name` (relative to `base`), or None when there is no such file (also for
    names the OS refuses: too long, a NUL byte)."""
    file = _expand(name)
    try:
        file = (FilePath(base) / file if base and not file.is_absolute() else file).resolve()
        return file if file.is_file() else None
    except (OSError, ValueError):
        return None


def import_custom(path: str | FilePath) -> ModuleType:
    """Import a user's custom .py file once (idempotent, under a name derived from its path)."""
    file = _user_file(path)
    if file is None:
        raise UserError(f"custom file {str(path)!r} does not exist")
    module_name = f"autotune_custom_{file.stem}_{hashlib.sha1(str(file).encode()).hexdigest()[:10]}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as err:  # the user's code: report its own error, without our traceback
        del sys.modules[module_name]
        if isinstance(err, SyntaxError):
            where = f" (line {err.lineno})" if err.lineno else ""
            text = f"SyntaxError: {err.msg}"
        else:
            lines = [f.lineno for f in traceback.extract_tb(err.__traceback__) if f.filename == str(file)]
            where = f" (line {lines[-1]})" if lines else ""
            text = str(err) if isinstance(err, AutotuneError) else f"{type(err).__name__}: {err}"
        raise UserError(f"custom file {file.name} failed to import: {text}{where}") from None
    return module


def _nesting(value: Any) -> str | None:
    """Why a dict given to load_space cannot be a document (it contains itself, or nests too deep), else None."""
    stack: list[tuple[Any, tuple[int, ...]]] = [(value, ())]
    while stack:
        node, ancestors = stack.pop()
        if isinstance(node, (Mapping, list, tuple)):
            if id(node) in ancestors:
                return "it contains itself"
            if len(ancestors) > MAX_DEPTH:
                return f"it nests deeper than {MAX_DEPTH} levels"
            children = node.values() if isinstance(node, Mapping) else node
            stack.extend((child, (*ancestors, id(node))) for child in children)
    return None


def _read(source: str | FilePath | Mapping[str, Any], problems: list[Problem]
          ) -> tuple[Any, Locations, str | None]:
    """(document, locations, absolute path or None)."""
    if isinstance(source, Mapping):
        shape = _nesting(source)
        if shape:
            raise UserError(f"the search space dict cannot be read: {shape}")
        return copy.deepcopy(dict(source)), Locations("<dict>"), None
    if isinstance(source, str) and "\n" in source:
        locs = Locations("<string>")
        return load_yaml(source, "<string>", locs, problems), locs, None
    file = _expand(source)
    try:
        if file.is_dir():
            raise UserError(f"search space {str(file)!r} is a directory; give the .yaml file in it")
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise UserError(f"search space file {str(file)!r} is not UTF-8 text (byte {err.start}): "
                        "give the YAML file, saved as UTF-8") from None
    except (FileNotFoundError, NotADirectoryError, ValueError):  # ValueError: a NUL byte in the path
        raise UserError(f"search space file {str(file)!r} does not exist") from None
    except OSError as err:
        raise UserError(f"cannot read the search space file {str(file)!r}: {err.strerror or err}") from None
    locs = Locations(str(source))
    return load_yaml(text, str(source), locs, problems), locs, str(file.resolve())


def _apply_overrides(doc: dict, overrides: Iterable[str], locs: Locations, problems: list[Problem]) -> list[Path]:
    """Set each `key.path=VALUE` in `doc`; returns the paths of keys that did not exist before."""
    created: list[Path] = []
    for number, text in enumerate(overrides, start=1):
        key, sep, raw = text.partition("=")
        path: Path = tuple(int(k) if k.isascii() and k.isdigit() else k for k in key.strip().split("."))
        if not sep or not key.strip() or "" in path:
            problems.append(Problem(key.strip(), "an override is KEY=VALUE", "e.g. --set train.epochs=3",
                                    OVERRIDE_FILE, number, text, True))
            continue
        node: Any = doc
        for depth, part in enumerate(path[:-1]):
            if isinstance(node, dict) and part not in node:
                node[part] = {}
                created.append(path[: depth + 1])
            node = node[part] if isinstance(node, dict) else None
            if not isinstance(node, dict) or dist_kind(node):
                what = "a distribution" if dist_kind(node) else "not a mapping"
                problems.append(Problem(show_path(path[: depth + 1]), f"cannot set {key.strip()}: this key is {what}",
                                        f"override the whole key: --set '{show_path(path[: depth + 1])}=...'",
                                        OVERRIDE_FILE, number))
                break
        else:
            sub = Locations(OVERRIDE_FILE)
            value = load_yaml(raw, OVERRIDE_FILE, sub, problems, path)
            if path[-1] not in node:
                created.append(path)
            node[path[-1]] = value
            for where in [p for p in locs.table if p[: len(path)] == path]:
                del locs.table[where]
            for where in sub.table:
                locs.add(where, number, OVERRIDE_FILE)
            locs.add(path, number, OVERRIDE_FILE)
    return created


class _Loading:
    """One load: the document, its locations and the problems found so far."""

    def __init__(self, doc: dict, locs: Locations, problems: list[Problem]) -> None:
        self.doc, self.locs, self.problems = doc, locs, problems

    def problem(self, path: Path, message: str, fix: str = "", *value: Any) -> None:
        self.problems.append(self.locs.problem(path, message, fix, value[0] if value else None, bool(value)))

    def text(self, key: str, default: str | None) -> str | None:
        value = self.doc.get(key, default)
        if value is not None and not (isinstance(value, str) and value.strip()):
            self.problem((key,), "must be a non-empty string", "", value)
            return default
        return value

    def custom(self, base: str | None) -> str | None:
        name = self.text("custom", None)
        if name is None:
            return None
        file = _user_file(name, base)
        if file is None:
            where = FilePath(base) / name if base else FilePath(name)
            self.problem(("custom",), f"custom file {str(where)!r} does not exist",
                         "give a .py path relative to the space file", name)
            return None
        try:
            import_custom(file)
        except AutotuneError as err:
            self.problem(("custom",), str(err), "fix the error in that file")
        return str(file)

    def schema(self, recipe: str, base: str | None, schema_for: SchemaFor | None) -> Schema | None:
        if schema_for is None:
            return None
        try:
            return schema_for(recipe, base)
        except AutotuneError as err:
            self.problem(("recipe",), str(err))
        except Exception as err:  # a recipe file of the user's that fails to import
            self.problem(("recipe",), f"recipe {recipe!r} failed to load: {type(err).__name__}: {err}",
                         "fix the recipe file")
        return None

    def sections(self, schema: Schema | None) -> list[str]:
        """The ingredient sections: the schema's (or, without one, every other top-level key)."""
        found = []
        for key in self.doc:
            if key in TOP_KEYS:
                continue
            if schema is None or key in schema.sections:
                found.append(key)
            else:
                hint = registry.close_matches(str(key), [*TOP_KEYS, *schema.sections])
                known = ", ".join([*TOP_KEYS, *schema.sections])
                self.problem((key,), "unknown top-level key",
                             f"did you mean {hint[0]!r}?" if hint else f"top-level keys: {known}")
        extra = [s for s in schema.sections if s not in found] if schema is not None else []
        return found + extra

    def unknown_overrides(self, created: list[Path], sections: list[str]) -> None:
        """Without a schema an override must name a key that exists (with one, validation covers it)."""
        for path in created:
            if path[0] in sections and len(path) > 1:
                self.problem(path, "the override names a key that is not in the space",
                             "check the spelling; without a recipe schema only existing keys can be set")

    def interpolate(self, template: dict, top: dict, params: tuple) -> dict:
        """Resolve every `${...}` under each option of every conditional choice; the default config's namespace."""
        scenarios = [default_values(params)[0]]
        for param in params:
            if isinstance(param.dist, Choice) and param.dist.conditional:
                scenarios += [default_values(params, {**dict(param.condition), param.name: label})[0]
                              for label in param.dist.labels[1:]]
        seen: set[tuple[str, str]] = set()
        resolved: dict = {}
        for values in scenarios:
            tree = materialize(template, values)
            namespace = {**top, **tree}
            errors: list[InterpError] = []
            result = resolve(namespace, namespace, errors)
            resolved = resolved or result
            for err in errors:
                if (err.marker.where, err.message) not in seen:
                    seen.add((err.marker.where, err.message))
                    file, line = err.marker.at
                    self.problems.append(Problem(err.marker.where, err.message, err.fix, file, line,
                                                 err.marker.text, True))
        return resolved


def load_space(source: str | FilePath | Mapping[str, Any], overrides: Iterable[str] = (), *,
               schema_for: SchemaFor | None = None) -> Space:
    """Read, override, validate and parse a search space; SpaceError lists every problem found."""
    problems: list[Problem] = []
    doc, locs, path = _read(source, problems)
    if doc is None and not problems:
        problems.append(locs.problem((), "the search space is empty",
                                     "write a mapping with recipe:, the ingredient sections and search:"))
    elif doc is not None and not isinstance(doc, dict):
        problems.append(locs.problem((), f"the search space must be a mapping of keys, not a {type(doc).__name__}",
                                     "start with `name: ...` / `recipe: ...` at the top level"))
    if problems and not isinstance(doc, dict):
        raise SpaceError(problems)
    created = _apply_overrides(doc, overrides, locs, problems)
    base = str(FilePath(path).parent) if path else None
    load = _Loading(doc, locs, problems)
    default_name = FilePath(path).stem if path else "space"
    name = load.text("name", default_name) or default_name
    recipe = load.text("recipe", DEFAULT_RECIPE) or DEFAULT_RECIPE
    custom = load.custom(base)
    schema = load.schema(recipe, base, schema_for)
    sections = load.sections(schema)
    if schema is None:
        load.unknown_overrides(created, sections)
    builder = Builder(locs)
    template = {s: builder.section(s, doc.get(s), schema.sections.get(s) if schema else None) for s in sections}
    problems += builder.problems
    params = tuple(builder.params)
    top = {key: wrap_interpolations(doc.get(key, default), key, lambda rest, key=key: locs.of((key, *rest)))
           for key, default in (("name", name), ("recipe", recipe), ("search", {}), ("export", {}))}
    resolved = load.interpolate(template, top, params)
    name = resolved["name"] if isinstance(resolved.get("name"), str) else name
    search = parse_search(resolved.get("search"), locs, problems)
    export = parse_export(resolved.get("export"), name, locs, problems)
    check_sampler(search, params, locs, problems, builder.paths)
    if problems:
        raise SpaceError(problems)
    return Space(name=name, recipe=recipe, source=path, base_dir=base, custom=custom, params=params,
                 search=search, export=export, document=doc, template=template, namespace=top)
