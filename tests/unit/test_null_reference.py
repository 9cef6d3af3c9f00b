"""The chance band: the 95% quantile of the maximum of null AUCs / advantages, against a slow
Monte Carlo oracle that draws no-signal slices and computes the metrics by brute force."""

from __future__ import annotations

import numpy as np
import pytest

from memberscope.errors import InputError
from memberscope.null_reference import max_null_quantile, null_auc_sd


def _null_maxima(sizes, reps: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(reps,) maxima of AUC and of max(TPR − FPR) over independent no-signal slices, each
    computed the obvious way: pairwise comparisons and a scan over every threshold."""
    rng = np.random.default_rng(seed)
    aucs = np.empty((reps, len(sizes)))
    advantages = np.empty((reps, len(sizes)))
    for j, (n_members, n_nonmembers) in enumerate(sizes):
        members = rng.random((reps, n_members))
        nonmembers = rng.random((reps, n_nonmembers))
        aucs[:, j] = (members[:, :, None] > nonmembers[:, None, :]).mean(axis=(1, 2))
        thresholds = np.concatenate([members, nonmembers], axis=1)
        tpr = (members[:, None, :] >= thresholds[:, :, None]).mean(axis=2)
        fpr = (nonmembers[:, None, :] >= thresholds[:, :, None]).mean(axis=2)
        advantages[:, j] = np.maximum((tpr - fpr).max(axis=1), 0.0)
    return aucs.max(axis=1), advantages.max(axis=1)


@pytest.mark.parametrize("sizes", [
    [(100, 100)],
    [(40, 30)] * 11,
    [(25, 150), (120, 120), (60, 60)],
])
def test_max_quantile_matches_a_monte_carlo_oracle(sizes):
    auc_max, advantage_max = _null_maxima(sizes, reps=3000, seed=11)
    # Monte Carlo error of a 95% quantile from 3000 draws: about ±0.004 AUC, ±0.01 advantage.
    assert max_null_quantile("auc", sizes) == pytest.approx(np.quantile(auc_max, 0.95),
                                                            abs=0.008)
    expected = np.quantile(advantage_max, 0.95)
    got = max_null_quantile("advantage", sizes)
    # Smirnov's limit is conservative for small slices: never below, at most 0.03 above
    # (0.021 above with 11 slices of 40 + 30).
    assert expected - 0.01 <= got <= expected + 0.03


def test_band_is_conservative_for_nested_slices():
    """Rows of one audit overlap (the entire dataset holds every class); the band computed as
    if they were independent stays at or above the oracle's quantile."""
    rng = np.random.default_rng(3)
    reps, per_class, n_classes = 2000, 40, 5
    members = rng.random((reps, n_classes, per_class))
    nonmembers = rng.random((reps, n_classes, per_class))

    def auc(m, n):
        return (m[:, :, None] > n[:, None, :]).mean(axis=(1, 2))

    per_slice = [auc(members[:, k], nonmembers[:, k]) for k in range(n_classes)]
    whole = auc(members.reshape(reps, -1), nonmembers.reshape(reps, -1))
    maxima = np.max([whole, *per_slice], axis=0)
    sizes = [(per_class * n_classes,) * 2] + [(per_class, per_class)] * n_classes
    assert max_null_quantile("auc", sizes) >= np.quantile(maxima, 0.95) - 0.004


def test_more_rows_and_smaller_slices_widen_the_band():
    one = max_null_quantile("auc", [(500, 500)])
    assert one == pytest.approx(0.5 + 1.6449 * null_auc_sd(500, 500), abs=1e-6)
    assert max_null_quantile("auc", [(500, 500)] * 20) > one
    assert max_null_quantile("auc", [(50, 50)]) > one
    assert 0.0 < max_null_quantile("advantage", [(500, 500)]) < 1.0
    assert max_null_quantile("auc", [(500, 500)], level=0.99) > one


def test_rows_with_an_empty_side_are_left_out():
    assert max_null_quantile("auc", [(100, 100), (0, 50)]) == max_null_quantile(
        "auc", [(100, 100)])


@pytest.mark.parametrize("kwargs, match", [
    ({"metric": "ppv", "sizes": [(10, 10)]}, "metric must be one of auc, advantage"),
    ({"metric": "auc", "sizes": [(10, 10)], "level": 1.5}, r"level must be in \(0, 1\)"),
    ({"metric": "auc", "sizes": [(0, 10)]}, "at least one row"),
    ({"metric": "auc", "sizes": [(-3, 10), (5, 5)]}, "positive"),
])
def test_bad_input_names_the_argument(kwargs, match):
    with pytest.raises(InputError, match=match):
        max_null_quantile(**kwargs)


def _null_tpr_maxima(sizes, fpr: float, reps: int, seed: int) -> np.ndarray:
    """(reps,) maxima over independent no-signal slices of the largest TPR among thresholds
    with FPR ≤ ``fpr``, by scanning every threshold."""
    rng = np.random.default_rng(seed)
    tprs = np.empty((reps, len(sizes)))
    for j, (n_members, n_nonmembers) in enumerate(sizes):
        members = rng.random((reps, n_members))
        nonmembers = rng.random((reps, n_nonmembers))
        thresholds = np.concatenate([members, nonmembers], axis=1)
        tpr = (members[:, None, :] >= thresholds[:, :, None]).mean(axis=2)
        fpr_at = (nonmembers[:, None, :] >= thresholds[:, :, None]).mean(axis=2)
        tprs[:, j] = np.where(fpr_at <= fpr, tpr, 0.0).max(axis=1)
    return tprs.max(axis=1)


@pytest.mark.parametrize(("sizes", "fpr"), [
    ([(100, 100)], 0.1),
    ([(60, 40)] * 6, 0.1),
    ([(150, 100), (80, 120)], 0.01),
])
def test_tpr_at_fpr_quantile_matches_a_monte_carlo_oracle(sizes, fpr):
    maxima = _null_tpr_maxima(sizes, fpr, reps=3000, seed=5)
    quantile = max_null_quantile(f"tpr@{fpr:g}", sizes)
    # Exact per row, so the only error is the oracle's: its 95% quantile may sit one step away.
    step = 1 / min(n for n, _ in sizes)
    assert abs(quantile - np.quantile(maxima, 0.95)) <= step + 1e-12
    assert np.mean(maxima <= quantile) >= 0.95 - 0.015
    assert quantile >= fpr  # the band starts at the chance level TPR = FPR


def test_tpr_band_needs_resolvable_slices():
    with pytest.raises(InputError, match=r"resolve FPR 0\.01"):
        max_null_quantile("tpr@0.01", [(100, 50)])
    with pytest.raises(InputError, match=r"tpr@F"):
        max_null_quantile("tpr@1.5", [(100, 100)])
