"""`autotune ls [KIND] [PATTERN]`: what is registered (models, datasets, ...) and the shipped recipes."""
from __future__ import annotations

import argparse
import fnmatch
from typing import Any

from autotune import registry
from autotune.errors import UnknownNameError

EPILOG = """\
examples:
  autotune ls                      the kinds and how many names each has
  autotune ls models               registered models
  autotune ls models 'res*'        models matching a pattern (timm's models too)
  autotune ls datasets             image datasets, then the tabular recipe's tables
  autotune ls recipes
"""


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "ls", help="list registered names (models, datasets, ...) and recipes", epilog=EPILOG,
        description="List what a search space can name: registered components and shipped recipes.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("kind", nargs="?", metavar="KIND", help="models, datasets, optimizers, recipes, ...")
    parser.add_argument("pattern", nargs="?", default="*", metavar="PATTERN", help="a glob, e.g. 'res*'")
    parser.set_defaults(func=run)


def _recipes(pattern: str) -> list[str]:
    import autotune.recipes

    return [n for n in autotune.recipes.available() if fnmatch.fnmatchcase(n, pattern)]


def _kind(word: str) -> str:
    """`models` or `model` -> "model"; an unknown kind lists the close ones."""
    known = [*registry.kinds(), "recipe"]
    for candidate in (word, word[:-1] if word.endswith("s") else word):
        if candidate in known:
            return candidate
    hint = registry.close_matches(word, [*known, *(k + "s" for k in known)])
    fix = f"did you mean {hint[0]!r}?" if hint else f"kinds: {', '.join(k + 's' for k in known)}"
    raise UnknownNameError(f"unknown kind {word!r}; {fix}")


def run(args: argparse.Namespace) -> int:
    if args.kind is None:
        for kind in registry.kinds():
            print(f"{kind + 's':<14} {len(registry.names(kind))}")
        print(f"{'recipes':<14} {len(_recipes('*'))}")
        return 0
    kind = _kind(args.kind)
    if kind == "recipe":
        found = _recipes(args.pattern)
    else:
        # a library's fallback names (timm: >1000 models) are listed only for a pattern
        found = registry.names(kind, args.pattern, include_fallback=args.pattern != "*")
    print("\n".join(found) if found else f"no {kind}s match {args.pattern!r}")
    if kind == "dataset":
        _tables(args.pattern)
    return 0


def _tables(pattern: str) -> None:
    """The tables the tabular recipe names in its `data.dataset` (not registered datasets: those are images)."""
    from autotune.tabular.catalog import DATASET_NAMES, DATASETS

    found = [name for name in DATASET_NAMES if fnmatch.fnmatchcase(name, pattern)]
    if found:
        print("\ntables (recipe: tabular, data.dataset):")
        for name in found:
            print(f"  {name:<14} {DATASETS.get(name, 'your CSV or Parquet file: data.path, data.target')}")
