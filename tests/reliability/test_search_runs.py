"""The search engine gets the details right: epochs of searched lengths, the data a searched data key loads, the
live progress line."""
from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest

import autotune
from autotune.engine.schedulers import make_scheduler, max_epochs
from reliability_helpers import STRICT, TOY


def toy(train: str, search: str = "", model: str = "{x: {uniform: [0.0, 1.0]}, y: {uniform: [0.0, 1.0]}}",
        trials: int = 4) -> str:
    return (f"name: toy\nrecipe: {TOY}\nmodel: {model}\ntrain: {train}\n"
            f"search: {{trials: {trials}, max_concurrent: 2, seed: 0, resources: {{cpu: 1}}{search}}}\n"
            f"export: {{dir: models/toy}}\n")


@pytest.mark.parametrize("train, search, most", [
    ("{epochs: 6}", "", 6),
    ("{epochs: {choice: [5, 10]}}", "", 10),
    ("{epochs: {choice: [10, 5]}}", "", 10),
    ("{epochs: {int: [2, 9]}}", "", 9),
    ("{epochs: {int: [2, 8, 3]}}", "", 8),
    ("{epochs: {grid: [3, 7, 2]}}", ", sampler: grid", 7),
    ("{choice: [{epochs: 3}, {epochs: 12, sleep: 0.1}]}", "", 12),  # options of the whole section
])
def test_max_epochs_is_the_most_any_option_can_take(train, search, most):
    model = "{x: {grid: [0.1, 0.2]}}" if "grid" in search else "{x: {uniform: [0.0, 1.0]}}"
    space = autotune.load_space(toy(train, search, model))
    assert max_epochs(space) == most
    assert make_scheduler(space)._max_t == most  # ASHA's max_t


@pytest.mark.usefixtures("local_ray")
class TestSearches:
    def test_trials_of_a_searched_length_run_all_their_epochs(self, in_tmp):
        """`epochs: {choice: [2, 4]}` with ASHA's grace period at 4 epochs: no trial may be stopped before 4
        (with max_t taken from the first option, 2, this grace period was refused, and trials were cut at 2)."""
        result = autotune.fit(toy("{epochs: {choice: [2, 4]}}", ", scheduler: {asha: {grace_period: 4}}"),
                              export=False)
        trials = result.trials
        assert sorted(set(trials["p:train.epochs"])) == [2, 4], "the seeded sampler should try both lengths"
        assert (trials["epochs"] == trials["p:train.epochs"]).all()
        assert not trials["stopped_early"].any()

    def test_a_searched_data_key_exports_and_tests_with_the_best_trials_data(self, in_tmp):
        """The best trial loaded data of another size than the default: the export, the test and the
        comparison with the current model use the data each model was trained with."""
        space = (f"name: sized\nrecipe: {STRICT}\ndata: {{size: {{grid: [100, 200]}}}}\nmodel: {{x: 0.3, y: 0.6}}\n"
                 f"train: {{epochs: 2}}\nsearch: {{trials: 2, sampler: grid, scheduler: fifo, resources: {{cpu: 1}}}}\n"
                 f"export: {{dir: models/sized, promote: if_better}}\n")
        first = autotune.fit(space)
        assert first.best_config["data"]["size"] == 200  # not the default (100): the larger size scores higher
        card = json.loads(Path("models/sized/model.json").read_text())
        assert card["data_fingerprint"] == "toy-200" and card["config"]["data"]["size"] == 200
        assert card["test_metrics"]["test_accuracy"] == pytest.approx(first.best_metrics["val_accuracy"])

        # The current model (size 200) is tested on its own size, the new one (150) on its own.
        second = autotune.fit(space.replace("name: sized", "name: sized2").replace("[100, 200]", "[100, 150]"))
        assert second.best_config["data"]["size"] == 150
        decision = second.promotion
        assert decision["promoted"] is False, decision
        assert decision["current"] == pytest.approx(card["test_metrics"]["test_accuracy"])
        assert "each model with its own data.size (new 150, current 200)" in decision["reason"]
        assert json.loads(Path("models/sized/model.json").read_text())["version"] == card["version"]

    def test_a_live_line_shows_the_running_trials_while_they_run(self, in_tmp, monkeypatch):
        messages: list[str] = []
        handler = logging.Handler()
        handler.emit = lambda record: messages.append(record.getMessage())
        logger = logging.getLogger("autotune")
        monkeypatch.setattr(logger, "handlers", [handler])
        monkeypatch.setattr(logger, "level", logging.INFO)
        result = autotune.fit(toy("{epochs: 3, sleep: 1.0, peak_epoch: 2}", ", scheduler: fifo"), export=False,
                              progress_seconds=0.3)  # each trial's last epoch below its best
        live = [m for m in messages if re.match(r"\[\d/4\] \d+s, \d+ epochs? run: \d running \(", m)]
        assert any(re.search(r"[0-9a-f]{8} epoch [123] val_accuracy=0\.\d{4}", m) for m in live), messages
        assert any(m.startswith("[2/4]") for m in live)  # finished/total moves on
        states = [re.sub(r"\d+s, \d+ epochs? run: ", "", m) for m in live]
        assert all(a != b for a, b in zip(states, states[1:])), "a line repeated although nothing changed"
        reports = sum(int(n) for n in result.trials["epochs"])
        assert len(live) <= reports + 2 * len(result.trials)  # a line per change at most, not every 0.3 s
        finished = [m for m in messages if " finished: " in m]
        assert len(finished) == 4
        for row in result.trials.to_dict("records"):  # each trial's line gives its value in the summary's table
            epochs = f"{row['epochs']} epoch{'s' * (row['epochs'] != 1)}"
            line = f"trial {row['trial_id']} finished: val_accuracy={row['val_accuracy']:.4f} (best of {epochs})"
            assert any(line in m for m in finished), (line, finished)

    def test_a_stop_target_on_a_metric_that_goes_down_is_reached_going_down(self, in_tmp):
        """`stop: {val_loss: {min: 0.3}}` while the search maximises val_accuracy: the search ends once a trial's
        val_loss is <= 0.3 (the toy's val_loss is 1 - val_accuracy: at least 0.5 after the first epoch)."""
        result = autotune.fit(toy("{epochs: 4}", ", scheduler: fifo, stop: {val_loss: {min: 0.3}}", trials=30))
        assert not result.interrupted and len(result.trials) < 30
        assert result.best_metrics["val_loss"] <= 0.3 and result.model_dir is not None
