"""The definitions that keep chance from looking like leakage: one-sided advantage, a PPV bound
simultaneous over thresholds that one lucky example cannot make 1.0, and TPR only at FPRs the
non-members resolve."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import betaincinv

from memberscope import roc_curve
from memberscope.errors import InputError
from memberscope.metrics import (
    advantage_from_roc,
    ppv_from_roc,
    ppv_grid,
    tpr_at_fpr_from_roc,
)


def _no_signal(n_members: int, n_nonmembers: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=n_members + n_nonmembers), np.arange(n_members + n_nonmembers) < (
        n_members)


@pytest.mark.parametrize(("n_members", "n_nonmembers"), [(3000, 3000), (3000, 1000),
                                                         (1000, 3000), (30, 30)])
def test_ppv_on_no_signal_data_rarely_exceeds_the_prior(n_members, n_nonmembers):
    prior = n_members / (n_members + n_nonmembers)  # = 1 / (1 + r), r = N / P
    values = np.array([ppv_from_roc(roc_curve(*_no_signal(n_members, n_nonmembers, seed)))
                       for seed in range(60)])
    # A simultaneous 99% bound: above the prior in <= 1% of runs (binomial(60, 0.01) exceeds
    # 3 with probability 0.3%); the pointwise maximum it replaced did in ~11%.
    assert np.count_nonzero(values > prior) <= 3
    assert values.max() <= prior + 0.1


def test_one_lucky_top_member_gives_the_grid_level_not_one():
    scores, membership = _no_signal(3000, 3000, 0)
    scores[0] = 100.0  # the single highest score is a member
    # A member above a non-member: the grid 1, 2 puts 0.01 / 2 on "1 of 1 predicted".
    assert ppv_from_roc(roc_curve([1.0, 0.0], [True, False])) == pytest.approx(0.005)
    assert ppv_from_roc(roc_curve(scores, membership)) < 0.6


def test_ppv_reports_what_a_strong_attack_demonstrably_reaches():
    membership = np.arange(40) < 20
    scores = np.where(membership, 10.0, 0.0) + np.arange(40) * 1e-3  # perfect separation
    # Grid counts up to 40: 1, 2, 3, 5, 8, 11, 17, 26, 38. The best is 17 of 17 members:
    # the lower bound at level 0.01 / 9 is (0.01 / 9) ** (1 / 17).
    assert len(ppv_grid(40)) == 9
    assert ppv_from_roc(roc_curve(scores, membership)) == pytest.approx((0.01 / 9) ** (1 / 17))


@pytest.mark.parametrize("seed", range(3))
def test_ppv_is_the_best_grid_bound_with_ties(seed):
    rng = np.random.default_rng(seed)
    membership = rng.random(20_000) < 0.3
    scores = np.round(rng.normal(size=20_000) + 0.4 * membership, 2)
    roc = roc_curve(scores, membership)
    tp = np.rint(roc.tpr * roc.n_members)
    predicted = tp + np.rint(roc.fpr * roc.n_nonmembers)
    grid = ppv_grid(20_000)
    bounds = []
    for k in grid:  # slow and plain: the last threshold predicting at most k examples
        point = max(i for i in range(len(predicted)) if predicted[i] <= k)
        if point > 0 and tp[point] > 0:
            bounds.append(betaincinv(tp[point], predicted[point] - tp[point] + 1,
                                     0.01 / len(grid)))
    assert ppv_from_roc(roc) == pytest.approx(max(bounds), rel=1e-12)


def test_ppv_grid_depends_on_the_count_only():
    assert ppv_grid(1).tolist() == [1]
    assert ppv_grid(6000)[-1] <= 6000 and len(ppv_grid(6000)) == 21
    assert np.all(np.diff(ppv_grid(10**7)) > 0)
    with pytest.raises(InputError, match="n_examples must be >= 1; got 0"):
        ppv_grid(0)


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


def test_roc_metrics_keep_at_most_five_arrays_of_n_alive():
    # At 10^7 scores each full-length float64 temporary is 80 MB.
    import tracemalloc

    from memberscope.metrics import roc_metrics

    n = 400_000
    rng = np.random.default_rng(0)
    scores = rng.normal(size=n)
    scores[rng.random(n) < 0.1] = 0.5  # a large tie group
    membership = rng.random(n) < 0.5
    roc_metrics(scores[:1000], membership[:1000])  # imports happen outside the measurement
    tracemalloc.start()
    try:
        roc_metrics(scores, membership)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak / (8 * n) <= 5.0
