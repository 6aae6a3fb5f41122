"""A resumed search keeps the trial count it started with, whatever `search.trials` says now."""
from __future__ import annotations

import json
import logging

import pytest

import autotune
from engine_helpers import toy_space

SPACE = toy_space(trials=2, train="{epochs: 1, sleep: 0}")


@pytest.mark.usefixtures("local_ray")
@pytest.mark.parametrize("trials", [3, 1])
def test_a_finished_run_resumed_with_another_trial_count_stays_finished(in_tmp, caplog, trials):
    """A finished 2-trial run, resumed with search.trials=3 (or 1), is finished, not interrupted (it was, forever,
    with 3), keeps its 2 trials, exports, and says once that the count it started with governs."""
    assert not autotune.fit(SPACE).interrupted
    with caplog.at_level(logging.INFO, logger="autotune"):
        resumed = autotune.fit(SPACE, overrides=[f"search.trials={trials}"], resume=True)
    assert not resumed.interrupted and len(resumed.trials) == 2
    summary = json.loads((resumed.run_dir / "summary.json").read_text())
    assert summary["interrupted"] is False and summary["model_dir"] is not None
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert [w for w in warnings if "this run started with" in w] == [
        f"search.trials is {trials}, but this run started with 2: a resumed search keeps its trial count; start a "
        f"new run (restart=True, another name:, or warm_start='RUN_DIR') to run {'more' if trials > 2 else 'fewer'}"]
    assert "Searching 'toy': 2 trials" in caplog.text
