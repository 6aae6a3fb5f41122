"""Read YAML into plain Python values and remember where each key and item came from (file, line).

A location table maps a key path (a tuple of keys and list indices) to (file, line). PyYAML's SafeLoader
is extended so that `1e-4` and `3e4` are floats (YAML 1.1 wants a dot), and duplicate keys are reported.
"""
from __future__ import annotations

import re
from typing import Any

import yaml

from autotune.errors import Problem

__all__ = ["Path", "Locations", "MAX_DEPTH", "load_yaml", "show_path"]

Path = tuple[Any, ...]  # str keys and int list indices

_Base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_Base):  # type: ignore[misc, valid-type]
    """SafeLoader that reads scientific notation without a dot (`1e-4`, `3e4`) as floats."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


# `${...}` may hold `{`, `}` and `,`, which end a plain scalar inside a flow mapping (`{dir: models/${name}}`):
# they are swapped for plain tokens before parsing and put back in the strings read.
_REF = re.compile(r"\$\{[^}\n]*\}")
_TOKEN = re.compile(r"__autotune_ref_(\d+)__")


def _protect(text: str) -> tuple[str, list[str]]:
    refs: list[str] = []

    def swap(match: re.Match[str]) -> str:
        refs.append(match.group(0))
        return f"__autotune_ref_{len(refs) - 1}__"

    return _REF.sub(swap, text), refs


def _restore(value: Any, refs: list[str]) -> Any:
    if isinstance(value, str) and "__autotune_ref_" in value:
        return _TOKEN.sub(lambda m: refs[int(m.group(1))] if int(m.group(1)) < len(refs) else m.group(0), value)
    return value


class Locations:
    """(file, line) of every key path in a document; a path without an entry takes its nearest ancestor's."""

    def __init__(self, file: str | None) -> None:
        self.file = file
        self.table: dict[Path, tuple[str | None, int]] = {}

    def add(self, path: Path, line: int, file: str | None = None) -> None:
        self.table[path] = (file or self.file, line)

    def of(self, path: Path) -> tuple[str | None, int]:
        for end in range(len(path), -1, -1):
            hit = self.table.get(tuple(path[:end]))
            if hit is not None:
                return hit
        return self.file, 1

    def problem(self, path: Path, message: str, fix: str = "", value: Any = None, has_value: bool = False) -> Problem:
        file, line = self.of(path)
        return Problem(show_path(path), message, fix, file, line, value, has_value)


def show_path(path: Path) -> str:
    """("optimizer", "choice", 1, "lr") -> "optimizer.choice[1].lr"."""
    text = ""
    for key in path:
        text += f"[{key}]" if isinstance(key, int) else (f".{key}" if text else str(key))
    return text


# Aliases let a small file stand for a huge document (`&a [*b, *b, ...]` nested, "billion laughs"): refuse one
# that expands past this many values, or that nests deeper than a search space ever needs.
MAX_VALUES = 100_000
MAX_DEPTH = 50


class _TooLarge(Exception):
    """The document is too large or too deep to be a search space (the message says which)."""


class _Builder:
    """Plain values from a node tree, locations recorded; a recursive alias becomes a Problem, not a loop."""

    def __init__(self, loader: _Loader, locs: Locations, problems: list[Problem], refs: list[str]) -> None:
        self.loader, self.locs, self.problems, self.refs = loader, locs, problems, refs
        self.open: set[int] = set()  # ids of the nodes being built (the path from the root)
        self.count = 0

    def build(self, node: yaml.Node, path: Path) -> Any:
        self.count += 1
        if self.count > MAX_VALUES:
            raise _TooLarge(f"the YAML expands to more than {MAX_VALUES} values (through aliases?)")
        if len(self.open) > MAX_DEPTH:
            raise _TooLarge(f"the YAML nests deeper than {MAX_DEPTH} levels")
        if id(node) in self.open:
            self.problems.append(Problem(show_path(path), "a YAML alias refers to a value that contains it",
                                         "write the value out instead of the alias", self.locs.file,
                                         node.start_mark.line + 1))
            return None
        if not isinstance(node, (yaml.MappingNode, yaml.SequenceNode)):
            return _restore(self.loader.construct_object(node, deep=True), self.refs)
        self.open.add(id(node))
        try:
            return self.mapping(node, path) if isinstance(node, yaml.MappingNode) else self.sequence(node, path)
        finally:
            self.open.discard(id(node))

    def mapping(self, node: yaml.MappingNode, path: Path) -> dict:
        self.loader.flatten_mapping(node)  # `<<` merge keys
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if isinstance(key_node, (yaml.MappingNode, yaml.SequenceNode)):
                self.problems.append(self._key_problem(path, key_node))
                continue
            key = _restore(self.loader.construct_object(key_node, deep=True), self.refs)
            if not isinstance(key, (str, int, float, bool)) and key is not None:
                self.problems.append(self._key_problem(path, key_node, key))
                continue
            if key in out:
                self.problems.append(Problem(show_path((*path, key)), "duplicate key", "keep only one of them",
                                             self.locs.file, key_node.start_mark.line + 1))
            self.locs.add((*path, key), key_node.start_mark.line + 1)
            out[key] = self.build(value_node, (*path, key))
        return out

    def _key_problem(self, path: Path, key_node: yaml.Node, *key: Any) -> Problem:
        """A key that is a list, a mapping or another non-plain value (`? [a, b]`, a date), at its own line."""
        return Problem(show_path(path), "a key must be a plain value (a string, a number, true or false)",
                       "write the key as plain text, e.g. `my_key: ...`", self.locs.file, key_node.start_mark.line + 1,
                       key[0] if key else None, bool(key))

    def sequence(self, node: yaml.SequenceNode, path: Path) -> list:
        items = []
        for index, item in enumerate(node.value):
            self.locs.add((*path, index), item.start_mark.line + 1)
            items.append(self.build(item, (*path, index)))
        return items


def load_yaml(text: str, file: str | None, locs: Locations, problems: list[Problem], path: Path = ()) -> Any:
    """Parse `text`; record locations under `path`. A syntax error becomes a Problem and the result None."""
    text, refs = _protect(text)
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        locs.add(path, node.start_mark.line + 1, file)
        return _Builder(loader, locs, problems, refs).build(node, path)
    except _TooLarge as err:
        problems.append(Problem(show_path(path), str(err), "write a smaller search space", file, 1))
        return None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
        line = mark.line + 1 if mark is not None else 1
        reason = getattr(err, "problem", None) or str(err).splitlines()[0]
        context = getattr(err, "context", None)
        message = f"YAML syntax error: {reason}" + (f" ({context})" if context else "")
        problems.append(Problem(show_path(path), message, "fix the YAML syntax at that line", file, line))
        return None
    finally:
        loader.dispose()
