"""The run's study storage answers every question about its trials as Optuna's own cache does, and finds the waiting
trials without reading the finished ones."""
from __future__ import annotations

import os
import random

import optuna
import pytest
from optuna.trial import TrialState

from autotune.engine.searcher import _study_storage, make_study_file

X = optuna.distributions.FloatDistribution(0.0, 1.0)
QUESTIONS = [None, (TrialState.WAITING,), (TrialState.RUNNING,), (TrialState.WAITING, TrialState.RUNNING),
             (TrialState.COMPLETE,), (TrialState.COMPLETE, TrialState.PRUNED), (TrialState.FAIL, TrialState.WAITING)]


def _numbers(trials) -> list[tuple[int, str]]:
    return [(t.number, t.state.name) for t in trials]


@pytest.mark.parametrize("seed", range(2))
def test_every_question_gets_optunas_answer_as_trials_are_enqueued_asked_and_told(tmp_path, seed):
    rng = random.Random(seed)
    ours = optuna.create_study(study_name="s", storage=_study_storage(tmp_path),
                               sampler=optuna.samplers.RandomSampler(seed))
    theirs = optuna.load_study(study_name="s", storage=f"sqlite:///{tmp_path}/study.db")  # Optuna's own cache
    asked: list[optuna.Trial] = []
    for step in range(120):
        event = rng.choice(["enqueue", "ask", "ask", "tell", "tell", "prune", "fail"])
        if event == "enqueue":
            ours.enqueue_trial({"x": rng.random()})
        elif event == "ask":
            trial = ours.ask({"x": X})
            asked.append(trial)
        elif asked:
            trial = asked.pop(rng.randrange(len(asked)))
            if event == "tell":
                ours.tell(trial, rng.random())
            else:
                ours.tell(trial, state=TrialState.PRUNED if event == "prune" else TrialState.FAIL)
        for states in QUESTIONS:
            expected = _numbers(theirs._storage.get_all_trials(theirs._study_id, states=states))
            assert _numbers(ours._storage.get_all_trials(ours._study_id, states=states)) == expected, (step, states)


def test_an_enqueued_configuration_is_asked_first_also_after_a_reload(tmp_path):
    study = optuna.create_study(study_name="s", storage=_study_storage(tmp_path))
    for _ in range(30):
        study.tell(study.ask({"x": X}), 0.5)
    study.enqueue_trial({"x": 0.25})
    study.enqueue_trial({"x": 0.75})
    assert study.ask({"x": X}).params == {"x": 0.25}

    again = optuna.load_study(study_name="s", storage=_study_storage(tmp_path))  # a resumed run's new process
    assert again.ask({"x": X}).params == {"x": 0.75}
    assert again.ask({"x": X}).number == 32  # none waits any more: a new trial


def test_the_waiting_trials_are_found_without_reading_the_finished_ones(tmp_path):
    storage = _study_storage(tmp_path)
    study = optuna.create_study(study_name="s", storage=storage)
    for _ in range(20):
        study.tell(study.ask({"x": X}), 0.5)
    study.enqueue_trial({"x": 0.5})
    storage.get_all_trials(study._study_id)  # every trial in the cache
    finished = [t for t in storage._studies[study._study_id].trials.values() if t.state.is_finished()]
    for trial in finished:
        trial.__class__ = _Untouchable  # reading a finished trial's state now fails

    waiting = storage.get_all_trials(study._study_id, deepcopy=False, states=(TrialState.WAITING,))

    assert [t.number for t in waiting] == [20]


class _Untouchable(optuna.trial.FrozenTrial):
    @property
    def state(self) -> TrialState:
        raise AssertionError("a finished trial was read")


def test_the_study_file_is_made_as_the_umask_leaves_it_and_optuna_opens_it_empty(tmp_path):
    """SQLite made study.db rw-r--r-- whatever the umask: in a team's shared folder (`umask 002`) a teammate's
    `--resume` of the run failed at its first trial with "attempt to write a readonly database"."""
    before = os.umask(0o002)
    try:
        make_study_file(tmp_path)
    finally:
        os.umask(before)
    study = optuna.create_study(storage=_study_storage(tmp_path), study_name="shared")
    study.tell(study.ask(), 1.0)
    assert (tmp_path / "study.db").stat().st_mode & 0o777 == 0o664
    assert len(optuna.load_study(study_name="shared", storage=_study_storage(tmp_path)).trials) == 1
