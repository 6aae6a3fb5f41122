"""MLflow: one parent run per search, one nested child run per trial, the exported model on the parent.

The parent holds the space file (an artifact), the search settings and the ingredients' constant values (params)
and, at the end, the summary (and tags: best trial, promoted, the exported version and its data fingerprint); each
child holds the trial's sampled values (params, by their dotted names), every metric it reported (step = epoch), its
status and stop reason (tags) and its Ray trial id. The ids live in the run's state folder (tracking.json), so a
resumed search continues its parent run and a trial that continues keeps its child run. A child run's tag
`autotune.epochs` is the last epoch logged to it: at the search's end, the epochs and ends the runs miss (the
server was down, in this invocation or an earlier one) are logged from the run folder's records.
"""
from __future__ import annotations

import io
import json
import logging
import math
import os
import re
import tempfile
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

from autotune.errors import TrackerUnreachable, UserError
from autotune.space import dist_kind
from autotune.space.types import MlflowSettings
from autotune.tracking import INTERRUPTED, SearchStart, TrialRecord, hide_passwords, missing_package, short

__all__ = ["MlflowRuns", "new_client", "quick", "first_line"]

STATE_FILE = "tracking.json"
# A tracking server that does not answer costs the driver seconds, not MLflow's default minutes of retries; the
# client prints no link per run it ends (the search's own progress lines are what the terminal shows).
_QUICK = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
          "MLFLOW_HTTP_REQUEST_TIMEOUT": "10", "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
          "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}


@contextmanager
def quick() -> Iterator[None]:
    """MLflow's client settings of `_QUICK` (where the user has not set them) for the calls in the block. A file
    store, which MLflow 3 keeps only in maintenance, is allowed: a space that names one asks for it."""
    settings = {**_QUICK, "MLFLOW_ALLOW_FILE_STORE": "true"}
    before = {k: os.environ.get(k) for k in settings}
    os.environ.update({k: v for k, v in settings.items() if before[k] is None})
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)


_HOST_PORT = re.compile(r"^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*:\d{1,5}(/.*)?$")  # 127.0.0.1:5000, myhost:5000/
_MODEL_NAME = re.compile(r"^[^/:]+$")  # what MLflow's registry takes as a model's name
_BATCH = 1000  # the most metrics MLflow's log_batch takes in one call
_PARAMS_BATCH = 100  # the most params (and tags) it takes in one call


def first_line(err: BaseException) -> str:
    """The first line of an error, its URIs' passwords hidden (MLflow's errors quote the URI), cut at a word within
    200 characters."""
    return short(hide_passwords((str(err).strip().splitlines() or [type(err).__name__])[0]), 200)


def new_client(uri: str | None) -> Any:
    """An MlflowClient of the tracking store `uri` (None: MLflow's default), made with `_QUICK`'s settings (call it
    within `quick()` too), MLflow's INFO lines (creating a database...) off. ImportError: mlflow is not installed."""
    from mlflow.tracking import MlflowClient

    if logging.getLogger("mlflow").level == logging.NOTSET:
        logging.getLogger("mlflow").setLevel(logging.WARNING)
    with quick():
        return MlflowClient(tracking_uri=uri)


