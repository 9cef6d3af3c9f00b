"""Input checks that name the argument, what was expected and what was received."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from memberscope.errors import InputError


def as_float_array(name: str, value: Any, ndim: int) -> np.ndarray:
    """Return ``value`` as a float64 array of ``ndim`` dims with only finite values."""
    array = _numeric_array(name, value, ndim)
    check_finite(name, array)
    return array


def as_nan_float_array(name: str, value: Any, ndim: int) -> np.ndarray:
    """Return ``value`` as a float64 array of ``ndim`` dims whose values are finite or NaN
    (NaN marking a missing entry, as in a loss trace); infinities are refused."""
    array = _numeric_array(name, value, ndim)
    check_finite(name, np.where(np.isnan(array), 0.0, array))
    return array


def _numeric_array(name: str, value: Any, ndim: int) -> np.ndarray:
    try:
        array = np.asarray(value)
    except Exception as exc:  # ragged lists and the like
        raise InputError(f"{name} could not be read as an array: {exc}") from exc
    if array.dtype == object:
        raise InputError(f"{name} has dtype object; expected numbers")
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise InputError(f"{name} has dtype {array.dtype}; expected numbers")
    if array.ndim != ndim:
        raise InputError(f"{name} must have {ndim} dimension(s); got shape {array.shape}")
    return array.astype(np.float64, copy=False)


def check_finite(name: str, array: np.ndarray) -> None:
    """Raise naming the count and first position of NaN/inf values in ``array``."""
    finite = np.isfinite(array)
    if finite.all():
        return
    for label, bad in (("NaN", np.isnan(array)), ("infinite", np.isinf(array))):
        count = int(bad.sum())
        if count:
            first = np.unravel_index(int(np.argmax(bad)), array.shape)
            where = f"row {first[0]}" if array.ndim == 1 else f"row {first[0]}, column {first[1]}"
            raise InputError(f"{name} contains {count} {label} value(s) (first at {where})")


def as_label_array(name: str, value: Any, num_classes: int | None = None) -> np.ndarray:
    """Return integer class labels as int64 (n,), checked against ``num_classes``."""
    array = np.asarray(value)
    if array.ndim != 1:
        raise InputError(f"{name} must be 1-dimensional; got shape {array.shape}")
    if array.dtype == object or array.dtype == bool:
        raise InputError(f"{name} must hold integer class labels; got dtype {array.dtype}")
    if np.issubdtype(array.dtype, np.floating):
        check_finite(name, array)
        if not np.all(np.equal(np.mod(array, 1), 0)):
            bad = int(np.argmax(np.mod(array, 1) != 0))
            raise InputError(
                f"{name} must hold integer class labels; row {bad} is {float(array[bad])!r}"
            )
    elif not np.issubdtype(array.dtype, np.integer):
        raise InputError(f"{name} must hold integer class labels; got dtype {array.dtype}")
    labels = array.astype(np.int64)
    if labels.size and labels.min() < 0:
        bad = int(np.argmax(labels < 0))
        raise InputError(f"{name} must be >= 0; row {bad} is {labels[bad]}")
    if num_classes is not None and labels.size and labels.max() >= num_classes:
        bad = int(np.argmax(labels >= num_classes))
        raise InputError(
            f"{name} must be < {num_classes} (the number of classes); row {bad} is {labels[bad]}"
        )
    return labels


def as_bool_array(name: str, value: Any, *, ndim: int = 1) -> np.ndarray:
    """Return a boolean array of ``ndim`` dimensions; accepts bool or 0/1 numbers."""
    array = np.asarray(value)
    if array.ndim != ndim:
        raise InputError(f"{name} must be {ndim}-dimensional; got shape {array.shape}")
    if array.dtype == bool:
        return array
    if np.issubdtype(array.dtype, np.number):
        check_finite(name, array.astype(np.float64))
        if np.isin(array, (0, 1)).all():
            return array.astype(bool)
    raise InputError(f"{name} must be boolean (or 0/1); got dtype {array.dtype}")


def check_same_length(**arrays: np.ndarray | None) -> int:
    """Check that all given arrays have the same first dimension; return it."""
    lengths = {name: len(a) for name, a in arrays.items() if a is not None}
    if len(set(lengths.values())) > 1:
        described = ", ".join(f"{name} has {n}" for name, n in lengths.items())
        raise InputError(f"arrays must have the same number of rows: {described}")
    return next(iter(lengths.values()), 0)


def check_probability(name: str, value: float, *, open_interval: bool = True) -> float:
    """Check 0 < value < 1 (or 0 <= value <= 1) for a scalar probability."""
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name} must be a number in (0, 1); got {value!r}") from exc
    ok = 0 < number < 1 if open_interval else 0 <= number <= 1
    if not ok or not np.isfinite(number):
        bounds = "(0, 1)" if open_interval else "[0, 1]"
        raise InputError(f"{name} must be in {bounds}; got {value!r}")
    return number


def layer_sizes(owner: str, value: Any) -> tuple[int, ...]:
    """``value`` as hidden layer sizes: a sequence of positive integers (repeats allowed)."""
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise InputError(f"{owner}: hidden layer sizes must be a sequence of positive integers "
                         f"such as (128,) or [256, 256]; got {value!r}")
    sizes = tuple(value)
    if not all(isinstance(s, int | np.integer) and not isinstance(s, bool) and s >= 1
               for s in sizes):
        raise InputError(f"{owner}: hidden layer sizes must be positive integers; got "
                         f"{list(sizes)!r}")
    return tuple(int(s) for s in sizes)
