"""The split guard's fast paths against slow, obvious oracles (Hypothesis).

The guard's cost is kept down by sharing work across an audit's rows: each slice's bar is
ranked once, a trained attack's folds keep the sort that made their percentiles, placements
are counted in one pass over sorted scores, the featurizer reuses buffers block by block.
None of that may change a number. The oracles here recompute every row's beyond-split
p-value the plain way (each row, each fold, each bar sorted afresh; placements by binary
search; scipy's Student tail), the featurizer block by block in fresh arrays, and
cross-validation with scipy's ranks, and every result must be *equal*, not close.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import rankdata
from scipy.stats import t as student

from memberscope import ModelOutputs, audit
from memberscope._seeding import stream_seed
from memberscope.attacks import blind as blind_module
from memberscope.attacks import get_attack
from memberscope.attacks.blind import _Layout, input_summary
from memberscope.attacks.trained import (
    _balanced_subsample,
    _fold_ids,
    _Standardizer,
    cross_validated_scores,
)
from memberscope.outputs import ExampleInputs
from memberscope.significance import RankedScores
from memberscope.slicing import Slice, build_slices

pytestmark = pytest.mark.filterwarnings("ignore::memberscope.metrics.LowResolutionWarning")

AUDITS = settings(max_examples=12, deadline=None)


# --- oracles --------------------------------------------------------------------------------


def oracle_placements(scores: np.ndarray, membership: np.ndarray) -> np.ndarray:
    """Each member's share of non-members below it, each non-member's share of members
    above it, ties one half: by binary search in each side's sorted scores."""
    members, nonmembers = np.sort(scores[membership]), np.sort(scores[~membership])
    placements = np.empty(len(scores))
    on_members = scores[membership]
    placements[membership] = (np.searchsorted(nonmembers, on_members, "left")
                              + np.searchsorted(nonmembers, on_members, "right")
                              ) / (2.0 * len(nonmembers))
    on_nonmembers = scores[~membership]
    placements[~membership] = (2 * len(members) - np.searchsorted(members, on_nonmembers, "left")
                               - np.searchsorted(members, on_nonmembers, "right")
                               ) / (2.0 * len(members))
    return placements


def oracle_delong(scores: np.ndarray, bar: np.ndarray, membership: np.ndarray) -> float | None:
    """DeLong's one-sided test of AUC(scores) <= AUC(bar) on one group of examples."""
    if min(membership.sum(), (~membership).sum()) < 2:
        return None
    difference = oracle_placements(scores, membership) - oracle_placements(bar, membership)
    on_members, on_nonmembers = difference[membership], difference[~membership]
    estimate = float(on_members.mean())
    from_members = float(on_members.var(ddof=1)) / len(on_members)
    from_nonmembers = float(on_nonmembers.var(ddof=1)) / len(on_nonmembers)
    variance = from_members + from_nonmembers
    if variance <= 0:
        return 1.0 if estimate <= 0 else 0.0
    freedom = variance ** 2 / (from_members ** 2 / (len(on_members) - 1)
                               + from_nonmembers ** 2 / (len(on_nonmembers) - 1))
    return float(student.sf(estimate / math.sqrt(variance), freedom))


def oracle_paired(scores: np.ndarray, bar: np.ndarray, membership: np.ndarray,
                  strata: np.ndarray | None) -> float:
    """Within each stratum separately, Bonferroni over the strata that compared anything."""
    if strata is None:
        p_value = oracle_delong(scores, bar, membership)
        assert p_value is not None
        return p_value
    p_values = [oracle_delong(scores[strata == s], bar[strata == s], membership[strata == s])
                for s in np.unique(strata)]
    tested = [p for p in p_values if p is not None]
    return min(1.0, len(tested) * min(tested)) if tested else 1.0


def oracle_beyond_split(outputs: ModelOutputs, control: ModelOutputs | None, slice_: Slice,
                        attack_name: str, blind_scores: np.ndarray, seed: int) -> float:
    """A row's beyond-split p-value, every score recomputed and sorted for this row alone:
    the largest over its bars (the attack on the control's outputs, the control's loss
    where the attack is trained or could not run there, the blind scores)."""
    attack, mask = get_attack(attack_name), slice_.mask
    membership = outputs.membership[mask]
    row_seed = stream_seed(seed, slice_.name, attack_name)
    scored = attack.scores_for_slice(attack.signal(outputs, None, attack.defaults)[mask],
                                     membership, row_seed, {})
    bars = []
    if control is not None:
        bars.append(attack.scores_for_slice(attack.signal(control, None, attack.defaults)[mask],
                                            membership, row_seed, {}).scores)
        if scored.strata is not None:
            bars.append(-control.loss_values[mask])
    bars.append(blind_scores[mask])
    return max(oracle_paired(scored.scores, bar, membership, scored.strata) for bar in bars)


