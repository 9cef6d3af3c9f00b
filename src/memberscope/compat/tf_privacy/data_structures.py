"""TF Privacy's membership-inference data structures, with memberscope's numbers behind them.

Names, fields, methods and string forms follow TF Privacy's ``data_structures`` module, so
code and tests written for it run with the import prefix changed. What differs on purpose
(``docs/migrating-from-tf-privacy.md``):

- metrics keep memberscope's definitions: a result of ``run_attacks`` carries its memberscope
  :class:`~memberscope.AuditRow` (``SingleAttackResult.row``, ``RocCurve.row``) and reports
  its AUC, one-sided advantage, PPV lower bound and valid ε bound. A :class:`RocCurve` built
  from rates alone (no counts) reports the area, the one-sided advantage and the plug-in
  precision of its points;
- losses are exact (``utils``);
- results are saved as JSON (``AttackResults.save``), never pickled;
- (slice, attack) pairs that could not be evaluated are kept in ``AttackResults.skipped``.

Like TF Privacy's, :class:`AttackInputData` is a plain mutable record: it is checked by
``validate()``, which ``run_attacks`` calls, not when it is built.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Iterable, Mapping, MutableSequence, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from memberscope import signals
from memberscope._io import atomic_write_json, json_value
from memberscope._validation import as_float_array, as_label_array
from memberscope.compat.tf_privacy.epsilon_lower_bound import BoundMethod
from memberscope.compat.tf_privacy.utils import (
    LossFunction,
    LossFunctionCallable,
    format_number_list,
    get_loss,
)
from memberscope.errors import InputError, SchemaError, require
from memberscope.metric_definitions import ADVANTAGE, AUC, EPSILON_CONFIDENT, PPV
from memberscope.results import AuditRow, ResultsCollection, SkippedEntry

if TYPE_CHECKING:
    import pandas

    from memberscope.results import AuditResult

ENTIRE_DATASET_SLICE_STR = "Entire dataset"
#: How many ε values per result the summary and the data frame show (TF Privacy's top k).
EPSILON_K = 5
#: 1 − confidence of the ε lower bound of ``run_attacks`` results.
EPSILON_ALPHA = 0.05
#: The bound ``run_attacks`` results carry (see :mod:`.epsilon_lower_bound`).
EPSILON_METHODS = (BoundMethod.HELD_OUT_CLOPPER_PEARSON,)
#: Version of the JSON files ``AttackResults.save`` writes.
SCHEMA_VERSION = 1
_FORMAT = "memberscope.compat.tf_privacy.AttackResults"


# --- slices ---------------------------------------------------------------------------------


class SlicingFeature(enum.Enum):
    """What a slice selects on."""

    CLASS = "class"
    PERCENTILE = "percentile"
    CORRECTLY_CLASSIFIED = "correctly_classified"
    CUSTOM = "custom"


@dataclass
class SingleSliceSpec:
    """One slice: ``feature`` None is the entire dataset; else a feature and its ``value``:
    a class, a ``(low, high)`` loss-percentile range, True/False, or for ``CUSTOM`` the tuple
    ``(train_groups, test_groups, group_value, slice_name)``."""

    feature: SlicingFeature | None = None
    value: Any = None

    @property
    def entire_dataset(self) -> bool:
        """Whether this slice is the whole dataset."""
        return self.feature is None

    def __str__(self) -> str:
        if self.feature is None:
            return ENTIRE_DATASET_SLICE_STR
        if self.feature is SlicingFeature.PERCENTILE:
            low, high = self.value
            return f"Loss percentiles: {int(low)}-{int(high)}"
        if self.feature is SlicingFeature.CUSTOM:
            train_groups, test_groups, group, name = self.value
            if name is not None:
                return f"Custom indices: slice_name = {name}"
            return (f"Custom indices: train = {train_groups}, test = {test_groups}, "
                    f"group_value = {group}")
        return f"{self.feature.name}={self.value}"


@dataclass
class SlicingSpec:
    """Which slices to attack besides (or instead of) the entire dataset.

    Parameters
    ----------
    entire_dataset : bool
        One slice with every example.
    by_class : bool, int or iterable of int
        True: one slice per class; an int: that class only; an iterable: those classes.
    by_percentiles : bool
        Ten slices by loss percentile (0-10, …, 90-100), members and non-members pooled.
    by_classification_correctness : bool
        One slice of correctly and one of wrongly classified examples.
    all_custom_train_indices, all_custom_test_indices : sequences of (n_train,), (n_test,)
        Pairs of group vectors; each group value present on both sides is one slice.
    custom_slices_names : {group value: name}, optional
        Names for the custom slices.
    """

    entire_dataset: bool = True
    by_class: bool | int | Iterable[int] = False
    by_percentiles: bool = False
    by_classification_correctness: bool = False
    all_custom_train_indices: Sequence[np.ndarray] | None = None
    all_custom_test_indices: Sequence[np.ndarray] | None = None
    custom_slices_names: Mapping[Any, str] | None = None

    def __post_init__(self) -> None:
        for name in ("entire_dataset", "by_percentiles", "by_classification_correctness"):
            if not isinstance(getattr(self, name), bool | np.bool_):
                raise InputError(f"SlicingSpec.{name} must be True or False; "
                                 f"got {getattr(self, name)!r}")
        self.class_selection()  # checks by_class
        train, test = self.all_custom_train_indices, self.all_custom_test_indices
        if bool(train) != bool(test):
            raise InputError("SlicingSpec.all_custom_train_indices and "
                             "all_custom_test_indices must be given together")
        if train and test and len(train) != len(test):
            raise InputError(f"SlicingSpec.all_custom_train_indices has {len(train)} group "
                             f"vectors but all_custom_test_indices has {len(test)}")

    def class_selection(self) -> bool | tuple[int, ...]:
        """``by_class`` as True/False (every class or none) or the tuple of classes."""
        by_class = self.by_class
        if isinstance(by_class, bool | np.bool_):
            return bool(by_class)
        if isinstance(by_class, int | np.integer):
            if by_class < 0:
                raise InputError(f"SlicingSpec.by_class must be >= 0; got {by_class}")
            return (int(by_class),)
        if isinstance(by_class, Iterable) and not isinstance(by_class, str):
            classes = tuple(by_class)
            if not all(isinstance(c, int | np.integer) and not isinstance(c, bool | np.bool_)
                       for c in classes):
                raise InputError(f"SlicingSpec.by_class must list integer classes; "
                                 f"got {classes!r}")
            return tuple(int(c) for c in classes)
        raise InputError(f"SlicingSpec.by_class must be a bool, an int or integers; "
                         f"got {by_class!r}")

    def __str__(self) -> str:
        parts = ["SlicingSpec("]
        if self.entire_dataset:
            parts.append(" Entire dataset,")
        selection = self.class_selection()
        if selection is True:
            parts.append(" By classes,")
        elif selection:
            parts.append(f" Into classes {self.by_class},")
        if self.by_percentiles:
            parts.append(" By percentiles,")
        if self.by_classification_correctness:
            parts.append(" By classification correctness,")
        if self.all_custom_train_indices:
            parts.append(" By custom indices,")
        return "\n".join([*parts, ")"])


# --- attacks and metrics ------------------------------------------------------------------


class AttackType(enum.Enum):
    """TF Privacy's attack names; ``memberscope_name`` gives the registered attack."""

    LOGISTIC_REGRESSION = "lr"
    MULTI_LAYERED_PERCEPTRON = "mlp"
    RANDOM_FOREST = "rf"
    K_NEAREST_NEIGHBORS = "knn"
    THRESHOLD_ATTACK = "threshold"
    THRESHOLD_ENTROPY_ATTACK = "threshold-entropy"

    @property
    def is_trained_attack(self) -> bool:
        """Whether the attack fits a classifier (per slice, cross-validated)."""
        return self not in (AttackType.THRESHOLD_ATTACK, AttackType.THRESHOLD_ENTROPY_ATTACK)

    def memberscope_name(self, has_labels: bool = True) -> str:
        """The memberscope attack computing what TF Privacy computes: its entropy attack is
        Song & Mittal's modified entropy when labels are given, plain entropy otherwise."""
        if self is AttackType.THRESHOLD_ENTROPY_ATTACK:
            return "threshold_mentr" if has_labels else "threshold_entropy"
        return self.value

    @classmethod
    def from_memberscope_name(cls, name: str) -> AttackType:
        """Inverse of :meth:`memberscope_name`; other attacks have no TF Privacy name."""
        if name in ("threshold_mentr", "threshold_entropy"):
            return cls.THRESHOLD_ENTROPY_ATTACK
        try:
            return cls(name)
        except ValueError:
            raise InputError(f"attack {name!r} has no TF Privacy AttackType; those are "
                             f"{', '.join(a.name for a in cls)}") from None

    def __str__(self) -> str:
        return self.name


