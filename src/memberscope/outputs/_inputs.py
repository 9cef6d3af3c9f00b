"""``ExampleInputs``: what the model was given for each audited example, held without copying.

The blind check of an audit scores each example from its inputs alone (no model). Inputs can
be large — the codelab's 50,000 + 10,000 CIFAR-10 images are 184 MB as uint8 and 737 MB as
float32 — so they are kept as the caller's own arrays laid end to end (members' inputs, then
non-members'), each optionally seen through a row index (a monitor's member sample), and read
in blocks of rows: no step joins or copies them whole.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from memberscope.errors import InputError


@dataclass(frozen=True)
class InputPart:
    """One array of inputs (m, *example_shape), named for messages (``inputs_test``), and the
    rows of it that are audited (all, in order, when ``rows`` is None)."""

    name: str
    array: np.ndarray
    rows: np.ndarray | None = None

    @property
    def n(self) -> int:
        """Number of audited examples in this part."""
        return len(self.array) if self.rows is None else len(self.rows)


def as_input_array(name: str, value: object) -> np.ndarray:
    """``value`` as an array (n, *example_shape) of numbers, viewed rather than copied where
    it already is one (a numpy array, a CPU tensor); raises naming ``name`` otherwise.

    Strings, objects and complex numbers are refused: the blind featurizer needs pixels,
    token ids or features. Text is audited through precomputed features instead
    (``attack_options={"blind": {"features": ...}}``).
    """
    try:
        array = np.asarray(value)
    except Exception as exc:  # ragged lists and the like
        raise InputError(f"{name} could not be read as an array: {exc}") from exc
    numeric = array.dtype == bool or (np.issubdtype(array.dtype, np.number)
                                      and not np.issubdtype(array.dtype, np.complexfloating))
    if not numeric:
        raise InputError(
            f"{name} has dtype {array.dtype}; expected numbers (pixels, token ids or "
            "features). For text or other non-numeric inputs, pass numeric features: "
            "attack_options={'blind': {'features': (n, d) array or callable}}")
    if array.ndim == 0:
        raise InputError(f"{name} must have one row per example; got a scalar")
    return array


@dataclass(frozen=True, eq=False)
class ExampleInputs:
    """The inputs of n audited examples, any per-example shape, as parts laid end to end.

    Build with :meth:`of` (one array, e.g. ``ModelOutputs(inputs=x)``), or let
    ``ModelOutputs.from_train_test(inputs_train=..., inputs_test=...)`` build it from the two
    sides without joining them. Every part holds numbers and the parts agree on the
    per-example shape; row counts are checked by ``ModelOutputs`` against its outputs.

    Examples
    --------
    >>> x = np.zeros((5, 4, 4, 3), dtype=np.uint8)
    >>> inputs = ExampleInputs.of(x)
    >>> inputs.n, inputs.example_shape
    (5, (4, 4, 3))
    >>> inputs.select(np.array([True, False, True, False, False])).n
    2
    """

    parts: tuple[InputPart, ...]

    def __post_init__(self) -> None:
        if not self.parts:
            raise InputError("inputs need at least one array")
        first = self.parts[0]
        for part in self.parts[1:]:
            if part.array.shape[1:] != first.array.shape[1:]:
                raise InputError(
                    f"{first.name} has examples of shape {first.array.shape[1:]} but "
                    f"{part.name} has {part.array.shape[1:]}; they must agree beyond the "
                    "first dimension")

    @classmethod
    def of(cls, value: object, name: str = "inputs") -> ExampleInputs:
        """One array (n, *example_shape) of inputs, not copied where it is already an array."""
        if isinstance(value, ExampleInputs):
            return value
        return cls((InputPart(name, as_input_array(name, value)),))

    @classmethod
    def joined(cls, named: Sequence[tuple[str, object]]) -> ExampleInputs:
        """Several arrays laid end to end, each checked under its own name."""
        return cls(tuple(InputPart(name, as_input_array(name, value)) for name, value in named))

    @property
    def n(self) -> int:
        """Number of examples."""
        return sum(part.n for part in self.parts)

    @property
    def example_shape(self) -> tuple[int, ...]:
        """Shape of one example's input."""
        return tuple(self.parts[0].array.shape[1:])

    @property
    def names(self) -> str:
        """The parts' names, for messages: ``inputs_train / inputs_test``."""
        return " / ".join(part.name for part in self.parts)

    def select(self, mask: np.ndarray) -> ExampleInputs:
        """The inputs of the examples where ``mask`` (n,) bool is True (row indexes, no copy)."""
        parts = []
        start = 0
        for part in self.parts:
            inside = np.flatnonzero(mask[start:start + part.n])
            rows = inside if part.rows is None else part.rows[inside]
            parts.append(InputPart(part.name, part.array, rows))
            start += part.n
        return ExampleInputs(tuple(parts))

    def take_rows(self, rows: np.ndarray) -> ExampleInputs:
        """Only the examples at ``rows`` (k,) int of a one-part input, e.g. a member sample."""
        mask = np.zeros(self.n, dtype=bool)
        mask[rows] = True
        return self.select(mask)

    def blocks(self, max_rows: int) -> Iterator[tuple[InputPart, np.ndarray | slice, int]]:
        """Consecutive blocks of at most ``max_rows`` examples, in order: each as its part, a
        row selector into ``part.array`` (a slice, or an index array) and the position of the
        block's first example among all n. Index ``part.array[(selector, ...)]`` to read
        only what is needed of each example."""
        offset = 0
        for part in self.parts:
            for start in range(0, part.n, max_rows):
                stop = min(start + max_rows, part.n)
                selector: np.ndarray | slice = (slice(start, stop) if part.rows is None
                                                else part.rows[start:stop])
                yield part, selector, offset + start
            offset += part.n

    def to_array(self) -> np.ndarray:
        """All inputs as one array (n, *example_shape): a copy, made only when asked for
        (a user's featurizer receives it)."""
        arrays = [part.array if part.rows is None else part.array[part.rows]
                  for part in self.parts]
        return arrays[0] if len(arrays) == 1 else np.concatenate(arrays)

    def row_name(self, position: int) -> str:
        """Which part and row the example at ``position`` (0-based, among all n) is, for
        messages: ``inputs_test row 17``."""
        for part in self.parts:
            if position < part.n:
                row = position if part.rows is None else int(part.rows[position])
                return f"{part.name} row {row}"
            position -= part.n
        raise IndexError(position)
