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
    as_nan_float_array,
    check_same_length,
)
from memberscope.errors import InputError
from memberscope.outputs._inputs import ExampleInputs

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
    labels : (n,) int, optional
        True class of each example, in ``[0, C)``. Needed with logits/probs; with ``loss``
        alone it may be omitted (class slices are then skipped, with the reason).
    logits, probs : (n, C) float, optional
        Pre-softmax outputs, or probabilities whose rows sum to 1. A binary model's single
        output, (n,) or (n, 1), is its logit or probability of class 1 (a sigmoid output, as
        TF Privacy reads it); it is stored as the two columns (n, 2) of classes 0 and 1.
    loss : (n,) float, optional
        Per-example loss (lower = better fit). Computed from logits/probs when not given.
    sample_weight : (n,) float, optional
        Non-negative weights of examples in every metric.
    inputs : (n, ...) numbers or ExampleInputs, optional
        What the model was given for each example (pixels, token ids, features), any
        per-example shape. The audit's blind check scores examples from these alone, to
        tell whether members and non-members differ before any model sees them. Kept as
        given (a view, never a copy).

    Examples
    --------
    >>> import numpy as np
    >>> out = ModelOutputs(membership=[True, False], labels=[0, 1], loss=[0.1, 2.0])
    >>> out.n_members, out.n_nonmembers
    (1, 1)
    """

    membership: np.ndarray
    labels: np.ndarray | None = None
    logits: np.ndarray | None = None
    probs: np.ndarray | None = None
    loss: np.ndarray | None = None
    sample_weight: np.ndarray | None = None
    inputs: ExampleInputs | None = None
    _cache: dict[str, np.ndarray] = field(default_factory=dict, init=False, repr=False,
                                          compare=False)

    def __post_init__(self) -> None:
        if self.logits is None and self.probs is None and self.loss is None:
            raise InputError("ModelOutputs needs at least one of logits, probs or loss")
        set_ = object.__setattr__
        set_(self, "membership", as_bool_array("membership", self.membership))
        logits = None if self.logits is None else class_scores("logits", self.logits)
        probs = None if self.probs is None else class_scores("probs", self.probs)
        if logits is not None and probs is not None and logits.shape != probs.shape:
            raise InputError(
                f"logits and probs must have the same shape; got {logits.shape} and {probs.shape}"
            )
        if probs is not None:
            _check_probabilities("probs", probs)
        num_classes = next((a.shape[1] for a in (logits, probs) if a is not None), None)
        set_(self, "logits", logits)
        set_(self, "probs", probs)
        if self.labels is None:
            if num_classes is not None:
                raise InputError("labels are needed with logits or probs (the loss is computed "
                                 "from the true class); give labels, or give loss alone")
        else:
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
        if self.inputs is not None:
            inputs = ExampleInputs.of(self.inputs)
            if inputs.n != self.n:
                raise InputError(f"{inputs.names} has {inputs.n} rows but membership has "
                                 f"{self.n}; give one input per example")
            set_(self, "inputs", inputs)
        if self.n_members == 0:
            raise InputError("membership has no members (no True value); need at least one")
        if self.n_nonmembers == 0:
            raise InputError("membership has no non-members (no False value); need at least one")

    # --- construction -------------------------------------------------------------------

    @classmethod
    def from_train_test(
        cls,
        *,
        labels_train: Any = None,
        labels_test: Any = None,
        logits_train: Any = None,
        logits_test: Any = None,
        probs_train: Any = None,
        probs_test: Any = None,
        loss_train: Any = None,
        loss_test: Any = None,
        sample_weight_train: Any = None,
        sample_weight_test: Any = None,
        inputs_train: Any = None,
        inputs_test: Any = None,
    ) -> ModelOutputs:
        """Build from TF Privacy's field names: ``*_train`` are members, ``*_test`` non-members.

        As in TF Privacy, labels may be left out when only losses are given, and a binary
        model's (n,) logits or probabilities are read as class 1's. Every array is checked on
        its own, so a message names the array and its row (``labels_test row 3``).
        ``inputs_train`` / ``inputs_test`` (any per-example shape, e.g. (n, 32, 32, 3)
        images) are the model's inputs for the blind check; they are kept as given, not
        joined or copied.
        """
        inputs = _joined_inputs(inputs_train, inputs_test)
        pairs = {
            "logits": (logits_train, logits_test),
            "probs": (probs_train, probs_test),
            "loss": (loss_train, loss_test),
            "sample_weight": (sample_weight_train, sample_weight_test),
            "labels": (labels_train, labels_test),
        }
        for name, (train, test) in pairs.items():
            if (train is None) != (test is None):
                given, missing = (f"{name}_train", f"{name}_test")[:: 1 if test is None else -1]
                raise InputError(f"{given} was given without {missing}; give both or neither")
        sides = {side: _checked_side(side, {name: pair[index] for name, pair in pairs.items()})
                 for index, side in enumerate(("train", "test"))}
        joined: dict[str, np.ndarray | None] = {}
        for name in pairs:
            train_array, test_array = sides["train"][name], sides["test"][name]
            if train_array is None or test_array is None:
                joined[name] = None
                continue
            if train_array.shape[1:] != test_array.shape[1:]:
                raise InputError(
                    f"{name}_train has shape {train_array.shape} but {name}_test has shape "
                    f"{test_array.shape}; they must agree beyond the first dimension")
            joined[name] = np.concatenate([train_array, test_array])
        n_train = _side_rows("train", sides["train"])
        n_test = _side_rows("test", sides["test"])
        if inputs is not None:
            _check_input_rows(inputs, {"train": n_train, "test": n_test}, sides)
        membership = np.arange(n_train + n_test) < n_train
        return cls(membership=membership, inputs=inputs, **joined)

    def subset(self, mask: np.ndarray) -> ModelOutputs:
        """The outputs of the examples where ``mask`` (n,) bool is True."""

        def take(array: np.ndarray | None) -> np.ndarray | None:
            return None if array is None else array[mask]

        return ModelOutputs(
            membership=self.membership[mask],
            labels=take(self.labels),
            logits=take(self.logits),
            probs=take(self.probs),
            loss=take(self.loss),
            sample_weight=take(self.sample_weight),
            inputs=None if self.inputs is None else self.inputs.select(mask),
        )

    # --- shape facts ----------------------------------------------------------------------

    @property
    def n(self) -> int:
        """Number of examples."""
        return len(self.membership)

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
        if self.labels is None:
            raise InputError("the number of classes is unknown: the outputs hold loss without "
                             "labels")
        return int(self.labels.max()) + 1

    @property
    def known_labels(self) -> np.ndarray:
        """The labels (n,) int; raises :class:`InputError` where the outputs hold none."""
        if self.labels is None:
            raise InputError("this needs class labels; the outputs hold loss without labels")
        return self.labels

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
            lambda: signals.cross_entropy_loss(self.known_labels, logits=self.logits,
                                              probs=self.probs),
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
        return signals.is_correct(self.known_labels, scores)


def class_scores(name: str, value: Any) -> np.ndarray:
    """Logits or probabilities as (n, C) float64 with C >= 2, finite, named ``name`` in errors
    (rows of C probabilities are checked by the caller, after comparing shapes).

    A binary model's single output, (n,) or (n, 1), is the logit or probability of class 1
    (sigmoid); it becomes the two columns of classes 0 and 1: [0, z] for a logit z (whose
    softmax is [1 - sigmoid(z), sigmoid(z)]) and [1 - p, p] for a probability p.
    """
    try:
        ndim = np.ndim(value)
    except ValueError:  # a ragged list: let the array check say so
        ndim = 2
    if ndim == 2 and np.shape(value)[1] == 1:
        column = as_float_array(name, value, 2)[:, 0]
    elif ndim == 1:
        column = as_float_array(name, value, 1)
    else:
        array = as_float_array(name, value, 2)
        if array.shape[1] == 0:
            raise InputError(f"{name} has no columns; expected one per class, or one column "
                             "(class 1) for a binary model")
        return array
    if name.split("_")[0] != "probs":
        return np.column_stack([np.zeros_like(column), column])
    outside = (column < 0) | (column > 1)
    if outside.any():
        row = int(np.argmax(outside))
        raise InputError(f"{name} holds a binary model's probability of class 1 and must be in "
                         f"[0, 1]; row {row} is {column[row]:.6g}")
    return np.column_stack([1.0 - column, column])


def _checked_side(side: str, arrays: dict[str, Any]) -> dict[str, np.ndarray | None]:
    """Every ``*_{side}`` array checked on its own, so an error names it and its own row."""
    named = {name: f"{name}_{side}" for name in arrays}
    out: dict[str, np.ndarray | None] = dict.fromkeys(arrays)
    for name in ("logits", "probs"):
        if arrays[name] is not None:
            out[name] = class_scores(named[name], arrays[name])
    logits, probs = out["logits"], out["probs"]
    if logits is not None and probs is not None and logits.shape != probs.shape:
        raise InputError(f"{named['logits']} and {named['probs']} must have the same shape; "
                         f"got {logits.shape} and {probs.shape}")
    if probs is not None:
        _check_probabilities(named["probs"], probs)
    scores = logits if logits is not None else probs
    if arrays["labels"] is not None:
        out["labels"] = as_label_array(named["labels"], arrays["labels"],
                                       None if scores is None else scores.shape[1])
    elif scores is not None:
        given = named["logits"] if logits is not None else named["probs"]
        raise InputError(f"labels_{side} is needed with {given} (the loss is computed from the "
                         "true class); give labels, or give loss alone")
    for name in ("loss", "sample_weight"):
        if arrays[name] is not None:
            out[name] = as_float_array(named[name], arrays[name], 1)
    weights = out["sample_weight"]
    if weights is not None and (weights < 0).any():
        row = int(np.argmax(weights < 0))
        raise InputError(f"{named['sample_weight']} must be >= 0; row {row} is {weights[row]}")
    _check_side_rows(side, out)
    return out


def _check_side_rows(side: str, arrays: dict[str, np.ndarray | None]) -> None:
    """All of one side's arrays have as many rows as its labels (or its first array)."""
    present = {name: a for name, a in arrays.items() if a is not None}
    if not present:
        raise InputError(f"no *_{side} arrays given; give loss_{side}, or logits_{side} or "
                         f"probs_{side} with labels_{side}")
    ruler = "labels" if "labels" in present else next(iter(present))
    for name, array in present.items():
        if len(array) != len(present[ruler]):
            raise InputError(f"{name}_{side} has {len(array)} rows but {ruler}_{side} has "
                             f"{len(present[ruler])}")


