"""The chance band: the 95% quantile of the maximum of null AUCs / advantages, against a slow
Monte Carlo oracle that draws no-signal slices and computes the metrics by brute force; the
wider spread of trained attacks' pooled fold scores; the exact test of TPR at a low FPR."""

from __future__ import annotations

import numpy as np
import pytest

from memberscope.errors import InputError
from memberscope.metrics import roc_curve, tpr_at_fpr_from_roc
from memberscope.null_reference import (
    FoldPooling,
    fold_correlation,
    max_null_quantile,
    null_auc_sd,
    spread_factor,
    tpr_at_fpr_p_value,
)


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


# --- trained attacks: pooled fold scores spread wider -------------------------------------------


def test_linear_pooling_of_three_balanced_folds_doubles_the_variance():
    linear = FoldPooling(n_folds=3, max_train_per_side=5000, dependence=((1, 1.0),))
    assert fold_correlation(900, 900, linear) == pytest.approx(0.5)
    assert spread_factor(900, 900, linear) == pytest.approx(np.sqrt(2))
    assert null_auc_sd(900, 900, linear) == pytest.approx(np.sqrt(2) * null_auc_sd(900, 900))
    # Five folds: each model shares less with another fold's, 1 / (k - 1) = 1/4.
    assert fold_correlation(900, 900, FoldPooling(5, 5000, ((1, 1.0),))) == pytest.approx(0.25)
    # The larger side subsampled to the smaller (5:1): the models share less, 0.5 * 0.6.
    assert fold_correlation(3000, 600, linear) == pytest.approx(0.3)
    # A cap below the training fold's size shrinks the shared part too.
    assert fold_correlation(9000, 9000, FoldPooling(3, 3000, ((1, 1.0),))) == pytest.approx(0.25)
    assert spread_factor(900, 900, None) == 1.0


def test_pooled_rows_widen_the_auc_and_advantage_bands_only_for_their_rows():
    linear = FoldPooling(3, 5000, ((1, 1.0),))
    sizes = [(300, 300)] * 4
    plain = max_null_quantile("auc", sizes)
    assert max_null_quantile("auc", sizes, pooling=[linear] * 4) > plain
    assert max_null_quantile("auc", sizes, pooling=[None] * 4) == plain
    one_row = max_null_quantile("auc", [(300, 300)], pooling=[linear])
    assert one_row == pytest.approx(0.5 + 1.644854 * np.sqrt(2) * null_auc_sd(300, 300),
                                    abs=1e-6)
    assert max_null_quantile("advantage", sizes, pooling=[linear] * 4) > max_null_quantile(
        "advantage", sizes)
    # TPR: the distance from its null mean widened by the same factor.
    plain_tpr = max_null_quantile("tpr@0.1", sizes)
    wide_tpr = max_null_quantile("tpr@0.1", sizes, pooling=[linear] * 4)
    centre = 31 / 301  # (k + 1) / (n2 + 1), k = 30 false positives allowed
    assert wide_tpr - centre == pytest.approx(np.sqrt(2) * (plain_tpr - centre), abs=2 / 300)
    assert tpr_at_fpr_p_value(0.2, 300, 300, 0.1, linear) > tpr_at_fpr_p_value(0.2, 300, 300,
                                                                                 0.1)
    with pytest.raises(InputError, match=r"pooling must have one entry per row of sizes \(4\)"):
        max_null_quantile("auc", sizes, pooling=[linear])
    with pytest.raises(InputError, match="dependence must be"):
        FoldPooling(3, 5000, ((10, 1.5),))
    with pytest.raises(InputError, match="increasing positive sizes"):
        FoldPooling(3, 5000, ((100, 0.5), (10, 0.7)))


def test_dependence_is_interpolated_in_the_log_of_the_training_size():
    pooling = FoldPooling(3, 5000, ((10, 0.2), (1000, 0.8)))
    assert pooling.dependence_at(100) == pytest.approx(0.5)  # half way in log size
    assert pooling.dependence_at(1) == 0.2 and pooling.dependence_at(10**5) == 0.8


