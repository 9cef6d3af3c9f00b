"""Per-example losses as TF Privacy defines the user's data, computed exactly.

TF Privacy derives a loss when none is given: cross-entropy (from logits or probabilities),
binary cross-entropy for one output per example, per-class binary cross-entropy for
multi-label data, or the squared error; a sample weight multiplies each example's loss. These
functions keep those definitions of *what* the loss is, and compute it exactly: logits go
through a log-softmax (or log-sigmoid), and a probability of 0 gives -log of the smallest
positive float64 (708.4), not TF Privacy's cap at -log(1e-8) = 18.42, so confidently wrong
examples stay ordered (``docs/migrating-from-tf-privacy.md``).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from memberscope import signals
from memberscope._validation import as_label_array
from memberscope.errors import InputError

_TINY = np.finfo(np.float64).tiny


class LossFunction(enum.Enum):
    """The losses ``AttackInputData`` derives when none is given; a callable
    ``loss_function(labels, predictions, sample_weight)`` may be given instead."""

    CROSS_ENTROPY = "cross_entropy"
    SQUARED = "squared"


LossFunctionCallable = Callable[[np.ndarray, np.ndarray, "np.ndarray | None"], np.ndarray]


def string_to_loss_function(name: str) -> LossFunction:
    """The :class:`LossFunction` named ``name`` (``"cross_entropy"`` or ``"squared"``)."""
    try:
        return LossFunction(name)
    except ValueError:
        raise InputError(f"loss_function {name!r} is not a loss name; valid: "
                         f"{', '.join(f.value for f in LossFunction)}") from None


def _weighted(loss: np.ndarray, sample_weight: Any) -> np.ndarray:
    """``loss`` (n,) or (n, C) times each example's weight (n,)."""
    if sample_weight is None:
        return loss
    weights = np.asarray(sample_weight, dtype=np.float64)
    if weights.ndim == 2 and weights.shape[1] == 1:  # a column, as TF Privacy accepts
        weights = weights[:, 0]
    if weights.ndim != 1 or len(weights) != len(loss):
        raise InputError(f"sample_weight must have one weight per example ({len(loss)}); "
                         f"got shape {weights.shape}")
    weights = weights.reshape(len(loss), *([1] * (loss.ndim - 1)))
    return loss * weights


