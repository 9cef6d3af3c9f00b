"""``audit``: run attacks on slices of one model's outputs and compute every metric."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from memberscope._seeding import stream_seed
from memberscope._validation import check_probability
from memberscope.attacks import Attack, AttackWarning, get_attack
from memberscope.errors import InputError
from memberscope.metrics import (
    DEFAULT_FPR_TARGETS,
    LowResolutionWarning,
    attack_metrics,
    resolvable,
)
from memberscope.outputs import ModelOutputs
from memberscope.results import AuditResult, AuditRow, SkippedEntry
from memberscope.significance import check_correction, significant_rows
from memberscope.slicing import Slice, UnavailableSlice, build_slices

logger = logging.getLogger(__name__)

DEFAULT_ATTACKS = ("threshold", "lr")
DEFAULT_SLICES = ("entire", "class")
DEFAULT_MIN_SLICE_SIZE = 10


def _names(value: str | Iterable[Any]) -> list[Any]:
    return [v.strip() for v in value.split(",")] if isinstance(value, str) else list(value)


def audit(
    outputs: ModelOutputs,
    *,
    attacks: str | Sequence[str | Attack] = DEFAULT_ATTACKS,
    slices: str | Sequence[str] = DEFAULT_SLICES,
    custom_slices: Mapping[str, np.ndarray] | None = None,
    seed: int = 0,
    fpr_targets: Sequence[float] = DEFAULT_FPR_TARGETS,
    alpha: float = 0.05,
    correction: str = "holm",
    delta: float = 0.0,
    n_bootstrap: int = 0,
    min_slice_size: int = DEFAULT_MIN_SLICE_SIZE,
    reference: Any = None,
    attack_options: Mapping[str, Mapping[str, Any]] | None = None,
    metadata: Mapping[str, Any] | None = None,
    keep_scores: bool = True,
) -> AuditResult:
    """Run ``attacks`` on every slice of ``outputs`` and compute AUC, advantage, PPV,
    TPR at ``fpr_targets``, the empirical ε lower bound and the p-value for each.

    Parameters
    ----------
    outputs : ModelOutputs
        Per-example outputs of members and non-members.
    attacks : names, default ("threshold", "lr")
        Registered attack names (``memberscope attacks`` lists them), or "a,b"; an
        :class:`~memberscope.attacks.Attack` object is run as given (not registered).
    slices : kinds, default ("entire", "class")
        Among entire, class, loss_percentile, correctness, custom.
    custom_slices : {name: (n,) mask or group vector}, optional
    seed : int
        Makes trained attacks and the ε split deterministic.
    alpha : float in (0, 1), default 0.05
        Level of the family-wise test (``significant``) and 1 − confidence of the ε bound.
    correction : "holm" (default) or "bonferroni"
        Family-wise correction over all rows of this call: the chance that any row of a
        no-signal audit is ``significant`` stays ≤ ``alpha``.
    min_slice_size : int
        A slice with fewer members or non-members than this is skipped, with the reason.
    reference : ReferenceOutputs, optional
        Reference-model signals for ``lira``/``rmia``.
    attack_options : {attack: {option: value}}, optional
    metadata : mapping, optional
        Copied into every row (model label, epoch, accuracies, …).
    keep_scores : bool
        Keep per-example scores on the entire dataset and thinned ROC curves in the result.

    Returns
    -------
    AuditResult
        One row per evaluated (slice, attack); skipped pairs listed with their reason.
    """
    if not isinstance(outputs, ModelOutputs):
        raise InputError(f"outputs must be a ModelOutputs; got {type(outputs).__name__}")
    if min_slice_size < 1:
        raise InputError(f"min_slice_size must be >= 1; got {min_slice_size}")
    alpha = check_probability("alpha", alpha)
    check_correction(correction)
    attack_list = [a if isinstance(a, Attack) else get_attack(a) for a in _names(attacks)]
    if not attack_list:
        raise InputError("attacks is empty; give at least one attack name")
    options = dict(attack_options or {})
    unknown_options = set(options) - {a.name for a in attack_list}
    if unknown_options:
        raise InputError(f"attack_options names attacks not being run: {sorted(unknown_options)}")
    for attack in attack_list:
        if attack.needs_reference and reference is None:
            raise InputError(f"attack {attack.name!r} needs reference models: pass reference=")
        attack.validate_options(options.get(attack.name, {}))
    slice_list = build_slices(outputs, _names(slices), custom=custom_slices)

    rows: list[AuditRow] = []
    rocs = []
    skipped: list[SkippedEntry] = []
    scores_by_attack: dict[str, np.ndarray] = {}
    notes: list[str] = []
    for attack in attack_list:
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", AttackWarning)
                signal = attack.signal(outputs, reference, {**attack.defaults,
                                                            **options.get(attack.name, {})})
        except InputError as exc:
            skipped.extend(SkippedEntry(s.name, attack.name, str(exc)) for s in slice_list)
            continue
        finally:
            notes.extend(_recorded_notes(caught))
        for slice_ in slice_list:
            outcome = _evaluate(attack, signal, outputs, slice_, seed=seed,
                                fpr_targets=fpr_targets, alpha=alpha, delta=delta,
                                n_bootstrap=n_bootstrap, min_slice_size=min_slice_size,
                                options=options.get(attack.name, {}))
            if isinstance(outcome, SkippedEntry):
                skipped.append(outcome)
                continue
            row, roc, slice_scores = outcome
            rows.append(row)
            rocs.append(roc.thinned() if keep_scores and roc is not None else None)
            if keep_scores and slice_.name == "entire_dataset":
                scores_by_attack[attack.name] = slice_scores
    if rows:
        verdicts = significant_rows([1.0 if r.p_value is None else r.p_value for r in rows],
                                    alpha=alpha, correction=correction)
        rows = [replace(r, significant=bool(v), alpha=alpha, correction=correction)
                for r, v in zip(rows, verdicts, strict=True)]
    _warn_unresolvable(rows, fpr_targets)
    result = AuditResult(
        rows=tuple(rows), skipped=tuple(skipped), rocs=tuple(rocs),
        scores=scores_by_attack,
        membership=outputs.membership if keep_scores else None,
        labels=outputs.labels if keep_scores else None,
        notes=tuple(dict.fromkeys(notes)),
        alpha=alpha, correction=correction,
    )
    for entry in skipped:
        logger.info("skipped slice %s, attack %s: %s", entry.slice, entry.attack, entry.reason)
    return result.with_metadata(**metadata) if metadata else result


def _recorded_notes(caught: list[warnings.WarningMessage]) -> list[str]:
    """The attack's caveats (:class:`AttackWarning`), to keep in the result; every warning,
    those included, is passed on to the caller as well."""
    for warning in caught:
        warnings.warn_explicit(warning.message, warning.category, warning.filename,
                               warning.lineno)
    return [str(w.message) for w in caught if issubclass(w.category, AttackWarning)]


def _failure_reason(exc: Exception) -> str:
    """Why an attack failed on a slice; our own errors already read as a reason."""
    message = str(exc).replace("\n", " ")
    return message if isinstance(exc, InputError) else (
        f"the attack failed on this slice: {type(exc).__name__}: {message}")


def _warn_unresolvable(rows: Sequence[AuditRow], fpr_targets: Sequence[float]) -> None:
    """One warning per audit naming, per FPR target, the rows where TPR is stored as null."""
    for target in fpr_targets:
        unresolved = [r for r in rows if not resolvable(target, r.n_nonmembers)]
        if unresolved:
            fewest = min(r.n_nonmembers for r in unresolved)
            warnings.warn(
                f"TPR at FPR {target:g} is stored as null on {len(unresolved)} of {len(rows)} "
                f"rows: their slices have fewer than {1 / target:g} non-members (as few as "
                f"{fewest}), and n_nonmembers x FPR >= 1 is needed to resolve it",
                LowResolutionWarning, stacklevel=3)


def _evaluate(attack: Attack, signal: np.ndarray, outputs: ModelOutputs,
              slice_: Slice | UnavailableSlice, *, seed: int, fpr_targets: Sequence[float],
              alpha: float, delta: float, n_bootstrap: int, min_slice_size: int,
              options: Mapping[str, Any]) -> SkippedEntry | tuple[AuditRow, Any, np.ndarray]:
    if isinstance(slice_, UnavailableSlice):
        return SkippedEntry(slice_.name, attack.name, slice_.reason)
    membership = outputs.membership[slice_.mask]
    n_members = int(membership.sum())
    n_nonmembers = len(membership) - n_members
    needed = max(min_slice_size, attack.min_per_side)
    if n_members < needed or n_nonmembers < needed:
        return SkippedEntry(
            slice_.name, attack.name,
            f"too small: {n_members} members and {n_nonmembers} non-members; "
            f"need at least {needed} of each")
    slice_seed = stream_seed(seed, slice_.name, attack.name)
    try:
        scored = attack.scores_for_slice(signal[slice_.mask], membership, slice_seed, options)
    except (ValueError, ArithmeticError) as exc:
        # A slice the attack cannot handle (too few examples for its model, a degenerate
        # fit) is recorded with the reason, never allowed to end the whole audit.
        return SkippedEntry(slice_.name, attack.name, _failure_reason(exc))
    weights = None if outputs.sample_weight is None else outputs.sample_weight[slice_.mask]
    with warnings.catch_warnings():
        # One summary warning per audit is enough; per-slice ones would flood the log.
        warnings.simplefilter("ignore", LowResolutionWarning)
        metrics = attack_metrics(scored.scores, membership, fpr_targets=fpr_targets,
                                 alpha=alpha, delta=delta, seed=slice_seed,
                                 n_bootstrap=n_bootstrap, sample_weight=weights,
                                 strata=scored.strata)
    row = AuditRow(
        slice=slice_.name, attack=attack.name, n_members=n_members, n_nonmembers=n_nonmembers,
        auc=metrics.auc, advantage=metrics.advantage, ppv=metrics.ppv,
        tpr_at_fpr=metrics.tpr_at_fpr, epsilon_lower_bound=metrics.epsilon,
        auc_ci=metrics.auc_ci, tpr_at_fpr_ci=metrics.tpr_at_fpr_ci,
        p_value=metrics.p_value, notes=metrics.notes,
    )
    return row, metrics.roc, scored.scores
