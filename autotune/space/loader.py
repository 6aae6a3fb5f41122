"""`load_space`: a YAML search space (file, text or dict) + `--set` overrides -> a validated Space.

Every problem in the file is collected, then one SpaceError names them all (file:line: key.path: ...).
"""
from __future__ import annotations

import copy
import hashlib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path as FilePath
from types import ModuleType
from typing import Any

from autotune import registry
from autotune.errors import AutotuneError, Problem, SpaceError, UserError
from autotune.paths import expanded
from autotune.space._parse import DEFAULT, Builder, check_value, dist_kind
from autotune.space._rules import Configs, folder_name, scenario_configs, space_problems, space_warnings
from autotune.space._settings import check_sampler, parse_export, parse_search, parse_tracking
from autotune.space._tree import Interp, InterpError, materialize, resolve, wrap_interpolations
from autotune.space._yaml import MAX_DEPTH, Locations, Path, load_yaml, show_path
from autotune.space.schema import Check, Field, Schema
from autotune.space.types import Space, scenarios
from autotune.user_code import UserCodeFailed, exec_file

__all__ = ["load_space", "import_custom", "OverridesNamed", "TOP_KEYS"]

TOP_KEYS = ("name", "recipe", "custom", "search", "export", "tracking")
EXTENSION = "x-"  # a top-level key that starts so is ignored: a place for YAML anchors (`x-base: &base {...}`)
# a W&B sweep's top-level keys and Hydra's -> where they go here
_THEIR_TOP_KEYS = {
    **{key: f"W&B's {key} goes under search here: search.{ours}{note}" for key, ours, note in (
        ("method", "sampler", " (bayes is tpe, random random, grid grid)"),
        ("metric", "metric", " (its goal: search.mode, max or min)"), ("run_cap", "trials", ""),
        ("early_terminate", "scheduler", " ({type: hyperband, min_iter: 1, eta: 3} is {asha: {grace_period: 1, "
                                         "reduction_factor: 3}})"))},
    "parameters": "the distributions are written in the ingredient sections here (model: {width: {choice: [32, "
                  "64]}}), not in a parameters section; a W&B parameter {values: [...]} is {choice: [...]}",
    "program": "the recipe trains here (recipe: NAME, or a .py path); remove program",
    "command": "the recipe trains here (recipe: NAME, or a .py path); remove command",
    "defaults": "no config groups here: the file holds the whole space (a choice of mappings searches between "
                "configurations: model: {choice: [{arch: mlp}, {arch: simple_cnn}]}); remove defaults",
    "hydra": "Hydra's sweeper settings go under search here (n_trials is search.trials, direction search.mode) and "
             "its params in the ingredient sections (model.dropout: interval(0.1, 0.5) is model: {dropout: {uniform: "
             "[0.1, 0.5]}}); docs/coming-from.md",
}
DEFAULT_RECIPE = "image_classification"


@dataclass(frozen=True)
class OverridesNamed:
    """How a problem names the overrides: their file (`<--set>:N`, N the override's position) and one override, as
    the caller writes it: `--set KEY=VALUE` on the command line, `overrides=['KEY=VALUE']` from Python (`python`)."""

    python: bool = False

    @property
    def file(self) -> str:
        return "<overrides>" if self.python else "<--set>"

    def one(self, text: str, *, quoted: bool = False) -> str:
        """The override `text`; `quoted`: in quotes on the command line, for the shell."""
        if self.python:
            return f"overrides=[{text!r}]"
        return f"--set '{text}'" if quoted else f"--set {text}"


SchemaFor = Callable[[str, "str | None"], Schema]


def _expand(path: str | FilePath) -> FilePath:
    """`path` with `~` expanded (a `~user` that does not exist is kept as written: it then does not exist)."""
    try:
        return expanded(path)
    except RuntimeError:
        return FilePath(path)


