"""One-run ε lower bounds (issue 13): formulas against slow oracles and a public implementation.

The oracles restate the papers' formulas the obvious way: binomial probabilities summed term by
term in log space, the f-DP recursion kept as whole arrays without early exit, Φ⁻¹ by bisection,
and every search by plain bisection. The fast code uses scipy's binomial tails, an early exit and
doubling brackets.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import memberscope
from memberscope import InputError, UnknownNameError, epsilon_one_run
from memberscope.one_run import (
    approx_dp_epsilon,
    gaussian_fdp_mu,
    gdp_epsilon,
    guess_grid,
    method_assumption,
    steinke_epsilon,
)

# --- slow oracles -------------------------------------------------------------------------


def _bisect_largest(predicate, high: float, steps: int = 80) -> float:
    """Largest x in [0, high] with predicate(x) true, predicate true then false; 0 if never."""
    if not predicate(0.0):
        return 0.0
    low = 0.0
    for _ in range(steps):
        middle = (low + high) / 2
        low, high = (middle, high) if predicate(middle) else (low, middle)
    return low


def _binomial_pmf(j: int, k: int, q: float) -> float:
    if j < 0 or j > k:
        return 0.0
    log_choose = math.lgamma(k + 1) - math.lgamma(j + 1) - math.lgamma(k - j + 1)
    return math.exp(log_choose + j * math.log(q) + (k - j) * math.log1p(-q))


def slow_steinke_p_value(m, k, c, epsilon, delta):
    q = math.exp(epsilon) / (1 + math.exp(epsilon))
    pmf = [_binomial_pmf(j, k, q) for j in range(k + 1)]
    tail = sum(pmf[c:])
    worst = 0.0
    for i in range(1, c + 1):
        worst = max(worst, sum(pmf[c - i:c]) / i)
    return min(1.0, tail + 2 * m * delta * worst)


def slow_steinke_epsilon(m, k, c, alpha, delta):
    return _bisect_largest(lambda eps: slow_steinke_p_value(m, k, c, eps, delta) < alpha, 40.0)


def _phi(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2))


def _phi_inverse(p: float) -> float:
    low, high = -40.0, 40.0
    for _ in range(64):
        middle = (low + high) / 2
        low, high = (middle, high) if _phi(middle) < p else (low, middle)
    return (low + high) / 2


def slow_fdp_rejects(m, k, c, mu, alpha):
    r = [0.0] * (c + 1)
    h = [0.0] * (c + 1)
    r[c], h[c] = alpha * c / m, alpha * (k - c) / m
    for i in range(c - 1, -1, -1):
        implied = 1.0 if r[i + 1] >= 1 else _phi(_phi_inverse(r[i + 1]) - mu)
        h[i] = max(h[i + 1], implied)
        r[i] = min(1.0, r[i + 1] + i / (k - i) * (h[i] - h[i + 1]))
    return c > 0 and r[0] + h[0] > k / m


def slow_gdp_epsilon(mu, delta):
    def gdp_delta(eps):
        return _phi(-eps / mu + mu / 2) - math.exp(eps) * _phi(-eps / mu - mu / 2)
    return 0.0 if mu == 0 else _bisect_largest(lambda eps: gdp_delta(eps) > delta, 60.0)


def slow_fdp_epsilon(m, k, c, alpha, delta):
    mu = _bisect_largest(lambda mu: slow_fdp_rejects(m, k, c, mu, alpha), 20.0, steps=40)
    return slow_gdp_epsilon(mu, delta)


CASES = [  # (m, k, correct, delta, alpha)
    (1000, 100, 100, 1e-5, 0.05),
    (1000, 100, 90, 1e-5, 0.05),
    (1000, 500, 400, 1e-5, 0.05),
    (1000, 10, 10, 1e-5, 0.05),
    (100, 50, 40, 1e-3, 0.1),
    (1000, 200, 160, 1e-6, 0.01),
    (5000, 1000, 700, 1e-5, 0.05),
    (1000, 100, 55, 1e-5, 0.05),  # barely above chance: 0
    (200, 200, 100, 1e-5, 0.05),  # every canary guessed: no information, 0
    (50, 20, 17, 1e-2, 0.2),  # δ large enough to matter
]


@pytest.mark.parametrize(("m", "k", "c", "delta", "alpha"), CASES)
def test_steinke_bound_matches_slow_oracle(m, k, c, delta, alpha):
    fast = steinke_epsilon(m, k, c, alpha=alpha, delta=delta)
    assert fast == pytest.approx(slow_steinke_epsilon(m, k, c, alpha, delta), abs=1e-5)


@pytest.mark.parametrize(("m", "k", "c", "delta", "alpha"), CASES)
def test_fdp_bound_matches_slow_oracle(m, k, c, delta, alpha):
    fast = gdp_epsilon(gaussian_fdp_mu(m, k, c, alpha=alpha), delta)
    assert fast == pytest.approx(slow_fdp_epsilon(m, k, c, alpha, delta), abs=1e-4)


def test_steinke_bound_matches_slow_oracle_on_seeded_random_counts():
    rng = np.random.default_rng(7)
    for _ in range(15):
        m = int(rng.integers(10, 400))
        k = int(rng.integers(1, m + 1))
        c = int(rng.integers(0, k + 1))
        delta, alpha = 10 ** rng.uniform(-7, -2), rng.uniform(0.01, 0.3)
        fast = steinke_epsilon(m, k, c, alpha=alpha, delta=delta)
        assert fast == pytest.approx(slow_steinke_epsilon(m, k, c, alpha, delta), abs=1e-5)


def test_gdp_conversion_matches_slow_oracle():
    for mu in (0.1, 0.5, 1.0, 2.0, 5.0):
        for delta in (1e-5, 1e-3):
            assert gdp_epsilon(mu, delta) == pytest.approx(slow_gdp_epsilon(mu, delta), abs=1e-6)


# --- a public implementation's outputs ----------------------------------------------------

# ε from google-deepmind/jax_privacy, jax_privacy/auditing.py at commit
# 03a095e96dd27c06a84d4dd394e2388abc14ec4a: `_epsilon_one_run(0, m, k, c, alpha, delta)` and
# `_epsilon_one_run_fdp(0, m, k, c, alpha, delta)` (its σ of the Gaussian mechanism from
# dp-accounting 0.6.0), run outside this repository; brentq with xtol 1e-6 there.
JAX_PRIVACY = {  # (m, k, correct, delta, alpha): (steinke, fdp)
    (1000, 100, 100, 1e-5, 0.05): (3.465376229385333, 5.5490279999429415),
    (1000, 100, 90, 1e-5, 0.05): (1.6261436787042223, 2.4564050672094146),
    (1000, 500, 400, 1e-5, 0.05): (1.1979685996776859, 2.076806928840693),
    (20000, 10000, 8000, 1e-5, 0.05): (1.3442409840460643, 2.091708894300405),
    (1000, 10, 10, 1e-5, 0.05): (1.0149862038481974, 1.2275529916834935),
    (100, 50, 40, 1e-3, 0.1): (0.8493063477019994, 1.2594214323997546),
    (1000, 200, 160, 1e-6, 0.01): (0.9738010489115109, 1.5805903544533735),
    (5000, 1000, 700, 1e-5, 0.05): (0.7306471205001742, 1.0760775555573479),
}


@pytest.mark.parametrize("case", sorted(JAX_PRIVACY))
def test_bounds_agree_with_jax_privacy_outputs(case):
    m, k, c, delta, alpha = case
    steinke, fdp = JAX_PRIVACY[case]
    assert steinke_epsilon(m, k, c, alpha=alpha, delta=delta) == pytest.approx(steinke, abs=1e-5)
    assert gdp_epsilon(gaussian_fdp_mu(m, k, c, alpha=alpha), delta) == pytest.approx(fdp,
                                                                            abs=1e-5)


# --- the public function ------------------------------------------------------------------


def test_guesses_are_the_k_highest_scores():
    scores = np.arange(100, dtype=float)  # canary 99 scores highest
    included = np.zeros(100, bool)
    included[[99, 98, 97, 10]] = True
    result = epsilon_one_run(scores, included, delta=1e-5, n_guesses=5)
    assert (result.n_guesses, result.n_correct, result.threshold) == (5, 3, 95.0)
    assert result.candidates == (5,) and result.m == 100 and result.method == "approx_dp"
    assert result.epsilon == approx_dp_epsilon(100, 5, 3, alpha=0.05, delta=1e-5)


def test_ties_at_the_threshold_are_broken_by_index():
    scores = np.r_[np.ones(5), np.zeros(15)]
    included = np.r_[[False, True, True, True, True], np.zeros(15, bool)]
    assert epsilon_one_run(scores, included, delta=1e-5, n_guesses=1).n_correct == 0
    assert epsilon_one_run(scores, included, delta=1e-5, n_guesses=3).n_correct == 2


def test_fixed_grid_is_tested_at_alpha_over_its_size():
    rng = np.random.default_rng(3)
    included = rng.random(1000) < 0.5
    scores = rng.normal(size=1000) + 2.0 * included
    assert guess_grid(1000) == (10, 20, 50, 100, 200, 500)
    assert guess_grid(10) == (1, 2, 5)
    for method in ("approx_dp", "steinke", "gaussian_fdp"):
        best = epsilon_one_run(scores, included, delta=1e-5, method=method)
        assert best.candidates == guess_grid(1000)
        each = [epsilon_one_run(scores, included, delta=1e-5, method=method, n_guesses=k,
                                alpha=0.05 / 6).epsilon for k in guess_grid(1000)]
        # each search starts from the best so far: equal up to the bisection's tolerance
        assert best.epsilon == pytest.approx(max(each), rel=1e-6) and best.epsilon > 0
        assert best.n_guesses == guess_grid(1000)[int(np.argmax(each))]
        assert best.alpha == 0.05


def test_gaussian_fdp_reports_mu_and_beats_steinke_on_strong_signal():
    included = np.arange(1000) % 2 == 0
    scores = included * 10.0
    steinke = epsilon_one_run(scores, included, delta=1e-5, n_guesses=100, method="steinke")
    fdp = epsilon_one_run(scores, included, delta=1e-5, n_guesses=100, method="gaussian_fdp")
    assert steinke.mu is None and fdp.mu is not None and fdp.mu > 0
    assert fdp.epsilon == pytest.approx(gdp_epsilon(fdp.mu, 1e-5))
    assert fdp.epsilon > steinke.epsilon > 3
    assert (steinke.assumption, fdp.assumption) == (None, "Gaussian trade-off curve (mu-GDP)")


def test_more_correct_guesses_never_lower_the_bound():
    for method in ("approx_dp", "steinke", "gaussian_fdp"):
        bounds = []
        for c in range(50, 101, 5):
            included = np.r_[np.ones(c, bool), np.zeros(100 - c, bool),
                             np.arange(900) < 450 - (c - 50)]
            scores = -np.arange(1000.0)
            bounds.append(epsilon_one_run(scores, included, delta=1e-5, n_guesses=100,
                                          method=method).epsilon)
        assert bounds == sorted(bounds) and bounds[0] == 0


def test_result_is_frozen_and_serialisable():
    included = np.arange(20) % 2 == 0
    result = epsilon_one_run(included.astype(float), included, delta=1e-5)
    with pytest.raises(AttributeError):
        result.epsilon = 1.0  # type: ignore[misc]
    assert result.to_dict()["candidates"] == list(guess_grid(20))
    assert result.to_dict()["assumption"] is None
    assert "epsilon_one_run" in memberscope.__all__ and "OneRunEpsilon" in memberscope.__all__


# --- bad input ----------------------------------------------------------------------------

GOOD_SCORES = np.linspace(0, 1, 20)
GOOD_INCLUDED = np.arange(20) % 2 == 0


@pytest.mark.parametrize(("changes", "message"), [
    ({"included": np.full(20, 0.5)}, r"included must be boolean"),
    ({"included": np.array(["yes"] * 20)}, r"included must be boolean"),
    ({"included": GOOD_INCLUDED[:19]}, r"scores has 20 canaries but included has 19"),
    ({"scores": np.r_[GOOD_SCORES[:3], np.nan, GOOD_SCORES[4:]]},
     r"scores contains 1 NaN value\(s\) \(first at row 3\)"),
    ({"scores": GOOD_SCORES[:9], "included": GOOD_INCLUDED[:9]},
     r"scores must hold at least 10 canaries; got 9"),
    ({"scores": GOOD_SCORES.reshape(4, 5)}, r"scores must have 1 dimension"),
    ({"delta": 0.0}, r"delta must be in \(0, 1\); got 0.0"),
    ({"delta": 1.5}, r"delta must be in \(0, 1\)"),
    ({"alpha": 1.0}, r"alpha must be in \(0, 1\); got 1.0"),
    ({"alpha": -0.1}, r"alpha must be in \(0, 1\)"),
    ({"n_guesses": 0}, r"n_guesses must be in \[1, 20\]"),
    ({"n_guesses": 21}, r"n_guesses must be in \[1, 20\]"),
    ({"n_guesses": 2.5}, r"n_guesses must be an integer"),
])
def test_bad_input_names_the_argument(changes, message):
    arguments = {"scores": GOOD_SCORES, "included": GOOD_INCLUDED, "delta": 1e-5}
    arguments.update(changes)
    scores, included = arguments.pop("scores"), arguments.pop("included")
    with pytest.raises(InputError, match=message):
        epsilon_one_run(scores, included, **arguments)


def test_unknown_method_lists_the_valid_ones():
    with pytest.raises(UnknownNameError,
                       match=r"unknown method 'stienke' \(did you mean 'steinke'\?\); valid: "
                             r"approx_dp, steinke, gaussian_fdp, gaussian_auc"):
        epsilon_one_run(GOOD_SCORES, GOOD_INCLUDED, delta=1e-5, method="stienke")


@pytest.mark.parametrize(("old", "new"), [("fdp", "gaussian_fdp"), ("gaussian", "gaussian_auc")])
def test_old_gaussian_method_names_say_what_they_assume(old, new):
    with pytest.raises(InputError, match=rf"method '{old}' is now '{new}': .* holds only if "
                                         r"training's trade-off curve is Gaussian"):
        epsilon_one_run(GOOD_SCORES, GOOD_INCLUDED, delta=1e-5, method=old)
    assert method_assumption(old) == method_assumption(new) == "Gaussian trade-off curve (mu-GDP)"
    assert method_assumption("approx_dp") is None and method_assumption("steinke") is None
