"""An exported model directory (model.json, the model card, and the files its recipe's export wrote: the shipped
recipes' model.pt) and the recipe that made it, which
`autotune.load_model`, `autotune predict` and `autotune serve` go through: its optional `load_model`, `predict` and
`serve` (the recipe contract: autotune/recipes/__init__.py).

    card = read_card("models/digits")                                     # model.json
    predict, card = recipe_function("models/digits", "predict", "...")    # the recipe's function, or one line why not
    model = load_model("models/digits")                                   # autotune.load_model
"""
from __future__ import annotations

import json
import os
import re
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autotune.errors import AutotuneError, UserError

if TYPE_CHECKING:
    import torch

__all__ = ["broken_link", "canonical_link", "check_not_a_canonical_model", "load_model", "load_torchscript", "pinned",
           "read_card", "recipe_calls", "recipe_function"]

VERSIONS = re.compile(r"\.(.+)\.versions")  # the versions folder of the canonical model NAME: .NAME.versions


def pinned(model_dir: str | Path) -> Path:
    """`model_dir`, or the version folder it links to, resolved once: a canonical model (`models/<name>`, a link
    that an export moves to a new version) read through its link file by file could take the card of one version
    and the weights of the next while an export swaps the link."""
    folder = Path(model_dir)
    return Path(os.path.realpath(folder)) if folder.is_symlink() else folder


def canonical_link(folder: Path) -> Path | None:
    """The canonical model (`models/<name>`, the link beside `models/.<name>.versions/`) that `folder` leads to,
    when it is a link that resolves into a versions folder: itself, another link to it, or a link to one of its
    versions; None when it is no such link."""
    if not folder.is_symlink():
        return None
    real = Path(os.path.realpath(folder))
    found = VERSIONS.fullmatch(real.parent.name)
    return real.parent.parent / found[1] if found else None


def check_not_a_canonical_model(path: str, given_as: str, example: str, instead: str | None = None) -> None:
    """Before any work: a UserError when the output folder `path` (given as `given_as`: `--out`, `out`) is a canonical
    model (a link into a `.NAME.versions/` folder, or a folder whose card has a `history`, as an export writes it):
    writing into it would replace its current version in place, behind a running `serve`, and lose its history. The
    other way it suggests is `instead`, by default a search, named as the caller starts one
    (`autotune.run_options`)."""
    from autotune.paths import expanded
    from autotune.run_options import option, search_call

    folder = expanded(path)
    link = canonical_link(folder)
    if link is None and not _has_history(folder):
        return
    what = f"the canonical model {link}" if link is not None else "an exported model with a version history"
    instead = instead or (f"run a search (`{search_call(option('overrides', f'export.dir={path}'))}`), which exports "
                          f"a new version by the promotion rules")
    raise UserError(f"{given_as} {path} is {what}: writing into it would replace its current version in place; give "
                    f"a new folder, e.g. {example}, or {instead}")