def _joined_inputs(train: Any, test: Any) -> ExampleInputs | None:
    """The two sides' inputs laid end to end (members first), each checked under its name."""
    if (train is None) != (test is None):
        given, missing = ("inputs_train", "inputs_test")[:: 1 if test is None else -1]
        raise InputError(f"{given} was given without {missing}; give both or neither")
    if train is None:
        return None
    return ExampleInputs.joined([("inputs_train", train), ("inputs_test", test)])


def _check_input_rows(inputs: ExampleInputs, rows: dict[str, int],
                      sides: dict[str, dict[str, np.ndarray | None]]) -> None:
    """Each side's inputs have one row per example of that side's outputs."""
    for part, side in zip(inputs.parts, ("train", "test"), strict=True):
        if part.n != rows[side]:
            present = [name for name, array in sides[side].items() if array is not None]
            ruler = "labels" if "labels" in present else present[0]
            who = "members" if side == "train" else "non-members"
            raise InputError(f"{part.name} has {part.n} rows but {ruler}_{side} has "
                             f"{rows[side]} (one per {who[:-1]}); give one input per example")


def _side_rows(side: str, arrays: dict[str, np.ndarray | None]) -> int:
    rows = next(len(a) for a in arrays.values() if a is not None)
    if rows == 0:
        who = "members" if side == "train" else "non-members"
        raise InputError(f"the *_{side} arrays have no rows; need at least one of the {who}")
    return rows


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

