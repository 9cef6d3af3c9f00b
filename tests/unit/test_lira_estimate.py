"""The reference-free LiRA TPR estimates against closed forms and slow oracles."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import ndtr, ndtri

from memberscope.errors import InputError, UnknownNameError
from memberscope.lira_estimate import (
    estimate_lira_tpr,
    gaussian_shift_tpr,
    loss_to_logit,
    tail_tnr,
)

FAST = settings(max_examples=30, deadline=None)


def normal_sample(center: float, scale: float, n: int) -> np.ndarray:
    """n values at the normal's (i + 1/2)/n quantiles: a "sample" without sampling noise."""
    return center + scale * ndtri((np.arange(n) + 0.5) / n)


@pytest.mark.parametrize("shift", [0.5, 2.0, 5.0])
@pytest.mark.parametrize("kappa", [0.3, 0.5])
@pytest.mark.parametrize("fpr", [0.01, 0.001])
def test_gaussian_estimate_is_the_gaussian_roc_for_a_pure_shift(shift, kappa, fpr):
    # Members are the non-members shifted by `shift`: every example moves by shift, σ = κ·s
    # (s the non-members' sd), so d = shift / (κ s) for all, and LiRA's ROC is the binormal
    # one, TPR = Φ(d − Φ⁻¹(1 − FPR)).
    spread = 3.0
    nonmembers = normal_sample(1.0, spread, 20_000)
    members = nonmembers + shift
    d = shift / (kappa * np.std(nonmembers))
    expected = float(ndtr(d - ndtri(1 - fpr)))
    got = gaussian_shift_tpr(members, nonmembers, [fpr], kappa=kappa)[fpr]
    assert got == pytest.approx(expected, rel=1e-3, abs=1e-6)


def oracle_gaussian_tpr(members: np.ndarray, nonmembers: np.ndarray, fpr: float,
                        kappa: float) -> float:
    """The same model by brute force: d per quantile, then the largest TPR over a grid of
    thresholds c with FPR(c) <= fpr (no bisection)."""
    grid = (np.arange(2000) + 0.5) / 2000
    sigma = kappa * np.std(nonmembers)
    d = np.array([abs(np.quantile(members, u) - np.quantile(nonmembers, u)) / sigma
                  for u in grid])
    d = np.maximum(d, 1e-9)
    # Dense near 0, sparse far out: sinh of an even grid over [-1e4, d_max² + 50].
    thresholds = np.sinh(np.linspace(-np.arcsinh(1e4), np.arcsinh(float(d.max() ** 2 + 50)),
                                     4001))[:, None]
    false_positive = ndtr(-(thresholds + d * d / 2) / d).mean(axis=1)
    true_positive = ndtr(-(thresholds - d * d / 2) / d).mean(axis=1)
    return float(true_positive[false_positive <= fpr].max())


@settings(max_examples=10, deadline=None)  # the oracle takes ~0.4 s an example
@given(st.floats(0.2, 1.5), st.floats(0.5, 4.0), st.sampled_from([0.01, 0.05]))
def test_gaussian_estimate_matches_a_threshold_sweep(tail_weight, shift, fpr):
    # A skewed population (a log-normal difficulty) whose members move most where they were
    # hardest: d varies across quantiles, so no closed form.
    rng = np.random.default_rng(0)
    nonmembers = 5 - rng.lognormal(0.0, tail_weight, 4000)
    members = nonmembers + shift * (nonmembers < np.median(nonmembers))
    kappa = 0.4
    got = gaussian_shift_tpr(members, nonmembers, [fpr], kappa=kappa)[fpr]
    expected = oracle_gaussian_tpr(members, nonmembers, fpr, kappa)
    # The grid's FPR can fall just short of fpr: the oracle is at most the estimate, and
    # close to it (the grid step is small against the ROC's slope here).
    assert expected - 1e-9 <= got <= expected + 0.01


def test_no_shift_gives_chance():
    values = np.logaddexp(0.0, -normal_sample(2.0, 3.0, 5000))  # losses of normal logits
    for method in ("tail", "gaussian"):
        for estimate in estimate_lira_tpr(values, values, fprs=(0.01, 0.1), method=method):
            # Same distribution: no member stands out; TPR = FPR (the tail: just the
            # interpolated quantile's share, so within one example of it).
            assert estimate.tpr == pytest.approx(estimate.fpr, abs=2e-3 + 1 / 5000)


