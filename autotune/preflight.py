"""Checks before a search starts, so that a mistake costs seconds instead of a search's first hour.

    preflight(space, recipe, data, export=True)  # after recipe.load_data, before Ray starts
    address = cluster_address(address)           # --address, else $RAY_ADDRESS (a Ray Job's entrypoint), else None
    check_address(address)                       # before ray.init(address=...), which would wait for minutes

Each failure is a UserError whose message says what is wrong and how to fix it. Imports neither ray nor torch.
"""
from __future__ import annotations

import json
import logging
import os
import socket
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

from autotune.errors import AutotuneError, UserError
from autotune.paths import blocking, expanded, shown
from autotune.run_options import option
from autotune.space import Choice, Grid, Space
from autotune.space.types import default_values

__all__ = ["preflight", "check_sampler_builds", "check_writable", "check_metrics_reported", "model_configs",
           "dry_run_models", "check_address", "cluster_address"]

log = logging.getLogger("autotune")


def preflight(space: Space, recipe: ModuleType, data: Any, *, export: bool = True) -> None:
    """Everything that can be checked before launch: the sampler builds, `export.dir` is writable (when exporting a
    recipe that exports), and the recipe's `dry_run` builds the model of the default configuration and of each
    searched model option."""
    check_sampler_builds(space)
    if export and hasattr(recipe, "export"):
        from autotune.engine.export import refuse_other_files, refuse_unwritable

        check_writable(space.export.dir, "export.dir", option("overrides", f"export.dir=models/{space.name}"))
        refuse_other_files(expanded(space.export.dir).absolute())  # before the search, not after it
        refuse_unwritable(expanded(space.export.dir).absolute(), "set export.dir to another path")
    check_metrics_reported(space, recipe, data)
    dry_run_models(space, recipe, data)


def check_sampler_builds(space: Space) -> None:
    """Build the sampler of `search.sampler` once: arguments its Optuna constructor refuses (beyond those `autotune
    check` refuses) are one UserError naming search.sampler, before Ray starts, not a traceback after."""
    from autotune.engine.optuna_space import make_sampler

    try:
        make_sampler(space.search, space.params)
    except (TypeError, ValueError) as err:
        given = ", ".join(f"{key}: {json.dumps(value, default=str)}" for key, value in space.search.sampler_args.items())
        raise UserError(f"search.sampler {space.search.sampler}{f' ({given})' if given else ''}: Optuna refuses "
                        f"it: {err}; change or drop the sampler's arguments (docs/search-space.md lists them)"
                        ) from None


def check_metrics_reported(space: Space, recipe: ModuleType, data: Any) -> None:
    """Each `search.metric` is one the recipe's optional `reported(config, data)` says its reports hold for this
    data (the tabular recipe: val_accuracy for a classifier, val_rmse, val_mae and val_r2 for a regression);
    otherwise the first report would fail the search, after Ray started."""
    reported = getattr(recipe, "reported", None)
    if reported is None:
        return
    values, _ = space.defaults()
    metrics = set(reported(space.config(values), data))
    missing = [m for m in space.search.metric if m not in metrics]
    if missing:
        raise UserError(f"search.metric {missing[0]!r} is not reported by recipe {space.recipe!r} for this data: it "
                        f"reports {', '.join(sorted(metrics))}; search one of them (--set search.metric=..., with "
                        "search.mode)")


def check_writable(path: str | Path, what: str, example: str) -> None:
    """`path` can be written as the export writes it: a folder (or link) made in its parent, created when
    missing. Otherwise a UserError naming `what` (e.g. "export.dir") with `example` as the fix."""
    target = expanded(path)
    if target.is_file():
        raise UserError(f"{what} {str(path)!r} is a file; give a folder path, e.g. {example}")
    parent = target.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise _not_writable(path, what, example, err, os.path.abspath(err.filename or parent)) from None
    try:
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError as err:  # the folder named, not the temporary file's random name
        raise _not_writable(path, what, example, err, parent.absolute()) from None


def _not_writable(path: str | Path, what: str, example: str, err: OSError, failed: str | Path) -> UserError:
    """The error of `check_writable`: `failed` is the folder that could not be made or written; a permission it
    lacks names the folder that blocks, its owner and the fix (`blocking`: a teammate's folder in a folder a team
    shares). A relative path names the working directory too: a container's is often read-only, and `example` is
    then no fix by itself."""
    relative = "" if expanded(path).is_absolute() else (f", and run where you can write: a relative path is in the "
                                                    f"working directory, {shown(Path.cwd())}")
    if isinstance(err, PermissionError):
        return UserError(f"{what} {str(path)!r} is not writable: {blocking(failed)}; or give a folder you can write, "
                         f"e.g. {example}{relative}")
    return UserError(f"{what} {str(path)!r} is not writable ({err.strerror or err}: {shown(failed)}); give a folder "
                     f"you can write, e.g. {example}{relative}")


def _is_model_choice(name: str, dist: Any) -> bool:
    return isinstance(dist, (Choice, Grid)) and (name == "model" or name.startswith(("model.", "model[")))


