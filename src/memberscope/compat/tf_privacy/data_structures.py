"""TF Privacy's membership-inference data structures, with memberscope's numbers behind them.

Names, fields and methods follow TF Privacy's ``data_structures`` module where its users reach
them (the privacy-report codelab and the README's examples). Differences a user can notice:

- inputs are checked when :class:`AttackInputData` is built (``validate()`` is kept, as a
  no-op), with memberscope's messages;
- a result wraps a memberscope :class:`~memberscope.AuditRow` (``SingleAttackResult.row``),
  so AUC, advantage and PPV are memberscope's (``docs/migrating-from-tf-privacy.md``);
- (slice, attack) pairs that could not be evaluated are kept in ``AttackResults.skipped``
  with their reason instead of being dropped.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from memberscope.errors import InputError, require
from memberscope.metric_definitions import ADVANTAGE, AUC, EPSILON_CONFIDENT, PPV
from memberscope.metrics import RocCurve
from memberscope.outputs import ModelOutputs
from memberscope.results import AuditResult, AuditRow, ResultsCollection, SkippedEntry

if TYPE_CHECKING:
    import pandas

ENTIRE_DATASET_SLICE_STR = "Entire dataset"


# --- slices ---------------------------------------------------------------------------------


class SlicingFeature(enum.Enum):
    """What a slice selects on; ``CUSTOM`` stands for memberscope's ``custom:NAME`` slices."""

    CLASS = "class"
    PERCENTILE = "percentile"
    CORRECTLY_CLASSIFIED = "correctly_classified"
    CUSTOM = "custom"


@dataclass(frozen=True)
class SingleSliceSpec:
    """One slice: ``feature`` None is the entire dataset, else a feature and its ``value``
    (a class, a ``(low, high)`` loss-percentile range, True/False, or a custom name)."""

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
            return f"Loss percentiles: {low}-{high}"
        return f"{self.feature.name}={self.value}"

    @classmethod
    def from_slice_name(cls, name: str) -> SingleSliceSpec:
        """The spec of a memberscope slice label (``entire_dataset``, ``class=3``,
        ``loss_percentile=10-20``, ``correctly_classified=True``, ``custom:NAME``)."""
        if name == "entire_dataset":
            return cls()
        key, _, value = name.partition("=")
        if key == "class":
            return cls(SlicingFeature.CLASS, int(value))
        if key == "loss_percentile":
            low, high = value.split("-")
            return cls(SlicingFeature.PERCENTILE, (int(low), int(high)))
        if key == "correctly_classified":
            return cls(SlicingFeature.CORRECTLY_CLASSIFIED, value == "True")
        return cls(SlicingFeature.CUSTOM, name.removeprefix("custom:"))


@dataclass(frozen=True)
class SlicingSpec:
    """Which slices to attack besides (or instead of) the entire dataset.

    Parameters
    ----------
    entire_dataset : bool
        One slice with every example.
    by_class : bool, int or iterable of int
        True: one slice per class; an int N: classes 0 … N-1; an iterable: those classes.
    by_percentiles : bool
        Ten slices by loss percentile (0-10, …, 90-100), members and non-members pooled.
    by_classification_correctness : bool
        One slice of correctly and one of wrongly classified examples.
    """

    entire_dataset: bool = True
    by_class: bool | int | Iterable[int] = False
    by_percentiles: bool = False
    by_classification_correctness: bool = False

    def __post_init__(self) -> None:
        for name in ("entire_dataset", "by_percentiles", "by_classification_correctness"):
            if not isinstance(getattr(self, name), bool | np.bool_):
                raise InputError(f"SlicingSpec.{name} must be True or False; "
                                 f"got {getattr(self, name)!r}")
        object.__setattr__(self, "by_class", _class_selection(self.by_class))
        if not self.slice_kinds():
            raise InputError("SlicingSpec selects no slice; set entire_dataset, by_class, "
                             "by_percentiles or by_classification_correctness")

    def slice_kinds(self) -> tuple[str, ...]:
        """memberscope's slice kinds for this spec (``audit(..., slices=...)``)."""
        wanted = (("entire", self.entire_dataset), ("class", bool(self.by_class)),
                  ("loss_percentile", self.by_percentiles),
                  ("correctness", self.by_classification_correctness))
        return tuple(kind for kind, on in wanted if on)

    def selects(self, slice_name: str) -> bool:
        """Whether a memberscope slice label belongs to this spec (``by_class`` may keep
        only some classes)."""
        spec = SingleSliceSpec.from_slice_name(slice_name)
        if spec.feature is not SlicingFeature.CLASS or isinstance(self.by_class, bool):
            return True
        return spec.value in self.by_class  # type: ignore[operator]


