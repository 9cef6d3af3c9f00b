"""The lr attack's own Newton solver finds scikit-learn's optimum of the same objective."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from memberscope.attacks.trained import NewtonLogisticRegression


@pytest.mark.parametrize("l2", [0.01, 1.0, 100.0])
@pytest.mark.parametrize("seed", range(3))
def test_newton_fit_equals_sklearn_newton_cholesky_at_c_one_over_l2(seed, l2):
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(600, 8)) * rng.uniform(0.5, 2.0, 8)
    membership = rng.random(600) < 1 / (1 + np.exp(-(features @ rng.normal(size=8) + 0.3)))
    ours = NewtonLogisticRegression(l2=l2).fit(features, membership)
    oracle = LogisticRegression(C=1 / l2, solver="newton-cholesky", tol=1e-12,
                                max_iter=200).fit(features, membership)
    np.testing.assert_allclose(ours.coef_, oracle.coef_[0], atol=1e-7)
    assert ours.intercept_ == pytest.approx(oracle.intercept_[0], abs=1e-7)
    np.testing.assert_allclose(ours.predict_proba(features), oracle.predict_proba(features),
                               atol=1e-8)
