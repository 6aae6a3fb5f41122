"""Ingredient sections -> ordered Params and the config template, validated against the recipe's schema.

Every problem is collected (never raised) so that one run reports all of them.
"""
from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

from autotune import registry
from autotune.errors import Problem
from autotune.space._foreign import foreign_distribution
from autotune.space._tree import Branch, Interp, Sampled, absolute
from autotune.space._yaml import Locations, Path, colon_hint, show_path
from autotune.space.points import fit_value, on_step_grid
from autotune.space.schema import Field, Section
from autotune.space.types import (
    Choice, Distribution, Grid, Int, Label, LogUniform, Param, Pow2, QUniform, Uniform,
)

__all__ = ["DISTRIBUTIONS", "DEFAULT", "Builder", "check_value", "dist_kind", "option_labels", "type_text"]

DISTRIBUTIONS = ("uniform", "loguniform", "int", "quniform", "pow2", "choice", "grid")
DEFAULT = "default"  # the key beside a distribution that names its default value
# Ray Tune's sampling functions that autotune names otherwise, or lacks -> the fix. A one-key mapping of one of these
# names (beside `default:` at most), whatever it holds (`{sample_from: "lambda spec: ..."}`), is refused even under a
# key of any type (a model's **kwargs), where it would otherwise reach the function as a constant: no config's own
# mapping has one key named for a Tune function. Tune's uniform, quniform, loguniform and choice are autotune's own.
_TUNE_DISTRIBUTIONS = {
    "randint": "Tune's randint excludes upper: randint(1, 10) is {int: [1, 9]} here (int includes high)",
    "lograndint": "Tune's lograndint excludes upper: lograndint(1, 64) is {int: [1, 63, 1, true]} here (int "
                  "[low, high, step, log] includes high)",
    "qrandint": "Tune's qrandint(lower, upper, q) is {int: [lower, upper, q]} here",
    "qlograndint": "no log scale with a step here: {int: [low, high, 1, true]}, or a choice of the values",
    "qloguniform": "no log scale with a step here: use loguniform, or a choice of the values",
    "randn": "no normal distribution here: use uniform (or quniform) over a range around the mean",
    "qrandn": "no normal distribution here: use quniform over a range around the mean",
    "grid_search": "Tune's grid_search is {grid: [...]} here, with search.sampler: grid",
    "sample_from": "no functions of other values here: use a choice of mappings (one per case), or ${...} to "
                   "copy another key's value",
}
# Other tools' names whose closest distribution name here would mislead (`logint` is close to `int`, which drops the
# log scale; `int_uniform` to `uniform`, which draws fractions) -> the fix. Only where a misspelt name is found (a
# mapping of one key holding a list or a mapping).
_MISLEADING = {
    **dict.fromkeys(("logint", "log_int", "intlog", "int_log"),
                    "an integer on a log scale is {int: [low, high, 1, true]} here (int [low, high, step, log])"),
    **dict.fromkeys(("int_uniform", "uniform_int", "intuniform"),
                    "a uniform integer is {int: [low, high]} here (uniform draws fractions)"),
}
_NESTED = "W&B's nested parameters are written as the keys themselves here: put the keys under `parameters:` " \
          "directly in the section"
# distribution -> (argument names, how many are required)
_ARGS = {"uniform": (("low", "high"), 2), "loguniform": (("low", "high"), 2),
         "int": (("low", "high", "step", "log"), 2), "quniform": (("low", "high", "step"), 3),
         "pow2": (("low", "high"), 2)}
# distribution -> the required arguments of a valid example, for the fixes
_EXAMPLES = {"uniform": (0.0, 1.0), "loguniform": (1e-4, 0.1), "int": (1, 8), "quniform": (0.0, 1.0, 0.25),
             "pow2": (16, 256)}
_PRIMITIVE = (str, int, float, bool, type(None))
_FRACTIONS = ("uniform", "loguniform", "quniform")  # the distributions that draw floats
_TYPE_TEXT = {int: "an integer", float: "a number", str: "a string", bool: "true or false", dict: "a mapping",
              list: "a list", type(None): "null"}


def dist_kind(value: Any) -> str | None:
    """The distribution a mapping names: one distribution key, maybe beside `default:` (`{uniform: [0, 1]}`,
    `{int: [2, 3], default: 3}` -> "uniform", "int"), else None."""
    if isinstance(value, dict):
        keys = [key for key in value if key != DEFAULT]
        if len(keys) == 1 and keys[0] in DISTRIBUTIONS:
            return str(keys[0])
    return None


