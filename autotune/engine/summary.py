"""The end-of-search summary a person reads: top trials, failures, time, where the model and logs are."""
from __future__ import annotations

import math
import shlex
import unicodedata
from pathlib import Path
from typing import Any

from autotune import paths
from autotune.engine.history import finite

__all__ = ["LISTED", "epochs_run", "format_summary", "format_table", "padded", "size_text", "status_word",
           "text_width", "traceback_file"]

LISTED = 10  # trials named in a list of the summary (and of the report); trials.csv holds the rest
FRONT = 20  # points of the Pareto front listed: the trade-off a search of several objectives is run for


def _cell(value: Any) -> str:
    """A table cell: a float to 4 decimals, without trailing zeros; a large one as a whole number up to 1e9 (not
    1.956e+04 beside 4810 in one column), a tiny one in 4 significant digits."""
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        if 1e4 <= abs(value) < 1e9:
            return f"{value:.0f}"
        return f"{value:.4g}" if abs(value) < 1e-3 or abs(value) >= 1e9 else f"{value:.4f}".rstrip("0").rstrip(".")
    return "-" if value is None else str(value)


def status_word(status: str, stopped_early: Any, epochs: Any = None) -> str:
    """A trial's end in words, from its `status`, `stopped_early` and `epochs` (trials.csv's columns): done, stopped
    early, error, interrupted, or ended before epoch 1 (by the search's end: a target, a budget)."""
    if status == "ERROR":
        return "error"
    if status == "INTERRUPTED":
        return "interrupted"
    if stopped_early in (True, "True"):
        return "stopped early"
    return "ended before epoch 1" if epochs is not None and epochs == 0 else "done"


def _hint(error: str) -> str:
    """What to change when a trial's error has a known remedy (GPU memory: not Ray's host-memory OutOfMemoryError)."""
    text = error.lower()
    if "out of memory" in text and ("cuda" in text or "mps" in text):
        return " (out of GPU memory: lower train.batch_size, or raise search.resources.gpu so fewer trials share a GPU)"
    return ""


def _move(move: dict[str, Any]) -> str:
    """One move in words: "node 3f2a1b4c lost after epoch 3, went on from its checkpoint of epoch 2"."""
    start = f"its checkpoint of epoch {move['checkpoint_epoch']}" if move.get("checkpoint_epoch") else "its start"
    when = f"after epoch {move['epoch']}" if move.get("epoch") else "during epoch 1"
    return f"node {move['node_id'][:8]} lost {when}, went on from {start}"


def _stops(trials: Any) -> list[str]:
    """Where trials were stopped early, as a line: "Stopped early after epoch 1: 8 trials, epoch 3: 3, epoch 9: 1"
    (what the early stopping judged on); none when no trial was."""
    epochs = trials.loc[trials["stopped_early"].astype(bool), "epochs"].dropna() if len(trials) else []
    if not len(epochs):
        return []
    counts = epochs.astype(int).value_counts().sort_index()
    return ["Stopped early after " + ", ".join(
        f"epoch {epoch}: {n}" + (f" trial{'s' * (n != 1)}" if i == 0 else "")
        for i, (epoch, n) in enumerate(counts.items()))]


def epochs_run(trials: Any) -> int:
    """The trials' epochs together: the search's cost in the unit a user compares searches by."""
    return int(trials["epochs"].fillna(0).sum()) if len(trials) else 0


def _epochs_run(trials: Any) -> str:
    """"N epochs run" (`epochs_run`)."""
    total = epochs_run(trials)
    return f"{total} epoch{'s' * (total != 1)} run"


def text_width(text: str) -> int:
    """The terminal cells `text` takes: two for a wide character (CJK, most emoji), none for a combining mark or a
    format character (an NFD accent, a zero-width joiner), one for any other."""
    return sum(0 if unicodedata.combining(c) or unicodedata.category(c) in ("Mn", "Me", "Cf")
               else 2 if unicodedata.east_asian_width(c) in ("W", "F") else 1 for c in text)


def padded(text: str, width: int) -> str:
    """`text` followed by the spaces that make it `width` terminal cells wide (`text_width`)."""
    return text + " " * (width - text_width(text))


