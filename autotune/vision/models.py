"""Models by name: the built-in `simple_cnn` and `mlp`, and every timm model (`resnet18`, `efficientnet_b0`, ...).

    model = build("resnet18", input_shape=(1, 28, 28), num_classes=10, dropout=0.1)

A model factory takes `in_chans`, `num_classes`, `input_size` and its own keyword arguments; arguments that are
None are dropped, so "unset" means "the model's default". timm models start from scratch unless `pretrained` is
true (timm's weights, downloaded once into its cache) or a weights file (autotune.vision.pretrained). Cheap to
import: torch and timm load when a model is built. Looking a timm name up does not import timm (~3 s) either: its
model names are cached in a file per timm version (under `autotune.cache.cache_dir()`), written by the first
lookup after timm is installed or upgraded.
"""
from __future__ import annotations

import fnmatch
import functools
import importlib.metadata
import json
import logging
import os
import tempfile
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from autotune.cache import cache_dir
from autotune.errors import AutotuneError, UserError
from autotune.registry import add_fallback, get, register
from autotune.calls import failure, unknown_arguments

if TYPE_CHECKING:
    from torch import nn

__all__ = ["build", "simple_cnn", "mlp"]

log = logging.getLogger("autotune")

# the size of simple_cnn and mlp: a timm model takes neither, its size is in its name (resnet18 vs resnet50)
SIZE_KEYS = ("width", "depth")
# timm's dropout before the classifier: the recipe passes model.dropout as it, so the space must not set it itself
DROP_RATE = "drop_rate"
DROP_RATE_FIX = f"use model.dropout (passed to timm as {DROP_RATE})"


@register("model")
def simple_cnn(in_chans: int, num_classes: int, input_size: int, width: int = 32, depth: int = 3,
               dropout: float = 0.0) -> nn.Module:
    """A small VGG-style CNN: `depth` blocks of a 3x3 conv (width, 2*width, ...) and max-pooling."""
    from autotune.vision.nets import SimpleCNN

    return SimpleCNN(in_chans, num_classes, input_size, width=width, depth=depth, dropout=dropout)


@register("model")
def mlp(in_chans: int, num_classes: int, input_size: int, width: int = 256, depth: int = 2,
        dropout: float = 0.0) -> nn.Module:
    """A multi-layer perceptron on the flattened pixels: `depth` hidden layers of `width` units."""
    from autotune.vision.nets import MLP

    return MLP(in_chans, num_classes, input_size, width=width, depth=depth, dropout=dropout)


def _timm_factory(name: str) -> Callable[..., nn.Module]:
    def create(in_chans: int, num_classes: int, input_size: int, dropout: float = 0.0,
               pretrained: bool | str = False, **kwargs: Any) -> nn.Module:
        import timm

        from autotune.vision import pretrained as weights

        for key in SIZE_KEYS:
            if key in kwargs:
                raise UserError(f"model.{key} applies to simple_cnn and mlp; timm model {name!r} sets its size by "
                                f"name (e.g. resnet18 vs resnet50): remove model.{key}")
        if DROP_RATE in kwargs:
            raise UserError(f"model.{DROP_RATE} is set by the recipe itself: {DROP_RATE_FIX}")
        options = weights.create_kwargs(name, pretrained)
        if pretrained is True and not weights.cached(name):
            weights.check_reachable(name)
        arguments = {"in_chans": in_chans, "num_classes": num_classes, DROP_RATE: dropout, **kwargs}
        try:  # timm replaces the classifier for num_classes and adapts the first convolution to in_chans
            with weights.timm_load_report() as loaded:
                model = timm.create_model(name, **options, **arguments)
        except Exception as err:
            if pretrained is False or not _builds_without_weights(name, arguments):
                raise  # the model's own error, not the weights'
            if pretrained is True and not weights.cached(name):  # the download failed: offline, most often
                raise weights.load_error(name, type(err).__name__) from None
            if isinstance(pretrained, str):  # a file of other weights, or not of weights at all
                raise weights.file_error(name, pretrained, err) from None
            raise
        if isinstance(pretrained, str):
            weights.check_fits(name, pretrained, model, loaded)
        return model

    create.__name__ = name
    return create


def _builds_without_weights(name: str, arguments: dict[str, Any]) -> bool:
    """Whether timm builds model `name` with `arguments` and no pretrained weights (on the meta device: no memory,
    no weights, a fraction of a second): then a build with the weights failed on the weights."""
    import timm
    import torch

    try:
        with torch.device("meta"):
            timm.create_model(name, pretrained=False, **arguments)
    except Exception:
        return False
    return True


