"""Slice labels as DESIGN.md fixes them, and slices too small to evaluate recorded as skipped."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from memberscope import ModelOutputs, UnknownNameError, audit, build_slices
from memberscope.slicing import Slice, UnavailableSlice, parse_slice_kinds

pytestmark = pytest.mark.filterwarnings("ignore::memberscope.metrics.LowResolutionWarning")


def _outputs(n_per_side: int = 60, num_classes: int = 3, seed: int = 0,
             loss_only: bool = False) -> ModelOutputs:
    rng = np.random.default_rng(seed)
    n = 2 * n_per_side
    labels = np.arange(n) % num_classes
    membership = np.arange(n) < n_per_side
    logits = rng.normal(size=(n, num_classes))
    logits[np.arange(n), labels] += 1.0 + 1.5 * membership
    if loss_only:
        loss = -logits[np.arange(n), labels] + np.log(np.exp(logits).sum(axis=1))
        return ModelOutputs(membership=membership, labels=labels, loss=loss)
    return ModelOutputs(membership=membership, labels=labels, logits=logits)


def test_every_slice_label_follows_the_contract():
    outputs = _outputs()
    names = [s.name for s in build_slices(
        outputs, ["entire", "class", "loss_percentile", "correctness", "custom"],
        custom={"even": np.arange(outputs.n) % 2 == 0, "group": np.arange(outputs.n) % 2})]
    assert names == [
        "entire_dataset", "class=0", "class=1", "class=2",
        *(f"loss_percentile={a}-{a + 10}" for a in range(0, 100, 10)),
        "correctly_classified=True", "correctly_classified=False",
        "custom:even", "custom:group=0", "custom:group=1",
    ]


def test_slice_masks_select_what_their_names_say():
    outputs = _outputs()
    slices = {s.name: s for s in build_slices(outputs, ["entire", "class", "loss_percentile",
                                                         "correctness"])}
    assert slices["entire_dataset"].mask.all()
    for label in range(3):
        np.testing.assert_array_equal(slices[f"class={label}"].mask, outputs.labels == label)
    np.testing.assert_array_equal(slices["correctly_classified=True"].mask, outputs.is_correct)
    np.testing.assert_array_equal(slices["correctly_classified=False"].mask, ~outputs.is_correct)
    buckets = [slices[f"loss_percentile={a}-{a + 10}"].mask for a in range(0, 100, 10)]
    assert (np.sum(buckets, axis=0) == 1).all()  # a partition of the examples
    assert {int(b.sum()) for b in buckets} == {outputs.n // 10}
    loss = outputs.loss_values
    for lower, upper in itertools.pairwise(buckets):
        assert loss[lower].max() <= loss[upper].min()  # buckets ordered by loss


def test_loss_percentile_buckets_are_never_empty_under_heavy_ties():
    outputs = ModelOutputs(membership=np.arange(100) < 50, labels=np.zeros(100, int),
                           loss=np.r_[np.zeros(70), np.ones(30)])
    slices = build_slices(outputs, ["loss_percentile"])
    assert [int(s.mask.sum()) for s in slices] == [10] * 10


def test_aliases_and_unknown_slice_kinds():
    assert parse_slice_kinds("entire_dataset, correctly_classified,loss") == (
        "entire", "correctness", "loss_percentile")
    with pytest.raises(UnknownNameError, match=r"unknown slice 'clas' \(did you mean 'class'\?\)"
                                               r"; valid: entire, class, loss_percentile"):
        parse_slice_kinds("entire,clas")


def test_loss_only_outputs_give_a_skipped_correctness_slice():
    outputs = _outputs(loss_only=True)
    slices = build_slices(outputs, ["entire", "correctness"])
    assert isinstance(slices[1], UnavailableSlice)
    assert slices[1].name == "correctly_classified"
    result = audit(outputs, attacks=["threshold"], slices=["entire", "correctness"])
    assert [r.slice for r in result.rows] == ["entire_dataset"]
    (skipped,) = result.skipped
    assert (skipped.slice, skipped.attack) == ("correctly_classified", "threshold")
    assert "needs logits or probs" in skipped.reason


def test_too_small_slices_are_recorded_as_skipped_with_a_reason():
    outputs = _outputs()
    tiny = np.zeros(outputs.n, dtype=bool)
    tiny[[0, 1, 2, 60, 61, 62]] = True  # three members, three non-members
    members_only = outputs.membership.copy()
    empty = np.zeros(outputs.n, dtype=bool)
    result = audit(outputs, attacks=["threshold", "lr"], slices=["entire"],
                   custom_slices={"tiny": tiny, "members_only": members_only, "empty": empty},
                   min_slice_size=5)
    evaluated = {(r.slice, r.attack) for r in result.rows}
    skipped = {(s.slice, s.attack): s.reason for s in result.skipped}
    assert evaluated == {("entire_dataset", "threshold"), ("entire_dataset", "lr")}
    assert set(skipped) == {(name, attack) for name in ("custom:tiny", "custom:members_only",
                                                        "custom:empty")
                            for attack in ("threshold", "lr")}
    assert skipped[("custom:tiny", "threshold")] == (
        "too small: 3 members and 3 non-members; need at least 5 of each")
    assert "60 members and 0 non-members" in skipped[("custom:members_only", "lr")]
    assert "0 members and 0 non-members" in skipped[("custom:empty", "threshold")]
    # Every requested (slice, attack) is accounted for: evaluated or skipped, never dropped.
    assert len(result.rows) + len(result.skipped) == 4 * 2


def test_the_attack_minimum_applies_even_when_min_slice_size_is_lower():
    outputs = _outputs()
    two_each = np.zeros(outputs.n, dtype=bool)
    two_each[[0, 1, 60, 61]] = True
    result = audit(outputs, attacks=["threshold", "lr"], slices=["entire"],
                   custom_slices={"two": two_each}, min_slice_size=1)
    assert ("custom:two", "threshold") in {(r.slice, r.attack) for r in result.rows}
    reasons = {(s.slice, s.attack): s.reason for s in result.skipped}
    assert reasons == {("custom:two", "lr"): "too small: 2 members and 2 non-members; "
                                             "need at least 3 of each"}


def test_class_slices_with_one_side_only_are_skipped_not_dropped():
    membership = np.r_[np.ones(40, bool), np.zeros(40, bool)]
    labels = np.r_[np.zeros(30, int), np.ones(10, int), np.zeros(40, int)]  # class 1: members
    outputs = ModelOutputs(membership=membership, labels=labels,
                           loss=np.linspace(0.1, 3.0, 80))
    result = audit(outputs, attacks=["threshold"], slices=["class"])
    assert [r.slice for r in result.rows] == ["class=0"]
    assert [(s.slice, s.reason) for s in result.skipped] == [
        ("class=1", "too small: 10 members and 0 non-members; need at least 10 of each")]


def test_custom_slices_reject_wrong_shapes():
    outputs = _outputs()
    with pytest.raises(ValueError, match=r"custom slice 'bad' must have shape \(120,\); "
                                         r"got \(3,\)"):
        build_slices(outputs, ["entire"], custom={"bad": np.array([True, False, True])})
    with pytest.raises(ValueError, match="slice kind 'custom' needs custom groups"):
        build_slices(outputs, ["custom"])


def test_slices_are_slice_objects_with_boolean_masks():
    for item in build_slices(_outputs(), ["entire", "class"]):
        assert isinstance(item, Slice)
        assert item.mask.dtype == bool and item.mask.shape == (120,)
