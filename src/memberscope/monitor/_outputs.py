"""Framework-free conversions shared by the callbacks: model outputs to logits, labels to indices.

Pure numpy, so the callbacks stay thin and these rules are tested without any framework.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from memberscope._validation import as_label_array, check_finite
from memberscope.errors import InputError

# Probabilities are clipped to this before the log so that a saturated softmax (an exact 0)
# gives a large finite negative logit rather than -inf, which ModelOutputs refuses.
_MIN_PROBABILITY = 1e-30


def to_class_logits(outputs: Any, *, from_logits: bool, name: str = "model outputs") -> np.ndarray:
    """Turn a model's outputs for a batch into (n, C) logits that ``ModelOutputs`` accepts.

    Parameters
    ----------
    outputs : (n, C) or (n,) or (n, 1) float
        Logits (``from_logits=True``) or probabilities (``from_logits=False``: rows of a softmax,
        or the positive-class probability of a sigmoid for a single column). A single column
        is read as a binary classifier's positive-class output.
    from_logits : bool
        Whether ``outputs`` are pre-activation scores rather than probabilities.

    Returns
    -------
    (n, C) float64
        Logits. Log-probabilities stand in for logits where probabilities were given: their
        softmax is the given probabilities, so every signal (loss, confidence, …) is unchanged.
    """
    array = np.asarray(outputs, dtype=np.float64)
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2:
        raise InputError(f"{name} must be (n, classes) or (n,); got shape {array.shape}")
    if array.shape[1] == 1:
        return _binary_logits(array[:, 0], from_logits=from_logits)
    if from_logits:
        return array
    return np.log(np.clip(array, _MIN_PROBABILITY, None))


def _binary_logits(column: np.ndarray, *, from_logits: bool) -> np.ndarray:
    """(n,) positive-class logit or probability -> (n, 2) logits [negative, positive]."""
    if from_logits:
        return np.stack([np.zeros_like(column), column], axis=1)
    p = np.clip(column, 0.0, 1.0)
    return np.log(np.clip(np.stack([1.0 - p, p], axis=1), _MIN_PROBABILITY, None))


def label_indices(labels: Any, *, name: str = "labels") -> np.ndarray:
    """Class indices (n,) int64 from integer labels (n,) or (n, 1), or one-hot rows (n, C).

    The codelab passes one-hot labels to Keras (``categorical_crossentropy``); memberscope's
    audit wants indices. A row of a (n, C) array must have one largest entry, > 0, and no
    negative entry (one-hot, or smoothed one-hot labels); anything else is refused naming the
    row rather than read as a class.
    """
    array = np.asarray(labels)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    elif array.ndim == 2:
        array = _one_hot_indices(array, name)
    if array.ndim != 1:
        raise InputError(f"{name} must be (n,) class indices or (n, C) one-hot; "
                         f"got shape {array.shape}")
    return as_label_array(name, array)


def _one_hot_indices(rows: np.ndarray, name: str) -> np.ndarray:
    """(n, C) one-hot (or smoothed one-hot) rows -> (n,) the column of each row's maximum."""
    if not (np.issubdtype(rows.dtype, np.number) or rows.dtype == bool):
        raise InputError(f"{name} must hold numbers; got dtype {rows.dtype}")
    values = rows.astype(np.float64)
    check_finite(name, values)
    largest = values.max(axis=1, keepdims=True)
    bad = (values.min(axis=1) < 0) | (largest[:, 0] <= 0) | ((values == largest).sum(axis=1) != 1)
    if bad.any():
        row = int(np.argmax(bad))
        raise InputError(f"{name}: row {row} is not one-hot (one largest entry > 0, none "
                         f"negative); got {values[row].tolist()}")
    return np.argmax(values, axis=1)


def batch_slices(n: int, batch_size: int) -> list[slice]:
    """Consecutive slices covering ``range(n)`` in chunks of ``batch_size``."""
    if batch_size < 1:
        raise InputError(f"batch_size must be >= 1; got {batch_size}")
    return [slice(start, min(start + batch_size, n)) for start in range(0, n, batch_size)]
