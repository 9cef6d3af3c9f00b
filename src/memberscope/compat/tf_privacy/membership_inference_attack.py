"""``run_attacks``: TF Privacy's entry point, computed by :func:`memberscope.audit`.

The input is read as TF Privacy defines it (its losses, with sample weights multiplying
them; its slices; its entropies; multi-label data) and handed to one memberscope audit, which
computes every number: a single-label input with labels runs memberscope's own attacks on a
:class:`~memberscope.ModelOutputs` holding the logits or probabilities, labels and TF
Privacy's loss; what a ``ModelOutputs`` cannot hold (given entropies, multi-label outputs,
logits without labels) enters as the per-example signal of the same memberscope attack.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from memberscope.attacks import Attack, get_attack
from memberscope.audit import audit
from memberscope.compat.tf_privacy.data_structures import (
    EPSILON_METHODS,
    AttackInputData,
    AttackResults,
    AttackType,
    DataSize,
    EpsilonLowerBoundValue,
    MembershipProbabilityResults,
    PrivacyReportMetadata,
    RocCurve,
    SingleAttackResult,
    SingleMembershipProbabilityResult,
    SingleSliceSpec,
    SlicingFeature,
    SlicingSpec,
)
from memberscope.compat.tf_privacy.dataset_slicing import get_single_slice_specs, slice_masks
from memberscope.errors import InputError
from memberscope.metrics import LowResolutionWarning
from memberscope.outputs import ExampleInputs, ModelOutputs
from memberscope.results import AuditResult

logger = logging.getLogger(__name__)

#: ``run_attacks`` arguments that ``audit_options`` may not override.
_OWN_AUDIT_ARGUMENTS = frozenset({"attacks", "slices", "custom_slices", "metadata",
                                  "min_slice_size"})


def run_attacks(attack_input: AttackInputData,
                slicing_spec: SlicingSpec | None = None,
                attack_types: Iterable[AttackType] = (AttackType.THRESHOLD_ATTACK,),
                privacy_report_metadata: PrivacyReportMetadata | None = None,
                balance_attacker_training: bool = True,
                min_num_samples: int = 1,
                backend: str | None = None,
                return_slice_indices: bool = False,
                *, seed: int = 0, **audit_options: Any) -> AttackResults:
    """Run ``attack_types`` on every slice of ``slicing_spec`` and collect the results.

    Parameters
    ----------
    attack_input : AttackInputData
        Outputs of the attacked model on members (``*_train``) and non-members (``*_test``).
    slicing_spec : SlicingSpec, optional
        Slices to attack; default the entire dataset only.
    attack_types : iterable of AttackType
        Default the loss-threshold attack. Each maps to a memberscope attack
        (:meth:`AttackType.memberscope_name`).
    privacy_report_metadata : PrivacyReportMetadata, optional
        Model label, epoch and accuracies for the privacy report; accuracies and mean losses
        left unset are computed from ``attack_input`` (on a copy).
    balance_attacker_training : bool
        memberscope always trains attackers on balanced members/non-members; False is refused.
    min_num_samples : int
        A slice with fewer members or non-members is skipped, with the reason (the trained
        attacks need at least 3 of each for their cross-validation).
    backend : str, optional
        Accepted for TF Privacy code and ignored: attackers here fit single-threaded.
    return_slice_indices : bool
        Set ``train_indices``/``test_indices`` (positions in the ``*_train``/``*_test``
        arrays) on each result of a slice other than the entire dataset.
    seed : int
        Makes trained attacks and the ε split deterministic (TF Privacy's are unseeded).
    **audit_options
        Passed to :func:`memberscope.audit` (``alpha``, ``delta``, ``fpr_targets``,
        ``attack_options``, ``n_bootstrap`` …).

    Returns
    -------
    AttackResults
        One result per evaluated (slice, attack), in TF Privacy's order (slice by slice),
        the skipped pairs with their reason, the completed metadata, and the memberscope
        audit behind them (``audit_result``).
    """
    if not isinstance(attack_input, AttackInputData):
        raise InputError(f"attack_input must be an AttackInputData; "
                         f"got {type(attack_input).__name__}")
    slicing_spec = SlicingSpec() if slicing_spec is None else slicing_spec
    if not isinstance(slicing_spec, SlicingSpec):
        raise InputError(f"slicing_spec must be a SlicingSpec; got {type(slicing_spec).__name__}")
    if not balance_attacker_training:
        raise InputError("balance_attacker_training=False is not supported: memberscope always "
                         "trains attackers on equal numbers of members and non-members")
    clashing = _OWN_AUDIT_ARGUMENTS & set(audit_options)
    if clashing:
        raise InputError(f"run_attacks sets {', '.join(sorted(clashing))} itself; use "
                         "slicing_spec, attack_types, privacy_report_metadata, min_num_samples")
    attack_input.validate()
    types = _attack_types(attack_types)
    plan = _plan(attack_input, types)
    metadata = _completed_metadata(privacy_report_metadata, attack_input, plan)
    specs = get_single_slice_specs(
        slicing_spec, attack_input.num_classes if slicing_spec.class_selection() else None)
    slices = _memberscope_slices(attack_input, specs, plan)
    if not slices.by_label:
        return AttackResults([], privacy_report_metadata=metadata)
    with warnings.catch_warnings():
        if "fpr_targets" not in audit_options:
            # TF Privacy reports no TPR at low FPR, so its users did not ask for one.
            warnings.simplefilter("ignore", LowResolutionWarning)
        result = audit(plan.outputs, attacks=list(plan.attacks.values()), slices=slices.kinds,
                       custom_slices=slices.custom or None, seed=seed,
                       min_slice_size=_min_slice_size(min_num_samples),
                       metadata=metadata.to_metadata(), **audit_options)
    result = _in_tf_order(result, slices, [plan.attacks[t].name for t in types])
    singles = [_single_result(result, index, slices, return_slice_indices)
               for index in range(len(result.rows))]
    for single in singles:
        logger.info("%s attack on %s: AUC %.3f, advantage %.3f, PPV %.3f", single.attack_type,
                    single.slice_spec, single.get_auc(), single.get_attacker_advantage(),
                    single.get_ppv())
    return AttackResults(single_attack_results=singles, privacy_report_metadata=metadata,
                         skipped=result.skipped, audit_result=result)


def _attack_types(attack_types: Iterable[AttackType]) -> list[AttackType]:
    if isinstance(attack_types, AttackType | str):
        attack_types = (attack_types,)
    types: list[AttackType] = []
    for index, attack_type in enumerate(attack_types):
        if isinstance(attack_type, str):
            try:
                attack_type = AttackType(attack_type)
            except ValueError:
                raise InputError(f"attack_types[{index}] = {attack_type!r} is not an AttackType "
                                 f"value; valid: {', '.join(a.value for a in AttackType)}"
                                 ) from None
        if not isinstance(attack_type, AttackType):
            raise InputError(f"attack_types[{index}] must be an AttackType; "
                             f"got {type(attack_type).__name__}")
        if attack_type not in types:
            types.append(attack_type)
    if not types:
        raise InputError("attack_types is empty; give at least one AttackType")
    return types


def _min_slice_size(min_num_samples: int) -> int:
    if isinstance(min_num_samples, bool) or not isinstance(min_num_samples, int | np.integer):
        raise InputError(f"min_num_samples must be an integer; got {min_num_samples!r}")
    if min_num_samples < 1:
        raise InputError(f"min_num_samples must be >= 1; got {min_num_samples}")
    return int(min_num_samples)


# --- what the audit runs ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Plan:
    """The audit's input: ``outputs`` (membership, and labels, predictions and loss where a
    ModelOutputs can hold them), one memberscope attack per AttackType, and TF Privacy's
    per-example loss (n,) (summed over classes for multi-label data; None without one)."""

    outputs: ModelOutputs
    attacks: dict[AttackType, Attack]
    loss: np.ndarray | None
    n_train: int


def _joined(train: Any, test: Any) -> np.ndarray | None:
    return None if train is None else np.concatenate([np.asarray(train), np.asarray(test)])


def _plan(data: AttackInputData, types: list[AttackType]) -> _Plan:
    n_train, n_test = data.get_train_size(), data.get_test_size()
    membership = np.arange(n_train + n_test) < n_train
    multilabel = data.is_multilabel_data()
    loss_train, loss_test = data.get_loss_train(), data.get_loss_test()
    per_class_loss = _joined(loss_train, loss_test)
    loss = per_class_loss
    if multilabel and loss is not None and loss.ndim == 2:
        logger.info("multi-label data: the threshold attack and loss percentiles use the loss "
                    "summed over the classes")
        loss = loss.sum(axis=1)
    predictions = _joined(data.logits_or_probs_train, data.logits_or_probs_test)
    # memberscope's own attacks and features apply where a ModelOutputs holds everything:
    # one integer label per example with logits or probs.
    native = data.has_labels and predictions is not None and not multilabel
    if native:
        from_logits = data.logits_train is not None
        outputs = ModelOutputs(membership=membership,
                               labels=_joined(data.labels_train, data.labels_test),
                               logits=predictions if from_logits else None,
                               probs=None if from_logits else predictions, loss=loss)
    else:
        labels = (_joined(data.labels_train, data.labels_test)
                  if data.has_labels and not multilabel else None)
        # The audit reads membership (and labels, for class slices) from these outputs;
        # without a loss every attack's signal comes from the plan, so zeros stand in.
        outputs = ModelOutputs(membership=membership, labels=labels,
                               loss=loss if loss is not None else np.zeros(len(membership)))
    attacks = {t: _attack(t, data, native=native, loss=loss, predictions=predictions,
                          per_class_loss=per_class_loss) for t in types}
    if data.inputs_train is not None or data.inputs_test is not None:
        outputs = replace(outputs, inputs=ExampleInputs.joined(
            [("inputs_train", data.inputs_train), ("inputs_test", data.inputs_test)]))
    return _Plan(outputs, attacks, loss, n_train)


def _attack(attack_type: AttackType, data: AttackInputData, *, native: bool,
            loss: np.ndarray | None, predictions: np.ndarray | None,
            per_class_loss: np.ndarray | None) -> Attack:
    """The memberscope attack for ``attack_type``, with a signal of its own where the input
    is not one a :class:`ModelOutputs` holds."""
    registered = get_attack(attack_type.memberscope_name(data.has_labels))
    if attack_type is AttackType.THRESHOLD_ATTACK:
        if loss is None:
            raise InputError("the threshold attack needs losses: give loss_train and loss_test, "
                             "or labels with logits or probs")
        return registered
    if attack_type is AttackType.THRESHOLD_ENTROPY_ATTACK:
        if native and data.entropy_train is None:
            return registered
        entropy = np.concatenate([data.get_entropy_train(), data.get_entropy_test()])
        return _with_signal(registered, -entropy)
    if native:
        return registered
    columns = [c for c in (predictions, per_class_loss) if c is not None]
    features = np.column_stack([c.reshape(len(c), -1) for c in columns])
    return _with_signal(registered, features)


def _with_signal(attack: Attack, signal: np.ndarray) -> Attack:
    def given(outputs: ModelOutputs, reference: Any, options: Mapping[str, Any]) -> np.ndarray:
        return signal

    return replace(attack, signal=given)


# --- slices ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Slices:
    """The audit's slice kinds and custom masks, and the TF Privacy spec and (train, test)
    masks of each memberscope slice label, in TF Privacy's order."""

    kinds: tuple[str, ...]
    custom: dict[str, np.ndarray]
    by_label: dict[str, tuple[SingleSliceSpec, np.ndarray, np.ndarray]]


