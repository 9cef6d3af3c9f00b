"""Bootstrap confidence intervals for AUC and TPR at FPR."""

from __future__ import annotations

import numpy as np
import pytest

from memberscope import InputError, attack_metrics

pytestmark = pytest.mark.filterwarnings("ignore::memberscope.metrics.LowResolutionWarning")


def _leaky(seed: int = 0, n: int = 300) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    membership = np.arange(2 * n) < n
    return rng.normal(size=2 * n) + 0.8 * membership, membership


def test_intervals_bracket_the_estimates_and_are_deterministic():
    scores, membership = _leaky()
    metrics = attack_metrics(scores, membership, n_bootstrap=200, seed=1)
    low, high = metrics.auc_ci
    assert low < metrics.auc < high
    assert 0.02 < high - low < 0.2  # about ±2 standard errors of an AUC on 300 + 300
    assert set(metrics.tpr_at_fpr_ci) == set(metrics.tpr_at_fpr)
    # 300 non-members resolve FPR 1% and 10%, not 0.1%: that TPR and its interval are null.
    assert metrics.tpr_at_fpr[0.001] is None and metrics.tpr_at_fpr_ci[0.001] is None
    for target in (0.01, 0.1):
        tpr_low, tpr_high = metrics.tpr_at_fpr_ci[target]
        assert tpr_low <= metrics.tpr_at_fpr[target] <= tpr_high
    again = attack_metrics(scores, membership, n_bootstrap=200, seed=1)
    assert (again.auc_ci, again.tpr_at_fpr_ci) == (metrics.auc_ci, metrics.tpr_at_fpr_ci)
    assert attack_metrics(scores, membership).auc_ci is None


def test_too_few_replicates_is_an_input_error():
    scores, membership = _leaky()
    with pytest.raises(InputError, match="n_bootstrap must be >= 2; got 1"):
        attack_metrics(scores, membership, n_bootstrap=1)


def test_weighted_auc_lies_in_its_interval():
    rng = np.random.default_rng(0)
    membership = np.arange(400) < 200
    scores = rng.normal(size=400)  # no signal unweighted ...
    weights = np.where(membership == (scores > 0), 10.0, 0.1)  # ... strong signal weighted
    metrics = attack_metrics(scores, membership, sample_weight=weights, n_bootstrap=50)
    assert metrics.auc > 0.95
    assert metrics.auc_ci[0] <= metrics.auc <= metrics.auc_ci[1]


def test_intervals_cover_known_gaussian_truths():
    # Members ~ N(1, 1), non-members ~ N(0, 1): AUC = Phi(1/sqrt 2), TPR at FPR 10% =
    # Phi(1 - z_0.9). benchmarks/bootstrap_coverage.py is the full version (2,000 per side,
    # 200 repetitions: 94.5-97.5% coverage).
    from statistics import NormalDist

    normal = NormalDist()
    true_auc = normal.cdf(1 / np.sqrt(2))
    true_tpr = normal.cdf(1 - normal.inv_cdf(0.9))
    membership = np.arange(1000) < 500
    auc_hits = tpr_hits = 0
    for repeat in range(60):
        scores = np.random.default_rng(repeat).normal(size=1000) + membership
        metrics = attack_metrics(scores, membership, fpr_targets=(0.1,), n_bootstrap=100,
                                 seed=repeat)
        auc_hits += metrics.auc_ci[0] <= true_auc <= metrics.auc_ci[1]
        tpr_hits += metrics.tpr_at_fpr_ci[0.1][0] <= true_tpr <= metrics.tpr_at_fpr_ci[0.1][1]
    assert auc_hits >= 52 and tpr_hits >= 52, (auc_hits, tpr_hits)  # 95% expects 57 of 60
