"""Trained attacks are unbiased under the null, over many fresh no-signal datasets.

One dataset's own chance pattern moves every attack together, so a single fixed sample cannot
show bias: these tests average over seeded fresh datasets (members and non-members drawn from
one distribution, 10 classes, slices entire + by class) and hold the grand mean AUC within
0.5 ± 0.005 and every slice's mean within 0.5 ± 0.02. The sizes are chosen so those bounds are
about 2.5-3 standard errors wide. ``benchmarks/trained_null_bias.py`` is the bigger version.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Mapping

import numpy as np
import pytest
from scipy.stats import rankdata

from memberscope import LowResolutionWarning, ModelOutputs, audit, get_attack
from memberscope.attacks.trained import fold_percentiles


def no_signal_outputs(seed: int, n_per_side: int, num_classes: int = 10) -> ModelOutputs:
    rng = np.random.default_rng(seed)
    n = 2 * n_per_side
    labels = rng.integers(0, num_classes, n)
    logits = rng.normal(size=(n, num_classes))
    logits[np.arange(n), labels] += rng.normal(2.0, 1.0, n)
    return ModelOutputs(membership=np.arange(n) < n_per_side, labels=labels, logits=logits)


@functools.cache
def null_aucs(attack: str, datasets: int, n_per_side: int,
              options: tuple[tuple[str, object], ...] = (),
              num_classes: int = 10) -> tuple[float, dict[str, float]]:
    """Grand mean AUC and mean AUC per slice over ``datasets`` fresh no-signal datasets."""
    by_slice: dict[str, list[float]] = {}
    for index in range(datasets):
        outputs = no_signal_outputs(10_000 + index, n_per_side, num_classes)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", LowResolutionWarning)
            result = audit(outputs, attacks=attack, slices="entire,class", seed=index,
                           attack_options={attack: dict(options)} if options else None)
        assert not result.skipped
        # Every example keeps an out-of-fold score.
        assert np.isfinite(result.scores[attack]).all()
        assert len(result.scores[attack]) == outputs.n
        for row in result:
            by_slice.setdefault(row.slice, []).append(row.auc)
    assert len(by_slice) == 1 + num_classes
    grand = float(np.mean([auc for values in by_slice.values() for auc in values]))
    return grand, {name: float(np.mean(values)) for name, values in by_slice.items()}


def check_unbiased(attack: str, datasets: int, n_per_side: int,
                   options: tuple[tuple[str, object], ...] = (), num_classes: int = 10) -> None:
    grand, means = null_aucs(attack, datasets, n_per_side, options, num_classes)
    assert abs(grand - 0.5) <= 0.005, f"{attack}: grand mean AUC {grand:.4f}"
    for name, mean in means.items():
        assert abs(mean - 0.5) <= 0.02, f"{attack} {name}: {mean:.4f}"


@pytest.mark.parametrize("attack", ["lr", "knn"])
def test_fast_trained_attacks_are_unbiased_under_the_null(attack):
    check_unbiased(attack, datasets=40, n_per_side=1000)


# Fewer, larger datasets for mlp and rf: their fits cost about the same at 130 or 400 rows per
# side. rf with 20 trees: the cross-validation is what is tested, and 50 trees took 2.5x longer.
RF = ("rf", 12, 3000, (("n_estimators", 20),))


@pytest.mark.slow
def test_mlp_is_unbiased_under_the_null():
    check_unbiased("mlp", datasets=12, n_per_side=3000)


@pytest.mark.slow
def test_rf_is_unbiased_under_the_null_on_slices_of_600_per_side():
    check_unbiased(*RF, num_classes=5)


def pooled_and_within_fold_aucs(attack: str, datasets: int, n_per_side: int,
                                options: Mapping[str, object] | None = None,
                                num_classes: int = 10) -> np.ndarray:
    """(rows, 2): each class slice's AUC of the stored scores, and the size-weighted mean of
    its within-fold AUCs, over ``datasets`` fresh no-signal datasets."""
    scorer = get_attack(attack)
    merged = scorer.validate_options(dict(options or {}))
    pairs = []
    for index in range(datasets):
        outputs = no_signal_outputs(10_000 + index, n_per_side, num_classes)
        signal = scorer.signal(outputs, None, merged)
        for label in range(num_classes):
            rows = outputs.labels == label
            membership = outputs.membership[rows]
            scored = scorer.scores_for_slice(signal[rows], membership, index, merged)
            assert scored.strata is not None
            weights, aucs = [], []
            for fold in np.unique(scored.strata):
                inside = scored.strata == fold
                weights.append(membership[inside].sum() * (~membership[inside]).sum())
                aucs.append(exact_auc(scored.scores[inside], membership[inside]))
            pairs.append((exact_auc(scored.scores, membership), np.average(aucs, weights=weights)))
    return np.array(pairs)


def exact_auc(scores: np.ndarray, membership: np.ndarray) -> float:
    """P(member score > non-member score) + P(tie) / 2, over all pairs: the slow oracle."""
    difference = scores[membership][:, None] - scores[~membership][None, :]
    return float(np.mean((difference > 0) + 0.5 * (difference == 0)))


def check_pooled_is_within_fold(pairs: np.ndarray) -> None:
    """Within one fold, held-out scores come from one model that saw none of them, so under H0
    the within-fold AUC is exactly unbiased. The stored (pooled) scores must give that AUC:
    pooling raw fold-model probabilities put it ~0.002 lower on average (lr, knn, ~100 per
    side; up to 0.03 on one slice), which this resolves (standard error ~0.0003-0.0005)."""
    difference = pairs[:, 0] - pairs[:, 1]
    assert abs(difference.mean()) <= 0.001, f"mean pooled - within {difference.mean():+.5f}"
    assert np.abs(difference).max() <= 0.02, f"max |pooled - within| {np.abs(difference).max()}"


@pytest.mark.parametrize("attack", ["lr", "knn"])
def test_pooled_scores_give_the_within_fold_auc(attack):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LowResolutionWarning)
        check_pooled_is_within_fold(pooled_and_within_fold_aucs(attack, 10, 1000))


@pytest.mark.slow
def test_rf_pooled_scores_give_the_within_fold_auc_on_slices_of_300_per_side():
    """rf on the datasets of the check above, with 10 classes (~300 per side per slice).

    Their grand mean AUC sits at 0.494-0.495 whether scores are pooled or compared within
    folds, and within-fold AUCs are unbiased by construction: that is these 12 datasets' own
    chance pattern, which 12 datasets cannot average away (36 of them: 0.4959; 250 other fresh
    datasets of 300 per side: within-fold and pooled 0.5003-0.5014 ± 0.003). What pooling
    adds is tested here, with a standard error ~20× smaller than the grand mean's."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LowResolutionWarning)
        check_pooled_is_within_fold(pooled_and_within_fold_aucs("rf", 12, 3000,
                                                                dict(RF[3])))


@pytest.mark.parametrize("seed", range(5))
def test_fold_percentiles_are_mid_ranks_scaled_and_ranked(seed):
    """The slow oracle: scipy's mid-ranks, scaled by the fold's size."""
    rng = np.random.default_rng(seed)
    scores = np.round(rng.random(200), 1 + seed % 3)  # many ties
    ranked = fold_percentiles(scores)
    got = ranked.in_example_order()
    np.testing.assert_allclose(got, (rankdata(scores) - 0.5) / 200, rtol=0, atol=1e-12)
    assert ((got > 0) & (got < 1)).all()
    np.testing.assert_array_equal(ranked.sorted_scores, np.sort(got))
    np.testing.assert_array_equal(got[ranked.order], ranked.sorted_scores)
