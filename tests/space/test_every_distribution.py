"""Every distribution of the language, through every place that handles one: a distribution added to
`Distribution` without an example here fails, and so does one that a handler forgot (check's table, the defaults,
fit_value, Optuna's suggest), instead of a traceback in a user's `check` or search."""
from __future__ import annotations

from typing import get_args

import optuna
import pytest

from autotune.cli.check import describe
from autotune.engine.optuna_space import suggest
from autotune.space import Choice, Distribution, Grid, Int, LogUniform, Param, Pow2, QUniform, Uniform
from autotune.space.points import fit_value
from autotune.space.types import default_value, varies

EXAMPLES = {
    Uniform: Uniform(0.0, 1.0), LogUniform: LogUniform(1e-4, 1e-1), Int: Int(1, 9, 2),
    QUniform: QUniform(0.0, 1.0, 0.25), Pow2: Pow2(16, 256), Choice: Choice(("a", "b"), ("a", "b")), Grid: Grid((1, 2), (1, 2)),
}


def test_every_distribution_has_an_example():
    assert set(EXAMPLES) == set(get_args(Distribution))


@pytest.mark.parametrize("kind", list(EXAMPLES), ids=lambda kind: kind.__name__)
def test_every_distribution_is_shown_defaulted_fitted_and_suggested(kind):
    dist = EXAMPLES[kind]
    name, shown = describe(Param("x", dist))
    assert name and shown and varies(dist)
    value, _ = default_value(dist)
    assert fit_value(dist, value) == (value, None, "")
    trial = optuna.trial.FixedTrial({"x": value})
    assert suggest(trial, Param("x", dist)) == value