class PrivacyMetric(enum.Enum):
    """Metrics the privacy report can plot; ``metric`` is memberscope's row metric."""

    AUC = "AUC"
    ATTACKER_ADVANTAGE = "Attacker advantage"
    PPV = "Positive predictive value"
    EPSILON_LOWER_BOUND = "Epsilon lower bound"

    @property
    def metric(self) -> str:
        """The :meth:`memberscope.AuditRow.metric` name (the ε bound is the confident one)."""
        return {"AUC": AUC, "Attacker advantage": ADVANTAGE, "Positive predictive value": PPV,
                "Epsilon lower bound": EPSILON_CONFIDENT}[self.value].key

    @classmethod
    def parse(cls, value: PrivacyMetric | str, where: str = "privacy_metric") -> PrivacyMetric:
        """A metric, or its value or name as a string (``"AUC"``, ``"ATTACKER_ADVANTAGE"``)."""
        if isinstance(value, cls):
            return value
        if isinstance(value, str):
            for metric in cls:
                if value in (metric.value, metric.name):
                    return metric
        raise InputError(f"{where} must be a PrivacyMetric or one of "
                         f"{', '.join(repr(m.value) for m in cls)}; got {value!r}")

    def value_of(self, result: SingleAttackResult) -> float:
        """This metric of ``result`` (the ε bound: the mean of its largest bounds, as TF
        Privacy ranks results)."""
        if self is PrivacyMetric.AUC:
            return result.get_auc()
        if self is PrivacyMetric.ATTACKER_ADVANTAGE:
            return result.get_attacker_advantage()
        if self is PrivacyMetric.PPV:
            return result.get_ppv()
        bounds = result.get_epsilon_lower_bound()
        return float(np.mean(bounds)) if len(bounds) else math.nan

    def __str__(self) -> str:
        return self.value


# --- inputs -------------------------------------------------------------------------------

_PAIRS = ("loss", "entropy", "logits", "probs", "labels", "sample_weight")


