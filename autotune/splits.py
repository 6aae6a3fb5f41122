"""Train/val/test splits that keep each sample where it was when data is added.

A sample's split follows from its key (a table row's values, an image file's path under the data root, else its
position) and the split seed alone: the key and the seed hash to a number u in [0, 1), and u below
`test_fraction` is a test sample, below `test_fraction + val_fraction` a validation one, else a training one.
Adding samples therefore moves none of the others: a retrain that tests the current model on the new data's test
split never tests it on rows it was trained on. The price is that a split's size is the fraction only on average
(a binomial draw: 10 % of 200 rows is 20 ± 4), and a table's classes are spread by chance, not stratified.
Identical keys (a table's repeated rows) land in one split, so a test row is never also a training row, and a
repeat appended later goes where the earlier ones are; a table of many repeats splits in lumps.
Rows ordered in time are split by time instead (`ordered`): the latest are the test split, the ones before them the
validation split, so that a model is scored on a future it did not train on.
"""
from __future__ import annotations

import hashlib
import unicodedata
from datetime import datetime, timezone
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["TRAIN", "VAL", "TEST", "text_keys", "position_keys", "combined", "assign", "positions", "empty_split_hint",
           "ordered", "absent_classes", "MAJORITY", "dominant_class", "SETTINGS", "trained_share", "SCHEME", "OWN",
           "declared", "scheme_of", "alike_classes", "spelled"]

TRAIN, VAL, TEST = 0, 1, 2
FEW_TO_RANK = 50  # validation samples of a classifier: below it, one sample moves val_accuracy by over 2 points (a warning)
MAJORITY = 0.8  # a class this share of the training samples or more: accuracy rewards predicting it (a warning)
SETTINGS = {"split_seed": 0, "val_fraction": 0.1, "test_fraction": 0.1, "key": None,
            "order": None}  # the data keys, and defaults
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
SCHEME = "keyed"  # how this module splits: a model's card records it (`split`)
OWN = "recipe"  # a recipe's own split, which may move earlier samples between splits when data is added
_KEYED_SINCE = datetime(2026, 12, 5, 15, 41, 3, tzinfo=timezone.utc)  # before it, autotune drew a seeded permutation


