"""What a retrain (--if-data-changed) decides before Ray starts: a failed run is searched again, and a current
model whose recipe splits its own way is not compared on the new test split. No Ray."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from autotune.api import _failed_before, _resplit
from autotune.splits import OWN, SCHEME, declared

ERROR = "all 2 trials failed; trial 21c7f6e8's error: custom file flaky.py failed to import"


@pytest.mark.parametrize("summary, failed", [
    ({"error": ERROR, "model_dir": None, "interrupted": False}, ERROR),  # every trial failed: searched again
    ({"model_dir": "/m", "interrupted": False, "promotion": {"promoted": False}}, None),  # not promoted: searched
    ({"model_dir": None, "interrupted": True}, None),  # interrupted: resumed
    ({"error": ERROR, "model_dir": "/m", "interrupted": False}, None),  # a model exported: searched
    (None, None),  # killed before its end was recorded: resumed
])
def test_a_retrain_s_run_that_failed_exporting_nothing_did_not_search_its_data(summary, failed):
    assert _failed_before(summary) == failed


THIRD_PARTY = SimpleNamespace()  # a recipe that splits with rng.permutation(n): declares nothing
KEYED = SimpleNamespace(SPLIT=SCHEME)  # the shipped recipes: autotune.splits
SPACE = SimpleNamespace(recipe="third_party.py")
CARD = {"recipe": "third_party.py", "config": {"data": {"size": 100}}, "created": "2026-12-06T10:00:00+00:00"}


def test_a_model_card_records_the_split_its_recipe_declares():
    assert (declared(KEYED), declared(THIRD_PARTY), declared(SimpleNamespace(SPLIT="mine"))) == (SCHEME, OWN, OWN)
    from autotune.recipes import image_classification, tabular

    assert declared(image_classification) == declared(tabular) == SCHEME  # both split with autotune.splits


@pytest.mark.parametrize("recipe, split, compared", [
    (KEYED, SCHEME, True),
    (THIRD_PARTY, OWN, False),  # its new test rows may be the current model's training rows
    (THIRD_PARTY, SCHEME, False),  # a card an earlier autotune stamped keyed whatever the recipe
    (KEYED, OWN, False),  # the recipe declares a keyed split now; the current model's was its own
])
def test_a_current_model_is_compared_only_where_both_splits_are_keyed(recipe, split, compared):
    why = _resplit(SPACE, recipe, {**CARD, "split": split}, {"data": {"size": 200}})
    assert (why is None) == compared, why
    if not compared:
        assert why.startswith("its data or the new data was split the recipe's own way")


@pytest.mark.parametrize("before, after, why", [
    ("date", "date", None),  # the new test split: the latest rows, later than any it trained on
    (None, "date", "the data split changed since it was trained (data.order None -> 'date'): about 80% of the new"),
    ("date", None, "the data split changed since it was trained (data.order 'date' -> None): about 80% of the new"),
])
def test_a_current_model_split_by_time_is_compared_on_the_latest_rows_unless_the_order_changed(before, after, why):
    """Monthly sales appended to a table split by time (data.order): the retrain tests both models on the latest
    rows, which the current model never trained on; a split by chance before (or after) is another split."""
    from autotune.recipes import tabular

    data = {"dataset": "csv", "path": "sales.csv", "target": "sales"}
    card = {"recipe": "tabular", "split": SCHEME, "config": {"data": {**data, "order": before}}}
    found = _resplit(SimpleNamespace(recipe="tabular"), tabular, card, {"data": {**data, "order": after}})
    assert found == why if why is None else found.startswith(why)


@pytest.mark.parametrize("behind, plan", [
    (["MLflow at http://mlflow:5000"], "resumed"),  # its record is filled in: the run resumed, no trial runs
    (None, None),  # searched, its trackers whole: nothing to do
])
def test_a_searched_run_whose_tracker_missed_part_of_it_is_resumed_to_fill_it_in(tmp_path, monkeypatch, caplog,
                                                                                behind, plan):
    """An MLflow outage during a nightly retrain: the search finished, MLflow missed part of it, and the next night
    said "searched already: nothing to do"; only a resume by the run's name with its derived seed filled it in."""
    import logging

    import autotune.api as api
    import autotune.engine.locks
    import autotune.engine.run_records
    import autotune.engine.storage
    import autotune.recipes
    from autotune.space import load_space
    from engine_helpers import toy_space

    monkeypatch.chdir(tmp_path)
    space = load_space(toy_space(), schema_for=autotune.recipes.load_schema)
    summary = {"model_dir": "/m", "interrupted": False, **({"trackers_behind": behind} if behind else {})}
    card = {"config": None, "data_fingerprint": "abcdef0123456789", "history": [
        {"data_fingerprint": "abcdef0123456789", "run": "runs/toy-data-abcdef01", "promoted": True}]}
    monkeypatch.setattr(api, "current_card", lambda space: card)
    monkeypatch.setattr(autotune.recipes, "fingerprint", lambda data: "abcdef0123456789")
    monkeypatch.setattr(autotune.engine.locks, "running", lambda where: None)
    monkeypatch.setattr(autotune.engine.storage, "holds_search", lambda storage, name: True)
    monkeypatch.setattr(autotune.engine.run_records, "recorded_summary", lambda state: summary)
    loads = SimpleNamespace(get=lambda config: None)
    with caplog.at_level(logging.INFO, logger="autotune"):
        found = api._retrain_plan(space, loads, "runs")
    if plan is None:
        assert found is None and "nothing to do" in caplog.text.lower()
        return
    renamed, _, resume, restart = found
    assert (renamed.name, resume, restart) == ("toy-data-abcdef01", True, False)
    assert "ended, but MLflow at http://mlflow:5000 missed part of it: resuming the run to fill it in" in caplog.text