def format_table(headers: list[str], rows: list[list[Any]], width: int | None = None) -> str:
    """A plain, aligned text table, no line ending in spaces, its columns measured in terminal cells (`text_width`).
    With `width` (a terminal's), a table wider than that is cut into blocks of columns that fit, one below the
    other, each led by the first column (`_blocks`)."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max(text_width(h), *(text_width(r[i]) for r in cells)) if cells else text_width(h)
              for i, h in enumerate(headers)]
    blocks = []
    for columns in _blocks(widths, width):
        lines = [[headers[i] for i in columns], ["-" * widths[i] for i in columns],
                 *([row[i] for i in columns] for row in cells)]
        blocks.append("\n".join("  ".join(padded(c, widths[i]) for c, i in zip(line, columns)).rstrip()
                                for line in lines))
    return "\n\n".join(blocks)


def _blocks(widths: list[int], width: int | None) -> list[list[int]]:
    """The columns of each block of a table `width` wide: all of them in one when it fits (or without `width`);
    else the first column, then as many of the next as fit beside it (one at least), block after block."""
    if width is None or len(widths) < 2 or sum(widths) + 2 * (len(widths) - 1) <= width:
        return [list(range(len(widths)))]
    blocks: list[list[int]] = []
    for i in range(1, len(widths)):
        if not blocks or sum(widths[j] + 2 for j in blocks[-1]) + widths[i] > width:
            blocks.append([0])
        blocks[-1].append(i)
    return blocks


def _positions(result: Any, params: list[str]) -> list[str]:
    """A line under the table that says what the labels of the choices labelled by position stand for
    (`train.grad_clip 0=null, 1=1.0`), where the table shows such a parameter: its 0 is no clipping at 0."""
    shown = [f"{name} {text}" for name, text in result.positions.items() if f"p:{name}" in params]
    return [f"Options by position: {'; '.join(shown)}"] if shown else []


def size_text(count: float) -> str:
    """A byte count as people read it: 512 B, 3.9 MB, 1.2 GB."""
    for unit in ("B", "kB", "MB", "GB"):
        if count < 1000:
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    return f"{count:.1f} TB"


def format_summary(result: Any, top: int = 10, width: int | None = None) -> str:
    """The `top` trials (`_ranked`) with their parameters, metric, epochs run (ASHA's stops show) and status, and
    how many more trials.csv lists; then where things are. `width`: a terminal's, which the table is fitted to
    (`format_table`).
    A search interrupted before any trial finished an epoch: one line that says so."""
    trials = result.trials
    if result.best_trial_id is None:
        return (f"The search was interrupted before any trial finished an epoch ({len(trials)} started). "
                f"Run: {result.run_uri or result.run_dir}")
    params = [c for c in trials.columns if c.startswith("p:")]
    headers = ["trial", *result.metric, "epochs", "status", *[p[2:] for p in params]]
    rows = []
    for row in _ranked(result)[:top]:
        status = status_word(row["status"], row["stopped_early"], row.get("epochs"))
        rows.append([row["trial_id"], *(row[m] for m in result.metric), row["epochs"], status,
                     *(row.get(p) for p in params)])
    cut = int((trials["status"] == "INTERRUPTED").sum()) if len(trials) else 0
    took = f", {result.seconds:.1f} s in this session" if result.resumed else f" in {result.seconds:.1f} s"
    out = [f"Search {result.name!r}: {len(trials)} trial{'s' * (len(trials) != 1)}{took}, {_epochs_run(trials)} "
           f"({int(trials['stopped_early'].sum()) if len(trials) else 0} stopped early, {result.num_errors} failed"
           f"{f', {cut} interrupted' if cut else ''}{f', {len(result.moved)} moved' if result.moved else ''})",
           *([f"Ended early: {result.ended}"] if result.ended else []),
           *([f"Warm start: the sampler was first told the finished trials of {result.warm_start} (not run again, "
              "not in this table)"] if result.warm_start else []),
           *_stops(trials), "", format_table(headers, rows, width)]
    if len(trials) > top:
        more = len(trials) - top
        out.append(f"({more} more trial{'s' * (more != 1)} in trials.csv)")
    out += _positions(result, params)
    out += _failed(trials)
    out += _not_finite(trials, result.metric)
    if result.moved:
        out += ["", "Moved trials (their node was lost: each went on from its last checkpoint on another node, not "
                "counted as a failure):"] + [f"  {m['trial_id']}: {_move(m)}" for m in result.moved]
    out += _front(result)
    out += ["", f"Best trial {result.best_trial_id}: " + ", ".join(
        f"{k}={_cell(v)}" for k, v in result.best_metrics.items() if k in result.metric or k == "epoch")
        + _failed_later(result)]
    if result.test_metrics:
        out.append("Held-out test split: " + ", ".join(f"{k}={_cell(v)}" for k, v in result.test_metrics.items()))
    if result.model_dir:
        verdict = "promoted" if result.promotion.get("promoted") else "kept the previous model"
        out.append(f"Model: {result.model_dir} ({verdict}: {result.promotion.get('reason', '')})")
        out += _exported_of_the_front(result)
    if result.interrupted:
        out.append("The search was interrupted: no model exported.")
    if result.run_uri:  # the trials (and their TensorBoard events) are in the storage; the study stays here
        out += [f"Run:   {result.run_uri} (study, summary and trials.csv in {result.run_dir})",
                f"TensorBoard: tensorboard --logdir {shlex.quote(str(result.run_uri))}"]
    else:
        out += [f"Run:   {result.run_dir}", f"TensorBoard: tensorboard --logdir {shlex.quote(str(result.run_dir))}"]
    out += result.tracked
    return "\n".join(out)


def _not_finite(trials: Any, metric: list[str]) -> list[str]:
    """The trials (not failed) whose searched metric was NaN or infinite from an epoch to their last report, each
    with that epoch: a training that diverged, which the table shows only as "-" or as its value before."""
    if "not_finite_from" not in trials or not len(trials):
        return []
    ended = trials[trials["not_finite_from"].notna() & (trials["status"] != "ERROR")]
    if not len(ended):
        return []
    lines = [f"  {r['trial_id']}: from epoch {int(r['not_finite_from'])} "
             + ("(ranked by its epochs before)" if all(finite(r[m]) for m in metric)
                else "(no finite value: not ranked)") for r in ended.to_dict("records")]
    return ["", f"Trials whose {' or '.join(metric)} was NaN or infinite to their last report (did the training "
            "diverge? a recipe can raise autotune.errors.Diverged to end such a trial with its reason):",
            *_capped(lines, "trials.csv: not_finite_from")]


def _failed(trials: Any) -> list[str]:
    """The failed trials, a line each with its error (and what to change, when known): the first `LISTED`, then how
    many more trials.csv holds."""
    failed = trials[trials["status"] == "ERROR"] if len(trials) else trials
    if not len(failed):
        return []
    records = failed.to_dict("records")
    lines = [f"  {r['trial_id']}: {r['error']}{_hint(r['error'])}" for r in records]
    files = [file for file in (traceback_file(r.get("path")) for r in records) if file]
    where = [f"  (each one's traceback: {Path(files[0]).name} in its trial's folder, e.g. {files[0]})"] if files else []
    return ["", "Failed trials:", *_capped(lines, "trials.csv: status ERROR, their error in the error column"), *where]


def traceback_file(trial_path: Any) -> str:
    """The file holding a failed trial's traceback in its folder `trial_path`, as a log shows it: Ray's `error.txt`,
    or for a worker that ended itself at its `search.trial_timeout`, the failure and the stack it was held at
    (TIMED_OUT_FILE), where Ray's holds only guesses at why a worker died; "" where neither is on this machine (a
    URI storage, a row without a folder)."""
    from autotune.engine.trial_errors import TIMED_OUT_FILE  # cloudpickle: only where a trial failed

    if not isinstance(trial_path, str) or not trial_path:
        return ""
    timed_out, file = Path(trial_path, TIMED_OUT_FILE), Path(trial_path, "error.txt")
    if timed_out.is_file() and timed_out.stat().st_size:
        return paths.shown(timed_out)
    return paths.shown(file) if file.is_file() else ""


def _capped(lines: list[str], where: str) -> list[str]:
    """The first `LISTED` of a list's lines, and one that counts the others and says `where` they are."""
    more = [f"  +{len(lines) - LISTED} more ({where})"] if len(lines) > LISTED else []
    return lines[:LISTED] + more


