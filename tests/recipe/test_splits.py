"""Splits that keep each sample where it was when data is added (autotune.splits): a table's rows keyed by their
values, an image folder's files by their paths, other datasets' samples by their positions."""
from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from autotune.splits import (TEST, TRAIN, VAL, absent_classes, assign, ordered, position_keys, positions, scheme_of,
                             text_keys, trained_share)
from autotune.tabular.data import load as load_table
from autotune.tabular.data import row_keys
from autotune.vision.data import load as load_images


def _within(count: int, n: int, fraction: float) -> bool:
    """A binomial count within 4 standard deviations of its mean."""
    return abs(count - fraction * n) <= 4 * (n * fraction * (1 - fraction)) ** 0.5


def test_each_split_holds_about_its_fraction_and_the_seed_draws_another():
    keys = position_keys(100_000)
    split = assign(keys, 0.2, 0.1, seed=0)
    assert _within(int((split == VAL).sum()), len(keys), 0.2) and _within(int((split == TEST).sum()), len(keys), 0.1)
    assert np.array_equal(split, assign(keys, 0.2, 0.1, seed=0))
    other = assign(keys, 0.2, 0.1, seed=1)
    assert _within(int((other == split).sum()), len(keys), 0.7**2 + 0.2**2 + 0.1**2)  # independent draws


def test_adding_samples_moves_none_of_the_others():
    before = assign(position_keys(1000), 0.1, 0.1, seed=3)
    after = assign(position_keys(1500), 0.1, 0.1, seed=3)
    assert np.array_equal(after[:1000], before)
    files = [f"cat/{i:04d}.png" for i in range(300)]
    grown = sorted(files + [f"cat/{i:04d}b.png" for i in range(100)])  # new files sort among the old ones
    old = dict(zip(files, assign(text_keys(files), 0.1, 0.1, seed=0)))
    new = dict(zip(grown, assign(text_keys(grown), 0.1, 0.1, seed=0)))
    assert all(new[f] == s for f, s in old.items())


def test_a_larger_fraction_only_takes_training_samples():
    keys = position_keys(5000)
    small, large = assign(keys, 0.1, 0.1, seed=0), assign(keys, 0.1, 0.2, seed=0)
    assert np.all(large[small == TEST] == TEST)
    assert np.all(small[large == TRAIN] == TRAIN)


def test_a_split_by_time_holds_out_the_latest_and_appended_samples_move_no_earlier_one_toward_test():
    times = np.random.default_rng(0).permutation(np.repeat(np.arange(50), 4))  # 50 days of 4 samples, shuffled
    train, val, test = ordered(times, 0.2, 0.1)
    assert (len(train), len(val), len(test)) == (140, 40, 20)
    assert times[train].max() < times[val].min() and times[val].max() < times[test].min()
    grown = np.concatenate([times, np.repeat(np.arange(50, 60), 4)])  # ten more days appended
    before, after = (np.zeros(len(t), dtype=int) for t in (times, grown))
    for where, split in ((before, (train, val, test)), (after, ordered(grown, 0.2, 0.1))):
        for s, rows in enumerate(split):
            where[rows] = s
    assert (after[:len(times)] <= before).all() and (after[:len(times)] < before).any()
    assert [len(s) for s in ordered(times, 0.0, 0.0)] == [200, 0, 0]


def test_identical_keys_land_in_one_split():
    keys = np.repeat(position_keys(400), 5)
    split = assign(keys, 0.1, 0.1, seed=0).reshape(400, 5)
    assert np.all(split == split[:, :1])  # each key's five samples together
    assert _within(int((split[:, 0] == TEST).sum()), 400, 0.1) and _within(int((split[:, 0] == VAL).sum()), 400, 0.1)


