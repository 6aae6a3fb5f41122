"""The exported model's charts, on the held-out test split (`evaluate_model`: the recipe's `test_predictions`): a
classifier's confusion matrix, accuracy per class, misclassified images and class distribution; a regression
model's predicted against true values and residuals."""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from matplotlib.figure import Figure

from autotune import recipes
from autotune.logs import warnings_kept
from autotune.recipes import ClassPredictions, ValuePredictions
from autotune.report.run import Run, Skip
from autotune.report.style import BLUE, GREEN, GREY, ORANGE, fmt, short, static_figure, styled

log = logging.getLogger("autotune")

MISCLASSIFIED_SHOWN = 24


def evaluate_model(run: Run, warned: list[str]) -> tuple[ClassPredictions | ValuePredictions, str]:
    """The exported model's predictions on the held-out test split: its recipe's `test_predictions`, on the data
    named in its card. Also a note when that data has changed since the model was trained. What loading the data
    warned of (a column that gives the target away, one read as categories) is appended to `warned`."""
    if run.model_dir is None:
        raise Skip(run.no_model)
    card, name = run.card, run.card.get("recipe")
    try:
        recipe = recipes.of_card(card)
    except Exception as err:  # a recipe file moved or broken: the rest of the report still helps
        raise Skip(f"could not load recipe {name!r} ({type(err).__name__}: {err})") from None
    predict = getattr(recipe, "test_predictions", None)
    if predict is None:
        raise Skip(f"recipe {name!r} gives no test predictions (it defines no test_predictions(model_dir, data))")
    log.info("report: loading the data the model was trained on, to predict its test split")  # a big table: minutes
    try:
        with warnings_kept(warned):
            data = recipes.load_data(recipe, recipes.data_section(recipe, card["config"]))
    except Exception as err:  # the data may be gone or need a download: the rest of the report still helps
        raise Skip(f"could not load the data the model was trained on ({type(err).__name__}: {err})") from None
    try:
        predictions = predict(str(run.model_dir), data)
    except Exception as err:  # the recipe's own code
        raise Skip(f"recipe {name!r} could not predict the test split ({type(err).__name__}: {err})") from None
    if not isinstance(predictions, (ClassPredictions, ValuePredictions)):
        raise Skip(f"recipe {name!r}'s test_predictions returned a {type(predictions).__name__}, not "
                    "autotune.recipes.ClassPredictions or ValuePredictions")
    if len(predictions.truth) == 0:
        raise Skip(f"recipe {name!r}'s test predictions hold no sample")
    fingerprint = getattr(data, "fingerprint", None)
    changed = fingerprint is not None and card.get("data_fingerprint") not in (None, fingerprint)
    note = ("The data differs from the data the model was trained on, or is split otherwise (its fingerprint, "
            "which covers both, changed). ") if changed else ""
    return predictions, note


def sample_noun(p: ClassPredictions) -> str:
    """What the test samples are, in words."""
    return "images" if p.images is not None else "samples"


def _confusion(p: ClassPredictions) -> tuple[np.ndarray, np.ndarray]:
    """The confusion matrix (true class x predicted class) as counts, and as the share of each true class."""
    k = len(p.labels)
    matrix = np.zeros((k, k), dtype=int)
    np.add.at(matrix, (p.truth, p.predicted), 1)
    return matrix, matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)


def confusion_figure(p: ClassPredictions) -> Figure:
    k = len(p.labels)
    matrix, share = _confusion(p)
    size = min(14.0, 2.5 + 0.4 * k)
    figure = static_figure(size + 1.2, size)
    ax = figure.subplots()
    shown = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    if k <= 25:
        for i in range(k):
            for j in range(k):
                if matrix[i, j]:
                    ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=8 if k <= 15 else 6,
                            color="white" if share[i, j] > 0.5 else "black")
    ticks = [short(label) for label in p.labels] if k <= 40 else []
    ax.set_xticks(range(k) if ticks else [], ticks, rotation=45 if max(map(len, ticks), default=0) > 2 else 0,
                  ha="right" if max(map(len, ticks), default=0) > 2 else "center")
    ax.set_yticks(range(k) if ticks else [], ticks)
    ax.set(xlabel="predicted", ylabel="true", title=f"confusion matrix, {len(p.truth)} test {sample_noun(p)}")
    figure.colorbar(shown, ax=ax, label="share of the true class", fraction=0.046)
    return figure