def oracle_summary(array: np.ndarray, block_rows: int) -> np.ndarray:
    """The default featurizer, each block of ``block_rows`` examples summarised in fresh
    arrays (BLAS may sum a one-row block's products in another order than a larger block's,
    so the oracle reads the same blocks)."""
    layout = _Layout.of(array.shape[1:])
    read = np.ascontiguousarray(array[(slice(None), *layout.read)]).reshape(len(array), -1)
    if layout.raw:
        return read.astype(np.float64)
    channels = layout.channels
    by_channel = read[0].astype(np.float32).reshape(-1, channels)
    per_channel = np.median(by_channel, axis=0)
    offset = None
    if np.abs(per_channel).max() > 16 * (float(by_channel.std()) + 1e-12):
        offset = np.tile(per_channel, read.shape[1] // channels).astype(np.float32)
    return np.vstack([_oracle_block(layout, read[start:start + block_rows], offset)
                      for start in range(0, len(read), block_rows)])


def _oracle_block(layout: _Layout, read: np.ndarray, offset: np.ndarray | None) -> np.ndarray:
    assert layout.pooling is not None
    channels, block = layout.channels, read.astype(np.float32)
    pooled = block @ layout.pooling
    means = pooled[:, :channels]
    if offset is not None:
        block = block - offset
        means = means - offset[:channels]
    std = np.sqrt(np.maximum(np.square(block) @ layout.pooling[:, :channels] - means ** 2,
                             0.0))
    line = block[:, :layout.columns * channels] if layout.columns > 1 else block
    roughness = np.abs(line[:, channels:] - line[:, :-channels]).mean(axis=1)
    return np.column_stack([pooled[:, :channels], std, read.min(axis=1), read.max(axis=1),
                            roughness, pooled[:, channels:]]).astype(np.float64)


def oracle_cross_validated(features: np.ndarray, membership: np.ndarray, seed: int,
                           n_folds: int, cap: int) -> np.ndarray:
    """Out-of-fold linear-discriminant scores as within-fold (mid-rank − 1/2) / fold size,
    by scipy's ranks, every array fresh."""
    rng = np.random.default_rng(seed)
    folds = _fold_ids(membership, n_folds, rng)
    raw = np.empty(len(membership))
    for fold in range(n_folds):
        held_out = folds == fold
        train = _balanced_subsample(np.flatnonzero(~held_out), membership, cap, rng)
        scaler = _Standardizer(features[train])
        rng.integers(2**31 - 1)  # the model's seed, drawn as the attack draws it
        model = blind_module.LinearDiscriminant().fit(
            (features[train] - scaler.mean) / scaler.scale, membership[train])
        raw[held_out] = model.predict_proba(
            (features[held_out] - scaler.mean) / scaler.scale)[:, 1]
    percentiles = np.empty(len(raw))
    for fold in np.unique(folds):
        inside = folds == fold
        percentiles[inside] = (rankdata(raw[inside]) - 0.5) / inside.sum()
    return percentiles


# --- random audits --------------------------------------------------------------------------


@st.composite
def audits(draw: st.DrawFn) -> tuple[ModelOutputs, ModelOutputs | None, int]:
    """Small audits with inputs: one to three classes, shifted or not, scores with heavy
    ties or none, a control model or none."""
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    n_members, n_nonmembers = draw(st.integers(24, 160)), draw(st.integers(24, 160))
    n, num_classes = n_members + n_nonmembers, draw(st.integers(1, 3))
    membership = np.arange(n) < n_members
    labels = rng.integers(0, num_classes, n)
    shift = draw(st.sampled_from([0.0, 0.4]))
    inputs = rng.normal(0, 1, (n, 6, 6, 3)) + shift * ~membership[:, None, None, None]
    loss = rng.exponential(1.0, n) * np.where(membership, 0.8, 1.0)
    control_loss = rng.exponential(1.0, n)
    if draw(st.booleans()):  # heavy ties in the attack's and the control's scores
        loss, control_loss = np.round(loss, 1), np.round(control_loss, 1)
    outputs = ModelOutputs(membership=membership, labels=labels, loss=loss, inputs=inputs)
    control = (ModelOutputs(membership=membership, labels=labels, loss=control_loss)
               if draw(st.booleans()) else None)
    return outputs, control, seed


@AUDITS
@given(audits(), st.sampled_from([("threshold",), ("lr",), ("threshold", "lr")]))
def test_every_beyond_split_p_value_equals_the_per_row_oracle(drawn, attacks):
    outputs, control, seed = drawn
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = audit(outputs, attacks=list(attacks), slices=["entire", "class"],
                       control=control, seed=seed)
    slices = {s.name: s for s in build_slices(outputs, ["entire", "class"])
              if isinstance(s, Slice)}
    checked = 0
    for row in result.rows:
        if row.attack in ("blind", "control"):
            continue
        assert row.beyond_split_p_value is not None
        # Chance is a bar too: the row's own test against it.
        expected = max(row.p_value, oracle_beyond_split(outputs, control, slices[row.slice],
                                                        row.attack, result.scores["blind"],
                                                        seed))
        assert row.beyond_split_p_value == expected, (row.slice, row.attack)
        checked += 1
    assert checked >= len(attacks)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**16),
       st.sampled_from([(9, 9, 3), (28, 28), (50,), (7,), (5, 40), (3, 4, 4, 2)]),
       st.sampled_from(["uint8", "int16", "float32", "float64", "far float64"]),
       st.integers(1, 70), st.integers(1, 40))
