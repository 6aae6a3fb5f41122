"""Read-only containers for the parsed space: a YAML mapping becomes a `FrozenDict`, a list a tuple.

`types.MappingProxyType` would do, but it cannot be pickled, and Ray pickles the Space into every trial.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

__all__ = ["FrozenDict", "freeze"]


class FrozenDict(Mapping[Any, Any]):
    """A mapping that cannot be changed; equal to a dict with the same items, hashable, picklable."""

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[Any, Any] | None = None) -> None:
        self._data = dict(data or {})

    def __getitem__(self, key: Any) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return repr(self._data)

    def __hash__(self) -> int:
        return hash(frozenset(self._data.items()))

    def __reduce__(self) -> tuple[Any, ...]:
        return FrozenDict, (self._data,)


def freeze(value: Any) -> Any:
    """`value` with every mapping, at any depth, a FrozenDict and every list a tuple."""
    if isinstance(value, Mapping):
        return value if isinstance(value, FrozenDict) else FrozenDict({k: freeze(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    return value