def confusion_chart(p: ClassPredictions) -> go.Figure:
    """`confusion_figure`, interactive: hover gives the true and predicted class, the count and the share."""
    k = len(p.labels)
    matrix, share = _confusion(p)
    labels = [str(label) for label in p.labels]
    figure = go.Figure(go.Heatmap(
        z=share, x=labels, y=labels, customdata=matrix, text=np.where(matrix > 0, matrix, "").astype(str),
        texttemplate="%{text}" if k <= 25 else None, colorscale="Blues", zmin=0, zmax=1,
        colorbar={"title": {"text": "share of the true class", "side": "right"}},
        hovertemplate=f"true %{{y}}, predicted %{{x}}: %{{customdata}} {sample_noun(p)} (%{{z:.0%}} of the true class)"
                      "<extra></extra>"))
    figure.update_xaxes(title_text="predicted", type="category", constrain="domain")
    figure.update_yaxes(title_text="true", type="category", autorange="reversed", scaleanchor="x")
    return styled(figure, f"confusion matrix, {len(p.truth)} test {sample_noun(p)}", min(900, 220 + 32 * k))


CONFUSION_TABLE_CLASSES = 25  # a confusion matrix of more classes is too large a table: the per-class one stays


def confusion_table(p: ClassPredictions) -> pd.DataFrame | None:
    """`confusion_figure`'s counts as a table: a row per true class, a column per predicted one; None for more than
    `CONFUSION_TABLE_CLASSES` classes."""
    if len(p.labels) > CONFUSION_TABLE_CLASSES:
        return None
    matrix, _ = _confusion(p)
    labels = [str(label) for label in p.labels]
    return pd.DataFrame({"true class": labels,
                         **{f"predicted {label}": matrix[:, j] for j, label in enumerate(labels)}})


def _per_class(p: ClassPredictions) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each class's test samples labelled correctly, its test samples, and the share (NaN without any)."""
    k = len(p.labels)
    correct = np.bincount(p.truth, weights=p.truth == p.predicted, minlength=k)
    total = np.bincount(p.truth, minlength=k)
    return correct, total, np.divide(correct, total, out=np.full(k, np.nan), where=total > 0)


def per_class_table(p: ClassPredictions) -> pd.DataFrame:
    """`per_class_figure`'s numbers as a table."""
    correct, total, accuracy = _per_class(p)
    return pd.DataFrame({"class": [str(label) for label in p.labels], f"test {sample_noun(p)}": total,
                         "correct": correct.astype(int), "accuracy": accuracy})


def per_class_figure(p: ClassPredictions) -> Figure:
    k = len(p.labels)
    _, total, accuracy = _per_class(p)
    figure = static_figure(6.5, min(16.0, 1.2 + 0.3 * k))
    ax = figure.subplots()
    y = np.arange(k)[::-1]
    ax.barh(y, np.nan_to_num(accuracy), color=[BLUE if t else GREY for t in total])
    for yi, a, t in zip(y, accuracy, total):
        ax.text(1.02, yi, f"{a:.0%} of {t}" if t else f"no test {sample_noun(p)}", va="center", fontsize=7.5)
    overall = float((p.truth == p.predicted).mean()) if len(p.truth) else float("nan")
    ax.axvline(overall, color=ORANGE, linestyle="--")
    ax.set_yticks(y, [short(label, 20) for label in p.labels], fontsize=8 if k <= 30 else 6)
    ax.set(xlim=(0, 1.2), xticks=np.linspace(0, 1, 6), xlabel="accuracy on the test split", ylabel="class",
           title=f"accuracy per class (dashed: overall, {overall:.1%})")
    ax.grid(axis="x", alpha=0.3)
    return figure


def _misclassified(p: ClassPredictions) -> tuple[np.ndarray, np.ndarray]:
    """The test samples labelled wrongly, and the first `MISCLASSIFIED_SHOWN` of them, the most confident first."""
    wrong = np.flatnonzero(p.truth != p.predicted)
    if len(wrong) == 0:
        raise Skip("every test image was classified correctly")
    return wrong, wrong[np.argsort(-p.confidence[wrong], kind="stable")][:MISCLASSIFIED_SHOWN]


def misclassified_table(p: ClassPredictions) -> pd.DataFrame:
    """`misclassified_figure`'s images in words: each one's true and predicted label and the model's confidence."""
    _, shown = _misclassified(p)
    return pd.DataFrame({"true": [str(p.labels[p.truth[i]]) for i in shown],
                         "predicted": [str(p.labels[p.predicted[i]]) for i in shown],
                         "confidence": [f"{p.confidence[i]:.0%}" for i in shown]})