def test_the_featurizer_equals_its_all_rows_oracle(seed, shape, kind, n, block_rows):
    """Blocks of any size (the last one short), buffers reused: the same features."""
    rng = np.random.default_rng(seed)
    if kind in ("uint8", "int16"):
        array = rng.integers(0, 200, (n, *shape)).astype(kind)
    else:
        array = rng.normal(0, 1, (n, *shape)).astype(kind.split()[-1])
        if kind.startswith("far"):
            array += 1e4
    expected = oracle_summary(array, block_rows)
    saved = blind_module.BLOCK_ROWS
    blind_module.BLOCK_ROWS = block_rows
    try:
        got = input_summary(ExampleInputs.of(array))
    finally:
        blind_module.BLOCK_ROWS = saved
    np.testing.assert_array_equal(got, expected)


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**16), st.integers(6, 300), st.integers(6, 300), st.integers(2, 4),
       st.booleans())
def test_the_blind_cross_validation_equals_its_oracle(seed, n_members, n_nonmembers, n_folds,
                                                       tied):
    rng = np.random.default_rng(seed)
    membership = np.arange(n_members + n_nonmembers) < n_members
    features = rng.normal(0, 1, (len(membership), 4)) + 0.3 * membership[:, None]
    if tied:
        features = np.round(features)  # many identical rows, so tied scores
    cap = int(rng.integers(3, 200))
    scored = cross_validated_scores(features, membership, seed,
                                    lambda _seed: blind_module.LinearDiscriminant(),
                                    n_folds=n_folds, max_train_per_side=cap)
    np.testing.assert_array_equal(
        scored.scores, oracle_cross_validated(features, membership, seed, n_folds, cap))
    assert scored.ranked is not None and scored.strata is not None
    for fold, ranked in scored.ranked.items():
        in_fold = scored.scores[scored.strata == fold]
        np.testing.assert_array_equal(in_fold[ranked.order], ranked.sorted_scores)
        assert (np.diff(ranked.sorted_scores) >= 0).all()


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**16), st.integers(4, 400), st.integers(1, 4), st.booleans())
def test_merged_and_subset_rankings_place_as_a_fresh_sort(seed, n, n_parts, tied):
    """A ranking merged from parts' rankings, or filtered to a subset, gives the placements
    that binary search gives on the scores themselves."""
    rng = np.random.default_rng(seed)
    scores = rng.normal(size=n)
    if tied:
        scores = np.round(scores, 1)
    membership = rng.random(n) < 0.5
    membership[:2], membership[2:4] = True, False
    part = rng.integers(0, n_parts, n)
    merged = RankedScores.merged([(np.flatnonzero(part == p), RankedScores.of(scores[part == p]))
                                  for p in range(n_parts)])
    np.testing.assert_array_equal(merged.in_example_order(), scores)
    np.testing.assert_array_equal(merged.placements(membership),
                                  oracle_placements(scores, membership))
    kept = (rng.random(n) < 0.6) | (np.arange(n) < 4)
    np.testing.assert_array_equal(merged.subset(kept).placements(membership[kept]),
                                  oracle_placements(scores[kept], membership[kept]))