def _class_selection(by_class: Any) -> bool | tuple[int, ...]:
    """``by_class`` as True/False (all classes or none) or the tuple of classes to keep;
    an int N means classes 0 … N-1."""
    if isinstance(by_class, bool | np.bool_):
        return bool(by_class)
    if isinstance(by_class, int | np.integer):
        if by_class < 0:
            raise InputError(f"SlicingSpec.by_class must be >= 0; got {by_class}")
        return tuple(range(int(by_class)))
    if isinstance(by_class, Iterable) and not isinstance(by_class, str):
        classes = tuple(by_class)
        if not all(isinstance(c, int | np.integer) and not isinstance(c, bool | np.bool_)
                   for c in classes):
            raise InputError(f"SlicingSpec.by_class must list integer classes; got {classes!r}")
        return tuple(int(c) for c in classes)
    raise InputError(f"SlicingSpec.by_class must be a bool, an int or integers; "
                     f"got {by_class!r}")


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

    def __str__(self) -> str:
        return self.value


class LossFunction(enum.Enum):
    """How ``AttackInputData`` derives a loss when none is given; memberscope computes the
    exact cross-entropy and takes a callable ``loss_function(labels, predictions)``."""

    CROSS_ENTROPY = "cross_entropy"
    SQUARED = "squared"


# --- inputs -------------------------------------------------------------------------------

_PAIRS = ("logits", "probs", "labels", "loss", "entropy", "sample_weight")


@dataclass(frozen=True, eq=False)
class AttackInputData:
    """Per-example outputs of the attacked model: ``*_train`` on its training data (members),
    ``*_test`` on held-out data (non-members).

    Give labels with logits or probs (each (n, C)), or per-example losses (n,) with or
    without labels. The arrays are checked and joined into a
    :class:`~memberscope.ModelOutputs` (``outputs``) when the object is built.
    ``entropy_*`` and multi-label data are not supported: memberscope computes entropies
    from logits or probs.
    """

    logits_train: Any = None
    logits_test: Any = None
    probs_train: Any = None
    probs_test: Any = None
    labels_train: Any = None
    labels_test: Any = None
    loss_train: Any = None
    loss_test: Any = None
    entropy_train: Any = None
    entropy_test: Any = None
    sample_weight_train: Any = None
    sample_weight_test: Any = None
    loss_function: Callable[[np.ndarray, np.ndarray], np.ndarray] | LossFunction = (
        LossFunction.CROSS_ENTROPY)
    loss_function_using_logits: bool | None = None
    multilabel_data: bool | None = None
    force_multilabel_data: bool = False
    outputs: ModelOutputs = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "outputs", _model_outputs(self))

    @property
    def has_labels(self) -> bool:
        """Whether true labels were given (without them only loss-based attacks run)."""
        return self.labels_train is not None

    @property
    def num_classes(self) -> int:
        """Number of classes: columns of logits/probs, else 1 + the largest label."""
        if not self.has_labels:
            raise InputError("the number of classes needs labels_train and labels_test")
        return self.outputs.num_classes

    @property
    def logits_or_probs_train(self) -> np.ndarray | None:
        """Training-set logits when given, else probabilities."""
        return self.logits_train if self.logits_train is not None else self.probs_train

    @property
    def logits_or_probs_test(self) -> np.ndarray | None:
        """Test-set logits when given, else probabilities."""
        return self.logits_test if self.logits_test is not None else self.probs_test

    def get_train_size(self) -> int:
        """Number of training examples (members)."""
        return self.outputs.n_members

    def get_test_size(self) -> int:
        """Number of test examples (non-members)."""
        return self.outputs.n_nonmembers

    def get_loss_train(self) -> np.ndarray:
        """Per-example loss (n_train,): as given, else the exact cross-entropy."""
        return self.outputs.loss_values[self.outputs.membership]

    def get_loss_test(self) -> np.ndarray:
        """Per-example loss (n_test,): as given, else the exact cross-entropy."""
        return self.outputs.loss_values[~self.outputs.membership]

    def validate(self) -> None:
        """Kept for TF Privacy code: the inputs were already checked when built."""

    def __str__(self) -> str:
        shapes = [f" {name}_{side} with shape: {np.shape(value)},"
                  for name in _PAIRS for side in ("train", "test")
                  if (value := getattr(self, f"{name}_{side}")) is not None]
        return "\n".join(["AttackInputData(", *shapes, ")"])


