"""``epsilon_one_run`` is a valid (1−α) lower bound: on no-signal canaries (true ε = 0) it is
positive in at most about α of seeded runs (issue 13), with the guess count fixed and with the
Bonferroni-corrected grid search. The uncorrected grid search fails the same count at a larger
α·grid-size budget, which shows the count can fail.

On canaries from exactly ε-DP mechanisms that are not Gaussian (randomised response, Laplace;
issue 17) the default bound stays ≤ ε in at least about 1−α of runs, while the bound that
assumes a Gaussian trade-off curve exceeds ε in most of them.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from memberscope import epsilon_one_run
from memberscope.one_run import guess_grid

RUNS = 200
ALPHA = 0.05
M = 1000


def _allowed_positive_runs(runs: int, alpha: float, false_alarm: float = 1e-3) -> int:
    """Smallest count a procedure exactly at level α exceeds with probability < 0.1% (21)."""
    return int(stats.binom.isf(false_alarm, runs, alpha))


def _no_signal(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=M), rng.random(M) < 0.5


@pytest.mark.parametrize("method", ["approx_dp", "steinke", "gaussian_fdp"])
@pytest.mark.parametrize("n_guesses", [None, 100])
def test_bound_is_zero_on_no_signal_canaries_in_at_least_1_minus_alpha_of_runs(method,
                                                                                n_guesses):
    positive = sum(epsilon_one_run(*_no_signal(seed), delta=1e-5, alpha=ALPHA, method=method,
                                   n_guesses=n_guesses).epsilon > 0 for seed in range(RUNS))
    assert positive <= _allowed_positive_runs(RUNS, ALPHA), f"{positive}/{RUNS} runs positive"


@pytest.mark.parametrize("tied", [False, True])
def test_gaussian_bound_is_zero_on_no_signal_canaries_in_at_least_1_minus_alpha_of_runs(tied):
    # The continuous-score bound; tied: scores rounded to integers (the benchmark measures ~3%).
    positive = 0
    for seed in range(RUNS):
        scores, included = _no_signal(seed)
        scores = np.round(scores) if tied else scores
        positive += epsilon_one_run(scores, included, delta=1e-5, alpha=ALPHA,
                                    method="gaussian_auc").epsilon > 0
    assert positive <= _allowed_positive_runs(RUNS, ALPHA), f"{positive}/{RUNS} runs positive"


def test_uncorrected_grid_search_is_positive_too_often():
    # The best of 6 guess counts each tested at α: positive in 48 of these 200 runs at α = 0.1
    # (24 at α = 0.05), above the 34 a valid bound may reach; the correction is what buys
    # validity.
    alpha = 0.1
    positive = 0
    for seed in range(RUNS):
        scores, included = _no_signal(seed)
        positive += max(epsilon_one_run(scores, included, delta=1e-5, alpha=alpha,
                                        n_guesses=k).epsilon for k in guess_grid(M)) > 0
    assert positive > _allowed_positive_runs(RUNS, alpha)


def _randomised_response(seed: int, epsilon: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng([17, seed])
    included = rng.random(M) < 0.5
    truthful = rng.random(M) < np.exp(epsilon) / (1 + np.exp(epsilon))
    return np.where(truthful, included, ~included).astype(float), included


def _laplace(seed: int, epsilon: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng([18, seed])
    included = rng.random(M) < 0.5
    return included + rng.laplace(scale=1 / epsilon, size=M), included


EXACT_DP_RUNS = 60


@pytest.mark.parametrize(("mechanism", "epsilon"), [(_randomised_response, 1.0),
                                                    (_laplace, 2.0)])
def test_default_bound_holds_for_exactly_eps_dp_mechanisms_and_the_gaussian_one_does_not(
        mechanism, epsilon):
    # At most 9 of 60 runs above ε: an exactly-α procedure exceeds that with probability < 0.1%
    # (benchmarks/one_run_mechanisms.py measures 4–11 of 300). The Gaussian-assumption bound,
    # above ε in 43–97% of runs there, must fail the same count.
    above = {"approx_dp": 0, "gaussian_fdp": 0}
    for seed in range(EXACT_DP_RUNS):
        scores, included = mechanism(seed, epsilon)
        for method in above:
            above[method] += epsilon_one_run(scores, included, delta=1e-5, alpha=ALPHA,
                                             method=method).epsilon > epsilon
    allowed = _allowed_positive_runs(EXACT_DP_RUNS, ALPHA)
    assert above["approx_dp"] <= allowed < above["gaussian_fdp"], above
