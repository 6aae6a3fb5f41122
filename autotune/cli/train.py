"""`autotune train SPACE`: train one configuration of a space without Ray, then test it on the held-out split."""
from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import tempfile
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from autotune.cli.common import HelpFormatter, add_space_arguments, check_out_dir, default_values, one_configuration
from autotune.model_dir import check_not_a_canonical_model
from autotune.paths import room_for
from autotune.threads import use_threads

if TYPE_CHECKING:  # the CLI's other commands (predict above all) import no recipe machinery
    from autotune.recipes import Checkpoint
    from autotune.space import Space

EPILOG = """\
examples:
  autotune train search_spaces/digits.yaml                         the space's default configuration
  autotune train search_spaces/digits.yaml --set optimizer.lr=0.05 --set train.epochs=3
  autotune train search_spaces/digits.yaml --set optimizer.name=adamw --set optimizer.lr=3e-3
  autotune train search_spaces/mnist.yaml --set model.arch=mlp --out models/mnist-mlp
  autotune train models/digits --out models/digits-again       the exported model's configuration, trained again

Each searched parameter takes its --set value if given, else its default: the `default:` the space gives beside
the distribution, else the first option of a choice, the midpoint of a uniform or int range, the geometric mean
of a log range. The output says which were taken (`autotune check` shows them too).
Inside a choice of mappings (digits.yaml's optimizer: sgd or adamw), --set optimizer.lr=0.05 sets lr in every
option, and --set optimizer.name=adamw keeps only the option named adamw.
SPACE may also be an exported model (its folder, or its model.json): its card's configuration is trained again
(autotune train models/digits), up to the epoch its checkpoint was exported at, to reproduce it.
With --out DIR the final checkpoint and the exported model (model.pt, model.json) are kept in DIR. A DIR that is
a canonical model (models/<name> as `autotune run` exports it: a link to its current version) is refused: give a
new folder, or run a search to export a new version of it by the promotion rules (docs/retraining.md).
"""


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "train", help="train one configuration of a space, without Ray", epilog=EPILOG,
        description="Train one configuration of a search space standalone (the recipe without Ray): "
        "a line per epoch, then the accuracy on the held-out test split.",
        formatter_class=HelpFormatter,
    )
    add_space_arguments(parser, "the search space YAML file, or an exported model (its folder or its model.json) "
                                "whose configuration is trained again")
    parser.add_argument("--out", metavar="DIR", help="keep the final checkpoint and the exported model here")
    parser.set_defaults(func=run)


class _Enough(BaseException):
    """Raised by train_one's report at the epoch it stops after (a BaseException: a recipe's `except Exception` does
    not catch it)."""


_ELSEWHERE = "free space there, or give --out a folder on another disk"  # the way on from a full disk under --out