def _front_points(result: Any) -> dict[tuple[Any, ...], list[dict[str, Any]]]:
    """The points of the Pareto front (the metrics' values), the best first metric first (ties: the next), each
    with its trials: several where trials reached equal values (the same configuration, a discrete space)."""
    points: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for row in result.pareto:
        points.setdefault(tuple(row[m] for m in result.metric), []).append(row)
    signs = [-1.0 if mode == "max" else 1.0 for mode in result.mode]
    return dict(sorted(points.items(), key=lambda item: [s * v for s, v in zip(signs, item[0])]))


def _spread(items: list[Any], count: int) -> list[Any]:
    """`count` of `items` evenly spread along them, the first and the last included (all of them when fewer)."""
    if len(items) <= count:
        return items
    return [items[i] for i in sorted({round(k * (len(items) - 1) / (count - 1)) for k in range(count)})]


def _front(result: Any) -> list[str]:
    """The Pareto front, a row per point (`_front_points`): trials of equal values share the row of the exported
    one, else of the first started, which counts them. Of more than FRONT points, FRONT spread along the front, and
    a line on where the others are."""
    if not result.pareto:
        return []
    points = _front_points(result)
    shared = len(points) < len(result.pareto)
    rows = []
    for values in (shown := _spread(list(points), FRONT)):
        trials = points[values]
        first = next((r for r in trials if str(r["trial_id"]) == str(result.best_trial_id)), trials[0])
        rows.append([first["trial_id"], *values, *([f"{len(trials)} trials" if len(trials) > 1 else ""] * shared)])
    more = len(points) - len(shown)
    objectives = ", ".join(f"{m} {g}" for m, g in zip(result.metric, result.mode))
    count = f"{len(result.pareto)} trials" + (f" at {len(points)} points" if shared else "")
    return ["", f"Pareto front ({objectives}): {count}",
            format_table(["trial", *result.metric, *(["same values"] * shared)], rows),
            *([f"({more} more point{'s' * (more != 1)} between these: summary.json's pareto, the Pareto chart of "
               "autotune report)"] if more else [])]