def oracle_tail(members: list[float], nonmembers: list[float], fpr: float) -> float:
    ordered = sorted(members)
    position = (len(ordered) - 1) * (1 - fpr)
    below = math.floor(position)
    above = min(below + 1, len(ordered) - 1)
    threshold = ordered[below] + (position - below) * (ordered[above] - ordered[below])
    return sum(v > threshold for v in nonmembers) / len(nonmembers)


@FAST
@given(st.lists(st.floats(0, 30, width=32), min_size=1, max_size=60),
       st.lists(st.floats(0, 30, width=32), min_size=1, max_size=60),
       st.floats(0.001, 0.999))
def test_tail_matches_oracle(members, nonmembers, fpr):
    got = tail_tnr(np.array(members), np.array(nonmembers), fpr)
    assert got == pytest.approx(oracle_tail(members, nonmembers, fpr), abs=1e-12)


def test_loss_to_logit_inverts_softplus():
    logit = np.array([-30.0, -2.0, 0.0, 3.0, 25.0])
    loss = np.logaddexp(0.0, -logit)  # -log sigmoid(logit)
    np.testing.assert_allclose(loss_to_logit(loss), logit, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("method", ["tail", "gaussian"])
def test_unresolvable_fpr_is_none_with_a_note(method):
    # Every member below every non-member: separated perfectly wherever resolvable.
    estimates = estimate_lira_tpr(np.full(50, 0.1), np.full(50, 0.2), fprs=(0.001, 0.1),
                                  method=method)
    assert estimates[0].tpr is None and "cannot resolve FPR 0.001" in estimates[0].note
    assert estimates[1].tpr == pytest.approx(1.0) and estimates[1].note is None
    labelled = estimates[1].to_dict()
    assert labelled["estimate"] is True and "within 1.5x" in labelled["measured_error"]


def test_bad_inputs_are_named():
    with pytest.raises(InputError, match="member_loss"):
        estimate_lira_tpr([-0.1, 0.2], [0.3])
    with pytest.raises(InputError, match="nonmember_loss"):
        estimate_lira_tpr([0.1], [])
    with pytest.raises(InputError, match=r"nonmember_loss.*NaN"):
        estimate_lira_tpr([0.1], [np.nan])
    with pytest.raises(UnknownNameError, match="gaussian"):
        estimate_lira_tpr([0.1], [0.2], method="gausian")
    with pytest.raises(InputError, match="fprs"):
        estimate_lira_tpr([0.1], [0.2], fprs=(0.0,))


def test_losses_a_float64_cross_entropy_rounds_to_zero_estimate_as_the_exact_ones():
    # Binary logits, the true class's margin = φ: a well-fitted model puts some beyond 37,
    # where −log_softmax is exactly 0 in float64.
    from memberscope.signals import cross_entropy_loss

    rng = np.random.default_rng(3)
    member_phi = rng.normal(15.0, 10.0, 5000)
    nonmember_phi = rng.normal(11.0, 10.0, 5000)
    assert (np.r_[member_phi, nonmember_phi] > 38).sum() > 50

    def computed(phi):
        logits = np.c_[np.zeros_like(phi), phi]
        return cross_entropy_loss(np.ones(len(phi), dtype=int), logits=logits)

    assert (computed(nonmember_phi) == 0).sum() > 10
    rounded = estimate_lira_tpr(computed(member_phi), computed(nonmember_phi))
    exact = estimate_lira_tpr(np.logaddexp(0, -member_phi), np.logaddexp(0, -nonmember_phi))
    for got, want in zip(rounded, exact, strict=True):
        assert got.tpr == pytest.approx(want.tpr, rel=0.1)


def test_no_signal_level_is_the_estimate_on_shuffled_membership():
    from memberscope.lira_estimate import no_signal_tpr

    rng = np.random.default_rng(5)
    members, nonmembers = rng.exponential(0.3, 4000), rng.exponential(0.3, 4000)
    level = no_signal_tpr(members, nonmembers, fprs=(0.01, 0.001), repeats=5, seed=1)
    assert level == no_signal_tpr(members, nonmembers, fprs=(0.01, 0.001), repeats=5, seed=1)
    pooled = np.r_[members, nonmembers]
    draws = []
    shuffle = np.random.default_rng(1)
    for _ in range(5):
        order = shuffle.permutation(pooled)
        draws.append(estimate_lira_tpr(order[:4000], order[4000:], fprs=(0.01,))[0].tpr)
    assert level[0.01] == pytest.approx(float(np.median(draws)), rel=1e-12)
    # Noise in the quantiles lifts the estimate above TPR = FPR when nothing leaks.
    assert 0.01 < level[0.01] < 0.02
    assert no_signal_tpr(members[:500], nonmembers[:500], fprs=(0.001,))[0.001] is None