@dataclass(eq=False)
class AttackInputData:
    """Per-example outputs of the attacked model: ``*_train`` on its training data (members),
    ``*_test`` on held-out data (non-members).

    Give labels with logits or probs ((n, C), or (n,) for one output per example; multi-hot
    (n, C) labels for multi-label data), or per-example losses, or prediction entropies.
    ``sample_weight_*`` (n,) multiplies each derived loss, as in TF Privacy; memberscope's own
    :meth:`memberscope.ModelOutputs.from_train_test` instead weights each example in the
    metrics. ``loss_function`` is a :class:`LossFunction`, its name, or a callable
    ``(labels, predictions, sample_weight)``; ``loss_function_using_logits`` picks which
    predictions it gets (default: logits when given).

    ``inputs_train`` / ``inputs_test`` are memberscope's addition (TF Privacy has neither):
    the model's inputs, any per-example shape, held without copying. With them the audit's
    split guard checks whether members and non-members differ before the model sees them
    (the ``blind`` attack); its verdict is ``AttackResults.audit_result.split_guard``.
    """

    logits_train: Any = None
    logits_test: Any = None
    probs_train: Any = None
    probs_test: Any = None
    labels_train: Any = None
    labels_test: Any = None
    sample_weight_train: Any = None
    sample_weight_test: Any = None
    loss_train: Any = None
    loss_test: Any = None
    entropy_train: Any = None
    entropy_test: Any = None
    loss_function: LossFunctionCallable | LossFunction | str = LossFunction.CROSS_ENTROPY
    loss_function_using_logits: bool | None = None
    multilabel_data: bool | None = None
    force_multilabel_data: bool = False
    inputs_train: Any = None
    inputs_test: Any = None

    def __post_init__(self) -> None:
        self.is_multilabel_data()

    @property
    def has_labels(self) -> bool:
        """Whether true labels were given."""
        return self.labels_train is not None and self.labels_test is not None

    @property
    def num_classes(self) -> int:
        """Number of classes: 1 + the largest label, or the columns of multi-hot labels."""
        if not self.has_labels:
            raise InputError("the number of classes needs labels_train and labels_test")
        if self.is_multilabel_data():
            return int(np.shape(self.labels_train)[1])
        return int(max(np.max(self.labels_train), np.max(self.labels_test))) + 1

    @property
    def logits_or_probs_train(self) -> np.ndarray | None:
        """Training-set logits when given, else probabilities."""
        return self.logits_train if self.logits_train is not None else self.probs_train

    @property
    def logits_or_probs_test(self) -> np.ndarray | None:
        """Test-set logits when given, else probabilities."""
        return self.logits_test if self.logits_test is not None else self.probs_test

    def _loss(self, side: str) -> np.ndarray | None:
        return get_loss(getattr(self, f"loss_{side}"), getattr(self, f"labels_{side}"),
                        getattr(self, f"logits_{side}"), getattr(self, f"probs_{side}"),
                        self.loss_function, self.loss_function_using_logits,
                        self.is_multilabel_data(), getattr(self, f"sample_weight_{side}"))

    def get_loss_train(self) -> np.ndarray | None:
        """Per-example loss of the members, (n_train,) or (n_train, C) for multi-label data:
        as given, else derived exactly (``utils.get_loss``); None without labels."""
        return self._loss("train")

    def get_loss_test(self) -> np.ndarray | None:
        """Per-example loss of the non-members, like :meth:`get_loss_train`."""
        return self._loss("test")

    def _entropy(self, side: str) -> np.ndarray:
        if self.is_multilabel_data():
            raise InputError("the prediction entropy is not defined for multi-label data")
        given = getattr(self, f"entropy_{side}")
        if given is not None:
            return np.asarray(given)
        logits, probs = getattr(self, f"logits_{side}"), getattr(self, f"probs_{side}")
        if logits is None and probs is None:
            raise InputError(f"the entropy of the {side} set needs entropy_{side}, "
                             f"logits_{side} or probs_{side}")
        distribution = (signals.softmax(as_float_array(f"logits_{side}", logits, 2))
                        if logits is not None else as_float_array(f"probs_{side}", probs, 2))
        labels = getattr(self, f"labels_{side}")
        if labels is None:
            return signals.entropy(distribution)
        return signals.modified_entropy(distribution, as_label_array(f"labels_{side}", labels))

    def get_entropy_train(self) -> np.ndarray:
        """Prediction entropy of the members (n_train,): as given, else Song & Mittal's
        modified entropy with labels, the Shannon entropy without."""
        return self._entropy("train")

    def get_entropy_test(self) -> np.ndarray:
        """Prediction entropy of the non-members (n_test,), like :meth:`get_entropy_train`."""
        return self._entropy("test")

    def _shape(self, side: str) -> tuple[int, ...]:
        for name in ("loss", "entropy", "logits", "probs", "labels"):
            value = getattr(self, f"{name}_{side}")
            if value is not None:
                return tuple(np.shape(value))
        raise InputError(f"no *_{side} array is given")

    def get_train_shape(self) -> tuple[int, ...]:
        """Shape of the members' loss, entropy, logits or probs (the first given)."""
        return self._shape("train")

    def get_test_shape(self) -> tuple[int, ...]:
        """Shape of the non-members' loss, entropy, logits or probs (the first given)."""
        return self._shape("test")

    def get_train_size(self) -> int:
        """Number of training examples (members)."""
        return self.get_train_shape()[0]

    def get_test_size(self) -> int:
        """Number of test examples (non-members)."""
        return self.get_test_shape()[0]

    def has_nonnull_sample_weights(self) -> bool:
        """Whether both sides have sample weights."""
        return self.sample_weight_train is not None and self.sample_weight_test is not None

    def is_multihot_labels(self, arr: np.ndarray | None, arr_name: str) -> bool:
        """Whether ``arr`` is (n, C) with some row holding more than one positive class."""
        if arr is None or np.ndim(arr) == 1:
            return False
        if np.ndim(arr) != 2:
            raise InputError(f"{arr_name} must be (n,) or (n, C) to tell whether it is "
                             f"multi-hot; got shape {np.shape(arr)}")
        sums = np.sum(arr, axis=1)
        return not bool(((sums == 0) | (sums == 1)).all())

    def is_multilabel_data(self) -> bool:
        """Whether this is multi-label data: 2-D predictions and multi-hot 2-D labels on both
        sides (or ``force_multilabel_data``). The answer is kept in ``multilabel_data``."""
        if self.force_multilabel_data:
            self.multilabel_data = True
        if self.multilabel_data is not None:
            return bool(self.multilabel_data)
        predictions: tuple[Any, Any] = (self.logits_or_probs_train, self.logits_or_probs_test)
        if any(p is None for p in predictions) or not self.has_labels:
            self.multilabel_data = False
            return False
        train_dims, test_dims = np.ndim(predictions[0]), np.ndim(predictions[1])
        label_dims = np.ndim(self.labels_train), np.ndim(self.labels_test)
        if train_dims != test_dims or train_dims not in (1, 2):
            raise InputError(f"train and test predictions must both be (n,) or (n, C); got "
                             f"shapes {np.shape(predictions[0])} and {np.shape(predictions[1])}")
        if label_dims[0] != label_dims[1] or label_dims[0] not in (1, 2):
            raise InputError(f"labels_train and labels_test must both be (n,) or (n, C); got "
                             f"shapes {np.shape(self.labels_train)} and "
                             f"{np.shape(self.labels_test)}")
        self.multilabel_data = bool(
            train_dims == 2 and label_dims[0] == 2
            and np.shape(predictions[0])[1] == np.shape(predictions[1])[1]
            and self.is_multihot_labels(self.labels_train, "labels_train")
            and self.is_multihot_labels(self.labels_test, "labels_test"))
        return self.multilabel_data

    def validate(self) -> None:
        """Check the inputs (``run_attacks`` calls this); raises :class:`InputError` (a
        ``ValueError``) naming the array and the problem."""
        for name in _PAIRS:
            train, test = getattr(self, f"{name}_train"), getattr(self, f"{name}_test")
            if (train is None) != (test is None):
                given, missing = ((f"{name}_train", f"{name}_test") if test is None
                                  else (f"{name}_test", f"{name}_train"))
                raise InputError(f"{given} was given without {missing}; give both or neither")
        if self.logits_train is not None and self.probs_train is not None:
            raise InputError("give logits or probs, not both (the loss and the attacks would "
                             "not know which to use)")
        if not any(getattr(self, f"{name}_train") is not None
                   for name in ("labels", "loss", "logits", "probs", "entropy")):
            raise InputError("no input: give labels with logits or probs, or loss, or entropy "
                             "(each as *_train and *_test)")
        multilabel = self.is_multilabel_data()
        for side in ("train", "test"):
            _check_side(self, side, multilabel)
        _check_inputs(self)
        for name in ("logits", "probs"):
            train, test = getattr(self, f"{name}_train"), getattr(self, f"{name}_test")
            if train is not None and np.shape(train)[1:] != np.shape(test)[1:]:
                raise InputError(f"{name}_train has shape {np.shape(train)} but {name}_test has "
                                 f"shape {np.shape(test)}; they must agree beyond the first "
                                 "dimension")

    def __str__(self) -> str:
        shapes = [f" {name}_{side} with shape: {np.shape(value)},"
                  for name in _PAIRS for side in ("train", "test")
                  if (value := getattr(self, f"{name}_{side}")) is not None]
        return "\n".join(["AttackInputData(", *shapes, ")"])


