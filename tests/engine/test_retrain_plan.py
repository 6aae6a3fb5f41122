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