def _exported_of_the_front(result: Any) -> list[str]:
    """With several objectives, which trial of the Pareto front was exported and by what rule, and the command that
    exports another (`autotune export`); none with one objective."""
    if not result.pareto:
        return []
    first, ties = result.metric[0], ", ".join(result.metric[1:])
    run = shlex.quote(str(result.run_uri or result.run_dir))
    return [f"Exported: {result.best_trial_id}, the best {first} on the Pareto front (ties: {ties}); another trial "
            f"of the front: autotune export {run} --trial ID"]


def _ranked(result: Any) -> list[dict[str, Any]]:
    """The trials (trials.csv's rows, in the order they started), the best first: by their metrics, the first
    metric first, ties broken by the next (`checkpoints.rank`, as the export ranks); of equal ones the best trial
    first, then in the order they started; trials without a value of every metric last."""
    from autotune.engine.checkpoints import rank  # imports ray: not when `autotune report` imports this module

    def key(pair: tuple[int, dict[str, Any]]) -> tuple[Any, ...]:
        position, row = pair
        value = rank(row, result.metric, result.mode)
        return (value is None, tuple(-v for v in value or ()), str(row["trial_id"]) != str(result.best_trial_id),
                position)

    return [row for _, row in sorted(enumerate(result.trials.to_dict("records")), key=key)]


def _failed_later(result: Any) -> str:
    """The best line's note when the best trial failed after its best report (every trial's reports are ranked,
    so the model is its checkpoint of that epoch); "" otherwise."""
    trials = result.trials
    if "status" not in trials:
        return ""
    status = trials.loc[trials["trial_id"].astype(str) == str(result.best_trial_id), "status"]
    return " (the trial failed later: this is its best epoch before it did)" if (status == "ERROR").any() else ""
