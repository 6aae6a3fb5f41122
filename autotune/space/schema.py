"""The schema a recipe declares for its ingredients, so a search space is validated before anything runs.

    SCHEMA = Schema(
        data=Section(dataset=Field(str, registry="dataset"), root=Field(str, default="~/.cache/autotune/data")),
        train=Section(epochs=Field(int, default=10, low=1), batch_size=Field(int, default=128, low=1)),
        budget="train.epochs",                                   # the key of the reports a trial makes at most
        metrics={"val_accuracy": "max", "val_loss": "min"},      # what each report holds, and which way is better
        tests={"val_accuracy": "test_accuracy"},                 # the held-out twin `evaluate` measures
    )

Imports neither ray nor torch: a schema is plain data.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["REQUIRED", "Field", "Section", "Schema", "positive"]


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()


def positive(value: float) -> str | None:
    """A Field `check`: numbers above 0 (`low` bounds inclusively)."""
    return None if value > 0 else "must be > 0"


@dataclass(frozen=True)
class Field:
    """One ingredient key: its type, default and rule.

    `type` is a Python type or a tuple of them (a float field accepts ints; `None` is allowed only when
    `nullable`). `low`/`high` bound numbers (inclusive), `choices` lists the allowed values, `registry` names a
    registry kind whose registered names are the allowed values, `check` is an extra rule returning an error
    text or None. `path=True` marks a file or folder: a relative one is made absolute against the working
    directory when the space is loaded, so trials (whose working directory is their own) and later commands read
    the same file.
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

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


@dataclass(frozen=True)
class Section:
    """One ingredient section (`data`, `model`, ...): a mapping of field names to Fields.

    `open=True` lets the section hold keys the schema does not list (passed through untouched). `keywords_of`
    names the field (one with a `registry`) whose registered function takes those keys as keyword arguments, e.g.
    `keywords_of="arch"`: `check` then binds each of them to that function's signature (a timm model's: its
    class's), so a typo is a problem with its line and the closest name; it implies `open`. `supplied` lists the
    keyword arguments the recipe passes that function itself (`in_chans`, `num_classes`): not listed among those a
    user may give, and a problem when given.
    """

    fields: Mapping[str, Field]
    help: str = ""
    open: bool = False
    keywords_of: str | None = None
    supplied: tuple[str, ...] = ()

    def __init__(self, help: str = "", open: bool = False, keywords_of: str | None = None,
                 supplied: tuple[str, ...] = (), **fields: Field) -> None:
        if keywords_of is not None and (keywords_of not in fields or fields[keywords_of].registry is None):
            raise ValueError(f"Section keywords_of={keywords_of!r}: name a field of the section that has a registry")
        object.__setattr__(self, "fields", dict(fields))
        object.__setattr__(self, "help", help)
        object.__setattr__(self, "open", open or keywords_of is not None)
        object.__setattr__(self, "keywords_of", keywords_of)
        object.__setattr__(self, "supplied", tuple(supplied))

    def defaults(self) -> dict[str, Any]:
        return {k: f.default for k, f in self.fields.items() if not f.required}


@dataclass(frozen=True)
class Schema:
    """The ingredient sections a recipe reads, by name, and what the engine needs to know of its trials: `budget`,
    the dotted key of the number of reports (epochs, rounds, steps) a trial makes at most, which early stopping
    counts in (None: a recipe whose trials cannot be stopped early, searched with FIFO); `metrics`, the metrics
    each report holds with their direction (`max` or `min`), the first the default `search.metric` (empty:
    undeclared, nothing checked); `tests`, the held-out twin of a validation metric that `evaluate` returns."""

    sections: Mapping[str, Section] = field(default_factory=dict)
    budget: str | None = None
    metrics: Mapping[str, str] = field(default_factory=dict)
    tests: Mapping[str, str] = field(default_factory=dict)

    def __init__(self, *, budget: str | None = None, metrics: Mapping[str, str] | None = None,
                 tests: Mapping[str, str] | None = None, **sections: Section) -> None:
        wrong = {name: mode for name, mode in (metrics or {}).items() if mode not in ("max", "min")}
        if wrong:
            raise ValueError(f"Schema metrics: each direction is 'max' or 'min', got {wrong}")
        object.__setattr__(self, "sections", dict(sections))
        object.__setattr__(self, "budget", budget)
        object.__setattr__(self, "metrics", dict(metrics or {}))
        object.__setattr__(self, "tests", dict(tests or {}))

    def defaults(self) -> dict[str, dict[str, Any]]:
        return {name: s.defaults() for name, s in self.sections.items()}