def _check_inputs(data: AttackInputData) -> None:
    """``inputs_train``/``inputs_test``: both or neither, one row per example of each side
    (their values are checked where the audit reads them, without a copy here)."""
    train, test = data.inputs_train, data.inputs_test
    if train is None and test is None:
        return
    if train is None or test is None:
        given, missing = (("inputs_train", "inputs_test") if test is None
                          else ("inputs_test", "inputs_train"))
        raise InputError(f"{given} was given without {missing}; give both or neither")
    for side, value in (("train", train), ("test", test)):
        expected = data.get_train_size() if side == "train" else data.get_test_size()
        if len(value) != expected:
            raise InputError(f"inputs_{side} has {len(value)} rows but the {side} outputs have "
                             f"{expected}; give one input per example")


def _check_side(data: AttackInputData, side: str, multilabel: bool) -> None:
    """One side's arrays: dimensions, finite values, labels in range, equal row counts."""
    arrays = {name: getattr(data, f"{name}_{side}") for name in _PAIRS}
    rows = {}
    per_example = ("loss", "entropy", "labels") if not multilabel else ()
    for name, value in arrays.items():
        if value is None:
            continue
        full = f"{name}_{side}"
        if name == "sample_weight":
            if np.ndim(value) != 1 and np.shape(value)[1:] != (1,):
                raise InputError(f"{full} should be a one dimensional numpy array (or one "
                                 f"column): one weight per example; got shape "
                                 f"{np.shape(value)}")
            value = np.reshape(value, -1)
        elif name in per_example:
            if np.ndim(value) != 1:
                raise InputError(f"{full} should be a one dimensional numpy array: one value "
                                 f"per example; got shape {np.shape(value)}")
        elif multilabel and name in ("loss", "entropy", "labels") and np.ndim(value) != 2:
            raise InputError(f"{full} should be a two dimensional numpy array (n, C) for "
                             f"multi-label data; got shape {np.shape(value)}")
        elif name in ("logits", "probs") and np.ndim(value) not in (1, 2):
            raise InputError(f"{full} should be (n, C), or (n,) for one output per example; "
                             f"got shape {np.shape(value)}")
        if name == "labels":
            if multilabel:
                if not np.isin(value, (0, 1)).all():
                    raise InputError(f"{full} must be multi-hot (0 or 1) for multi-label data")
            else:
                columns = data.logits_or_probs_train
                classes = (None if columns is None or np.ndim(columns) == 1
                           else np.shape(columns)[1])
                as_label_array(full, value, classes if classes and classes > 1 else None)
        else:
            as_float_array(full, value, np.ndim(value) or 1)
        rows[full] = len(value)
    if len(set(rows.values())) > 1:
        listed = ", ".join(f"{name} has {count}" for name, count in rows.items())
        raise InputError(f"the {side} arrays disagree on the number of examples: {listed}")


# --- curves and bounds --------------------------------------------------------------------


