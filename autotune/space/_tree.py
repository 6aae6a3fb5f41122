"""The config template of a space: plain values with markers where a trial puts its sampled values.

`materialize(tree, values)` puts the sampled values (and the chosen options of conditional choices) in place;
`resolve(tree)` then replaces every `${a.b}` / `${env:VAR,default}` by its value.
"""
from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from autotune.registry import close_matches
from autotune.space._yaml import _Loader

__all__ = ["Sampled", "Branch", "Interp", "InterpError", "absolute", "materialize", "resolve", "wrap_interpolations"]

_REF = re.compile(r"\$\{([^}]*)\}")


@dataclass(frozen=True)
class Sampled:
    """The value of parameter `name`; `options` maps a sampler's label to the option value (Choice, Grid)."""

    name: str
    options: Mapping[Any, Any] | None = None


@dataclass(frozen=True)
class Branch:
    """A conditional choice: the subtree of the option whose label parameter `name` took."""

    name: str
    options: Mapping[Any, Any]


@dataclass(frozen=True)
class Interp:
    """A string with `${...}` references; `where` is the key path shown in errors, `at` its (file, line). `base`: the
    value of a path field, made `absolute` against this directory once resolved (None: any other value)."""

    text: str
    where: str
    at: tuple[str | None, int]
    base: str | None = None


class InterpError(Exception):
    """A reference that cannot be resolved: the marker it came from, what went wrong and the fix."""

    def __init__(self, marker: Interp, message: str, fix: str) -> None:
        super().__init__(message)
        self.marker, self.message, self.fix = marker, message, fix


def wrap_interpolations(value: Any, where: str, at: Any) -> Any:
    """A copy of `value` whose strings that hold `${...}` are Interp markers. `at(path_suffix)` locates them."""
    if isinstance(value, str) and "${" in value:
        return Interp(value, where, at(()))
    if isinstance(value, dict):
        return {k: wrap_interpolations(v, f"{where}.{k}" if where else str(k), _sub(at, k)) for k, v in value.items()}
    if isinstance(value, list):
        return [wrap_interpolations(v, f"{where}[{i}]", _sub(at, i)) for i, v in enumerate(value)]
    return value


def absolute(path: str, base: str) -> str:
    """`path` made absolute against the directory `base`; `~` paths and URIs (`s3://...`) as they are."""
    if path.startswith("~") or "://" in path or os.path.isabs(path):
        return path
    return os.path.normpath(os.path.join(base, path))


def _sub(at: Any, key: Any) -> Any:
    return lambda rest: at((key, *rest))


def materialize(tree: Any, values: Mapping[str, Any]) -> Any:
    """`tree` with Sampled and Branch markers replaced using the sampled `values` (label per parameter)."""
    if isinstance(tree, Sampled):
        value = values[tree.name]
        return tree.options[value] if tree.options is not None else value
    if isinstance(tree, Branch):
        return materialize(tree.options[values[tree.name]], values)
    if isinstance(tree, dict):
        return {k: materialize(v, values) for k, v in tree.items()}
    if isinstance(tree, list):
        return [materialize(v, values) for v in tree]
    return tree


