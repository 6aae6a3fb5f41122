"""The search-space language: a YAML file of ingredients and distributions -> a validated, typed `Space`.

    space = load_space("search_spaces/digits.yaml", ["train.epochs=3"],
                       schema_for=autotune.recipes.load_schema)
    values, how = space.defaults()
    config = space.config(values)

Imports neither ray nor torch.
"""
from __future__ import annotations

from autotune.errors import Problem, SpaceError
from autotune.space._parse import dist_kind, type_text
from autotune.space._rules import SEARCH_ONLY, search_only
from autotune.space._settings import guessed_mode, sampler_arguments
from autotune.space.loader import import_custom, load_space
from autotune.space.schema import REQUIRED, Field, Schema, Section
from autotune.space.types import (
    Choice, Distribution, ExportSettings, Grid, Int, Label, LogUniform, Param, Pow2, QUniform, Resources,
    SearchSettings, Space, Uniform,
)

__all__ = [
    "load_space", "import_custom", "Space", "Param", "Label", "Distribution", "Uniform", "LogUniform", "Int",
    "QUniform", "Pow2", "Choice", "Grid", "Resources", "SearchSettings", "ExportSettings", "Schema", "Section",
    "Field", "REQUIRED", "Problem", "SpaceError", "SEARCH_ONLY", "search_only", "sampler_arguments", "dist_kind", "type_text",
    "guessed_mode",
]