LOSS_TRACE_KEY = "loss_trace_train"
"""The optional array of the members' training loss per epoch, in either naming."""
_TFP_KINDS = ("logits", "probs", "loss", "sample_weight", "labels", "inputs")
_TFP_KEYS = frozenset({*(f"{kind}_{side}" for kind in _TFP_KINDS for side in ("train", "test")),
                       LOSS_TRACE_KEY})
_OUR_KEYS = frozenset({"membership", "labels", "logits", "probs", "loss", "sample_weight",
                       "inputs", LOSS_TRACE_KEY})


def load_outputs_npz(path: str | Path) -> ModelOutputs:
    """Read a ``ModelOutputs`` from an ``.npz`` in TF Privacy's naming or ours, never unpickling.

    TF Privacy's naming: ``labels_train``, ``labels_test`` and ``logits_*``/``probs_*``/``loss_*``
    (each with both ``_train`` and ``_test``), optional ``sample_weight_train/_test`` and
    ``inputs_train/_test`` (the model's inputs, for the blind check).
    Ours: ``membership``, ``labels`` and ``logits``|``probs``|``loss``, optional
    ``sample_weight`` and ``inputs``.
    Labels may be left out of loss-only files; a binary model's logits or probabilities may be
    one column (class 1), as in TF Privacy. Either naming may add ``loss_trace_train``
    (:func:`load_outputs_and_trace` reads it).
    """
    return load_outputs_and_trace(path)[0]


