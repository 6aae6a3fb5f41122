"""`autotune lr-find SPACE`: the learning-rate range test on the space's default configuration, without Ray."""
from __future__ import annotations

import argparse
import time
from typing import Any

from autotune.cli.common import add_space_arguments

EPILOG = """\
examples:
  autotune lr-find search_spaces/digits.yaml                       the space's default configuration
  autotune lr-find search_spaces/mnist.yaml --set data.dataset=idx --set data.root=../shared/data/mnist
  autotune lr-find search_spaces/digits.yaml --set optimizer.name=adamw --out adamw_lr.png

About 100 training batches at learning rates growing exponentially from --start to --end (fastai's range test,
Smith 2017); the loss is smoothed, and the sweep stops where it diverges. The suggested rate is a decade below the
one of least loss; the printed `lr:` line is a search range around it, to paste into the space's optimizer
section. The plot (--out, default lr_find.png) shows the loss against the rate.
"""


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "lr-find", help="suggest a learning rate (the LR range test), without Ray", epilog=EPILOG,
        description="Run the learning-rate range test on a space's default configuration: print a suggested "
        "learning rate and a search range, and plot the loss against the learning rate.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_space_arguments(parser)
    parser.add_argument("--out", default="lr_find.png", metavar="PNG", help="the plot (default lr_find.png)")
    parser.add_argument("--steps", type=int, default=100, help="training batches in the sweep (default 100)")
    parser.add_argument("--start", type=float, default=1e-6, help="the first learning rate (default 1e-6)")
    parser.add_argument("--end", type=float, default=1.0, help="the last learning rate (default 1)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from autotune import recipes
    from autotune.api import load_space
    from autotune.errors import UserError
    from autotune.vision.lr_find import plot

    if not 0 < args.start < args.end or args.steps < 10:
        raise UserError(f"need 0 < --start < --end and --steps >= 10, got {args.start}, {args.end}, {args.steps}")
    space = load_space(args.space, args.overrides)
    recipe = recipes.load(space.recipe, space.base_dir)
    if not hasattr(recipe, "lr_find"):
        raise UserError(f"recipe {space.recipe!r} has no lr_find(config, data, start=, end=, steps=): the range "
                        "test needs the recipe's model and batches")
    values, _ = space.defaults()
    config = space.config(values)
    data = recipes.load_data(recipe, recipes.data_section(recipe, config))
    began = time.perf_counter()
    try:
        sweep = recipe.lr_find(config, data, start=args.start, end=args.end, steps=args.steps)
    except ValueError as err:
        raise UserError(f"lr-find: {err}") from None
    low, high = sweep.search_range
    print(f"{len(sweep.lrs)} batches in {time.perf_counter() - began:.1f} s; least smoothed loss "
          f"{min(sweep.losses):.4f} at lr {sweep.best_lr:.3g}")
    print(f"suggested learning rate: {sweep.suggestion:.3g}")
    print(f"plot: {plot(sweep, args.out)}")
    print("paste into the space's optimizer section:")
    print(f"  lr: {{loguniform: [{low:.1e}, {high:.1e}]}}")
    return 0
