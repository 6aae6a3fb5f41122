"""The MLflow registry's `champion` alias, kept on the model autotune serves: `autotune rollback` and `autotune export
--trial` change the canonical model, and a job that loads `models:/NAME@champion` must get that one too.

    point_champion("http://mlflow:5000", "wine", "20261207-021500-123456-a1b2c3")
    # 'MLflow: models:/wine@champion -> version 3 (autotune version 20261207-021500-123456-a1b2c3)'

A model version is found by its tag `autotune.version` (the card's `version`), which the search's tracker
(`mlflow_runs`) writes on each version it registers.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from autotune.errors import UserError
from autotune.tracking import hide_passwords
from autotune.tracking.mlflow_runs import first_line, quick, new_client

__all__ = ["follow_card", "point_champion", "registered_entry"]

ALIAS = "champion"


def registered_entry(mlflow: Any, env: Mapping[str, str] = os.environ) -> dict[str, str] | None:
    """The card's `registered` entry of a search whose MLflow settings `mlflow` (`tracking.settings_of(space).mlflow`)
    register its exports: {"mlflow": {"uri": ..., "name": ...}}, the URI's password hidden; None where none is
    registered."""
    if mlflow is None or not mlflow.register:
        return None
    return {"mlflow": {"uri": hide_passwords(mlflow.uri or env.get("MLFLOW_TRACKING_URI") or ""),
                       "name": mlflow.register}}


def follow_card(card: Mapping[str, Any], env: Mapping[str, str] = os.environ) -> str | None:
    """Point `champion` at the version of `card` (a model made current by a rollback or an export) in the registry
    its search registered to (the card's `registered`: the URI, where MLFLOW_TRACKING_URI does not name another,
    and credentials from MLflow's own variables); None for a card of a model no search registered. A UserError as
    `point_champion` raises it."""
    entry = (card.get("registered") or {}).get("mlflow") if isinstance(card.get("registered"), dict) else None
    if not entry or not card.get("version"):
        return None
    return point_champion(env.get("MLFLOW_TRACKING_URI") or entry.get("uri") or None, entry["name"], card["version"])


def point_champion(uri: str | None, name: str, version: str) -> str:
    """Set the alias `champion` of the registered model `name`, in the MLflow at `uri`, to its model version tagged
    `autotune.version` == `version`; one line saying so. A UserError (one line: why, what the alias still names,
    the fix) when mlflow is not installed, the store cannot be reached, or no version of `name` is that one."""
    try:
        with quick():
            number = _point(new_client(uri), uri, name, version)
    except UserError:
        raise
    except ImportError:
        raise UserError(f"MLflow: cannot point models:/{name}@{ALIAS} at autotune version {version}: the mlflow "
                        "package is not installed (pip install \"autotune[mlflow]\"); the alias is unchanged") from None
    except Exception as err:  # the client's own errors: the server unreachable, a bad URI, the alias refused
        raise UserError(f"MLflow: cannot point models:/{name}@{ALIAS} at autotune version {version} "
                        f"({first_line(err)}); the alias is unchanged: once {_shown(uri)} answers, point it "
                        f"again, or set it with MlflowClient(tracking_uri=...).set_registered_model_alias({name!r}, "
                        f"{ALIAS!r}, N), N the model version tagged autotune.version = {version!r}") from None
    return f"MLflow: models:/{name}@{ALIAS} -> version {number} (autotune version {version})"


def _shown(uri: str | None) -> str:
    return hide_passwords(uri) if uri else "MLflow's default store"


def _point(client: Any, uri: str | None, name: str, version: str) -> str:
    """`point_champion` through `client`: the model version's number; a UserError where there is no such version."""
    if not client.search_registered_models(filter_string=f"name = '{name}'"):
        raise UserError(f"MLflow at {_shown(uri)} has no registered model {name!r}, so autotune version "
                        f"{version} was never registered there and no alias changed; tracking.mlflow.register "
                        "names the model a search registers")
    found = client.search_model_versions(f"name = '{name}' and tags.`autotune.version` = '{version}'")
    if not found:
        raise UserError(f"MLflow: autotune version {version} was never registered as a version of {name} (no model "
                        f"version tagged autotune.version = {version!r}); models:/{name}@{ALIAS} still names "
                        f"{_named(client, name)}. Register it with MlflowClient(tracking_uri=...).create_model_version("
                        f"{name!r}, SOURCE, tags={{'autotune.version': {version!r}}}), or tag the version that holds "
                        f"it: .set_model_version_tag({name!r}, N, 'autotune.version', {version!r})")
    number = str(max(int(found_version.version) for found_version in found))  # registered twice: the latest
    client.set_registered_model_alias(name, ALIAS, number)
    return number


def _named(client: Any, name: str) -> str:
    """What the alias names now: "version 2 (autotune version V)", or "no version"."""
    number = client.get_registered_model(name).aliases.get(ALIAS)
    if number is None:
        return "no version"
    tag = client.get_model_version(name, str(number)).tags.get("autotune.version")
    return f"version {number}" + (f" (autotune version {tag})" if tag else "")
