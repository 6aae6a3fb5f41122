"""Two gaps of the tabular recipe on real tables, measured without Ray: categories that training never saw, and
imbalanced classes. The recipe's `train` runs one configuration in this process (one thread) with a tiny reporter;
its last epoch's checkpoint is exported (`export`: model.pt, as `predict` and `serve` use it) and scored on the test
rows.

    python bench/tabular_categories.py                                  # seeds 0-9 (about 5 minutes on one
                                                                        # core); rewrites its section of
                                                                        # docs/benchmarks.md
    python bench/tabular_categories.py --seeds 0 --epochs 2 --no-write  # a smoke run

Unseen categories: diabetes (regression) plus a column `store` of 40 levels, each level adding its own effect (drawn
N(0, (--effect x the target's std)^2) per seed) to the target; every row gets a level at random. 8 levels are held out
of training: their rows are test rows only ("unseen"); of the other rows 15 % are test ("seen"), 10 % validation,
the rest train. Compared on the test RMSE of each group, and on the offset of the unseen rows' predictions from a
typical level's (their mean over the seen levels): the MLP as before this change (no category dropout, and the
MISSING and UNKNOWN embedding rows drawn at random, never trained: `reserved_rows_drawn`), the MLP now (those rows
start at zero) with train.category_dropout 0 and each of --dropouts, the MLP without the `store` column (what a
model that ignores the level can do), and scikit-learn's HistGradientBoosting with native categorical support on the
same encoded inputs (a level it did not see is treated as missing).

Imbalance: breast_cancer with its malignant class cut to 5 % of the rows, and digits with the classes 0, 1 and 2 cut
to a tenth of their rows; a stratified split (60 % train, 15 % validation, 25 % test) per seed. Compared on test
accuracy and balanced accuracy: the MLP with train.class_weight none and balanced, HistGradientBoostingClassifier
with class_weight None and 'balanced'. Every model is fitted on the train rows only.
"""
from __future__ import annotations

import argparse
import hashlib
import logging
import math
import os
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import replace
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from common import machine, write_section

if TYPE_CHECKING:
    from autotune.tabular.data import Data, Split

LEVELS, HELD_OUT = 40, 8  # the store column's levels, and those only test rows hold
SEEN_TEST, VAL = 0.15, 0.10  # shares of the seen levels' rows
SPLIT = (0.60, 0.15)  # imbalance: the stratified train and validation shares (the rest: test)
HGB_SEED = 0
SEEDS, DROPOUTS = "0,1,2,3,4,5,6,7,8,9", "0,0.05,0.1,0.2"  # the command line's defaults
MLP = {"model": {"width": 64, "depth": 2, "dropout": 0.1, "embedding_dim": 8},
       "optimizer": {"name": "adamw", "lr": 3e-3, "weight_decay": 1e-4, "schedule": "cosine"},
       "train": {"batch_size": 32, "seed": 0, "device": "cpu"}}


# ---------------------------------------------------------------------------------------------- the tables
def _bundled(name: str) -> pd.DataFrame:
    import sklearn.datasets

    frame = getattr(sklearn.datasets, f"load_{name}")(as_frame=True).frame
    return frame.rename(columns={c: str(c) for c in frame.columns})


def _data(name: str, task: str, train: pd.DataFrame, val: pd.DataFrame, test: pd.DataFrame,
          labels: tuple[str, ...] = ()) -> Data:
    """The splits as the recipe's `load` encodes them (the preprocessing fitted on `train`); the fingerprint is a
    digest of the rows, which `export` checks the checkpoint against."""
    from autotune.tabular.data import Data, Preprocessing, Split

    prep = Preprocessing.fit(train, "target", task, labels)

    def split(rows: pd.DataFrame) -> Split:
        numeric, categorical = prep.encode(rows)
        return Split(numeric, categorical, prep.encode_target(rows["target"]), rows.index.to_numpy())

    digest = hashlib.sha256(pd.util.hash_pandas_object(pd.concat([train, val, test])).to_numpy().tobytes())
    return Data(name, split(train), split(val), split(test), prep, digest.hexdigest())


