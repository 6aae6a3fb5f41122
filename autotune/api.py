"""The Python API: `load_space` and `fit`.

    result = autotune.fit("search_spaces/digits.yaml", overrides=["search.trials=8"], num_cpus=2)
    print(result.best_config, result.best_metrics, result.model_dir)
"""
from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from autotune import recipes
from autotune.errors import AutotuneError, UserError
from autotune.preflight import check_address, preflight
from autotune.space import Space
from autotune.space import load_space as _load_space

__all__ = ["fit", "load_space", "SearchFailed", "pareto_front"]

log = logging.getLogger("autotune")


class SearchFailed(AutotuneError):
    """Every trial failed: no model to export. The message holds the first trial's own error."""

    exit_code = 1


def _schema_for(name: str, base: str | None) -> Any:
    return recipes.load(name, base).SCHEMA


def load_space(source: str | Path | Mapping[str, Any] | Space, overrides: Iterable[str] | None = None) -> Space:
    """Read and validate a search space (a YAML path, a YAML string or a dict) against its recipe's schema."""
    if isinstance(source, Space):
        return source
    return _load_space(source, tuple(overrides or ()), schema_for=_schema_for)


def pareto_front(trials: pd.DataFrame, metric: tuple[str, ...], mode: tuple[str, ...]) -> list[dict[str, Any]]:
    """The trials no other trial beats on every metric at once (multi-objective searches)."""
    sign = [1.0 if m == "max" else -1.0 for m in mode]
    points = [
        (row, [s * float(row[name]) for name, s in zip(metric, sign)])
        for row in trials.to_dict("records")
        if all(isinstance(row.get(n), (int, float)) and math.isfinite(row[n]) for n in metric)
    ]

    def dominated(p: list[float]) -> bool:
        return any(all(a >= b for a, b in zip(q, p)) and any(a > b for a, b in zip(q, p)) for _, q in points)

    return [row for row, p in points if not dominated(p)]


def fit(
    space: str | Path | Mapping[str, Any] | Space,
    *,
    overrides: Iterable[str] | None = None,
    storage: str = "runs",
    address: str | None = None,
    num_cpus: int | None = None,
    num_gpus: float | None = None,
    resume: bool = False,
    restart: bool = False,
    export: bool = True,
    if_data_changed: bool = False,
    verbose: int = 0,
) -> Any:
    """Run the search the space describes and export the best model. Returns a `SearchResult`.

    `space` is a path, a YAML string, a dict or a loaded `Space`; `overrides` are `key.path=value` strings.
    `address` joins an existing Ray cluster ("auto" or "ray://host:port"); `storage` is a folder or URI for
    the run (trials, checkpoints, the Optuna study, TensorBoard logs).

    `if_data_changed=True` is for retraining pipelines: it returns None, doing nothing, when the data is the
    one the current canonical model was trained on; otherwise it searches in a run named after the data
    (resumed if a previous retrain was cut short), with the current model's parameters as the first trial, and
    promotes the new model only if it beats the current one on the new test split.
    """
    from autotune.engine import search
    from autotune.engine.result import SearchResult

    space = load_space(space, overrides)
    recipe = recipes.load(space.recipe, space.base_dir)
    defaults, _ = space.defaults()
    data = recipe.load_data(space.config(defaults).get("data", {}))
    preflight(space, recipe, data, export=export)  # export.dir writable; every searched model builds and fits
    check_address(address)  # ray.init retries an unreachable address for minutes
    shared = _data_is_shared(space, recipe)
    warm_start: list[dict[str, Any]] = []
    if if_data_changed:
        retrain = _retrain_plan(space, data, storage)
        if retrain is None:
            return None
        space, warm_start, resume = retrain
    options = search.RunOptions(
        storage=storage, address=address, num_cpus=num_cpus, num_gpus=num_gpus,
        resume=resume, restart=restart, verbose=verbose,
    )
    started_ray = not search.ray_running()
    try:
        grid, run_dir, seconds, interrupted = search.run_search(
            space, options, data=data if shared else None, warm_start=warm_start
        )
        trials = pd.DataFrame(search.trial_rows(grid, space))
        best = search.best_checkpoint(grid, space)
        if best is None:
            raise SearchFailed(_failure_text(trials))
        best_result, checkpoint, best_metrics = best
        params = dict(best_result.config)
        result = SearchResult(
            name=space.name,
            run_dir=run_dir,
            metric=space.search.metric,
            mode=space.search.mode,
            best_trial_id=Path(best_result.path).name.removeprefix("trial_"),
            best_params=params,
            best_config=space.config(params),
            best_metrics={k: float(v) for k, v in best_metrics.items()
                          if isinstance(v, (int, float)) and not isinstance(v, bool)},
            trials=trials,
            seconds=seconds,
            interrupted=interrupted,
        )
        if space.search.multi_objective:
            result.pareto = pareto_front(trials, space.search.metric, space.search.mode)
        if export and not interrupted:
            with checkpoint.as_directory() as checkpoint_dir:
                _export(space, recipe, data, Path(checkpoint_dir), result)
        _write_summary(result)
        return result
    finally:
        if started_ray:
            search.shutdown()


