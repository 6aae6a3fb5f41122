"""The one package that talks to Ray Tune and Optuna: searcher, scheduler, run, resume.

Ray is quieted here, before any module of the package imports it: no usage stats, no experiment banner, no sync
warnings.
"""
from __future__ import annotations

import os

for _key, _value in {
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_AIR_NEW_OUTPUT": "0",
    "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0",
    "RAY_DEDUP_LOGS": "0",
}.items():
    os.environ.setdefault(_key, _value)
