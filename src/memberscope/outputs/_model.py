"""``ModelOutputs``: one model's per-example outputs on members and non-members."""

from __future__ import annotations

import zipfile
import zlib
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from memberscope import signals
from memberscope._validation import (
    as_bool_array,
    as_float_array,
    as_label_array,
    check_same_length,
)
from memberscope.errors import InputError

PROBABILITY_SUM_TOLERANCE = 1e-3


@dataclass(frozen=True, eq=False)
class ModelOutputs:
    """Per-example outputs of one model, and which examples were in its training set.

    Give at least one of ``logits``, ``probs`` or ``loss``. Arrays are validated and converted
    on construction, so an invalid ``ModelOutputs`` cannot exist.

    Parameters
    ----------
    membership : (n,) bool
        True for members (training examples), False for non-members (held out).
    labels : (n,) int
        True class of each example, in ``[0, C)``.
    logits, probs : (n, C) float, optional
        Pre-softmax outputs, or probabilities whose rows sum to 1.
    loss : (n,) float, optional
        Per-example loss (lower = better fit). Computed from logits/probs when not given.
    sample_weight : (n,) float, optional
        Non-negative weights of examples in every metric.

    Examples
    --------
    >>> import numpy as np
    >>> out = ModelOutputs(membership=[True, False], labels=[0, 1], loss=[0.1, 2.0])
    >>> out.n_members, out.n_nonmembers
    (1, 1)
    """

    membership: np.ndarray
    labels: np.ndarray
    logits: np.ndarray | None = None
    probs: np.ndarray | None = None
    loss: np.ndarray | None = None
    sample_weight: np.ndarray | None = None
    _cache: dict[str, np.ndarray] = field(default_factory=dict, init=False, repr=False,
                                          compare=False)

    def __post_init__(self) -> None:
        if self.logits is None and self.probs is None and self.loss is None:
            raise InputError("ModelOutputs needs at least one of logits, probs or loss")
        set_ = object.__setattr__
        set_(self, "membership", as_bool_array("membership", self.membership))
        logits = None if self.logits is None else as_float_array("logits", self.logits, 2)
        probs = None if self.probs is None else as_float_array("probs", self.probs, 2)
        if logits is not None and probs is not None and logits.shape != probs.shape:
            raise InputError(
                f"logits and probs must have the same shape; got {logits.shape} and {probs.shape}"
            )
        if probs is not None:
            _check_probabilities("probs", probs)
        num_classes = next((a.shape[1] for a in (logits, probs) if a is not None), None)
        if num_classes is not None and num_classes < 2:
            raise InputError(f"logits/probs need at least 2 classes; got {num_classes} column(s)")
        set_(self, "logits", logits)
        set_(self, "probs", probs)
        set_(self, "labels", as_label_array("labels", self.labels, num_classes))
        if self.loss is not None:
            set_(self, "loss", as_float_array("loss", self.loss, 1))
        if self.sample_weight is not None:
            weights = as_float_array("sample_weight", self.sample_weight, 1)
            if (weights < 0).any():
                row = int(np.argmax(weights < 0))
                raise InputError(f"sample_weight must be >= 0; row {row} is {weights[row]}")
            set_(self, "sample_weight", weights)
        check_same_length(
            membership=self.membership,
            labels=self.labels,
            logits=logits,
            probs=probs,
            loss=self.loss,
            sample_weight=self.sample_weight,
        )
        if self.n_members == 0:
            raise InputError("membership has no members (no True value); need at least one")
        if self.n_nonmembers == 0:
            raise InputError("membership has no non-members (no False value); need at least one")

    # --- construction -------------------------------------------------------------------

    @classmethod
    def from_train_test(
        cls,
        *,
        labels_train: Any,
        labels_test: Any,
        logits_train: Any = None,
        logits_test: Any = None,
        probs_train: Any = None,
        probs_test: Any = None,
        loss_train: Any = None,
        loss_test: Any = None,
        sample_weight_train: Any = None,
        sample_weight_test: Any = None,
    ) -> ModelOutputs:
        """Build from TF Privacy's field names: ``*_train`` are members, ``*_test`` non-members."""
        pairs = {
            "logits": (logits_train, logits_test),
            "probs": (probs_train, probs_test),
            "loss": (loss_train, loss_test),
            "sample_weight": (sample_weight_train, sample_weight_test),
            "labels": (labels_train, labels_test),
        }
        joined: dict[str, np.ndarray | None] = {}
        rows = {"train": np.shape(labels_train)[:1], "test": np.shape(labels_test)[:1]}
        for name, (train, test) in pairs.items():
            if (train is None) != (test is None):
                given, missing = (f"{name}_train", f"{name}_test")[:: 1 if test is None else -1]
                raise InputError(f"{given} was given without {missing}; give both or neither")
            if train is None:
                joined[name] = None
                continue
            train_array = _side_array(f"{name}_train", train, rows["train"])
            test_array = _side_array(f"{name}_test", test, rows["test"])
            if train_array.ndim != test_array.ndim or train_array.shape[1:] != test_array.shape[1:]:
                raise InputError(
                    f"{name}_train has shape {train_array.shape} but {name}_test has shape "
                    f"{test_array.shape}; they must agree beyond the first dimension"
                )
            joined[name] = np.concatenate([train_array, test_array])
        labels = joined.pop("labels")
        n_train = len(np.asarray(labels_train))
        membership = np.zeros(len(labels) if labels is not None else 0, dtype=bool)
        membership[:n_train] = True
        return cls(membership=membership, labels=labels, **joined)  # type: ignore[arg-type]

    def subset(self, mask: np.ndarray) -> ModelOutputs:
        """The outputs of the examples where ``mask`` (n,) bool is True."""

        def take(array: np.ndarray | None) -> np.ndarray | None:
            return None if array is None else array[mask]

        return ModelOutputs(
            membership=self.membership[mask],
            labels=self.labels[mask],
            logits=take(self.logits),
            probs=take(self.probs),
            loss=take(self.loss),
            sample_weight=take(self.sample_weight),
        )

    # --- shape facts ----------------------------------------------------------------------

    @property
    def n(self) -> int:
        """Number of examples."""
        return len(self.labels)

    @property
    def n_members(self) -> int:
        """Number of members (training examples)."""
        return int(self.membership.sum())

    @property
    def n_nonmembers(self) -> int:
        """Number of non-members (held-out examples)."""
        return self.n - self.n_members

    @property
    def num_classes(self) -> int:
        """Number of classes: columns of logits/probs, else 1 + the largest label."""
        for array in (self.logits, self.probs):
            if array is not None:
                return int(array.shape[1])
        return int(self.labels.max()) + 1

    @property
    def has_distribution(self) -> bool:
        """Whether per-class outputs (logits or probs) are available."""
        return self.logits is not None or self.probs is not None

    # --- derived signals (cached; the object is immutable) ---------------------------------

    def _cached(self, key: str, compute: Any) -> np.ndarray:
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    @property
    def loss_values(self) -> np.ndarray:
        """Per-example loss (n,): as given, else cross-entropy from logits or probs."""
        if self.loss is not None:
            return self.loss
        return self._cached(
            "loss",
            lambda: signals.cross_entropy_loss(self.labels, logits=self.logits, probs=self.probs),
        )

    @property
    def probabilities(self) -> np.ndarray:
        """Class probabilities (n, C): as given, else softmax of logits."""
        if self.probs is not None:
            return self.probs
        if self.logits is None:
            raise InputError("this attack needs logits or probs; the outputs hold only loss")
        logits = self.logits
        return self._cached("probs", lambda: signals.softmax(logits))

    @cached_property
    def is_correct(self) -> np.ndarray:
        """Whether each example is classified correctly (n,) bool."""
        scores = self.logits if self.logits is not None else self.probs
        if scores is None:
            raise InputError("correctness needs logits or probs; the outputs hold only loss")
        return signals.is_correct(self.labels, scores)


