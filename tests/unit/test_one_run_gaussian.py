"""The continuous-score one-run bound, ``epsilon_one_run(..., method="gaussian_auc")`` (issue 13).

Slow oracles restate the formulas the obvious way: the AUC as the mean over all (included,
excluded) pairs with ties ½, its lower confidence bound by bisection on the defining inequality,
Φ⁻¹ and the ε of μ-GDP at δ by bisection (test_one_run's oracles), and the identity
behind the bound, ∫₀¹ G_μ = Φ(−μ/√2), by a Riemann sum.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from tests.unit.test_one_run import _phi, _phi_inverse, slow_gdp_epsilon

from memberscope import InputError, epsilon_one_run
from memberscope.one_run import gaussian_auc_mu, gdp_epsilon

# --- slow oracles -------------------------------------------------------------------------


def slow_auc(scores, included) -> float:
    inside = [s for s, i in zip(scores, included, strict=True) if i]
    outside = [s for s, i in zip(scores, included, strict=True) if not i]
    wins = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a in inside for b in outside)
    return wins / (len(inside) * len(outside))


def slow_auc_lower(auc: float, n_min: int, alpha: float) -> float:
    """Smallest A in [0, auc] with (auc − A)² ≤ z²·A(1−A)/n_min, by bisection."""
    z = _phi_inverse(1 - alpha)

    def inside(a: float) -> bool:
        return (auc - a) ** 2 <= z * z * a * (1 - a) / n_min

    low, high = 0.0, auc
    if inside(low):
        return 0.0
    for _ in range(200):
        middle = (low + high) / 2
        low, high = (low, middle) if inside(middle) else (middle, high)
    return high


def slow_gaussian_epsilon(scores, included, alpha, delta) -> float:
    n_in = sum(bool(i) for i in included)
    lower = slow_auc_lower(slow_auc(scores, included), min(n_in, len(included) - n_in), alpha)
    mu = math.sqrt(2) * _phi_inverse(lower) if lower > 0.5 else 0.0
    return slow_gdp_epsilon(mu, delta)


def _canaries(seed: int, m: int, mu: float, *, tied: bool = False):
    rng = np.random.default_rng(seed)
    included = rng.random(m) < 0.5
    scores = rng.normal(size=m) + mu * included
    return (np.round(scores) if tied else scores), included


# --- formulas -----------------------------------------------------------------------------


@pytest.mark.parametrize(("seed", "m", "mu", "tied", "alpha", "delta"), [
    (0, 200, 0.0, False, 0.05, 1e-5), (1, 200, 0.7, False, 0.05, 1e-5),
    (2, 300, 1.5, True, 0.1, 1e-3), (3, 150, 3.0, False, 0.01, 1e-6),
    (4, 60, 2.0, True, 0.05, 1e-5), (5, 400, 0.3, False, 0.2, 1e-4),
])
def test_gaussian_bound_matches_slow_oracle(seed, m, mu, tied, alpha, delta):
    scores, included = _canaries(seed, m, mu, tied=tied)
    result = epsilon_one_run(scores, included, delta=delta, alpha=alpha, method="gaussian_auc")
    assert result.auc == pytest.approx(slow_auc(scores, included), abs=1e-12)
    assert result.epsilon == pytest.approx(slow_gaussian_epsilon(scores, included, alpha, delta),
                                           rel=1e-5, abs=1e-6)
    assert result.epsilon == pytest.approx(gdp_epsilon(result.mu, delta))
    assert (result.method, result.n_guesses, result.n_correct, result.candidates) == \
        ("gaussian_auc", 0, 0, ())


@pytest.mark.parametrize("mu", [0.1, 0.5, 1.0, 2.0, 4.0])
def test_gaussian_tradeoff_area_is_the_auc_ceiling(mu):
    # ∫₀¹ G_μ(x) dx = Φ(−μ/√2): the largest AUC a μ-GDP score can reach is Φ(μ/√2).
    n = 200_000
    x = (np.arange(n) + 0.5) / n
    area = float(np.mean(stats.norm.cdf(stats.norm.isf(x) - mu)))
    assert area == pytest.approx(_phi(-mu / math.sqrt(2)), abs=1e-5)


def test_gaussian_mu_inverts_the_auc_ceiling_on_a_perfect_split():
    included = np.arange(1000) % 2 == 0
    mu, auc, auc_lower = gaussian_auc_mu(included * 1.0, included, alpha=0.05)
    assert auc == 1.0 and auc_lower < 1.0
    assert _phi(mu / math.sqrt(2)) == pytest.approx(auc_lower)


# --- validity and power -------------------------------------------------------------------


def test_ideal_gaussian_canaries_are_covered():
    # Scores N(μ·included, 1) are exactly μ-GDP: ε̂ ≤ the true ε in ≥ 1−α of seeded runs
    # (measured 95–99% in benchmarks/one_run_validity.py; 88/100 would be a 0.2%-rare miss).
    mu, runs = 1.0, 100
    true_epsilon = gdp_epsilon(mu, 1e-5)
    covered = sum(epsilon_one_run(*_canaries(seed, 1000, mu), delta=1e-5,
                                  method="gaussian_auc").epsilon <= true_epsilon
                  for seed in range(runs))
    assert covered >= 88


def test_stronger_signal_never_lowers_the_bound():
    rng = np.random.default_rng(7)
    included = rng.random(1000) < 0.5
    noise = rng.normal(size=1000)
    bounds = [epsilon_one_run(noise + shift * included, included, delta=1e-5,
                              method="gaussian_auc").epsilon for shift in np.linspace(0, 3, 13)]
    assert bounds == sorted(bounds) and bounds[0] == 0 and bounds[-1] > 5


def test_beats_the_binary_guess_bounds_on_gaussian_canaries():
    scores, included = _canaries(11, 1000, 1.0)
    gauss = epsilon_one_run(scores, included, delta=1e-5, method="gaussian_auc").epsilon
    fdp = epsilon_one_run(scores, included, delta=1e-5, method="gaussian_fdp").epsilon
    assert gauss > 1.5 * fdp > 0


def test_one_sided_inclusion_gives_zero():
    scores = np.linspace(0, 1, 20)
    result = epsilon_one_run(scores, np.ones(20, bool), delta=1e-5, method="gaussian_auc")
    assert (result.epsilon, result.mu, result.auc) == (0.0, 0.0, 0.5)


# --- bad input ----------------------------------------------------------------------------


def test_gaussian_refuses_a_number_of_guesses():
    with pytest.raises(InputError, match=r'n_guesses must be None for method="gaussian_auc"'):
        epsilon_one_run(np.linspace(0, 1, 20), np.arange(20) % 2 == 0, delta=1e-5,
                        method="gaussian_auc", n_guesses=5)


@pytest.mark.parametrize(("changes", "message"), [
    ({"included": np.full(20, 0.5)}, r"included must be boolean"),
    ({"scores": np.r_[np.nan, np.zeros(19)]}, r"scores contains 1 NaN"),
    ({"scores": np.zeros(9), "included": np.zeros(9, bool)}, r"at least 10 canaries; got 9"),
    ({"delta": 1.0}, r"delta must be in \(0, 1\)"),
    ({"alpha": 0.0}, r"alpha must be in \(0, 1\)"),
])
def test_gaussian_bad_input_names_the_argument(changes, message):
    arguments = {"scores": np.linspace(0, 1, 20), "included": np.arange(20) % 2 == 0,
                 "delta": 1e-5}
    arguments.update(changes)
    scores, included = arguments.pop("scores"), arguments.pop("included")
    with pytest.raises(InputError, match=message):
        epsilon_one_run(scores, included, method="gaussian_auc", **arguments)
