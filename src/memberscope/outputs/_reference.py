"""``ReferenceOutputs``: per-example signals of m reference models on the audited examples.

Shapes: m reference models, n examples (the same examples, in the same order, as the
target's :class:`~memberscope.outputs.ModelOutputs`), q queries per example (augmented views;
query 0 is the example itself). Arrays are stored 3-d, ``(m, n, q)``; a 2-d ``(m, n)`` input
is read as one query.

This module owns the reference ``.npz`` format: :meth:`ReferenceOutputs.save_npz` writes it
(``schema_version`` plus the arrays of the dataclass), :func:`load_reference_npz` reads it.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from memberscope import signals
from memberscope._io import atomic_write_npz, load_npz
from memberscope._validation import as_bool_array, as_float_array, as_label_array
from memberscope.errors import InputError, SchemaError

REFERENCE_SCHEMA_VERSION = 1
_REQUIRED = ("signal", "true_class_prob", "membership")
_OPTIONAL = ("labels", "target_signal", "target_true_class_prob")


def _as_queries(name: str, value: Any, leading: int) -> np.ndarray:
    """``value`` as float64 with ``leading`` + 1 dims (a trailing query axis added if absent)."""
    array = np.asarray(value)
    if array.ndim == leading:
        array = array[..., None]
    return as_float_array(name, array, leading + 1)


def _check_probabilities(name: str, probs: np.ndarray) -> None:
    bad = (probs < 0) | (probs > 1)
    if bad.any():
        first = np.unravel_index(int(np.argmax(bad)), probs.shape)
        raise InputError(f"{name} must be probabilities in [0, 1]; {int(bad.sum())} value(s) "
                         f"are not (first at index {tuple(int(i) for i in first)})")


@dataclass(frozen=True, eq=False)
class ReferenceOutputs:
    """Outputs of m reference models on the n audited examples, and which they trained on.

    Parameters
    ----------
    signal : (m, n) or (m, n, q) float
        Logit-scaled confidence of the true class, log(p_y / (1 - p_y)) (LiRA's signal).
    true_class_prob : same shape as ``signal``
        Probability p_y of the true class (RMIA's signal), in [0, 1].
    membership : (m, n) bool
        True where example i was in reference model j's training set.
    labels : (n,) int, optional
        Labels of the examples; when given, audits check them against the target's labels
        so misaligned example orders are caught.
    target_signal, target_true_class_prob : (n,) or (n, q) float, optional
        The target model's signals on the same q queries. Without them the target's signals
        come from its ``ModelOutputs`` (one query) and only query 0 of the references is used.

    Examples
    --------
    >>> ref = ReferenceOutputs(signal=[[1.0, -1.0], [0.5, 2.0]],
    ...                        true_class_prob=[[0.7, 0.3], [0.6, 0.9]],
    ...                        membership=[[True, False], [False, True]])
    >>> ref.n_models, ref.n_examples, ref.n_queries
    (2, 2, 1)
    """

    signal: np.ndarray
    true_class_prob: np.ndarray
    membership: np.ndarray
    labels: np.ndarray | None = None
    target_signal: np.ndarray | None = None
    target_true_class_prob: np.ndarray | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        signal = _as_queries("signal", self.signal, 2)
        prob = _as_queries("true_class_prob", self.true_class_prob, 2)
        if prob.shape != signal.shape:
            raise InputError(f"true_class_prob must have the shape of signal {signal.shape}; "
                             f"got {prob.shape}")
        _check_probabilities("true_class_prob", prob)
        membership = as_bool_array("membership", self.membership, ndim=2)
        if membership.shape != signal.shape[:2]:
            raise InputError(f"membership must be (m, n) = {signal.shape[:2]} like signal; "
                             f"got {membership.shape}")
        if signal.shape[0] < 1 or signal.shape[1] < 1:
            raise InputError(f"signal needs at least one model and one example; got shape "
                             f"{signal.shape}")
        set_(self, "signal", signal)
        set_(self, "true_class_prob", prob)
        set_(self, "membership", membership)
        if self.labels is not None:
            labels = as_label_array("labels", self.labels)
            if len(labels) != signal.shape[1]:
                raise InputError(f"labels must have n = {signal.shape[1]} rows like signal; "
                                 f"got {len(labels)}")
            set_(self, "labels", labels)
        self._set_target_arrays(signal.shape[1:])

    def mean_out_signal(self) -> np.ndarray:
        """(n,) each example's mean ``signal`` (query 0) over the reference models that did
        not train on it: how well a model that never saw the example fits it. NaN where
        every reference model trained on it."""
        out = ~self.membership
        counts = out.sum(axis=0)
        totals = np.where(out, self.signal[:, :, 0], 0.0).sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(counts > 0, totals / np.maximum(counts, 1), np.nan)

    def _set_target_arrays(self, shape: tuple[int, ...]) -> None:
        given = {name: getattr(self, name) is not None
                 for name in ("target_signal", "target_true_class_prob")}
        if not any(given.values()):
            return
        if not all(given.values()):
            missing = next(name for name, present in given.items() if not present)
            raise InputError(f"{missing} is missing; give target_signal and "
                             "target_true_class_prob together")
        for name in given:
            array = _as_queries(name, getattr(self, name), 1)
            if array.shape != shape:
                raise InputError(f"{name} must be (n, q) = {shape} like the references; "
                                 f"got {array.shape}")
            if name == "target_true_class_prob":
                _check_probabilities(name, array)
            object.__setattr__(self, name, array)

    # --- shape facts --------------------------------------------------------------------

    @property
    def n_models(self) -> int:
        """m, the number of reference models."""
        return int(self.signal.shape[0])

    @property
    def n_examples(self) -> int:
        """n, the number of examples."""
        return int(self.signal.shape[1])

    @property
    def n_queries(self) -> int:
        """q, the number of queries (augmented views) per example."""
        return int(self.signal.shape[2])

    @property
    def has_target_queries(self) -> bool:
        """Whether the target's signals on all q queries are stored here."""
        return self.target_signal is not None

    def select_models(self, index: Any) -> ReferenceOutputs:
        """The reference outputs of the models ``index`` (int array, slice or (m,) bool)."""
        return ReferenceOutputs(signal=self.signal[index],
                                true_class_prob=self.true_class_prob[index],
                                membership=self.membership[index], labels=self.labels,
                                target_signal=self.target_signal,
                                target_true_class_prob=self.target_true_class_prob)

    # --- files --------------------------------------------------------------------------

    def save_npz(self, path: str | Path) -> Path:
        """Write to ``path`` (.npz, no pickle, atomically) with a ``schema_version``."""
        arrays: dict[str, np.ndarray] = {
            "schema_version": np.asarray(REFERENCE_SCHEMA_VERSION),
            **{name: getattr(self, name) for name in _REQUIRED},
            **{name: getattr(self, name) for name in _OPTIONAL if getattr(self, name) is not None},
        }
        atomic_write_npz(path, arrays)
        return Path(path)

    @classmethod
    def load_npz(cls, path: str | Path) -> ReferenceOutputs:
        """Read a file written by :meth:`save_npz`, never unpickling."""
        return load_reference_npz(path)


def load_reference_npz(path: str | Path) -> ReferenceOutputs:
    """Read a :class:`ReferenceOutputs` ``.npz`` (``allow_pickle=False``), checking its schema."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"reference file {str(path)!r} does not exist")
    if not zipfile.is_zipfile(path):
        raise InputError(f"reference file {str(path)!r} is not an .npz archive")
    try:
        arrays = load_npz(path)
    except ValueError as exc:
        raise InputError(f"{path.name} holds Python objects; reference files are plain "
                         "arrays and are never unpickled") from exc
    version = arrays.pop("schema_version", None)
    if version is None or version.shape != () or int(version) != REFERENCE_SCHEMA_VERSION:
        raise SchemaError(f"{path.name} has schema_version "
                          f"{None if version is None else version.tolist()!r}; this memberscope "
                          f"reads reference files of schema_version {REFERENCE_SCHEMA_VERSION}")
    unknown = set(arrays) - set(_REQUIRED) - set(_OPTIONAL)
    if unknown:
        raise InputError(f"{path.name} has unknown array(s) {sorted(unknown)}; expected among "
                         f"{sorted((*_REQUIRED, *_OPTIONAL))}")
    missing = [name for name in _REQUIRED if name not in arrays]
    if missing:
        raise InputError(f"{path.name} is missing the array(s) {missing}")
    return ReferenceOutputs(**arrays)


def true_class_signals(logits: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Logit-scaled confidence and probability of the true class from logits.

    Parameters
    ----------
    logits : (..., n, C) float
        Any leading axes (models, queries) before the examples.
    labels : (n,) int

    Returns
    -------
    signal, true_class_prob : (..., n) float64
        log(p_y / (1 - p_y)) computed stably from logits, and p_y.
    """
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels)
    flat = logits.reshape(-1, logits.shape[-1])
    flat_labels = np.broadcast_to(labels, logits.shape[:-1]).reshape(-1)
    signal = signals.logit_scaled_confidence(flat_labels, logits=flat)
    prob = np.exp(-signals.cross_entropy_loss(flat_labels, logits=flat))
    return signal.reshape(logits.shape[:-1]), prob.reshape(logits.shape[:-1])