def _model_outputs(data: AttackInputData) -> ModelOutputs:
    """Check what memberscope cannot use, derive a custom loss, and join both sides."""
    for name in ("entropy_train", "entropy_test"):
        if getattr(data, name) is not None:
            raise InputError(f"{name} is not supported: memberscope computes the entropy from "
                             "logits or probs; give those (or loss_train/loss_test) instead")
    if data.multilabel_data or data.force_multilabel_data:
        raise InputError("multi-label data is not supported (multilabel_data / "
                         "force_multilabel_data); give one integer label per example")
    labels = {"train": data.labels_train, "test": data.labels_test}
    loss = {"train": data.loss_train, "test": data.loss_test}
    has_distribution = any(getattr(data, f"{kind}_{side}") is not None
                           for kind in ("logits", "probs") for side in ("train", "test"))
    if labels["train"] is None and labels["test"] is None:
        if has_distribution or loss["train"] is None or loss["test"] is None:
            raise InputError("labels_train and labels_test are needed with logits or probs; "
                             "without labels give only loss_train and loss_test")
        # Loss-only input: every attack then works on the loss alone, so the labels only
        # have to be valid; by_class slicing is refused in run_attacks.
        labels = {side: np.zeros(np.shape(loss[side])[:1], dtype=np.int64) for side in labels}
    if loss["train"] is None and loss["test"] is None:
        loss = _custom_loss(data, labels) or loss
    return ModelOutputs.from_train_test(
        labels_train=labels["train"], labels_test=labels["test"],
        logits_train=data.logits_train, logits_test=data.logits_test,
        probs_train=data.probs_train, probs_test=data.probs_test,
        loss_train=loss["train"], loss_test=loss["test"],
        sample_weight_train=data.sample_weight_train, sample_weight_test=data.sample_weight_test)


def _custom_loss(data: AttackInputData, labels: dict[str, Any]) -> dict[str, Any] | None:
    """Losses from a callable ``loss_function``; None for the default cross-entropy."""
    if data.loss_function is LossFunction.CROSS_ENTROPY:
        return None
    if not callable(data.loss_function):
        raise InputError(f"loss_function={data.loss_function} is not supported; give "
                         "loss_train/loss_test, or a callable loss_function(labels, predictions)")
    use_logits = (data.logits_train is not None if data.loss_function_using_logits is None
                  else data.loss_function_using_logits)
    kind = "logits" if use_logits else "probs"
    out = {}
    for side in ("train", "test"):
        predictions = getattr(data, f"{kind}_{side}")
        if predictions is None:
            raise InputError(f"loss_function needs {kind}_{side}; it is not given")
        out[side] = np.asarray(data.loss_function(np.asarray(labels[side]),
                                                  np.asarray(predictions)), dtype=np.float64)
    return out


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
        out: dict[str, Any] = {}
        for key, value in values.items():
            if value is None:
                continue
            if isinstance(value, np.generic):
                value = value.item()
            out[key] = value
        return out


class DataSize(NamedTuple):
    """Members (``ntrain``) and non-members (``ntest``) in a slice."""

    ntrain: int
    ntest: int


