"""How asynchronous Hyperband should share trials among its brackets: an in-process simulation, no Ray.

TPE (as the engine sets it up) with asynchronous Hyperband written as an Optuna pruner (a trial draws its bracket
with the variant's weights; at each rung of its bracket it goes on only in the top 1/rf of the values recorded
there, as Ray's successive halving decides), one trial at a time, on the quality measure's benchmarks and budgets.
It is how the engine's bracket weights were chosen (docs/search-space.md); bench/quality.py measures the engine.

    python bench/simulate_brackets.py FULL_TRAININGS SEEDS VARIANTS BENCHMARKS
    python bench/simulate_brackets.py 30 50 script,random,ray,hyperband,equal synthetic,digits_mlp
    python bench/simulate_brackets.py 10 60 script,random,hyperband,asha,adaptive \
        synthetic,digits_mlp,digits_cnn,mnist_mlp,mnist_cnn

Variants: ray (Ray's weights e^-(rungs missing)), hyperband (Hyperband's n_s), equal, asha (the first bracket
only: successive halving from epoch 1), adaptive (the engine's own adaptive weights, `scheduler: auto`: the
weights of autotune.engine.hyperband.Hyperband(adaptive=True), fed every report), nostop (TPE, no stopping),
script (the plain Optuna script: TPE + HyperbandPruner), random (random search, every trial to its last epoch),
asha4 (ASHA from epoch 1 with reduction factor 4, v0.1's scheduler with Ray's rung rule, stopped trials PRUNED),
v0.1 (the same with every trial told COMPLETE with its last value, as v0.1's Ray searcher told Optuna).
A rung keeps the top 1/rf of its values, the judged trial's own among them, as the engine's schedulers do; asha4,
v0.1 and `adaptive+rayrule` judge as Ray's ASHA does, against the earlier values alone. `adaptive` is the engine's
default search, report for report (tests/bench/test_simulation.py runs both).
`adaptive+MOD+...`: the engine's default with the modifiers listed at `modified` (what was tried and not kept,
docs/search-space.md).

Each variant's regrets, seed by seed, are saved to $SIM_OUT (default bench/sim_out/) as
BENCHMARK__VARIANT__SEEDS[oOFFSET].npy; `SEED_OFFSET=60` runs seeds 60.. instead of 0.., and
`python bench/simulate_compare.py 60,60o60` pools both sets and gives each variant's paired difference from
`adaptive`, with its standard error.
"""
import copy
import math
import os
import sys
from pathlib import Path
from collections.abc import Callable
from typing import Any

import numpy as np
import optuna

sys.path.insert(0, str(Path(__file__).resolve().parent))
import quality  # noqa: E402
from common import arguments  # noqa: E402

from autotune.engine import hyperband as hb  # noqa: E402
from autotune.engine.hyperband import Hyperband  # noqa: E402
from autotune.errors import TrialError  # noqa: E402

optuna.logging.set_verbosity(optuna.logging.ERROR)

# variant -> the weight of bracket i of n (i = 0 stops first, at epoch 1; i = n - 1 stops nothing)
WEIGHTS = {
    "ray": lambda n, rf: [math.e ** -i for i in range(n)],  # e^-(rungs missing): Ray's AsyncHyperBandScheduler
    "hyperband": lambda n, rf: [n * rf ** (n - 1 - i) / (n - i) for i in range(n)],  # Li et al.'s n_s
    "equal": lambda n, rf: [1.0] * n,
    "asha": lambda n, rf: [1.0] + [0.0] * (n - 1),
}