def _memberscope_slices(data: AttackInputData, specs: list[SingleSliceSpec],
                        plan: _Plan) -> _Slices:
    """memberscope's own slice kinds where they select what TF Privacy's do (entire dataset,
    single-label classes, correctness); custom masks for the rest."""
    kinds: list[str] = []
    custom: dict[str, np.ndarray] = {}
    by_label: dict[str, tuple[SingleSliceSpec, np.ndarray, np.ndarray]] = {}
    single_label = plan.outputs.labels is not None
    loss_train = None if plan.loss is None else plan.loss[:plan.n_train]
    loss_test = None if plan.loss is None else plan.loss[plan.n_train:]
    for index, spec in enumerate(specs):
        train, test = slice_masks(data, spec, loss_train=loss_train, loss_test=loss_test)
        feature = spec.feature
        if feature is None:
            kind, label = "entire", "entire_dataset"
        elif feature is SlicingFeature.CLASS and single_label:
            kind, label = "class", f"class={spec.value}"
        elif feature is SlicingFeature.CORRECTLY_CLASSIFIED:
            kind, label = "correctness", f"correctly_classified={spec.value}"
        else:
            kind, name = "custom", _custom_name(spec, index)
            label = f"custom:{name}"
            custom[name] = np.concatenate([train, test])
        if kind != "custom" and kind not in kinds:
            kinds.append(kind)
        by_label[label] = (spec, train, test)
    if custom:
        kinds.append("custom")
    return _Slices(tuple(kinds), custom, by_label)


