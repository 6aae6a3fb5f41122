"""The search-quality simulation (bench/simulate_brackets.py) runs the engine's default search report for report,
so its figures over hundreds of seeds are the engine's: the same TPE, bracket draws and rung decisions, without
Ray. Its `rayrule` variant (Ray's own rung rule, the engine's before) makes other decisions on the same seeds."""
from __future__ import annotations

import math
import sys
from pathlib import Path

import optuna
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import quality  # noqa: E402
import simulate_brackets  # noqa: E402


@pytest.mark.usefixtures("local_ray")
@pytest.mark.parametrize("name, full_trainings, seed, other", [
    ("mnist_cnn", 4, 1, "adaptive+rayrule"), ("synthetic", 4, 2, "adaptive+rayrule"),
    ("mnist_mlp", 4, 9, "adaptive+failed"),  # two trials diverge (the replayed recipe raises Diverged)
])
def test_the_simulated_default_is_the_engines_search_report_for_report(tmp_path, name, full_trainings, seed, other):
    limit = quality.budget(name, full_trainings)
    engine = [value for _, value in quality.run_engine(name, "default", seed, tmp_path, limit)]
    simulated = [value for _, value in simulate_brackets.search(name, "adaptive", seed, limit)]
    assert len(engine) == limit and simulated[:limit] == engine
    # what the variant changes (the rung rule; a diverged trial told FAIL) decides something in these searches
    assert [value for _, value in simulate_brackets.search(name, other, seed, limit)][:limit] != engine


def test_extrap_carries_each_brackets_agreement_to_the_last_epoch_by_log_distance():
    def scheduler(extrapolate: bool) -> simulate_brackets.Adaptive:
        s = simulate_brackets.Adaptive(27, grace_period=1, reduction_factor=3, seed=0, adaptive=True,
                                       extrapolate=extrapolate)
        s.set_search_properties("val_accuracy", "max")
        values = {1: [0.1, 0.3, 0.2, 0.5, 0.4, 0.6], 3: [0.2, 0.5, 0.3, 0.4, 0.7, 0.6],
                  9: [0.6, 0.5, 0.4, 0.7, 0.9, 0.8], 27: [0.62, 0.52, 0.45, 0.78, 0.8, 0.92]}
        for trial in range(6):
            for epoch, row in values.items():
                s.record(str(trial), {"training_iteration": epoch, "val_accuracy": row[trial]})
        return s

    plain, extrapolated = scheduler(False), scheduler(True)
    tau_1, tau_3 = plain.agreement(9)[:2]  # squared taus of the brackets first stopping at 1 and 3, against epoch 9
    assert 0 < tau_1 < 1 and 0 < tau_3 < 1
    expected = [tau_1 ** (math.log(27) / math.log(9)), tau_3 ** (math.log(27 / 3) / math.log(9 / 3)), 1.0, 1.0]
    assert extrapolated.agreement(9) == pytest.approx(expected)
    at_the_end = plain.agreement(27)
    assert 0 < min(at_the_end[:3]) < 1 and extrapolated.agreement(27) == at_the_end  # nothing to extrapolate


def test_a_search_of_so_many_trials_cut_at_max_t_reports_the_first_epochs_of_each_trial():
    """bench/simulate_equal_trials.py's searches: `trials` trials, each cut at `max_t` epochs (random search: the same
    configurations as uncut, so each trial's first `max_t` recorded epochs)."""
    cut = [v for _, v in simulate_brackets.search("mnist_mlp", "random", 0, 0, trials=5, max_t=4)]
    whole = [v for _, v in simulate_brackets.search("mnist_mlp", "random", 0, 5 * 16)]
    assert len(whole) == 5 * 16 and cut == [v for t in range(5) for v in whole[16 * t: 16 * t + 4]]
    stopped = simulate_brackets.search("mnist_mlp", "adaptive", 0, 0, trials=12, max_t=9)
    assert 12 <= len(stopped) < 12 * 9  # every trial reports; the first rungs (epochs 1 and 3) stop some


