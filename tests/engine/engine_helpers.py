"""Helpers shared by the engine tests (a uniquely named module: test folders are not packages)."""
from __future__ import annotations

import logging
import os
from pathlib import Path

TOY = str(Path(__file__).with_name("toy_recipe.py"))


def start_ray(**kwargs) -> None:
    import ray

    ray.init(
        include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING,
        _temp_dir=f"/tmp/rt_{os.getpid()}", **kwargs,
    )


def hparams_of(event_file: str) -> dict:
    """The scalar tags and the HParams (sampled values) written into one TensorBoard event file."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.plugins.hparams import plugin_data_pb2

    found: dict = {"scalars": set(), "hparams": None}
    for event in EventFileLoader(event_file).Load():
        for value in event.summary.value:
            found["scalars"].add(value.tag)
            if value.metadata.plugin_data.plugin_name == "hparams":
                data = plugin_data_pb2.HParamsPluginData.FromString(value.metadata.plugin_data.content)
                if data.HasField("session_start_info"):
                    found["hparams"] = dict(data.session_start_info.hparams)
    return found
