"""`autotune ls [KIND] [PATTERN]`: what is registered (models, datasets, ...) and the shipped recipes, and the keys
one recipe reads."""
from __future__ import annotations

import argparse
import fnmatch
import json
import shutil
import textwrap
from typing import Any

from autotune import registry
from autotune.cli.common import HelpFormatter
from autotune.errors import UnknownNameError, UserError
from autotune.space import Field, Schema, type_text

EPILOG = """\
examples:
  autotune ls                         the kinds and how many names each has
  autotune ls models                  registered models
  autotune ls models 'res*'           models matching a pattern (timm's models too)
  autotune ls datasets                image datasets, then the tabular recipe's tables
  autotune ls recipes
  autotune ls recipes tabular         the keys the tabular recipe reads: type, default, what each does
  autotune ls recipes my_recipe.py    the keys of your own recipe (its SCHEMA)
  autotune ls runs                    the runs in runs/, newest first: status, best trial, model, disk, checkpoints
  autotune ls runs /srv/runs          the runs of another storage folder
  autotune ls versions models/digits  a canonical model's exports and rollbacks: run, trial, decision, kept or not
"""


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "ls", help="list registered names (models, datasets, ...) and recipes", epilog=EPILOG,
        description="List what a search space can name: registered components and shipped recipes; or the runs of a "
                    "storage folder, or the versions of a canonical model.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("kind", nargs="?", metavar="KIND",
                        help="models, datasets, optimizers, recipes, ...; runs; versions")
    parser.add_argument("pattern", nargs="?", default="*", metavar="PATTERN",
                        help="a glob, e.g. 'res*'; for runs, their storage folder (default runs); for "
                             "versions, the canonical model (models/NAME)")
    parser.set_defaults(func=run)


def _recipes(pattern: str) -> list[str]:
    import autotune.recipes

    return [n for n in autotune.recipes.available() if fnmatch.fnmatchcase(n, pattern)]


def _kind(word: str) -> str:
    """`models` or `model` -> "model"; an unknown kind lists the close ones, among them the listings of folders
    (runs, versions) that `run` answers before asking here."""
    known = [*registry.kinds(), "recipe"]
    for candidate in (word, word[:-1] if word.endswith("s") else word):
        if candidate in known:
            return candidate
    kinds = [*known, "run", "version"]
    hint = registry.close_matches(word, [*kinds, *(k + "s" for k in kinds)])
    fix = f"did you mean {hint[0]!r}?" if hint else f"kinds: {', '.join(k + 's' for k in kinds)}"
    raise UnknownNameError(f"unknown kind {word!r}; {fix}")


def run(args: argparse.Namespace) -> int:
    if args.kind is None:
        for kind in registry.kinds():
            print(f"{kind + 's':<14} {len(registry.names(kind))}")
        print(f"{'recipes':<14} {len(_recipes('*'))}")
        return 0
    if args.kind in ("runs", "run"):
        from autotune.cli.ls_runs import list_runs  # pandas, through the summary's table: not for every command

        list_runs("runs" if args.pattern == "*" else args.pattern)
        return 0
    if args.kind in ("versions", "version"):
        if args.pattern == "*":
            raise UserError("give the canonical model whose versions to list: `autotune ls versions models/digits`")
        from autotune.cli.ls_versions import list_versions

        list_versions(args.pattern)
        return 0
    kind = _kind(args.kind)
    if kind == "recipe" and (args.pattern in _recipes("*") or args.pattern.endswith(".py")):
        _keys(args.pattern)
        return 0
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


def _keys(recipe: str) -> None:
    """The keys recipe `recipe` (a shipped name or a .py file) reads, by section (its SCHEMA): each one's type,
    default and help, then the metrics its reports hold."""
    from autotune.recipes import load_schema

    schema = load_schema(recipe)
    width = min(shutil.get_terminal_size((100, 24)).columns, 120)
    print(f"recipe {recipe}: the keys a search space sets (section.key: type, default; what it does)")
    for name, section in schema.sections.items():
        print(f"\n{name}:" + (f" {section.help}" if section.help else ""))
        for key, field in section.fields.items():
            print(textwrap.fill(f"{name}.{key}: {_field_text(field)}", width, initial_indent="  ",
                                subsequent_indent="      "))
    print("")
    print(textwrap.fill(f"metrics (search.metric): {_metrics(schema)}", width, subsequent_indent="  "))


def _field_text(field: Field) -> str:
    """A key as `autotune ls recipes NAME` lists it: "a number in [0, 0.9], default 0.1; share of the rows ..."."""
    kind = ("one of " + ", ".join(json.dumps(choice, default=str) for choice in field.choices) if field.choices
            else f"a registered {field.registry} name" if field.registry else type_text(field.type))
    if field.low is not None or field.high is not None:
        low, high = ("" if bound is None else f"{bound:g}" for bound in (field.low, field.high))
        kind += f" in [{low}, {high}]"
    default = "required" if field.required else f"default {json.dumps(field.default, default=str)}"
    return f"{kind}{' or null' if field.nullable else ''}, {default}" + (f"; {field.help}" if field.help else "")


def _metrics(schema: Schema) -> str:
    """The metrics a recipe's reports hold with their direction, the first the default; its budget key."""
    metrics = ", ".join(f"{name} ({mode})" for name, mode in schema.metrics.items()) or "not declared"
    return metrics + (f"; early stopping counts {schema.budget}" if schema.budget else "; trials not stopped early")
