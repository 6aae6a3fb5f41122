"""Weights & Biases: one run per trial, grouped by the search's name, the sampled values as its config and every
metric against the epoch (logged as the metric `epoch`, W&B's x axis for the others: W&B's own step must only
grow, and would drop the values of the epochs a trial retrains after a restart from a checkpoint). Run ids follow
from the run's state folder, a random part drawn when the run starts (kept in its tracking.json) and the trial id,
so a trial that continues after a resume continues its W&B run (online: W&B cannot resume an offline run), and a
--restart's runs are new ones. `mode: offline` writes the runs under the run's state folder
(`wandb/`; `wandb sync` uploads them later) and sends nothing. What W&B missed while it was unreachable is not
filled in later (offline, the runs it holds cannot be read back).
"""
from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from autotune.errors import UserError
from autotune.space.types import WandbSettings
from autotune.tracking import INTERRUPTED, SearchStart, TrialRecord, hide_passwords, missing_package, short
from autotune.tracking.mlflow_runs import STATE_FILE

__all__ = ["WandbRuns"]

_SAVED_KEY = "wandb_start_key"


class WandbRuns:
    """A search's trials as W&B runs of `project` (else WANDB_PROJECT, else the space's name)."""

    fills_in = False

    def __init__(self, settings: WandbSettings, name: str, env: Mapping[str, str]) -> None:
        self.project = settings.project or env.get("WANDB_PROJECT") or name
        self.entity = settings.entity or env.get("WANDB_ENTITY")
        self.mode = settings.mode or env.get("WANDB_MODE") or "online"
        self.group = name
        self.model = name  # the model's name (a retrain's runs are named after its data, its model keeps this one)
        self.start_key = ""  # the random part of this run's W&B ids, kept in its state folder (start() sets it)
        self.label = f"W&B project {self.project} ({self.mode})"
        self.state_dir: Path | None = None
        self.runs: dict[str, Any] = {}  # trial id -> its open run
        self.settings: dict[str, Any] = {}  # the search settings, the search run's config
        self.logged: set[str] = set()  # the trials this invocation gave a run

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "runs": {}}

    @staticmethod
    def _wandb() -> Any:
        try:
            import wandb
        except ImportError as err:
            raise missing_package("wandb", err) from err
        return wandb

    def check(self) -> None:
        wandb = self._wandb()
        if self.mode != "online":
            return
        try:
            logged_in = wandb.login(verify=True, timeout=15, prompt=False)
        except Exception as err:  # wandb's own errors: no API key, the server unreachable
            reason = short(hide_passwords((str(err).strip().splitlines() or [type(err).__name__])[0]), 200)
            raise UserError(f"tracking.wandb: cannot reach W&B ({reason}); run `wandb login`, or set tracking.wandb."
                            "mode: offline (`wandb sync` uploads later), or remove tracking.wandb") from None
        if not logged_in:
            raise UserError("tracking.wandb: not logged in to W&B; run `wandb login` (or set WANDB_API_KEY), or set "
                            "tracking.wandb.mode: offline")

    def start(self, search: SearchStart) -> None:
        self.state_dir = search.state_dir
        self.group = search.name
        self.settings = dict(search.settings)
        self.start_key = self._start_key(search)

    @staticmethod
    def _start_key(search: SearchStart) -> str:
        """The random part of the run's W&B ids: a new one for a new run (a --restart too, whose run folder has the
        same path), the saved one for a resumed run (tracking.json; "" for a run an older autotune started, whose
        ids had none)."""
        state = search.state_dir / STATE_FILE
        saved = json.loads(state.read_text()) if state.is_file() else {}
        if search.resumed:
            return str(saved.get(_SAVED_KEY, ""))
        key = secrets.token_hex(4)
        state.write_text(json.dumps({**saved, _SAVED_KEY: key}))
        return key

    def run_id(self, key: str) -> str:
        """The W&B id of the run `key` (a trial id, or "search"): from the run folder, the random part of this run
        and `key`, so a resume continues the run and a --restart starts another."""
        return hashlib.sha256(f"{self.state_dir}\n{self.start_key}{key}".encode()).hexdigest()[:16]

    def _init(self, key: str, name: str, config: Mapping[str, Any], job_type: str) -> Any:
        """A W&B run of the search's group, its id `run_id(key)` (a resume continues it)."""
        wandb = self._wandb()
        return wandb.init(
            project=self.project, entity=self.entity, group=self.group, name=name, id=self.run_id(key),
            resume="allow", config=dict(config), mode=self.mode, dir=str(self.state_dir), job_type=job_type,
            reinit="create_new", settings=wandb.Settings(silent=True, console="off", x_disable_stats=True),
        )

    def _run(self, trial_id: str, params: Mapping[str, Any]) -> Any:
        if trial_id not in self.runs:
            self.runs[trial_id] = self._init(trial_id, trial_id, params, "trial")
            self.runs[trial_id].define_metric("epoch")
            self.runs[trial_id].define_metric("*", step_metric="epoch")
            self.logged.add(trial_id)
        return self.runs[trial_id]

    def trial_result(self, trial_id: str, params: Mapping[str, Any], metrics: Mapping[str, float], epoch: int) -> None:
        self._run(trial_id, params).log({**metrics, "epoch": epoch})

    def trial_end(self, trial_id: str, params: Mapping[str, Any], status: str, reason: str) -> None:
        run = self._run(trial_id, params)
        run.summary.update({"status": status, "stop_reason": reason})
        run.finish(exit_code=1 if status == "failed" else 0)
        del self.runs[trial_id]

    def where(self) -> str:
        if self.mode == "offline":
            return (f"W&B: {len(self.logged)} offline trial runs in {self.state_dir}/wandb (upload: wandb sync "
                    f"{self.state_dir}/wandb/offline-run-*)")
        return f"W&B: project {self.project}, group {self.group}, {len(self.logged)} trial runs"

    def finish(self, summary: Mapping[str, Any], model_dir: Path | None, status: str,
               trials: Sequence[TrialRecord]) -> None:
        for trial_id in list(self.runs):  # trials still running when the search ended (interrupted)
            run = self.runs.pop(trial_id)
            run.summary.update({"status": "interrupted", "stop_reason": INTERRUPTED})
            run.finish(exit_code=130)  # the status of Ctrl-C
        if status != "interrupted":
            self._search_run(summary, model_dir, status)

    def _search_run(self, summary: Mapping[str, Any], model_dir: Path | None, status: str) -> None:
        """The search's own run in its group (`job_type: search`): its settings as config; its status, best trial,
        best and test metrics in its summary; the exported model, when it promoted one, as an artifact of type
        `model` named after the model, a new version of it (aliases `latest` and `champion`)."""
        run = self._init("search", f"{self.group} (search)", self.settings, "search")
        numbers = {**{f"best_{k}": v for k, v in (summary.get("best_metrics") or {}).items()},
                   **(summary.get("test_metrics") or {})}
        run.summary.update({**{k: v for k, v in numbers.items() if isinstance(v, (int, float))},
                            "status": status, "best_trial_id": summary.get("best_trial_id")})
        if model_dir is not None and (summary.get("promotion") or {}).get("promoted"):
            model = (summary.get("space") or {}).get("model_name") or self.model
            artifact = self._wandb().Artifact(re.sub(r"[^A-Za-z0-9_.-]", "-", str(model)), type="model")
            artifact.add_dir(str(model_dir))
            run.log_artifact(artifact, aliases=["latest", "champion"])
        run.finish(exit_code=1 if status == "failed" else 0)
