"""Pretrained weights for timm models: `model.pretrained` is false, true (timm's weights for the named model, from
its download cache) or the path of a weights file (.safetensors, .pth, .bin).

    create_kwargs("resnet18", "weights/resnet18.safetensors")  # -> timm.create_model keyword arguments
    describe("resnet18.a1_in1k", True)   # -> {"source": "timm:resnet18.a1_in1k (hf-hub timm/...)", "sha256": ...}

timm replaces the classifier for the dataset's classes and adapts the first convolution to its channels. A
missing file is a problem of the space (`check_value`: found when the space is read, before the data loads);
`true` offline with nothing cached is one UserError that says where the weights were looked for and in which form:
the preflight builds the default model before Ray starts, so it is raised there.
"""
from __future__ import annotations

import hashlib
import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from autotune.errors import UserError
from autotune.paths import expanded

__all__ = ["WEIGHT_SUFFIXES", "cached", "check_fits", "check_reachable", "check_value", "create_kwargs", "data_config",
           "describe", "file_error", "load_error", "normalization", "timm_load_report"]

WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin")
Pretrained = bool | str


def check_value(value: Any) -> str | None:
    """The schema's rule for `model.pretrained`: false, true or the path of a weights file that exists (a relative
    one read from the working directory): tested when the space is read, not after the data has loaded."""
    if isinstance(value, bool):
        return None
    if not value.lower().endswith(WEIGHT_SUFFIXES):
        return (f"must be false, true (timm's weights for the model) or the path of a weights file "
                f"({', '.join(WEIGHT_SUFFIXES)})")
    path = expanded(value).absolute()
    if not path.is_file():
        return (f"no such weights file ({path} {'is a folder' if path.is_dir() else 'does not exist'}); give the path "
                "of a weights file, relative to the working directory, or true for timm's weights")
    return None


def create_kwargs(arch: str, pretrained: Pretrained) -> dict[str, Any]:
    """`timm.create_model` keyword arguments that load `pretrained` (timm's own `pretrained_cfg_overlay` with
    `file=` for a weights file)."""
    if pretrained is False:
        return {"pretrained": False}
    if pretrained is True:
        return {"pretrained": True}
    path = expanded(pretrained).resolve()
    if not path.is_file():
        raise UserError(f"model.pretrained {pretrained!r}: no such weights file; give the path of a "
                        f"{'/'.join(WEIGHT_SUFFIXES)} file of {arch}'s weights, or true for timm's own")
    return {"pretrained": True, "pretrained_cfg_overlay": {"file": str(path)}}


def _hub_cache() -> str:
    from huggingface_hub import constants

    return str(constants.HF_HUB_CACHE)


def _timm_source(arch: str) -> tuple[str, Any]:
    """Where timm loads `arch`'s pretrained weights from: ("hf-hub", repo id or (repo, file)) or ("url", url).
    timm's resolution is private (`_resolve_pretrained_source`): used here only to name and find the file."""
    from timm.models import get_pretrained_cfg
    from timm.models._builder import _resolve_pretrained_source

    cfg = get_pretrained_cfg(arch)
    if cfg is None:
        raise UserError(f"model.pretrained: true, but timm has no pretrained weights for {arch!r}; pick a tagged "
                        f"name (`autotune ls models '{arch.split('.')[0]}*'`) or give a weights file")
    return _resolve_pretrained_source(cfg.to_dict())


def cached(arch: str) -> bool:
    """Whether timm's download cache holds `arch`'s pretrained weights."""
    return _cached_file(arch) is not None


def _cached_file(arch: str) -> Path | None:
    """The local file of `arch`'s timm weights, where timm's download cache holds it."""
    load_from, location = _timm_source(arch)
    if load_from == "hf-hub":
        from huggingface_hub import try_to_load_from_cache

        repo, names = (location, ("model.safetensors", "pytorch_model.bin")) if isinstance(location, str) else (
            location[0], (location[1],))
        for name in names:
            found = try_to_load_from_cache(repo, name)
            if isinstance(found, str):
                return Path(found)
        return None
    if load_from == "url":
        import torch

        path = Path(torch.hub.get_dir(), "checkpoints", os.path.basename(location))
        return path if path.is_file() else None
    return None


PROXIES = ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")
PROBE_SECONDS = 3.0


def check_reachable(arch: str) -> None:
    """`load_error` at once when the host timm would download `arch`'s weights from cannot be reached: offline,
    the Hugging Face client retries for minutes before it gives up. Not probed where a proxy is set (the download
    goes through it)."""
    if any(os.environ.get(name) for name in PROXIES):
        return
    load_from, location = _timm_source(arch)
    if load_from == "hf-hub":
        from huggingface_hub import constants

        if constants.HF_HUB_OFFLINE:  # the client fails at once by itself
            return
        location = constants.ENDPOINT
    url = urlparse(str(location))
    host, port = url.hostname or "", url.port or (80 if url.scheme == "http" else 443)
    try:
        socket.create_connection((host, port), timeout=PROBE_SECONDS).close()
    except OSError as err:
        raise load_error(arch, f"{host}:{port}: {err.strerror or type(err).__name__}") from None