def test_positions_cover_every_sample_once():
    train, val, test = positions(position_keys(777), 0.15, 0.05, seed=2)
    assert sorted(np.concatenate([train, val, test]).tolist()) == list(range(777))
    assert all(np.all(np.diff(p) > 0) for p in (train, val, test))
    split = assign(position_keys(777), 0.15, 0.05, seed=2)  # each in its own place: val is not the test split
    assert [split[p].tolist() for p in (train, val, test)] == [[s] * len(p) for s, p in zip((TRAIN, VAL, TEST),
                                                                                            (train, val, test))]


# ------------------------------------------------------------------------------------------------ tables
def _table(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"age": rng.integers(18, 90, n), "city": rng.choice(["Oslo", "Lima", "Pune"], n),
                         "income": rng.normal(50, 10, n).round(2), "label": rng.choice(["yes", "no"], n)})


def test_a_row_is_keyed_by_its_values_not_its_place_or_its_columns_order():
    frame = _table(200, 0)
    keys = row_keys(frame)
    assert len(np.unique(keys)) == 200
    shuffled = frame.sample(frac=1, random_state=1)
    assert np.array_equal(row_keys(shuffled), keys[shuffled.index.to_numpy()])
    assert np.array_equal(row_keys(frame[["label", "income", "city", "age"]]), keys)
    with_missing = pd.concat([frame, pd.DataFrame({"age": [np.nan], "city": ["Oslo"], "income": [1.0],
                                                   "label": ["no"]})], ignore_index=True)
    assert with_missing["age"].dtype == np.float64 and frame["age"].dtype == np.int64  # 40 became 40.0
    assert np.array_equal(row_keys(with_missing)[:200], keys)
    edited = frame.copy()
    edited.loc[5, "city"] = "Rome"
    assert (row_keys(edited) != keys).tolist() == [i == 5 for i in range(200)]


def test_rows_appended_to_a_table_leave_every_earlier_row_in_its_split(tmp_path):
    """A retrain's test split: no row the current model trained on is a test row of the grown table."""
    first, more = _table(300, 0), _table(120, 1)
    path = tmp_path / "people.csv"
    first.to_csv(path, index=False)
    before = load_table("csv", path=str(path), target="label", split_seed=4)
    pd.concat([first, more]).to_csv(path, index=False)
    after = load_table("csv", path=str(path), target="label", split_seed=4)
    for name in ("train", "val", "test"):
        old = set(getattr(before, name).rows.tolist())
        assert {r for r in getattr(after, name).rows.tolist() if r < 300} == old
    assert set(after.test.rows.tolist()) - set(before.test.rows.tolist())  # some added rows are new test rows
    assert before.fingerprint != after.fingerprint


def test_a_shuffled_file_is_the_same_data_split_the_same_way(tmp_path):
    """Rows in another order, or the columns moved: each row keeps its split, and the fingerprint is the same, so
    `--if-data-changed` has nothing to do (it retrained)."""
    frame = _table(300, 0)
    path = tmp_path / "people.csv"
    frame.to_csv(path, index=False)
    before = load_table("csv", path=str(path), target="label")
    order = np.random.default_rng(2).permutation(300)
    frame.iloc[order][["label", "income", "age", "city"]].to_csv(path, index=False)
    after = load_table("csv", path=str(path), target="label")
    assert sorted(order[after.test.rows].tolist()) == sorted(before.test.rows.tolist())
    assert after.fingerprint == before.fingerprint
    frame.iloc[order[:-1]].to_csv(path, index=False)  # a row less: other data
    assert load_table("csv", path=str(path), target="label").fingerprint != before.fingerprint


def test_a_stray_text_cell_in_a_numeric_column_moves_no_row_and_is_a_warning(tmp_path, caplog):
    """`?` in new rows makes pandas read the whole column as text: the other rows' numbers ("45.1") keep their
    keys (37 of 300 old training rows moved into the test split), and a warning says why the column became text."""
    frame = _table(300, 0)
    path = tmp_path / "people.csv"
    frame.to_csv(path, index=False)
    before = load_table("csv", path=str(path), target="label", split_seed=3)
    stray = pd.DataFrame({"age": [40, 41], "city": ["Oslo", "Lima"], "income": ["?", "unknown"],
                          "label": ["no", "yes"]})
    pd.concat([frame, stray], ignore_index=True).to_csv(path, index=False)
    after = load_table("csv", path=str(path), target="label", split_seed=3)
    for name in ("train", "val", "test"):
        assert {r for r in getattr(after, name).rows.tolist() if r < 300} == set(getattr(before, name).rows.tolist())
    assert "column 'income' holds 300 numbers and 2 cells of text ('?', 'unknown'): it is read as text" in caplog.text