def stores(seed: int, effect: float) -> tuple[Data, Split, Split]:
    """(the data, its test rows of seen levels, its test rows of unseen levels) of diabetes with the store column."""
    rng = np.random.default_rng(seed)
    frame = _bundled("diabetes")
    effects = rng.normal(0, effect * frame["target"].std(), LEVELS)
    level = rng.integers(0, LEVELS, len(frame))
    frame["store"] = [f"s{i:02d}" for i in level]
    frame["target"] = frame["target"] + effects[level]
    unseen = np.isin(level, rng.choice(LEVELS, HELD_OUT, replace=False))
    draw = rng.random(len(frame))
    seen_test, val = ~unseen & (draw < SEEN_TEST), ~unseen & (draw >= SEEN_TEST) & (draw < SEEN_TEST + VAL)
    train = ~(unseen | seen_test | val)
    tested = unseen | seen_test
    data = _data("diabetes+store", "regression", frame[train], frame[val], frame[tested])
    test = data.test
    seen, new = (replace(test, numeric=test.numeric[m], categorical=test.categorical[m], y=test.y[m],
                         rows=test.rows[m]) for m in (seen_test[tested], unseen[tested]))
    return data, seen, new


def _stratified(y: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    """[train, val, test] row positions: each class split by SPLIT, at least one row in each."""
    parts: list[list[np.ndarray]] = [[], [], []]
    for label in np.unique(y):
        rows = rng.permutation(np.flatnonzero(y == label))
        a = max(1, round(SPLIT[0] * len(rows)))
        b = a + max(1, round(SPLIT[1] * len(rows)))
        for part, chunk in zip(parts, (rows[:a], rows[a:b], rows[b:])):
            part.append(chunk)
    return [np.sort(np.concatenate(p)) for p in parts]


def imbalanced(name: str, seed: int) -> Data:
    """breast_cancer with 5 % malignant rows, or digits with a tenth of the rows of 0, 1 and 2; split stratified."""
    rng = np.random.default_rng(seed)
    frame = _bundled(name)
    if name == "breast_cancer":
        benign = int((frame["target"] == 1).sum())
        minority = np.flatnonzero(frame["target"] == 0)
        keep = rng.choice(minority, round(benign * 0.05 / 0.95), replace=False)
    else:
        rare = frame["target"].isin([0, 1, 2]).to_numpy()
        keep = np.flatnonzero(rare)[rng.random(int(rare.sum())) < 0.1]
        minority = np.flatnonzero(rare)
    frame = frame.drop(index=np.setdiff1d(minority, keep)).reset_index(drop=True)
    frame["target"] = frame["target"].astype(str)
    labels = tuple(sorted(frame["target"].unique(), key=int))
    train, val, test = _stratified(frame["target"].to_numpy(), rng)
    return _data(name, "classification", frame.iloc[train], frame.iloc[val], frame.iloc[test], labels)


# ---------------------------------------------------------------------------------------------- the models
Predict = Callable[["Split"], np.ndarray]  # a split's predictions: values in the target's units, or class indices


@contextmanager
def reserved_rows_drawn(recipe: ModuleType, seed: int) -> Iterator[None]:
    """The recipe's models as before this change: the MISSING and UNKNOWN rows of each embedding drawn N(0, 1), as
    nn.Embedding draws every row, instead of zero. From a generator of their own seeded with `seed` (train.seed),
    so that training draws what the recipe draws; `train` seeds torch with it just before it builds the model, so
    these rows may even be the old code's own (they are for this benchmark's one column: its figures equalled those
    of the recipe before the change), and have their distribution in any case."""
    import torch

    make = recipe.make_model

    def drawn(model: dict[str, Any], preprocessing: Any) -> torch.nn.Module:
        net = make(model, preprocessing)
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for embedding in net.embeddings:
                embedding.weight[:2] = torch.randn(embedding.weight[:2].shape, generator=generator)
        return net

    recipe.make_model = drawn
    try:
        yield
    finally:
        recipe.make_model = make


def train_mlp(data: Data, epochs: int, before: bool = False, **train: Any) -> Predict:
    """The recipe's `train` for `epochs` with the train keys `train` (`before`: its model as before this change,
    `reserved_rows_drawn`); its last epoch's checkpoint exported as `autotune predict` and `serve` take it
    (`recipe.export`: model.pt)."""
    import torch

    from autotune.recipes import tabular as recipe

    saves: list[Callable[[str], None]] = []

    def report(metrics: dict[str, float], save: Callable[[str], None]) -> None:
        saves[:] = [save]

    config = {**MLP, "train": {**MLP["train"], "epochs": epochs, **train}}
    with reserved_rows_drawn(recipe, config["train"]["seed"]) if before else nullcontext():
        recipe.train(config, report, data=data)
    with tempfile.TemporaryDirectory(prefix="autotune-categories-") as folder:
        saves[0](folder)
        recipe.export(folder, data, f"{folder}/model")
        model = torch.jit.load(f"{folder}/model/model.pt")
    regression = data.preprocessing.task == "regression"

    def predict(split: Split) -> np.ndarray:
        with torch.no_grad():
            out = model(split.numeric, split.categorical)
        return out.double().numpy() if regression else out.argmax(1).numpy()

    return predict


def without_column(data: Data, seen: Split, unseen: Split) -> tuple[Data, Split, Split]:
    """The same rows without their categorical column."""
    def numeric_only(split: Split) -> Split:
        return replace(split, categorical=split.categorical[:, :0])

    prep = replace(data.preprocessing, categories={})
    return (replace(data, train=numeric_only(data.train), val=numeric_only(data.val), test=numeric_only(data.test),
                    preprocessing=prep), numeric_only(seen), numeric_only(unseen))


def fit_hgb(data: Data, **options: Any) -> Predict:
    """HistGradientBoosting (default parameters and `options`, the categorical columns native) fitted on the encoded
    train rows."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    def inputs(split: Split) -> np.ndarray:
        return np.concatenate([split.numeric.numpy(), split.categorical.numpy().astype(np.float64)], axis=1)

    width = data.train.numeric.shape[1]
    categorical = list(range(width, width + data.train.categorical.shape[1])) or None
    regression = data.preprocessing.task == "regression"
    kind = HistGradientBoostingRegressor if regression else HistGradientBoostingClassifier
    model = kind(categorical_features=categorical, random_state=HGB_SEED, **options)
    model.fit(inputs(data.train), data.train.y.numpy())
    return lambda split: model.predict(inputs(split)).astype(np.float64 if regression else np.int64)


def rmse(predict: Predict, split: Split) -> float:
    return math.sqrt(float(np.mean(np.square(predict(split) - split.y.numpy().astype(np.float64)))))


def offset(predict: Predict, split: Split, levels: int) -> float:
    """The root mean square, over the rows of `split` (all of a level training never saw: UNKNOWN), of their
    prediction minus the mean of their predictions with each of the `levels` seen levels in its place: how far from
    a typical level's an unseen level's prediction is."""
    import torch

    typical = np.mean([predict(replace(split, categorical=torch.full_like(split.categorical, 2 + level)))
                       for level in range(levels)], axis=0)
    return math.sqrt(float(np.mean(np.square(predict(split) - typical))))


def accuracies(predict: Predict, split: Split) -> dict[str, float]:
    from sklearn.metrics import balanced_accuracy_score

    predicted, y = predict(split), split.y.numpy()
    return {"accuracy": float(np.mean(predicted == y)),
            "balanced_accuracy": float(balanced_accuracy_score(y, predicted))}


# ---------------------------------------------------------------------------------------------- the measures
def measure_categories(seeds: list[int], epochs: int, dropouts: list[float], effect: float) -> list[dict[str, Any]]:
    """Per seed: {model: {"seen": rmse, "unseen": rmse, "offset": offset}} and the rows of each split."""
    records = []
    for seed in seeds:
        data, seen, unseen = stores(seed, effect)
        levels = len(data.preprocessing.categories["store"])
        models = {"before": train_mlp(data, epochs, before=True, category_dropout=0.0),
                  **{f"mlp_{p:g}": train_mlp(data, epochs, category_dropout=p) for p in dropouts}}
        models["hgb"] = fit_hgb(data)
        scores = {name: {"seen": rmse(predict, seen), "unseen": rmse(predict, unseen),
                         "offset": offset(predict, unseen, levels)} for name, predict in models.items()}
        bare, bare_seen, bare_unseen = without_column(data, seen, unseen)
        column_less = train_mlp(bare, epochs)
        scores["no_column"] = {"seen": rmse(column_less, bare_seen), "unseen": rmse(column_less, bare_unseen),
                               "offset": 0.0}
        records.append({"seed": seed, "rmse": scores, "rows": [len(data.train), len(data.val), len(seen), len(unseen)]})
        print(f"categories seed {seed}: " + "; ".join(
            f"{m} seen {r['seen']:.1f} unseen {r['unseen']:.1f} offset {r['offset']:.1f}" for m, r in scores.items()),
            flush=True)
    return records


def measure_imbalance(seeds: list[int], epochs: int) -> list[dict[str, Any]]:
    """Per table and seed: {model: {"accuracy", "balanced_accuracy"}} on the test rows."""
    records = []
    for name in ("breast_cancer", "digits"):
        for seed in seeds:
            data = imbalanced(name, seed)
            models = {"mlp_none": train_mlp(data, epochs, class_weight="none"),
                      "mlp_balanced": train_mlp(data, epochs, class_weight="balanced"),
                      "hgb_none": fit_hgb(data), "hgb_balanced": fit_hgb(data, class_weight="balanced")}
            scores = {m: accuracies(predict, data.test) for m, predict in models.items()}
            counts = np.bincount(data.train.y.numpy())
            records.append({"table": name, "seed": seed, "scores": scores,
                            "rows": [len(data.train), len(data.val), len(data.test)],
                            "minority": float(counts.min() / counts.sum())})
            print(f"{name} seed {seed}: " + "; ".join(
                f"{m} acc {s['accuracy']:.3f} bal {s['balanced_accuracy']:.3f}" for m, s in scores.items()), flush=True)
    return records


# ---------------------------------------------------------------------------------------------- figures
def _mean_std(values: list[float], spec: str) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):{spec}} ± {spread:{spec.lstrip('+')}}"


def _spread_word(changes: list[float]) -> str:
    """Whether a paired change's mean is larger than its spread over the seeds."""
    spread = statistics.stdev(changes) if len(changes) > 1 else math.inf
    return "larger than the seeds' spread" if abs(statistics.fmean(changes)) > spread else "within the seeds' spread"


def _lead(values: list[float], spec: str) -> str:
    """A paired difference over the seeds: mean ± std, and on how many seeds it is below 0 (better: lower RMSE)."""
    better = sum(v < 0 for v in values)
    return f"{_mean_std(values, spec)} (lower on {better} of {len(values)})"


CATEGORY_NAMES = {"before": "MLP before (reserved rows drawn, no category dropout)",
                  "no_column": "MLP without the store column", "hgb": "HGB, native categorical"}


def _category_name(model: str) -> str:
    from autotune.recipes.tabular import CATEGORY_DROPOUT

    if model.startswith("mlp_"):
        p = float(model.removeprefix("mlp_"))
        return f"MLP, category_dropout {p:g}" + (" (the default)" if p == CATEGORY_DROPOUT else "")
    return CATEGORY_NAMES[model]


def render_categories(records: list[dict[str, Any]], effect: float) -> list[str]:
    models = [m for m in records[0]["rmse"] if m != "no_column"] + ["no_column"]
    base = "before"
    rows = np.array([r["rows"] for r in records])
    spread = float(_bundled("diabetes")["target"].std())
    lines = [
        "### Categories training never saw (diabetes + a 40-level store column)",
        "",
        f"Each level adds its own effect, N(0, ({effect:g} × the target's std)²), to the target; {HELD_OUT} levels are "
        f"held out of training. Rows per seed (median): {int(np.median(rows[:, 0]))} train, "
        f"{int(np.median(rows[:, 1]))} validation, {int(np.median(rows[:, 2]))} test rows of seen levels, "
        f"{int(np.median(rows[:, 3]))} of unseen ones. Test RMSE in the target's units (lower is better), mean ± std "
        f"over the {len(records)} seeds, and its change against the MLP before, paired per seed. Offset: how far "
        "an unseen level's prediction is from a typical level's, the root mean square over the unseen rows of their "
        "prediction minus the mean of their predictions with each seen level in its place (in the target's units; "
        f"the model without the column has none). The target's std is {spread:.0f} and the level effects' "
        f"{effect * spread:.0f}: no model can know an unseen level's own effect.",
        "",
        "| model | RMSE, seen levels | RMSE, unseen levels | offset, unseen | change, seen | change, unseen |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for model in models:
        seen, unseen, off = ([r["rmse"][model][k] for r in records] for k in ("seen", "unseen", "offset"))
        changes = ["-", "-"] if model == base else [
            _lead([r["rmse"][model][g] - r["rmse"][base][g] for r in records], ".1f") for g in ("seen", "unseen")]
        shown = "-" if model == "no_column" else _mean_std(off, ".1f")
        lines.append(f"| {_category_name(model)} | {_mean_std(seen, '.1f')} | {_mean_std(unseen, '.1f')} | {shown} | "
                     f"{changes[0]} | {changes[1]} |")
    return lines + ["", *category_verdict(records)]


def category_verdict(records: list[dict[str, Any]]) -> list[str]:
    """The recipe's default (train.category_dropout) against the MLP before, paired per seed; nothing where the
    default was not measured."""
    from autotune.recipes.tabular import CATEGORY_DROPOUT

    model = f"mlp_{CATEGORY_DROPOUT:g}"
    if model not in records[0]["rmse"]:
        return []

    def change(key: str) -> list[float]:
        return [r["rmse"][model][key] - r["rmse"]["before"][key] for r in records]

    def mean(key: str, which: str) -> float:
        return statistics.fmean(r["rmse"][which][key] for r in records)

    worst = {which: max(r["rmse"][which]["unseen"] for r in records) for which in ("before", model)}
    unseen = change("unseen")
    return [f"Verdict, the recipe's default (category_dropout {CATEGORY_DROPOUT:g}, reserved rows from zero) against "
            f"the MLP before: the offset of an unseen level's prediction goes from {mean('offset', 'before'):.1f} to "
            f"{mean('offset', model):.1f} (lower on {sum(c < 0 for c in change('offset'))} of {len(records)} seeds); "
            f"the test RMSE of unseen levels changes by {_mean_std(unseen, '+.1f')}, "
            + _spread_word(unseen)
            + f" (its worst seed: {worst['before']:.1f} before, {worst[model]:.1f} now); the RMSE of seen levels by "
            f"{_mean_std(change('seen'), '+.1f')}."]


IMBALANCE_NAMES = {"mlp_none": "MLP, class_weight none", "mlp_balanced": "MLP, class_weight balanced",
                   "hgb_none": "HGB defaults", "hgb_balanced": "HGB, class_weight='balanced'"}


def render_imbalance(records: list[dict[str, Any]]) -> list[str]:
    lines = [
        "### Imbalanced classes",
        "",
        "breast_cancer with its malignant class cut to 5 % of the rows; digits with the classes 0, 1 and 2 cut to a "
        "tenth of their rows. Stratified split per seed: 60 % train, 15 % validation, 25 % test. Test accuracy and "
        "balanced accuracy (the mean of the classes' recalls; higher is better), mean ± std over the seeds; the "
        "change of balanced against none is paired per seed.",
        "",
        "| table | rows train / val / test | rarest class in train | model | test accuracy | test balanced accuracy |",
        "|---|---|---:|---|---:|---:|",
    ]
    tables = list(dict.fromkeys(r["table"] for r in records))
    for table in tables:
        rows = [r for r in records if r["table"] == table]
        sizes = " / ".join(str(int(np.median([r["rows"][i] for r in rows]))) for i in range(3))
        share = f"{100 * statistics.fmean(r['minority'] for r in rows):.1f} %"
        for model, title in IMBALANCE_NAMES.items():
            acc = _mean_std([r["scores"][model]["accuracy"] for r in rows], ".3f")
            bal = _mean_std([r["scores"][model]["balanced_accuracy"] for r in rows], ".3f")
            lines.append(f"| {table} | {sizes} | {share} | {title} | {acc} | {bal} |")
    lines += ["", "Balanced against none, paired per seed:", ""]
    for table in tables:
        rows = [r for r in records if r["table"] == table]
        for kind in ("mlp", "hgb"):
            gains = {k: [r["scores"][f"{kind}_balanced"][k] - r["scores"][f"{kind}_none"][k] for r in rows]
                     for k in ("accuracy", "balanced_accuracy")}
            higher, lower = (sum(g * sign > 0 for g in gains["balanced_accuracy"]) for sign in (1, -1))
            lines.append(f"- {table}, {kind.upper()}: balanced accuracy {_mean_std(gains['balanced_accuracy'], '+.3f')}"
                         f" (higher on {higher}, lower on {lower} of {len(rows)} seeds: "
                         f"{_spread_word(gains['balanced_accuracy'])}), accuracy "
                         f"{_mean_std(gains['accuracy'], '+.3f')}.")
    return lines


def render(categories: list[dict[str, Any]], imbalance: list[dict[str, Any]], info: dict[str, Any], command: str,
           epochs: int, effect: float) -> str:
    mlp = (f"width {MLP['model']['width']}, depth {MLP['model']['depth']}, dropout {MLP['model']['dropout']}, "
           f"embedding_dim {MLP['model']['embedding_dim']}, adamw lr {MLP['optimizer']['lr']:g}, weight_decay "
           f"{MLP['optimizer']['weight_decay']:g}, cosine, batch_size {MLP['train']['batch_size']}, {epochs} epochs")
    lines = [
        "## Tabular: unseen categories and imbalanced classes",
        "",
        f"Command: `{command}` ({info['minutes']:.1f} minutes, {info['date']}; load average {info['load_start']:.2f} "
        f"at the start, {info['load_end']:.2f} at the end). Split seeds: "
        f"{', '.join(str(r['seed']) for r in categories)}. No Ray: the recipe's `train` with one configuration "
        f"({mlp}; train.seed 0, one thread on the CPU), scored as exported (`export`'s model.pt) after the last "
        "epoch. "
        "HGB: scikit-learn's HistGradientBoostingRegressor / Classifier with default parameters "
        f"(random_state={HGB_SEED}) on the same encoded train rows, the categorical column native "
        "(`categorical_features`). Every model is fitted on the train rows only.",
        "",
        f"Machine: {info['cpu']}, {info['cores']} cores, {info['ram_gib']} GiB RAM, {info['os']}; Python "
        f"{info['python']}, torch {info['torch']}, numpy {info['numpy']}, scikit-learn {info['sklearn']}.",
        "",
        *render_categories(categories, effect),
        "",
        *render_imbalance(imbalance),
    ]
    return "\n".join(lines).rstrip()


# ------------------------------------------------------------------------------------------------ main
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default=SEEDS, help="comma-separated seeds (tables and splits)")
    parser.add_argument("--epochs", type=int, default=30, help="train.epochs of every MLP")
    parser.add_argument("--dropouts", default=DROPOUTS,
                        help="train.category_dropout values to compare (0 is always among them)")
    parser.add_argument("--effect", type=float, default=0.75, help="the store effects' std, in target stds")
    parser.add_argument("--no-write", action="store_true", help="leave docs/benchmarks.md alone")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    dropouts = sorted({0.0, *(float(p) for p in args.dropouts.split(",") if p.strip())})
    if not seeds:
        parser.error("--seeds names no seed")
    import torch
    from sklearn import __version__ as sklearn_version

    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    logging.getLogger("autotune").setLevel(logging.ERROR)
    info = machine()
    info.update(load_start=info.pop("load_average"), sklearn=sklearn_version)
    began = time.perf_counter()
    categories = measure_categories(seeds, args.epochs, dropouts, args.effect)
    imbalance = measure_imbalance(seeds, args.epochs)
    info.update(load_end=os.getloadavg()[0], minutes=(time.perf_counter() - began) / 60,
                date=time.strftime("%Y-%m-%d %H:%M"))
    defaults = {"seeds": SEEDS, "epochs": 30, "dropouts": DROPOUTS, "effect": 0.75}
    given = [f"--{k} {getattr(args, k)}" for k, v in defaults.items() if getattr(args, k) != v]
    command = " ".join(["python bench/tabular_categories.py", *given])
    body = render(categories, imbalance, info, command, args.epochs, args.effect)
    print(body)
    if not args.no_write:
        write_section("tabular_categories", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