def _custom_name(spec: SingleSliceSpec, index: int) -> str:
    if spec.feature is SlicingFeature.PERCENTILE:
        low, high = spec.value
        return f"loss_percentile={low}-{high}"
    if spec.feature is SlicingFeature.CLASS:
        return f"class={spec.value}"
    _, _, group, name = spec.value
    return f"{name}#{index}" if name is not None else f"group={group}#{index}"


def _in_tf_order(result: AuditResult, slices: _Slices, attack_names: list[str]) -> AuditResult:
    """Only the slices and attacks asked for (memberscope's class kind runs every class; the
    split guard's rows stay in ``audit_result``), slice by slice and attack by attack as TF
    Privacy lists them."""
    labels = list(slices.by_label)
    position = {label: index for index, label in enumerate(labels)}
    keep = sorted((i for i, row in enumerate(result.rows)
                   if row.slice in position and row.attack in attack_names),
                  key=lambda i: (position[result.rows[i].slice],
                                 attack_names.index(result.rows[i].attack)))
    rocs = tuple(result.rocs[i] for i in keep) if result.rocs else ()
    skipped = tuple(s for s in result.skipped if s.slice in position or s.slice == "class")
    return replace(result, rows=tuple(result.rows[i] for i in keep), rocs=rocs, skipped=skipped)


