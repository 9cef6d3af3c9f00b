"""``run_attacks``: TF Privacy's entry point, computed by :func:`memberscope.audit`."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

import numpy as np

from memberscope.audit import DEFAULT_MIN_SLICE_SIZE, audit
from memberscope.compat.tf_privacy.data_structures import (
    AttackInputData,
    AttackResults,
    AttackType,
    PrivacyReportMetadata,
    SingleAttackResult,
    SlicingSpec,
)
from memberscope.errors import InputError
from memberscope.metrics import LowResolutionWarning
from memberscope.results import AuditResult

logger = logging.getLogger(__name__)

#: ``run_attacks`` arguments that ``audit_options`` may not override.
_OWN_AUDIT_ARGUMENTS = frozenset({"attacks", "slices", "metadata", "min_slice_size"})


def run_attacks(attack_input: AttackInputData,
                slicing_spec: SlicingSpec | None = None,
                attack_types: Iterable[AttackType] = (AttackType.THRESHOLD_ATTACK,),
                privacy_report_metadata: PrivacyReportMetadata | None = None,
                balance_attacker_training: bool = True,
                min_num_samples: int | None = None,
                backend: str | None = None,
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
    min_num_samples : int, optional
        A slice with fewer members or non-members is skipped, with the reason. Default
        memberscope's 10 (TF Privacy's default is 1; metrics of tinier slices are noise).
    backend : str, optional
        Accepted for TF Privacy code and ignored: attackers here fit single-threaded.
    seed : int
        Makes trained attacks and the ε split deterministic (TF Privacy's are unseeded).
    **audit_options
        Passed to :func:`memberscope.audit` (``alpha``, ``delta``, ``fpr_targets``,
        ``attack_options``, ``n_bootstrap`` …).

    Returns
    -------
    AttackResults
        One result per evaluated (slice, attack), the skipped pairs with their reason, the
        completed metadata, and the memberscope audit behind them (``audit_result``).
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
    kinds = slicing_spec.slice_kinds()
    if "class" in kinds and not attack_input.has_labels:
        raise InputError("SlicingSpec.by_class needs labels_train and labels_test")
    names = _attack_names(attack_types, attack_input.has_labels)
    metadata = _completed_metadata(privacy_report_metadata, attack_input)
    with warnings.catch_warnings():
        if "fpr_targets" not in audit_options:
            # TF Privacy reports no TPR at low FPR, so its users did not ask for one.
            warnings.simplefilter("ignore", LowResolutionWarning)
        result = audit(attack_input.outputs, attacks=names, slices=kinds, seed=seed,
                       min_slice_size=_min_slice_size(min_num_samples),
                       metadata=metadata.to_metadata(), **audit_options)
    result = _selected(result, slicing_spec)
    singles = [_single_result(result, index) for index in range(len(result.rows))]
    for single in singles:
        logger.info("%s attack on %s: AUC %.3f, advantage %.3f, PPV %.3f", single.attack_type,
                    single.slice_spec, single.get_auc(), single.get_attacker_advantage(),
                    single.get_ppv())
    return AttackResults(single_attack_results=singles, privacy_report_metadata=metadata,
                         skipped=result.skipped, audit_result=result)


def _attack_names(attack_types: Iterable[AttackType], has_labels: bool) -> list[str]:
    if isinstance(attack_types, AttackType | str):
        attack_types = (attack_types,)
    names: list[str] = []
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
        name = attack_type.memberscope_name(has_labels)
        if name not in names:
            names.append(name)
    if not names:
        raise InputError("attack_types is empty; give at least one AttackType")
    return names


def _min_slice_size(min_num_samples: int | None) -> int:
    if min_num_samples is None:
        return DEFAULT_MIN_SLICE_SIZE
    if isinstance(min_num_samples, bool) or not isinstance(min_num_samples, int | np.integer):
        raise InputError(f"min_num_samples must be an integer; got {min_num_samples!r}")
    if min_num_samples < 1:
        raise InputError(f"min_num_samples must be >= 1; got {min_num_samples}")
    return int(min_num_samples)


def _completed_metadata(metadata: PrivacyReportMetadata | None,
                        attack_input: AttackInputData) -> PrivacyReportMetadata:
    """A copy of ``metadata`` with unset accuracies (where logits or probs and labels allow)
    and mean losses computed from the input."""
    if metadata is None:
        metadata = PrivacyReportMetadata()
    elif not isinstance(metadata, PrivacyReportMetadata):
        raise InputError(f"privacy_report_metadata must be a PrivacyReportMetadata; "
                         f"got {type(metadata).__name__}")
    outputs = attack_input.outputs
    filled: dict[str, Any] = {}
    sides = {"train": outputs.membership, "test": ~outputs.membership}
    for side, mask in sides.items():
        if getattr(metadata, f"accuracy_{side}") is None and outputs.has_distribution:
            filled[f"accuracy_{side}"] = float(outputs.is_correct[mask].mean())
        if getattr(metadata, f"loss_{side}") is None:
            filled[f"loss_{side}"] = float(outputs.loss_values[mask].mean())
    return replace(metadata, **filled)


def _selected(result: AuditResult, spec: SlicingSpec) -> AuditResult:
    """Only the rows and skipped entries of slices ``spec`` asks for (``by_class`` may name
    some classes; the audit ran on all)."""
    keep = [i for i, row in enumerate(result.rows) if spec.selects(row.slice)]
    rocs = tuple(result.rocs[i] for i in keep) if result.rocs else ()
    return replace(result, rows=tuple(result.rows[i] for i in keep), rocs=rocs,
                   skipped=tuple(s for s in result.skipped if spec.selects(s.slice)))


def _single_result(result: AuditResult, index: int) -> SingleAttackResult:
    row = result.rows[index]
    roc = result.rocs[index] if result.rocs else None
    scores = result.scores.get(row.attack) if row.slice == "entire_dataset" else None
    return SingleAttackResult.from_row(row, roc, scores, result.membership)


__all__ = ["run_attacks"]