def test_drop_leaves_out_of_tpe_only_the_trials_pruned_at_rungs_measured_as_misleading():
    """`adaptive+dropX` (tried, not kept): at threshold 0 no rung's factor is below it, so the search is the
    default's report for report; at 1 every PRUNED trial stopped at a rung whose ranking disagreed at all is left
    out, and TPE proposes other trials."""
    limit = quality.budget("synthetic", 6)
    default = simulate_brackets.search("synthetic", "adaptive", 3, limit)
    assert simulate_brackets.search("synthetic", "adaptive+drop0", 3, limit) == default
    assert simulate_brackets.search("synthetic", "adaptive+drop1", 3, limit) != default


def test_ordinal_draws_a_numeric_choice_as_an_index_into_its_sorted_values():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    trial = study.ask()
    value = simulate_brackets.ordinal_suggest(trial, "train.batch_size", {"choice": [256, 16, 64]})
    assert value == [16, 64, 256][trial.params["train.batch_size#index"]]
    assert simulate_brackets.ordinal_suggest(trial, "model.act", {"choice": ["relu", "gelu", "tanh"]}) in (
        "relu", "gelu", "tanh")


def test_predicted_tpe_values_a_stopped_trial_by_the_gains_of_its_nearest_finished_ones():
    """`adaptive+predvalue` / `predconfig` (tried, not kept): a PRUNED trial is told to TPE as COMPLETE, valued at
    its last value plus the mean gain to the end of the 3 nearest COMPLETE trials (in value there, or in
    configuration); with fewer than 5 COMPLETE trials at its epoch it stays PRUNED."""
    space = {"x": optuna.distributions.FloatDistribution(0.0, 1.0)}
    done = [optuna.trial.create_trial(params={"x": x}, distributions=space, value=final, intermediate_values={1: v})
            for x, v, final in zip([0.0, 0.25, 0.5, 0.75, 1.0], [0.1, 0.2, 0.3, 0.4, 0.5], [0.9, 0.8, 0.7, 0.6, 0.5])]
    stopped = optuna.trial.create_trial(params={"x": 0.9}, distributions=space, state=optuna.trial.TrialState.PRUNED,
                                        intermediate_values={1: 0.12})
    by_value = simulate_brackets.PredictedTPE(by="value")._predicted(stopped, done)
    assert by_value.state == optuna.trial.TrialState.COMPLETE and by_value.value == pytest.approx(0.12 + 0.6)
    by_config = simulate_brackets.PredictedTPE(by="config")._predicted(stopped, done)
    assert by_config.value == pytest.approx(0.12 + 0.2)  # x = 1.0, 0.75 and 0.5: gains 0, 0.2 and 0.4
    assert stopped.state == optuna.trial.TrialState.PRUNED  # a copy is told, the study's own trial is unchanged
    assert simulate_brackets.PredictedTPE(by="value")._predicted(stopped, done[:4]) is stopped


def test_resume_continues_a_stopped_trial_from_the_epoch_it_reached(monkeypatch):
    """`adaptive+resumeX` (tried, not kept): at threshold 0 no rung's factor is below it, so the search is the
    default's report for report; at 2 every stopped trial may be continued once the weights are measured. A
    continued trial has the stopped one's configuration and first values, pays only for its later epochs, and TPE
    no longer sees the stopped record."""
    limit = quality.budget("synthetic", 6)
    default = simulate_brackets.search("synthetic", "adaptive", 3, limit)
    assert simulate_brackets.search("synthetic", "adaptive+resume0", 3, limit) == default

    studies = []
    create_study = optuna.create_study
    monkeypatch.setattr(optuna, "create_study", lambda **kw: studies.append(create_study(**kw)) or studies[-1])
    reports = simulate_brackets.search("synthetic", "adaptive+resume2", 3, limit)
    study, sampler = studies[0], studies[0].sampler
    assert reports != default and sampler.continues
    for number, (first, paid) in sampler.continues.items():
        trial, origin = study.trials[number], study.trials[first]
        assert trial.params == origin.params and 1 <= paid < trial.last_step
        assert all(trial.intermediate_values[e] == origin.intermediate_values[e] for e in range(1, paid + 1))
    paid = {number: epochs for number, (_, epochs) in sampler.continues.items()}
    ran = sum(len(t.intermediate_values) - paid.get(t.number, 0) for t in study.trials)
    assert ran == len(reports)  # each epoch is run once, a continued trial's first ones by the trial it continues
    told = sampler.view(study.get_trials(deepcopy=False))
    assert {t.number for t in told} == {t.number for t in study.trials} - sampler.hidden and sampler.hidden