def _given_default(value: dict) -> tuple[Any, ...]:
    """The `default:` beside a distribution, as a one-item tuple; () when there is none."""
    return (value[DEFAULT],) if DEFAULT in value else ()


def type_text(types: type | tuple[type, ...]) -> str:
    types = types if isinstance(types, tuple) else (types,)
    return " or ".join(_TYPE_TEXT.get(t, t.__name__) for t in types)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _type_fix(field: Field, value: Any) -> str:
    """The fix of a value of the wrong type: the values a field of `choices` takes; for a file's field given a
    table in memory (a pandas DataFrame, in a dict space), writing it to a file; else ""."""
    if field.choices is not None:
        return f"use one of {', '.join(map(str, field.choices))}"
    if field.path and hasattr(value, "to_parquet"):
        return "a space reads its data from a file: write the table first (frame.to_parquet('train.parquet')) and " \
               "give that file's path"
    return ""


def check_value(value: Any, field: Field) -> tuple[Any, str | None, str]:
    """(value, converted; error text or None; fix) for a constant against a schema field."""
    if value is None:
        if field.nullable or field.default is None:
            return value, None, ""
        return value, f"must not be null: expected {type_text(field.type)}", "give a value or remove the key"
    types = field.type if isinstance(field.type, tuple) else (field.type,)
    if float in types and _is_number(value):
        value = float(value) if int not in types else value
    elif int in types and isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) and bool not in types or not isinstance(value, types):
        return value, f"expected {type_text(types)}", _type_fix(field, value)
    if _is_number(value):
        if not math.isfinite(value):
            return value, "must be a finite number", ""
        if field.low is not None and value < field.low or field.high is not None and value > field.high:
            return value, f"must be {_range(field.low, field.high)}", ""
    if field.choices is not None and value not in field.choices:
        hint = registry.close_matches(str(value), [str(c) for c in field.choices])
        fix = f"did you mean {hint[0]!r}?" if hint else ""
        return value, f"must be one of {', '.join(map(str, field.choices))}", fix
    if field.registry is not None and isinstance(value, str):
        text = registry.check_name(field.registry, value)
        if text is not None:
            message, _, fix = text.partition("; ")
            return value, message, fix
    if field.check is not None:
        text = field.check(value)
        if text:
            return value, text, ""
    if field.path and isinstance(value, str):
        value = absolute(value, os.getcwd())
    return value, None, ""


def _range(low: float | None, high: float | None) -> str:
    """"within [0, 1]", ">= 1" or "<= 10"."""
    if low is not None and high is not None:
        return f"within [{low}, {high}]"
    return f">= {low}" if low is not None else f"<= {high}"


# the type of a keyword argument's default -> the values accepted for it, and how they are named
_KEYWORD_TYPES: dict[type, tuple[tuple[type, ...], str]] = {
    int: ((int,), "a whole number"), float: ((int, float), "a number"), bool: ((bool,), "true or false"),
    str: ((str,), "text"),
}

