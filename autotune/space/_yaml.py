"""Read YAML into plain Python values and remember where each key and item came from (file, line).

A location table maps a key path (a tuple of keys and list indices) to (file, line). PyYAML's SafeLoader
is extended so that `1e-4` and `3e4` are floats (YAML 1.1 wants a dot), integers are YAML 1.2's (`010` is 10,
`1:30` text), and duplicate keys are reported. Merge keys
(`<<: *base`) follow YAML's rule: a key written beside `<<` overrides the merged one. Common YAML slips (a tab in the
indentation, `off` read as false) get a hint on how to fix them.
"""
from __future__ import annotations

import re
from typing import Any

import yaml

from autotune.errors import Problem

__all__ = ["Path", "Locations", "MAX_DEPTH", "colon_hint", "load_yaml", "show_path"]

Path = tuple[Any, ...]  # str keys and int list indices

_Base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_Base):  # type: ignore[misc, valid-type]
    """SafeLoader that reads scientific notation without a dot (`1e-4`, `3e4`) as floats, and integers as YAML 1.2
    does: `010` is 10 (not octal 8), `1:30` is text (not 90 in base 60)."""


# YAML 1.1's integers (`010` octal, `0b1`, `1_000`, `1:30` base 60) and base-60 floats (`1:30.5`) give way to
# YAML 1.2's core schema: decimal, `0o` octal, `0x` hex; a float has a dot (or an exponent, below)
_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers
            if tag not in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")]
    for first, resolvers in _Base.yaml_implicit_resolvers.items()}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^(?:[-+]?[0-9][0-9_]*\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?"
               r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
    list("-+0123456789."),
)
_INT = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")
_Loader.add_implicit_resolver("tag:yaml.org,2002:int", _INT, list("-+0123456789"))


def _construct_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int:
    """A YAML 1.2 integer: `010` is 10, `0o10` 8, `0x10` 16 (an `!!int` that is none of these is an error)."""
    text = str(loader.construct_scalar(node))
    if not _INT.match(text):
        raise yaml.constructor.ConstructorError(None, None, f"not an integer: {text!r}", node.start_mark)
    base = {"0o": 8, "0x": 16}.get(text[:2], 10)
    return int(text[2:] if base != 10 else text, base)


_Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)
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
    """(file, line) of every key path in a document; a path without an entry takes its nearest ancestor's. A
    document without lines (a dict given to `fit`) names no line."""

    def __init__(self, file: str | None, lines: bool = True) -> None:
        self.file, self.lines = file, lines
        self.table: dict[Path, tuple[str | None, int]] = {}

    def add(self, path: Path, line: int, file: str | None = None) -> None:
        self.table[path] = (file or self.file, line)

    def of(self, path: Path) -> tuple[str | None, int | None]:
        for end in range(len(path), -1, -1):
            hit = self.table.get(tuple(path[:end]))
            if hit is not None:
                return hit
        return self.file, 1 if self.lines else None

    def problem(self, path: Path, message: str, fix: str = "", value: Any = None, has_value: bool = False) -> Problem:
        file, line = self.of(path)
        if has_value and isinstance(value, bool) and _wants_text(message):
            fix = "; ".join(filter(None, [fix, _BOOLEAN_HINT]))
        return Problem(show_path(path), message, fix, file, line, value, has_value)


_BOOLEAN_HINT = "YAML reads off, no, yes and on as booleans: quote it, e.g. 'off'"


def _wants_text(message: str) -> bool:
    """Whether a type error's `message` ("expected a string or null", "must be a non-empty string") says a string
    was expected."""
    return message.startswith(("expected ", "must be a non-empty string")) and "string" in message


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


_MERGE = "tag:yaml.org,2002:merge"  # the tag of a `<<` key
_VALUE = "tag:yaml.org,2002:value"  # the tag of a `=` key
Pairs = dict[Any, tuple[yaml.Node, yaml.Node]]  # the pairs of a mapping: key -> (its key node, its value node)


class _TooLarge(Exception):
    """The document is too large or too deep to be a search space (the message says which)."""