@dataclass(frozen=True, eq=False)
class SingleAttackResult:
    """One attack on one slice. ``row`` is memberscope's result row with every metric
    (TPR at low FPR, the ε lower bound, …); ``roc_curve`` is a thinned curve for plotting;
    membership scores (higher = member) are kept for the entire-dataset slice."""

    slice_spec: SingleSliceSpec
    data_size: DataSize
    attack_type: AttackType
    row: AuditRow
    roc_curve: RocCurve | None = None
    membership_scores_train: np.ndarray | None = None
    membership_scores_test: np.ndarray | None = None

    @classmethod
    def from_row(cls, row: AuditRow, roc_curve: RocCurve | None = None,
                 scores: np.ndarray | None = None,
                 membership: np.ndarray | None = None) -> SingleAttackResult:
        """Wrap a memberscope row (and optionally its curve and per-example scores)."""
        split = scores is not None and membership is not None
        return cls(slice_spec=SingleSliceSpec.from_slice_name(row.slice),
                   data_size=DataSize(row.n_members, row.n_nonmembers),
                   attack_type=AttackType.from_memberscope_name(row.attack), row=row,
                   roc_curve=roc_curve,
                   membership_scores_train=scores[membership] if split else None,  # type: ignore[index]
                   membership_scores_test=scores[~membership] if split else None)  # type: ignore[index,operator]

    def get_auc(self) -> float:
        """Area under the ROC curve."""
        return self.row.auc

    def get_attacker_advantage(self) -> float:
        """memberscope's advantage (see the migration notes for how it differs)."""
        return self.row.advantage

    def get_ppv(self) -> float:
        """memberscope's positive predictive value."""
        return self.row.ppv

    def get_epsilon_lower_bound(self) -> float:
        """The valid (1−α) empirical ε lower bound (``row.epsilon_lower_bound.confident``)."""
        return self.row.epsilon_lower_bound.confident

    def __str__(self) -> str:
        return "\n".join([
            "SingleAttackResult(",
            f"  SliceSpec: {self.slice_spec}",
            f"  DataSize: (ntrain={self.data_size.ntrain}, ntest={self.data_size.ntest})",
            f"  AttackType: {self.attack_type}",
            f"  AUC: {self.get_auc():.2f}",
            f"  Attacker advantage: {self.get_attacker_advantage():.2f}",
            f"  Positive Predictive Value: {self.get_ppv():.2f}",
            f"  Epsilon lower bound: {self.get_epsilon_lower_bound():.2f}",
            ")"])


_DATAFRAME_METRICS = (PrivacyMetric.ATTACKER_ADVANTAGE, PrivacyMetric.PPV, PrivacyMetric.AUC)


@dataclass(eq=False)
class AttackResults:
    """Every attack result of one ``run_attacks`` call.

    ``skipped`` lists the (slice, attack) pairs that could not be evaluated, with the reason;
    ``audit_result`` is the memberscope audit behind it all (``memberscope.save_result``
    writes it; ``memberscope.report`` draws it).
    """

    single_attack_results: list[SingleAttackResult]
    privacy_report_metadata: PrivacyReportMetadata | None = None
    skipped: tuple[SkippedEntry, ...] = ()
    audit_result: AuditResult | None = None

    def _max_by(self, metric: Callable[[SingleAttackResult], float]) -> SingleAttackResult:
        if not self.single_attack_results:
            reasons = "; ".join(f"{s.slice}/{s.attack}: {s.reason}" for s in self.skipped[:3])
            raise InputError("no attack result: every (slice, attack) was skipped"
                             + (f" ({reasons})" if reasons else ""))
        finite = [r for r in self.single_attack_results if not math.isnan(metric(r))]
        return max(finite or self.single_attack_results, key=metric)

    def get_result_with_max_auc(self) -> SingleAttackResult:
        """The result with the highest AUC over all slices and attacks."""
        return self._max_by(SingleAttackResult.get_auc)

    def get_result_with_max_attacker_advantage(self) -> SingleAttackResult:
        """The result with the highest attacker advantage."""
        return self._max_by(SingleAttackResult.get_attacker_advantage)

    def get_result_with_max_ppv(self) -> SingleAttackResult:
        """The result with the highest positive predictive value."""
        return self._max_by(SingleAttackResult.get_ppv)

    def get_result_with_max_epsilon(self) -> SingleAttackResult:
        """The result with the highest (valid) empirical ε lower bound."""
        return self._max_by(SingleAttackResult.get_epsilon_lower_bound)

    def summary(self, by_slices: bool = False) -> str:
        """The strongest attack by AUC, advantage, PPV and ε bound, over all slices and (with
        ``by_slices``) on each slice; then how many (slice, attack) pairs were skipped."""
        if not self.single_attack_results:
            lines = ["No attack result: every (slice, attack) was skipped"]
            lines += [f"  {_slice_str(s.slice)} / {s.attack}: {s.reason}" for s in self.skipped]
            return "\n".join(lines)
        lines = ["Best-performing attacks over all slices", *_best_lines(self, with_slice=True)]
        groups: dict[str, list[SingleAttackResult]] = {}
        for result in self.single_attack_results:
            groups.setdefault(str(result.slice_spec), []).append(result)
        if by_slices and len(groups) > 1:
            for name, results in groups.items():
                lines += ["", f'Best-performing attacks over slice: "{name}"',
                          *_best_lines(AttackResults(results), with_slice=False)]
        if self.skipped:
            lines += ["", f"{len(self.skipped)} (slice, attack) pair(s) skipped:"]
            lines += [f"  {_slice_str(s.slice)} / {s.attack}: {s.reason}" for s in self.skipped]
        return "\n".join(lines)

    def rows(self) -> list[AuditRow]:
        """memberscope rows, each carrying ``privacy_report_metadata`` as row metadata."""
        extra = self.privacy_report_metadata.to_metadata() if self.privacy_report_metadata else {}
        return [replace(r.row, metadata={**r.row.metadata, **extra})
                for r in self.single_attack_results]

    def calculate_pd_dataframe(self) -> pandas.DataFrame:
        """One row per result with TF Privacy's column names (needs the ``pandas`` extra)."""
        pd: Any = require("pandas", "pandas", "AttackResults.calculate_pd_dataframe")
        records = []
        for result in self.single_attack_results:
            spec = result.slice_spec
            records.append({
                "slice feature": str(spec) if spec.feature is None else spec.feature.value,
                "slice value": "" if spec.feature is None else str(spec.value),
                "train size": result.data_size.ntrain, "test size": result.data_size.ntest,
                "attack type": str(result.attack_type),
                **{str(m): result.row.metric(m.metric) for m in _DATAFRAME_METRICS}})
        return pd.DataFrame(records, columns=["slice feature", "slice value", "train size",
                                              "test size", "attack type",
                                              *map(str, _DATAFRAME_METRICS)])