def test_a_missing_value_marker_in_a_third_of_a_numeric_column_is_a_warning_too(tmp_path, caplog):
    """Not only a few stray cells: "?" in a third of the rows (one text, numbers in the rest) made the column
    categories with no word said, and a retrain promoted that model."""
    frame = _table(300, 0)
    frame["income"] = frame["income"].astype(object).where(frame.index % 3 != 0, "?")
    frame.to_csv(tmp_path / "people.csv", index=False)
    load_table("csv", path=str(tmp_path / "people.csv"), target="label")
    assert "column 'income' holds 200 numbers and 100 cells of text ('?'): it is read as text" in caplog.text
    caplog.clear()
    frame["income"] = [f"c{i % 7}" if i % 2 else str(i) for i in range(300)]  # seven texts: categories, no warning
    frame.to_csv(tmp_path / "people.csv", index=False)
    load_table("csv", path=str(tmp_path / "people.csv"), target="label")
    assert "cells of text" not in caplog.text


def test_repeated_rows_share_a_split_and_an_appended_repeat_joins_them(tmp_path, caplog):
    """No test row is also a training row: identical rows are one sample, and one appended later that repeats a
    training row trains too (a retrain's test split holds none of the current model's training rows)."""
    frame = _table(300, 0)
    repeated = pd.concat([frame, frame.iloc[:60]], ignore_index=True)
    path = tmp_path / "people.csv"
    repeated.to_csv(path, index=False)
    data = load_table("csv", path=str(path), target="label", split_seed=2)
    where = {r: name for name in ("train", "val", "test") for r in getattr(data, name).rows.tolist()}
    assert all(where[r] == where[300 + r] for r in range(60))
    assert "people.csv': 60 of 360 rows repeat an earlier row; identical rows are kept in one split" in caplog.text
    pd.concat([repeated, frame.iloc[data.train.rows[:20]]], ignore_index=True).to_csv(path, index=False)
    grown = load_table("csv", path=str(path), target="label", split_seed=2)
    assert set(range(360, 380)) <= set(grown.train.rows.tolist())
    assert not set(grown.test.rows.tolist()) & set(data.train.rows.tolist())


# ------------------------------------------------------------------------------------------------ image folders
def _split_files(data) -> dict[str, set[str]]:
    return {name: {f.rsplit("/", 2)[-2] + "/" + f.rsplit("/", 1)[-1] for f in getattr(data, name).images.files}
            for name in ("train", "val", "test")}


def test_images_added_to_a_folder_leave_every_earlier_image_in_its_split(image_root, tmp_path):
    root = tmp_path / "images"
    shutil.copytree(image_root, root)
    streamed = {"image_size": 12, "memory_limit_mb": 0, "workers": 0, "cache": False}
    before = _split_files(load_images("image_folder", str(root), split_seed=1, **streamed))
    for label in ("cat", "dog", "fox"):
        for i in range(6):
            shutil.copy(root / label / "00.png", root / label / f"new{i}.png")
    after = _split_files(load_images("image_folder", str(root), split_seed=1, **streamed))
    for name in ("train", "val", "test"):
        assert {f for f in after[name] if "/new" not in f} == before[name]
    assert sum(len(files) for files in after.values()) == 36 + 18


@pytest.mark.parametrize("fraction", [0.0, 1.0])
def test_the_split_seed_is_not_needed_for_the_edges(fraction):
    split = assign(position_keys(100), 0.0, fraction, seed=0)
    assert set(split.tolist()) == ({TRAIN} if fraction == 0 else {TEST})


