"""Black-box (mislabelled-example) canaries: the plan, the augmented training set, the score."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import log_softmax

from memberscope.errors import InputError
from memberscope.train.dp.input_canaries import plan_input_canaries


def test_plan_draws_distinct_rows_with_wrong_labels_and_fair_coins():
    labels = np.arange(5000) % 10
    plan = plan_input_canaries(labels, 10, 1000, seed=3)
    assert len(np.unique(plan.index)) == plan.m == 1000
    assert np.all(plan.wrong_labels != labels[plan.index])
    assert np.all((plan.wrong_labels >= 0) & (plan.wrong_labels < 10))
    assert 450 < plan.included.sum() < 550
    again = plan_input_canaries(labels, 10, 1000, seed=3)
    np.testing.assert_array_equal(plan.index, again.index)
    np.testing.assert_array_equal(plan.included, again.included)


def test_included_canaries_are_appended_with_their_wrong_labels():
    x = np.arange(40, dtype=np.float32).reshape(20, 2)
    y = np.arange(20) % 3
    plan = plan_input_canaries(y, 3, 10, seed=1)
    x_train, y_train = plan.training_data(x, y)
    k = int(plan.included.sum())
    assert len(x_train) == len(y_train) == 20 + k
    np.testing.assert_array_equal(x_train[:20], x)
    np.testing.assert_array_equal(x_train[20:], x[plan.index[plan.included]])
    np.testing.assert_array_equal(y_train[20:], plan.wrong_labels[plan.included])


def test_score_is_the_log_probability_of_the_wrong_label():
    plan = plan_input_canaries(np.arange(30) % 3, 3, 12, seed=0)
    logits = np.random.default_rng(0).normal(size=(12, 3)) * 5
    expected = log_softmax(logits, axis=1)[np.arange(12), plan.wrong_labels]
    np.testing.assert_allclose(plan.scores(logits), expected, rtol=1e-12)


def test_bad_plans_are_refused():
    with pytest.raises(InputError, match=r"input canaries m must be in \[1, 5\]"):
        plan_input_canaries(np.zeros(5, int), 3, 6, seed=0)
    with pytest.raises(InputError, match="need >= 2 classes"):
        plan_input_canaries(np.zeros(5, int), 1, 3, seed=0)