class Builder:
    """Walks the ingredient sections; collects `params` (define-by-run order) and `problems`."""

    def __init__(self, locs: Locations) -> None:
        self.locs = locs
        self.params: list[Param] = []
        self.paths: dict[str, Path] = {}  # parameter name -> its key path in the document
        # shown key path of each `${...}` value -> the field it must fit (None: the schema has none there)
        self.interpolated: dict[str, Field | None] = {}
        self.problems: list[Problem] = []

    def problem(self, path: Path, message: str, fix: str = "", *value: Any) -> None:
        self.problems.append(self.locs.problem(path, message, fix, value[0] if value else None, bool(value)))

    def add(self, param: Param, path: Path) -> None:
        self.params.append(param)
        self.paths[param.name] = path

    # --- sections and mappings ---------------------------------------------------------------------------
    def section(self, name: str, value: Any, section: Section | None) -> Any:
        """The config template of one ingredient section (a mapping, or a choice of mappings)."""
        path: Path = (name,)
        if value is None:
            value = {}
        if self._foreign_section(value, section, path) or self._stray_keys(value, path):
            return {}
        if dist_kind(value) == "choice":
            return self.choice(value["choice"], (*path, "choice"), name, (),
                               lambda opt, p, n, c: self.section_option(opt, section, p, n, c), _given_default(value))
        if not isinstance(value, dict):
            self.problem(path, "an ingredient section must be a mapping of keys",
                         colon_hint(value) if isinstance(value, str) else "", value)
            return {}
        return self.mapping(value, section, path, name, ())

    def section_option(self, option: Any, section: Section | None, path: Path, pname: str, cond: tuple) -> Any:
        if not isinstance(option, dict) or dist_kind(option):
            self.problem(path, "each option of a section choice must be a mapping of the section's keys", "", option)
            return {}
        return self.mapping(option, section, path, pname, cond)

    def mapping(self, value: dict, section: Section | None, path: Path, pname: str, cond: tuple) -> dict:
        out: dict[Any, Any] = {}
        fields = section.fields if section is not None else {}
        for key, item in value.items():
            field = fields.get(key)
            if section is not None and field is None and not section.open:
                hint = registry.close_matches(str(key), list(fields))
                fix = f"did you mean {hint[0]!r}?" if hint else f"known keys: {', '.join(fields) or 'none'}"
                self.problem((*path, key), "unknown key", _NESTED if key == "parameters" else fix)
                continue
            out[key] = self.value(item, field, (*path, key), f"{pname}.{key}", cond)
        if section is not None and section.keywords_of is not None:
            self.bind_keywords(value, section, path)
        for key, field in fields.items():
            if key not in out:
                if field.required:
                    help_text = f" ({field.help})" if field.help else ""
                    self.problem((*path, key), f"required key is missing{help_text}",
                                 f"add `{key}: ...` ({type_text(field.type)})")
                else:
                    out[key] = field.default
        return out

    def bind_keywords(self, value: dict, section: Section, path: Path) -> None:
        """The keys `section` does not list, and its `keyword` fields given (not null), each bound to the signature
        of every function its `keywords_of` field may name here (a constant, each name of a choice or grid, or the
        default): a problem for each key one of them does not take. A key left out is never bound: its default
        (None) reaches no function."""
        selector = section.fields[section.keywords_of]
        kind = selector.registry
        supplied = [key for key in value if key in section.supplied and key not in section.fields]
        for key in supplied:  # refused whatever the function (a timm model's class is not even looked up)
            self.problem((*path, key), "is set by the recipe itself", section.supplied[key] or f"remove {key!r}")
        bound = [key for key in value if _bound(section, key, value[key]) and key not in supplied]
        if kind is None:
            return
        names = _names(value.get(section.keywords_of, selector.default))
        self.required_arguments(value, section, kind, names, path)
        if not bound:
            return
        signatures = {name: registry.parameters(kind, name) for name in names}
        for key in bound:
            listed = key in section.fields
            refusing = [name for name, takes in signatures.items() if takes is not None and key not in takes]
            if refusing:
                taking = [name for name in signatures if name not in refusing]
                self.problem((*path, key), *_refused(section, str(path[0]), key, refusing, taking, signatures))
            elif not listed:  # each takes it, takes any keyword, or is an unknown name (reported at its own key)
                self.keyword_type(value[key], kind, list(signatures), key, (*path, key))

    def required_arguments(self, value: dict, section: Section, kind: str, names: tuple[str, ...],
                           path: Path) -> None:
        """A problem at the section's `keywords_of` key for each argument without a default that a function it may
        name needs and nothing gives: not the recipe (`supplied`, its listed keys), not the section's keys."""
        given = {key for key, item in value.items() if item is not None} | set(section.supplied) | set(section.fields)
        at = (*path, section.keywords_of) if section.keywords_of in value else path
        for name in names:
            missing = [arg for arg in registry.required(kind, name) if arg not in given]
            if missing:
                one = len(missing) == 1
                self.problem(at, f"{kind} {name!r} needs the argument{'' if one else 's'} "
                             f"{' and '.join(map(repr, missing))}, which the space does not give (no default)",
                             f"add {', '.join(f'`{arg}: ...`' for arg in missing)} to the {path[0]} section, or give "
                             f"{'it a default' if one else 'them defaults'} in {name!r}")

    def keyword_type(self, value: Any, kind: str, names: list[str], key: str, path: Path) -> None:
        """A problem where a constant `value` for argument `key`, or a value its distribution draws, is not of the
        type of its default in one of the functions `names` (a whole number, a number, true/false or text):
        `image_size: abc` reached the dataset function, and `channels: {uniform: [4, 16]}` gave a model 9.7, which
        failed after `check` passed."""
        drawn = _drawn(value)
        for name in names:
            default = registry.defaults(kind, name).get(key)
            wanted = _KEYWORD_TYPES.get(type(default))
            if wanted is None or default is None:
                continue
            accepted, what = wanted
            for sample, source in drawn:
                if isinstance(sample, bool) is not (bool in accepted) or not isinstance(sample, accepted):
                    shown = str(default).lower() if isinstance(default, bool) else repr(default)  # as YAML writes it
                    fix = "use {int: [low, high]}" if dist_kind(value) in _FRACTIONS and what == "a whole number" \
                        else f"give {what}"
                    message = f"{kind} {name!r} takes {what} for {key!r} (its default: {shown}){source}"
                    self.problem(path, message, fix, *(() if source else (value,)))
                    return

    # --- values ---------------------------------------------------------------------------------------------
    def value(self, value: Any, field: Field | None, path: Path, pname: str, cond: tuple) -> Any:
        kind = dist_kind(value)
        if kind == "choice":
            return self.choice(value["choice"], (*path, "choice"), pname, cond,
                               lambda opt, p, n, c: self.value(opt, field, p, n, c), _given_default(value))
        if kind == "grid":
            return self.grid(value["grid"], (*path, "grid"), pname, cond, field, _given_default(value))
        if kind is not None:
            return self.numeric(kind, value[kind], field, path, pname, cond, _given_default(value))
        if self._foreign(value, field, path) or self._stray_keys(value, path):
            return value
        if isinstance(value, dict) and (field is None or _accepts(field, dict)):
            self._unknown_distribution(value, path)
            return self.mapping(value, None, path, pname, cond)
        if isinstance(value, list) and (field is None or _accepts(field, list)):
            return [self.value(v, None, (*path, i), f"{pname}[{i}]", cond) for i, v in enumerate(value)]
        if isinstance(value, str) and "${" in value:  # a path field's is made absolute once resolved, as a constant is
            self.interpolated[show_path(path)] = field
            base = os.getcwd() if field is not None and field.path else None
            return Interp(value, show_path(path), self.locs.of(path), base)
        if field is not None:
            if isinstance(value, dict) and (self._unknown_distribution(value, path) or self._lone_default(value, path)):
                return value
            value, error, fix = check_value(value, field)
            if error:
                self.problem(path, error, fix, value)
        return value

    def _foreign(self, value: Any, field: Field | None, path: Path) -> bool:
        """Whether `value` is another sweep tool's way of writing a distribution (a W&B sweep's parameter mapping, a
        Hydra sweep's text): the problem is reported, with autotune's form as its fix."""
        found = foreign_distribution(value, field is not None and not _accepts(field, dict))
        if found is not None:
            self.problem(path, *found, value)
        return found is not None

    def _foreign_section(self, value: Any, section: Section | None, path: Path) -> bool:
        """Whether a whole section is another sweep tool's choice (Hydra's `optimizer: choice(sgd, adamw)` of config
        groups, W&B's `{values: [...]}` whose keys the section does not list): the problem is reported, with a
        choice of mappings as the fix."""
        fields = section.fields if section is not None else {}
        if isinstance(value, dict) and any(key in fields for key in value):
            return False
        found = foreign_distribution(value, False)
        if found is None:
            return False
        options = value.get("values") if isinstance(value, dict) else None
        mappings = isinstance(options, list) and bool(options) and all(isinstance(o, dict) for o in options)
        key = section.keywords_of if section is not None and section.keywords_of else "name"
        groups = " (Hydra's config groups are written in the space)" if isinstance(value, str) else ""
        fix = found[1] if mappings else f"a section is searched by a choice of mappings here, one per option, each " \
            f"holding the section's keys: {path[0]}: {{choice: [{{{key}: a, ...}}, {{{key}: b, ...}}]}}{groups}"
        self.problem(path, found[0], fix, value)
        return True

    def _stray_keys(self, value: Any, path: Path) -> bool:
        """Whether `value` is a mapping that names a distribution beside keys no distribution takes (a misspelt
        `default:`, a second distribution): each is reported."""
        if not isinstance(value, dict) or dist_kind(value):
            return False
        kinds = [key for key, item in value.items() if key in DISTRIBUTIONS and isinstance(item, (list, dict))]
        if not kinds:
            return False
        if len(kinds) > 1:
            self.problem(path, f"{len(kinds)} distributions in one key: {', '.join(kinds)}",
                         "keep one: a key samples from one distribution")
        empty = [key for key in value if value[key] is None and key not in kinds]
        if len(kinds) == 1 and empty:  # `lr:` with nothing after it, its distribution on the next line dedented
            keys = list(value)
            before = [key for key in keys[:keys.index(kinds[0])] if key in empty]
            owner = before[-1] if before else empty[0]  # the empty key just above it
            self.problem((*path, kinds[0]), f"a distribution beside the keys of {show_path(path) or 'the space'}, "
                         f"and {owner!r} has no value", f"indent `{kinds[0]}:` under `{owner}:`, the key it belongs to")
            return True
        for key in value:
            if key != DEFAULT and key not in kinds:
                hint = registry.close_matches(str(key), [DEFAULT])
                fix = f"did you mean {DEFAULT!r}?" if hint else f"only `{DEFAULT}:` goes beside a distribution; " \
                    f"remove {key!r}"
                self.problem((*path, key), f"unknown key {key!r} beside a distribution", fix)
        return True

    def _unknown_distribution(self, value: dict, path: Path) -> bool:
        """Whether `value` is one key (beside `default:`) named for one of Tune's sampling functions
        (_TUNE_DISTRIBUTIONS), or another tool's name (_MISLEADING) or close to a distribution's name, holding a list or
        mapping: the problem is reported."""
        rest = {k: v for k, v in value.items() if k != DEFAULT}
        if len(rest) != 1:
            return False
        key, args = next(iter(rest.items()))
        known = f"(distributions: {', '.join(DISTRIBUTIONS)})"
        if key in _TUNE_DISTRIBUTIONS:
            self.problem(path, f"unknown distribution {key!r}", f"{_TUNE_DISTRIBUTIONS[key]} {known}")
            return True
        if key in _MISLEADING and isinstance(args, (list, dict)):
            self.problem(path, f"unknown distribution {key!r}", f"{_MISLEADING[key]} {known}")
            return True
        hint = registry.close_matches(str(key), DISTRIBUTIONS) if isinstance(args, (list, dict)) else []
        if hint:
            self.problem(path, f"unknown distribution {key!r}", f"did you mean {hint[0]!r}? {known}")
        return bool(hint)

    def _lone_default(self, value: dict, path: Path) -> bool:
        if DEFAULT not in value:
            return False
        self.problem((*path, DEFAULT), "a default goes beside a distribution; this key has none",
                     "e.g. {loguniform: [1.0e-4, 1.0e-1], default: 0.01}, or give the constant alone", value[DEFAULT])
        return True

    def _default(self, dist: Distribution, default: tuple[Any, ...], path: Path) -> tuple[Label, ...]:
        """The `default:` given beside `dist` at `path` (the distribution's key path), checked: (value,) or ()."""
        if not default:
            return ()
        value, error, fix = fit_value(dist, default[0])
        if error:
            self.problem((*path, DEFAULT), error, _quoted(dist, default[0]) or fix, default[0])
            return ()
        return (value,)

    def choice(self, options: Any, path: Path, pname: str, cond: tuple,
               option_fn: Callable[[Any, Path, str, tuple], Any], default: tuple[Any, ...] = ()) -> Any:
        if not isinstance(options, list) or not options:
            self.problem(path, "choice needs a non-empty list of options", "e.g. {choice: [64, 128, 256]}", options)
            return None
        self._duplicates(options, path)
        labels = option_labels(options)
        conditional = any(isinstance(o, dict) for o in options)
        line = self.locs.of(path)[1]
        dist = Choice(tuple(options), labels, conditional)
        self.add(Param(pname, dist, cond, line, self._default(dist, default, path[:-1])), path)
        trees = {}
        for index, (option, label) in enumerate(zip(options, labels)):
            trees[label] = option_fn(option, (*path, index), f"{pname}[{label}]", (*cond, (pname, label)))
        return Branch(pname, trees) if conditional else Sampled(pname, trees)

    def grid(self, values: Any, path: Path, pname: str, cond: tuple, field: Field | None,
             default: tuple[Any, ...] = ()) -> Any:
        if not isinstance(values, list) or not values:
            self.problem(path, "grid needs a non-empty list of values", "e.g. {grid: [0.1, 0.01]}", values)
            return None
        self._duplicates(values, path)
        checked = []
        for index, value in enumerate(values):
            if _has_distribution(value):
                self.problem((*path, index), "grid values must be constants", "use choice for sub-spaces")
            elif field is not None:
                value, error, fix = check_value(value, field)
                if error:
                    self.problem((*path, index), error, fix, value)
            checked.append(value)
        labels = option_labels(checked)
        dist = Grid(tuple(checked), labels)
        self.add(Param(pname, dist, cond, self.locs.of(path)[1], self._default(dist, default, path[:-1])), path)
        return Sampled(pname, dict(zip(labels, checked)))

    def _duplicates(self, options: list, path: Path) -> None:
        seen: dict[tuple[Any, Any], int] = {}  # key -> the index of its first option
        for index, option in enumerate(options):
            if isinstance(option, _PRIMITIVE):  # numbers equal as numbers are one option (0 and 0.0), not true and 1
                key = ("number" if _is_number(option) else type(option), option)
                if key in seen:
                    first = seen[key]
                    self.problem((*path, index), f"duplicate option: equal to option {first} ({options[first]!r})",
                                 "remove the repeated value", option)
                seen.setdefault(key, index)

    def numeric(self, kind: str, args: Any, field: Field | None, path: Path, pname: str, cond: tuple,
                default: tuple[Any, ...] = ()) -> Any:
        dpath = (*path, kind)
        given = self._arguments(kind, args, dpath)
        if given is None:
            return None
        for name in _ARGS[kind][0][:3]:
            if name in given and not (_is_number(given[name]) and math.isfinite(given[name])):
                self.problem(dpath, f"{kind} {name} must be a finite number", "", given[name])
                return None
        if "log" in given and not isinstance(given["log"], bool):
            self.problem(dpath, "int log must be true or false", "", given["log"])
            return None
        dist = self._dist(kind, given, dpath)
        if dist is None:
            return None
        if field is not None:
            self._fits(dist, field, dpath)
        self.add(Param(pname, dist, cond, self.locs.of(path)[1], self._default(dist, default, path)), path)
        return Sampled(pname)

    def _arguments(self, kind: str, args: Any, dpath: Path) -> dict | None:
        """The arguments of distribution `kind` by name (`[0, 1]` or `{low: 0, high: 1}`), else None and the problems:
        each unknown argument, what is missing, with a valid example."""
        names, required = _ARGS[kind]
        if isinstance(args, list) and required <= len(args) <= len(names):
            return dict(zip(names, args))
        if isinstance(args, dict) and set(names[:required]) <= set(args) <= set(names):
            return dict(args)
        for key in [key for key in args if key not in names] if isinstance(args, dict) else []:
            hint = registry.close_matches(str(key), names)
            self.problem((*dpath, key), f"{kind} takes no argument {key!r}",
                         f"did you mean {hint[0]!r}?" if hint else f"its arguments: {', '.join(names)}")
        wrong = _form_problem(kind, args)
        if wrong:
            self.problem(dpath, *wrong, args)
        return None

    def _dist(self, kind: str, given: dict, dpath: Path) -> Any:
        errors = _bound_errors(kind, given)
        for message, fix in errors:
            self.problem(dpath, message, fix)
        if errors:
            return None
        low, high, step = given["low"], given["high"], given.get("step", 1)
        if kind == "uniform":
            return Uniform(float(low), float(high))
        if kind == "loguniform":
            return LogUniform(float(low), float(high))
        if kind == "quniform":
            return QUniform(float(low), float(high), float(step))
        if kind == "pow2":
            return Pow2(int(low), int(high))
        return Int(int(low), int(high), int(step), bool(given.get("log", False)))

    def _fits(self, dist: Any, field: Field, dpath: Path) -> None:
        wanted = int if isinstance(dist, (Int, Pow2)) else float
        if not _accepts(field, wanted) and not (wanted is int and _accepts(field, float)):
            self.problem(dpath, f"a {type(dist).__name__.lower()} distribution gives {type_text(wanted)}, "
                         f"but this key expects {type_text(field.type)}", "use choice for other values")
        elif field.choices is not None or field.registry is not None:
            self.problem(dpath, "this key takes names, not numbers", "use {choice: [...]}")
        elif field.low is not None and dist.low < field.low or field.high is not None and dist.high > field.high:
            self.problem(dpath, f"the range [{dist.low}, {dist.high}] leaves the allowed range: values must be "
                         f"{_range(field.low, field.high)}", "narrow the distribution")
        elif field.check is not None:  # the rule's own words, at the first end it refuses (both ends are sampled)
            refused = [(end, text) for end in (dist.low, dist.high) if (text := field.check(end))]
            if refused:
                end, text = refused[0]
                self.problem(dpath, f"the range [{dist.low}, {dist.high}] reaches {end}, but values {text}",
                             "narrow the distribution")


