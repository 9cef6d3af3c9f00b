"""The definitions that keep chance from looking like leakage: one-sided advantage, a PPV that
one lucky example cannot make 1.0, and TPR only at FPRs the non-members resolve."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import betaincinv

from memberscope import roc_curve
from memberscope.metrics import advantage_from_roc, ppv_from_roc, tpr_at_fpr_from_roc


def _no_signal(n_members: int, n_nonmembers: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=n_members + n_nonmembers), np.arange(n_members + n_nonmembers) < (
        n_members)


@pytest.mark.parametrize(("n_members", "n_nonmembers"), [(3000, 3000), (3000, 1000),
                                                         (1000, 3000)])
def test_ppv_on_no_signal_data_stays_within_prior_plus_a_tenth(n_members, n_nonmembers):
    prior = n_members / (n_members + n_nonmembers)  # = 1 / (1 + r), r = N / P
    values = [ppv_from_roc(roc_curve(*_no_signal(n_members, n_nonmembers, seed)))
              for seed in range(30)]
    assert max(values) <= prior + 0.1
    assert np.mean(values) <= prior + 0.02


def test_one_lucky_top_member_does_not_make_ppv_one():
    scores, membership = _no_signal(3000, 3000, 0)
    scores[0] = 100.0  # the single highest score is a member
    assert ppv_from_roc(roc_curve(scores, membership)) < 0.6


def test_ppv_reports_what_a_strong_attack_demonstrably_reaches():
    membership = np.arange(40) < 20
    scores = np.where(membership, 10.0, 0.0) + np.arange(40) * 1e-3  # perfect separation
    # 20 of 20 predicted members are members: the 99% lower bound is 0.01 ** (1 / 20).
    assert ppv_from_roc(roc_curve(scores, membership)) == pytest.approx(0.01 ** (1 / 20))


@pytest.mark.parametrize("seed", range(3))
def test_ppv_screening_finds_the_best_bound_over_every_threshold(seed):
    rng = np.random.default_rng(seed)
    membership = rng.random(20_000) < 0.3
    scores = np.round(rng.normal(size=20_000) + 0.4 * membership, 2)
    roc = roc_curve(scores, membership)
    tp = np.rint(roc.tpr[1:] * roc.n_members)
    predicted = tp + np.rint(roc.fpr[1:] * roc.n_nonmembers)
    every = np.where(tp > 0, betaincinv(np.maximum(tp, 1e-300), predicted - tp + 1, 0.01), 0.0)
    assert len(every) > 256  # the screening is really used
    assert ppv_from_roc(roc) == pytest.approx(float(every.max()), rel=1e-12)


def test_advantage_counts_only_our_score_direction():
    scores, membership = _no_signal(500, 500, 1)
    scores = scores - 2.0 * membership  # members score lower: worse than chance
    assert advantage_from_roc(roc_curve(scores, membership)) == 0.0
    assert advantage_from_roc(roc_curve(-scores, membership)) > 0.5


def test_tpr_is_null_exactly_where_fewer_than_one_false_positive_fits():
    scores, membership = _no_signal(50, 999, 2)
    values = tpr_at_fpr_from_roc(roc_curve(scores, membership), (0.001, 0.002, 0.01), warn=False)
    assert values[0.001] is None  # 999 x 0.001 < 1
    assert values[0.002] is not None and values[0.01] is not None
    scores, membership = _no_signal(50, 1000, 2)
    assert tpr_at_fpr_from_roc(roc_curve(scores, membership), (0.001,), warn=False)[0.001] \
        is not None