class _Resolver:
    def __init__(self, namespace: Mapping[str, Any], errors: list[InterpError] | None, fixed: bool) -> None:
        self.namespace, self.errors, self.fixed = namespace, errors, fixed

    def deep(self, value: Any, stack: tuple[str, ...]) -> Any:
        if isinstance(value, Interp):
            try:
                return self.one(value, stack)
            except InterpError as err:
                if self.errors is None:
                    raise
                self.errors.append(err)
                return value.text
        if isinstance(value, dict):
            return {k: self.deep(v, stack) for k, v in value.items()}
        if isinstance(value, list):
            return [self.deep(v, stack) for v in value]
        return value

    def one(self, marker: Interp, stack: tuple[str, ...]) -> Any:
        if marker.where in stack:
            cycle = " -> ".join((*stack[stack.index(marker.where):], marker.where))
            raise InterpError(marker, f"interpolation cycle: {cycle}", "make one of these keys a plain value")
        value = self.text(marker, (*stack, marker.where))
        return absolute(value, marker.base) if marker.base is not None and isinstance(value, str) else value

    def text(self, marker: Interp, stack: tuple[str, ...]) -> Any:
        """The value of `marker`'s text, its references resolved."""
        if "${" in _REF.sub("", marker.text):
            raise InterpError(marker, "unterminated interpolation: a `${` without its closing `}`",
                              f"close it, e.g. {marker.text}}}")
        whole = _REF.fullmatch(marker.text.strip())
        if whole:
            return self.target(marker, whole.group(1).strip(), stack)
        return _REF.sub(lambda m: self.part(marker, m.group(1).strip(), stack), marker.text)

    def part(self, marker: Interp, ref: str, stack: tuple[str, ...]) -> str:
        """The text of `ref` inside a longer string: an environment value exactly as given."""
        return _env(marker, ref[4:]) if ref.startswith("env:") else _text(self.target(marker, ref, stack))

    def target(self, marker: Interp, ref: str, stack: tuple[str, ...]) -> Any:
        if ref.startswith("env:"):
            return _scalar(_env(marker, ref[4:]))
        node: Any = self.namespace
        walked: list[str] = []
        for part in ref.split("."):
            if isinstance(node, Interp):
                node = self.one(node, stack)
            if self.fixed and isinstance(node, (Sampled, Branch)):
                raise self.sampled(marker, ref, node)
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isascii() and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                known = sorted(str(k) for k in node) if isinstance(node, dict) else []
                hint = close_matches(part, known)
                at = ".".join(walked) or "the top level"
                fix = f"did you mean ${{{'.'.join([*walked, hint[0]])}}}?" if hint else f"keys at {at}: {', '.join(known) or 'none'}"
                raise InterpError(marker, f"interpolation ${{{ref}}} names a key that does not exist", fix)
            walked.append(part)
        found = _first_sampled(node) if self.fixed else None
        if found is not None:
            raise self.sampled(marker, ref, found)
        return self.deep(node, stack)

    @staticmethod
    def sampled(marker: Interp, ref: str, found: Sampled | Branch) -> InterpError:
        return InterpError(marker, f"interpolation ${{{ref}}} takes the parameter {found.name}, which is sampled per "
                           f"trial, but {marker.where} is one setting for the whole search",
                           "use a constant here, or refer only to values that are not searched")


def _first_sampled(tree: Any) -> Sampled | Branch | None:
    """The first Sampled or Branch marker in `tree` (not looking into `${...}`), or None."""
    if isinstance(tree, (Sampled, Branch)):
        return tree
    children = tree.values() if isinstance(tree, dict) else tree if isinstance(tree, list) else ()
    return next((found for found in map(_first_sampled, children) if found is not None), None)


def _env(marker: Interp, ref: str) -> str:
    """The text of `${env:VAR}` or `${env:VAR,default}` (`ref` without `env:`): the variable's value as given,
    else the default."""
    var, has_default, default = ref.partition(",")
    text = os.environ.get(var.strip())
    if text is not None:
        return text
    if not has_default:
        raise InterpError(marker, f"environment variable {var.strip()!r} is not set",
                          f"set it, or give a default: ${{env:{var.strip()},default}}")
    return default.strip()


_TYPED = {"tag:yaml.org,2002:int", "tag:yaml.org,2002:float", "tag:yaml.org,2002:bool", "tag:yaml.org,2002:null"}


def _scalar(text: str) -> Any:
    """An environment value typed where the whole text is one plain YAML number, boolean or null: `3` -> 3,
    `1e-3` -> 0.001, `true` -> True, `null` -> None. Anything else stays the text exactly as given: the empty
    text, `~` (a home folder), a `#` YAML would cut as a comment, a quoted or a flow value."""
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError:
        return text
    if not isinstance(node, yaml.ScalarNode) or node.style or node.tag not in _TYPED or \
            node.value != text or text == "~":
        return text
    return yaml.load(text, Loader=_Loader)


def _text(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return yaml.safe_dump(value, default_flow_style=True).strip()
    return "null" if value is None else str(value)


def resolve(tree: Any, namespace: Mapping[str, Any], errors: list[InterpError] | None = None, *,
            fixed: bool = False) -> Any:
    """`tree` with every Interp resolved against `namespace`. Raises InterpError, or with `errors` given
    appends each error there and leaves the failing string as written. `fixed`: `tree` holds settings that cannot
    vary per trial, and `namespace` the unsampled template: a reference to a sampled value is an error."""
    return _Resolver(namespace, errors, fixed).deep(tree, ())