def train_one(recipe: ModuleType, config: dict[str, Any], searched: tuple[str, ...], out: str | None = None,
              about: dict[str, Any] | None = None, stop_after: int | None = None,
              exported_on: str | None = None) -> dict[str, float]:
    """Train `config` with `recipe`, printing each epoch, each report holding the `searched` metrics; returns the
    test metrics (and exports into `out`, with `about` in the model card: the space's name, recipe, ..., which
    `predict`, `serve` and `load_model` read). `stop_after`: the report after which training stops (its checkpoint
    is tested and exported), with the schedule of the whole configuration. `exported_on`: the data fingerprint of
    the model trained again, whose change is a line. A searched metric that no report held as a finite number is a
    warning line at the end (a search could not rank this configuration)."""
    from autotune.engine.export import file_digests, library_versions, operator, source_digests
    from autotune.errors import UserError
    from autotune.recipes import (NO_REPORT, call, data_section, described, fingerprint, load_data, reported,
                                  split_sizes, written)
    from autotune.splits import declared

    data = load_data(recipe, data_section(recipe, config))
    if data is not None:
        print(described(data), flush=True)
    data_fingerprint = fingerprint(data)  # the data's own, over the recipe's (as a search's)
    if exported_on and data_fingerprint and data_fingerprint != exported_on:
        print(f"since it was exported: the data changed (fingerprint {exported_on[:12]} -> "
              f"{data_fingerprint[:12]}): its test metrics are on other samples, and differ", flush=True)
    keep = Path(tempfile.mkdtemp(prefix="autotune-train-"))
    last: dict[str, float] = {}
    finite: set[str] = set()  # the searched metrics some report held as a finite number

    def report(metrics: dict[str, float], checkpoint: Checkpoint) -> None:
        metrics = reported(metrics, searched)
        last.update(metrics, reports=last.get("reports", 0) + 1)
        finite.update(name for name in searched if math.isfinite(metrics[name]))
        print(_epoch_line({"epoch": last["reports"], **metrics}), flush=True)
        if checkpoint is not None:
            shutil.rmtree(keep, ignore_errors=True)
            with written(checkpoint) as directory:
                shutil.copytree(directory, keep)
        if last["reports"] == stop_after:
            raise _Enough

    try:
        try:
            call(recipe, "train", config, report, data=data, checkpoint=None)
        except _Enough:
            pass
        if not last:
            raise UserError(NO_REPORT)
        card: dict[str, Any] = {}
        if out is not None:  # exported first, so that the test measures the model the folder holds (as a search's)
            Path(out).mkdir(parents=True, exist_ok=True)  # as a search's export gets it: a folder that exists
            with room_for("the model", out, _ELSEWHERE):
                card = {**(about or {}), **call(recipe, "export", str(keep), data, out),
                        **({"data_fingerprint": data_fingerprint} if data_fingerprint else {})}
            now = datetime.now(timezone.utc)
            card.update(config=config, metrics={k: v for k, v in last.items() if k != "reports"},
                        created=now.isoformat(timespec="seconds"), created_by=operator(),
                        version=f"train-{now:%Y%m%d-%H%M%S}",
                        versions=library_versions(), sources=source_digests(recipe, (about or {}).get("custom")),
                        split=declared(recipe), samples=split_sizes(data))
        test = call(recipe, "evaluate", str(keep if out is None else out), data) if hasattr(recipe, "evaluate") else {}
        print(f"test: {', '.join(f'{k} {v:.4f}' for k, v in test.items())}" if test else
              "test: none (the recipe defines no evaluate())")
        if out is not None:  # the card once tested, as a search's plain export writes it
            card.update(test_metrics=test, files=file_digests(Path(out), skip=("checkpoint",)))
            with room_for("the model", out, _ELSEWHERE):
                Path(out, "model.json").write_text(json.dumps(card, indent=2, default=str) + "\n")
                shutil.copytree(keep, Path(out) / "checkpoint", dirs_exist_ok=True)
            shown = ", ".join(p.name + "/" * p.is_dir() for p in sorted(Path(out).iterdir()))
            print(f"exported to {out} ({shown})")
    finally:
        shutil.rmtree(keep, ignore_errors=True)
    _warn_never_finite([name for name in searched if name not in finite], int(last["reports"]))
    return test


def _warn_never_finite(metrics: list[str], reports: int) -> None:
    """A warning line on stderr for each searched metric that none of the `reports` held as a finite number: a
    search would rank no trial of this configuration (`autotune run` fails with "no report held a finite value")."""
    for metric in metrics:
        print(f"warning: no report held a finite value of {metric!r}, the searched metric (search.metric): each of "
              f"the {reports} reports gave NaN or an infinity, so a search could not rank this configuration; check "
              "how the recipe computes it", file=sys.stderr)


def _epoch_line(metrics: dict[str, float]) -> str:
    """One report, whatever the recipe reports, in its order: `epoch   3: train_loss 0.1234  val_rmse 55.1  1.2s`
    (`epoch`: the recipe's own, else the report's number)."""
    shown = []
    for key, value in metrics.items():
        if key in ("epoch", "num_parameters") or not isinstance(value, (int, float)):
            continue
        if key == "epoch_seconds":
            shown.append(f"{value:.1f}s")
        elif key == "samples_per_second":
            shown.append(f"{value:.0f} samples/s")
        else:
            shown.append(f"{key} {value:.4f}")
    return f"epoch {metrics['epoch']:>3}: " + "  ".join(shown)


