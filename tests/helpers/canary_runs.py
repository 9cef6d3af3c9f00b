"""Seeded DP trainings with white-box canaries whose audit numbers
``tests/fixtures/gradient_canaries_reference.npz`` pins (written by
``benchmarks/canary_reference.py``; checked by ``tests/integration/test_canary_reference.py``).

Each case covers one path the canaries take through a step: direct clipping on a CNN (the
digits model of ``benchmarks/one_run_canaries.py``) and on an MLP, Opacus' hooks mode,
canaries spread over several parameters (m above the largest one's size), DP-Adam, and steps
on empty Poisson batches (a tiny expected batch)."""

from __future__ import annotations

from typing import Any

import numpy as np

from memberscope.one_run import METHODS, epsilon_one_run
from memberscope.train.dp.canaries import SCORES, canary_scores

DELTA = 1e-5

CASES: dict[str, dict[str, Any]] = {
    "cnn_direct": {"model": "cnn", "mode": "direct", "m": 200, "batch": 30, "epochs": 1},
    "mlp_direct": {"model": "mlp", "mode": "direct", "m": 100, "batch": 50, "epochs": 1},
    "mlp_hooks": {"model": "mlp", "mode": "hooks", "m": 100, "batch": 50, "epochs": 1},
    "spread_direct": {"model": "narrow_mlp", "mode": "direct", "m": 100, "batch": 50,
                      "epochs": 1},
    "adam_direct": {"model": "mlp", "mode": "direct", "m": 100, "batch": 50, "epochs": 1,
                    "optimizer": "adam"},
    "empty_batches": {"model": "mlp", "mode": "direct", "m": 100, "batch": 50, "epochs": 0,
                      "noise_only_steps": 40},
}
"""Per case: model, grad-sample mode, canaries m, batch size, epochs, optimizer, and steps on
empty batches (``PrivateTraining.noise_only_step``) after the epochs."""


def train_case(name: str) -> Any:
    """The case's trainer after its training (a ``Trainer``)."""
    import torch

    from memberscope.data import load_digits
    from memberscope.train.models import mlp, small_cnn
    from memberscope.train.settings import CanarySettings, DPSettings, TrainSettings
    from memberscope.train.trainer import Trainer

    case = CASES[name]
    torch.manual_seed(0)
    optimizer = case.get("optimizer", "sgd")
    if case["model"] == "cnn":
        data = load_digits()
        x, y = data.x_train, data.y_train
        model = small_cnn((8, 8, 1), 10, num_conv=1)
    else:
        rng = np.random.default_rng(0)
        x = rng.normal(size=(500, 10)).astype(np.float32)
        y = (x @ rng.normal(size=(10, 3))).argmax(1)
        model = mlp(10, 3, hidden=(128,) if case["model"] == "mlp" else (8,))
    settings = TrainSettings(
        epochs=max(1, case["epochs"]), batch_size=case["batch"],
        learning_rate=0.5 if optimizer == "sgd" else 2e-3, optimizer=optimizer, seed=1,
        dp=DPSettings(noise_multiplier=0.4, delta=DELTA, accountant="rdp",
                      grad_sample_mode=case["mode"],
                      canaries=CanarySettings(m=case["m"], seed=2)))
    trainer = Trainer(model, x, y, settings, device="cpu")
    for _ in range(case["epochs"]):
        trainer.train_epoch()
    for _ in range(case.get("noise_only_steps", 0)):
        trainer.private.noise_only_step()
    return trainer


def audit_numbers(trainer: Any) -> dict[str, np.ndarray]:
    """What the audit of a trained case reads: the (T, m) histories, the (m,) scores of every
    score and the (methods,) ε bounds of each, at δ = 1e-5."""
    canaries = trainer.canaries
    gradients, updates = canaries.history()
    numbers = {"gradients": gradients, "updates": updates}
    for score in SCORES:
        scores = canary_scores(gradients, score, sample_rate=canaries.sample_rate,
                               noise_multiplier=canaries.noise_multiplier)
        numbers[f"scores_{score}"] = scores
        numbers[f"epsilon_{score}"] = np.array(
            [epsilon_one_run(scores, canaries.plan.included, delta=DELTA,
                             method=method).epsilon for method in METHODS])
    return numbers
