"""What runs inside a Ray trial: the sampled configuration becomes the recipe's config, the recipe trains and
reports, and the checkpoint policy (autotune.engine.checkpoints) says which of the checkpoints it offers are kept.

    tune.Tuner(trainable(space, data, resources, policy, full_key(experiment)), tune_config=tune.TuneConfig(
        trial_dirname_creator=trial_dirname, ...))
"""
from __future__ import annotations

import copyreg
import importlib
import os
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, nullcontext
from functools import partial
from types import ModuleType
from typing import Any

import ray
from ray import cloudpickle, tune

from autotune import registry
from autotune.engine.checkpoints import CheckpointPolicy, TrialCheckpoints
from autotune.engine.full_disk import copying, is_full, wait_to_be_stopped
from autotune.engine.heap import trim_heap
from autotune.engine.ray_internals import waits_for_driver, write_trial_file
from autotune.engine.trial_errors import TIMED_OUT_FILE
from autotune.engine.trial_timeout import ReportWatch
from autotune.errors import MissingMetric, RecipeExited, RecipeFailed, described
from autotune.space.types import Space
from autotune.threads import trial_threads, use_threads
from autotune.user_code import installed

__all__ = ["trainable", "trial_dirname"]


def _trial(config: dict[str, Any], *, space: Space, data: Any, policy: CheckpointPolicy, full: str,
           registered: list[registry.Registration]) -> None:
    """One Ray trial: the sampled labels become the recipe's config; the recipe trains and reports; the policy
    says which of the checkpoints it offers are kept (autotune.engine.checkpoints). A checkpoint that finds the
    disk full sets the key `full` and waits to be stopped (autotune.engine.full_disk). `registered`: what the
    driver registered outside autotune and the space's files (`registry.entries_outside`)."""
    from autotune import recipes

    trim_heap()  # the previous trial's data in this reused worker, freed into its thread's heap, which no other reuses
    if space.custom:
        from autotune.space import import_custom

        import_custom(space.custom)
    registry.restore(registered)
    recipe = recipes.load(space.recipe, space.base_dir)
    use_threads(trial_threads(space.search.resources.cpu))
    trial_config = space.config(config)
    node_id = ray.get_runtime_context().get_node_id()
    previous = tune.get_checkpoint()
    checkpoints = TrialCheckpoints(policy, epochs=space.planned(trial_config),
                                   resumed_from=previous.get_metadata() if previous else None)

    made = 0  # reports
    last = time.perf_counter()  # the recipe's start, then its last report (less the time of Ray's report: send)
    resumed_at = int((previous.get_metadata() or {}).get("iteration", 0)) if previous else 0
    watch = _watch(space.search.trial_timeout, resumed_at + 1) if space.search.trial_timeout else None

    def send(reported: dict[str, Any], checkpoint: tune.Checkpoint | None = None) -> None:
        """Ray's report, whose time is not the next epoch's: it copies the checkpoint and waits for the driver to
        take the result (a driver stopped with Ctrl-Z takes none until it is continued)."""
        nonlocal last
        began = time.perf_counter()
        tune.report(reported, checkpoint=checkpoint)
        last += time.perf_counter() - began

    def report(metrics: dict[str, float], checkpoint: recipes.Checkpoint = None) -> None:
        nonlocal made, last
        metrics = recipes.reported(metrics, space.search.metric)
        made += 1
        if watch is not None:
            watch.reported(resumed_at + made)
        now = time.perf_counter()
        # the epoch's own time, which Ray sums to the trial's: not the worker's imports and setup before the recipe
        # started, which only the first trial of each worker pays, nor Ray's report (`send`)
        reported = {**metrics, "node_id": node_id, "time_this_iter_s": now - last}
        last = now
        if not checkpoints.keep(metrics, offered=checkpoint is not None):
            send(reported)
            return
        try:
            with recipes.written(checkpoint) as directory:
                kept = tune.Checkpoint.from_directory(directory)
                kept.set_metadata(checkpoints.metadata())
                with copying():
                    send(reported, checkpoint=kept)
        except OSError as err:  # the disk is full: the driver stops the search, to be resumed (full_disk)
            if not is_full(err):
                raise
            wait_to_be_stopped(full, err, f"{ray.util.get_node_ip_address()}, {node_id[:8]}")

    with previous.as_directory() if previous else nullcontext(None) as checkpoint, \
            watch.watching() if watch else nullcontext(), _environment_kept():
        try:
            recipe.train(trial_config, report, data=data, checkpoint=checkpoint)
        except SystemExit as err:  # Ray ends the worker at it: the trial's error a bare exit status, no recipe line
            raise RecipeExited(_exited(err.code)).with_traceback(err.__traceback__) from None
        except (KeyboardInterrupt, Exception) as err:  # Ray calls a KeyboardInterrupt a cancelled task
            if isinstance(err, Exception) and _carried(err):
                raise
            raise RecipeFailed(described(err)).with_traceback(err.__traceback__) from None
    if not made and previous is None:  # a resumed trial may have reported its last epoch before the kill
        raise MissingMetric(recipes.NO_REPORT)


