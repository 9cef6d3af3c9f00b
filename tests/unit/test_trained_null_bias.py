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

import numpy as np
import pytest

from memberscope import LowResolutionWarning, ModelOutputs, audit


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


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason=(
    "known: rf's pooled out-of-fold AUC sits ~0.005-0.006 below 0.5 on slices of ~300 per "
    "side (grand mean 0.4940 here, 0.4956 on 18 further datasets; entire-dataset slices "
    "0.497-0.502): pooling scores of different fold models biases AUC down under the null "
    "(Forman & Scholz 2010; Airola et al. 2011). Leaf size (10 or 5%) and depth (8 or 4) did "
    "not remove it. p-values are unaffected: they compare scores within a fold."))
def test_rf_is_unbiased_under_the_null_on_slices_of_300_per_side():
    check_unbiased(*RF)