def _side_array(name: str, value: Any, label_rows: tuple[int, ...]) -> np.ndarray:
    """One ``*_train``/``*_test`` array, checked on its own so errors name it and its rows."""
    array = np.asarray(value)
    side = name.rsplit("_", 1)[1]
    if array.ndim and label_rows and len(array) != label_rows[0]:
        raise InputError(f"{name} has {len(array)} rows but labels_{side} has {label_rows[0]}")
    if name.startswith("labels_"):
        return as_label_array(name, array)
    if array.ndim in (1, 2):
        return as_float_array(name, array, array.ndim)
    return array


def _check_probabilities(name: str, probs: np.ndarray) -> None:
    if (probs < 0).any():
        row = int(np.argmax((probs < 0).any(axis=1)))
        raise InputError(f"{name} must be >= 0; row {row} has a negative value")
    sums = probs.sum(axis=1)
    off = np.abs(sums - 1.0) > PROBABILITY_SUM_TOLERANCE
    if off.any():
        row = int(np.argmax(off))
        raise InputError(
            f"{name} rows must sum to 1 (±{PROBABILITY_SUM_TOLERANCE}); "
            f"{int(off.sum())} row(s) do not, first row {row} sums to {sums[row]:.6g}"
        )


# --- .npz input files ---------------------------------------------------------------------

