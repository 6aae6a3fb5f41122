"""timm-style registries: a string in a config names a function registered with a decorator.

    @autotune.register("dataset")
    def my_images(root: str, **kw): ...

A duplicate name is an error; an unknown name lists the closest registered ones.
"""
from __future__ import annotations

import difflib
import fnmatch
import importlib
import inspect
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from autotune.errors import UnknownNameError, UserError

__all__ = ["register", "get", "names", "kinds", "exists", "check_name", "add_fallback", "close_matches", "parameters",
           "required", "forget_module", "Registration", "entries_outside", "restore"]

F = TypeVar("F", bound=Callable[..., Any])
# (kind, name, function): one registration, as `entries_outside` lists them for `restore`
Registration = tuple[str, str, Callable[..., Any]]

# Modules that register autotune's built-in components; imported on first lookup or registration (so that a
# user's name that clashes with a built-in one is the second registration, reported in the user's file), never at
# import time. Each is cheap to import: torch loads inside the functions.
_BUILTIN_MODULES = ("autotune.vision.datasets", "autotune.vision.models", "autotune.vision.optimizers")

_entries: dict[str, dict[str, Callable[..., Any]]] = {}
# kind -> (lookup(name) -> fn | None, list_names(pattern) -> names): e.g. every timm model is a "model".
_fallbacks: dict[str, tuple[Callable[[str], Callable[..., Any] | None], Callable[[str], list[str]]]] = {}
# kind -> keywords(name) -> the keyword arguments a fallback's function takes (None: any), where it can be known
_fallback_keywords: dict[str, Callable[[str], tuple[str, ...] | None]] = {}
_builtins_loaded = False


def _load_builtins() -> None:
    global _builtins_loaded
    if not _builtins_loaded:
        _builtins_loaded = True
        for module in _BUILTIN_MODULES:
            importlib.import_module(module)


def register(kind: str, name: str | None = None) -> Callable[[F], F]:
    """Register the decorated function under `name` (default: its `__name__`) in registry `kind`."""

    def decorator(fn: F) -> F:
        _load_builtins()  # a notebook's cell run again defines its function again: it replaces the earlier one
        _add(kind, name or fn.__name__, fn, again=getattr(fn, "__module__", None) == "__main__")
        return fn

    return decorator


def _add(kind: str, key: str, fn: Callable[..., Any], *, again: bool) -> None:
    """Put `fn` in registry `kind` as `key`. UserError when another function has that name, unless `again` and
    that one is `fn` as an earlier unpickling, or an earlier run of a notebook's cell, made it (the same module and
    name)."""
    table = _entries.setdefault(kind, {})
    known = table.get(key)
    if known is not None and known is not fn and not (again and _where(known) == _where(fn)):
        raise UserError(
            f"{kind} {key!r} is registered twice: by {_origin(known)} and by {_origin(fn)}; "
            f"give the second another name with register({kind!r}, name=...)"
        )
    table[key] = fn


def _where(fn: Callable[..., Any]) -> tuple[str | None, str | None]:
    """(module, qualified name) of `fn`."""
    return getattr(fn, "__module__", None), getattr(fn, "__qualname__", None)


def entries_outside(modules: Iterable[str]) -> list[Registration]:
    """What was registered by neither autotune's own modules nor `modules` (a space's recipe and `custom:` file),
    as (kind, name, function): a user's script or notebook (`__main__`) or package, which another process (a Ray
    trial) does not import by itself. Give it to `restore` there."""
    skip = set(modules)
    return [(kind, key, fn) for kind, table in _entries.items() for key, fn in table.items()
            if (module := _where(fn)[0]) not in skip and not str(module).startswith("autotune.")]


def restore(entries: Iterable[Registration]) -> None:
    """Register `entries` (from `entries_outside`, in another process) again. A process that restores the same
    entries twice (a Ray worker runs several trials, each unpickling them afresh) keeps the latest; a name that
    another function holds is an error, as in `register`."""
    _load_builtins()
    for kind, key, fn in entries:
        _add(kind, key, fn, again=True)


def forget_module(module_name: str) -> None:
    """Drop what the functions of module `module_name` registered: its file is imported afresh, and registers
    them again."""
    for table in _entries.values():
        for key in [key for key, fn in table.items() if getattr(fn, "__module__", None) == module_name]:
            del table[key]


def _origin(fn: Callable[..., Any]) -> str:
    """Where `fn` comes from: `autotune.vision.models.mlp` for autotune's own, `mlp (my_functions.py, line 4)`
    for a user's function or class (its file's module has a made-up name)."""
    module = str(getattr(fn, "__module__", ""))
    where = None if module.startswith("autotune.") else _source_line(inspect.unwrap(fn))
    if where is None:
        return f"{module}.{fn.__qualname__}"
    return f"{fn.__qualname__} ({Path(where[0]).name}, line {where[1]})"