def model_configs(space: Space) -> list[tuple[str, dict[str, Any]]]:
    """(what, trial config) for the default configuration, then for each option of every searched model choice
    with the other parameters at their defaults; a model section already listed is not listed again."""
    defaults, _ = space.defaults()
    shown = ", ".join(f"{name}={value!r}" for name, value in defaults.items() if name.startswith("model"))
    runs = [(f"the default configuration{f' ({shown})' if shown else ''}", defaults)]
    for param in space.params:
        if _is_model_choice(param.name, param.dist):
            for label in param.dist.labels:
                values, _ = default_values(space.params, {**dict(param.condition), param.name: label})
                runs.append((f"the searched option {param.name}={label!r}", values))
    seen: set[str] = set()
    configs = []
    for what, values in runs:
        config = space.config(values)
        key = json.dumps(config.get("model"), sort_keys=True, default=repr)
        if key not in seen:
            seen.add(key)
            configs.append((what, config))
    return configs


def dry_run_models(space: Space, recipe: ModuleType, data: Any) -> None:
    """Call the recipe's optional `dry_run(config, data)` for each of `model_configs(space)`; one UserError
    names every configuration that fails. A recipe without `dry_run` is not checked."""
    dry_run = getattr(recipe, "dry_run", None)
    if dry_run is None:
        return
    failures = []
    for what, config in model_configs(space):
        try:
            dry_run(config, data)
        except AutotuneError as err:
            failures.append(f"{what}: {err}")
        except Exception as err:  # a recipe's own bug: still one line, before launch
            failures.append(f"{what}: the recipe's dry run failed: {type(err).__name__}: {err}")
    if len(failures) == 1:
        raise UserError(failures[0])
    if failures:
        raise UserError("\n  ".join([f"{len(failures)} model configurations fail the dry run:", *failures]))


# ----------------------------------------------------------------------------------------------- --address
def _ray_auto_address() -> str | None:
    """The address `ray.init(address="auto")` would use: $RAY_ADDRESS, else the running cluster Ray recorded."""
    env = os.environ.get("RAY_ADDRESS", "").strip()
    if env and env != "auto":
        return env
    current = Path(tempfile.gettempdir()) / "ray" / "ray_current_cluster"
    try:
        return current.read_text().strip() or None
    except OSError:
        return None


# HTTP/2's client connection preface and an empty SETTINGS frame; a server answers with its own SETTINGS (type 4)
_HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])
_SETTINGS_FRAME = 4


def cluster_address(address: str | None) -> str | None:
    """The Ray cluster a search joins: `address`, else $RAY_ADDRESS, as `ray.init()` joins the cluster it names
    (Ray sets it for a Ray Job's entrypoint: `ray job submit -- autotune run ...`); None, a local Ray."""
    if address:
        return address
    env = os.environ.get("RAY_ADDRESS", "").strip()
    if env:
        log.info("joining the Ray cluster at RAY_ADDRESS=%s (unset RAY_ADDRESS to run on a local Ray)", env)
    return env or None


def _host_port(address: str, given_as: str) -> tuple[str, int]:
    text = address.removeprefix("ray://")
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")  # [::1]:6379
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UserError(f"{given_as} {address!r} is not 'auto', HOST:PORT or ray://HOST:PORT "
                        "(e.g. 10.0.0.5:6379, the address `ray start --head` prints)")
    return host, int(port)


def _speaks_http2(connection: socket.socket) -> bool:
    """Whether the server at `connection` answers an HTTP/2 connection preface with HTTP/2's SETTINGS frame, as
    gRPC servers do (a Ray head's GCS); a server too slow to answer within the socket's timeout counts as one
    (ray.init then says what it finds). A web server, a database or a raylet's other ports answer otherwise."""
    try:
        connection.sendall(_HTTP2_PREFACE)
        head = connection.recv(9)
    except TimeoutError:
        return True
    except OSError:
        return False
    return len(head) >= 4 and head[3] == _SETTINGS_FRAME


def check_address(address: str | None, timeout: float = 3.0, given_as: str = "--address") -> None:
    """Fail in seconds when the Ray cluster at `address` (given as `given_as`: --address, or RAY_ADDRESS) cannot be
    reached: ray.init retries for minutes."""
    if not address:
        return
    target = _ray_auto_address() if address == "auto" else address
    if target is None:  # no cluster recorded: ray.init("auto") says so at once
        return
    host, port = _host_port(target, given_as)
    fix = (f"start it with `ray start --head` (see docs/cluster.md) or "
           f"{'unset RAY_ADDRESS' if given_as == 'RAY_ADDRESS' else 'drop ' + given_as} to run locally")
    try:
        with socket.create_connection((host, port), timeout=timeout) as connection:
            if address.startswith("ray://") or os.environ.get("RAY_USE_TLS", "0") not in ("", "0") \
                    or _speaks_http2(connection):
                return
        why = (f"{host}:{port} answers, but not as a Ray head's GCS does (a web server, the dashboard's port?): give "
               "the address `ray start --head` prints (port 6379 unless its --port says otherwise)")
    except socket.gaierror as err:
        why = f"unknown host {host!r} ({err.strerror})"
    except ConnectionRefusedError:
        why = f"nothing listens on {host}:{port}"
    except TimeoutError:
        why = f"no answer from {host}:{port} within {timeout:g}s"
    except OSError as err:
        why = f"{host}:{port}: {err.strerror or err}"
    shown = f"{address!r} ({target})" if target != address else repr(address)
    raise UserError(f"cannot reach the Ray cluster at {shown}: {why}; {fix}")