def _single_result(result: AuditResult, index: int, slices: _Slices,
                   return_slice_indices: bool) -> SingleAttackResult:
    row = result.rows[index]
    spec, train_mask, test_mask = slices.by_label[row.slice]
    attack_type = AttackType.from_memberscope_name(row.attack)
    roc = result.rocs[index] if result.rocs else None
    # TF Privacy's threshold attacks report thresholds on the loss or entropy, not on −loss.
    sign = -1.0 if not attack_type.is_trained_attack else 1.0
    curve = RocCurve(thresholds=sign * roc.thresholds if roc is not None else np.array([]),
                     tpr=roc.tpr if roc is not None else np.array([]),
                     fpr=roc.fpr if roc is not None else np.array([]),
                     test_train_ratio=row.n_nonmembers / row.n_members, row=row)
    scores = result.scores.get(row.attack) if spec.entire_dataset else None
    membership = result.membership
    split = scores is not None and membership is not None
    indices = return_slice_indices and not spec.entire_dataset
    return SingleAttackResult(
        slice_spec=spec, data_size=DataSize(row.n_members, row.n_nonmembers),
        attack_type=attack_type, roc_curve=curve,
        epsilon_lower_bound_value=EpsilonLowerBoundValue(
            {EPSILON_METHODS[0]: np.array([row.epsilon_lower_bound.confident])}),
        membership_scores_train=scores[membership] if split else None,  # type: ignore[index]
        membership_scores_test=scores[~membership] if split else None,  # type: ignore[index,operator]
        train_indices=np.flatnonzero(train_mask) if indices else None,
        test_indices=np.flatnonzero(test_mask) if indices else None,
        row=row)


# --- metadata -------------------------------------------------------------------------------


