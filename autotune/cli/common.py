"""Arguments shared by several sub-commands."""
from __future__ import annotations

import argparse


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
        "or --set 'model.dropout={uniform: [0, 0.2]}'",
    )