def misclassified_figure(p: ClassPredictions) -> Figure:
    """The test images the model labelled wrongly (of `p.images`), the most confident first."""
    wrong, shown = _misclassified(p)
    columns = min(6, len(shown))
    rows = math.ceil(len(shown) / columns)
    figure = static_figure(max(5.0, 1.75 * columns), 1.95 * rows + 0.3)
    axes = np.atleast_1d(figure.subplots(rows, columns, squeeze=False).ravel())
    for ax in axes:
        ax.axis("off")
    for ax, i in zip(axes, shown):
        image = p.images[i]
        grey = image.shape[0] == 1
        ax.imshow(image[0] if grey else image.transpose(1, 2, 0), cmap="gray" if grey else None, vmin=0, vmax=255,
                  interpolation="nearest")
        ax.set_title(f"true {short(p.labels[p.truth[i]], 9)}\npred {short(p.labels[p.predicted[i]], 9)} "
                     f"({p.confidence[i]:.0%})", fontsize=8)
    figure.suptitle(f"{len(shown)} of {len(wrong)} misclassified, most confident first", fontsize=10)
    return figure


def distribution_table(p: ClassPredictions) -> pd.DataFrame:
    """`distribution_figure`'s counts as a table: a row per class, a column per split."""
    return pd.DataFrame({"class": [str(label) for label in p.labels],
                         **{split: np.asarray(counts, dtype=int) for split, counts in p.counts.items()}})


def distribution_figure(p: ClassPredictions) -> Figure:
    k = len(p.labels)
    figure = static_figure(min(16.0, max(6.5, 0.55 * k + 2)), 3.8)
    ax = figure.subplots()
    width = 0.27
    splits = (("train", BLUE, None), ("val", ORANGE, "//"), ("test", GREEN, ".."))  # hatched: told apart in grey
    for offset, (split, color, hatch) in zip((-width, 0, width), splits):
        counts = p.counts[split]
        ax.bar(np.arange(k) + offset, counts, width, color=color, hatch=hatch, edgecolor="white", linewidth=0,
               label=f"{split} ({int(counts.sum())})")
    ax.set_xticks(range(k), [short(label) for label in p.labels] if k <= 40 else [""] * k,
                  rotation=45 if max(map(len, p.labels)) > 2 else 0,
                  ha="right" if max(map(len, p.labels)) > 2 else "center")
    ax.set(xlabel="class", ylabel=sample_noun(p), title="class distribution of each split")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.grid(axis="y", alpha=0.3)
    return figure


@dataclass
class _Errors:
    residuals: np.ndarray  # predicted - true, per test sample
    rmse: float
    mae: float
    r2: float  # NaN when the true values do not vary


def _errors(p: ValuePredictions) -> _Errors:
    """How far the predictions are from the true values."""
    truth, predicted = np.asarray(p.truth, float), np.asarray(p.predicted, float)
    residuals = predicted - truth
    spread = float(np.square(truth - truth.mean()).sum())
    squared = float(np.square(residuals).sum())
    return _Errors(residuals, math.sqrt(squared / len(truth)), float(np.abs(residuals).mean()),
                   1 - squared / spread if spread > 0 else math.nan)


def baseline(p: ClassPredictions | ValuePredictions) -> str:
    """Baselines' scores on the test split beside the model's, in a sentence: always answering the most common class
    of the training split (a classifier's accuracy); predicting the test values' mean for every sample (a
    regression's RMSE and MAE, R² 0); and the recipe's reference model where it gives one (a linear model)."""
    if isinstance(p, ClassPredictions):
        split = "train" if "train" in p.counts else "test"
        common = int(np.argmax(p.counts[split]))
        reference = "" if p.reference is None else \
            f"; {p.reference.name}, {fmt(float(np.mean(p.truth == p.reference.predicted)))}"
        return (f"always answering the most common {split} class ({p.labels[common]}) scores accuracy "
                f"{fmt(float(np.mean(p.truth == common)))}{reference}; the model, "
                f"{fmt(float(np.mean(p.truth == p.predicted)))}")
    mean = float(np.mean(p.truth))
    model, constant = _errors(p), _errors(ValuePredictions(p.target, p.truth, np.full(len(p.truth), mean)))
    reference = "" if p.reference is None else \
        f"; {p.reference.name}, by {_rmse_mae(_errors(ValuePredictions(p.target, p.truth, p.reference.predicted)))}"
    return (f"predicting the test values' mean ({fmt(mean)}) for every sample misses by {_rmse_mae(constant)}"
            f"{reference}; the model, by {_rmse_mae(model)} (in the units of {p.target})")


def _rmse_mae(errors: _Errors) -> str:
    return f"RMSE {fmt(errors.rmse)}, MAE {fmt(errors.mae)}"