def load_error(arch: str, reason: str) -> UserError:
    """One line for `pretrained: true` when timm cannot get the weights (offline and not cached, most often);
    `reason`: why, in a few words."""
    try:
        load_from, location = _timm_source(arch)
    except UserError as unknown:
        return unknown
    if load_from == "hf-hub":
        repo = location if isinstance(location, str) else location[0]
        where = (f"the Hugging Face cache {_hub_cache()} (hub repo {repo}: model.safetensors or pytorch_model.bin; "
                 "HF_HUB_CACHE moves it)")
    else:
        import torch

        where = f"torch's hub cache {Path(torch.hub.get_dir(), 'checkpoints')} (file {os.path.basename(str(location))})"
    return UserError(f"model.pretrained: true, but timm's weights for {arch!r} are not in {where} and cannot be "
                     f"downloaded ({reason}); run once where there is a network, or copy that cache "
                     f"here, or give model.pretrained: path/to/weights.safetensors")


_KEY_LISTS = {"missing": "Missing keys (", "unexpected": "Unexpected keys ("}


@contextmanager
def timm_load_report() -> Iterator[dict[str, list[str]]]:
    """The tensor names timm's load of pretrained weights found missing from the file or unexpected in it. timm
    loads leniently where it replaces the classifier, and only logs them (a deeper network's weights passed with a
    2,500-character warning); here they are kept off the log, for `check_fits`."""
    found: dict[str, list[str]] = {"missing": [], "unexpected": []}
    logger = logging.getLogger("timm.models._builder")
    shown_from = logger.getEffectiveLevel()

    def keep(record: logging.LogRecord) -> bool:
        text = record.getMessage()
        for kind, start in _KEY_LISTS.items():
            if text.startswith(start):
                found[kind] = text[len(start):text.index(")")].split(", ")
                return False
        return record.levelno >= shown_from

    level = logger.level
    logger.setLevel(logging.INFO)  # timm logs the missing keys at INFO
    logger.addFilter(keep)
    try:
        yield found
    finally:
        logger.removeFilter(keep)
        logger.setLevel(level)


def check_fits(arch: str, file: str, model: Any, loaded: dict[str, list[str]]) -> None:
    """A UserError unless the weights file held `arch`'s tensors: none the model lacks, and none missing but the
    classifier's and the first convolution's (which timm replaces or adapts)."""
    cfg = getattr(model, "pretrained_cfg", None) or {}
    replaced = [p for key in ("classifier", "first_conv") for p in _names(cfg.get(key))]
    missing = [k for k in loaded["missing"] if not any(k == p or k.startswith(p + ".") for p in replaced)]
    unexpected = loaded["unexpected"]
    if not missing and not unexpected:
        return
    kinds = ((unexpected, f"tensors that {arch} does not have"), (missing, f"of {arch}'s tensors missing"))
    shown = [f"{len(found)} {what} ({', '.join(found[:3])}{', ...' if len(found) > 3 else ''})"
             for found, what in kinds if found]
    raise UserError(f"model.pretrained {file!r} does not hold {arch}'s weights: {' and '.join(shown)}; give a "
                    f"weights file of {arch!r}, or set model.arch to the network the file is of")


def _names(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value or ())


def file_error(arch: str, file: str, err: Exception) -> UserError:
    """One line for a weights file timm cannot load into `arch`: tensors of other shapes, or not weights at all."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    detail = "; ".join(lines[:2])[:300] or type(err).__name__
    return UserError(f"model.pretrained {file!r} cannot be loaded into {arch!r} ({type(err).__name__}: {detail}); "
                     f"give a weights file of {arch!r} (a state_dict saved as .safetensors, .pth or .bin)")


def describe(arch: str, pretrained: Pretrained) -> dict[str, Any] | None:
    """What the model card records of the weights a model started from: their source and the sha256 of their
    file. None for a model trained from scratch."""
    if pretrained is False:
        return None
    if pretrained is True:
        load_from, location = _timm_source(arch)
        file = _cached_file(arch)
        shown = location if isinstance(location, str) else "/".join(location)
        source = f"timm:{arch} ({load_from} {shown})"
    else:
        file = expanded(pretrained).resolve()
        source = f"file:{file}"
    return {"source": source, "file": str(file) if file else None, "sha256": _sha256(file) if file else None}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def normalization(model: Any, channels: int) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """The mean and std a pretrained timm model was trained with (its pretrained configuration, as timm's
    `resolve_data_config` reads it), for `channels` input channels (one: the mean of its three); None for a
    model without one."""
    cfg = getattr(model, "pretrained_cfg", None)
    if not cfg or "mean" not in cfg or "std" not in cfg:
        return None
    mean, std = tuple(float(v) for v in cfg["mean"]), tuple(float(v) for v in cfg["std"])
    if channels != len(mean):
        mean, std = (sum(mean) / len(mean),) * channels, (sum(std) / len(std),) * channels
    return mean, std


def data_config(arch: str) -> dict[str, Any]:
    """How images are prepared for `arch`'s pretrained weights, from timm's `resolve_data_config` of its pretrained
    configuration: the image folder keys `image_size`, `interpolation` and `crop_pct`. Empty for a name timm
    holds no pretrained configuration of (a model of the project's own, say)."""
    from timm.data import resolve_data_config
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(arch)
    if cfg is None:
        return {}
    resolved = resolve_data_config(pretrained_cfg=cfg.to_dict())
    centre = resolved.get("crop_mode", "center") == "center"  # timm's other modes squash the image first
    return {"image_size": int(resolved["input_size"][-1]), "interpolation": resolved["interpolation"],
            "crop_pct": float(resolved["crop_pct"]) if centre else None}
