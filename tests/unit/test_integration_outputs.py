"""The framework-free conversions behind the Keras and Lightning callbacks."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from scipy.special import softmax

from memberscope.errors import InputError
from memberscope.monitor._outputs import batch_slices, label_indices, to_class_logits
from memberscope.signals import cross_entropy_loss


def test_logits_pass_through_unchanged():
    logits = np.array([[1.0, -2.0, 0.5], [0.0, 0.0, 3.0]])
    np.testing.assert_array_equal(to_class_logits(logits, from_logits=True), logits)


def test_probabilities_become_log_probabilities_with_the_same_softmax_and_loss():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(50, 4)) * 3
    probs = softmax(logits, axis=1)
    as_logits = to_class_logits(probs, from_logits=False)
    np.testing.assert_allclose(softmax(as_logits, axis=1), probs, rtol=1e-10)
    labels = rng.integers(0, 4, 50)
    np.testing.assert_allclose(cross_entropy_loss(labels, logits=as_logits),
                               cross_entropy_loss(labels, logits=logits), rtol=1e-8, atol=1e-12)


def test_saturated_softmax_gives_finite_logits():
    probs = np.array([[1.0, 0.0], [0.0, 1.0]])
    out = to_class_logits(probs, from_logits=False)
    assert np.isfinite(out).all()
    assert out[0, 0] > out[0, 1] and out[1, 1] > out[1, 0]


@pytest.mark.parametrize("shape", [(6,), (6, 1)])
def test_one_column_is_a_binary_classifier(shape):
    p = np.array([0.1, 0.5, 0.9, 0.99, 0.0, 1.0]).reshape(shape)
    as_logits = to_class_logits(p, from_logits=False)
    assert as_logits.shape == (6, 2)
    np.testing.assert_allclose(softmax(as_logits, axis=1)[:, 1], p.ravel(), atol=1e-12)
    z = np.array([-2.0, 0.0, 3.0])
    from_z = to_class_logits(z, from_logits=True)
    np.testing.assert_allclose(softmax(from_z, axis=1)[:, 1], 1 / (1 + np.exp(-z)))


def test_bad_output_shape_names_the_argument():
    with pytest.raises(InputError, match=r"model outputs must be .*got shape \(2, 3, 4\)"):
        to_class_logits(np.zeros((2, 3, 4)), from_logits=True)


def test_labels_from_indices_column_and_one_hot():
    indices = np.array([2, 0, 1])
    np.testing.assert_array_equal(label_indices(indices), indices)
    np.testing.assert_array_equal(label_indices(indices[:, None]), indices)
    np.testing.assert_array_equal(label_indices(np.eye(3, dtype=np.float32)[indices]), indices)
    np.testing.assert_array_equal(label_indices(np.array([2.0, 0.0])), [2, 0])


def test_non_integer_labels_are_refused_with_the_row():
    with pytest.raises(InputError, match=r"y must hold integer class labels; row 1 is 0\.5"):
        label_indices(np.array([1.0, 0.5]), name="y")
    with pytest.raises(InputError, match="dtype <U1"):
        label_indices(np.array(["a", "b"]))


def test_batch_slices_cover_every_row_once():
    covered = np.concatenate([np.arange(10)[s] for s in batch_slices(10, 3)])
    np.testing.assert_array_equal(covered, np.arange(10))
    assert batch_slices(0, 4) == []
    with pytest.raises(InputError, match="batch_size must be >= 1; got 0"):
        batch_slices(5, 0)


def test_importing_integrations_imports_no_framework():
    code = ("import sys, memberscope.monitor, memberscope.monitor._outputs, "
            "memberscope.monitor._common\n"
            "heavy = [m for m in ('keras', 'lightning', 'torch', 'tensorflow', 'jax') "
            "if m in sys.modules]\n"
            "assert not heavy, heavy\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