def log_loss(labels: np.ndarray, pred: np.ndarray, sample_weight: np.ndarray | None = None,
             from_logits: bool = False) -> np.ndarray:
    """Per-example cross-entropy in nats, (n,), times ``sample_weight`` (n,) when given.

    ``pred`` (n, C) holds logits (``from_logits``) or probabilities of each class, labels
    (n,) in ``[0, C)``; a single output per example, (n,) or (n, 1), is the logit or
    probability of class 1, with labels in {0, 1}.
    """
    labels = as_label_array("labels", labels)
    pred = np.asarray(pred, dtype=np.float64)
    if len(labels) != len(pred):
        raise InputError(f"labels has {len(labels)} rows but pred has {len(pred)}")
    if pred.size == len(pred):
        column = pred.reshape(-1)
        if labels.size and (labels.min() < 0 or labels.max() > 1):
            raise InputError("one output per example is class 1's logit or probability, so "
                             f"labels must be 0 or 1; got {np.unique(labels)}")
        if from_logits:
            # -log sigmoid(±z) = log(1 + exp(∓z)), exact for large |z|.
            signed = np.where(labels == 1, column, -column)
            loss = np.logaddexp(0.0, -signed)
        else:
            prob_true = np.where(labels == 1, column, 1.0 - column)
            loss = -np.log(np.maximum(prob_true, _TINY))
        return _weighted(loss, sample_weight)
    if pred.ndim != 2:
        raise InputError(f"pred must be (n,) or (n, C); got shape {pred.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= pred.shape[1]):
        raise InputError(f"labels must be in [0, {pred.shape[1] - 1}]; got {np.unique(labels)}")
    kind = "logits" if from_logits else "probs"
    loss = signals.cross_entropy_loss(labels, **{kind: pred})
    return _weighted(loss, sample_weight)


def squared_loss(y_true: np.ndarray, y_pred: np.ndarray,
                 sample_weight: np.ndarray | None = None) -> np.ndarray:
    """Per-example squared error (y_true − y_pred)², (n,), times ``sample_weight``."""
    truth = np.asarray(y_true, dtype=np.float64).reshape(len(y_true), -1)
    pred = np.asarray(y_pred, dtype=np.float64).reshape(len(y_pred), -1)
    if truth.shape != pred.shape or truth.shape[1] != 1:
        raise InputError("the squared loss needs one label and one prediction per example; "
                         f"got shapes {np.shape(y_true)} and {np.shape(y_pred)}")
    return _weighted((truth[:, 0] - pred[:, 0]) ** 2, sample_weight)


def multilabel_bce_loss(labels: np.ndarray, pred: np.ndarray,
                        sample_weight: np.ndarray | None = None,
                        from_logits: bool = False) -> np.ndarray:
    """Per-example, per-class binary cross-entropy (n, C) for multi-hot ``labels`` (n, C).

    ``pred`` (n, C) holds each class's logit (``from_logits``) or probability.
    """
    labels = np.asarray(labels)
    pred = np.asarray(pred, dtype=np.float64)
    if labels.shape != pred.shape or labels.ndim != 2:
        raise InputError(f"multi-label labels and pred must both be (n, C); got "
                         f"{labels.shape} and {pred.shape}")
    if not np.isin(labels, (0, 1)).all():
        raise InputError("multi-label labels must be multi-hot: every value 0 or 1")
    positive = labels == 1
    if from_logits:
        signed = np.where(positive, pred, -pred)
        loss = np.logaddexp(0.0, -signed)
    else:
        if ((pred < 0) | (pred > 1)).any():
            raise InputError("multi-label probabilities must be in [0, 1] (or set "
                             "loss_function_using_logits=True for logits)")
        prob_true = np.where(positive, pred, 1.0 - pred)
        loss = -np.log(np.maximum(prob_true, _TINY))
    return _weighted(loss, sample_weight)


def get_loss(loss: np.ndarray | None, labels: np.ndarray | None, logits: np.ndarray | None,
             probs: np.ndarray | None,
             loss_function: LossFunction | str | LossFunctionCallable,
             loss_function_using_logits: bool | None, multilabel_data: bool | None,
             sample_weight: np.ndarray | None = None) -> np.ndarray | None:
    """The loss of each example: ``loss`` as given, else derived from labels and the logits
    (``loss_function_using_logits``) or probabilities; None without labels or predictions.

    Returns (n,), or (n, C) for multi-label data, each row times its sample weight.
    """
    if loss is not None:
        return np.asarray(loss)
    if labels is None or (logits is None and probs is None):
        return None
    use_logits = logits is not None if loss_function_using_logits is None \
        else bool(loss_function_using_logits)
    predictions = logits if use_logits else probs
    if predictions is None:
        wanted, other = ("logits", "probs") if use_logits else ("probs", "logits")
        raise InputError(f"loss_function_using_logits={use_logits} needs {wanted}_train and "
                         f"{wanted}_test; only {other} are given")
    if isinstance(loss_function, str):
        loss_function = string_to_loss_function(loss_function)
    if loss_function is LossFunction.CROSS_ENTROPY:
        if multilabel_data:
            return multilabel_bce_loss(labels, predictions, sample_weight, use_logits)
        return log_loss(labels, predictions, sample_weight, use_logits)
    if loss_function is LossFunction.SQUARED:
        return squared_loss(labels, predictions, sample_weight)
    if not callable(loss_function):
        raise InputError(f"loss_function must be a LossFunction, its name or a callable "
                         f"(labels, predictions, sample_weight); got {loss_function!r}")
    return np.asarray(loss_function(labels, predictions, sample_weight), dtype=np.float64)


def format_number_list(values: Iterable[float], precision: int = 4) -> str:
    """``values`` as ``"1.0000, 2.0000"``."""
    return ", ".join(f"{value:.{precision}f}" for value in values)


__all__ = [
    "LossFunction",
    "LossFunctionCallable",
    "format_number_list",
    "get_loss",
    "log_loss",
    "multilabel_bce_loss",
    "squared_loss",
    "string_to_loss_function",
]