def _has_history(folder: Path) -> bool:
    """Whether `folder` holds the card of an export's version (with a `history` or a `promotion`)."""
    try:
        card = json.loads((folder / "model.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(card, dict) and ("history" in card or "promotion" in card)


def broken_link(folder: Path) -> str | None:
    """Why `folder` leads nowhere when it is a link to a folder that does not exist (a canonical model's link
    copied without its versions folder, `cp -a models/srv elsewhere`); None when it is no such link."""
    if not folder.is_symlink() or folder.exists():
        return None
    to = os.readlink(folder)
    versions = next((part for part in Path(to).parts if VERSIONS.fullmatch(part)), None)
    why = (f"a canonical model's link, copied without its versions folder {versions}: copy that folder beside it "
           f"too, or copy the version itself (cp -rL)") if versions else "a broken link"
    return f"{folder} is a link to {to}, which does not exist ({why})"


def read_card(model_dir: str | Path) -> dict[str, Any]:
    """The model card of the exported model in `model_dir`; a UserError when the folder holds no model.json. The
    other files are its recipe's (the shipped recipes' loaders each say when model.pt is missing)."""
    folder = Path(model_dir)
    broken = broken_link(folder)
    if broken:
        raise UserError(f"{broken}: not an exported autotune model directory")
    if not folder.is_dir():
        raise UserError(f"{folder} {'is a file, not' if folder.exists() else 'does not exist: not'} an exported "
                        "autotune model directory")
    if not (folder / "model.json").is_file():
        raise UserError(f"{folder} holds no model.json: not an exported autotune model directory")
    try:
        card = json.loads((folder / "model.json").read_text())
    except ValueError as err:
        raise UserError(f"{folder / 'model.json'} is not a model card: {err}") from None
    if not isinstance(card, dict):
        raise UserError(f"{folder / 'model.json'} is not a model card: it holds a {type(card).__name__}")
    return card


def recipe_function(model_dir: str | Path, name: str, without: str) -> tuple[Callable[..., Any], dict[str, Any]]:
    """The function `name` of the recipe that made the model in `model_dir` (its card's `recipe`; the card's custom
    file is imported where it can be, `recipes.of_card`), and the card. A recipe that defines none: a UserError
    "recipe 'x' defines no name(): `without`"."""
    from autotune import recipes

    card = read_card(model_dir)
    function = getattr(recipes.of_card(card, custom_needed=False), name, None)
    if function is None:
        raise UserError(f"recipe {card.get('recipe')!r} defines no {name}(): {without}")
    return function, card


@contextmanager
def recipe_calls(card: dict[str, Any], name: str, function: Callable[..., Any]) -> Iterator[None]:
    """Around a call of `function`, the recipe's `name` (predict, serve, load_model) on the model of `card`: an
    exception of the recipe's own is one line naming the function, its file and line (`autotune.calls.failure`), and
    what changed since the model was exported (`autotune.engine.export.changed_since`: the recipe file edited, a
    library of another version), as the edited code may read what the model's export did not write."""
    try:
        yield
    except AutotuneError:
        raise
    except Exception as err:  # the recipe's code: anything it raises
        from autotune import recipes
        from autotune.calls import failure
        from autotune.engine.export import changed_since, source_digests

        line = str(failure("recipe function", name, function, err))
        changed = changed_since(card, source_digests(recipes.of_card(card, custom_needed=False), card.get("custom")))
        if changed:
            line += (f"; since this model was exported: {'; '.join(changed)}: make the recipe's {name}() read the "
                     "models its earlier code exported, or export this model again with the code of today "
                     "(`autotune train MODEL_DIR --out DIR` trains its configuration again)")
        raise UserError(line) from err


def load_model(model_dir: str | Path) -> Any:
    """The exported model in `model_dir`, loaded for Python by its recipe's `load_model`: an image classifier's
    `autotune.vision.predictor.Predictor`, a tabular model's `autotune.tabular.rows.TabularPredictor`, ... Each has
    `predict` and `card`. A canonical model's link is resolved first (`pinned`)."""
    broken = broken_link(Path(model_dir))
    if broken:
        raise UserError(f"{broken}: not an exported autotune model directory")
    folder = pinned(model_dir)
    load, card = recipe_function(folder, "load_model", f"autotune.load_model cannot load the model in {model_dir}")
    with recipe_calls(card, "load_model", load):
        return load(str(folder))


def load_torchscript(file: Path) -> torch.jit.ScriptModule:
    """The TorchScript model in `file` (an exported model.pt), on the CPU; a UserError naming the file when it
    cannot be loaded (damaged, truncated, not TorchScript)."""
    import torch

    if not file.is_file():
        raise UserError(f"{file.parent} holds no {file.name}: its model card is there but not the model; export the "
                        "model again (`autotune run`, or `autotune train --out DIR`) or restore it")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # TorchScript is deprecated, but loads without our code
            return torch.jit.load(str(file), map_location="cpu")
    except (RuntimeError, ValueError, OSError) as err:  # torch's zip reader raises RuntimeError on a damaged file
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0].split(". ")[0]  # torch's first sentence
        raise UserError(f"{file} cannot be loaded as a TorchScript model ({reason}): the file is damaged; export "
                        "the model again (`autotune run`, or `autotune train --out DIR`) or restore it") from None