class _Builder:
    """Plain values from a node tree, locations recorded; a recursive alias becomes a Problem, not a loop."""

    def __init__(self, loader: _Loader, locs: Locations, problems: list[Problem], refs: list[str]) -> None:
        self.loader, self.locs, self.problems, self.refs = loader, locs, problems, refs
        self.open: set[int] = set()  # ids of the nodes being built (the path from the root)
        self.count = 0
        self.sources: dict[int, Pairs] = {}  # id of a mapping merged by `<<` -> its pairs

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
        out: dict[Any, Any] = {}
        for key, (key_node, value_node) in self._pairs(node, path, self.problems).items():
            self.locs.add((*path, key), key_node.start_mark.line + 1)
            out[key] = self.build(value_node, (*path, key))
        return out

    def _pairs(self, node: yaml.MappingNode, path: Path, problems: list[Problem]) -> Pairs:
        """The pairs of `node` in YAML's order: the merged ones (`<<`) first, each overridden by a key written beside
        it, then the other written ones. The problems of its keys go to `problems`."""
        return {**self._merged(node, path, problems), **self._written(node, path, problems)}

    def _written(self, node: yaml.MappingNode, path: Path, problems: list[Problem]) -> Pairs:
        """The pairs written in `node`, `<<` aside; a repeated key (the last one wins) or a key that is not a plain
        value is a problem at its line."""
        pairs: Pairs = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                continue
            if isinstance(key_node, (yaml.MappingNode, yaml.SequenceNode)):
                problems.append(self._key_problem(path, key_node))
                continue
            key = self._key(key_node)
            if not isinstance(key, (str, int, float, bool)) and key is not None:
                problems.append(self._key_problem(path, key_node, key))
                continue
            if key in pairs:
                problems.append(Problem(show_path((*path, key)), "duplicate key", "keep only one of them",
                                        self.locs.file, key_node.start_mark.line + 1))
            pairs[key] = (key_node, value_node)
        return pairs

    def _key(self, key_node: yaml.ScalarNode) -> Any:
        """The value of a scalar key; `=` is the string "=" (YAML 1.1 tags it as a `value` key, not a string)."""
        if key_node.tag == _VALUE:
            return "="
        return _restore(self.loader.construct_object(key_node, deep=True), self.refs)

    def _merged(self, node: yaml.MappingNode, path: Path, problems: list[Problem]) -> Pairs:
        """The pairs the `<<` of `node` merges in (`<<: *a`, `<<: [*a, *b]`): of several mappings, the earlier
        one's key wins."""
        pairs: Pairs = {}
        for source in self._sources(node, path, problems):
            for key, pair in self._merged_source(source).items():
                pairs.setdefault(key, pair)
        return pairs

    def _sources(self, node: yaml.MappingNode, path: Path, problems: list[Problem]) -> list[yaml.MappingNode]:
        """The mappings the `<<` keys of `node` merge, in order; a second `<<`, or a `<<` of anything but mappings,
        is a problem at its line."""
        sources: list[yaml.MappingNode] = []
        merges = [(key_node, value_node) for key_node, value_node in node.value if key_node.tag == _MERGE]
        for index, (key_node, value_node) in enumerate(merges):
            if index:
                problems.append(Problem(show_path((*path, "<<")), "duplicate key",
                                        "merge several mappings with one `<<: [*a, *b]`", self.locs.file,
                                        key_node.start_mark.line + 1))
            items = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
            for item in items:
                if isinstance(item, yaml.MappingNode):
                    sources.append(item)
                else:
                    problems.append(Problem(show_path((*path, "<<")), "`<<` merges a mapping or a list of mappings",
                                            "merge an anchored mapping: `<<: *base` or `<<: [*a, *b]`",
                                            self.locs.file, item.start_mark.line + 1))
        return sources

    def _merged_source(self, node: yaml.MappingNode) -> Pairs:
        """The pairs of a mapping merged into another (its problems are reported where it is written). Computed once
        per node, so that merges of merges stay cheap and a merge that reaches back to itself finds nothing."""
        if id(node) not in self.sources:
            self.sources[id(node)] = {}
            self.sources[id(node)] = self._pairs(node, (), [])
        return self.sources[id(node)]

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


def _syntax_fix(text: str, mark: yaml.Mark | None, context: str | None) -> str:
    """How to fix a YAML syntax error, from the character where the parser stopped (`mark`)."""
    lines = text.splitlines()
    found = lines[mark.line][mark.column:mark.column + 1] if mark is not None and mark.line < len(lines) else ""
    if found == "\t":
        return "YAML indents with spaces, not tabs: replace the tab"
    if found == "[" and context == "while parsing a flow mapping":
        return "inside {...}, quote a key or value that holds [ ], e.g. {'optimizer[sgd].lr': 0.01}"
    for number in range(mark.line, max(mark.line - 3, -1), -1) if mark is not None else ():
        hint = colon_hint(lines[number]) if number < len(lines) else ""
        if hint:
            return f"{hint} (line {number + 1})"
    return "fix the YAML syntax at that line"


_NO_SPACE = re.compile(r"^\s*(?:- )?([A-Za-z_][\w-]*):([^\s:/\[{][^\s]*)")  # `arch:mlp`, not `s3://b` nor `1:30`


def colon_hint(text: str) -> str:
    """The fix for `key:value` written without a space after the colon (YAML reads it as one text), else ""."""
    found = _NO_SPACE.match(text)
    return f"add a space after the colon: `{found[1]}: {found[2]}`" if found else ""


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
        problems.append(Problem(show_path(path), message, _syntax_fix(text, mark, context), file, line))
        return None
    finally:
        loader.dispose()