def test_lr_pooled_auc_spreads_like_its_band_not_like_mann_whitney():
    """200 fresh no-signal slices scored by the lr attack: the pooled AUC's sd is its
    formula's (sd ratio ~1.38), not the Mann-Whitney sd (ratio 1)."""
    from memberscope import ModelOutputs, get_attack

    attack = get_attack("lr")
    options = attack.validate_options({})
    rng = np.random.default_rng(4)
    membership = np.arange(240) < 120
    aucs = []
    for seed in range(200):
        logits = rng.normal(size=(240, 5))
        outputs = ModelOutputs(membership=membership, labels=rng.integers(0, 5, 240),
                               logits=logits)
        scored = attack.scores_for_slice(attack.signal(outputs, None, options), membership,
                                         seed, options)
        wins = scored.scores[membership][:, None] > scored.scores[~membership][None, :]
        ties = scored.scores[membership][:, None] == scored.scores[~membership][None, :]
        aucs.append(wins.mean() + 0.5 * ties.mean())
    ratio = np.std(aucs, ddof=1) / null_auc_sd(120, 120)
    expected = spread_factor(120, 120, attack.null_pooling())
    assert 1.3 < expected < np.sqrt(2)
    assert abs(ratio - expected) < 0.15 < abs(ratio - 1.0)  # SE of the ratio: ~0.07


# --- the exact test of TPR at a low FPR ----------------------------------------------------------


@pytest.mark.parametrize(("n_members", "n_nonmembers", "fpr"), [(40, 60, 0.05), (30, 20, 0.1)])
def test_tpr_p_value_equals_the_permutation_oracle(n_members, n_nonmembers, fpr):
    """P(TPR ≥ t) by counting the members above the (k+1)-th non-member in every one of
    20,000 random orders (no ties), against the exact hypergeometric value."""
    rng = np.random.default_rng(8)
    allowed = int(np.floor(fpr * n_nonmembers + 1e-9))
    labels = np.r_[np.ones(n_members, bool), np.zeros(n_nonmembers, bool)]
    found = np.empty(20_000)
    for rep in range(len(found)):
        order = rng.permutation(labels)
        cut = np.flatnonzero(~order)[allowed]  # the (k+1)-th non-member from the top
        found[rep] = order[:cut].sum()
    for x in (1, 3, 6, 10):
        assert tpr_at_fpr_p_value(x / n_members, n_members, n_nonmembers, fpr) == pytest.approx(
            np.mean(found >= x), abs=0.01)


def test_tpr_p_value_with_ties_stays_valid():
    rng = np.random.default_rng(2)
    membership = np.arange(400) < 200
    p_values = []
    for _ in range(400):
        scores = np.round(rng.normal(size=400), 1)  # heavy ties
        roc = roc_curve(scores, membership)
        tpr = tpr_at_fpr_from_roc(roc, [0.05])[0.05]
        p_values.append(tpr_at_fpr_p_value(tpr, 200, 200, 0.05))
    assert np.mean(np.array(p_values) <= 0.05) <= 0.06


def test_tpr_p_value_needs_a_resolvable_fpr():
    with pytest.raises(InputError, match=r"cannot resolve FPR 0\.01"):
        tpr_at_fpr_p_value(0.1, 100, 50, 0.01)


@pytest.mark.filterwarnings("ignore::memberscope.metrics.LowResolutionWarning")
def test_lr_band_holds_the_maximum_of_no_signal_audits_where_mann_whitneys_does_not():
    """80 fresh no-signal audits, lr on the entire dataset and 4 classes: the maximum AUC
    leaves the lr band in about 5% (binomial: <= 9 of 80 with probability 0.99), the
    exchangeable (Mann-Whitney) band in about a sixth."""
    from memberscope import ModelOutputs, audit, get_attack

    pooling = get_attack("lr").null_pooling()
    rng = np.random.default_rng(21)
    membership = np.arange(600) < 300
    above = above_exchangeable = 0
    for seed in range(80):
        outputs = ModelOutputs(membership=membership, labels=rng.integers(0, 4, 600),
                               logits=rng.normal(size=(600, 4)))
        rows = audit(outputs, attacks="lr", slices="entire,class", seed=seed).rows
        sizes = [(r.n_members, r.n_nonmembers) for r in rows]
        maximum = max(r.auc for r in rows)
        above += maximum > max_null_quantile("auc", sizes, pooling=[pooling] * len(rows))
        above_exchangeable += maximum > max_null_quantile("auc", sizes)
    assert above <= 9 < 11 <= above_exchangeable  # measured: 5 and 13
