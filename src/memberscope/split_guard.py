"""The split guard: do members and non-members differ before the model sees them?

Membership tests ask whether an attack's scores differ between members and non-members more
than chance; they cannot say whether the *model* made them differ. Where non-members come from
another distribution (a later collection, another source, crop, pre-processing or class
balance), every attack beats chance on a model that memorised nothing. The guard measures
what the split alone gives, with two checks on the whole audited split:

- **blind**: the ``blind`` attack, a classifier on the examples' inputs and labels that never
  sees the model (:mod:`memberscope.attacks.blind`);
- **control**: the loss threshold of a model that saw neither side — a control model trained
  by the same recipe on other data, or, with reference models, each example's mean signal
  over the reference models that left it out (no extra training). It sees shifts a pixel
  classifier cannot (a test split that is harder, not different-looking).

The verdict is ``shifted`` when either check is significant at the audit's α after Holm over
the (at most two) checks. Each attack row then gets a *beyond-split* test, Holm-corrected over
the audit's rows: a one-sided paired DeLong test, on the slice's examples, of H0 "AUC(attack)
≤ AUC(bar)" against every bar the guard offers, the largest p-value counting (an
intersection-union test: the attack must beat each bar). The bars:

- with a control model: the *same attack* run on the control model's outputs (same folds and
  seed), and for a trained attack also the control's loss threshold (two separately fitted
  attackers differ by fitting noise that the per-fold test cannot see); reference attacks,
  which need the target's own signals, have the control's loss;
- with reference models and no control model: the mean signal over the models that left each
  example out;
- with inputs: the blind attack's scores.

What the beyond-split null says, and does not: "this attack separates members from
non-members no better than the split alone does, as each bar measures it". Against a control
the test conditions on the two fitted models: another training run of the control would move
its AUC, by much where models respond unevenly to the shift (a non-memorising Fashion-MNIST CNN
on brightened non-members beat its control's logistic-regression AUC in 3 of 3 trainings,
while the blind bar, AUC 1.0, held). Against the blind score, a shift the model's loss feels
more than the input summary shows (a harder test split, a semantic shift) passes the bar: a
control model is then what measures it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from memberscope.attacks import Attack
from memberscope.attacks.reference import check_aligned
from memberscope.errors import InputError
from memberscope.outputs import ModelOutputs
from memberscope.results import (
    GUARD_ATTACKS,
    NOT_CHECKED,
    SAME_DISTRIBUTION,
    SHIFTED,
    AuditRow,
    SplitGuard,
)
from memberscope.significance import significant_rows

BLIND, CONTROL = GUARD_ATTACKS
CONTROL_MODEL, REFERENCE_MODELS = "control model", "reference models"


def checked_control(control: Any, outputs: ModelOutputs) -> ModelOutputs:
    """``control`` if it holds a control model's outputs on the audited examples (the same
    membership, in the same order, and the same labels where both have them)."""
    if not isinstance(control, ModelOutputs):
        raise InputError(f"control must be a ModelOutputs of a control model on the audited "
                         f"examples; got {type(control).__name__}")
    if control.n != outputs.n:
        raise InputError(f"control holds {control.n} examples but outputs holds {outputs.n}; "
                         "give the control model's outputs on the same examples, in order")
    if not np.array_equal(control.membership, outputs.membership):
        row = int(np.argmax(control.membership != outputs.membership))
        raise InputError(f"control.membership differs from outputs.membership (first at row "
                         f"{row}); give the control model's outputs on the same examples")
    if control.labels is not None and outputs.labels is not None and not np.array_equal(
            control.labels, outputs.labels):
        row = int(np.argmax(control.labels != outputs.labels))
        raise InputError(f"control.labels differ from outputs.labels (first at row {row}); "
                         "give the control model's outputs on the same examples, in order")
    return control


def control_signal(outputs: ModelOutputs, control: ModelOutputs | None,
                   reference: Any) -> tuple[np.ndarray, str]:
    """The control check's per-example score (n,), higher = fit better by a model that saw
    neither side, and where it comes from (:data:`CONTROL_MODEL` or
    :data:`REFERENCE_MODELS`). Raises :class:`InputError` saying why there is none."""
    if control is not None:
        return -control.loss_values, CONTROL_MODEL
    if reference is None:
        raise InputError("no control model and no reference models")
    check_aligned(outputs, reference)
    signal = reference.mean_out_signal()
    missing = np.isnan(signal)
    if missing.all():
        raise InputError("every example was in every reference model's training set, so no "
                         "reference model measures one unseen")
    # An example every reference model trained on (rare with many models) gets the median:
    # which examples those are does not depend on the target's membership, so the scores
    # stay exchangeable between members and non-members of a same-distribution split.
    return np.where(missing, np.median(signal[~missing]), signal), REFERENCE_MODELS


def control_attack(scores: np.ndarray) -> Attack:
    """The control check as an attack object: ``scores`` (n,) as they are (not registered:
    it needs a control model or reference models, which ``audit`` takes separately)."""
    return Attack(CONTROL, "loss threshold of a model that saw neither members nor non-members",
                  "a control model (audit(control=...)) or reference models",
                  lambda outputs, reference, options: scores)


def split_verdict(blind: AuditRow | None, control: AuditRow | None, *, alpha: float,
                  correction: str, control_source: str | None, reason: str) -> SplitGuard:
    """The guard's verdict from its rows on the entire dataset (None where a check did not
    run): ``shifted`` when either is significant at ``alpha`` after ``correction`` over the
    checks that ran. ``reason`` says what was not checked and why."""
    checks = [row for row in (blind, control) if row is not None]
    if not checks:
        return SplitGuard(NOT_CHECKED, alpha=alpha, correction=correction, reason=reason)
    verdicts = significant_rows([1.0 if r.p_value is None else r.p_value for r in checks],
                                alpha=alpha, correction=correction)
    return SplitGuard(
        SHIFTED if verdicts.any() else SAME_DISTRIBUTION,
        blind_auc=None if blind is None else blind.auc,
        blind_p_value=None if blind is None else blind.p_value,
        control_auc=None if control is None else control.auc,
        control_p_value=None if control is None else control.p_value,
        control_source=None if control is None else control_source,
        alpha=alpha, correction=correction, reason=reason)


def beyond_split_verdicts(p_values: Sequence[float | None], *, alpha: float,
                          correction: str) -> list[bool | None]:
    """Each beyond-split p-value's verdict after ``correction`` over those that exist
    (None stays None: no guard ran for that row)."""
    tested = [p for p in p_values if p is not None]
    if not tested:
        return [None] * len(p_values)
    verdicts = iter(significant_rows(tested, alpha=alpha, correction=correction))
    return [None if p is None else bool(next(verdicts)) for p in p_values]