def _slice_str(name: str) -> str:
    return str(SingleSliceSpec.from_slice_name(name))


def _best_lines(results: AttackResults, *, with_slice: bool) -> list[str]:
    picks = (("an AUC", results.get_result_with_max_auc(), SingleAttackResult.get_auc),
             ("an advantage", results.get_result_with_max_attacker_advantage(),
              SingleAttackResult.get_attacker_advantage),
             ("a PPV", results.get_result_with_max_ppv(), SingleAttackResult.get_ppv),
             ("an epsilon lower bound", results.get_result_with_max_epsilon(),
              SingleAttackResult.get_epsilon_lower_bound))
    return [f"  {best.attack_type} ({best.data_size.ntrain} members, {best.data_size.ntest} "
            f"non-members) reached {what} of {value(best):.2f}"
            + (f" on slice {best.slice_spec}" if with_slice else "")
            for what, best, value in picks]


@dataclass(eq=False)
class AttackResultsCollection:
    """Results of many ``run_attacks`` calls (epochs × model variants), for the report."""

    attack_results_list: list[AttackResults]

    def append(self, attack_results: AttackResults) -> None:
        """Add one ``run_attacks`` result."""
        self.attack_results_list.append(attack_results)

    def to_results_collection(self) -> ResultsCollection:
        """Every row (with its model, epoch and accuracies) and skipped entry as a memberscope
        :class:`~memberscope.ResultsCollection` (``memberscope.store.append_result`` and the
        report take it from there)."""
        rows: list[AuditRow] = []
        skipped: list[SkippedEntry] = []
        for results in self.attack_results_list:
            extra = (results.privacy_report_metadata.to_metadata()
                     if results.privacy_report_metadata else {})
            rows += results.rows()
            skipped += [replace(s, metadata={**s.metadata, **extra}) for s in results.skipped]
        return ResultsCollection(rows, skipped)


__all__ = [
    "ENTIRE_DATASET_SLICE_STR",
    "AttackInputData",
    "AttackResults",
    "AttackResultsCollection",
    "AttackType",
    "DataSize",
    "LossFunction",
    "PrivacyMetric",
    "PrivacyReportMetadata",
    "SingleAttackResult",
    "SingleSliceSpec",
    "SlicingFeature",
    "SlicingSpec",
]