def _source_line(fn: Callable[..., Any]) -> tuple[str, int] | None:
    """(file, first line) of a function's or a class's definition; None where Python keeps none (a builtin)."""
    code = getattr(fn, "__code__", None)
    if code is not None:
        return code.co_filename, code.co_firstlineno
    try:
        return inspect.getsourcefile(fn) or inspect.getfile(fn), inspect.getsourcelines(fn)[1]
    except (OSError, TypeError):
        return None


def add_fallback(
    kind: str, lookup: Callable[[str], Callable[..., Any] | None], list_names: Callable[[str], list[str]],
    keywords: Callable[[str], tuple[str, ...] | None] | None = None,
) -> None:
    """Let `kind` also resolve names that a library knows (e.g. timm models) without registering each; `keywords`
    tells the keyword arguments such a name's function takes, where its own signature (`**kwargs`) does not."""
    _fallbacks[kind] = (lookup, list_names)
    if keywords is not None:
        _fallback_keywords[kind] = keywords


def parameters(kind: str, name: str) -> tuple[str, ...] | None:
    """The keyword arguments the function registered as `name` takes; None when it takes any (`**kwargs`, where
    no fallback knows better) or `name` is unknown (`check_name` reports that)."""
    _load_builtins()
    fn = _entries.get(kind, {}).get(name)
    if fn is None:
        keywords = _fallback_keywords.get(kind)
        if kind not in _fallbacks or _fallbacks[kind][0](name) is None:
            return None
        return keywords(name) if keywords is not None else None
    params = inspect.signature(fn).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return tuple(p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))


def defaults(kind: str, name: str) -> dict[str, Any]:
    """The default values of the keyword arguments of the function registered as `name` (none for a fallback's
    names, or an unknown name)."""
    _load_builtins()
    fn = _entries.get(kind, {}).get(name)
    if fn is None:
        return {}
    return {p.name: p.default for p in inspect.signature(fn).parameters.values()
            if p.default is not inspect.Parameter.empty}


def required(kind: str, name: str) -> tuple[str, ...]:
    """The arguments without a default of the function registered as `name`, but its first, which its recipe
    passes (a dataset's root, a model's in_chans, an optimizer's params); none for a fallback's names (timm's) or an
    unknown name."""
    _load_builtins()
    fn = _entries.get(kind, {}).get(name)
    if fn is None:
        return ()
    params = [p for p in inspect.signature(fn).parameters.values() if p.kind is not p.VAR_POSITIONAL][1:]
    return tuple(p.name for p in params if p.default is p.empty and p.kind is not p.VAR_KEYWORD)


def kinds() -> list[str]:
    """The registry kinds that have at least one entry."""
    _load_builtins()
    return sorted(set(_entries) | set(_fallbacks))


def names(kind: str, pattern: str = "*", *, include_fallback: bool = False) -> list[str]:
    """Registered names of `kind` matching the glob `pattern`, sorted."""
    _load_builtins()
    found = {n for n in _entries.get(kind, {}) if fnmatch.fnmatchcase(n, pattern)}
    if include_fallback and kind in _fallbacks:
        found.update(_fallbacks[kind][1](pattern))
    return sorted(found)


def exists(kind: str, name: str) -> bool:
    _load_builtins()
    if name in _entries.get(kind, {}):
        return True
    return kind in _fallbacks and _fallbacks[kind][0](name) is not None


SHORTENED = 4  # a word this long or longer that begins candidates is a name cut short (val_f1: val_f1_macro)


def close_matches(word: str, candidates: list[str] | tuple[str, ...], n: int = 3) -> list[str]:
    """The candidates closest to `word` (typos, case), best first: those it begins, shortest first, when it is at
    least SHORTENED characters long (a name cut short, which a typo's measure ranks below a name as long as it is:
    val_f1 is nearer val_r2 than val_f1_macro), then the others."""
    lowered = {c.lower(): c for c in candidates}
    key = word.lower()
    longer = sorted((c for c in lowered if len(key) >= SHORTENED and len(c) > len(key) and c.startswith(key)), key=len)
    hits = difflib.get_close_matches(key, list(lowered), n=n, cutoff=0.6)
    return [lowered[h] for h in dict.fromkeys([*longer, *hits])][:n]


def check_name(kind: str, name: str) -> str | None:
    """None when `name` is a known `kind`, else the text of the error (with the closest names)."""
    if exists(kind, name):
        return None
    known = names(kind, include_fallback=True)
    hint = close_matches(name, known)
    text = f"unknown {kind} {name!r}"
    if hint:
        text += "; did you mean " + " or ".join(repr(h) for h in hint) + "?"
    else:
        text += f"; see `autotune ls {kind}s` for the registered names"
    return text


def get(kind: str, name: str) -> Callable[..., Any]:
    """The function registered as `name` in `kind`; UnknownNameError lists the closest names."""
    _load_builtins()
    fn = _entries.get(kind, {}).get(name)
    if fn is None and kind in _fallbacks:
        fn = _fallbacks[kind][0](name)
    if fn is None:
        raise UnknownNameError(check_name(kind, name))
    return fn