class AsyncHyperband(optuna.pruners.BasePruner):
    """Asynchronous Hyperband as a pruner: brackets with first rungs at rf^s epochs below max_t, plus one that stops
    nothing; at a rung of its bracket a trial goes on only if its value is at least the (1 - 1/rf) quantile of the
    values recorded there, its own among them, as the engine's successive halving decides (autotune.engine.asha).
    `with_self=False`: of the earlier trials' values alone (none: it goes on), as Ray's own decides (the engine
    before 2026-12-03, and v0.1). `engine`: the engine's scheduler, whose current weights each new trial is drawn
    with (fed every report)."""

    def __init__(self, max_t: int, weights: Callable[[int, float], list[float]], rf: float = 3, seed: int = 0,
                 engine: Hyperband | None = None, with_self: bool = True) -> None:
        firsts = hb.first_rungs(max_t, 1, rf)  # the engine's brackets, and one that stops nothing
        self.rungs = [{first * rf ** k: [] for k in range(len(firsts)) if first * rf ** k < max_t}
                      for first in firsts] + [{}]
        shares = weights(len(self.rungs), rf)  # WEIGHTS: bracket i of n
        self.weights = np.asarray(shares, dtype=float) / sum(shares)
        self.random, self.bracket, self.rf, self.engine = np.random.default_rng(seed), {}, rf, engine
        self.with_self = with_self
        self.alias: dict[int, int] = {}  # a trial that continues a stopped one -> the first trial of that line

    def join(self, number: int) -> None:
        """Draw trial `number`'s bracket as it starts (as the engine's on_trial_add does, so a trial that fails
        before its first report draws one too)."""
        if number not in self.bracket:
            weights = self.weights if self.engine is None else self.engine.current_weights()
            self.bracket[number] = self.random.choice(len(self.rungs), p=weights)

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        if self.engine is not None:
            self.engine.record(str(self.alias.get(trial.number, trial.number)), {
                "training_iteration": trial.last_step, "val_accuracy": trial.intermediate_values[trial.last_step]})
        self.join(trial.number)
        rung = self.rungs[self.bracket[trial.number]].get(trial.last_step)
        if rung is None:
            return False
        value = trial.intermediate_values[trial.last_step]
        judged_against = rung + [value] if self.with_self else list(rung)
        rung.append(value)
        return bool(judged_against) and value < np.nanpercentile(judged_against, (1 - 1 / self.rf) * 100)


class Adaptive(Hyperband):
    """The engine's adaptive Hyperband with its first phase and its measure of agreement as options: `first_phase`
    (the weights before tau can be measured: `None`, Hyperband's own; else the bracket every trial joins),
    `min_trials`, `power` (of tau), `at_max_t` (tau against the value at the last epoch only) and `extrapolate`
    (tau to a milestone m below the last epoch T taken to decay with the log-distance to T: tau(r, T) =
    tau(r, m)^(log(T/r) / log(m/r)))."""

    def __init__(self, max_t: int, *, first_phase: int | None = 0, min_trials: int = hb.MIN_TRIALS,
                 power: float = 2.0, at_max_t: bool = False, extrapolate: bool = False, **kwargs: Any) -> None:
        super().__init__(max_t, **kwargs)
        self.first_phase, self.min_trials, self.power, self.at_max_t = first_phase, min_trials, power, at_max_t
        self.extrapolate = extrapolate

    def unmeasured_weights(self) -> np.ndarray:
        return self.weights if self.first_phase is None else np.eye(len(self.brackets))[self.first_phase]

    def measured_milestone(self) -> int | None:
        latest = super().measured_milestone()
        return None if self.at_max_t and latest is not None and latest < self._max_t else latest

    def agreement(self, latest: int) -> list[float]:
        factors = [a ** (self.power / 2) for a in super().agreement(latest)]  # the engine's are tau^2
        if self.extrapolate and latest < self._max_t:
            factors = [a ** (math.log(self._max_t / r) / math.log(latest / r)) if r < latest else a
                       for a, r in zip(factors, self._firsts)] + factors[len(self._firsts):]
        return factors


