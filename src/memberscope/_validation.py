"""Input checks that name the argument, what was expected and what was received."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any

import numpy as np

from memberscope.errors import InputError, unknown_name_message


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


# --- settings: one rule per field, read by the dataclass and by the config parser ----------

_KIND_WORDS = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array",
               dict: "table", tuple: "array"}


def described(value: Any) -> str:
    """``got <kind> <value>`` in TOML's words (``got string 'ten'``), for messages."""
    return f"got {_KIND_WORDS.get(type(value), type(value).__name__)} {value!r}"


@dataclass(frozen=True)
class FieldRule:
    """What one field of a settings dataclass accepts: its kind, bounds or valid names.

    The one statement of the rule: the dataclass checks itself with it in ``__post_init__``
    (:func:`raise_field_problems`), and the experiment config checks its TOML tables with the
    same rules, so each bound is written once.

    Parameters
    ----------
    kind : bool | int | float | str
        ``int`` takes any integral number, ``float`` any finite real; never a bool.
    at_least, above, below : float, optional
        ``value >= at_least``, ``value > above``, ``value < below``.
    names : tuple of str
        The valid values of a ``str`` field (an unknown one gets a did-you-mean).
    name_kind : str
        What such a value is, for the message ("unknown accountant 'rdpp'").
    optional : bool
        ``None`` is allowed (the setting is not given).
    """

    kind: type
    at_least: float | None = None
    above: float | None = None
    below: float | None = None
    names: tuple[str, ...] = ()
    name_kind: str = "value"
    optional: bool = False

    def check(self, value: Any) -> tuple[Any, str | None]:
        """``(value as kind, None)`` if it obeys the rule, else ``(value, problem)``."""
        if value is None and self.optional:
            return None, None
        if self.kind is bool:
            if not isinstance(value, bool):
                return value, f"expected true or false; {described(value)}"
            return value, None
        if self.kind is str:
            return self._check_name(value)
        if self.kind is int:
            if isinstance(value, bool) or not isinstance(value, Integral):
                return value, f"expected an integer; {described(value)}"
            return int(value), self._bounds_problem(value)
        if isinstance(value, bool) or not isinstance(value, Real):
            return value, f"expected a number; {described(value)}"
        if not math.isfinite(float(value)):
            return value, f"must be finite; got {value}"
        return float(value), self._bounds_problem(value)

    def _check_name(self, value: Any) -> tuple[Any, str | None]:
        if not isinstance(value, str):
            return value, f"expected a string; {described(value)}"
        if self.names and value not in self.names:
            return value, unknown_name_message(self.name_kind, value, self.names)
        if not value.strip():
            return value, "must not be empty"
        return value, None

    def _bounds_problem(self, value: Any) -> str | None:
        low = self.at_least if self.above is None else self.above
        inside = ((self.at_least is None or value >= self.at_least)
                  and (self.above is None or value > self.above)
                  and (self.below is None or value < self.below))
        if inside:
            return None
        if low is not None and self.below is not None:
            opening = "(" if self.above is not None else "["
            return f"must be in {opening}{low:g}, {self.below:g}); got {value}"
        if self.below is not None:
            return f"must be < {self.below:g}; got {value}"
        relation = ">" if self.above is not None else ">="
        return f"must be {relation} {low:g}; got {value}"


def field_problems(settings: object, rules: Mapping[str, FieldRule]) -> list[tuple[str, str]]:
    """``(field, problem)`` for every attribute of ``settings`` that breaks its rule."""
    found = ((name, rule.check(getattr(settings, name))[1]) for name, rule in rules.items())
    return [(name, problem) for name, problem in found if problem]


def raise_field_problems(settings: object, problems: list[tuple[str, str]]) -> None:
    """Raise one :class:`InputError` naming every problem of ``settings``, one per line:
    ``Owner.field: problem``, or ``Owner: problem`` for a rule across fields (field "")."""
    if problems:
        owner = type(settings).__name__
        raise InputError("\n".join(f"{owner}.{field}: {problem}" if field else
                                    f"{owner}: {problem}" for field, problem in problems))
