"""`autotune check SPACE`: validate a search space and print its parameters, without running anything."""
from __future__ import annotations

import argparse
from typing import Any

from autotune.cli.common import HelpFormatter, add_space_arguments
from autotune.space import (
    Choice, Grid, Int, LogUniform, Param, Pow2, QUniform, SearchSettings, Space, Uniform, load_space,
    sampler_arguments,
)
from autotune.space.types import option_texts, param_default

EPILOG = """\
examples:
  autotune check search_spaces/digits.yaml
  autotune check search_spaces/mnist.yaml --set train.epochs=3 --set 'model.dropout={uniform: [0, 0.2]}'
  autotune check my_space.yaml --set search.sampler=random
  autotune check search_spaces/digits.yaml --set optimizer.lr=0.05 --set optimizer.name=adamw

exit status: 0 when the space is valid, 2 with one line per problem (file:line: key: message) when not.
"""


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "check", help="validate a search space and print its parameters", epilog=EPILOG,
        description="Validate a search space against its recipe's schema and print the parameters it searches.",
        formatter_class=HelpFormatter,
    )
    add_space_arguments(parser)
    parser.set_defaults(func=run)


def schema_for(name: str, base: str | None) -> Any:
    """The SCHEMA of recipe `name` (shipped, or a .py path relative to the space file); the shipped recipes import
    torch only inside their functions, so a check takes a fraction of a second."""
    import autotune.recipes

    return autotune.recipes.load_schema(name, base)


def describe(param: Param) -> tuple[str, str]:
    """(distribution, range or options) of a parameter, as the table shows them."""
    dist = param.dist
    if isinstance(dist, (Choice, Grid)):
        return "grid" if isinstance(dist, Grid) else "choice", _listed(option_texts(dist))
    if isinstance(dist, Int):
        text = f"[{dist.low}, {dist.high}]" + (f" step {dist.step}" if dist.step != 1 else "")
        return ("int log" if dist.log else "int"), text
    if isinstance(dist, QUniform):
        return "quniform", f"[{dist.low:g}, {dist.high:g}] step {dist.step:g}"
    if isinstance(dist, Pow2):
        powers = dist.labels
        return "pow2", ", ".join(map(str, powers)) if len(powers) <= 8 else \
            f"{powers[0]}, {powers[1]}, {powers[2]}, ..., {powers[-1]} ({len(powers)} powers)"
    assert isinstance(dist, (Uniform, LogUniform))
    return ("loguniform" if isinstance(dist, LogUniform) else "uniform"), f"[{dist.low:g}, {dist.high:g}]"


def _listed(shown: list[str]) -> str:
    """Options as the table shows them: at most 8, else the first 6 and how many there are."""
    return ", ".join(shown if len(shown) <= 8 else [*shown[:6], f"... ({len(shown)} options)"])


def default_text(param: Param) -> str:
    """The value `autotune train` and the first trial take, and how it was chosen: `0.01 (given in the space)`."""
    value, how = param_default(param)
    return f"{value:.4g} ({how})" if isinstance(value, float) else f"{value} ({how})"


