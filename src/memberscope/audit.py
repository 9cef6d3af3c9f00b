"""``audit``: run attacks on slices of one model's outputs and compute every metric."""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from memberscope._seeding import stream_seed
from memberscope._validation import check_probability
from memberscope.attacks import Attack, AttackWarning, SliceScores, get_attack
from memberscope.errors import InputError
from memberscope.metrics import (
    DEFAULT_FPR_TARGETS,
    LowResolutionWarning,
    attack_metrics,
    resolvable,
)
from memberscope.outputs import ModelOutputs
from memberscope.results import NOT_CHECKED, AuditResult, AuditRow, SkippedEntry, SplitGuard
from memberscope.significance import (
    RankedScores,
    check_correction,
    paired_auc_p_value,
    significant_rows,
)
from memberscope.slicing import Slice, UnavailableSlice, build_slices
from memberscope.split_guard import (
    BLIND,
    CONTROL,
    beyond_split_verdicts,
    checked_control,
    control_attack,
    control_signal,
    split_verdict,
)

logger = logging.getLogger(__name__)

DEFAULT_ATTACKS = ("threshold", "lr")
DEFAULT_SLICES = ("entire", "class")
DEFAULT_MIN_SLICE_SIZE = 10
ENTIRE_DATASET = "entire_dataset"


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
    control: ModelOutputs | None = None,
    split_guard: bool = True,
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
        Reference-model signals for ``lira``/``rmia``. The models that left each example
        out also serve as the split guard's control check when no ``control`` is given.
    control : ModelOutputs, optional
        A control model's outputs on the same examples: a model of the same recipe trained
        on data disjoint from members and non-members. Its loss is the guard's control
        check, and each attack run on it is what that attack's beyond-split test compares
        with (:mod:`memberscope.split_guard`).
    split_guard : bool, default True
        Check whether members and non-members differ before the model sees them: the
        ``blind`` attack on the whole split where ``outputs.inputs`` (or blind features in
        ``attack_options``) are given, the control check where ``control`` or
        ``reference`` is. Adds their rows on the entire dataset, ``result.split_guard``, and
        each other row's beyond-split test.
    attack_options : {attack: {option: value}}, optional
    metadata : mapping, optional
        Copied into every row (model label, epoch, accuracies, …).
    keep_scores : bool
        Keep per-example scores on the entire dataset and thinned ROC curves in the result.

    Returns
    -------
    AuditResult
        One row per evaluated (slice, attack); skipped pairs listed with their reason; the
        split guard's verdict (``result.split_guard``).
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
    unknown_options = set(options) - {a.name for a in attack_list} - (
        {BLIND} if split_guard else set())
    if unknown_options:
        raise InputError(f"attack_options names attacks not being run: {sorted(unknown_options)}")
    for attack in [*attack_list, *([get_attack(BLIND)] if split_guard else [])]:
        if attack.needs_reference and reference is None:
            raise InputError(f"attack {attack.name!r} needs reference models: pass reference=")
        attack.validate_options(options.get(attack.name, {}))
    if control is not None:
        control = checked_control(control, outputs)
    slice_list = build_slices(outputs, _names(slices), custom=custom_slices)
    context = _Context(outputs, reference, control, options, seed=seed, fpr_targets=fpr_targets,
                       alpha=alpha, delta=delta, n_bootstrap=n_bootstrap,
                       min_slice_size=min_slice_size)

    guard_runs, guard, guard_skipped = (_guard_checks(context, correction) if split_guard
                                        else ([], _guard_off(alpha, correction), []))
    bars = _GuardBars(guard_runs)
    runs: list[_Run] = []
    skipped: list[SkippedEntry] = []
    for attack in attack_list:
        try:
            signal = _signal(attack, context)
        except InputError as exc:
            skipped.extend(SkippedEntry(s.name, attack.name, str(exc)) for s in slice_list)
            continue
        comparator = _Comparator(attack, context, bars)
        for slice_ in slice_list:
            if any(r.row.attack == attack.name and r.row.slice == slice_.name
                   for r in guard_runs):
                continue  # the guard already ran this attack on this slice
            if isinstance(slice_, UnavailableSlice):
                skipped.append(SkippedEntry(slice_.name, attack.name, slice_.reason))
                continue
            outcome = _evaluate(attack, signal, context, slice_)
            if isinstance(outcome, SkippedEntry):
                skipped.append(outcome)
                continue
            runs.append(comparator.tested(outcome, slice_))
    runs += guard_runs
    skipped += guard_skipped
    rows = _with_verdicts([run.row for run in runs], alpha=alpha, correction=correction)
    _warn_unresolvable(rows, fpr_targets)
    result = AuditResult(
        rows=tuple(rows), skipped=tuple(skipped),
        rocs=tuple(run.roc.thinned() if keep_scores and run.roc is not None else None
                   for run in runs),
        scores={run.row.attack: run.scores for run in runs
                if keep_scores and run.row.slice == ENTIRE_DATASET},
        membership=outputs.membership if keep_scores else None,
        labels=outputs.labels if keep_scores else None,
        notes=tuple(dict.fromkeys(context.notes)), split_guard=guard,
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


@dataclass
class _Context:
    """What every (attack, slice) evaluation of one audit call shares."""

    outputs: ModelOutputs
    reference: Any
    control: ModelOutputs | None
    options: Mapping[str, Mapping[str, Any]]
    seed: int
    fpr_targets: Sequence[float]
    alpha: float
    delta: float
    n_bootstrap: int
    min_slice_size: int
    notes: list[str] = field(default_factory=list)

    def options_of(self, attack: Attack) -> Mapping[str, Any]:
        return self.options.get(attack.name, {})


@dataclass(frozen=True)
class _Run:
    """One evaluated (slice, attack): its row, full ROC curve and the slice's scores (with
    their cross-validation folds, for trained attacks)."""

    row: AuditRow
    roc: Any
    scored: SliceScores

    @property
    def scores(self) -> np.ndarray:
        return self.scored.scores


def _signal(attack: Attack, context: _Context, outputs: ModelOutputs | None = None
            ) -> np.ndarray:
    """The attack's signal on ``outputs`` (the audited model's by default); its caveats
    (:class:`AttackWarning`) go to the audit's notes."""
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", AttackWarning)
            return attack.signal(outputs or context.outputs, context.reference,
                                 {**attack.defaults, **context.options_of(attack)})
    finally:
        # Outside the recording block: passing the warnings on must not record them again.
        context.notes.extend(_recorded_notes(caught))


def _guard_checks(context: _Context, correction: str
                  ) -> tuple[list[_Run], SplitGuard, list[SkippedEntry]]:
    """The split guard's checks on the entire dataset (blind where inputs or features are
    given, control where a control model or reference models are), and its verdict."""
    entire = Slice(ENTIRE_DATASET, np.ones(context.outputs.n, dtype=bool))
    runs: dict[str, _Run] = {}
    skipped: list[SkippedEntry] = []
    reasons: list[str] = []
    blind = get_attack(BLIND)
    control_source = None
    if context.outputs.inputs is None and context.options_of(blind).get("features") is None:
        reasons.append("blind: no inputs were given (inputs_train/inputs_test, "
                       "ModelOutputs(inputs=...) or attack_options={'blind': {'features': ...}})")
        checks: list[tuple[Attack, Any]] = []
    else:
        checks = [(blind, None)]
    try:
        control_scores, control_source = control_signal(context.outputs, context.control,
                                                         context.reference)
        checks.append((control_attack(control_scores), control_scores))
    except InputError as exc:
        reasons.append(f"control: {exc}")
    for attack, given in checks:
        try:
            signal = _signal(attack, context) if given is None else given
            outcome = _evaluate(attack, signal, context, entire)
        except InputError as exc:
            outcome = SkippedEntry(ENTIRE_DATASET, attack.name, str(exc))
        if isinstance(outcome, SkippedEntry):
            skipped.append(outcome)
            reasons.append(f"{attack.name}: {outcome.reason}")
        else:
            runs[attack.name] = _Run(*outcome)
    guard = split_verdict(runs[BLIND].row if BLIND in runs else None,
                          runs[CONTROL].row if CONTROL in runs else None,
                          alpha=context.alpha, correction=correction,
                          control_source=control_source, reason="; ".join(reasons))
    return list(runs.values()), guard, skipped


def _guard_off(alpha: float, correction: str) -> SplitGuard:
    return SplitGuard(NOT_CHECKED, alpha=alpha, correction=correction,
                      reason="not run (split_guard=False)")


class _GuardBars:
    """The split guard's scores on the entire dataset, the bars of every row's beyond-split
    test: each slice's part of them ranked once, shared by every attack's row on that slice
    (a small slice's part is sorted: cheaper than filtering the whole dataset's order)."""

    def __init__(self, guard_runs: Sequence[_Run]) -> None:
        self._entire = {run.row.attack: run.scored for run in guard_runs}
        self._by_slice: dict[tuple[str, str], RankedScores] = {}

    @property
    def names(self) -> tuple[str, ...]:
        """The guard checks that ran."""
        return tuple(self._entire)

    def on(self, name: str, slice_: Slice) -> RankedScores:
        """Guard ``name``'s scores on ``slice_``'s examples, ranked."""
        key = (name, slice_.name)
        if key not in self._by_slice:
            scored = self._entire[name]
            if scored.ranked is not None and scored.strata is not None and slice_.mask.all():
                # The blind check's folds are ranked already: merged, not sorted again.
                self._by_slice[key] = RankedScores.merged(
                    [(np.flatnonzero(scored.strata == stratum), ranked)
                     for stratum, ranked in scored.ranked.items()])
            else:
                self._by_slice[key] = RankedScores.of(scored.scores[slice_.mask])
        return self._by_slice[key]


class _Comparator:
    """What one attack's rows are compared with in their beyond-split test: every bar the
    split guard offers (:mod:`memberscope.split_guard`)."""

    def __init__(self, attack: Attack, context: _Context, bars: _GuardBars) -> None:
        self.attack, self.context, self.bars = attack, context, bars
        self.control_signal: np.ndarray | None = None
        self.guards: list[str] = []
        if attack.name in (BLIND, CONTROL):
            return
        self.guards = [name for name in (CONTROL, BLIND) if name in bars.names]
        if context.control is not None and not attack.needs_reference:
            # An attack the control's outputs cannot feed is compared with its loss instead.
            with contextlib.suppress(InputError):
                self.control_signal = _signal(attack, context, context.control)

    def tested(self, outcome: tuple[AuditRow, Any, SliceScores], slice_: Slice) -> _Run:
        """``outcome`` with its row's beyond-split p-value (None where no guard ran): the
        largest over the bars and chance, so the attack must beat each (an
        intersection-union test, valid wherever one bar's test is). Chance is a bar of its
        own: a guard score worse than chance on a slice (a shift whose direction flips
        between classes) is beaten by an attack that carries no signal."""
        row, roc, scored = outcome
        membership = self.context.outputs.membership[slice_.mask]
        bars: list[np.ndarray | RankedScores] = []
        names: list[str] = []
        if self.control_signal is not None:
            bars.append(self.attack.scores_for_slice(
                self.control_signal[slice_.mask], membership,
                stream_seed(self.context.seed, slice_.name, self.attack.name),
                self.context.options_of(self.attack)).scores)
            names.append(CONTROL)
        for name in self.guards:
            # The control's loss is a bar of its own where the attack could not run on the
            # control, and beside it for a trained attack: two separately fitted attackers
            # differ by fitting noise the per-fold test cannot see.
            if name == CONTROL and bars and scored.strata is None:
                continue
            bars.append(self.bars.on(name, slice_))
            if name not in names:
                names.append(name)
        if not bars:
            return _Run(row, roc, scored)
        # Several bars: the attack's scores are sorted once for all of them (a trained
        # attack's are ranked within its folds already).
        sorted_per_fold = scored.strata is not None and scored.ranked is not None
        scores = (RankedScores.of(scored.scores) if len(bars) > 1 and not sorted_per_fold
                  else scored.scores)
        p_value = max(1.0 if row.p_value is None else row.p_value,
                      *(paired_auc_p_value(scores, bar, membership, scored.strata,
                                           ranked_strata=scored.ranked)
                        for bar in bars))
        return _Run(replace(row, beyond_split_p_value=p_value,
                            beyond_split_guard="+".join(sorted(names))), roc, scored)


def _with_verdicts(rows: list[AuditRow], *, alpha: float, correction: str) -> list[AuditRow]:
    """``rows`` with ``significant`` and ``beyond_split_significant`` (Holm over the rows'
    beyond-split tests). ``significant`` is Holm over the model's rows, and over the split
    checks' rows among themselves: a split check is no leakage test, and its verdict is the
    split guard's (two checks on the entire dataset: the same family as
    :func:`~memberscope.split_guard.split_verdict`)."""
    if not rows:
        return rows
    p_values = np.array([1.0 if r.p_value is None else r.p_value for r in rows])
    verdicts = np.zeros(len(rows), dtype=bool)
    for checks_split in (False, True):
        members = [i for i, r in enumerate(rows) if r.measures_split == checks_split]
        if members:
            verdicts[members] = significant_rows(p_values[members].tolist(), alpha=alpha,
                                                 correction=correction)
    beyond = beyond_split_verdicts([r.beyond_split_p_value for r in rows], alpha=alpha,
                                   correction=correction)
    return [replace(r, significant=bool(v), beyond_split_significant=b, alpha=alpha,
                    correction=correction)
            for r, v, b in zip(rows, verdicts, beyond, strict=True)]


def _evaluate(attack: Attack, signal: np.ndarray, context: _Context, slice_: Slice
              ) -> SkippedEntry | tuple[AuditRow, Any, SliceScores]:
    outputs = context.outputs
    membership = outputs.membership[slice_.mask]
    n_members = int(membership.sum())
    n_nonmembers = len(membership) - n_members
    needed = max(context.min_slice_size, attack.min_per_side)
    if n_members < needed or n_nonmembers < needed:
        return SkippedEntry(
            slice_.name, attack.name,
            f"too small: {n_members} members and {n_nonmembers} non-members; "
            f"need at least {needed} of each")
    slice_seed = stream_seed(context.seed, slice_.name, attack.name)
    # A trained attack copies the rows it fits and scores: on the entire dataset its
    # features need no copy first (the blind check's are 60,000 x 31 in the codelab).
    whole = attack.score_slice is not None and len(membership) == outputs.n
    try:
        scored = attack.scores_for_slice(signal if whole else signal[slice_.mask], membership,
                                         slice_seed, context.options_of(attack))
    except (ValueError, ArithmeticError) as exc:
        # A slice the attack cannot handle (too few examples for its model, a degenerate
        # fit) is recorded with the reason, never allowed to end the whole audit.
        return SkippedEntry(slice_.name, attack.name, _failure_reason(exc))
    weights = None if outputs.sample_weight is None else outputs.sample_weight[slice_.mask]
    with warnings.catch_warnings():
        # One summary warning per audit is enough; per-slice ones would flood the log.
        warnings.simplefilter("ignore", LowResolutionWarning)
        metrics = attack_metrics(scored.scores, membership, fpr_targets=context.fpr_targets,
                                 alpha=context.alpha, delta=context.delta, seed=slice_seed,
                                 n_bootstrap=context.n_bootstrap, sample_weight=weights,
                                 strata=scored.strata)
    row = AuditRow(
        slice=slice_.name, attack=attack.name, n_members=n_members, n_nonmembers=n_nonmembers,
        auc=metrics.auc, advantage=metrics.advantage, ppv=metrics.ppv,
        tpr_at_fpr=metrics.tpr_at_fpr, epsilon_lower_bound=metrics.epsilon,
        auc_ci=metrics.auc_ci, tpr_at_fpr_ci=metrics.tpr_at_fpr_ci,
        p_value=metrics.p_value, notes=metrics.notes,
    )
    return row, metrics.roc, scored