class PerTrial(optuna.samplers.BaseSampler):
    """Each trial sampled by `first` or `second`, as `use_second(study, trial number)` says."""

    def __init__(self, first: optuna.samplers.BaseSampler, second: optuna.samplers.BaseSampler,
                 use_second: Callable[[optuna.Study, int], bool]) -> None:
        self.first, self.second, self.use_second, self.chosen = first, second, use_second, {}

    def _of(self, study: optuna.Study, trial: Any) -> optuna.samplers.BaseSampler:
        if trial.number not in self.chosen:
            self.chosen[trial.number] = self.second if self.use_second(study, trial.number) else self.first
        return self.chosen[trial.number]

    def infer_relative_search_space(self, study: optuna.Study, trial: Any) -> dict[str, Any]:
        return self._of(study, trial).infer_relative_search_space(study, trial)

    def sample_relative(self, study: optuna.Study, trial: Any, search_space: dict[str, Any]) -> dict[str, Any]:
        return self._of(study, trial).sample_relative(study, trial, search_space)

    def sample_independent(self, study: optuna.Study, trial: Any, name: str, dist: Any) -> Any:
        return self._of(study, trial).sample_independent(study, trial, name, dist)

    def before_trial(self, study: optuna.Study, trial: Any) -> None:
        self._of(study, trial).before_trial(study, trial)

    def after_trial(self, study: optuna.Study, trial: Any, state: Any, values: Any) -> None:
        self._of(study, trial).after_trial(study, trial, state, values)


def stalled(study: optuna.Study) -> int:
    """How many trials have ended since the one that last raised the best value reported (at any epoch)."""
    ended = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED))
    best, since = -math.inf, 0
    for trial in sorted(ended, key=lambda t: t.number):
        top = max(trial.intermediate_values.values(), default=-math.inf)
        best, since = (top, 0) if top > best else (best, since + 1)
    return since


class BohbTPE(optuna.samplers.TPESampler):
    """BOHB's model (Falkner et al., 2018) in Optuna's TPE: fit on the trials that reached the largest step that at
    least dimensions + 2 trials reached, good and bad split by their value at that step; trials stopped before it
    are left out. (Optuna's TPE ranks PRUNED trials by the step they reached, then their value.) Reads Optuna's
    private TPE methods: a simulation only."""

    def _sample(self, study: optuna.Study, trial: Any, search_space: dict[str, Any]) -> dict[str, Any]:
        from optuna.samplers._tpe import sampler as tpe
        from optuna.trial import TrialState

        trials = study._get_trials(deepcopy=False, states=[TrialState.COMPLETE, TrialState.PRUNED], use_cache=True)
        steps: dict[int, int] = {}
        for t in trials:
            for step in t.intermediate_values:
                steps[step] = steps.get(step, 0) + 1
        usable = sorted(step for step, n in steps.items() if n >= len(search_space) + 2)
        if not usable:
            return super()._sample(study, trial, search_space)
        step = usable[-1]
        at = [t for t in trials if step in t.intermediate_values and math.isfinite(t.intermediate_values[step])]
        sign = -1.0 if study.direction == optuna.study.StudyDirection.MAXIMIZE else 1.0
        ranked = sorted(at, key=lambda t: sign * t.intermediate_values[step])
        n_below = max(1, (self._gamma or tpe.default_gamma)(len(ranked)))
        below = sorted(ranked[:n_below], key=lambda t: t.number)
        above = sorted(ranked[n_below:], key=lambda t: t.number)
        mpe_below = self._build_parzen_estimator(study, search_space, below, handle_below=True)
        mpe_above = self._build_parzen_estimator(study, search_space, above, handle_below=False)
        samples = mpe_below.sample(self._rng.rng, self._n_ei_candidates)
        chosen = self._compare(samples, self._compute_acquisition_func(samples, mpe_below, mpe_above))
        return {name: dist.to_external_repr(chosen[name]) for name, dist in search_space.items()}


class ViewedTPE(optuna.samplers.TPESampler):
    """TPE that samples from its `view` of the study's trials (the trials themselves, here). Replaces the study's
    private `_get_trials` while TPE samples: a simulation only."""

    def view(self, trials: list[Any]) -> list[Any]:
        return trials

    def _sample(self, study: optuna.Study, trial: Any, search_space: dict[str, Any]) -> dict[str, Any]:
        every = study._get_trials
        study._get_trials = lambda *args, **kwargs: self.view(every(*args, **kwargs))
        try:
            return super()._sample(study, trial, search_space)
        finally:
            del study._get_trials


