"""An estimate of LiRA's TPR at a low FPR from the target's own losses, with no reference model.

LiRA (Carlini et al. 2022) needs reference models: for each example, the spread of its
logit-scaled confidence φ = log(p_y / (1 − p_y)) over models that trained on it ("in") and
models that did not ("out"). This module estimates the TPR it would reach at a given FPR from
what an audit of the target alone has: its losses on members and on non-members.

Methods (:data:`ESTIMATE_METHODS`):

``"tail"``
    The tail estimate of "The Tail Tells All" (Dodd et al. 2025, arXiv 2510.19773), as read
    from its abstract: training moves the members an attack can single out from the high-loss
    tail to the head of the loss distribution, so the share of non-members still in the tail,
    beyond where all but a fraction ``fpr`` of the members lie, estimates LiRA's TPR at that
    FPR: the loss attack's true-negative rate at false-negative rate ``fpr``,
    ``mean(nonmember_loss > quantile(member_loss, 1 − fpr))``.
``"gaussian"``
    LiRA's own model, fitted to the population instead of reference models. Each example i
    has an "out" mean a_i and an "in" mean b_i of φ, and one training run adds N(0, σ²) noise;
    LiRA with known a_i, b_i, σ has the ROC of the standardised shifts d_i = (b_i − a_i)/σ:
    FPR(c) = mean_i Φ̄((c + d_i²/2)/d_i), TPR(c) = mean_i Φ̄((c − d_i²/2)/d_i), and the estimate
    is TPR at the c where FPR(c) = fpr. Without reference models, two assumptions give the d:
    training keeps the examples' order (the member at quantile u of the members' φ is the
    non-member at quantile u of the non-members' φ, moved), so d(u) = (Q_members(u) −
    Q_nonmembers(u))/σ on a grid of u; and σ = κ·sd(non-members' φ). κ =
    :data:`GAUSSIAN_KAPPA` is *fitted*: the value whose estimates came closest to LiRA with 16
    reference models at 1% FPR on the benchmarks' selection models (the run-to-run share of
    the spread measured on their reference models is smaller, 0.37–0.59; κ also absorbs what
    the order assumption overstates). Removing the noise from the quantiles first (shrinking
    them by √(1 − σ²/variance)) came no closer and breaks down once σ exceeds the members'
    spread.

Both are estimates, not measurements: each number carries an assumption about how training
moves examples that a reference-model audit would test, and every :class:`LiraTprEstimate`
carries its method's measured error (:data:`MEASURED_ERROR`). Measured
(``benchmarks/risk_estimate.py``, docs/risk.md) against LiRA online with 16
reference models, on 50 models trained for the measurement and never used to choose κ, at 12
epochs each (600 points; three settings: the quickstart's Fashion-MNIST population with its 2-
and 3-conv CNNs, and a coloured 32x32x3 stand-in for CIFAR-10), estimate / measured TPR at 1%
FPR: ``"gaussian"`` 0.56–2.71, median 1.06, within a factor 1.5 at 84% of the points (95% and
97% on the quickstart's recipe, 60% on the stand-in, where it overestimates: median 1.43);
at 0.1% FPR within 1.5 at 47%. ``"tail"``: 0.66–7.03, median 2.27, within 1.5 at 20%. On the
quickstart's own two models at its six audit epochs the Gaussian estimate was within 0.76–1.42
of LiRA at 1% FPR (0.65–1.85 at 0.1%). κ chosen on two of the settings and applied to the
third fitted the Fashion-MNIST settings (71% and 93% within 1.5) but not the stand-in (42%):
on another recipe or data set, treat the estimate as a rough guide until checked against
reference models there.

Numpy; the Gaussian method imports scipy inside the function.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from memberscope._validation import as_float_array, check_probability
from memberscope.errors import InputError, UnknownNameError

__all__ = ["ESTIMATE_METHODS", "GAUSSIAN_KAPPA", "MEASURED_ERROR", "LiraTprEstimate",
           "estimate_lira_tpr", "gaussian_shift_tpr", "loss_to_logit", "no_signal_tpr",
           "tail_tnr"]

ESTIMATE_METHODS = ("tail", "gaussian")
GAUSSIAN_KAPPA = 0.75
MEASURED_ERROR = {
    "gaussian": "estimate/LiRA with 16 reference models at 1% FPR: 0.76-1.42, within 1.5x at "
                "12 of 12 (model, epoch) points of the quickstart's recipe (9 of 12 at 0.1% "
                "FPR); within 1.5x at 84% of 600 points of three settings (60% on a "
                "CIFAR-shaped stand-in, where it overestimates), at 0.1% FPR at 47%; "
                "models trained without DP only (DP-trained models not measured)",
    "tail": "estimate/LiRA with 16 reference models at 1% FPR: 1.57-3.57, within 1.5x at 0 "
            "of 12 (model, epoch) points of the quickstart's recipe; 0.66-7.03, median 2.27, "
            "within 1.5x at 20% of 600 points of three settings; models trained without DP "
            "only",
}
"""Each method's measured error (``benchmarks/risk_estimate.py``), carried by every estimate."""
_QUANTILE_GRID = 2000
_BISECTION_STEPS = 200