_TFP_KINDS = ("logits", "probs", "loss", "sample_weight", "labels")
_TFP_KEYS = frozenset(f"{kind}_{side}" for kind in _TFP_KINDS for side in ("train", "test"))
_OUR_KEYS = frozenset({"membership", "labels", "logits", "probs", "loss", "sample_weight"})


def load_outputs_npz(path: str | Path) -> ModelOutputs:
    """Read a ``ModelOutputs`` from an ``.npz`` in TF Privacy's naming or ours, never unpickling.

    TF Privacy's naming: ``labels_train``, ``labels_test`` and ``logits_*``/``probs_*``/``loss_*``
    (each with both ``_train`` and ``_test``), optional ``sample_weight_train/_test``.
    Ours: ``membership``, ``labels`` and ``logits``|``probs``|``loss``, optional ``sample_weight``.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"input file {str(path)!r} does not exist")
    if not zipfile.is_zipfile(path):
        raise InputError(f"input file {str(path)!r} is not an .npz archive")
    arrays: dict[str, np.ndarray] = {}
    try:
        with np.load(path, allow_pickle=False) as archive:
            for key in archive.files:
                try:
                    arrays[key] = archive[key]
                except ValueError as exc:
                    if "allow_pickle" not in str(exc):
                        raise InputError(f"array {key!r} in {path.name} is corrupt: {exc}") from exc
                    raise InputError(
                        f"array {key!r} in {path.name} holds Python objects; memberscope never "
                        "unpickles input files, save plain numeric arrays"
                    ) from exc
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise InputError(f"input file {str(path)!r} is not a readable .npz: {exc}") from exc
    keys = set(arrays)
    if "membership" in keys:
        unknown = keys - _OUR_KEYS
        if unknown:
            raise InputError(
                f"{path.name} has unknown array(s) {sorted(unknown)}; "
                f"expected among {sorted(_OUR_KEYS)}"
            )
        if "labels" not in keys:
            raise InputError(f"{path.name} is missing the array 'labels'")
        return ModelOutputs(**arrays)
    unknown = keys - _TFP_KEYS
    if unknown:
        raise InputError(
            f"{path.name} has unknown array(s) {sorted(unknown)}; expected 'membership' + "
            f"'labels' + one of logits/probs/loss, or TF Privacy's *_train/*_test names"
        )
    for required in ("labels_train", "labels_test"):
        if required not in keys:
            raise InputError(f"{path.name} is missing the array {required!r}")
    if not any(f"{kind}_train" in keys for kind in ("logits", "probs", "loss")):
        raise InputError(
            f"{path.name} has none of logits_train/probs_train/loss_train (with their _test pair)"
        )
    return ModelOutputs.from_train_test(**arrays)