def _custom_file(name: str | FilePath, base: str | None = None) -> FilePath:
    """The absolute path of the custom file `name` (relative to `base`); UserError when it is not a .py file that
    exists (also for names the OS refuses: too long, a NUL byte)."""
    file = _expand(name)
    try:
        file = (FilePath(base) / file if base and not file.is_absolute() else file).resolve()
        kind = "file" if file.is_file() else "directory" if file.is_dir() else None
    except (OSError, ValueError):
        kind = None
    if kind is None:
        raise UserError(f"custom file {str(file)!r} does not exist")
    if kind == "directory":
        raise UserError(f"custom file {str(file)!r} is a directory")
    if file.suffix != ".py":
        raise UserError(f"custom file {str(file)!r} is not a .py file")
    return file


def import_custom(path: str | FilePath) -> ModuleType:
    """Import a user's custom .py file once (idempotent, under a name derived from its path)."""
    file = _custom_file(path)
    module_name = f"autotune_custom_{file.stem}_{hashlib.sha1(str(file).encode()).hexdigest()[:10]}"
    try:
        return exec_file(file, module_name)
    except UserCodeFailed as err:  # the user's code: its own error, without our traceback
        where = f" (line {err.line})" if err.line else ""
        raise UserError(f"custom file {file.name} failed to import: {err.text}{where}") from None


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
        return copy.deepcopy(dict(source)), Locations("<dict>", lines=False), None
    if isinstance(source, str) and ("\n" in source or source.lstrip().startswith("{")):  # YAML, not a path
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


def _apply_overrides(doc: dict, overrides: Iterable[str], locs: Locations, problems: list[Problem],
                     named: OverridesNamed) -> list[Path]:
    """Set each `key.path=VALUE` in `doc`; returns the paths of keys that did not exist before. Problems name the
    overrides as `named` says."""
    created: list[Path] = []
    for number, text in enumerate(overrides, start=1):
        key, sep, raw = text.partition("=")
        path: Path = tuple(int(k) if k.isascii() and k.isdigit() else k for k in key.strip().split("."))
        wrong = _override_form(key.strip(), sep, raw, named) or _anchor_override(doc, path, raw, named)
        if wrong:
            problems.append(Problem(key.strip(), *wrong, named.file, number, text, True))
            continue
        found: list[Problem] = []
        sub = Locations(named.file)
        value = load_yaml(raw, named.file, sub, found)
        if found:  # the value is not YAML: one problem, at this override (not at a line inside its value)
            fix = (f"write VALUE as YAML{'' if named.python else ', quoted for the shell'}: "
                   f"{named.one(key.strip() + '=...', quoted=True)}")
            problems += [replace(p, path=_joined(path, p.path), line=number,
                                 fix=fix if p.message.startswith("YAML syntax error") else p.fix) for p in found]
            continue
        _Override(number, key.strip(), _as_written(raw, value), sub, locs, problems, created, named).put(doc, (),
                                                                                                        path)
    return created


def _as_written(raw: str, value: Any) -> Any:
    """A --set value read as plain text where YAML took part of it for a comment: ` #` inside a value is text (a
    folder named `models #2`, a path the shell expanded), since no one writes a comment in a --set."""
    text = raw.strip()
    if isinstance(value, str) and re.search(r"\s#", text) and text[:1] not in "'\"":
        return text
    return value


def _override_form(key: str, sep: str, raw: str, named: OverridesNamed) -> tuple[str, str] | None:
    """(what is wrong, fix) with the form of `--set KEY=VALUE` split at its `=`, or None when it is right."""
    if not sep:
        return "an override is KEY=VALUE", f"e.g. {named.one('train.epochs=3')}"
    if not key:
        return "an override is KEY=VALUE, but KEY is empty", f"e.g. {named.one('train.epochs=3')}"
    parts = key.split(".")
    if "" in parts:
        kept = ".".join(part for part in parts if part) or "train.epochs"
        return "the key has an empty key segment (two dots in a row, or a dot at an end)", \
            f"e.g. {named.one(f'{kept}={raw}')}"
    option = re.fullmatch(r"([^\[\]]+)\[([^\[\]]+)\]\.(.+)", key)
    if option:  # a parameter's name as `check` prints it, optimizer[sgd].lr
        base, label, rest = option.groups()
        return ("a parameter's name (as `autotune check` prints it), not a key path",
                f"keep the option with {named.one(f'{base}.name={label}')} and set "
                f"{named.one(f'{base}.{rest}={raw}')} (a key under {base} reaches every option that has it)")
    return None


