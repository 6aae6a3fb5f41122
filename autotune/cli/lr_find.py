"""`autotune lr-find SPACE`: the learning-rate range test on the space's default configuration, without Ray."""
from __future__ import annotations

import argparse
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autotune.cli.common import HelpFormatter, add_space_arguments, check_out_file, default_values, one_configuration
from autotune.errors import UserError
from autotune.paths import expanded, room_for

if TYPE_CHECKING:
    from autotune.vision.lr_find import Sweep

MIN_STEPS = 10  # fewer batches leave too few losses to smooth

EPILOG = """\
examples:
  autotune lr-find search_spaces/digits.yaml                       the space's default configuration
  autotune lr-find search_spaces/mnist.yaml --set data.dataset=idx --set data.root=PATH/TO/MNIST
                                    MNIST's IDX files in a folder of your own, offline
  autotune lr-find search_spaces/digits.yaml --set optimizer.name=adamw --out adamw_lr.png

About 100 training batches at learning rates growing exponentially from --start to --end (fastai's range test,
Smith 2017); the loss is smoothed, and the sweep stops where it diverges. The suggested rate is a decade below the
one of least loss; the printed `lr:` line is a search range around it, with it as the default (a search's first
trial, and what `autotune train` trains), to paste into the space's optimizer section. A note follows the
suggestion where the sweep's shape makes it doubtful: the loss rose from the first rate (all rates too high),
hardly fell (nothing trained), or was still falling at the last rate. The plot (--out, default lr_find.png) shows
the loss against the rate.
"""


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "lr-find", help="suggest a learning rate (the LR range test), without Ray", epilog=EPILOG,
        description="Run the learning-rate range test on a space's default configuration: print a suggested "
        "learning rate and a search range, and plot the loss against the learning rate.",
        formatter_class=HelpFormatter,
    )
    add_space_arguments(parser)
    parser.add_argument("--out", default="lr_find.png", metavar="PNG",
                        help="the plot (default lr_find.png); its suffix names the format: .png, .svg, .pdf, ...")
    parser.add_argument("--steps", type=int, default=100,
                        help=f"training batches in the sweep, >= {MIN_STEPS} (default 100)")
    parser.add_argument("--start", type=float, default=1e-6, help="the first learning rate, > 0 (default 1e-6)")
    parser.add_argument("--end", type=float, default=1.0,
                        help="the last learning rate, greater than --start (default 1)")
    parser.set_defaults(func=run)


def check_sweep(start: float, end: float, steps: int) -> None:
    """The sweep's options, one rule each: a UserError naming the value that breaks it."""
    if not (math.isfinite(start) and start > 0):
        raise UserError(f"--start must be a learning rate > 0, got {start:g}; e.g. --start 1e-6")
    if not (math.isfinite(end) and end > start):
        raise UserError(f"--end must be a finite learning rate greater than --start ({start:g}), got {end:g}; "
                        "e.g. --end 1")
    if steps < MIN_STEPS:
        raise UserError(f"--steps must be >= {MIN_STEPS} (the loss is smoothed over the sweep), got {steps}; "
                        "e.g. --steps 100")


def check_plot_file(out: str) -> None:
    """--out, before the sweep: a file that can be written, in an image format matplotlib writes (its suffix)."""
    from matplotlib.figure import Figure

    formats = sorted(Figure().canvas.get_supported_filetypes())
    suffix = Path(out).suffix.lower().removeprefix(".")
    if suffix not in formats:
        what = f"its suffix .{suffix} is not" if suffix else "it has no suffix to name"
        raise UserError(f"--out {out!r}: {what} an image format matplotlib can write; end it in one of "
                        f"{', '.join('.' + f for f in formats)}, e.g. --out lr_find.png")
    check_out_file(out, "--out", "--out lr_find.png")


def notes(sweep: Sweep) -> list[str]:
    """What the sweep's shape says about its suggestion: each a sentence with the option that sweeps better."""
    if sweep.rose_from_start:
        return ["the loss was least at the sweep's first rates and rose from there: every rate swept was too high, "
                "and the suggestion, below them, was not tried; sweep lower rates with "
                f"--start {sweep.lrs[0] / 100:.3g}"]
    found = []
    if sweep.hardly_fell:
        found.append(f"the loss hardly fell ({sweep.losses[0]:.4f} at the first rate, {min(sweep.losses):.4f} at "
                     f"the least): no rate trained the model in {len(sweep.lrs)} batches, so the suggestion follows "
                     "the noise; sweep more batches (--steps), or check that the configuration trains (a frozen "
                     "backbone trains its classifier alone)")
    if sweep.still_falling:
        found.append(f"the loss was least at the sweep's last rates and may fall further: the suggestion may be low; "
                     f"sweep higher rates with --end {sweep.lrs[-1] * 100:.3g}")
    return found


def where_to_paste(option: Any) -> str:
    """Where the `lr:` range goes: the space's optimizer section, or under a choice of optimizers the option the
    sweep trained (the default one), whose range suits it alone."""
    if option is None:
        return "paste into the space's optimizer section:"
    return (f"the sweep trained optimizer {option!r}, the default option of the space's optimizer choice; the other "
            "options want rates of their own (--set optimizer.lr=... sets every option's)\n"
            f"paste into the {option!r} option of the space's optimizer section:")


def run(args: argparse.Namespace) -> int:
    from autotune import recipes
    from autotune.vision.lr_find import plot

    check_sweep(args.start, args.end, args.steps)
    check_plot_file(args.out)
    space = one_configuration(args.space, args.overrides)
    recipe = recipes.load(space.recipe, space.base_dir)
    if not hasattr(recipe, "lr_find"):
        raise UserError(f"recipe {space.recipe!r} has no lr_find(config, data, start=, end=, steps=): the range "
                        "test needs the recipe's model and batches")
    values = default_values(space)
    config = space.config(values)
    data = recipes.load_data(recipe, recipes.data_section(recipe, config))
    began = time.perf_counter()
    sweep = recipes.call(recipe, "lr_find", config, data, start=args.start, end=args.end, steps=args.steps)
    low, high = sweep.search_range
    print(f"{len(sweep.lrs)} batches in {time.perf_counter() - began:.1f} s; least smoothed loss "
          f"{min(sweep.losses):.4f} at lr {sweep.best_lr:.3g}")
    print(f"suggested learning rate: {sweep.suggestion:.3g}")
    for note in notes(sweep):
        print(f"note: {note}")
    with room_for("the plot", expanded(args.out).absolute().parent,
                  "free space there, or give --out a file on another disk"):
        print(f"plot: {plot(sweep, args.out)}")
    print(where_to_paste(values.get("optimizer")))
    print(f"  lr: {{loguniform: [{low:.1e}, {high:.1e}], default: {sweep.suggestion:.1e}}}")
    return 0