@dataclass
class RocCurve:
    """An attack's ROC curve: TPR and FPR (k,) at ``thresholds`` (k,), and the ratio of
    non-members to members (``test_train_ratio``, r).

    A curve from ``run_attacks`` carries its memberscope ``row`` and reports the row's
    metrics, computed on the full curve (the points kept here are thinned to at most 400
    for plotting). A curve built from rates alone reports the area under its points, the
    one-sided advantage max(TPR − FPR) and the plug-in precision max TPR / (TPR + r·FPR):
    without counts no confidence bound can be computed.
    """

    thresholds: np.ndarray
    tpr: np.ndarray
    fpr: np.ndarray
    test_train_ratio: float
    row: AuditRow | None = field(default=None, repr=False, compare=False)

    def get_auc(self) -> float:
        """Area under the curve."""
        if self.row is not None:
            return self.row.auc
        from sklearn.metrics import auc

        return float(auc(np.asarray(self.fpr), np.asarray(self.tpr)))

    def get_attacker_advantage(self) -> float:
        """max(TPR − FPR) over the thresholds, ≥ 0: an attack no better than chance has 0."""
        if self.row is not None:
            return self.row.advantage
        return float(max(0.0, np.max(np.asarray(self.tpr) - np.asarray(self.fpr))))

    def get_ppv(self) -> float:
        """Positive predictive value: memberscope's 99 % lower bound for a curve from
        ``run_attacks``, the plug-in precision of the points otherwise."""
        if self.row is not None:
            return self.row.ppv
        tpr, fpr = np.asarray(self.tpr, float), np.asarray(self.fpr, float)
        predicted = tpr + self.test_train_ratio * fpr
        defined = predicted > 0
        if not defined.any():
            return 1.0 / (1.0 + self.test_train_ratio)
        return float(np.max(tpr[defined] / predicted[defined]))

    def __str__(self) -> str:
        return "\n".join(["RocCurve(", f"  AUC: {self.get_auc():.2f}",
                          f"  Attacker advantage: {self.get_attacker_advantage():.2f}",
                          f"  Positive predictive value: {self.get_ppv():.2f}", ")"])


@dataclass
class EpsilonLowerBoundValue:
    """Empirical ε lower bounds by method: ``{BoundMethod: (k,) array}``."""

    bounds: Mapping[BoundMethod, np.ndarray]

    def get_max_epsilon_bounds(self) -> np.ndarray:
        """The non-empty bound array with the largest mean (empty when there is none)."""
        arrays = [np.asarray(b) for b in self.bounds.values() if np.size(b)]
        if not arrays:
            return np.array([])
        return arrays[int(np.argmax([a.mean() for a in arrays]))]

    def __str__(self) -> str:
        return f"EpsilonLowerBoundValue([{format_number_list(self.get_max_epsilon_bounds())}])"


class DataSize(NamedTuple):
    """Members (``ntrain``) and non-members (``ntest``) in a slice."""

    ntrain: int
    ntest: int


@dataclass
class SingleAttackResult:
    """One attack on one slice.

    Results of ``run_attacks`` carry memberscope's ``row`` (TPR at low FPR, the p-value, both
    ε values, …) and report its metrics; their ε bound is one valid (1−α) value. Membership
    scores (higher = member) are kept for the entire-dataset slice; ``train_indices`` and
    ``test_indices`` for the others when ``run_attacks(..., return_slice_indices=True)``.
    """

    slice_spec: SingleSliceSpec
    data_size: DataSize
    attack_type: AttackType
    roc_curve: RocCurve
    epsilon_lower_bound_value: EpsilonLowerBoundValue
    membership_scores_train: np.ndarray | None = None
    membership_scores_test: np.ndarray | None = None
    train_indices: np.ndarray | None = None
    test_indices: np.ndarray | None = None
    row: AuditRow | None = field(default=None, repr=False, compare=False)

    def get_auc(self) -> float:
        """Area under the ROC curve."""
        return self.roc_curve.get_auc()

    def get_attacker_advantage(self) -> float:
        """One-sided advantage max(TPR − FPR) (see the migration notes)."""
        return self.roc_curve.get_attacker_advantage()

    def get_ppv(self) -> float:
        """Positive predictive value (see :meth:`RocCurve.get_ppv`)."""
        if self.data_size.ntrain == 0:
            raise InputError("the PPV needs members; this slice has none (ntrain=0)")
        return self.roc_curve.get_ppv()

    def get_epsilon_lower_bound(self) -> np.ndarray:
        """The ε lower bounds (k,) of the best method: for ``run_attacks`` results one value,
        memberscope's valid (1−α) bound."""
        return self.epsilon_lower_bound_value.get_max_epsilon_bounds()

    def __str__(self) -> str:
        return "\n".join([
            "SingleAttackResult(",
            f"  SliceSpec: {self.slice_spec}",
            f"  DataSize: (ntrain={self.data_size.ntrain}, ntest={self.data_size.ntest})",
            f"  AttackType: {self.attack_type}",
            f"  AUC: {self.get_auc():.2f}",
            f"  Attacker advantage: {self.get_attacker_advantage():.2f}",
            f"  Positive Predictive Value: {self.get_ppv():.2f}",
            f"  Epsilon lower bound: {format_number_list(self.get_epsilon_lower_bound())}",
            ")"])