class MlflowRuns:
    """A search's runs in the MLflow tracking store at `settings.uri` (else MLFLOW_TRACKING_URI, else MLflow's
    default): a file store, a database URI or a tracking server. `uri` is what the client is given; whatever is
    shown, logged or written of it is `shown`, its password hidden."""

    fills_in = True

    def __init__(self, settings: MlflowSettings, name: str, env: Mapping[str, str]) -> None:
        self.uri = settings.uri or env.get("MLFLOW_TRACKING_URI")
        # what set the URI, as a refusal names it: the space's key, or the variable that switched MLflow on
        self.uri_from = "tracking.mlflow.uri" if settings.uri or not self.uri else "MLFLOW_TRACKING_URI"
        self.experiment = settings.experiment or name
        self.register = settings.register
        self.run_name = name  # the search's run (a retrain's is named after its data): start() sets it
        self.label = f"MLflow at {self.shown or 'its default store'}"
        self.parent: str | None = None
        self.children: dict[str, str] = {}  # trial id -> child run id
        self._client: Any = None
        self._experiment_id: str | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_client": None}

    @property
    def shown(self) -> str | None:
        """The tracking URI with its password hidden (`http://bob:***@host:5000`)."""
        return self.uri and hide_passwords(self.uri)

    def client(self) -> Any:
        if self._client is None:
            try:
                self._client = new_client(self.uri)
            except ImportError as err:
                raise missing_package("mlflow", err) from err
            self.uri = self._client.tracking_uri
            self.label = f"MLflow at {self.shown}"
        return self._client

    def check(self) -> None:
        self._check_uri()
        if self.register and not _MODEL_NAME.match(self.register):
            raise UserError(f"tracking.mlflow.register: {self.register!r} cannot name a registered model in MLflow "
                            "(a name holds no '/' or ':', and is not empty); give another name")
        try:
            client = self.client()  # an unknown scheme (htp://) fails here
            with quick():
                found = client.get_experiment_by_name(self.experiment)
        except UserError:  # mlflow not installed, or not importable: no store was tried
            raise
        except Exception as err:  # the client's own errors: connection refused, a bad URI, an unwritable store
            fix = ("fix tracking.mlflow.uri, or remove tracking.mlflow" if self.uri_from == "tracking.mlflow.uri" else
                   "fix MLFLOW_TRACKING_URI, or unset it (it switched MLflow on) to search without MLflow")
            served = str(self.uri or "").startswith(("http://", "https://"))  # a server, which may be down a while
            raise (TrackerUnreachable if served and self._client is not None else UserError)(
                f"tracking.mlflow: cannot reach the MLflow tracking store {self.shown} ({first_line(err)}); start "
                f"the server, {fix}") from None
        if found is not None and found.lifecycle_stage == "deleted":  # MLflow refuses runs in it
            raise UserError(f"tracking.mlflow: the experiment {self.experiment!r} was deleted in {self.shown}: restore "
                            f"it (mlflow experiments restore --experiment-id {found.experiment_id}) or name another "
                            "(tracking.mlflow.experiment)")
        if self.register:
            try:
                with quick():
                    client.search_registered_models(max_results=1)
            except Exception as err:  # the registry's own errors: MLFLOW_REGISTRY_URI unreachable, a store without one
                raise UserError(f"tracking.mlflow.register: cannot reach the MLflow model registry "
                                f"({first_line(err)}); fix MLFLOW_REGISTRY_URI, or remove tracking.mlflow.register"
                                ) from None

    def _check_uri(self) -> None:
        """A tracking URI that is a near miss of one MLflow reads otherwise (as a folder to create, or a scheme it
        does not know): one UserError with the fix."""
        uri = self.shown or ""
        if _HOST_PORT.match(uri):
            raise UserError(f"tracking.mlflow: the tracking URI {uri!r} names a host and port but no scheme: "
                            f"write http://{uri} for a tracking server (or a folder path, or sqlite:///FILE)")
        near = re.match(r"^(https?)(:/*|/+)", uri) if "://" not in uri else None
        if near:
            raise UserError(f"tracking.mlflow: the tracking URI {uri!r} lacks the '://' of its scheme: write "
                            f"{near.group(1)}://{uri[near.end():]} (MLflow would take it for a folder to create)")
        if "://" not in uri and uri.endswith((".db", ".sqlite")):
            raise UserError(f"tracking.mlflow: the tracking URI {uri!r} names a database file without a scheme: "
                            f"write sqlite:///{uri} (MLflow would make a folder of that name)")

    def start(self, search: SearchStart) -> None:
        client = self.client()
        self.run_name = search.name
        with quick():
            found = client.get_experiment_by_name(self.experiment)
            self._experiment_id = found.experiment_id if found else client.create_experiment(self.experiment)
            self._state = search.state_dir / STATE_FILE
            saved = self._saved()
            same_store = hide_passwords(saved.get("mlflow_uri") or "") == self.shown  # an older file: the whole URI
            if same_store and self._continues(saved.get("mlflow_parent")):
                self.parent = saved["mlflow_parent"]
                client.update_run(self.parent, status="RUNNING")
                self.children = self._child_runs()
                self._resume_interrupted()
            else:
                self.parent = self._new_parent(search)
            self._state.write_text(json.dumps({**saved, "mlflow_uri": self.shown, "mlflow_parent": self.parent}))

    def _new_parent(self, search: SearchStart) -> str:
        """A new parent run of the search: its settings and the constant values of its ingredients as params, its
        space file (passwords hidden) and the space as searched as artifacts."""
        client = self.client()
        tags = {"autotune.search": search.name, "autotune.state_dir": str(search.state_dir)}
        parent = client.create_run(self._experiment_id, run_name=search.name, tags=tags).info.run_id
        resolved = search.state_dir / "space.json"  # the space as searched: its --set overrides applied
        constants = _constants(json.loads(resolved.read_text())) if resolved.is_file() else {}
        self._log_params(parent, {**search.settings, **constants})
        if search.space_file:  # its tracking.mlflow.uri may hold a password
            space = Path(search.space_file)
            client.log_text(parent, hide_passwords(space.read_text()), space.name)
        if resolved.is_file():
            client.log_artifact(parent, str(resolved))
        return parent

    def _log_params(self, run: str, params: Mapping[str, Any]) -> None:
        """`params` as params of `run`, by their names as MLflow takes them, in batches of the most it takes."""
        from mlflow.entities import Param

        logged = [Param(key, value) for key, value in {_key(k): _text(v) for k, v in params.items()}.items()]
        for first in range(0, len(logged), _PARAMS_BATCH):
            self.client().log_batch(run, params=logged[first:first + _PARAMS_BATCH])

    def _saved(self) -> dict[str, Any]:
        """What the run's state folder keeps of its MLflow runs (tracking.json): the URI (its password hidden; an
        older autotune wrote it whole), the parent run's id, the export version logged."""
        return json.loads(self._state.read_text()) if self._state.is_file() else {}

    def _continues(self, parent: str | None) -> bool:
        """Whether a resumed search goes on in its parent run `parent`: one that is still there, in this
        experiment (a space that now names another experiment, or a run deleted since, starts a new parent run)."""
        if not parent:
            return False
        try:
            run = self.client().get_run(parent)
        except Exception:  # the client's own errors: the run is gone (deleted for good)
            return False
        return run.info.experiment_id == self._experiment_id and run.info.lifecycle_stage == "active"

    def _resume_interrupted(self) -> None:
        """A resumed search's trials that its interruption ended: RUNNING again (one the resume does not continue
        is set aside at the end)."""
        from mlflow.entities import RunTag

        client = self.client()
        for run in self._children("tags.`autotune.status` = 'interrupted'"):
            client.update_run(run.info.run_id, status="RUNNING")
            client.log_batch(run.info.run_id, tags=[RunTag("autotune.status", "running"),
                                                    RunTag("autotune.stop_reason", "resumed")])

    def _child_runs(self) -> dict[str, str]:
        """The parent's child runs, by trial id (a resumed search's trials keep theirs)."""
        return {run.data.tags["autotune.trial_id"]: run.info.run_id for run in self._children()
                if "autotune.trial_id" in run.data.tags}

    def _children(self, where: str = "") -> list[Any]:
        """The parent's child runs (MLflow's Run objects), every page of them, those matching the filter `where`
        when given."""
        query = f"tags.mlflow.parentRunId = '{self.parent}'" + (f" and {where}" if where else "")
        runs, token = [], None
        while True:
            page = self.client().search_runs([self._experiment_id], max_results=1000, page_token=token,
                                             filter_string=query)
            runs += list(page)
            token = page.token
            if not token:
                return runs

    def _child(self, trial_id: str, params: Mapping[str, Any], start_ms: int | None = None) -> str:
        """The child run of the trial, made (started at `start_ms`, else now) where it has none."""
        if trial_id not in self.children:
            tags = {"mlflow.parentRunId": self.parent, "autotune.trial_id": trial_id, "ray.trial_id": trial_id}
            run = self.client().create_run(self._experiment_id, run_name=trial_id, tags=tags,
                                           start_time=start_ms).info.run_id
            self._log_params(run, params)
            self.children[trial_id] = run
        return self.children[trial_id]

    def trial_result(self, trial_id: str, params: Mapping[str, Any], metrics: Mapping[str, float], epoch: int) -> None:
        with quick():
            self._log_epochs(self._child(trial_id, params), [(epoch, metrics)])

    def _log_epochs(self, run: str, epochs: Sequence[tuple[int, Mapping[str, float]]],
                    when: Mapping[int, int] | None = None) -> None:
        """Each (epoch, metrics) of `epochs` as metrics of the child run `run` (step = epoch), stamped when the epoch
        was reported (`when`: epoch -> milliseconds since 1970; else now), and its tag `autotune.epochs`, the last
        epoch logged."""
        from mlflow.entities import Metric, RunTag

        now, when = int(time.time() * 1000), when or {}
        metrics = [Metric(_key(k), v, when.get(epoch, now), epoch) for epoch, values in epochs
                   for k, v in values.items()]
        for first in range(0, max(len(metrics), 1), _BATCH):
            last = first + _BATCH >= len(metrics)
            tags = [RunTag("autotune.epochs", str(epochs[-1][0]))] if last and epochs else []
            self.client().log_batch(run, metrics=metrics[first:first + _BATCH], tags=tags)

    def _fill_in(self, trials: Sequence[TrialRecord]) -> None:
        """What the child runs miss of the search's `trials` (reported while the server was down, or after this
        tracker was dropped, in this invocation or an earlier one): a run for a trial that has none, the epochs
        after the run's last logged one, and the end of a trial whose run is still running."""
        runs = {run.data.tags.get("autotune.trial_id"): run for run in self._children()}
        for trial in trials:
            run = runs.get(trial.trial_id)
            when = {epoch: int(t * 1000) for (epoch, _), t in zip(trial.epochs, trial.times)}  # as the trial ran
            missing = [(epoch, metrics) for epoch, metrics in trial.epochs if epoch > _epochs_logged(run)]
            if missing:
                started = when.get(trial.epochs[0][0]) if run is None else None
                self._log_epochs(self._child(trial.trial_id, trial.params, started), missing, when)
            running = run is None or run.info.status == "RUNNING"
            if running and trial.status != "interrupted":  # an interrupted trial's run is ended as such below
                self.trial_end(trial.trial_id, trial.params, trial.status, trial.reason,
                               max(when.values(), default=None))

    def trial_end(self, trial_id: str, params: Mapping[str, Any], status: str, reason: str,
                  end_ms: int | None = None) -> None:
        """End the trial's child run (at `end_ms`, else now: a run filled in later ends when its trial did)."""
        from mlflow.entities import RunTag

        with quick():
            run = self._child(trial_id, params)
            client = self.client()
            client.log_batch(run, tags=[RunTag("autotune.status", status), RunTag("autotune.stop_reason", reason)])
            client.set_terminated(run, "FAILED" if status == "failed" else "FINISHED", end_time=end_ms)

    def finish(self, summary: Mapping[str, Any], model_dir: Path | None, status: str,
               trials: Sequence[TrialRecord]) -> None:
        from mlflow.entities import Metric, RunTag

        client = self.client()
        with quick():
            now = int(time.time() * 1000)
            values = {**{f"best_{k}": v for k, v in (summary.get("best_metrics") or {}).items()},
                      **(summary.get("test_metrics") or {})}
            client.log_batch(self.parent, metrics=[Metric(_key(k), float(v), now, 0) for k, v in values.items()
                                                   if isinstance(v, (int, float))],
                             tags=[RunTag(k, v) for k, v in _end_tags(summary, model_dir).items()])
            client.log_dict(self.parent, json.loads(json.dumps(summary, default=str)), "summary.json")
            version = (summary.get("promotion") or {}).get("version_dir")
            try:  # a model MLflow refuses (the registry's own errors) still ends the runs
                self._fill_in(trials)
                if model_dir is not None and version and version == self._saved().get("mlflow_model"):
                    pass  # a finished search resumed: its export, logged (and registered) the first time
                elif model_dir is not None and (Path(model_dir) / "model.pt").is_file():
                    self._log_model(Path(model_dir))
                elif model_dir is not None:  # another recipe's export: its files, as they are
                    client.log_artifacts(self.parent, str(model_dir), "model")
                if model_dir is not None and version:
                    self._state.write_text(json.dumps({**self._saved(), "mlflow_model": version}))
            finally:
                if status == "interrupted":
                    self._end_interrupted()
                else:
                    self._end_set_aside({trial.trial_id for trial in trials})
                client.set_terminated(self.parent,
                                      {"interrupted": "KILLED", "failed": "FAILED"}.get(status, "FINISHED"))

    def _end_interrupted(self) -> None:
        """End the child runs of the trials an interrupted search left running: KILLED, tagged `interrupted` (a
        resume sets them RUNNING again, and the trial goes on in its run)."""
        from mlflow.entities import RunTag

        client = self.client()
        for run in self._children("attributes.status = 'RUNNING'"):
            client.log_batch(run.info.run_id, tags=[RunTag("autotune.status", "interrupted"),
                                                    RunTag("autotune.stop_reason", INTERRUPTED)])
            client.set_terminated(run.info.run_id, "KILLED")

    def _end_set_aside(self, trials: set[str]) -> None:
        """Set aside the child runs of trials that are not the search's: a killed run's trials that its resume did
        not continue (Ray's last saved state did not know them; their folders were set aside), running or ended."""
        from mlflow.entities import RunTag

        client = self.client()
        reason = "started after the search's last saved state; the resumed search ran another trial in its place"
        for trial_id, run in self._child_runs().items():
            if trial_id not in trials:
                client.log_batch(run, tags=[RunTag("autotune.status", "set aside"),
                                            RunTag("autotune.stop_reason", reason)])
                client.set_terminated(run, "KILLED")
                self.children.pop(trial_id, None)

    def where(self) -> str:
        uri = self.shown or ""
        if uri.startswith(("http://", "https://")):
            shown = f"{uri.rstrip('/')}/#/experiments/{self._experiment_id}/runs/{self.parent}"
        else:
            shown = f"mlflow ui --backend-store-uri {uri} (experiment {self.experiment!r}, run {self.parent})"
        return f"MLflow: {shown}, {len(self.children)} trial runs nested"

    def _log_model(self, model_dir: Path) -> None:
        """The exported model on the parent run, under `model/` (`runs:/PARENT/model`), as the MLflow model
        `mlflow_model.save` writes for its recipe's `input_example(model_dir)`, if any; with `register`, a new
        version of that registered model, alias `champion`, tagged `autotune.version`, `autotune.data_fingerprint` (its card's) and `autotune.run` (the
        search's run): `mlflow_alias.point_champion` finds it by them. Through the client only: MLflow's fluent
        API would change the process's tracking URI (and MLFLOW_TRACKING_URI) for the code around the search."""
        from autotune import recipes
        from autotune.tracking import mlflow_model

        client = self.client()
        card = _card(model_dir)
        recipe = recipes.of_card(card)
        example = getattr(recipe, "input_example", lambda model_dir: None)(str(model_dir))
        with tempfile.TemporaryDirectory() as tmp, quick(), _silenced():  # TorchScript's deprecation, pickle advice
            saved = Path(tmp) / "model"
            mlflow_model.save(model_dir, saved, example)
            client.log_artifacts(self.parent, str(saved), "model")
            if self.register:
                if not client.search_registered_models(filter_string=f"name = '{self.register}'"):
                    client.create_registered_model(self.register)
                source = f"{client.get_run(self.parent).info.artifact_uri}/model"
                tags = {"autotune.version": card.get("version"), "autotune.run": self.run_name,
                        "autotune.data_fingerprint": card.get("data_fingerprint")}
                version = client.create_model_version(self.register, source, run_id=self.parent,
                                                      tags={k: str(v) for k, v in tags.items() if v})
                client.set_registered_model_alias(self.register, "champion", version.version)


