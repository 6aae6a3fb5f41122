"""The schema a recipe declares for its ingredients, so a search space is validated before anything runs.

    SCHEMA = Schema(
        data=Section(dataset=Field(str, registry="dataset"), root=Field(str, default="~/.cache/autotune/data")),
        train=Section(epochs=Field(int, default=10, low=1), batch_size=Field(int, default=128, low=1)),
    )

Imports neither ray nor torch: a schema is plain data.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["REQUIRED", "Field", "Section", "Schema"]


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()


@dataclass(frozen=True)
class Field:
    """One ingredient key: its type, default and rule.

    `type` is a Python type or a tuple of them (a float field accepts ints; `None` is allowed only when
    `nullable`). `low`/`high` bound numbers (inclusive), `choices` lists the allowed values, `registry` names a
    registry kind whose registered names are the allowed values, `check` is an extra rule returning an error
    text or None.
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

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


@dataclass(frozen=True)
class Section:
    """One ingredient section (`data`, `model`, ...): a mapping of field names to Fields.

    `open=True` lets the section hold keys the schema does not list (passed through untouched, e.g. extra
    keyword arguments of a timm model).
    """

    fields: Mapping[str, Field]
    help: str = ""
    open: bool = False

    def __init__(self, help: str = "", open: bool = False, **fields: Field) -> None:
        object.__setattr__(self, "fields", dict(fields))
        object.__setattr__(self, "help", help)
        object.__setattr__(self, "open", open)

    def defaults(self) -> dict[str, Any]:
        return {k: f.default for k, f in self.fields.items() if not f.required}


@dataclass(frozen=True)
class Schema:
    """The ingredient sections a recipe reads, by name."""

    sections: Mapping[str, Section] = field(default_factory=dict)

    def __init__(self, **sections: Section) -> None:
        object.__setattr__(self, "sections", dict(sections))

    def defaults(self) -> dict[str, dict[str, Any]]:
        return {name: s.defaults() for name, s in self.sections.items()}
