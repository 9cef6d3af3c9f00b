"""The :class:`Dataset` every loader returns: float32 features, int64 labels, checked once."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from memberscope._validation import as_label_array, check_finite
from memberscope.errors import InputError


@dataclass(frozen=True, eq=False, repr=False)
class Dataset:
    """A train/test split ready for training: members are ``train``, non-members ``test``.

    Parameters
    ----------
    x_train, x_test : ndarray of float32, shape (n, *input_shape)
        Images as NHWC ``(n, height, width, channels)`` or tabular rows ``(n, d)``. Floating
        input is cast to float32; values must be finite.
    y_train, y_test : ndarray of int, shape (n,)
        Class labels in ``[0, num_classes)``, stored as int64.
    name : str
        Short name (``"cifar10"``, a file stem …).
    num_classes : int
        Number of classes, at least 2.
    input_shape : tuple of int
        Shape of one example, ``x_train.shape[1:]``.
    class_names : tuple of str
        Optional names of the classes; empty, or one per class.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    name: str
    num_classes: int
    input_shape: tuple[int, ...]
    class_names: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise InputError(f"name must be a non-empty string; got {self.name!r}")
        if isinstance(self.num_classes, bool) or not isinstance(self.num_classes, int | np.integer):
            raise InputError(f"num_classes must be an integer; got {self.num_classes!r}")
        if self.num_classes < 2:
            raise InputError(f"num_classes must be at least 2; got {self.num_classes}")
        shape = tuple(self.input_shape)
        if len(shape) not in (1, 3) or not all(
            isinstance(d, int | np.integer) and d > 0 for d in shape
        ):
            raise InputError(
                f"input_shape must be (height, width, channels) or (features,) of positive "
                f"integers; got {self.input_shape!r}"
            )
        object.__setattr__(self, "input_shape", tuple(int(d) for d in shape))
        object.__setattr__(self, "num_classes", int(self.num_classes))
        for split in ("train", "test"):
            x = _as_features(f"x_{split}", getattr(self, f"x_{split}"), self.input_shape)
            y = as_label_array(f"y_{split}", getattr(self, f"y_{split}"), self.num_classes)
            if len(x) != len(y):
                raise InputError(f"x_{split} has {len(x)} rows but y_{split} has {len(y)}")
            if len(x) == 0:
                raise InputError(f"x_{split} is empty; expected at least one example")
            object.__setattr__(self, f"x_{split}", x)
            object.__setattr__(self, f"y_{split}", y)
        names = tuple(self.class_names)
        if names and (len(names) != self.num_classes or not all(isinstance(n, str) for n in names)):
            raise InputError(
                f"class_names must be empty or {self.num_classes} strings; got {self.class_names!r}"
            )
        object.__setattr__(self, "class_names", names)

    @property
    def n_train(self) -> int:
        """Number of training examples (the members)."""
        return len(self.y_train)

    @property
    def n_test(self) -> int:
        """Number of test examples (the non-members)."""
        return len(self.y_test)

    def __repr__(self) -> str:
        return (
            f"Dataset(name={self.name!r}, x_train={self.x_train.shape}, "
            f"x_test={self.x_test.shape}, num_classes={self.num_classes})"
        )


def _as_features(name: str, value: object, input_shape: tuple[int, ...]) -> np.ndarray:
    """Return ``value`` as float32 of shape ``(n, *input_shape)`` with finite values."""
    if not isinstance(value, np.ndarray):
        raise InputError(f"{name} must be a numpy array; got {type(value).__name__}")
    if not np.issubdtype(value.dtype, np.floating):
        raise InputError(
            f"{name} must hold floating point values (scaled pixels or features); "
            f"got dtype {value.dtype}"
        )
    if value.shape[1:] != input_shape or value.ndim < 2:
        raise InputError(
            f"{name} must have shape (n, {', '.join(map(str, input_shape))}); got {value.shape}"
        )
    features = value.astype(np.float32, copy=False)
    # A sum is finite unless a value is NaN/inf (or the total overflows): check fully only then,
    # which avoids a boolean temporary as large as the data for the common clean case.
    if not np.isfinite(features.sum(dtype=np.float64)):
        check_finite(name, features.reshape(len(features), -1))
    return features
