"""Seeded synthetic model outputs, numpy only, shared by the TF Privacy comparison scripts.

This module imports nothing but numpy, so it runs both in our venv and in the scratch venv
that has TensorFlow Privacy (``benchmarks/tfp_reference.py``, ``benchmarks/tfp_timings.py``).
Every generator returns TF Privacy's field names: ``*_train`` = members, ``*_test`` = non-members.
"""

from __future__ import annotations

import numpy as np

Arrays = dict[str, np.ndarray]


def _split(values: np.ndarray, n_members: int, name: str) -> Arrays:
    return {f"{name}_train": values[:n_members], f"{name}_test": values[n_members:]}


def leaky_logits(rng: np.random.Generator, n_members: int, n_nonmembers: int,
                 num_classes: int, leak: float = 1.0, scale: float = 1.0) -> Arrays:
    """Logits (n, C) whose true-class logit is ``leak`` higher for members on average.

    ``scale`` multiplies every logit: large values saturate the softmax (p_y rounds to 1 for
    confident rows, tiny p_y for confidently wrong ones).
    """
    n = n_members + n_nonmembers
    labels = rng.integers(0, num_classes, n)
    logits = rng.normal(size=(n, num_classes))
    boost = np.r_[rng.normal(2.0 + leak, 1.0, n_members),
                  rng.normal(2.0, 1.0 + 0.5 * (leak > 0), n_nonmembers)]
    logits[np.arange(n), labels] += boost
    logits *= scale
    return {**_split(labels, n_members, "labels"), **_split(logits, n_members, "logits")}


def codelab_arrays(seed: int = 0, n_members: int = 50_000, n_nonmembers: int = 10_000,
                   num_classes: int = 10, leak: float = 1.0) -> Arrays:
    """The codelab-size input (``benchmarks/_synthetic.codelab_outputs`` wraps it)."""
    return leaky_logits(np.random.default_rng(seed), n_members, n_nonmembers, num_classes, leak)


def leaky_loss(rng: np.random.Generator, n_members: int, n_nonmembers: int,
               num_classes: int, decimals: int | None = None) -> Arrays:
    """Per-example losses (members lower on average), optionally rounded to create ties."""
    n = n_members + n_nonmembers
    labels = rng.integers(0, num_classes, n)
    loss = np.r_[rng.exponential(0.6, n_members), rng.exponential(1.0, n_nonmembers)]
    if decimals is not None:
        loss = np.round(loss, decimals)
    return {**_split(labels, n_members, "labels"), **_split(loss, n_members, "loss")}


def tiny_slices_loss(rng: np.random.Generator) -> Arrays:
    """Losses with classes of 1-3 examples per side, and classes present on one side only."""
    member_labels = np.repeat([0, 1, 2, 3, 4, 6], [30, 3, 1, 2, 2, 2])
    nonmember_labels = np.repeat([0, 1, 2, 3, 5], [20, 2, 1, 3, 2])
    loss_members = np.round(rng.exponential(0.5, len(member_labels)), 2)
    loss_nonmembers = np.round(rng.exponential(1.0, len(nonmember_labels)), 2)
    return {"labels_train": member_labels, "labels_test": nonmember_labels,
            "loss_train": loss_members, "loss_test": loss_nonmembers}


def ppv_zone_loss(rng: np.random.Generator) -> Arrays:
    """Weak signal, plus one member scoring above everyone (lowest loss).

    With >= 1000 examples per side that member's point (TPR = 1/P <= 1e-3, FPR = 0) lies inside
    TF Privacy's tolerance zone for "TPR = FPR = 0", where it reports 1/(1+r) instead of 1.
    """
    n_members, n_nonmembers = 3000, 1500
    loss = np.r_[rng.exponential(0.95, n_members), rng.exponential(1.0, n_nonmembers)] + 0.01
    loss[0] = 0.0
    labels = rng.integers(0, 2, n_members + n_nonmembers)
    return {**_split(labels, n_members, "labels"), **_split(loss, n_members, "loss")}


def no_signal_logits(rng: np.random.Generator, n_members: int, n_nonmembers: int,
                     num_classes: int) -> Arrays:
    """Members and non-members drawn from one distribution: any measured leakage is noise."""
    return leaky_logits(rng, n_members, n_nonmembers, num_classes, leak=0.0)


def to_probs(arrays: Arrays) -> Arrays:
    """Replace logits by softmax probabilities (float64, rows sum to 1)."""
    result = {k: v for k, v in arrays.items() if not k.startswith("logits")}
    for side in ("train", "test"):
        logits = arrays[f"logits_{side}"]
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
        result[f"probs_{side}"] = shifted / shifted.sum(axis=1, keepdims=True)
    return result
