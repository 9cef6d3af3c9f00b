"""The default one-run bound, ``method="approx_dp"`` (issue 17): valid for every (ε, δ)-DP
mechanism and at least as tight as Steinke's.

The slow oracle restates the f-DP recursion with whole arrays and no early exit, on the trade-off
curve of (ε, δ)-DP written as the curve itself, f(x) = max(0, 1 − δ − e^ε x, e^{−ε}(1 − δ − x)),
evaluated at 1 − r. Validity is checked exactly, without simulation: on the canonical (ε, δ)-DP
mechanism (each canary reveals its bit with probability δ, else answers ε-randomised response)
the number of correct guesses has a closed-form law, so each fixed-k test's size at the true
(ε, δ) is a finite sum that must stay ≤ α; the Gaussian-assumption test fails the same check.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from tests.helpers.canaries import two_source_record
from tests.unit.test_one_run import CASES, _bisect_largest, slow_steinke_epsilon

from memberscope import epsilon_one_run
from memberscope.one_run import (
    CanaryBounds,
    approx_dp_epsilon,
    epsilon_audit_record,
    gaussian_fdp_mu,
    gdp_epsilon,
    guess_counts,
    recorded_bounds,
    steinke_epsilon,
    tradeoff_epsilon,
)

# --- slow oracle --------------------------------------------------------------------------


def approx_dp_curve(x: float, epsilon: float, delta: float) -> float:
    return max(0.0, 1 - delta - math.exp(epsilon) * x, math.exp(-epsilon) * (1 - delta - x))


def slow_tradeoff_rejects(m, k, c, epsilon, delta, alpha) -> bool:
    r = [0.0] * (c + 1)
    h = [0.0] * (c + 1)
    r[c], h[c] = alpha * c / m, alpha * (k - c) / m
    for i in range(c - 1, -1, -1):
        implied = 1.0 if r[i + 1] >= 1 else approx_dp_curve(1 - r[i + 1], epsilon, delta)
        h[i] = max(h[i + 1], implied)
        r[i] = min(1.0, r[i + 1] + i / (k - i) * (h[i] - h[i + 1]))
    return c > 0 and r[0] + h[0] > k / m


def slow_approx_dp_epsilon(m, k, c, alpha, delta) -> float:
    tradeoff = _bisect_largest(lambda eps: slow_tradeoff_rejects(m, k, c, eps, delta, alpha),
                               40.0, steps=50)
    return max(slow_steinke_epsilon(m, k, c, alpha, delta), tradeoff)


@pytest.mark.parametrize(("m", "k", "c", "delta", "alpha"), CASES)
def test_approx_dp_bound_matches_slow_oracle(m, k, c, delta, alpha):
    fast = approx_dp_epsilon(m, k, c, alpha=alpha, delta=delta)
    assert fast == pytest.approx(slow_approx_dp_epsilon(m, k, c, alpha, delta), abs=1e-5)


def _random_counts(seed: int, cases: int, *, most_guessed: float):
    """Seeded (m, k, c, δ, α) with k ≤ ``most_guessed``·m and at least half the guesses right."""
    rng = np.random.default_rng(seed)
    for _ in range(cases):
        m = int(rng.integers(20, 3000))
        k = int(rng.integers(1, int(most_guessed * m) + 1))
        yield m, k, int(rng.integers(k // 2, k + 1)), 10 ** rng.uniform(-8, -2), \
            rng.uniform(0.002, 0.2)


def test_approx_dp_is_the_larger_of_steinke_and_the_tradeoff_recursion():
    for m, k, c, delta, alpha in _random_counts(11, 40, most_guessed=0.5):
        steinke = steinke_epsilon(m, k, c, alpha=alpha, delta=delta)
        tradeoff = tradeoff_epsilon(m, k, c, alpha=alpha, delta=delta)
        combined = approx_dp_epsilon(m, k, c, alpha=alpha, delta=delta)
        assert combined == pytest.approx(max(steinke, tradeoff), abs=1e-6)
        assert combined >= steinke


def test_approx_dp_never_rejects_more_than_the_exact_law_of_randomised_response_allows():
    # With k ≤ m/5 guesses on ε-randomised-response canaries the count is Bin(k, q) (but with
    # probability < 1e-40), so no test valid for every (ε, δ)-DP mechanism rejects where
    # Steinke's δ = 0 tail (exactly that law) does not: an upper bound on any valid method.
    for m, k, c, delta, alpha in _random_counts(2, 60, most_guessed=0.2):
        assert approx_dp_epsilon(m, k, c, alpha=alpha, delta=delta) <= \
            steinke_epsilon(m, k, c, alpha=alpha, delta=0.0) + 1e-6


def test_where_delta_matters_the_recursion_beats_steinke_and_at_delta_0_steinke_wins():
    # 10 of 10 guesses right among 1,000 canaries at the grid's level α/6: Steinke's 2mδ term
    # (0.02 at δ = 1e-5) is worth more than the level itself.
    alpha = 0.05 / 6
    assert approx_dp_epsilon(1000, 10, 10, alpha=alpha, delta=1e-5) == pytest.approx(0.4547,
                                                                                     abs=1e-3)
    assert steinke_epsilon(1000, 10, 10, alpha=alpha, delta=1e-5) == pytest.approx(0.3629,
                                                                                   abs=1e-3)
    # δ = 0: Steinke's tail is exact for randomised response; the recursion is a little looser.
    assert tradeoff_epsilon(1000, 200, 150, alpha=alpha, delta=0.0) < \
        steinke_epsilon(1000, 200, 150, alpha=alpha, delta=0.0) == \
        approx_dp_epsilon(1000, 200, 150, alpha=alpha, delta=0.0)


# --- exact validity on the canonical (ε, δ)-DP mechanism ----------------------------------


def exact_size(m, k, epsilon, delta, rejects) -> float:
    """P[C ≥ c*] for the smallest count c* that ``rejects`` (found by bisection: rejection is
    monotone in the count, test_one_run checks it) when R ~ Bin(m, δ/2) canaries reveal
    "included" (guessed first, right) and the other guesses are right with probability
    q = e^ε/(1+e^ε) each (randomised response; k ≤ m/5 leaves enough "included" answers but
    with probability < 1e-40)."""
    if not rejects(k):
        return 0.0
    low, high = -1, k  # rejects(high), not rejects(low)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if rejects(middle) else (middle, high)
    q = math.exp(epsilon) / (1 + math.exp(epsilon))
    size = 0.0
    for reveals in range(k + 40 if delta > 0 else 1):
        weight = stats.binom.pmf(reveals, m, delta / 2) if delta > 0 else 1.0
        sure = min(k, reveals)
        size += weight * stats.binom.sf(high - sure - 1, k - sure, q)
    return size


SIZE_CASES = [(k, epsilon, delta) for k in (10, 50, 200) for epsilon in (0.5, 1.0, 2.0)
              for delta in (0.0, 1e-5, 1e-3)]


@pytest.mark.parametrize(("k", "epsilon", "delta"), SIZE_CASES)
def test_approx_dp_test_has_exact_size_at_most_alpha(k, epsilon, delta):
    alpha, m = 0.05, 1000

    def rejects(correct):
        return approx_dp_epsilon(m, k, correct, alpha=alpha, delta=delta) > epsilon

    assert exact_size(m, k, epsilon, delta, rejects) <= alpha


def test_the_exact_size_check_catches_the_gaussian_assumption():
    # The μ-GDP test converted to ε rejects randomised response's own ε far more often than α.
    alpha, m, epsilon = 0.05, 1000, 1.0

    def rejects(correct):
        return gdp_epsilon(gaussian_fdp_mu(m, 200, correct, alpha=alpha), 1e-5) > epsilon

    assert exact_size(m, 200, epsilon, 0.0, rejects) > 0.5


# --- the record a DP run keeps ------------------------------------------------------------


def test_record_headlines_the_assumption_free_bound_and_keeps_the_gaussian_one_beside():
    rng = np.random.default_rng(5)
    included = rng.random(400) < 0.5
    scores = rng.normal(size=400) + 2.0 * included
    record = epsilon_audit_record({"white_box": (scores, included)}, delta=1e-5)
    assert (record["method"], record["assumption"], record["black_box"]) == \
        ("approx_dp", None, None)
    assert record["white_box"] == epsilon_one_run(scores, included, delta=1e-5).epsilon > 0
    assert record["by_method"]["gaussian_fdp"]["assumption"] == \
        "Gaussian trade-off curve (mu-GDP)"
    assert record["guesses"]["white_box"] == [list(p) for p in guess_counts(scores, included)]
    bounds = recorded_bounds(record)
    assert [b.method for b in bounds] == ["approx_dp", "steinke", "gaussian_fdp"]
    assert bounds[0] == CanaryBounds("approx_dp", None, record["white_box"], None, 0.05)
    assert bounds[2].white_box == record["by_method"]["gaussian_fdp"]["white_box"]


def test_recorded_bounds_are_recomputed_at_another_level_from_the_guess_counts():
    included, white, black, record = two_source_record(6, 500, 2.5, 1.0)
    for bounds in recorded_bounds(record, alpha=0.05 / 3):
        for kind, scores in (("white_box", white), ("black_box", black)):
            direct = epsilon_one_run(scores, included, delta=1e-5, alpha=0.05 / 3,
                                     method=bounds.method).epsilon
            assert getattr(bounds, kind) == direct
        assert bounds.alpha == 0.05 / 3 and bounds.sources() == ("white_box", "black_box")
    assert recorded_bounds(record, alpha=0.05)[0].white_box == record["white_box"]
    assert recorded_bounds(record, alpha=0.01)[0].white_box < record["white_box"]


def test_old_records_are_labelled_by_what_they_were():
    old = {"white_box": 1.4, "black_box": None, "method": "fdp", "m": 1000, "alpha": 0.05,
           "delta": 1e-5, "by_method": {"steinke": {"white_box": 0.9, "n_guesses": 100},
                                        "fdp": {"white_box": 1.4}}}
    fdp, steinke = recorded_bounds(old, alpha=0.01)  # no guess counts: kept at their level
    assert fdp == CanaryBounds("fdp", "Gaussian trade-off curve (mu-GDP)", 1.4, None, 0.05)
    assert steinke == CanaryBounds("steinke", None, 0.9, None, 0.05)
    assert recorded_bounds({"white_box": 2.0, "method": "fdp"}) == (
        CanaryBounds("fdp", "Gaussian trade-off curve (mu-GDP)", 2.0, None),)
    assert recorded_bounds({"method": "someday", "white_box": 1.0}) == ()