@contextmanager
def _silenced() -> Iterator[None]:
    """MLflow's own chatter while it logs a model (its safety advice on pickle, the registry's progress lines, torch's
    warnings as it reloads the model to check it): the search's summary says what was logged."""
    logger = logging.getLogger("mlflow")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _epochs_logged(run: Any) -> float:
    """The last epoch logged to a child run (MLflow's Run; None: no run), by its tag `autotune.epochs`. A run with
    metrics but without the tag was logged by an autotune that kept no count: it is taken as complete."""
    if run is None:
        return 0
    tag = run.data.tags.get("autotune.epochs")
    return int(tag) if tag and tag.isdigit() else math.inf if run.data.metrics else 0


def _constants(resolved: Mapping[str, Any]) -> dict[str, Any]:
    """The constant values of the ingredients of `resolved` (a run's space.json: its --set overrides applied), by
    their dotted names (`train.epochs`); a searched key (a distribution, a choice of options) is a trial's param."""
    found: dict[str, Any] = {}

    def walk(name: str, value: Any) -> None:
        if dist_kind(value) is not None:
            return
        if isinstance(value, Mapping) and value:
            for key, item in value.items():
                walk(f"{name}.{key}" if name else str(key), item)
        else:
            found[name] = value

    walk("", resolved.get("ingredients") or {})
    return found