def _mix(h: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser over uint64s: each output bit depends on every input bit."""
    h = h.copy()
    h ^= h >> np.uint64(30)
    h *= np.uint64(0xBF58476D1CE4E5B9)
    h ^= h >> np.uint64(27)
    h *= np.uint64(0x94D049BB133111EB)
    h ^= h >> np.uint64(31)
    return h


def text_keys(keys: Sequence[str]) -> np.ndarray:
    """uint64 keys of strings (an image file's path under the data root), the same in every process and version.
    A file name that is not UTF-8 (Python reads its bytes as surrogates) hashes its own bytes."""
    return np.fromiter((int.from_bytes(hashlib.blake2b(k.encode("utf-8", "surrogateescape"), digest_size=8).digest(),
                                       "little") for k in keys), dtype=np.uint64, count=len(keys))


def position_keys(n: int) -> np.ndarray:
    """uint64 keys of samples known only by their position: appending samples keeps the earlier ones' keys."""
    return _mix(np.arange(n, dtype=np.uint64) + _GOLDEN)


def combined(keys: np.ndarray, more: np.ndarray) -> np.ndarray:
    """Keys of pairs, order mattering: a table row's key from its columns' keys, folded in one column at a time."""
    with np.errstate(over="ignore"):
        return _mix(np.asarray(keys, dtype=np.uint64) * _GOLDEN + np.asarray(more, dtype=np.uint64))


def assign(keys: np.ndarray, val_fraction: float, test_fraction: float, seed: int) -> np.ndarray:
    """Each sample's split (TRAIN, VAL or TEST, as int8) from its uint64 key and the seed."""
    keys = np.asarray(keys, dtype=np.uint64)
    salt = _mix(np.array([seed & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64))[0]
    h = _mix(_mix(keys ^ salt))
    u = (h >> np.uint64(11)).astype(np.float64) / float(2**53)
    return np.where(u < test_fraction, TEST, np.where(u < test_fraction + val_fraction, VAL, TRAIN)).astype(np.int8)


def positions(keys: np.ndarray, val_fraction: float, test_fraction: float,
              seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train, val, test) positions, each ascending, of the samples with these keys."""
    split = assign(keys, val_fraction, test_fraction, seed)
    return tuple(np.flatnonzero(split == s) for s in (TRAIN, VAL, TEST))  # type: ignore[return-value]


def ordered(times: np.ndarray, val_fraction: float,
            test_fraction: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train, val, test) positions, each ascending, split by time: the samples of the latest `times` (sortable
    numbers: a date's nanoseconds, a month's number) are the test split, about `test_fraction` of them, the ones
    before those the validation split, about `val_fraction`, and the earlier ones the training split. Samples of one
    time share a split (a day's rows are not cut between training and validation), so a split that a time ends
    holds a little more than its share. Samples added later than every other take the test split over: the earlier
    ones move toward training, none toward the test split."""
    times = np.asarray(times)
    ranked = np.sort(times)

    def held_from(share: float) -> np.ndarray:  # the latest `share` of the samples, at least one where share > 0
        count = max(1, round(share * len(ranked))) if share > 0 and len(ranked) else 0
        return times >= ranked[-count] if count else np.zeros(len(times), dtype=bool)

    test = held_from(test_fraction)
    val = held_from(test_fraction + val_fraction) & ~test
    return np.flatnonzero(~(test | val)), np.flatnonzero(val), np.flatnonzero(test)


def empty_split_hint(fraction: float, n: int, unit: str) -> str:
    """How to fill a split that came out empty: each of the n samples lands in it with chance `fraction`."""
    if fraction <= 0:
        return "set it above 0: it is the chance that each sample lands there"
    return (f"raise it, try another data.split_seed, or add {unit} (each lands there with chance {fraction}: "
            f"{fraction * n:.1f} of {n} on average)")


def absent_classes(every: Sequence[str], present: Iterable[str]) -> str:
    """The classes of `every` (in its order) that `present` lacks, named for a message: "class 'cat'", "classes
    'a', 'b'", "classes 'a', 'b', 'c', 'd', 'e' and 9666 more" (five named at most); "" when none. Samples are split
    one by one, so a rare class can miss a split."""
    held = set(present)
    missing = [name for name in every if name not in held]
    shown = ", ".join(map(spelled, missing[:5])) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
    return f"class{'es' * (len(missing) > 1)} {shown}" if missing else ""


def alike_classes(names: Iterable[str]) -> list[list[str]]:
    """The groups of class names that differ only by surrounding spaces, case or Unicode form (' yes', 'Yes',
    'yes'; 'café' as one character or as 'e' and an accent; Turkish 'TÜRKİYE' and 'Türkiye'), each sorted: each
    name is a class of its own."""
    forms: dict[str, list[str]] = {}
    for name in sorted(names):
        forms.setdefault(_folded(name), []).append(name)
    return [group for group in forms.values() if len(group) > 1]


def _folded(name: str) -> str:
    """`name` without surrounding spaces, case or Unicode form, Turkish case included: Python folds 'İ' to 'i' and a
    combining dot, and leaves 'ı' (the lower case of Turkish 'I'), so both are read as 'i'."""
    folded = unicodedata.normalize("NFC", name.strip().casefold())
    return folded.replace("i\u0307", "i").replace("\u0131", "i")


def spelled(name: str) -> str:
    """A class name quoted for a message, as readable as written, with a note when it is written decomposed (NFD,
    an accent as a character of its own), which looks like its composed twin: "'café' (decomposed: NFD)"."""
    return repr(name) + (" (decomposed: NFD)" if unicodedata.normalize("NFC", name) != name else "")


def dominant_class(counts: Mapping[str, int], unit: str) -> str:
    """Why accuracy misleads when one class holds MAJORITY of the training `unit` ("rows", "samples") or more, for a
    warning; "" otherwise. `counts`: each class's training samples."""
    total = sum(counts.values())
    name, most = max(counts.items(), key=lambda item: item[1]) if counts else ("", 0)
    share = most / total if total else 0.0
    if share < MAJORITY:
        return ""
    return (f"class {name!r} is {100 * share:.1f}% of the training {unit}: accuracy rewards always predicting it "
            f"(that alone scores {100 * share:.1f}%); search.metric: val_balanced_accuracy, the mean of the classes' "
            f"recalls, does not (always predicting one class scores 1/{len(counts)} there), and train.class_weight: "
            "balanced weighs the rare classes up")


def few_to_rank(n: int, unit: str) -> str:
    """Why a classifier's validation split of `n` samples (`unit`: "rows", "samples") ranks trials by chance, for a
    warning; "" from FEW_TO_RANK samples (and for an empty split, which has its own error)."""
    if not 0 < n < FEW_TO_RANK:
        return ""
    return (f"the validation split holds {n} {unit}: each moves val_accuracy by {100 / n:.1f} points, so trials that "
            f"differ by fewer {unit} are ranked by chance and the best trial may have been lucky; raise "
            f"data.val_fraction (the search compares trials on the validation split only) or add {unit}")


def trained_share(before: Mapping[str, Any], after: Mapping[str, Any]) -> tuple[float, list[str]]:
    """Of the test samples that the data settings `after` split off, the share that the settings `before` put in
    their train split (over the same samples, on average), and the SETTINGS that differ ("data.split_seed 0 -> 2").
    With the same seed and key columns each sample hashes to the same u: a larger test fraction reaches into the
    earlier train split only past the earlier test and validation fractions (in time, with the same `order`
    column, alike: the latest share of the rows). Another seed, key or order: u is drawn anew."""
    old, new = ({**SETTINGS, **{k: d[k] for k in SETTINGS if k in d}} for d in (before, after))
    old["key"], new["key"] = old["key"] or None, new["key"] or None  # no key columns: every column
    old["order"], new["order"] = old["order"] or None, new["order"] or None
    changed = [f"data.{k} {old[k]!r} -> {new[k]!r}" for k in SETTINGS if old[k] != new[k]]
    held_out = float(old["test_fraction"]) + float(old["val_fraction"])  # u below it: not trained on
    if (old["split_seed"], old["key"], old["order"]) != (new["split_seed"], new["key"], new["order"]):
        return max(0.0, 1.0 - held_out), changed
    test = float(new["test_fraction"])
    return (max(0.0, test - held_out) / test if test > 0 else 0.0), changed


def declared(recipe: Any) -> str:
    """How a recipe splits its data, as it declares it: SCHEME when its module sets `SPLIT = autotune.splits.SCHEME`
    (it splits with `assign` or `positions`, so adding samples moves no other), else OWN."""
    return SCHEME if getattr(recipe, "SPLIT", None) == SCHEME else OWN


def scheme_of(card: Mapping[str, Any]) -> str:
    """How the model of `card` had its data split: the card's `split`; a card written before cards recorded it by
    its export's date: "permutation" (a seeded permutation of the samples, which another number of samples redraws)
    before the keyed split of 2026-12-05, else SCHEME."""
    if card.get("split"):
        return str(card["split"])
    try:
        created = datetime.fromisoformat(str(card.get("created")))
    except ValueError:
        return "permutation"
    return SCHEME if (created if created.tzinfo else created.replace(tzinfo=timezone.utc)) >= _KEYED_SINCE \
        else "permutation"