def _card_space(model_dir: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the space of one configuration that trains the model in `model_dir` again, its card): the card's recipe,
    custom file (their paths made absolute from the card's base_dir) and resolved configuration."""
    from autotune.errors import UserError
    from autotune.model_dir import read_card

    card = read_card(model_dir)
    if not isinstance(card.get("config"), dict) or not card.get("recipe"):
        raise UserError(f"the card of {model_dir} holds no configuration and recipe to train again; give a space file")
    base = card.get("base_dir")

    def located(path: str) -> str:
        return str(Path(base) / path) if base and path.endswith(".py") and not Path(path).is_absolute() else path

    search = card.get("search") or {}
    space = {"name": card.get("name") or model_dir.name, "recipe": located(card["recipe"]),
             **({"custom": located(card["custom"])} if card.get("custom") else {}), **card["config"],
             **({"search": {"metric": search["metric"], "mode": search["mode"]}} if search.get("metric") else {})}
    return space, card


def _card_configuration(model_dir: Path, source: dict[str, Any], card: dict[str, Any], overrides: list[str]
                        ) -> Space:
    """The space of the card's configuration (`_card_space`). Its problems (a key the recipe, edited since the
    export, reads no longer) are a UserError naming the card's file for the space, and what changed since the
    export (`changed_since`), with the fix: the card holds the keys the recipe read then."""
    from autotune import recipes
    from autotune.engine.export import changed_since, source_digests
    from autotune.errors import SpaceError, UserError

    try:
        return one_configuration(source, overrides)
    except SpaceError as err:
        file = str(model_dir / "model.json")
        problems = [replace(problem, file=file) if problem.file == "<dict>" else problem for problem in err.problems]
        recipe = recipes.load(source["recipe"])
        changed = changed_since(card, source_digests(recipe, source.get("custom")))
        since = f"; since the model was exported: {'; '.join(changed)}" if changed else ""
        raise UserError("\n".join([
            f"the configuration in {file} does not fit its recipe {source['recipe']}{since}:",
            *(f"  {problem}" for problem in problems),
            "the card holds the keys the recipe read when the model was exported: train a space file that names "
            f"them as the recipe reads them now (`autotune ls recipes {source['recipe']}` lists them), or the "
            "recipe as it was"])) from None


def _trained_again_from(model_dir: Path, card: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """What a model trained again from `model_dir` records of the model it trained again (its card's
    `trained_again_from`): the folder, its version, run and trial, and the --set `overrides` that changed it."""
    return {"model_dir": str(model_dir.absolute()), "version": card.get("version"), "run_dir": card.get("run_dir"),
            "trial_id": card.get("trial_id"), "overrides": list(overrides)}


def _trial_threads(card: dict[str, Any]) -> str:
    """Train on the threads the card's trial trained on (its `search.threads`), so that the weights come out the
    same: a sum split over other threads rounds otherwise, and the difference grows over the epochs. Returns what
    the first line says of it; a card without them (an earlier export's) trains on every core, and says so."""
    threads = (card.get("search") or {}).get("threads")
    if not threads:
        return "on every core: its card does not record the threads its trial trained on, so its weights may differ"
    use_threads(int(threads))
    return f"on {threads} thread{'s' * (threads != 1)}, as its trial"


def _exported_model(path: str) -> Path | None:
    """The exported model folder that SPACE names (the folder, or its model.json), else None."""
    folder = Path(path).parent if Path(path).name == "model.json" else Path(path)
    return folder if (folder / "model.json").is_file() else None


def run(args: argparse.Namespace) -> int:
    from autotune import recipes
    from autotune.engine.export import changed_since, source_digests
    from autotune.errors import UserError

    model_dir = _exported_model(args.space)
    card: dict[str, Any] = {}
    if model_dir is not None:
        source, card = _card_space(model_dir)
        space = _card_configuration(model_dir, source, card, args.overrides)
    else:
        space = one_configuration(args.space, args.overrides)
    recipe = recipes.load(space.recipe, space.base_dir)
    if args.out is not None and not hasattr(recipe, "export"):
        raise UserError(f"recipe {space.recipe!r} defines no export(): --out has no model to write; drop --out")
    if args.out is not None:
        check_not_a_canonical_model(args.out, "--out", f"--out models/{space.name}-train")
        check_out_dir(args.out, "--out", f"--out models/{space.name}")
    values = default_values(space)
    about = {"name": space.name, "recipe": space.recipe, "base_dir": space.base_dir, "custom": space.custom,
             **({"trained_again_from": _trained_again_from(model_dir, card, args.overrides)} if model_dir else {})}
    epoch = card.get("epoch") or (card.get("metrics") or {}).get("epoch")
    stop = int(epoch) if epoch and not args.overrides else None  # --set changes the run: it trains to its end
    if model_dir is not None:
        print(f"training the model of {model_dir} again (run {card.get('run_name', '?')}, trial "
              f"{card.get('trial_id', '?')}): its card's configuration" +
              (f" with --set {' '.join(args.overrides)}, to its last epoch" if args.overrides else "") +
              (f", stopping after epoch {stop}, the epoch it was exported at" if stop else "") +
              f", {_trial_threads(card)}", flush=True)
        changed = changed_since(card, source_digests(recipe, space.custom))
        if changed:
            print(f"since it was exported: {'; '.join(changed)} (its numbers may differ)", flush=True)
    test = train_one(recipe, space.config(values), space.search.metric, args.out, about, stop,
                     card.get("data_fingerprint"))
    recorded = card.get("test_metrics") or {}
    if recorded and test:
        print("its card: " + ", ".join(f"{k} {v:.4f}" for k, v in recorded.items() if k in test))
        print(_compared(test, recorded))
    return 0


def _compared(test: dict[str, float], recorded: dict[str, float]) -> str:
    """Whether the test metrics trained again are the card's to the last digit, the line that says so: four digits
    hide a model that came out otherwise (test_loss 0.349361 against 0.349360 reads 0.3494 twice)."""
    differing = [f"{k} by {test[k] - v:+.2g}" for k, v in recorded.items() if k in test and test[k] != v]
    if not differing:
        return "reproduced: the same test metrics as its card's, to the last digit"
    return f"not reproduced exactly: {', '.join(differing)} (the new one's minus its card's)"
