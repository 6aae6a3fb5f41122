"""Helpers shared by the engine tests (a uniquely named module: test folders are not packages)."""
from __future__ import annotations

import glob
import json
import logging
import os
import pickle
from pathlib import Path
from typing import Any

TOY = str(Path(__file__).with_name("toy_recipe.py"))


def toy_space(name: str = "toy", *, trials: int = 6, model: str | None = None, train: str = "{epochs: 4}",
              search: str = "", export: str = "", concurrent: int = 2, data: str = "{}") -> str:
    """A toy-recipe space: `search` and `export` are appended to their mappings (start them with ", ")."""
    model = model or "{x: {uniform: [0.0, 1.0]}, y: {uniform: [0.0, 1.0]}}"
    return (
        f"name: {name}\nrecipe: {TOY}\ndata: {data}\nmodel: {model}\ntrain: {train}\n"
        f"search: {{metric: val_accuracy, mode: max, trials: {trials}, max_concurrent: {concurrent}, "
        f"seed: 0{search}}}\n"
        f"export: {{dir: models/toy{export}}}\n"
    )


def history(trial_dir: str | Path) -> list[dict[str, Any]]:
    """Every result a trial reported, in order, from its own result.json (none when it never reported)."""
    file = Path(trial_dir, "result.json")
    lines = file.read_text().splitlines() if file.is_file() else []
    return [json.loads(line) for line in lines if line.strip()]


def run_histories(run_dir: str | Path) -> dict[str, list[dict[str, Any]]]:
    """trial id -> its reported results, for every trial folder of a run."""
    return {Path(d).name.removeprefix("trial_"): history(d) for d in sorted(glob.glob(f"{run_dir}/trial_*"))}


def saved_by_status(run_dir: Path) -> dict[str, dict[str, int]]:
    """status -> {trial id -> the reports Ray's saved state knows of}, from one read of that state. The run
    folder's trial files may be newer than it (they are copied first, while the trials go on): a resume starts
    from the state."""
    import pyarrow.fs

    from autotune.engine.ray_internals import saved_trials

    by_status: dict[str, dict[str, int]] = {}
    for trial in saved_trials(pyarrow.fs.LocalFileSystem(), str(run_dir)) if run_dir.exists() else []:
        by_status.setdefault(trial["status"], {})[trial["trial_id"]] = trial["reported"]
    return by_status


def saved_reports(run_dir: Path, status: str) -> dict[str, int]:
    """trial id -> the reports Ray's saved state knows of, for the trials it saved with `status`."""
    return saved_by_status(run_dir).get(status, {})


def saved_searcher(run_dir: str | Path) -> dict[str, Any]:
    """The searcher state Ray Tune saved in the run (OptunaSearch's attributes, its sampler and study included)."""
    (state_file,) = glob.glob(f"{run_dir}/searcher-state-*.pkl")
    with open(state_file, "rb") as handle:
        return pickle.load(handle)


def start_ray(**kwargs) -> None:
    import ray

    ray.init(
        include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING,
        _temp_dir=f"/tmp/rt_{os.getpid()}", **kwargs,
    )


def hparams_of(event_file: str) -> dict:
    """What one TensorBoard event file holds: its scalar tags, each tag's (step, value) points, the HParams (sampled
    values), and its HParams experiment (the columns TensorBoard shows: the parameters' names and the metrics'
    tags), None without one."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.plugins.hparams import plugin_data_pb2
    from tensorboard.util import tensor_util

    found: dict = {"scalars": set(), "points": {}, "hparams": None, "experiment": None}
    for event in EventFileLoader(event_file).Load():  # scalars come as tensors of the "scalars" plugin
        for value in event.summary.value:
            found["scalars"].add(value.tag)
            if value.metadata.plugin_data.plugin_name == "scalars":
                point = (event.step, float(tensor_util.make_ndarray(value.tensor)))
                found["points"].setdefault(value.tag, []).append(point)
            if value.metadata.plugin_data.plugin_name == "hparams":
                data = plugin_data_pb2.HParamsPluginData.FromString(value.metadata.plugin_data.content)
                if data.HasField("session_start_info"):
                    found["hparams"] = dict(data.session_start_info.hparams)
                if data.HasField("experiment"):
                    found["experiment"] = ([info.name for info in data.experiment.hparam_infos],
                                           [info.name.tag for info in data.experiment.metric_infos])
    return found