@dataclass(frozen=True)
class LiraTprEstimate:
    """An *estimate* of LiRA's TPR at ``fpr``: ``tpr`` (None when the sample cannot resolve
    ``fpr``: fewer than one member or non-member in a fraction ``fpr``; ``note`` says why),
    from ``n_members`` and ``n_nonmembers`` losses by ``method``; :attr:`measured_error` says
    how far the method was from LiRA where that was measured."""

    fpr: float
    tpr: float | None
    method: str
    n_members: int
    n_nonmembers: int
    note: str | None = None

    @property
    def measured_error(self) -> str:
        """How far this method's estimates were from LiRA where that was measured."""
        return MEASURED_ERROR[self.method]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready fields, labelled: ``"estimate": True`` and ``measured_error``."""
        return {"estimate": True, **asdict(self), "measured_error": self.measured_error}


def loss_to_logit(loss: np.ndarray) -> np.ndarray:
    """φ = log(p / (1 − p)) of the true class from the cross-entropy loss −log p, (n,) float64:
    −log(expm1(loss)); a loss of 0 gives +inf."""
    with np.errstate(divide="ignore"):
        return np.asarray(-np.log(np.expm1(np.asarray(loss, dtype=np.float64))))


def tail_tnr(member_loss: np.ndarray, nonmember_loss: np.ndarray, fpr: float) -> float:
    """The share of non-members whose loss exceeds the members' (1 − ``fpr``) quantile
    (linear interpolation): the ``"tail"`` estimate."""
    threshold = np.quantile(member_loss, 1.0 - fpr)
    return float(np.mean(nonmember_loss > threshold))


def gaussian_shift_tpr(member_logit: np.ndarray, nonmember_logit: np.ndarray,
                       fprs: Sequence[float], *, kappa: float = GAUSSIAN_KAPPA
                       ) -> dict[float, float]:
    """The ``"gaussian"`` estimate at each FPR of ``fprs`` (see the module docstring).

    Parameters
    ----------
    member_logit, nonmember_logit : (n_m,), (n_n,) float
        φ of members and non-members (finite).
    fprs : sequence of float in (0, 1)
    kappa : float > 0
        Run-to-run noise σ as a fraction of the non-members' φ standard deviation.

    Returns
    -------
    dict
        FPR -> estimated TPR.
    """
    from scipy.special import ndtr

    grid = (np.arange(_QUANTILE_GRID) + 0.5) / _QUANTILE_GRID
    # A population of one φ has no spread to scale by: any shift then separates perfectly.
    sigma = max(kappa * float(np.std(nonmember_logit)),
                1e-12 * (1.0 + abs(float(np.mean(nonmember_logit)))))
    # d at each quantile u: the member at quantile u is the non-member at quantile u, moved.
    shift = np.abs(np.quantile(member_logit, grid) - np.quantile(nonmember_logit, grid)) / sigma
    shift = np.maximum(shift, 1e-9)

    def rates(c: float) -> tuple[float, float]:
        half = shift * shift / 2
        return float(ndtr(-(c + half) / shift).mean()), float(ndtr(-(c - half) / shift).mean())

    result = {}
    for fpr in fprs:
        # FPR(c) falls from 1 (c → −∞) to 0; bracket the largest c with FPR(c) > fpr.
        low, high = -1.0, float(shift.max() ** 2 + 50.0)
        while rates(low)[0] <= fpr and low > -1e12:
            low *= 2.0
        for _ in range(_BISECTION_STEPS):
            middle = 0.5 * (low + high)
            low, high = (middle, high) if rates(middle)[0] > fpr else (low, middle)
        result[float(fpr)] = rates(high)[1]
    return result


def estimate_lira_tpr(member_loss: Any, nonmember_loss: Any, *,
                      fprs: Sequence[float] = (0.001, 0.01), method: str = "gaussian"
                      ) -> tuple[LiraTprEstimate, ...]:
    """Estimate LiRA's TPR at each of ``fprs`` from the target's losses alone.

    Parameters
    ----------
    member_loss : (n_m,) float
        Cross-entropy loss −log p_y (nats, >= 0) of each member, from the model audited.
    nonmember_loss : (n_n,) float
        The same for non-members.
    fprs : sequence of float in (0, 1)
    method : {"tail", "gaussian"}
        See the module docstring.

    Returns
    -------
    tuple of LiraTprEstimate
        One per FPR, in order; ``tpr`` None where ``n · fpr < 1`` for either side.
    """
    if method not in ESTIMATE_METHODS:
        raise UnknownNameError("estimate method", str(method), ESTIMATE_METHODS)
    members = as_float_array("member_loss", member_loss, 1)
    nonmembers = as_float_array("nonmember_loss", nonmember_loss, 1)
    for name, losses in (("member_loss", members), ("nonmember_loss", nonmembers)):
        if len(losses) == 0 or (losses < 0).any():
            raise InputError(f"{name} must hold at least one loss, all >= 0 (cross-entropy "
                             f"in nats); got {len(losses)} value(s), minimum "
                             f"{losses.min() if len(losses) else 'none'}")
    checked = [check_probability("fprs", float(f)) for f in fprs]
    resolvable = [min(len(members), len(nonmembers)) * f >= 1 for f in checked]
    values: dict[float, float] = {}
    if method == "gaussian":
        # A float64 cross-entropy rounds to exactly 0 once the true class's logit margin
        # passes ~37, and the smallest loss it resolves is about eps: flooring there keeps
        # those examples at φ ≈ 36 beside the others, where a floor at the smallest float
        # put them at φ ≈ 708 and their spread swamped the fitted variance.
        floor = np.finfo(np.float64).eps
        values = gaussian_shift_tpr(loss_to_logit(np.maximum(members, floor)),
                                    loss_to_logit(np.maximum(nonmembers, floor)),
                                    [f for f, ok in zip(checked, resolvable, strict=True) if ok])
    else:
        values = {f: tail_tnr(members, nonmembers, f)
                  for f, ok in zip(checked, resolvable, strict=True) if ok}
    return tuple(
        LiraTprEstimate(fpr=f, tpr=values[f] if ok else None, method=method,
                        n_members=len(members), n_nonmembers=len(nonmembers),
                        note=None if ok else f"{min(len(members), len(nonmembers))} examples "
                                             f"on the smaller side cannot resolve FPR {f:g}")
        for f, ok in zip(checked, resolvable, strict=True))


def no_signal_tpr(member_loss: Any, nonmember_loss: Any, *,
                  fprs: Sequence[float] = (0.01, 0.001), method: str = "gaussian",
                  repeats: int = 20, seed: int = 0) -> dict[float, float | None]:
    """What :func:`estimate_lira_tpr` gives on these losses when membership carries no
    signal: the median, over ``repeats`` seeded shuffles of which losses are members (the
    same counts), of its estimate at each FPR of ``fprs`` (None where unresolvable).

    The estimate's own chance level at these sizes, to read an estimate against: noise
    in the quantiles puts it above TPR = FPR (about 1.2% at 1% FPR with 5,000 per side).
    """
    members = as_float_array("member_loss", member_loss, 1)
    nonmembers = as_float_array("nonmember_loss", nonmember_loss, 1)
    pooled = np.concatenate([members, nonmembers])
    rng = np.random.default_rng(seed)
    draws: dict[float, list[float]] = {}
    for _ in range(repeats):
        shuffled = rng.permutation(pooled)
        for estimate in estimate_lira_tpr(shuffled[:len(members)], shuffled[len(members):],
                                          fprs=fprs, method=method):
            if estimate.tpr is not None:
                draws.setdefault(estimate.fpr, []).append(estimate.tpr)
    return {float(f): (float(np.median(draws[float(f)])) if float(f) in draws else None)
            for f in fprs}

