"""Reference models trained for real with the built-in PyTorch trainer (small and fast)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")
pytestmark = pytest.mark.torch

from memberscope.reference.recipe import TrainingRecipe  # noqa: E402
from memberscope.reference.training import train_reference_models  # noqa: E402


def _images(n: int = 160, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.normal(scale=0.3, size=(n, 12, 12, 1)).astype(np.float32)
    x[:, 4:8, 4:8, 0] += y[:, None, None]  # learnable class signal
    return x, y


def test_torch_reference_models_train_score_and_repeat(tmp_path) -> None:
    x, y = _images()
    recipe = TrainingRecipe(architecture_args={"num_conv": 1}, epochs=3, batch_size=32,
                            learning_rate=1e-2, queries=("identity", "hflip", "shift:1:0"))
    ref = train_reference_models(recipe, x, y, n_models=2, cache_dir=tmp_path)
    assert ref.signal.shape == (2, 160, 3)
    assert np.isfinite(ref.signal).all()
    assert ((ref.true_class_prob >= 0) & (ref.true_class_prob <= 1)).all()
    # trained models fit their members better than chance (p = 1/3)
    assert ref.true_class_prob[ref.membership][:, 0].mean() > 0.5
    again = train_reference_models(recipe, x, y, n_models=2)  # no cache: trains again
    np.testing.assert_allclose(again.signal, ref.signal, rtol=1e-5, atol=1e-5)