def _quoted(dist: Distribution, value: Any) -> str:
    """The fix for a default written in quotes that names a number (`default: "32"`): it is text; else ""."""
    if not isinstance(value, str):
        return ""
    if isinstance(dist, (Choice, Grid)):
        numbers = [o for o in (dist.options if isinstance(dist, Choice) else dist.values) if _is_number(o)]
        if not any(str(number) == value.strip() for number in numbers):
            return ""
    else:
        try:
            float(value)
        except ValueError:
            return ""
    return f"{value!r} is text: write {value.strip()} without quotes"


def _form_problem(kind: str, args: Any) -> tuple[str, str] | None:
    """(what is wrong, a valid example) with the form of the arguments `args` of distribution `kind`; None for a
    mapping whose required arguments are all there (its unknown ones are reported one by one)."""
    names, required = _ARGS[kind]
    form = f"{kind} takes [{', '.join(names[:required])}]"
    example = _EXAMPLES[kind]
    if isinstance(args, dict):
        missing = [name for name in names[:required] if name not in args]
        shown = ", ".join(f"{name}: {value:g}" for name, value in zip(names, example))
        return (f"{form} or a mapping of {', '.join(names)}, and {_missing(missing)}",
                f"e.g. {{{kind}: {{{shown}}}}}") if missing else None
    listed = f"e.g. {{{kind}: [{', '.join(f'{value:g}' for value in example)}]}}"
    if isinstance(args, list):
        why = _missing(names[len(args):required]) if len(args) < required else \
            f"at most {len(names)} values ({', '.join(names)})"
        return f"{form}, but got {len(args)} value{'s' if len(args) != 1 else ''}: {why}", listed
    return f"{form} or a mapping of {', '.join(names)}", listed