def _predicted_title(p: ValuePredictions, newline: str) -> str:
    e = _errors(p)
    return (f"{p.target}: predicted against true{newline}{len(p.truth)} test samples, RMSE {fmt(e.rmse)}, "
            f"MAE {fmt(e.mae)}, R² {fmt(e.r2)}")


def _diagonal(p: ValuePredictions) -> tuple[float, float]:
    """The range both axes of the predicted-against-true plot span: the diagonal is a perfect prediction."""
    both = np.concatenate([np.asarray(p.truth, float), np.asarray(p.predicted, float)])
    return float(both.min()), float(both.max())


def predicted_figure(p: ValuePredictions) -> Figure:
    """Each test sample's predicted value against its true one; the diagonal, a perfect prediction."""
    low, high = _diagonal(p)
    figure = static_figure(6.0, 5.2)
    ax = figure.subplots()
    ax.plot([low, high], [low, high], color=GREY, linestyle="--", label="perfect prediction")
    ax.scatter(p.truth, p.predicted, color=BLUE, s=18, alpha=0.7, label="a test sample")
    ax.set(xlabel=f"true {p.target}", ylabel=f"predicted {p.target}", title=_predicted_title(p, "\n"))
    ax.set_aspect("equal", adjustable="datalim")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    return figure


def predicted_chart(p: ValuePredictions) -> go.Figure:
    """`predicted_figure`, interactive: hover gives a sample's true and predicted value."""
    low, high = _diagonal(p)
    figure = go.Figure([
        go.Scatter(x=[low, high], y=[low, high], mode="lines", line={"color": GREY, "dash": "dash"},
                   name="perfect prediction", hoverinfo="skip"),
        go.Scatter(x=p.truth, y=p.predicted, mode="markers", marker={"color": BLUE, "size": 7, "opacity": 0.7},
                   name="a test sample", hovertemplate="true %{x:.4g}, predicted %{y:.4g}<extra></extra>"),
    ])
    figure.update_xaxes(title_text=f"true {p.target}", constrain="domain")
    figure.update_yaxes(title_text=f"predicted {p.target}", scaleanchor="x")
    return styled(figure, _predicted_title(p, ", "), 560)


def _residuals_title(p: ValuePredictions, newline: str) -> str:
    """The residuals' title, broken at `newline` (a PNG's width holds one short line only)."""
    e = _errors(p)
    return (f"residuals (predicted − true){newline}{len(e.residuals)} test samples, mean "
            f"{fmt(float(e.residuals.mean()))}, std {fmt(float(e.residuals.std()))}")


def _histogram(residuals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(counts, edges) of the residuals in 10 to 50 bins of one width: both drawings show these."""
    return np.histogram(residuals, bins=int(min(50, max(10, math.sqrt(len(residuals))))))


def residuals_table(p: ValuePredictions) -> pd.DataFrame:
    """`residuals_figure`'s bars as a table: each bin's range of predicted − true and its test samples."""
    counts, edges = _histogram(_errors(p).residuals)
    return pd.DataFrame({"predicted − true, from": edges[:-1], "to": edges[1:], "test samples": counts})


def residuals_figure(p: ValuePredictions) -> Figure:
    """How far the predictions miss: a histogram of predicted − true; the dashed line, no error."""
    counts, edges = _histogram(_errors(p).residuals)
    figure = static_figure(6.5, 3.8)
    ax = figure.subplots()
    ax.bar(edges[:-1], counts, width=np.diff(edges), align="edge", color=BLUE, edgecolor="white")
    ax.axvline(0, color=ORANGE, linestyle="--")
    ax.set(xlabel=f"predicted − true {p.target}", ylabel="test samples", title=_residuals_title(p, "\n"))
    ax.grid(axis="y", alpha=0.3)
    return figure


def residuals_chart(p: ValuePredictions) -> go.Figure:
    """`residuals_figure`, interactive: hover gives a bar's range and its count."""
    counts, edges = _histogram(_errors(p).residuals)
    figure = go.Figure(go.Bar(x=(edges[:-1] + edges[1:]) / 2, y=counts, width=np.diff(edges),
                              customdata=np.column_stack([edges[:-1], edges[1:]]), name="test samples",
                              marker={"color": BLUE, "line": {"color": "white", "width": 1}},
                              hovertemplate="%{customdata[0]:.4g} to %{customdata[1]:.4g}: %{y} samples"
                                            "<extra></extra>"))
    figure.add_vline(x=0, line={"color": ORANGE, "dash": "dash"})
    figure.update_xaxes(title_text=f"predicted − true {p.target}")
    figure.update_yaxes(title_text="test samples")
    return styled(figure, _residuals_title(p, ", "), 420)
