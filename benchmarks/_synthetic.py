"""Synthetic model outputs shaped like the codelab's (shared by the benchmarks)."""

from __future__ import annotations

import numpy as np

from memberscope import ModelOutputs


def codelab_outputs(seed: int = 0, n_members: int = 50_000, n_nonmembers: int = 10_000,
                    num_classes: int = 10, leak: float = 1.0) -> ModelOutputs:
    """Logits where members' true-class logit is ``leak`` higher on average (leak=0: no signal)."""
    rng = np.random.default_rng(seed)
    n = n_members + n_nonmembers
    labels = rng.integers(0, num_classes, n)
    logits = rng.normal(size=(n, num_classes))
    boost = np.r_[rng.normal(2.0 + leak, 1.0, n_members),
                  rng.normal(2.0, 1.0 + 0.5 * (leak > 0), n_nonmembers)]
    logits[np.arange(n), labels] += boost
    membership = np.r_[np.ones(n_members, bool), np.zeros(n_nonmembers, bool)]
    return ModelOutputs(membership=membership, labels=labels, logits=logits)