def _end_tags(summary: Mapping[str, Any], model_dir: Path | None) -> dict[str, str]:
    """The parent run's tags at the search's end, those the summary knows: its best trial, whether its export was
    promoted, and the exported version's name and data fingerprint (from the version's card)."""
    promotion = summary.get("promotion") or {}
    card = _card(Path(promotion["version_dir"]) if promotion.get("version_dir") else model_dir)
    tags = {"autotune.best_trial_id": summary.get("best_trial_id"), "autotune.promoted": promotion.get("promoted"),
            "autotune.version": card.get("version"), "autotune.data_fingerprint": card.get("data_fingerprint")}
    return {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in tags.items() if v is not None}


def _card(model_dir: Path | None) -> dict[str, Any]:
    """The card (model.json) of a model folder; {} where there is none."""
    card = model_dir / "model.json" if model_dir is not None else None
    return json.loads(card.read_text()) if card is not None and card.is_file() else {}


def _key(name: str) -> str:
    """A parameter's or metric's name as MLflow takes it (letters, digits, `_ - . : /` and spaces): an option of a
    conditional parameter, `optimizer[adamw].lr`, as `optimizer.adamw.lr`; any other character as `_`."""
    return re.sub(r"[^A-Za-z0-9_\-. :/]", "_", name.replace("[", ".").replace("]", ""))


def _text(value: Any) -> str:
    """A parameter's value as MLflow stores it (text, at most 6000 characters)."""
    return (value if isinstance(value, str) else json.dumps(value, default=str))[:6000]
