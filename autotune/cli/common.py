"""Arguments shared by several sub-commands."""
from __future__ import annotations

import argparse
import math


def add_space_arguments(parser: argparse.ArgumentParser) -> None:
    """SPACE and repeated --set KEY=VALUE overrides."""
    parser.add_argument("space", metavar="SPACE", help="the search space YAML file")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a key of the space (repeatable), e.g. --set train.epochs=3 "
        "or --set 'model.dropout={uniform: [0, 0.2]}'; under a choice of mappings it sets the key in every option "
        "(--set optimizer.lr=0.05), and --set optimizer.name=NAME keeps only the option of that name",
    )


def positive_int(text: str) -> int:
    """argparse type: a whole number >= 1 (--num-cpus)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def non_negative_float(text: str) -> float:
    """argparse type: a finite number >= 0 (--num-gpus; fractions share a GPU)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value