def table(space: Space) -> list[str]:
    from autotune.engine.summary import padded, text_width  # imported when run: every command imports this module

    rows = [("parameter", "distribution", "range / options", "default", "conditional on")]
    for param in space.params:
        condition = ", ".join(f"{name}={label}" for name, label in param.condition)
        rows.append((param.name, *describe(param), default_text(param), condition or "-"))
    widths = [max(text_width(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(padded(cell, w) for cell, w in zip(row, widths)).rstrip() for row in rows]


def _args(kwargs: Any) -> str:
    return f"({', '.join(f'{k}={v}' for k, v in kwargs.items())})" if kwargs else ""


def settings_text(space: Space) -> str:
    """The search settings as `check` prints them: the sampler with the arguments it is built with (autotune's
    defaults among them), the scheduler with the user's, and what `auto` runs for this space."""
    search = space.search
    budget = f", time budget {search.time_budget:g}s" if search.time_budget else ""
    budget += f", a trial fails after {search.trial_timeout:g}s without a report" if search.trial_timeout else ""
    if search.stop:
        modes = search.stop_modes or {}
        targets = " and ".join(f"{m} {'<=' if modes.get(m) == 'min' else '>='} {t:g}" for m, t in search.stop.items())
        budget += f", stop once a trial has {targets}"
    objective = ", ".join(f"{m} ({mode})" for m, mode in zip(search.metric, search.mode))
    sampler = f"{search.sampler}{_args(sampler_arguments(search, space.params))}"
    return (f"search: {objective}; {search.trials} trials, sampler {sampler}, "
            f"scheduler {search.scheduler}{_args(search.scheduler_args)}{_runs_as(space)}, seed {search.seed}"
            f"{budget}\n"
            f"        resources per trial: {search.resources.cpu:g} cpu, {search.resources.gpu:g} gpu"
            f"{''.join(f', {amount:g} {name}' for name, amount in search.resources.custom.items())}; "
            f"max concurrent {search.max_concurrent or 'as resources allow'}")


def _runs_as(space: Space) -> str:
    """What `scheduler: auto` runs for this space (" (hyperband(max_t=8, ...) here)", " (fifo here: ...)"); "" for a
    scheduler named."""
    if space.search.scheduler != "auto":
        return ""
    why = space.stops_nothing()
    if why:
        return f" (fifo here: {why}, so no trial is stopped early)"
    name, args = space.scheduler_run()
    return f" ({name}{_args(args)} here)"


def run(args: argparse.Namespace) -> int:
    space = load_space(args.space, args.overrides, schema_for=schema_for)
    print(f"{space.name}: recipe {space.recipe}, {len(space.params)} parameters")
    if space.params:
        print("\n".join(table(space)))
    print(settings_text(space))
    length = trial_length_text(space)
    if length:
        print(length)
    print(disk_text(space))
    for problem in (*space.one_value(), *space.warnings):
        print(f"warning: {problem}")
    same = space.same_trials()
    if same:
        print(f"warning: {same}")
    generations = _generations_text(space.search)
    if generations:
        print(f"warning: {generations}")
    size = space.grid_size()
    if size is not None:
        trials = space.search.trials
        runs = "" if space.search.sampler != "grid" or trials == size else \
            f" ({size} trials run, each point once; search.trials is {trials})" if trials > size else \
            f" (search.trials is {trials}: {size - trials} points do not run)"
        print(f"grid points: {size}{runs}")
    first = space.first_points()
    if first:
        given = "the default configuration" + (", then search.start" if space.search.start else "") \
            if space.search.default_first and any(p.default for p in space.params) else "search.start"
        print(f"first trials: {len(first)} known configuration(s) ({given}), before the sampler proposes any")
        if len(first) > space.search.trials:
            print(f"warning: search.trials is {space.search.trials}: {len(first) - space.search.trials} of the known "
                  "configurations do not run; raise search.trials to run them all")
    print(export_text(space))
    return 0


NSGA2_POPULATION = 50  # Optuna's NSGAIISampler's default population_size


def _generations_text(search: SearchSettings) -> str:
    """Why NSGA-II cannot evolve in a search of fewer trials than two of its generations ("" when it can): its
    first generation is drawn at random."""
    population = int(search.sampler_args.get("population_size", NSGA2_POPULATION))
    if search.sampler != "nsga2" or search.trials >= 2 * population:
        return ""
    evolves = "never evolves" if search.trials <= population else "barely evolves"
    return (f"search.trials is {search.trials} and nsga2's population_size {population}: its first generation of "
            f"{population} trials is drawn at random, so the search {evolves}; raise search.trials to "
            f"{2 * population} or more, or set search.sampler: {{nsga2: {{population_size: "
            f"{max(2, search.trials // 2)}}}}}")


def trial_length_text(space: Space) -> str:
    """How long a trial runs and what bounds the search's epochs and failures ("" for a recipe without a budget)."""
    if space.budget is None:
        return ""
    search, most = space.search, space.most_planned()
    trials = min(search.trials, space.grid_size() or search.trials) if search.sampler == "grid" else search.trials
    if search.epoch_budget and search.epoch_budget < trials * most:
        total = f"; the trials together at most {search.epoch_budget} epochs (epoch_budget)"
    else:
        unmet = f", under its epoch_budget of {search.epoch_budget}" if search.epoch_budget else ""
        total = f"; the trials together at most {trials * most} epochs ({trials} trials x {most}{unmet})"
    retries = f"; a failed trial retried {search.max_failures} time(s)" if search.max_failures else ""
    return f"        a trial: at most {most} epochs ({space.budget}){total}{retries}"


def disk_text(space: Space) -> str:
    """What bounds the checkpoints the search keeps on disk: Ray keeps a trial's `keep_checkpoints` best and its
    latest, and deletes the others as the trial goes."""
    each = space.search.keep_checkpoints + 1
    return (f"        disk: a trial keeps at most {each} checkpoints (keep_checkpoints {each - 1}, and its latest), "
            f"the search at most {space.search.trials * each} ({space.search.trials} trials x {each}), each the "
            f"model's weights and optimizer state; on a small disk, set search.keep_checkpoints: 1 (docs/"
            f"reliability.md, 'A full disk')")


def export_text(space: Space) -> str:
    """Where `run` exports the best model, or that it exports none (a recipe without export())."""
    import autotune.recipes

    if not hasattr(autotune.recipes.load(space.recipe, space.base_dir), "export"):
        return f"export: none (recipe {space.recipe!r} defines no export())"
    export, margin = space.export, f"by more than {space.export.min_improvement:g}"
    if not export.min_improvement or export.promote == "never":
        return f"export: {export.dir} (promote {export.promote})"
    if export.promote == "if_better":
        return f"export: {export.dir} (promote if_better, {margin})"
    return f"export: {export.dir} (promote always; a retrain, --if-data-changed, promotes if better {margin})"