@pytest.mark.parametrize("present, named", [
    (range(10_000), ""),
    (range(1, 10_000), "class '0'"),
    (range(2, 10_000), "classes '0', '1'"),
    (range(9_000, 10_000), "classes '0', '1', '2', '3', '4' and 8995 more"),
])
def test_absent_classes_are_counted_past_the_five_named(present, named):
    """A folder of 10,000 classes validated on 329 images warned that the validation split held no sample of
    "classes 'class_00001', ... 'class_00005' ...": the 9,671 absent were not counted."""
    assert absent_classes([str(i) for i in range(10_000)], map(str, present)) == named


def test_a_text_column_s_keys_parse_each_distinct_text_once(monkeypatch):
    """Keying the rows of a table of 2,000,000 rows parsed every cell of each text column as a number (7 to 15 s of
    its load), though a column repeats a few values; the keys are the same."""
    frame = pd.DataFrame({"colour": ["red", "blue", None, "3", "3.0"] * 600, "x": np.arange(3000.0)})
    before = row_keys(frame)
    parsed = []
    to_numeric = pd.to_numeric
    monkeypatch.setattr(pd, "to_numeric", lambda values, **kw: parsed.append(len(values)) or to_numeric(values, **kw))
    assert (row_keys(frame) == before).all() and max(parsed) <= 4
    assert len(set(row_keys(frame[["colour"]]).tolist())) == 4  # 3 and 3.0 are one number; a missing value a key


@pytest.mark.parametrize(("before", "after", "share", "changed"), [
    ({}, {"split_seed": 0, "val_fraction": 0.1, "test_fraction": 0.1}, 0.0, []),
    ({}, {"val_fraction": 0.2}, 0.0, ["data.val_fraction 0.1 -> 0.2"]),  # no test sample was a training one
    ({}, {"test_fraction": 0.05}, 0.0, ["data.test_fraction 0.1 -> 0.05"]),
    ({}, {"test_fraction": 0.3}, 1 / 3, ["data.test_fraction 0.1 -> 0.3"]),  # u in [0.2, 0.3): a third of it
    ({"val_fraction": 0.3}, {"test_fraction": 0.5}, 0.2, ["data.val_fraction 0.3 -> 0.1",
                                                          "data.test_fraction 0.1 -> 0.5"]),
    ({}, {"split_seed": 2}, 0.8, ["data.split_seed 0 -> 2"]),  # drawn anew: the old train share of it
    ({"key": ["age"]}, {"key": ["age", "city"]}, 0.8, ["data.key ['age'] -> ['age', 'city']"]),
    ({"key": []}, {}, 0.0, []),  # no key columns: every column, as without the setting
    ({}, {"order": "date"}, 0.8, ["data.order None -> 'date'"]),  # by time now: about the old train share
    ({"order": "date"}, {"order": "date", "val_fraction": 0.2}, 0.0, ["data.val_fraction 0.1 -> 0.2"]),
])
def test_the_share_of_a_new_test_split_that_was_trained_on(before, after, share, changed):
    """What a retrain reads before it compares the current model on the new test split: the share of that split
    its training split held, and the settings that moved it."""
    assert trained_share(before, after) == (pytest.approx(share), changed)


@pytest.mark.parametrize(("card", "scheme"), [
    ({"split": "recipe", "created": "2026-12-01T00:00:00+00:00"}, "recipe"),  # the card says it
    ({"created": "2026-12-04T11:28:00+00:00"}, "permutation"),  # exported before the keyed split
    ({"created": "2026-12-05T15:41:03+00:00"}, "keyed"),
    ({"created": "2026-12-06T09:00:00"}, "keyed"),  # no time zone: UTC
    ({"created": "2026-12-05T16:41:02+01:00"}, "permutation"),  # a second before it, in another zone
    ({}, "permutation"),
])
def test_a_model_card_s_split_is_its_own_word_else_told_by_its_date(card, scheme):
    assert scheme_of(card) == scheme
