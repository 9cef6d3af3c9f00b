"""Per-example signals derived from model outputs, as pure numpy functions.

Shapes: ``logits``/``probs`` are (n, C) float; ``labels`` is (n,) int; results are (n,) float64.
All functions are numerically stable (log-sum-exp, clipping at the float64 tiny value).
"""

from __future__ import annotations

import numpy as np

_TINY = np.finfo(np.float64).tiny


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax of (n, C) logits, stable for large magnitudes."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of (n, C) logits; rows sum to 1."""
    return np.exp(log_softmax(logits))


def _true_class(values: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return values[np.arange(len(labels)), labels]


def cross_entropy_loss(
    labels: np.ndarray, *, logits: np.ndarray | None = None, probs: np.ndarray | None = None
) -> np.ndarray:
    """Cross-entropy loss -log p_y in nats, (n,), from logits (preferred) or probabilities."""
    if logits is not None:
        return -_true_class(log_softmax(logits), labels)
    if probs is None:
        raise ValueError("cross_entropy_loss needs logits or probs")
    return -np.log(np.maximum(_true_class(probs, labels), _TINY))


def entropy(probs: np.ndarray) -> np.ndarray:
    """Shannon entropy -sum p log p of each row, in nats, (n,)."""
    return -(probs * np.log(np.maximum(probs, _TINY))).sum(axis=1)


def modified_entropy(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Song & Mittal's modified entropy, (n,); low for confident correct predictions.

    Mentr(p, y) = -(1 - p_y) log p_y - sum_{i != y} p_i log(1 - p_i).
    """
    true_prob = _true_class(probs, labels)
    others = probs * np.log(np.maximum(1.0 - probs, _TINY))
    # Zero the true-class term rather than subtracting it: subtracting ~p_y·log(1−p_y) from
    # the sum cancels catastrophically when p_y rounds near 1 and scrambles confident rows.
    others[np.arange(len(labels)), labels] = 0.0
    return -(1.0 - true_prob) * np.log(np.maximum(true_prob, _TINY)) - others.sum(axis=1)


def max_confidence(probs: np.ndarray) -> np.ndarray:
    """Largest predicted probability of each row, (n,)."""
    return probs.max(axis=1)


def true_class_confidence(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Predicted probability of the true class, (n,)."""
    return _true_class(probs, labels)


def logit_scaled_confidence(
    labels: np.ndarray, *, logits: np.ndarray | None = None, probs: np.ndarray | None = None
) -> np.ndarray:
    """log(p_y / (1 - p_y)) of the true class, (n,), as used by LiRA.

    From logits it is computed without forming p: z_y - logsumexp(z_{i != y}), which stays
    finite where p_y rounds to 1.
    """
    if logits is not None:
        true_logit = _true_class(logits, labels)
        others = logits.copy()
        others[np.arange(len(labels)), labels] = -np.inf
        top = others.max(axis=1, keepdims=True)
        log_rest = top[:, 0] + np.log(np.exp(others - top).sum(axis=1))
        return true_logit - log_rest
    if probs is None:
        raise ValueError("logit_scaled_confidence needs logits or probs")
    true_prob = _true_class(probs, labels)
    return np.log(np.maximum(true_prob, _TINY)) - np.log(np.maximum(1.0 - true_prob, _TINY))


def is_correct(labels: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Whether the arg-max of (n, C) logits or probabilities equals the label, (n,) bool."""
    return np.asarray(scores.argmax(axis=1) == labels)