def _missing(names: list[str] | tuple[str, ...]) -> str:
    return f"{' and '.join(names)} {'is' if len(names) == 1 else 'are'} missing"


def _bound_errors(kind: str, given: dict) -> list[tuple[str, str]]:
    """(rule broken, fix) for each bound of distribution `kind` that cannot hold (`given`: its arguments by name)."""
    low, high, step = given["low"], given["high"], given.get("step", 1)
    shown = f"(low={low}, high={high})"
    errors = []
    if low > high:
        errors.append((f"`low <= high` must hold, but got {shown}", f"swap them: [{high:g}, {low:g}]"))
    if kind == "loguniform" and low <= 0:
        example = f"[{high / 1000:g}, {high:g}]" if high > 0 else "[0.0001, 0.1]"
        errors.append((f"loguniform needs low > 0, but got {shown}",
                       f"give low > 0, e.g. {example}, or use uniform to include 0"))
    if step <= 0:
        errors.append((f"step must be > 0, but got step={step}", "give a step > 0, or leave it out (int: 1)"))
    if kind == "int":
        if not all(float(v).is_integer() for v in (low, high, step)):
            errors.append((f"int needs integer low, high and step, but got {shown}, step={step}",
                           "give whole numbers, or use uniform (quniform) for fractions"))
        elif given.get("log", False) and (step != 1 or low < 1):
            errors.append((f"int with log: true needs low >= 1 and step 1, but got {shown}, step={step}",
                           f"e.g. {{int: {{low: {max(1, int(low))}, high: {max(1, int(high))}, log: true}}}}"))
    if kind == "pow2":
        errors += _pow2_errors(low, high)
    if kind in ("int", "quniform") and not errors and not on_step_grid(low, high, step):
        # Optuna would silently lower high to the last step
        top = low + math.floor((high - low) / step) * step
        errors.append((f"high - low must be a multiple of step, but got {shown}, step={step}",
                       f"e.g. high: {top:g}"))
    return errors


