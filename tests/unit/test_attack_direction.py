"""Every attack scores "higher = member" (DESIGN.md), and trained attacks are deterministic."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from memberscope import ModelOutputs, audit, get_attack, list_attacks, roc_metrics

pytestmark = pytest.mark.filterwarnings("ignore::memberscope.metrics.LowResolutionWarning")

LOCAL_ATTACKS = [a.name for a in list_attacks() if not a.needs_reference]
TRAINED = [a.name for a in list_attacks() if a.score_slice is not None and not a.needs_reference]


def leaky_outputs(n_per_side: int = 300, num_classes: int = 5, seed: int = 0,
                  gap: float = 2.0) -> ModelOutputs:
    """Members get a larger true-class margin: lower loss, more confident, lower entropy;
    and their inputs (8x8x3 images) are brighter, for the blind attack, which sees only them."""
    rng = np.random.default_rng(seed)
    n = 2 * n_per_side
    membership = np.arange(n) < n_per_side
    labels = rng.integers(0, num_classes, n)
    logits = rng.normal(size=(n, num_classes))
    logits[np.arange(n), labels] += 1.0 + gap * membership + rng.normal(0, 0.5, n)
    brightness = rng.normal(0.4 * gap * membership, 1.0)  # blind AUC about 0.71
    inputs = rng.normal(size=(n, 8, 8, 3)) + brightness[:, None, None, None]
    return ModelOutputs(membership=membership, labels=labels, logits=logits, inputs=inputs)


def test_the_registry_has_the_contract_attack_names():
    names = [a.name for a in list_attacks()]
    assert {"threshold", "threshold_entropy", "lr", "mlp", "rf", "knn"} <= set(names)
    assert len(names) == len(set(names))


@pytest.mark.parametrize("name", LOCAL_ATTACKS)
def test_every_attack_scores_members_higher_on_a_leaky_model(name):
    outputs = leaky_outputs()
    result = audit(outputs, attacks=[name], slices=["entire"], seed=0)
    row = result.row("entire_dataset", name)
    assert row.auc > 0.6, f"{name}: AUC {row.auc:.3f}"
    # The stored scores are what the row was computed from, with higher = member.
    scores = result.scores[name]
    assert roc_metrics(scores, outputs.membership)["auc"] == pytest.approx(row.auc)


@pytest.mark.parametrize("name", [a.name for a in list_attacks()
                                  if a.name == "threshold" or (a.score_slice is not None
                                                               and a.name != "blind")])
def test_loss_only_attacks_score_members_higher(name):
    rng = np.random.default_rng(1)
    membership = np.arange(400) < 200
    loss = rng.exponential(np.where(membership, 0.3, 1.0))
    outputs = ModelOutputs(membership=membership, labels=np.zeros(400, int), loss=loss)
    row = audit(outputs, attacks=[name], slices=["entire"]).row("entire_dataset", name)
    assert row.auc > 0.6, f"{name}: AUC {row.auc:.3f}"


@pytest.mark.parametrize("name", TRAINED)
def test_trained_attacks_are_deterministic_under_seed(name):
    outputs = leaky_outputs(n_per_side=80)
    attack = get_attack(name)
    features = attack.signal(outputs, None, attack.defaults)
    first = attack.scores_for_slice(features, outputs.membership, 7, {})
    again = attack.scores_for_slice(features, outputs.membership, 7, {})
    np.testing.assert_array_equal(first.scores, again.scores)
    np.testing.assert_array_equal(first.strata, again.strata)
    other = attack.scores_for_slice(features, outputs.membership, 8, {})
    assert not np.array_equal(first.scores, other.scores), (
        "a different seed should give different folds")
    # Every example is scored once, out of fold, by one of the n_folds fold models.
    assert sorted(np.unique(first.strata)) == list(range(attack.defaults["n_folds"]))
    for fold in np.unique(first.strata):
        in_fold = outputs.membership[first.strata == fold]
        assert in_fold.any() and not in_fold.all()  # stratified: both sides in every fold


def test_audit_is_deterministic_and_seed_changes_trained_scores():
    outputs = leaky_outputs(n_per_side=150)
    first = audit(outputs, attacks=["lr", "knn"], slices=["entire"], seed=3)
    again = audit(outputs, attacks=["lr", "knn"], slices=["entire"], seed=3)
    other = audit(outputs, attacks=["lr", "knn"], slices=["entire"], seed=4)
    for name in ("lr", "knn"):
        np.testing.assert_array_equal(first.scores[name], again.scores[name])
        assert not np.array_equal(first.scores[name], other.scores[name])
    assert [r.to_dict() for r in first.rows] == [r.to_dict() for r in again.rows]


def test_trained_scores_are_out_of_fold():
    """1-nearest-neighbour memorises its training set: scored in-fold it would reach AUC 1 on
    pure noise. Out of fold it must stay near chance."""
    rng = np.random.default_rng(0)
    membership = np.arange(600) < 300
    outputs = ModelOutputs(membership=membership, labels=rng.integers(0, 4, 600),
                           logits=rng.normal(size=(600, 4)))
    result = audit(outputs, attacks=["knn"], slices=["entire"],
                   attack_options={"knn": {"n_neighbors": 1}})
    assert abs(result.row("entire_dataset", "knn").auc - 0.5) < 0.08


@pytest.mark.parametrize("name", ["lr", "knn"])
def test_trained_attacks_are_near_chance_on_no_signal_data(name):
    rng = np.random.default_rng(5)
    membership = np.arange(1000) < 500
    outputs = ModelOutputs(membership=membership, labels=rng.integers(0, 3, 1000),
                           logits=rng.normal(size=(1000, 3)))
    row = audit(outputs, attacks=[name], slices=["entire"]).row("entire_dataset", name)
    assert abs(row.auc - 0.5) < 0.06
    assert row.epsilon_lower_bound.confident == 0.0


def test_mlp_on_a_small_slice_emits_no_warning():
    outputs = leaky_outputs(n_per_side=60)
    attack = get_attack("mlp")
    features = attack.signal(outputs, None, attack.defaults)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        attack.scores_for_slice(features, outputs.membership, 0, {})
