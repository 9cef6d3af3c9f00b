"""Per-example signals against their textbook formulas, written out element by element."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import special

from memberscope import ModelOutputs, signals


def _direct_log_softmax(row: list[float]) -> list[float]:
    top = max(row)
    log_total = top + math.log(math.fsum(math.exp(v - top) for v in row))
    return [v - log_total for v in row]


logit_rows = hnp.arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(2, 5)),
                        elements=st.floats(-50, 50, allow_nan=False))


@settings(max_examples=100, deadline=None)
@given(logit_rows)
def test_log_softmax_matches_direct_formula_and_scipy(logits):
    got = signals.log_softmax(logits)
    expected = np.array([_direct_log_softmax(list(row)) for row in logits])
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got, special.log_softmax(logits, axis=1), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(signals.softmax(logits).sum(axis=1), 1.0, rtol=1e-12)


def test_log_softmax_is_stable_for_huge_logits():
    logits = np.array([[1e4, 0.0, -1e4], [1e300, 1e300, -1e300], [-1e4, -1e4 - 1.0, -1e4]])
    got = signals.log_softmax(logits)
    assert np.isfinite(got[0]).all()
    np.testing.assert_allclose(got[0], [0.0, -1e4, -2e4])
    np.testing.assert_allclose(got[1, :2], [-math.log(2), -math.log(2)])
    assert got[1, 2] == pytest.approx(-2e300)  # exact although e^(-2e300) underflows
    np.testing.assert_allclose(got[2], _direct_log_softmax(list(logits[2])))
    probs = signals.softmax(logits)
    assert not np.isnan(probs).any()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)


def test_log_softmax_has_one_home():
    """Every numpy log-softmax goes through signals.log_softmax (the input canaries' score
    had its own copy): no other module spells out the shifted log-sum-exp."""
    import memberscope

    package = Path(memberscope.__file__).parent
    copies = [str(path.relative_to(package)) for path in sorted(package.rglob("*.py"))
              if path.name != "signals.py"
              and re.search(r"np\.log\(np\.exp\(|logsumexp\(|log_softmax\(.*axis",
                            path.read_text(encoding="utf-8"))]
    assert copies == []


def test_cross_entropy_loss_from_logits_and_from_probs():
    logits = np.array([[2.0, 1.0, 0.1], [0.0, 0.0, 0.0], [-3.0, 5.0, 1.0]])
    labels = np.array([0, 2, 0])
    expected = [-math.log(math.exp(z[y]) / sum(math.exp(v) for v in z))
                for z, y in zip(logits, labels, strict=True)]
    np.testing.assert_allclose(signals.cross_entropy_loss(labels, logits=logits), expected)
    probs = special.softmax(logits, axis=1)
    np.testing.assert_allclose(signals.cross_entropy_loss(labels, probs=probs), expected)
    # From logits the loss stays exact where p_y underflows to 0 in probabilities.
    far = np.array([[0.0, 2000.0]])
    assert signals.cross_entropy_loss(np.array([0]), logits=far)[0] == pytest.approx(2000.0)
    assert np.isfinite(signals.cross_entropy_loss(np.array([0]), probs=np.array([[0.0, 1.0]])))


def _direct_modified_entropy(p: list[float], y: int) -> float:
    """Song & Mittal: −(1−p_y) log p_y − Σ_{i≠y} p_i log(1−p_i)."""
    value = -(1 - p[y]) * math.log(p[y])
    for i, p_i in enumerate(p):
        if i != y:
            value -= p_i * math.log(1 - p_i)
    return value


@settings(max_examples=100, deadline=None)
@given(logit_rows.filter(lambda z: np.ptp(z, axis=1).max() < 30), st.data())
def test_modified_entropy_matches_its_definition(logits, data):
    probs = special.softmax(logits, axis=1)
    labels = np.array(data.draw(st.lists(st.integers(0, logits.shape[1] - 1),
                                         min_size=len(logits), max_size=len(logits))))
    expected = [_direct_modified_entropy(list(p), int(y))
                for p, y in zip(probs, labels, strict=True)]
    np.testing.assert_allclose(signals.modified_entropy(probs, labels), expected,
                               rtol=1e-9, atol=1e-12)
    entropy = [-math.fsum(p_i * math.log(p_i) for p_i in p) for p in probs]
    np.testing.assert_allclose(signals.entropy(probs), entropy, rtol=1e-9, atol=1e-12)


def test_modified_entropy_is_zero_for_a_certain_correct_prediction_and_large_when_wrong():
    probs = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    values = signals.modified_entropy(probs, np.array([0, 0]))
    assert values[0] == 0.0
    assert np.isfinite(values[1]) and values[1] > 100  # -log(tiny) for the wrong certain one


def test_entropy_and_confidences():
    probs = np.array([[0.5, 0.5], [0.9, 0.1], [1.0, 0.0]])
    np.testing.assert_allclose(signals.entropy(probs), [math.log(2),
                               -(0.9 * math.log(0.9) + 0.1 * math.log(0.1)), 0.0])
    np.testing.assert_array_equal(signals.max_confidence(probs), [0.5, 0.9, 1.0])
    np.testing.assert_array_equal(signals.true_class_confidence(probs, np.array([1, 1, 0])),
                                  [0.5, 0.1, 1.0])


@settings(max_examples=100, deadline=None)
@given(logit_rows.filter(lambda z: np.ptp(z, axis=1).max() < 25), st.data())
def test_logit_scaled_confidence_from_logits_equals_from_probs(logits, data):
    labels = np.array(data.draw(st.lists(st.integers(0, logits.shape[1] - 1),
                                         min_size=len(logits), max_size=len(logits))))
    probs = special.softmax(logits, axis=1)
    from_logits = signals.logit_scaled_confidence(labels, logits=logits)
    from_probs = signals.logit_scaled_confidence(labels, probs=probs)
    # Exact oracle from the logits: log(p/(1−p)) = z_y − log Σ_{i≠y} e^{z_i}, row by row with
    # Python floats and a shifted sum (no cancellation, so accurate to a few ulps).
    exact = np.array([_logit_of_softmax(row, int(y))
                      for row, y in zip(logits, labels, strict=True)])
    np.testing.assert_allclose(from_logits, exact, rtol=1e-12, atol=1e-12)
    # Through probabilities the answer can only be as good as p itself: rounding p by one ulp
    # moves log(p/(1−p)) by about ε/(1−p), which grows without bound as p → 1.
    true_prob = probs[np.arange(len(labels)), labels]
    direct = np.log(true_prob) - np.log1p(-true_prob)
    np.testing.assert_allclose(from_probs, direct, rtol=1e-9, atol=1e-9)
    conditioning = 1.0 / np.maximum(1.0 - true_prob, np.finfo(float).eps)
    assert np.all(np.abs(from_probs - exact) <= 1e-12 + 64 * np.finfo(float).eps * conditioning)


def _logit_of_softmax(row: np.ndarray, label: int) -> float:
    """log(p_y / (1 − p_y)) of softmax(row), computed from the logits directly."""
    others = [float(z) for i, z in enumerate(row) if i != label]
    top = max(others)
    return float(row[label]) - top - math.log(math.fsum(math.exp(z - top) for z in others))


def test_logit_scaled_confidence_from_logits_stays_finite_when_p_rounds_to_one():
    logits = np.array([[60.0, 0.0, 0.0], [0.0, 800.0, 0.0]])
    labels = np.array([0, 1])
    got = signals.logit_scaled_confidence(labels, logits=logits)
    # log(p/(1−p)) = z_y − log Σ_{i≠y} e^{z_i} = 60 − log 2 and 800 − log 2 exactly.
    np.testing.assert_allclose(got, [60 - math.log(2), 800 - math.log(2)])
    assert special.softmax(logits, axis=1)[1, 1] == 1.0  # the probability has saturated


def test_is_correct_uses_argmax():
    scores = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    np.testing.assert_array_equal(signals.is_correct(np.array([1, 1, 1]), scores),
                                  [True, False, True])


def test_model_outputs_derive_the_same_loss_from_logits_or_probs():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(20, 4)) * 3
    labels = rng.integers(0, 4, 20)
    membership = np.arange(20) < 10
    from_logits = ModelOutputs(membership=membership, labels=labels, logits=logits)
    from_probs = ModelOutputs(membership=membership, labels=labels,
                              probs=special.softmax(logits, axis=1))
    np.testing.assert_allclose(from_logits.loss_values, from_probs.loss_values, rtol=1e-10)
    np.testing.assert_allclose(from_logits.probabilities, from_probs.probabilities, rtol=1e-12)
    np.testing.assert_array_equal(from_logits.is_correct, from_probs.is_correct)