def load_outputs_and_trace(path: str | Path) -> tuple[ModelOutputs, np.ndarray | None]:
    """Read an audit ``.npz`` (as :func:`load_outputs_npz`) and its optional members' loss
    traces.

    ``loss_trace_train`` is (n_members, n_epochs): each member's training loss per epoch, NaN
    where none was recorded, rows in the order the members appear in the file (the
    ``*_train`` rows, or the rows where ``membership`` is True). What a framework without a
    memberscope monitor can give for :func:`memberscope.risk.trace_risk`.

    Returns
    -------
    (ModelOutputs, (n_members, n_epochs) float64 or None)
    """
    arrays = _read_npz(Path(path))
    trace = arrays.pop(LOSS_TRACE_KEY, None)
    outputs = _outputs_from_arrays(Path(path), arrays)
    if trace is None:
        return outputs, None
    if np.ndim(trace) != 2:
        raise InputError(f"{LOSS_TRACE_KEY} must be 2-dimensional (n_members, n_epochs); got "
                         f"shape {np.shape(trace)}")
    trace = as_nan_float_array(LOSS_TRACE_KEY, trace, 2)
    if len(trace) != outputs.n_members:
        raise InputError(f"{LOSS_TRACE_KEY} has {len(trace)} rows but the file has "
                         f"{outputs.n_members} members; give one row per member, in their "
                         "order in the file")
    return outputs, trace


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    """Every array of the file at ``path``, refusing pickled objects, with clear errors."""
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
    return arrays


def _outputs_from_arrays(path: Path, arrays: dict[str, np.ndarray]) -> ModelOutputs:
    """The ``ModelOutputs`` of a file's arrays (without ``loss_trace_train``), in either
    naming."""
    keys = set(arrays)
    if "membership" in keys:
        unknown = keys - _OUR_KEYS
        if unknown:
            raise InputError(
                f"{path.name} has unknown array(s) {sorted(unknown)}; "
                f"expected among {sorted(_OUR_KEYS)}"
            )
        if "labels" not in keys and not {"logits", "probs"}.isdisjoint(keys):
            raise InputError(f"{path.name} is missing the array 'labels' (needed with logits "
                             "or probs; only a loss-only file may leave it out)")
        inputs = arrays.pop("inputs", None)
        return ModelOutputs(**arrays,
                            inputs=None if inputs is None else ExampleInputs.of(inputs))
    unknown = keys - _TFP_KEYS
    if unknown:
        raise InputError(
            f"{path.name} has unknown array(s) {sorted(unknown)}; expected 'membership' + "
            f"'labels' + one of logits/probs/loss, or TF Privacy's *_train/*_test names"
        )
    if not any(f"{kind}_train" in keys for kind in ("logits", "probs", "loss")):
        raise InputError(
            f"{path.name} has none of logits_train/probs_train/loss_train (with their _test pair)"
        )
    loss_only = not any(f"{kind}_{side}" in keys for kind in ("logits", "probs")
                        for side in ("train", "test"))
    for required in ("labels_train", "labels_test"):
        if required not in keys and not loss_only:
            raise InputError(f"{path.name} is missing the array {required!r} (needed with "
                             "logits or probs; only loss-only input may leave labels out)")
    return ModelOutputs.from_train_test(**arrays)