@dataclass
class SingleMembershipProbabilityResult:
    """Per-example membership probabilities of one slice (the privacy risk score of Song &
    Mittal), and attacks that threshold them."""

    slice_spec: SingleSliceSpec
    train_membership_probs: np.ndarray
    test_membership_probs: np.ndarray

    def attack_with_varied_thresholds(
            self, threshold_list: Iterable[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Predict "member" where the probability is ≥ each threshold (thresholds above every
        probability are left out): the thresholds kept, the precision TP / (TP + FP) and the
        recall TP / n_train at each, all (k,)."""
        train = np.asarray(self.train_membership_probs, float)
        test = np.asarray(self.test_membership_probs, float)
        top = max(train.max(), test.max())
        kept = np.array([t for t in threshold_list if t <= top], dtype=float)
        true_positives = (train[None, :] >= kept[:, None]).sum(axis=1)
        false_positives = (test[None, :] >= kept[:, None]).sum(axis=1)
        precision = true_positives / (true_positives + false_positives)
        return kept, precision, true_positives / len(train)

    def collect_results(self, threshold_list: Iterable[float],
                        return_roc_results: bool = True) -> list[str]:
        """Summary lines: precision and recall at each threshold; with
        ``return_roc_results``, memberscope's AUC, advantage and valid ε bound of the
        probabilities as attack scores."""
        thresholds, precision, recall = self.attack_with_varied_thresholds(threshold_list)
        lines = [f'\nMembership probability analysis over slice: "{self.slice_spec}"']
        lines += [f"  with {t:.4f} as the threshold on membership probability, the "
                  f"precision-recall pair is ({p:.4f}, {r:.4f})"
                  for t, p, r in zip(thresholds, precision, recall, strict=True)]
        if return_roc_results:
            from memberscope.metrics import attack_metrics

            scores = np.concatenate([self.train_membership_probs, self.test_membership_probs])
            membership = np.arange(len(scores)) < len(self.train_membership_probs)
            metrics = attack_metrics(scores, membership, fpr_targets=(), alpha=EPSILON_ALPHA)
            lines += [
                f"  thresholding on membership probability achieved an AUC of {metrics.auc:.2f}",
                "  thresholding on membership probability achieved an advantage of "
                f"{metrics.advantage:.2f}",
                "  thresholding on membership probability achieved a valid epsilon lower "
                f"bound of {metrics.epsilon.confident:.4f}"]
        return lines


@dataclass
class MembershipProbabilityResults:
    """Membership probability results of several slices."""

    membership_prob_results: Iterable[SingleMembershipProbabilityResult]

    def summary(self, threshold_list: Iterable[float]) -> str:
        """Every slice's :meth:`SingleMembershipProbabilityResult.collect_results`."""
        thresholds = list(threshold_list)
        return "\n".join(line for result in self.membership_prob_results
                         for line in result.collect_results(thresholds))


# --- metadata and results -----------------------------------------------------------------


@dataclass
class PrivacyReportMetadata:
    """What the privacy report plots against: the model's accuracy, loss, label and epoch.

    ``run_attacks`` fills accuracies and mean losses left as None from the input data.
    """

    accuracy_train: float | None = None
    accuracy_test: float | None = None
    loss_train: float | None = None
    loss_test: float | None = None
    model_variant_label: str = "Default model variant"
    epoch_num: int | None = None

    def to_metadata(self) -> dict[str, Any]:
        """memberscope row metadata: ``model``, ``epoch``, ``train_accuracy``,
        ``test_accuracy``, ``train_loss``, ``test_loss`` (those that are set)."""
        values = {"model": self.model_variant_label, "epoch": self.epoch_num,
                  "train_accuracy": self.accuracy_train, "test_accuracy": self.accuracy_test,
                  "train_loss": self.loss_train, "test_loss": self.loss_test}
        return {key: value.item() if isinstance(value, np.generic) else value
                for key, value in values.items() if value is not None}


class AttackResultsDFColumns(enum.Enum):
    """Columns of :meth:`AttackResults.calculate_pd_dataframe` besides the metrics."""

    SLICE_FEATURE = "slice feature"
    SLICE_VALUE = "slice value"
    DATA_SIZE_TRAIN = "train size"
    DATA_SIZE_TEST = "test size"
    ATTACK_TYPE = "attack type"

    def __str__(self) -> str:
        return self.value


_DATAFRAME_METRICS = (PrivacyMetric.ATTACKER_ADVANTAGE, PrivacyMetric.PPV, PrivacyMetric.AUC)


@dataclass
class AttackResults:
    """Every attack result of one ``run_attacks`` call.

    ``skipped`` lists the (slice, attack) pairs that could not be evaluated, with the reason;
    ``audit_result`` is the memberscope audit behind them (``memberscope.save_result``
    writes it; ``memberscope.report`` draws it).
    """

    single_attack_results: MutableSequence[SingleAttackResult]
    privacy_report_metadata: PrivacyReportMetadata | None = None
    skipped: tuple[SkippedEntry, ...] = ()
    audit_result: AuditResult | None = field(default=None, repr=False, compare=False)

    def _max_by(self, metric: PrivacyMetric) -> SingleAttackResult | None:
        """The first result with the largest ``metric`` (NaN never wins); None when empty."""
        results = list(self.single_attack_results)
        if not results:
            return None
        values = [metric.value_of(r) for r in results]
        finite = [v if not math.isnan(v) else -math.inf for v in values]
        return results[int(np.argmax(finite))]

    def get_result_with_max_auc(self) -> SingleAttackResult | None:
        """The result with the highest AUC over all slices and attacks (None if empty)."""
        return self._max_by(PrivacyMetric.AUC)

    def get_result_with_max_attacker_advantage(self) -> SingleAttackResult | None:
        """The result with the highest attacker advantage (None if empty)."""
        return self._max_by(PrivacyMetric.ATTACKER_ADVANTAGE)

    def get_result_with_max_ppv(self) -> SingleAttackResult | None:
        """The result with the highest positive predictive value (None if empty)."""
        return self._max_by(PrivacyMetric.PPV)

    def get_result_with_max_epsilon(self) -> SingleAttackResult | None:
        """The result whose ε lower bounds have the highest mean (None if empty)."""
        return self._max_by(PrivacyMetric.EPSILON_LOWER_BOUND)

    def summary(self, by_slices: bool = False) -> str:
        """The strongest attack by AUC, advantage, PPV and ε bound over all slices and (with
        ``by_slices``) on each slice; then the (slice, attack) pairs that were skipped."""
        lines: list[str] = []
        if self.single_attack_results:
            lines += ["Best-performing attacks over all slices",
                      *_best_lines(self, on_slice=True)]
            groups: dict[str, list[SingleAttackResult]] = {}
            for result in self.single_attack_results:
                groups.setdefault(str(result.slice_spec), []).append(result)
            if by_slices and len(groups) > 1:
                for name, results in groups.items():
                    lines += [f'\nBest-performing attacks over slice: "{name}"',
                              *_best_lines(AttackResults(results), on_slice=False)]
        else:
            lines.append("No attack result: every (slice, attack) was skipped")
        if self.skipped:
            if self.single_attack_results:
                lines.append(f"\n{len(self.skipped)} (slice, attack) pair(s) skipped:")
            lines += [f"  {s.slice} / {s.attack}: {s.reason}" for s in self.skipped]
        return "\n".join(lines)

    def rows(self) -> list[AuditRow]:
        """memberscope rows of the results that have one (those of ``run_attacks``), each
        carrying ``privacy_report_metadata`` as row metadata."""
        extra = self.privacy_report_metadata.to_metadata() if self.privacy_report_metadata else {}
        return [replace(r.row, metadata={**r.row.metadata, **extra})
                for r in self.single_attack_results if r.row is not None]

    def calculate_pd_dataframe(self) -> pandas.DataFrame:
        """One row per result with TF Privacy's columns, ε bounds as ``Epsilon lower bound_1``
        … ``_{EPSILON_K}`` (NaN past the bounds a result has; ``run_attacks`` results have
        one). Needs the ``pandas`` extra."""
        pd: Any = require("pandas", "pandas", "AttackResults.calculate_pd_dataframe")
        k = EPSILON_K
        columns: dict[str, list[Any]] = {str(c): [] for c in AttackResultsDFColumns}
        columns.update({str(m): [] for m in _DATAFRAME_METRICS})
        epsilon_columns = [f"{PrivacyMetric.EPSILON_LOWER_BOUND}_{i + 1}" for i in range(k)]
        columns.update({name: [] for name in epsilon_columns})
        for result in self.single_attack_results:
            spec = result.slice_spec
            feature = str(spec) if spec.feature is None else spec.feature.value
            values = [feature, "" if spec.feature is None else str(spec.value),
                      result.data_size.ntrain, result.data_size.ntest, str(result.attack_type),
                      *(float(m.value_of(result)) for m in _DATAFRAME_METRICS)]
            bounds = list(result.get_epsilon_lower_bound()[:k])
            values += [float(b) for b in bounds] + [math.nan] * (k - len(bounds))
            for name, value in zip(columns, values, strict=True):
                columns[name].append(value)
        return pd.DataFrame(columns)

    def save(self, filepath: str | Path) -> None:
        """Write these results to ``filepath`` as JSON (no pickle): every field of every
        result, its memberscope row and the skipped pairs (not ``audit_result``: keep that
        with :func:`memberscope.save_result`)."""
        atomic_write_json(filepath, _results_document(self, index=0))

    @classmethod
    def load(cls, filepath: str | Path) -> AttackResults:
        """Read results written by :meth:`save`."""
        document = _read_document(Path(filepath))
        assert document is not None  # strict reading raises instead
        return _results_from_document(document)


def _best_lines(results: AttackResults, *, on_slice: bool) -> list[str]:
    picks = ((PrivacyMetric.AUC, "an AUC of {:.2f}"),
             (PrivacyMetric.ATTACKER_ADVANTAGE, "an advantage of {:.2f}"),
             (PrivacyMetric.PPV, "a positive predictive value of {:.2f}"),
             (PrivacyMetric.EPSILON_LOWER_BOUND, "top-{k} epsilon lower bounds of {bounds}"))
    lines = []
    for metric, template in picks:
        best = results._max_by(metric)
        assert best is not None  # results is not empty here
        reached = template.format(metric.value_of(best), k=EPSILON_K,
                                  bounds=format_number_list(best.get_epsilon_lower_bound()))
        where = f" on slice {best.slice_spec}" if on_slice else ""
        lines.append(f"  {best.attack_type} (with {best.data_size.ntrain} training and "
                     f"{best.data_size.ntest} test examples) achieved {reached}{where}")
    return lines


@dataclass
class AttackResultsCollection:
    """Results of many ``run_attacks`` calls (epochs × model variants), for the report."""

    attack_results_list: MutableSequence[AttackResults]

    def append(self, attack_results: AttackResults) -> None:
        """Add one ``run_attacks`` result."""
        self.attack_results_list.append(attack_results)

    def save(self, dirname: str | Path) -> None:
        """Write each results entry to ``dirname`` as one JSON file (see
        :meth:`AttackResults.save`), named by position, model variant and epoch."""
        folder = Path(dirname)
        folder.mkdir(parents=True, exist_ok=True)
        for index, results in enumerate(self.attack_results_list):
            metadata = results.privacy_report_metadata
            tag = ("" if metadata is None else
                   "_" + re.sub(r"[^A-Za-z0-9._-]+", "-", metadata.model_variant_label)
                   + f"_epoch_{metadata.epoch_num}")
            atomic_write_json(folder / f"{index:05d}{tag}.json",
                              _results_document(results, index=index))

    @classmethod
    def load(cls, dirname: str | Path) -> AttackResultsCollection:
        """Read every file :meth:`save` wrote to ``dirname``, in the saved order (other
        files are ignored)."""
        documents = []
        for path in sorted(Path(dirname).glob("*.json")):
            document = _read_document(path, strict=False)
            if document is not None:
                documents.append(document)
        documents.sort(key=lambda d: int(d["index"]))
        return cls([_results_from_document(d) for d in documents])

    def to_results_collection(self) -> ResultsCollection:
        """Every memberscope row (with its model, epoch and accuracies) and skipped entry as
        a :class:`~memberscope.ResultsCollection` (``memberscope.store.append_result`` and
        the report take it from there)."""
        rows: list[AuditRow] = []
        skipped: list[SkippedEntry] = []
        for results in self.attack_results_list:
            extra = (results.privacy_report_metadata.to_metadata()
                     if results.privacy_report_metadata else {})
            rows += results.rows()
            skipped += [replace(s, metadata={**s.metadata, **extra}) for s in results.skipped]
        return ResultsCollection(rows, skipped)


def get_flattened_attack_metrics(
        results: AttackResults) -> tuple[list[str], list[str], list[str], list[float]]:
    """Attack types, slices, metric names (``adv``, ``auc``, ``ppv``) and values, one entry
    per (result, metric)."""
    types: list[str] = []
    slices: list[str] = []
    names: list[str] = []
    values: list[float] = []
    for result in results.single_attack_results:
        for name, metric in (("adv", PrivacyMetric.ATTACKER_ADVANTAGE),
                             ("auc", PrivacyMetric.AUC), ("ppv", PrivacyMetric.PPV)):
            types.append(str(result.attack_type))
            slices.append(str(result.slice_spec))
            names.append(name)
            values.append(float(metric.value_of(result)))
    return types, slices, names, values


# --- the JSON file format of save/load -------------------------------------------------------


def _array_document(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    array = np.asarray(value)
    if array.dtype.kind not in "biuf":
        raise InputError(f"cannot save an array of dtype {array.dtype}; numbers only")
    values = array.ravel().tolist()
    # JSON has no NaN or infinity: NaN is stored as null, ±inf as null plus its sign.
    infinite = {str(i): str(v) for i, v in enumerate(values)
                if isinstance(v, float) and math.isinf(v)}
    flat = [None if isinstance(v, float) and not math.isfinite(v) else v for v in values]
    return {"dtype": array.dtype.str, "shape": list(array.shape), "values": flat,
            "infinite": infinite}


def _array_from(document: Mapping[str, Any] | None) -> Any:
    """The array of :func:`_array_document` (None for None)."""
    if document is None:
        return None
    values = [math.nan if v is None else v for v in document["values"]]
    for index, text in document.get("infinite", {}).items():
        values[int(index)] = float(text)
    return np.array(values, dtype=np.dtype(document["dtype"])).reshape(document["shape"])


def _slice_document(spec: SingleSliceSpec) -> dict[str, Any]:
    value = spec.value
    if spec.feature is SlicingFeature.CUSTOM:
        train, test, group, name = value
        value = [_array_document(train), _array_document(test), json_value(group), name]
    elif spec.feature is SlicingFeature.PERCENTILE:
        value = json_value(list(value))
    else:
        value = json_value(value)
    return {"feature": None if spec.feature is None else spec.feature.value, "value": value}


def _slice_from(document: Mapping[str, Any]) -> SingleSliceSpec:
    if document["feature"] is None:
        return SingleSliceSpec()
    feature = SlicingFeature(document["feature"])
    value = document["value"]
    if feature is SlicingFeature.CUSTOM:
        value = (_array_from(value[0]), _array_from(value[1]), value[2], value[3])
    elif feature is SlicingFeature.PERCENTILE:
        value = tuple(value)
    return SingleSliceSpec(feature, value)


def _single_document(result: SingleAttackResult) -> dict[str, Any]:
    curve = result.roc_curve
    return {
        "slice_spec": _slice_document(result.slice_spec),
        "data_size": [int(result.data_size.ntrain), int(result.data_size.ntest)],
        "attack_type": result.attack_type.name,
        "roc_curve": {"thresholds": _array_document(curve.thresholds),
                      "tpr": _array_document(curve.tpr), "fpr": _array_document(curve.fpr),
                      "test_train_ratio": float(curve.test_train_ratio)},
        "epsilon_lower_bound_value": {method.value: _array_document(bounds) for method, bounds
                                      in result.epsilon_lower_bound_value.bounds.items()},
        **{name: _array_document(getattr(result, name))
           for name in ("membership_scores_train", "membership_scores_test",
                        "train_indices", "test_indices")},
        "row": None if result.row is None else result.row.to_dict(),
    }


def _single_from(document: Mapping[str, Any]) -> SingleAttackResult:
    row = None if document["row"] is None else AuditRow.from_dict(document["row"])
    curve = document["roc_curve"]
    return SingleAttackResult(
        slice_spec=_slice_from(document["slice_spec"]),
        data_size=DataSize(*document["data_size"]),
        attack_type=AttackType[document["attack_type"]],
        roc_curve=RocCurve(_array_from(curve["thresholds"]), _array_from(curve["tpr"]),
                           _array_from(curve["fpr"]), curve["test_train_ratio"], row=row),
        epsilon_lower_bound_value=EpsilonLowerBoundValue(
            {BoundMethod(method): _array_from(bounds)
             for method, bounds in document["epsilon_lower_bound_value"].items()}),
        **{name: _array_from(document[name])
           for name in ("membership_scores_train", "membership_scores_test",
                        "train_indices", "test_indices")},
        row=row)


def _results_document(results: AttackResults, *, index: int) -> dict[str, Any]:
    metadata = results.privacy_report_metadata
    return {
        "schema_version": SCHEMA_VERSION, "format": _FORMAT, "index": index,
        "privacy_report_metadata": None if metadata is None else json_value(vars(metadata)),
        "single_attack_results": [_single_document(r) for r in results.single_attack_results],
        "skipped": [s.to_dict() for s in results.skipped],
    }


def _results_from_document(document: Mapping[str, Any]) -> AttackResults:
    try:
        metadata = document["privacy_report_metadata"]
        return AttackResults(
            single_attack_results=[_single_from(d) for d in document["single_attack_results"]],
            privacy_report_metadata=None if metadata is None else PrivacyReportMetadata(
                **metadata),
            skipped=tuple(SkippedEntry.from_dict(s) for s in document["skipped"]))
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise SchemaError(f"saved AttackResults are malformed ({type(exc).__name__}: "
                          f"{exc})") from exc


def _read_document(path: Path, *, strict: bool = True) -> dict[str, Any] | None:
    """The saved results in ``path``; None (with ``strict=False``) for another file."""
    import json

    try:
        document = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        if not strict:
            return None
        raise SchemaError(f"{path} is not saved AttackResults (not JSON: {exc})") from exc
    if not isinstance(document, dict) or document.get("format") != _FORMAT:
        if not strict:
            return None
        raise SchemaError(f"{path} is not saved AttackResults")
    if document.get("schema_version") != SCHEMA_VERSION:
        raise SchemaError(f"{path} has schema_version {document.get('schema_version')!r}; "
                          f"this version reads {SCHEMA_VERSION}")
    return document


__all__ = [
    "ENTIRE_DATASET_SLICE_STR",
    "EPSILON_ALPHA",
    "EPSILON_K",
    "EPSILON_METHODS",
    "AttackInputData",
    "AttackResults",
    "AttackResultsCollection",
    "AttackResultsDFColumns",
    "AttackType",
    "DataSize",
    "EpsilonLowerBoundValue",
    "LossFunction",
    "MembershipProbabilityResults",
    "PrivacyMetric",
    "PrivacyReportMetadata",
    "RocCurve",
    "SingleAttackResult",
    "SingleMembershipProbabilityResult",
    "SingleSliceSpec",
    "SlicingFeature",
    "SlicingSpec",
    "get_flattened_attack_metrics",
]
