"""The schema a recipe declares for its ingredients, so a search space is validated before anything runs.

    SCHEMA = Schema(
        data=Section(dataset=Field(str, registry="dataset"), root=Field(str, default="~/.cache/autotune/data")),
        train=Section(epochs=Field(int, default=10, low=1), batch_size=Field(int, default=128, low=1)),
        budget="train.epochs",                                   # the key of the reports a trial makes at most
        metrics={"val_accuracy": "max", "val_loss": "min"},      # what each report holds, and which way is better
        tests={"val_accuracy": "test_accuracy"},                 # the held-out twin `evaluate` measures
        checks=(held_out("val_fraction", "test_fraction"),),     # rules across keys, over each trial's config
    )

Imports neither ray nor torch: a schema is plain data.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from autotune.errors import Problem
from autotune.registry import close_matches

__all__ = ["REQUIRED", "Field", "Section", "Schema", "Check", "positive", "held_out", "needed_with", "found",
           "value_at"]

# A rule across keys: a trial's config (section -> key -> value, defaults filled in) -> its problems, each with the
# dotted key path it is reported at (the space locates it)
Check = Callable[[Mapping[str, Any]], list[Problem]]


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()


def positive(value: float) -> str | None:
    """A Field `check`: numbers above 0 (`low` bounds inclusively)."""
    return None if value > 0 else "must be > 0"


def held_out(*keys: str, section: str = "data", only: tuple[str, ...] | None = None) -> Check:
    """A Schema check: the shares of the samples that `keys` of `section` hold out leave some to train on (their sum
    is below 1). `only`: the datasets (`section.dataset`) it applies to, when others take some of them from
    elsewhere (an official test set)."""

    def check(config: Mapping[str, Any]) -> list[Problem]:
        values = config.get(section, {})
        if only is not None and values.get("dataset") not in only:
            return []
        total = sum(values.get(key) or 0 for key in keys)
        if total < 1:
            return []
        shown = " + ".join(f"{section}.{key}" for key in keys)
        return [Problem(f"{section}.{keys[0]}", f"{shown} is {total:g}, which leaves no training samples",
                        f"make them sum to less than 1, e.g. {', '.join(f'{key}: 0.1' for key in keys)}")]

    return check


def needed_with(key: str, value: Any, *needed: str) -> Check:
    """A Schema check: when the dotted `key` is `value`, each dotted key of `needed` is given (not null)."""

    def check(config: Mapping[str, Any]) -> list[Problem]:
        if value_at(config, key) != value:
            return []
        return [Problem(path, f"{key}: {value} needs {path}", f"add `{path.rpartition('.')[2]}: ...` to "
                        f"{path.rpartition('.')[0]}") for path in needed if value_at(config, path) is None]

    return check


def found(key: str, only: tuple[str, ...]) -> Check:
    """A Schema warning: the file or folder at the dotted `key` (a `path=True` field) exists, for the datasets
    (`section.dataset`, the key's section) of `only` that read it; `check` then names a mistyped path before
    `run` loads the data. A warning, not a problem: a pipeline may write the file after the space is checked."""
    section = key.partition(".")[0]

    def check(config: Mapping[str, Any]) -> list[Problem]:
        path = value_at(config, key)
        if value_at(config, f"{section}.dataset") not in only or not isinstance(path, str) or os.path.exists(path):
            return []
        return [Problem(key, f"{path} does not exist (yet)", _path_fix(key, path))]

    return check


def _path_fix(key: str, path: str) -> str:
    """`did you mean /data/train.csv?` where the folder holds a close name, else how to mend the key."""
    folder, name = os.path.split(path.rstrip(os.sep))
    hint = close_matches(name, os.listdir(folder)) if os.path.isdir(folder) else []
    return f"did you mean {os.path.join(folder, hint[0])}?" if hint else \
        f"correct {key}, or make sure it is there before `autotune run`"


def value_at(config: Mapping[str, Any], path: str) -> Any:
    """The value at the dotted `path` of `config`, None where there is none."""
    value: Any = config
    for key in path.split("."):
        value = value.get(key) if isinstance(value, Mapping) else None
    return value


@dataclass(frozen=True)
class Field:
    """One ingredient key: its type, default and rule.

    `type` is a Python type or a tuple of them (a float field accepts ints; `None` is allowed only when
    `nullable`). `low`/`high` bound numbers (inclusive), `choices` lists the allowed values, `registry` names a
    registry kind whose registered names are the allowed values, `check` is an extra rule returning an error
    text or None. `path=True` marks a file or folder: a relative one is made absolute against the working
    directory when the space is loaded, so trials (whose working directory is their own) and later commands read
    the same file. `keyword=True` marks an argument of the function that the section's `keywords_of` field names
    which not every such function takes (sgd's momentum, simple_cnn's width): given, `check` binds it to that
    function's signature as it binds the keys the section does not list; its default should be None (unset).
    """

    type: type | tuple[type, ...]
    default: Any = REQUIRED
    help: str = ""
    low: float | None = None
    high: float | None = None
    choices: tuple[Any, ...] | None = None
    registry: str | None = None
    nullable: bool = False
    check: Callable[[Any], str | None] | None = None
    path: bool = False
    keyword: bool = False

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


@dataclass(frozen=True)
class Section:
    """One ingredient section (`data`, `model`, ...): a mapping of field names to Fields.

    `open=True` lets the section hold keys the schema does not list (passed through untouched). `keywords_of`
    names the field (one with a `registry`) whose registered function takes those keys as keyword arguments, e.g.
    `keywords_of="arch"`: `check` then binds each of them, and each `keyword` field given, to that function's
    signature (a timm model's: its class's), so a typo, or a key the named function ignores, is a problem with its
    line; it implies `open`. `supplied` lists the
    keyword arguments the recipe passes that function itself (`in_chans`, `num_classes`): not listed among those a
    user may give, and a problem when given, whose fix is to remove it; a mapping gives each its own fix
    (`{"drop_rate": "use model.dropout (passed to timm as drop_rate)"}`, "" to remove it).
    """

    fields: Mapping[str, Field]
    help: str = ""
    open: bool = False
    keywords_of: str | None = None
    supplied: Mapping[str, str] = field(default_factory=dict)  # key -> the fix when given ("": remove it)

    def __init__(self, help: str = "", open: bool = False, keywords_of: str | None = None,
                 supplied: tuple[str, ...] | Mapping[str, str] = (), **fields: Field) -> None:
        if keywords_of is not None and (keywords_of not in fields or fields[keywords_of].registry is None):
            raise ValueError(f"Section keywords_of={keywords_of!r}: name a field of the section that has a registry")
        keywords = [name for name, f in fields.items() if f.keyword]
        if keywords and keywords_of is None:
            raise ValueError(f"Section fields {keywords} are keyword=True: give the section keywords_of, the field "
                             "naming the function they are arguments of")
        object.__setattr__(self, "fields", dict(fields))
        object.__setattr__(self, "help", help)
        object.__setattr__(self, "open", open or keywords_of is not None)
        object.__setattr__(self, "keywords_of", keywords_of)
        object.__setattr__(self, "supplied", dict(supplied) if isinstance(supplied, Mapping) else
                           dict.fromkeys(supplied, ""))

    def defaults(self) -> dict[str, Any]:
        return {k: f.default for k, f in self.fields.items() if not f.required}


@dataclass(frozen=True)
class Schema:
    """The ingredient sections a recipe reads, by name, and what the engine needs to know of its trials: `budget`,
    the dotted key of the number of reports (epochs, rounds, steps) a trial makes at most, which early stopping
    counts in (None: a recipe whose trials cannot be stopped early, searched with FIFO); `metrics`, the metrics
    each report holds with their direction (`max` or `min`), the first the default `search.metric` (empty:
    undeclared, nothing checked); `tests`, the held-out twin of a validation metric that `evaluate` returns;
    `checks`, rules across keys (`held_out`, `needed_with`, or your own `Check`), run over the config of the default
    trial and of every option of every choice, so that `autotune check` reports what no single key shows;
    `warnings`, rules run as `checks` are whose problems do not stop the space (a setting that wastes the search
    rather than breaks it): `autotune check` prints them and `autotune run` logs them before the search starts."""

    sections: Mapping[str, Section] = field(default_factory=dict)
    budget: str | None = None
    metrics: Mapping[str, str] = field(default_factory=dict)
    tests: Mapping[str, str] = field(default_factory=dict)
    checks: tuple[Check, ...] = ()
    warnings: tuple[Check, ...] = ()

    def __init__(self, *, budget: str | None = None, metrics: Mapping[str, str] | None = None,
                 tests: Mapping[str, str] | None = None, checks: tuple[Check, ...] = (),
                 warnings: tuple[Check, ...] = (), **sections: Section) -> None:
        wrong = {name: mode for name, mode in (metrics or {}).items() if mode not in ("max", "min")}
        if wrong:
            raise ValueError(f"Schema metrics: each direction is 'max' or 'min', got {wrong}")
        section, _, key = (budget or "").partition(".")
        if budget is not None and key not in getattr(sections.get(section), "fields", {}):
            known = [f"{n}.{k}" for n, s in sections.items() for k, f in s.fields.items() if f.type is int]
            raise ValueError(f"Schema budget={budget!r}: name the integer field that counts a trial's reports "
                             f"(section.key){f', one of {known}' if known else ''}, or leave budget out")
        object.__setattr__(self, "sections", dict(sections))
        object.__setattr__(self, "budget", budget)
        object.__setattr__(self, "metrics", dict(metrics or {}))
        object.__setattr__(self, "tests", dict(tests or {}))
        object.__setattr__(self, "checks", tuple(checks))
        object.__setattr__(self, "warnings", tuple(warnings))

    def defaults(self) -> dict[str, dict[str, Any]]:
        return {name: s.defaults() for name, s in self.sections.items()}