class DropMisledTPE(ViewedTPE):
    """TPE that leaves out the PRUNED trials stopped at a rung whose ranking the adaptive scheduler `engine` measured
    as misleading (its bracket's factor, tau^2, below `threshold`): such a trial tells TPE it is worse than those
    that went further, which holds only where early values rank as later ones do."""

    def __init__(self, *, threshold: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.threshold, self.engine = threshold, None

    def view(self, trials: list[Any]) -> list[Any]:
        latest = self.engine.measured_milestone() if self.engine is not None else None
        if latest is None:
            return trials
        factors = dict(zip(self.engine._firsts, self.engine.agreement(latest)))
        return [t for t in trials if not (t.state == optuna.trial.TrialState.PRUNED
                                          and factors.get(t.last_step, 1.0) < self.threshold)]


class PredictedTPE(ViewedTPE):
    """TPE told each PRUNED trial as COMPLETE with a prediction of its value at the last epoch, rather than ranked
    below every trial that went further: the value at the epoch it stopped plus the mean gain from that epoch to
    the last of the COMPLETE trials nearest to it, in value there (`by="value"`) or in configuration (`"config"`,
    the parameters scaled to [0, 1]); the nearest quarter, at least 3, once 5 COMPLETE trials hold that epoch.
    A learning-curve model at its simplest."""

    def __init__(self, *, by: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.by = by

    def view(self, trials: list[Any]) -> list[Any]:
        done = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
        return [self._predicted(t, done) if t.state == optuna.trial.TrialState.PRUNED else t for t in trials]

    def _predicted(self, pruned: Any, done: list[Any]) -> Any:
        step, value = max(pruned.intermediate_values.items(), default=(0, math.nan))
        known = [t for t in done if step in t.intermediate_values]
        if len(known) < 5 or not math.isfinite(value):
            return pruned
        gains = np.asarray([t.value - t.intermediate_values[step] for t in known])
        if self.by == "value":
            distance = np.abs(np.asarray([t.intermediate_values[step] for t in known]) - value)
        else:
            distance = np.abs(np.asarray([_scaled(t) for t in known]) - _scaled(pruned)).sum(axis=1)
        nearest = np.argsort(distance)[:max(3, len(known) // 4)]
        told = copy.copy(pruned)
        told.state, told.value = optuna.trial.TrialState.COMPLETE, float(value + gains[nearest].mean())
        return told


class ResumingTPE(ViewedTPE):
    """TPE whose next trial may continue a stopped one rather than try a new configuration: when the next trial's
    bracket (drawn with the adaptive weights) first stops later than a trial was stopped, at a rung whose
    agreement factor (tau^2) the scheduler measured below `threshold`, the next trial continues the stopped trial
    with the best value there from the epoch it reached (those epochs are not paid again). TPE no longer sees the
    stopped record of a continued trial (`keep`: it still does). Freeze-thaw's "thaw" at its simplest."""

    def __init__(self, *, threshold: float, keep: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.threshold, self.keep, self.engine = threshold, keep, None
        self.stopped: dict[int, tuple[int, float]] = {}  # trial number -> (its last epoch, its value there)
        self.continues: dict[int, tuple[int, int]] = {}  # trial number -> (the trial it continues, epochs paid)
        self.hidden: set[int] = set()

    def view(self, trials: list[Any]) -> list[Any]:
        return trials if self.keep else [t for t in trials if t.number not in self.hidden]

    def plan(self, study: optuna.Study, ended: optuna.trial.FrozenTrial, pruner: "AsyncHyperband") -> None:
        """After trial `ended`: draw the next trial's bracket and enqueue the stopped trial it continues, if any."""
        if ended.state == optuna.trial.TrialState.PRUNED:
            self.stopped[ended.number] = (ended.last_step, ended.intermediate_values[ended.last_step])
        latest = self.engine.measured_milestone()
        if latest is None or not self.stopped:
            return
        following = len(study.trials)
        pruner.join(following)
        first = min(pruner.rungs[pruner.bracket[following]], default=math.inf)
        factors = dict(zip(self.engine._firsts, self.engine.agreement(latest)))
        misled = [(value, number) for number, (epoch, value) in self.stopped.items()
                  if epoch < first and factors.get(epoch, 1.0) < self.threshold]
        if misled:
            number = max(misled)[1]
            epoch = self.stopped.pop(number)[0]
            self.continues[following] = (number, epoch)
            pruner.alias[following] = pruner.alias.get(number, number)  # the scheduler's id: the first of the line
            self.hidden.add(number)
            study.enqueue_trial(study.trials[number].params)


def _scaled(trial: Any) -> np.ndarray:
    """A trial's parameters, each scaled to [0, 1] (log-scaled where sampled so; a choice by its index)."""
    out = []
    for name, dist in sorted(trial.distributions.items()):
        x = dist.to_internal_repr(trial.params[name])
        if isinstance(dist, optuna.distributions.CategoricalDistribution):
            out.append(x / max(1, len(dist.choices) - 1))
        elif dist.log:
            out.append(math.log(x / dist.low) / math.log(dist.high / dist.low))
        else:
            out.append((x - dist.low) / max(dist.high - dist.low, 1e-12))
    return np.asarray(out)


def ordinal_suggest(trial: optuna.Trial, key: str, dist: Any) -> Any:
    """`quality._suggest`, but a choice of three or more numbers drawn as an integer index into their sorted values,
    so that TPE's kernel takes neighbours (128 and 256) as nearer than far values (16 and 256)."""
    kind, args = next(iter(dist.items()))
    if kind == "choice" and len(args) > 2 and all(isinstance(a, (int, float)) for a in args):
        values = sorted(args)
        return values[trial.suggest_int(f"{key}#index", 0, len(values) - 1)]
    return quality._suggest(trial, key, dist)


TPE_FLAGS = {"endpoints": ("consider_endpoints", True), "group": ("group", True), "uni": ("multivariate", False)}


def modified(variant: str, seed: int, epochs: int) -> tuple[optuna.samplers.BaseSampler, Adaptive]:
    """The sampler and scheduler of `adaptive+MOD+...`: the engine's default with each modifier applied.
    TPE: startupN (n_startup_trials), endpoints (consider_endpoints), priorX (prior_weight), eiN (n_ei_candidates),
    group, uni (multivariate=False), gammaX (gamma(n) = min(ceil(X n), 25)), bohb (`BohbTPE`), randX (a share X of
    the trials, drawn with the seed, sampled at random: BOHB's random fraction), stallN (once N trials in a row
    have not raised the best value, every other trial sampled at random until one does), tpegpN (TPE for N trials,
    then Optuna's GPSampler), dropX (`DropMisledTPE`, threshold X), ordinal (`ordinal_suggest`), predvalue and
    predconfig (`PredictedTPE` by value or by configuration), resumeX (`ResumingTPE`, threshold X; with keep, its
    `keep`). Scheduler: hbfirst (Hyperband's weights until tau can be measured), firstK (bracket K until then),
    minN (MIN_TRIALS), tauP (tau^P), maxt (tau against the last epoch only), extrap (`Adaptive`'s extrapolate),
    rayrule (a trial judged at a rung against the earlier trials' values alone, as Ray's ASHA judges:
    AsyncHyperband's `with_self=False`). Searcher: failed (a trial whose training diverged told FAIL, as the engine
    did before the recipes raised `Diverged`; by default it is PRUNED with NaN at that epoch)."""
    tpe: dict[str, Any] = {"seed": seed, "multivariate": True}
    scheduler: dict[str, Any] = {}
    random_share, bohb, switch_at, stall, drop, predict, resume = 0.0, False, 0, 0, 0.0, "", 0.0
    for mod in filter(None, variant.split("+")[1:]):
        head = mod.rstrip("0123456789.")
        number = mod[len(head):]
        if mod in TPE_FLAGS:
            tpe.update([TPE_FLAGS[mod]])
        elif head in ("startup", "ei"):
            tpe["n_startup_trials" if head == "startup" else "n_ei_candidates"] = int(number)
        elif head == "prior":
            tpe["prior_weight"] = float(number)
        elif head == "gamma":
            tpe["gamma"] = lambda n, x=float(number): min(math.ceil(x * n), 25)
        elif head == "rand":
            random_share = float(number)
        elif head == "stall":
            stall = int(number)
        elif mod == "bohb":
            bohb = True
        elif head == "drop":
            drop = float(number)
        elif head == "resume":
            resume = float(number)
        elif mod in ("predvalue", "predconfig"):
            predict = mod.removeprefix("pred")
        elif head == "tpegp":
            switch_at = int(number)
        elif mod == "extrap":
            scheduler["extrapolate"] = True
        elif mod in ("hbfirst", "maxt"):
            scheduler["first_phase" if mod == "hbfirst" else "at_max_t"] = None if mod == "hbfirst" else True
        elif head in ("first", "min"):
            scheduler["first_phase" if head == "first" else "min_trials"] = int(number)
        elif head == "tau":
            scheduler["power"] = float(number)
        elif mod in ("rayrule", "ordinal", "keep", "failed"):
            pass  # the rung rule (AsyncHyperband's `with_self`), the suggestions, keep and failed: set elsewhere
        else:
            raise ValueError(f"unknown modifier {mod!r} in {variant!r} (see `modified`)")
    sampler: optuna.samplers.BaseSampler = (
        BohbTPE(**tpe) if bohb else DropMisledTPE(threshold=drop, **tpe) if drop
        else PredictedTPE(by=predict, **tpe) if predict
        else ResumingTPE(threshold=resume, keep="keep" in variant.split("+"), **tpe) if resume
        else optuna.samplers.TPESampler(**tpe))
    if switch_at:
        sampler = PerTrial(sampler, optuna.samplers.GPSampler(seed=seed, n_startup_trials=0),
                           lambda _, number: number >= switch_at)
    if random_share:
        draws = np.random.default_rng(seed + 20_000)
        sampler = PerTrial(sampler, optuna.samplers.RandomSampler(seed=seed + 10_000),
                           lambda *_: bool(draws.random() < random_share))
    if stall:
        sampler = PerTrial(sampler, optuna.samplers.RandomSampler(seed=seed + 30_000),
                           lambda study, _: (since := stalled(study)) >= stall and (since - stall) % 2 == 0)
    engine = Adaptive(epochs, grace_period=1, reduction_factor=3, seed=seed, adaptive=True, **scheduler)
    engine.set_search_properties("val_accuracy", "max")
    if isinstance(sampler, (DropMisledTPE, ResumingTPE)):
        sampler.engine = engine
    return sampler, engine


def search(name: str, variant: str, seed: int, limit: int, *, trials: int | None = None,
           max_t: int | None = None) -> list[tuple[float, float]]:
    """One simulated search of `limit` epochs (or of `trials` trials, whatever they spend): its reports, in order,
    as bench/quality.py counts them. `max_t`: each trial's last epoch, the recorded curves cut there."""
    data, space = quality._load(name), quality.search_space(name)
    epochs = max_t or data.epochs
    reports: list[tuple[float, float]] = []
    suggest = ordinal_suggest if "ordinal" in variant.split("+")[1:] else quality._suggest

    def objective(trial: optuna.Trial) -> float:
        config = quality._nested({k: suggest(trial, k, d) for k, d in space.items()})
        if isinstance(pruner, AsyncHyperband):
            pruner.join(trial.number)
        curve = data.curve(config)[0]["val_accuracy"]
        paid = sampler.continues.get(trial.number, (0, 0))[1] if isinstance(sampler, ResumingTPE) else 0
        for epoch in range(1, paid + 1):  # a continued trial's epochs so far: known, not run again
            trial.report(float(curve[epoch - 1]), epoch)
        for epoch in range(paid + 1, epochs + 1):
            if epoch == data.diverges(config):
                if variant in ("script", "v0.1") or "failed" in variant.split("+")[1:]:  # told FAIL
                    raise TrialError("diverged")
                trial.report(math.nan, epoch)  # the engine's searcher, told the recipe raised Diverged
                raise optuna.TrialPruned()
            reports.append((0.0, float(curve[epoch - 1])))
            trial.report(float(curve[epoch - 1]), epoch)
            if trial.should_prune():
                if variant == "v0.1":  # Ray's Optuna searcher told every trial COMPLETE with its last value
                    return float(curve[epoch - 1])
                raise optuna.TrialPruned()
        return float(curve[epochs - 1])

    def spent(study: optuna.Study, ended: optuna.trial.FrozenTrial) -> None:
        if trials is None and len(reports) >= limit:
            study.stop()
        elif isinstance(sampler, ResumingTPE):
            sampler.plan(study, ended, pruner)

    if variant.startswith("adaptive+"):
        sampler, engine = modified(variant, seed, epochs)
        pruner = AsyncHyperband(epochs, WEIGHTS["hyperband"], seed=seed, engine=engine,
                                with_self="rayrule" not in variant.split("+"))
    elif variant in ("asha4", "v0.1"):  # v0.1's ASHA from epoch 1 with reduction factor 4, its TPE
        sampler = optuna.samplers.TPESampler(seed=seed, multivariate=True)
        pruner = AsyncHyperband(epochs, WEIGHTS["asha"], rf=4, seed=seed, with_self=False)
    elif variant == "random":
        sampler, pruner = optuna.samplers.RandomSampler(seed=seed), optuna.pruners.NopPruner()
    elif variant == "script":
        sampler = optuna.samplers.TPESampler(seed=seed)
        pruner = optuna.pruners.HyperbandPruner(min_resource=1, max_resource=epochs, reduction_factor=3)
    else:
        sampler = optuna.samplers.TPESampler(seed=seed, multivariate=True)  # the engine's TPE
        engine = None
        if variant == "adaptive":
            engine = Hyperband(epochs, 1, 3, seed=seed, adaptive=True)
            engine.set_search_properties("val_accuracy", "max")
        pruner = (optuna.pruners.NopPruner() if variant == "nostop"
                  else AsyncHyperband(epochs, WEIGHTS.get(variant, WEIGHTS["hyperband"]), seed=seed,
                                      engine=engine))
    study = optuna.create_study(study_name=quality.study_name(name, seed), direction="maximize", sampler=sampler,
                                pruner=pruner)
    study.optimize(objective, n_trials=trials or limit, callbacks=[spent], catch=(TrialError,))
    return reports


def main() -> None:
    offset = int(os.environ.get("SEED_OFFSET", 0))  # a fresh set of seeds: SEED_OFFSET..SEED_OFFSET + SEEDS - 1
    given = arguments(__doc__, 4)
    full_trainings, seeds = int(given[0]), range(offset, offset + int(given[1]))
    for name in given[3].split(","):
        best, worst = quality.bounds(name)
        limit = quality.budget(name, full_trainings)
        for variant in given[2].split(","):
            regret = np.asarray([quality.regrets(search(name, variant, s, limit), limit, best, worst) for s in seeds])
            out = Path(os.environ.get("SIM_OUT", Path(__file__).parent / "sim_out"))
            out.mkdir(exist_ok=True)
            np.save(out / f"{name}__{variant}__{len(seeds)}{f'o{offset}' if offset else ''}.npy", regret)
            print(f"{name:10s} {variant:9s} mean regret " + " ".join(f"{x:.3f}" for x in regret.mean(axis=0))
                  + f"  worst {regret[:, -1].max():.3f} median {np.median(regret[:, -1]):.3f}", flush=True)


if __name__ == "__main__":
    main()
