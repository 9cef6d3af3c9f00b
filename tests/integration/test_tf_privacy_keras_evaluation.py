"""``memberscope.compat.tf_privacy.keras_evaluation`` on Keras 3, whichever backend runs here.

The backend is the one keras has already chosen in this process, else torch where installed
(as the other Keras tests), else keras's own default (tensorflow or jax); without keras, or
without any backend, the tests are skipped with the reason.
"""

from __future__ import annotations

import importlib.util
import os
import sys

import numpy as np
import pytest

import memberscope as ms

if "keras" not in sys.modules and importlib.util.find_spec("torch") is not None:
    os.environ["KERAS_BACKEND"] = "torch"
keras = pytest.importorskip("keras", reason="needs Keras 3 with a backend (the keras extra)")
keras_evaluation = pytest.importorskip("memberscope.compat.tf_privacy.keras_evaluation")
from memberscope.compat.tf_privacy.data_structures import (  # noqa: E402
    AttackResults,
    AttackType,
    SlicingSpec,
)

pytestmark = [
    pytest.mark.keras,
    pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::memberscope.LowResolutionWarning"),
]


def _data(seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(240, 8)).astype("float32")
    y = (x[:, 0] + 0.5 * rng.normal(size=240) > 0).astype("int64") + 2 * (x[:, 1] > 0)
    return (x[:120], y[:120]), (x[120:], y[120:])


def _model(softmax: bool):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(4, activation="softmax" if softmax else None)])
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(
        from_logits=not softmax))
    return model


@pytest.mark.parametrize("softmax", [True, False])
def test_attack_on_a_keras_model_equals_memberscopes_audit_of_its_outputs(softmax):
    members, nonmembers = _data()
    model = _model(softmax)
    model.fit(*members, epochs=20, batch_size=16, verbose=0)
    results = keras_evaluation.run_attack_on_keras_model(
        model, members, nonmembers, SlicingSpec(by_class=True),
        attack_types=[AttackType.THRESHOLD_ATTACK, AttackType.LOGISTIC_REGRESSION],
        is_logit=not softmax)
    assert isinstance(results, AttackResults)
    outputs = {side: np.asarray(model.predict(x, verbose=0), dtype=np.float64)
               for side, (x, _) in (("train", members), ("test", nonmembers))}
    kind = "probs" if softmax else "logits"
    oracle = ms.audit(ms.ModelOutputs.from_train_test(
        labels_train=members[1], labels_test=nonmembers[1],
        **{f"{kind}_{side}": value for side, value in outputs.items()}),
        attacks=["threshold"], slices=["entire"], seed=0)
    entire = results.single_attack_results[0]
    assert entire.get_auc() == pytest.approx(oracle.rows[0].auc, abs=1e-6)
    probs, loss = keras_evaluation.calculate_losses(model, members[0], members[1],
                                                    is_logit=not softmax)
    assert probs.shape == (120, 4) and loss.shape == (120,)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_callback_attacks_after_every_epoch_and_keeps_the_results():
    members, nonmembers = _data(1)
    model = _model(softmax=False)
    callback = keras_evaluation.MembershipInferenceCallback(members, nonmembers, is_logit=True)
    model.fit(*members, epochs=2, batch_size=32, verbose=0, callbacks=[callback])
    assert [r.privacy_report_metadata.epoch_num for r in callback.attack_results] == [1, 2]
    assert all(len(r.single_attack_results) == 1 for r in callback.attack_results)
    if importlib.util.find_spec("tensorflow") is None:
        with pytest.raises(ms.InputError, match="tensorboard_dir needs TensorFlow"):
            keras_evaluation.MembershipInferenceCallback(members, nonmembers,
                                                         tensorboard_dir="tb")