def _timm_cached(what: str, ask_timm: Callable[[], dict[str, Any]]) -> dict[str, Any] | None:
    """`ask_timm()`, kept in a cache file per installed timm version and `what`: only the first call after
    installing or upgrading timm imports it (seconds). None when timm is not installed."""
    try:
        version = importlib.metadata.version("timm")
    except importlib.metadata.PackageNotFoundError:
        return None
    try:
        file = cache_dir() / f"timm-{version}-{what}.json"
    except OSError as err:  # no folder for the cache (no home folder): timm is asked each time
        log.debug("cannot cache timm's %s: %s", what, err)
        return ask_timm()
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        pass  # not cached yet (or damaged): ask timm
    answer = ask_timm()
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=file.parent, prefix=file.name, delete=False) as tmp:
            json.dump(answer, tmp)
        os.replace(tmp.name, file)  # atomic: a concurrent check reads the whole file or none
    except OSError as err:
        log.debug("cannot cache timm's %s in %s: %s", what, file, err)
    return answer


@functools.cache
def _timm_model_names() -> tuple[frozenset[str], frozenset[str]]:
    """(timm's listed model names, the deprecated names it still accepts)."""
    def ask() -> dict[str, Any]:
        import timm

        return {"models": list(timm.list_models()), "deprecated": sorted(timm.models.get_deprecated_models())}

    names = _timm_cached("models", ask)
    try:
        return frozenset(names["models"]), frozenset(names["deprecated"])  # type: ignore[index]
    except (KeyError, TypeError):  # no timm, or a cache file of another shape
        return frozenset(), frozenset()


def _timm_lookup(name: str) -> Callable[..., nn.Module] | None:
    arch = name.split(".", 1)[0]  # a timm name may carry a pretrained tag: resnet18.a1_in1k
    listed, deprecated = _timm_model_names()
    return _timm_factory(name) if arch in listed or arch in deprecated else None


def _timm_names(pattern: str) -> list[str]:
    return sorted(n for n in _timm_model_names()[0] if fnmatch.fnmatchcase(n, pattern))


@functools.cache
def _timm_keywords(name: str) -> tuple[str, ...] | None:
    """The keyword arguments timm model `name` takes: its class's and `timm.create_model`'s, with the factory's
    own, less SIZE_KEYS (which its factory refuses); None when the class takes any. Asked only for a timm model
    given keys the schema does not list, or width or depth."""
    arch = name.split(".", 1)[0]

    def ask() -> dict[str, Any]:
        import inspect

        import timm
        import torch

        with torch.device("meta"):  # the class, built with no memory and no weights: a fraction of a second
            model = timm.create_model(arch, pretrained=False)
        own = inspect.signature(type(model).__init__).parameters.values()
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in own):
            return {"keywords": None}
        creates = inspect.signature(timm.create_model).parameters.values()
        factory = inspect.signature(_timm_factory(arch)).parameters.values()
        return {"keywords": list(dict.fromkeys(
            p.name for group in (own, creates, factory) for p in group
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "self"))}

    found = _timm_cached(f"keywords-{arch}", ask)
    keywords = found.get("keywords") if isinstance(found, dict) else None
    return tuple(k for k in keywords if k not in SIZE_KEYS) if isinstance(keywords, list) else None


add_fallback("model", _timm_lookup, _timm_names, _timm_keywords)


def build(arch: str, input_shape: tuple[int, int, int], num_classes: int, **kwargs: Any) -> nn.Module:
    """The model `arch` for images of `input_shape` (C, H, W); None-valued `kwargs` are dropped."""
    factory = get("model", arch)
    kwargs = {k: v for k, v in kwargs.items() if v is not None and not (k == "pretrained" and v is False)}
    unknown = unknown_arguments(factory, kwargs, hidden=("in_chans", "num_classes", "input_size"))
    if unknown and "pretrained" in kwargs and "pretrained" in unknown:
        raise UserError(f"model.pretrained applies to timm models; {arch!r} has no pretrained weights: remove "
                        "model.pretrained, or pick a timm model (`autotune ls models`)")
    if unknown:
        raise UserError(f"model {arch!r} cannot be built: it takes {unknown}")
    try:
        return factory(in_chans=input_shape[0], num_classes=num_classes, input_size=input_shape[-1], **kwargs)
    except AutotuneError:
        raise
    except TypeError as err:
        raise UserError(f"model {arch!r} cannot be built with {sorted(kwargs)}: {err}") from None
    except Exception as err:  # a user's model factory, or a size that does not fit in memory
        raise failure("model", arch, factory, err) from None