def current_card(space: Space) -> dict[str, Any] | None:
    """The model card of the canonical model at `export.dir`, or None when there is none."""
    card = Path(space.export.dir).expanduser() / "model.json"
    return json.loads(card.read_text()) if card.is_file() else None


def _retrain_plan(space: Space, data: Any, storage: str) -> tuple[Space, list[dict[str, Any]], bool] | None:
    """(space renamed after the data, warm-start points, resume?) or None when the data has not changed."""
    fingerprint = str(getattr(data, "fingerprint", "") or "")
    if not fingerprint:
        raise UserError(f"recipe {space.recipe!r} gives its data no fingerprint: --if-data-changed cannot compare it")
    card = current_card(space)
    if card and card.get("data_fingerprint") == fingerprint:
        log.info("The data is unchanged (fingerprint %s) since %s was trained: nothing to do.",
                 fingerprint[:12], space.export.dir)
        return None
    names = {p.name for p in space.params}
    warm = [{k: v for k, v in card.get("params", {}).items() if k in names}] if card else []
    log.info("The data changed (fingerprint %s, the current model's is %s): searching again%s.",
             fingerprint[:12], (card or {}).get("data_fingerprint", "none")[:12],
             ", starting from the current model's configuration" if warm and warm[0] else "")
    promote = "if_better" if space.export.promote == "always" else space.export.promote
    space = replace(space, name=f"{space.name}-data-{fingerprint[:8]}", export=replace(space.export, promote=promote))
    resume = "://" not in storage and (Path(storage).expanduser() / space.name / "tuner.pkl").exists()
    return space, [w for w in warm if w], resume


def _data_is_shared(space: Space, recipe: Any) -> bool:
    """One load of the data serves every trial unless the search samples a key that changes what is loaded."""
    training_only = set(getattr(recipe, "TRAINING_ONLY_DATA_KEYS", ()))
    searched = {p.name.split(".", 1)[1] for p in space.params if p.name.startswith("data.")}
    loading = sorted(searched - training_only)
    if loading:
        log.warning("data.%s is searched: each trial loads its own data", ", data.".join(loading))
    return not loading


def _failure_text(trials: pd.DataFrame) -> str:
    errors = [e for e in trials.get("error", pd.Series(dtype=str)).tolist() if e]
    if not errors:
        return "no trial reported a metric; check that the recipe calls report() each epoch"
    return f"all {len(trials)} trials failed; the first error: {errors[0]}"


def _top_trials(result: Any, k: int = 5) -> list[dict[str, Any]]:
    metric, mode = result.metric[0], result.mode[0]
    ok = result.trials[result.trials["status"] != "ERROR"]
    ranked = ok.sort_values(metric, ascending=mode == "min").head(k)
    columns = ["trial_id", *result.metric, "epochs", *[c for c in ranked.columns if c.startswith("p:")]]
    return json.loads(ranked[columns].to_json(orient="records"))


def _export(space: Space, recipe: Any, data: Any, checkpoint_dir: Path, result: Any) -> None:
    from autotune.engine.export import export_model, library_versions

    card = {
        "name": space.name,
        "recipe": space.recipe,
        "base_dir": space.base_dir,
        "custom": space.custom,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "trial_id": result.best_trial_id,
        "params": result.best_params,
        "config": result.best_config,
        "metrics": result.best_metrics,
        "search": {"metric": list(space.search.metric), "mode": list(space.search.mode)},
        "top_trials": _top_trials(result),
        **({"pareto": json.loads(json.dumps(result.pareto, default=str))} if result.pareto else {}),
        "run_dir": str(result.run_dir),
        "versions": library_versions(),
    }
    decision = export_model(
        Path(space.export.dir),
        write=lambda out: recipe.export(str(checkpoint_dir), data, str(out)),
        evaluate=lambda model_dir: recipe.evaluate(str(model_dir), data),
        card=card,
        metric=space.search.metric[0],
        mode=space.search.mode[0],
        promote=space.export.promote,
    )
    result.test_metrics = decision.pop("test_metrics")
    result.promotion = decision
    result.model_dir = Path(space.export.dir).expanduser().absolute()


def _write_summary(result: Any) -> None:
    summary = {
        "name": result.name,
        "metric": list(result.metric),
        "mode": list(result.mode),
        "best_trial_id": result.best_trial_id,
        "best_params": result.best_params,
        "best_metrics": result.best_metrics,
        "test_metrics": result.test_metrics,
        "model_dir": str(result.model_dir) if result.model_dir else None,
        "promotion": result.promotion,
        "seconds": result.seconds,
        "interrupted": result.interrupted,
        "pareto": result.pareto,
    }
    if result.run_dir.exists():
        (result.run_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
        result.trials.to_csv(result.run_dir / "trials.csv", index=False)