@contextmanager
def _environment_kept() -> Iterator[None]:
    """Put the worker's environment variables back as they were when the block ends: a recipe that sets one
    (`os.environ["CUBLAS_WORKSPACE_CONFIG"]` for one configuration) set it for every later trial of its worker."""
    before = dict(os.environ)
    try:
        yield
    finally:
        for key in os.environ.keys() - before.keys():
            del os.environ[key]
        os.environ.update({key: value for key, value in before.items() if os.environ.get(key) != value})


def _exited(code: object) -> str:
    """Why a recipe that raised SystemExit with `code` failed its trial, and what to do instead."""
    return (f"the recipe ended its process with sys.exit({code!r}) instead of returning or raising (argparse's "
            "parse_args() does so on the trial worker's own command line: read settings from the recipe's config)")


def _carried(err: Exception) -> bool:
    """Whether Ray can carry the recipe's exception `err` to the driver: its str() works (Ray's worker calls it), and
    it survives pickling (a lock in it does not; nor an __init__ of other arguments than its message, which
    unpickling calls with the message alone)."""
    try:
        str(err)
        cloudpickle.loads(cloudpickle.dumps(err))
    except Exception:  # whatever the exception's own code raises
        return False
    return True


def _watch(timeout: float, first_epoch: int) -> ReportWatch:
    """`search.trial_timeout`'s watch of this trial; a trial whose worker it ends leaves its failure in the trial's
    folder (TIMED_OUT_FILE), which this attempt's start removes: a retry may die otherwise."""
    write_trial_file(TIMED_OUT_FILE, "")
    return ReportWatch(timeout, first_epoch, ended=partial(write_trial_file, TIMED_OUT_FILE),
                       waiting=waits_for_driver)


def trial_dirname(trial: Any) -> str:
    """A trial's folder, named by its id only (Ray's default name holds every parameter)."""
    return f"trial_{trial.trial_id}"


def _space_modules(space: Space) -> list[ModuleType]:
    """The space's recipe and `custom:` file, imported: every trial imports them itself."""
    from autotune import recipes

    modules = [recipes.load(space.recipe, space.base_dir)]
    if space.custom:
        from autotune.space import import_custom

        modules.append(import_custom(space.custom))
    return modules


def _installed(module: ModuleType) -> bool:
    """Whether `module` is the standard library's or an installed package's (or has no file): importable on every
    node of a cluster that runs the same environment."""
    file = getattr(module, "__file__", None)
    return file is None or installed(file)


def _registered_by(entries: Iterable[registry.Registration]) -> list[ModuleType]:
    """The user's own modules (a whole package: its other modules too) that registered `entries`: neither
    `__main__` (pickled by value anyway) nor an installed package."""
    names = {str(getattr(fn, "__module__", None)).partition(".")[0] for _, _, fn in entries} - {"__main__"}
    modules = [sys.modules[name] for name in sorted(names) if name in sys.modules]
    return [module for module in modules if not _installed(module)]


def _ship_user_code(modules: Iterable[ModuleType]) -> None:
    """A recipe loaded from a path, a `custom:` file and a module of the user's own (beside their script, in their
    notebook's folder) are no importable modules on other nodes: send their code along by value, so that the
    functions they registered and the data objects they define unpickle in every trial."""
    _torch_classes_by_name()
    for module in modules:
        if not module.__name__.startswith("autotune."):
            cloudpickle.register_pickle_by_value(module)


def _torch_classes_by_name() -> None:
    """Let `torch.classes` pickle as a reference, as a module does. Code pickled by value that uses `torch` and an
    attribute named `classes` (`self.classes = ...`, a dataset's class names) makes cloudpickle take it for the
    submodule `torch.classes` and pickle that with the code; `torch.classes` is a subclass of a module, which
    cloudpickle's table of modules misses, and pickling it fails (`cannot pickle '_Classes' object`)."""
    torch = sys.modules.get("torch")
    if torch is not None:
        copyreg.pickle(type(torch.classes), _import_by_name)


def _import_by_name(module: ModuleType) -> tuple[Any, tuple[str]]:
    """The pickle reduction of a module imported by name where it is unpickled."""
    return importlib.import_module, (module.__name__,)


def trainable(space: Space, data: Any, resources: dict[str, float], policy: CheckpointPolicy, full: str) -> Any:
    """The search's trainable: `data` put in Ray's object store once for every trial, each trial given
    `resources`; `full`: the key a trial sets when the disk is full (`full_disk.full_key`). What the user
    registered outside the space's files (in the script or notebook that searches) goes with every trial."""
    modules = _space_modules(space)
    registered = registry.entries_outside(module.__name__ for module in modules)
    _ship_user_code([*modules, *_registered_by(registered)])
    return tune.with_resources(tune.with_parameters(_trial, space=space, data=data, policy=policy, full=full,
                                                    registered=registered), resources)