def _anchor_override(doc: dict, path: Path, raw: str, named: OverridesNamed) -> tuple[str, str] | None:
    """(what is wrong, fix) with a `--set` of an `x-` key, which would change nothing: its anchor was expanded into
    the keys that use it when the file was read. The fix names those (the mappings that hold all its keys)."""
    if not str(path[0]).startswith(EXTENSION):
        return None
    anchored = doc.get(path[0])
    found = _holding(doc, anchored) if isinstance(anchored, dict) and anchored else ()
    # a --set under a choice reaches every option that has the key: its `choice` and index are left out
    users = dict.fromkeys(".".join(str(part) for part in (*found_path, *path[1:]) if not isinstance(part, int)
                                   and part != "choice") for found_path in found)
    fix = "set the keys that use it instead" + (f": {' '.join(named.one(f'{user}={raw}') for user in users)}"
                                                 if users else "")
    return (f"{path[0]} holds YAML anchors, which are expanded into the keys that use them when the file is read, "
            "so setting it would change nothing", fix)


def _holding(node: Any, anchored: dict, at: Path = ()) -> Iterable[Path]:
    """The paths of the mappings under `node` (the `x-` keys aside) that hold every item of `anchored`."""
    if isinstance(node, dict):
        if at and all(key in node and node[key] == value for key, value in anchored.items()):
            yield at
        for key, value in node.items():
            if at or not str(key).startswith(EXTENSION):
                yield from _holding(value, anchored, (*at, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _holding(value, anchored, (*at, index))


def _one_option_fix(options: list, here: Path, rest: Path, named: OverridesNamed) -> str:
    """How to set a key of one option of a choice, from `rest` (`choice`, a position, the key in the option): keep
    that option by the key that tells the options apart, then set the key (alone, it sets every option)."""
    at = rest[1] if len(rest) > 1 and isinstance(rest[1], int) and rest[1] < len(options) else None
    inner = [part for part in rest[1 + (at is not None):] if part != "choice" and not isinstance(part, int)]
    setting = named.one(f"{show_path(here)}.{'.'.join(map(str, inner)) or 'KEY'}=...")
    option = options[at] if at is not None and isinstance(options[at], dict) else {}
    telling = next((key for key in option if _telling_apart(options, (key,)) is not None), None)
    if telling is None:
        return f"set it in every option: {setting}"
    return (f"keep that option with {named.one(f'{show_path(here)}.{telling}={option[telling]}')}, then {setting} "
            "(alone, it sets every option)")


def _reached(mappings: list[tuple[int, dict]], rest: Path) -> list[tuple[int, dict]]:
    """The options of a choice that a --set of the key path `rest` under it reaches: every one for a key of the
    option itself (`optimizer.lr=0.05`, whichever is chosen), only those that hold the first key of a longer path
    (`model.head.name=mlp` goes into the models that have a `head`, and makes none for the others), or every one
    where none does."""
    holding = [(index, option) for index, option in mappings if rest[0] in option]
    return holding if len(rest) > 1 and holding else mappings


def _telling_apart(options: list, rest: Path) -> list | None:
    """The values of the key `rest` (one key) in the options of a choice, where each option is a mapping holding it
    as a plain value and no two share one (`name`, the model's `arch`): a --set of it keeps one option. Else None."""
    if len(rest) != 1:
        return None
    values = [o.get(rest[0]) if isinstance(o, dict) and not dist_kind(o) else None for o in options]
    plain = all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in values)
    return values if plain and len(set(values)) == len(values) else None


def _joined(path: Path, inner: str) -> str:
    """The key path `path` followed by the shown path `inner` of a key inside its value."""
    return show_path(path) + (f".{inner}" if inner and not inner.startswith("[") else inner)


class _Override:
    """One `--set KEY=VALUE` put into the document. Through a choice of mappings it reaches every option (so that
    `optimizer.lr=0.05` sets lr whichever optimizer is chosen); `...name=NAME` on a choice of named mappings keeps
    the option of that name (`optimizer.name=adamw`)."""

    def __init__(self, number: int, key: str, value: Any, sub: Locations, locs: Locations, problems: list[Problem],
                 created: list[Path], named: OverridesNamed) -> None:
        self.number, self.key, self.value, self.sub = number, key, value, sub
        self.locs, self.problems, self.created, self.named = locs, problems, created, named

    def put(self, node: dict, done: Path, rest: Path) -> None:
        """Set the key path `rest` under the mapping `node`, which is at `done` in the document."""
        part, here = rest[0], (*done, rest[0])
        if len(rest) == 1:
            self.place(node, here)
            return
        if part not in node:
            node[part] = {}
            self.created.append(here)
            self.locs.add(here, self.number, self.named.file)
        child = node[part]
        if rest[1:] == (DEFAULT,) and dist_kind(child):  # `model.depth.default=3`: the default beside a distribution
            self.place(child, (*here, DEFAULT))
        elif dist_kind(child) == "choice" and isinstance(child["choice"], list):
            self.into_choice(node, here, rest[1:])
        elif isinstance(child, dict) and not dist_kind(child):
            self.put(child, here, rest[1:])
        else:
            what = "a distribution" if dist_kind(child) else "not a mapping"
            default = f", or its default: {self.named.one(f'{show_path(here)}.default=...')}" \
                if dist_kind(child) else ""
            self.problem(here, f"cannot set {self.key}: this key is {what}",
                         f"override the whole key: {self.named.one(f'{show_path(here)}=...', quoted=True)}{default}")

    def into_choice(self, parent: dict, here: Path, rest: Path) -> None:
        options = parent[here[-1]]["choice"]
        if rest == ("choice",):  # `model.choice=[...]`: other options
            self.place(parent[here[-1]], (*here, "choice"))
            return
        if rest[0] == "choice":  # `model.choice.0.width=...`: the file's own path to an option
            self.problem(here, f"cannot set {self.key}: a --set reaches into the options of a choice by their own "
                         "keys, not by `choice` and a position", _one_option_fix(options, here, rest, self.named))
            return
        telling = _telling_apart(options, rest)
        if telling is not None:  # `optimizer.name=adamw`, `model.arch=mlp`: keep the option it names
            key = rest[0]
            if self.value not in telling:
                hint = registry.close_matches(str(self.value), [str(value) for value in telling])
                fix = f"did you mean {hint[0]!r}?" if hint else \
                    f"to use another, override the whole key: " \
                    f"{self.named.one(f'{show_path(here)}={{{key}: ..., ...}}', quoted=True)}"
                self.problem(here, f"{self.key}={key.upper()} keeps the option of that {key}, but {show_path(here)} "
                             f"has no option {self.value!r}; its options: {', '.join(map(str, telling))}", fix)
                return
            index = telling.index(self.value)
            prefix = (*here, "choice", index)
            parent[here[-1]] = options[index]
            for where, at in list(self.locs.table.items()):
                if where[: len(here)] == here:
                    del self.locs.table[where]
                    if where[: len(prefix)] == prefix:
                        self.locs.table[(*here, *where[len(prefix):])] = at
            self.locs.add(here, self.number, self.named.file)
            self.locs.add((*here, key), self.number, self.named.file)
            return
        mappings = [(i, o) for i, o in enumerate(options) if isinstance(o, dict) and not dist_kind(o)]
        if not mappings:
            self.problem(here, f"cannot set {self.key}: {show_path(here)} is a choice of values, not of mappings",
                         f"override the whole key: {self.named.one(f'{show_path(here)}=...', quoted=True)}")
        for index, option in _reached(mappings, rest):
            self.put(option, (*here, "choice", index), rest)

    def place(self, node: dict, here: Path) -> None:
        if here[-1] not in node:
            self.created.append(here)
        node[here[-1]] = copy.deepcopy(self.value)
        for where in [p for p in self.locs.table if p[: len(here)] == here]:
            del self.locs.table[where]
        for where in self.sub.table:
            self.locs.add((*here, *where), self.number, self.named.file)
        self.locs.add(here, self.number, self.named.file)

    def problem(self, path: Path, message: str, fix: str) -> None:
        self.problems.append(Problem(show_path(path), message, fix, self.named.file, self.number))


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
        try:
            file = _custom_file(name, base)
        except UserError as err:
            self.problem(("custom",), str(err), "give a .py path relative to the space file", name)
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
        """The ingredient sections: the schema's (or, without one, every other top-level key but the `x-` ones)."""
        found = []
        for key in self.doc:
            if key in TOP_KEYS or str(key).startswith(EXTENSION):
                continue
            if schema is None or key in schema.sections:
                found.append(key)
            else:
                hint = registry.close_matches(str(key), [*TOP_KEYS, *schema.sections])
                known = ", ".join([*TOP_KEYS, *schema.sections])
                self.problem((key,), "unknown top-level key", _THEIR_TOP_KEYS.get(str(key)) or _nested(key, schema)
                             or (f"did you mean {hint[0]!r}?" if hint else f"top-level keys: {known}"))
        extra = [s for s in schema.sections if s not in found] if schema is not None else []
        return found + extra

    def unknown_overrides(self, created: list[Path], sections: list[str]) -> None:
        """Without a schema an override must name a key that exists (with one, validation covers it)."""
        for path in created:
            if path[0] in sections and len(path) > 1:
                self.problem(path, "the override names a key that is not in the space",
                             "check the spelling; without a recipe schema only existing keys can be set")

    def interpolate(self, template: dict, top: dict, params: tuple, fields: Mapping[str, Field | None]) -> dict:
        """The settings (name, recipe, search, export, tracking) resolved: they are one for the whole search, so they
        must not refer to sampled values. Every `${...}` of the ingredients is resolved too, under every option of
        every choice, to report the ones that fail and the values that do not fit their key (`fields`: the key path
        of each, and the schema field there)."""
        errors: list[InterpError] = []
        settings = resolve(top, {**top, **template}, errors, fixed=True)
        for _, values in scenarios(params) if fields else ():
            tree = materialize(template, values)
            resolved = resolve(tree, {**top, **tree}, errors)
            errors += [err for marker, value in _interpolated(tree, resolved)
                       if (err := _misfit(marker, value, fields.get(marker.where))) is not None]
        seen: set[tuple[str, str]] = set()
        for err in errors:
            if (err.marker.where, err.message) not in seen:
                seen.add((err.marker.where, err.message))
                file, line = err.marker.at
                self.problems.append(Problem(err.marker.where, err.message, err.fix, file, line,
                                             err.marker.text, True))
        return settings

    def name(self, value: Any) -> str | None:
        """The space's name as `${...}` resolved it, if it can name the run's folder (else the problem)."""
        if not isinstance(value, str) or not value.strip():
            self.problem(("name",), "must be a non-empty string", "e.g. name: my_search", value)
            return None
        wrong = folder_name(value)
        if wrong:
            self.problem(("name",), *wrong, value)
            return None
        return value

    def rules(self, space: Space, checks: tuple[Check, ...], configs: Configs) -> None:
        """The problems that no single key shows (autotune.space._rules) over the scenarios' `configs`, each at its
        key's line."""
        self.problems += [self.located(problem, where) for problem, where in space_problems(space, checks, configs)]

    def warnings(self, space: Space, warnings: tuple[Check, ...], configs: Configs) -> tuple[Problem, ...]:
        """What the recipe's `Schema.warnings` find over the scenarios' `configs`, and the space's own warnings
        (autotune.space._rules), each at its key's line."""
        return tuple(self.located(problem, where) for problem, where in space_warnings(space, warnings, configs))

    def located(self, problem: Problem, where: tuple[Any, ...]) -> Problem:
        """`problem` at the line of `where`, its key path as the file writes it (inside a choice's option)."""
        file, line = self.locs.of(where)
        return replace(problem, file=file, line=line)


def _interpolated(tree: Any, resolved: Any) -> Iterable[tuple[Interp, Any]]:
    """(marker, its value) for each `${...}` of `tree`, from `resolved` (the same tree with them resolved)."""
    if isinstance(tree, Interp):
        yield tree, resolved
    elif isinstance(tree, dict):
        for key, item in tree.items():
            yield from _interpolated(item, resolved[key])
    elif isinstance(tree, list):
        for item, value in zip(tree, resolved):
            yield from _interpolated(item, value)


def _misfit(marker: Interp, value: Any, field: Field | None) -> InterpError | None:
    """The error of an interpolated `value` that does not fit the `field` of its key (as a literal would not)."""
    if field is None or isinstance(value, str) and "${" in value:  # no field, or left unresolved (reported)
        return None
    _, error, fix = check_value(value, field)
    if error is None:
        return None
    return InterpError(marker, f"{error}, but the interpolation gives {value!r}",
                       fix or f"change what {marker.text} gives, or write the value itself")


def load_space(source: str | FilePath | Mapping[str, Any], overrides: Iterable[str] | str = (), *,
               schema_for: SchemaFor | None = None, named: OverridesNamed = OverridesNamed()) -> Space:
    """Read, override, validate and parse a search space; SpaceError lists every problem found, naming the
    overrides as `named` says (`--set` by default). `overrides`: `key.path=value` strings; one string alone is one
    override, not its characters."""
    overrides = (overrides,) if isinstance(overrides, str) else tuple(overrides)
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
    created = _apply_overrides(doc, overrides, locs, problems, named)
    base = str(FilePath(path).parent) if path else str(FilePath.cwd())  # a dict or text: the working directory's
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
    given = {"name": name, "recipe": recipe, **{key: doc.get(key, {}) for key in ("search", "export", "tracking")}}
    top = {key: wrap_interpolations(value, key, lambda rest, key=key: locs.of((key, *rest)))
           for key, value in given.items()}
    resolved = load.interpolate(template, top, params, builder.interpolated)
    name = load.name(resolved["name"]) or name
    budget, declared, tests = (schema.budget, schema.metrics, schema.tests) if schema else ("train.epochs", {}, {})
    search = parse_search(resolved.get("search"), locs, problems, params, declared=declared, budget=budget,
                          recipe=recipe)
    export = parse_export(resolved.get("export"), name, locs, problems)
    tracking = parse_tracking(resolved.get("tracking"), locs, problems)
    check_sampler(search, params, locs, problems, builder.paths)
    if problems:
        raise SpaceError(problems)
    space = Space(name=name, recipe=recipe, source=path, base_dir=base, custom=custom, params=params,
                  search=search, export=export, document=doc, template=template, namespace=top, tracking=tracking,
                  budget=budget, metrics=declared, tests=tests)
    configs = scenario_configs(space)
    load.rules(space, schema.checks if schema else (), configs)
    if problems:
        raise SpaceError(problems)
    found = load.warnings(space, schema.warnings if schema else (), configs)
    return replace(space, warnings=found) if found else space


def _nested(key: Any, schema: Schema) -> str:
    """The fix of a top-level key that is a dotted key path into a section (`model.width:`, as Hydra's sweeper params
    and --set write it): the nested form; "" for any other key."""
    section, _, rest = str(key).partition(".")
    if not rest or section not in [*TOP_KEYS, *schema.sections]:
        return ""
    return f"a key path is written nested in the file: {section}: {{{rest}: ...}} (a dotted path is --set's form)"