def _pow2_errors(low: float, high: float) -> list[tuple[str, str]]:
    """(rule broken, fix) for the bounds of a pow2 distribution that are not powers of two (1, 2, 4, ...)."""
    wrong = [(name, value) for name, value in (("low", low), ("high", high))
             if not (value >= 1 and float(value).is_integer() and int(value) & (int(value) - 1) == 0)]
    return [(f"pow2 needs {name} a power of two (1, 2, 4, 8, ...), but got {name}={value:g}",
             f"e.g. {name}: {2 ** max(0, round(math.log2(value))) if value >= 1 else 1}") for name, value in wrong]


def _refused(section: Section, name: str, key: Any, refusing: list[str], taking: list[str],
             signatures: dict[str, tuple[str, ...] | None]) -> tuple[str, str]:
    """(what is wrong, how to fix it) with `key` of section `name` given where the functions `refusing` do not
    take it (`taking`: the names of a choice that do): an unlisted key gets the closest argument, a key only some
    names of a choice take the conditional form, a listed one (a `keyword` field) what takes it."""
    kind, selector = str(section.fields[section.keywords_of].registry), str(section.keywords_of)
    names = " and ".join(repr(n) for n in refusing)
    message = f"{kind} {names} takes no argument {key!r}" if len(refusing) == 1 else \
        f"{kind}s {names} take no argument {key!r}"
    listed = key in section.fields
    takes = dict.fromkeys(t for n in refusing for t in signatures[n] or () if t not in section.supplied)
    hint = [] if listed else registry.close_matches(str(key), [*section.fields, *takes])
    if hint:
        return message, f"did you mean {hint[0]!r}?"
    if taking:
        return message, (f"only {' and '.join(map(repr, taking))} take{'s' if len(taking) == 1 else ''} it: give it "
                         f"in a choice of {name} sections, with the {selector} it applies to, e.g. "
                         f"{_conditional(name, selector, key, taking[0], refusing)}")
    if not listed:
        return message, f"its arguments: {', '.join(takes) or 'none'}"
    takers = [n for n in registry.names(kind) if key in (registry.parameters(kind, n) or ())]
    if not takers:
        return message, "remove it"
    return (f"{message} ({' and '.join(takers)} only)", f"remove it, or search {kind}s with the conditional form, "
            f"e.g. {_conditional(name, selector, key, takers[0], refusing)}")