def _completed_metadata(metadata: PrivacyReportMetadata | None, data: AttackInputData,
                        plan: _Plan) -> PrivacyReportMetadata:
    """A copy of ``metadata`` with unset accuracies (where predictions and labels allow;
    multi-label: the share of labels predicted right at probability 0.5) and mean losses
    (TF Privacy's, per example) computed from the input."""
    if metadata is None:
        metadata = PrivacyReportMetadata()
    elif not isinstance(metadata, PrivacyReportMetadata):
        raise InputError(f"privacy_report_metadata must be a PrivacyReportMetadata; "
                         f"got {type(metadata).__name__}")
    filled: dict[str, Any] = {}
    for side in ("train", "test"):
        if getattr(metadata, f"accuracy_{side}") is None:
            accuracy = _accuracy(data, side)
            if accuracy is not None:
                filled[f"accuracy_{side}"] = accuracy
        if getattr(metadata, f"loss_{side}") is None and plan.loss is not None:
            part = plan.loss[:plan.n_train] if side == "train" else plan.loss[plan.n_train:]
            filled[f"loss_{side}"] = float(part.mean())
    return replace(metadata, **filled)


def _accuracy(data: AttackInputData, side: str) -> float | None:
    labels = getattr(data, f"labels_{side}")
    logits, probs = getattr(data, f"logits_{side}"), getattr(data, f"probs_{side}")
    if labels is None or (logits is None and probs is None):
        return None
    if data.is_multilabel_data():
        from scipy.special import expit

        predicted = expit(np.asarray(logits, float)) if probs is None else np.asarray(probs)
        return float(np.mean(np.asarray(labels) == np.round(predicted)))
    scores = np.asarray(logits if logits is not None else probs)
    if scores.ndim == 1 or scores.shape[1] == 1:  # one output: class 1's logit or probability
        predicted = scores.reshape(-1) > (0.0 if logits is not None else 0.5)
        return float(np.mean(np.asarray(labels) == predicted))
    return float(np.mean(np.asarray(labels) == scores.argmax(axis=1)))


# --- membership probabilities ---------------------------------------------------------------


def run_membership_probability_analysis(
        attack_input: AttackInputData,
        slicing_spec: SlicingSpec | None = None,
        num_bins: int = 15) -> MembershipProbabilityResults:
    """Each example's membership probability on every slice: the share of members among the
    examples in its bin of a log-scale histogram of the loss (or of the given entropy), the
    privacy risk score of Song & Mittal (2021)."""
    attack_input.validate()
    slicing_spec = SlicingSpec() if slicing_spec is None else slicing_spec
    specs = get_single_slice_specs(
        slicing_spec, attack_input.num_classes if slicing_spec.class_selection() else None)
    values = _probability_values(attack_input)
    results = []
    for spec in specs:
        train_mask, test_mask = slice_masks(attack_input, spec)
        train, test = membership_probabilities(values[0][train_mask], values[1][test_mask],
                                               num_bins)
        results.append(SingleMembershipProbabilityResult(spec, train, test))
    return MembershipProbabilityResults(results)


def _probability_values(data: AttackInputData) -> tuple[np.ndarray, np.ndarray]:
    sources: list[Callable[[], tuple[Any, Any]]] = [
        lambda: (data.loss_train, data.loss_test),
        lambda: (data.entropy_train, data.entropy_test),
        lambda: (data.get_loss_train(), data.get_loss_test())]
    for source in sources:
        train, test = source()
        if train is not None and test is not None:
            return np.asarray(train, float), np.asarray(test, float)
    raise InputError("membership probabilities need losses or entropies")


def membership_probabilities(train_values: np.ndarray, test_values: np.ndarray,
                             num_bins: int = 15) -> tuple[np.ndarray, np.ndarray]:
    """Share of members in each example's bin of ``num_bins`` log-spaced bins (values below
    1e-10 count as 1e-10), members' (n_train,) and non-members' (n_test,); each side's
    histogram is normalised by its size, so the two sides weigh equally."""
    floor = 1e-10
    train = np.maximum(train_values, floor)
    test = np.maximum(test_values, floor)
    low, high = min(train.min(), test.min()), max(train.max(), test.max())
    edges = np.logspace(np.log10(low), np.log10(high), num_bins + 1)
    train_share = np.histogram(train, bins=edges)[0] / len(train)
    test_share = np.histogram(test, bins=edges)[0] / len(test)
    combined = train_share + test_share
    probability = train_share / np.where(combined == 0, floor, combined)

    def bin_of(values: np.ndarray) -> np.ndarray:
        return np.minimum(np.digitize(values, edges), num_bins) - 1

    return probability[bin_of(train)], probability[bin_of(test)]


__all__ = ["membership_probabilities", "run_attacks", "run_membership_probability_analysis"]