def _bound(section: Section, key: Any, value: Any) -> bool:
    """Whether `key` of `section`, given `value`, is bound to the signature of the function the section names: a
    key the schema does not list, or a `keyword` field given a value (null: unset)."""
    field = section.fields.get(key)
    return field is None or field.keyword and value is not None


def _conditional(name: str, selector: str, key: Any, taking: str, refusing: list[str]) -> str:
    """The conditional form of section `name` that gives `key` to `taking` alone: `optimizer: {choice: [{name: sgd,
    momentum: ...}, {name: adamw}]}`."""
    options = [f"{{{selector}: {taking}, {key}: ...}}", *(f"{{{selector}: {other}}}" for other in refusing)]
    return f"{name}: {{choice: [{', '.join(options)}]}}"


def _drawn(value: Any) -> list[tuple[Any, str]]:
    """(a value the space may give for a key, and "" for a constant, else what draws it): the constant itself; one
    value of a numeric distribution's type; each constant option of a choice or grid. None for an interpolation,
    whose value is not known here."""
    kind = dist_kind(value)
    if kind in _FRACTIONS:
        return [(0.5, f", but {kind} draws fractions")]
    if kind in ("choice", "grid") and isinstance(value[kind], list):
        return [(option, f", but {kind} option {index} is {option!r}") for index, option in enumerate(value[kind])
                if isinstance(option, _PRIMITIVE) and option is not None and not _interpolated(option)]
    if kind or _interpolated(value):
        return []  # int draws whole numbers; a mapping or an interpolation is checked where it is known
    return [(value, "")]


def _interpolated(value: Any) -> bool:
    return isinstance(value, str) and "${" in value


def _names(value: Any) -> tuple[str, ...]:
    """The names a registry key may hold: a constant, or the names among a choice's or grid's options."""
    kind = dist_kind(value)
    options = value[kind] if kind in ("choice", "grid") and isinstance(value[kind], list) else [value]
    return tuple(o for o in options if isinstance(o, str) and "${" not in o)


def _accepts(field: Field, kind: type) -> bool:
    types = field.type if isinstance(field.type, tuple) else (field.type,)
    return any(t is kind or t is object for t in types)


def _has_distribution(value: Any) -> bool:
    if isinstance(value, dict):
        return dist_kind(value) is not None or any(_has_distribution(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_distribution(v) for v in value)
    return False


def option_labels(options: list) -> tuple[Label, ...]:
    """A sampler's stand-in per option: the value (primitive) or the `name` of a mapping; else positions."""
    found: list[Label] = []
    for option in options:
        candidate = option.get("name") if isinstance(option, dict) else option
        usable = isinstance(candidate, _PRIMITIVE) and not (isinstance(candidate, str) and "${" in candidate)
        found.append(candidate if usable else None)
    unique = None not in found and len(set(found)) == len(found)  # equal values hash alike: 1, 1.0 and true
    return tuple(found) if unique else tuple(str(i) for i in range(len(options)))
