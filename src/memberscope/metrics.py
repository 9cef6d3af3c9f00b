"""Membership-inference metrics from the full ROC curve.

Convention: a higher score means "more likely a member". Every metric is computed on the full
curve (every distinct score is a threshold; ties form one threshold), never on a thinned curve.

What each metric means (the contract: ``auc``, one-sided ``advantage``, the ``ppv`` one lucky
example cannot make 1.0, ``tpr_at_fpr`` only where resolvable, ``p_value``, the valid
``epsilon_lower_bound``) is written once, in :mod:`memberscope.metric_definitions`; this module
computes them. The ``confident`` ε bound keeps the counts it was computed from
(``held_out``), so that :func:`family_epsilon_lower_bound` can recompute it at α/k for a
statement about the largest of k rows.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from memberscope._validation import as_bool_array, as_float_array, check_probability
from memberscope.errors import InputError
from memberscope.significance import distinct, p_value_from_groups

DEFAULT_FPR_TARGETS: tuple[float, ...] = (0.001, 0.01, 0.1)
#: Confidence with which the PPV bound holds simultaneously over thresholds.
PPV_CONFIDENCE = 0.99
#: Ratio of consecutive predicted-member counts of the PPV grid (:func:`ppv_grid`).
PPV_GRID_RATIO = 1.5
_EPSILON_CANDIDATES = 128
_BLOCK = 1 << 20


class LowResolutionWarning(UserWarning):
    """A target FPR is below 1/n_nonmembers, so TPR there is not resolvable and stored as None."""


@dataclass(frozen=True)
class RocCurve:
    """A full ROC curve, thresholds descending, starting at (FPR, TPR) = (0, 0).

    ``tpr``/``fpr`` (k,) are nondecreasing; ``thresholds`` (k,) strictly decreasing with
    ``thresholds[0] = +inf``. ``n_members``/``n_nonmembers`` are (weighted) totals.
    """

    thresholds: np.ndarray
    tpr: np.ndarray
    fpr: np.ndarray
    n_members: float
    n_nonmembers: float

    def thinned(self, max_points: int = 400) -> RocCurve:
        """A curve of at most ``max_points`` points for plotting, dense at low FPR (log-spaced)."""
        if len(self.fpr) <= max_points:
            return self
        # Each grid value keeps up to two points (both sides of a jump), plus the two ends.
        per_grid = max((max_points - 2) // 4, 1)
        grid = np.unique(
            np.concatenate(
                [np.geomspace(max(self.fpr[self.fpr > 0].min(), 1e-12), 1.0, per_grid),
                 np.linspace(0.0, 1.0, per_grid)]
            )
        )
        last = np.searchsorted(self.fpr, grid, side="right") - 1
        first = np.searchsorted(self.fpr, grid, side="left")
        keep = np.unique(np.clip(np.concatenate([[0, len(self.fpr) - 1], last, first]), 0,
                                 len(self.fpr) - 1))
        return RocCurve(self.thresholds[keep], self.tpr[keep], self.fpr[keep],
                        self.n_members, self.n_nonmembers)


@dataclass(frozen=True)
class HeldOutCounts:
    """What a confident ε bound was computed from, on the half of the examples that did not
    choose the threshold: ``tp`` of ``n_members`` members and ``fp`` of ``n_nonmembers``
    non-members scored at least the threshold; ``forward`` bounds ln((TPR − δ)/FPR), otherwise
    ln((TNR − δ)/FNR)."""

    tp: int
    fp: int
    n_members: int
    n_nonmembers: int
    forward: bool

    def __post_init__(self) -> None:
        if not (0 <= self.tp <= self.n_members and 0 <= self.fp <= self.n_nonmembers):
            raise InputError(f"inconsistent held-out counts: tp={self.tp} of {self.n_members}, "
                             f"fp={self.fp} of {self.n_nonmembers}")

    def confident(self, alpha: float, delta: float) -> float:
        """The (1−α) lower bound on ε (≥ 0) from these counts: each rate at α/2."""
        forward, backward = _bounds_at(np.array([float(self.tp)]), np.array([float(self.fp)]),
                                       float(self.n_members), float(self.n_nonmembers),
                                       alpha / 2, delta)
        value = float((forward if self.forward else backward)[0])
        return max(0.0, value) if np.isfinite(value) else 0.0

    def to_dict(self) -> dict[str, int | bool]:
        """As in ``result.json``."""
        return {"tp": self.tp, "fp": self.fp, "n_members": self.n_members,
                "n_nonmembers": self.n_nonmembers, "forward": self.forward}


@dataclass(frozen=True)
class EpsilonBound:
    """Empirical ε lower bound: ``point`` plug-in estimate and ``confident`` (1−α) bound, with
    the ``held_out`` counts it came from (None when no threshold could be tried, and on rows
    written before they were kept)."""

    point: float
    confident: float
    alpha: float
    delta: float
    held_out: HeldOutCounts | None = None

    def confident_at(self, alpha: float) -> float | None:
        """The confident bound at level ``alpha`` instead (None without held-out counts)."""
        return None if self.held_out is None else self.held_out.confident(alpha, self.delta)

    def to_dict(self) -> dict[str, Any]:
        """As in ``result.json``."""
        out: dict[str, Any] = {"point": self.point, "confident": self.confident,
                               "alpha": self.alpha, "delta": self.delta}
        if self.held_out is not None:
            out["held_out"] = self.held_out.to_dict()
        return out


@dataclass(frozen=True)
class FamilyEpsilon:
    """The largest of k rows' ε lower bounds, each at level α/k (Bonferroni), so that the
    largest is a (1−α) lower bound itself: ``epsilon`` ≥ 0, from row ``index`` (of the k)."""

    epsilon: float
    alpha: float
    k: int
    index: int


@dataclass(frozen=True)
class AttackMetrics:
    """Every metric of one attack on one slice."""

    auc: float
    advantage: float
    ppv: float
    tpr_at_fpr: dict[float, float | None]
    epsilon: EpsilonBound
    auc_ci: tuple[float, float] | None = None
    tpr_at_fpr_ci: dict[float, tuple[float, float] | None] | None = None
    roc: RocCurve | None = field(default=None, repr=False)
    p_value: float | None = None
    notes: tuple[str, ...] = ()


# --- the ROC curve ------------------------------------------------------------------------


def _check_scores(scores: object, membership: object,
                  sample_weight: object | None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    score_array = as_float_array("scores", scores, 1)
    member_array = as_bool_array("membership", membership)
    if len(score_array) != len(member_array):
        raise InputError(
            f"scores has {len(score_array)} rows but membership has {len(member_array)}"
        )
    weights = None
    if sample_weight is not None:
        weights = as_float_array("sample_weight", sample_weight, 1)
        if len(weights) != len(score_array) or (weights < 0).any():
            raise InputError("sample_weight must be (n,) and >= 0, like scores")
    if not member_array.any() or member_array.all():
        side = "members" if not member_array.any() else "non-members"
        raise InputError(f"membership has no {side}; the ROC curve needs both")
    return score_array, member_array, weights


def roc_curve(scores: np.ndarray, membership: np.ndarray,
              sample_weight: np.ndarray | None = None) -> RocCurve:
    """Full ROC curve of ``scores`` (n,) against ``membership`` (n,) bool, in O(n log n).

    Unweighted, members and non-members are sorted separately (fast in-place sorts), merged in
    linear time by a stable sort of the two sorted runs, and ties grouped into one threshold.
    """
    scores, membership, sample_weight = _check_scores(scores, membership, sample_weight)
    return _roc_curve(scores, membership, sample_weight)


def _roc_curve(scores: np.ndarray, membership: np.ndarray,
               sample_weight: np.ndarray | None) -> RocCurve:
    # Memory matters at 10^7 scores: temporaries are freed as soon as they are used, counts are
    # kept as integers, and at most ~5 arrays of n float64 are alive at once.
    if sample_weight is None:
        sorted_scores, is_member = _merge_sorted_sides(scores, membership)
        tp_all = np.cumsum(is_member, dtype=np.int32 if len(scores) < 2**31 else np.int64)
        del is_member
    else:
        order = np.argsort(-scores, kind="stable")
        sorted_scores = scores[order]
        tp_all = np.cumsum(np.where(membership[order], sample_weight[order], 0.0))
        fp_weights = np.cumsum(np.where(membership[order], 0.0, sample_weight[order]))
        del order
    # The last position of each run of equal scores is where that threshold's counts end.
    is_end = np.empty(len(sorted_scores), dtype=bool)
    np.not_equal(sorted_scores[1:], sorted_scores[:-1], out=is_end[:-1])
    is_end[-1] = True
    group_ends = np.flatnonzero(is_end)
    del is_end
    thresholds = np.empty(len(group_ends) + 1)
    thresholds[0] = np.inf
    np.take(sorted_scores, group_ends, out=thresholds[1:])
    del sorted_scores
    tpr = np.zeros(len(group_ends) + 1)
    tpr[1:] = tp_all[group_ends]
    del tp_all
    fpr = np.zeros(len(group_ends) + 1)
    if sample_weight is None:
        np.add(group_ends, 1, out=fpr[1:], casting="unsafe")
        fpr[1:] -= tpr[1:]
    else:
        np.take(fp_weights, group_ends, out=fpr[1:])
        del fp_weights
    del group_ends
    total_members, total_nonmembers = float(tpr[-1]), float(fpr[-1])
    if total_members <= 0 or total_nonmembers <= 0:
        raise InputError("sample_weight leaves members or non-members with zero total weight")
    tpr /= total_members
    fpr /= total_nonmembers
    return RocCurve(thresholds, tpr, fpr, total_members, total_nonmembers)


def _merge_sorted_sides(scores: np.ndarray,
                        membership: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All scores sorted descending (n,), and whether each sorted position is a member (n,).

    Members and non-members are sorted separately (fast unstable in-place sorts); a stable sort
    of the two sorted runs is then a linear-time merge (timsort finds the runs).
    """
    n_members = int(np.count_nonzero(membership))
    combined = np.empty(len(scores))
    combined[:n_members] = scores[membership]
    combined[n_members:] = scores[~membership]
    combined[:n_members].sort()
    combined[n_members:].sort()
    # Negated and reversed: each side becomes one ascending run for the stable merge.
    combined[:n_members] = -combined[:n_members][::-1]
    combined[n_members:] = -combined[n_members:][::-1]
    order = np.argsort(combined, kind="stable")
    sorted_scores = np.take(combined, order)
    del combined
    np.negative(sorted_scores, out=sorted_scores)
    is_member = order < n_members
    return sorted_scores, is_member


# --- metrics from a curve -----------------------------------------------------------------


def auc_from_roc(roc: RocCurve) -> float:
    """Trapezoidal area under the full curve (ties count one half)."""
    # In blocks, so a 10^7-point curve needs no full-length temporaries.
    total = 0.0
    for start in range(0, len(roc.fpr) - 1, _BLOCK):
        stop = min(start + _BLOCK, len(roc.fpr) - 1)
        widths = roc.fpr[start + 1 : stop + 1] - roc.fpr[start:stop]
        heights = roc.tpr[start + 1 : stop + 1] + roc.tpr[start:stop]
        widths *= heights
        total += float(np.sum(widths))  # not np.dot: BLAS threads badly under load
    return total / 2.0


def advantage_from_roc(roc: RocCurve) -> float:
    """Attacker advantage in our score direction: max over thresholds of TPR − FPR (≥ 0, the
    threshold +inf giving 0). An attack worse than chance has advantage 0, not |TPR − FPR|."""
    return float(np.max(roc.tpr - roc.fpr))


def ppv_grid(n_examples: int) -> np.ndarray:
    """The predicted-member counts at which :func:`ppv_from_roc` bounds the precision.

    1, 2, 3, 5, 8, 11, 17, … : powers of :data:`PPV_GRID_RATIO` rounded, distinct, up to
    ``n_examples``. The grid depends on the number of examples only, never on the scores, so
    a Bonferroni correction over its points makes the bounds simultaneous.

    >>> ppv_grid(20).tolist()
    [1, 2, 3, 5, 8, 11, 17]
    """
    if n_examples < 1:
        raise InputError(f"n_examples must be >= 1; got {n_examples}")
    steps = int(np.floor(np.log(n_examples) / np.log(PPV_GRID_RATIO))) + 1
    grid = np.unique(np.rint(PPV_GRID_RATIO ** np.arange(steps + 1)).astype(np.int64))
    return grid[grid <= n_examples]


def ppv_from_roc(roc: RocCurve, member_count: float | None = None,
                 nonmember_count: float | None = None) -> float:
    """A lower bound on TP / (TP + FP) that holds at every threshold at once, with 99%
    confidence: the precision the attack demonstrably reaches.

    For each count k of :func:`ppv_grid` (k = 1, 2, 3, 5, 8, … up to n), the threshold
    admitting the most predicted members, at most k, gets a Clopper-Pearson lower bound at
    level 0.01 / |grid|; the largest of these bounds is returned. By Bonferroni over the grid,
    which depends only on n, all bounds hold together with probability ≥ 99%, so on no-signal
    data the result exceeds the prior P/(P+N) in at most 1% of runs (measured: ≤ 0.34% of 3,000
    runs at 30, 300 and 3,000 per side; ``benchmarks/ppv_validity.py``). One lucky top-scored
    member gives 0.01 / |grid| (≈ 0.0005 at 6,000 examples), not 1.0. The maximum over every
    threshold of pointwise 99% bounds, by contrast, exceeded the prior in 10.7% of such runs.

    ``member_count``/``nonmember_count`` (unweighted counts) turn a weighted curve's rates
    into counts; default: the curve's totals.
    """
    members = roc.n_members if member_count is None else member_count
    nonmembers = roc.n_nonmembers if nonmember_count is None else nonmember_count
    # Only the curve's predicted counts are needed in full (to find the grid's points): at
    # 10^7 scores every other full-length temporary is another 80 MB.
    predicted = roc.tpr * members
    predicted += roc.fpr * nonmembers
    if member_count is None:
        np.rint(predicted, out=predicted)  # unweighted: exact integer counts
    grid = ppv_grid(max(1, round(members + nonmembers)))
    # The curve point with the most predicted members, at most k; index 0 (+inf) predicts none.
    index = np.searchsorted(predicted, grid + 1e-9, side="right") - 1
    index = np.unique(index[index > 0])
    del predicted
    tpr, fpr = roc.tpr[index], roc.fpr[index]
    predicted_there = tpr * members + fpr * nonmembers
    weighted_positive = tpr + (roc.n_nonmembers / roc.n_members) * fpr
    # Zero only where every predicted member has weight 0 (weighted curves).
    precision = np.divide(tpr, weighted_positive, out=np.zeros_like(tpr),
                          where=weighted_positive > 0)
    true_positives = precision * predicted_there
    if member_count is None:
        true_positives = np.rint(true_positives)
        predicted_there = np.rint(predicted_there)
    bounds = _clopper_pearson_lower(true_positives, predicted_there,
                                    (1 - PPV_CONFIDENCE) / len(grid))
    return float(np.max(bounds, initial=0.0))


def resolvable(fpr_target: float, n_nonmembers: float) -> bool:
    """Whether ``n_nonmembers`` resolve FPR ``fpr_target``: at least one false positive fits."""
    return n_nonmembers * fpr_target >= 1 - 1e-9


def unresolvable_note(fpr_target: float, n_nonmembers: float) -> str:
    """Why TPR at ``fpr_target`` is stored as None."""
    return (f"tpr_at_fpr[{fpr_target:g}] is null: {n_nonmembers:g} non-members resolve FPR "
            f"only down to {1.0 / n_nonmembers:.2g} (need n_nonmembers x FPR >= 1)")


def tpr_at_fpr_from_roc(roc: RocCurve, fpr_targets: Sequence[float] = DEFAULT_FPR_TARGETS,
                        *, warn: bool = True,
                        nonmember_count: float | None = None) -> dict[float, float | None]:
    """For each target f: the largest TPR among thresholds with FPR ≤ f, where resolvable.

    Where ``nonmember_count`` (default: the curve's total) × f < 1 the value is None: below
    one false positive the curve says nothing about that FPR.
    """
    count = roc.n_nonmembers if nonmember_count is None else nonmember_count
    result: dict[float, float | None] = {}
    for target in fpr_targets:
        target = check_probability("fpr_targets", target, open_interval=False)
        if not resolvable(target, count):
            if warn:
                warnings.warn(unresolvable_note(target, count), LowResolutionWarning,
                              stacklevel=2)
            result[float(target)] = None
            continue
        index = int(np.searchsorted(roc.fpr, target, side="right")) - 1
        result[float(target)] = float(roc.tpr[index])
    return result


def _tie_groups_of(roc: RocCurve) -> tuple[np.ndarray, np.ndarray]:
    """Members and non-members (k,) per threshold of an unweighted full curve: its steps are
    the groups of tied scores, in descending score order (what the rank test counts)."""
    return (np.rint(np.diff(roc.tpr) * roc.n_members),
            np.rint(np.diff(roc.fpr) * roc.n_nonmembers))


def rank_test_p_value(scores: np.ndarray, membership: np.ndarray, *,
                      strata: np.ndarray | None = None, roc: RocCurve | None = None) -> float:
    """One-sided p-value of H0 "the scores carry no membership information".

    Without ``strata`` (scores exchangeable under H0): Mann-Whitney U from the unweighted
    ``roc`` (computed when not given), exact for small slices without ties. With ``strata``
    (n,) (e.g. the folds of out-of-fold scores): one test per stratum, comparing only scores
    of one fold model, combined by Bonferroni (see :mod:`memberscope.significance`). Sample
    weights play no part: H0 is about the examples. The curve's steps are the tie groups
    :func:`memberscope.significance.p_value_from_groups` counts, so there is one U statistic.
    """
    if strata is None:
        if roc is None:
            roc = _roc_curve(scores, membership, None)
        return p_value_from_groups([_tie_groups_of(roc)])
    groups = []
    for stratum in distinct(strata):
        inside = strata == stratum
        side = membership[inside]
        if side.any() and not side.all():
            groups.append(_tie_groups_of(_roc_curve(scores[inside], side, None)))
    return p_value_from_groups(groups)


def roc_metrics(scores: np.ndarray, membership: np.ndarray,
                fpr_targets: Sequence[float] = DEFAULT_FPR_TARGETS,
                sample_weight: np.ndarray | None = None) -> dict[str, object]:
    """AUC, advantage, PPV and TPR at ``fpr_targets`` from one pass over the full ROC."""
    roc = roc_curve(scores, membership, sample_weight)
    if sample_weight is None:
        return {"auc": auc_from_roc(roc), "advantage": advantage_from_roc(roc),
                "ppv": ppv_from_roc(roc), "tpr_at_fpr": tpr_at_fpr_from_roc(roc, fpr_targets)}
    members = float(np.count_nonzero(membership))
    nonmembers = float(len(membership)) - members
    return {"auc": auc_from_roc(roc), "advantage": advantage_from_roc(roc),
            "ppv": ppv_from_roc(roc, members, nonmembers),
            "tpr_at_fpr": tpr_at_fpr_from_roc(roc, fpr_targets, nonmember_count=nonmembers)}


# --- empirical epsilon --------------------------------------------------------------------


def _clopper_pearson_lower(successes: np.ndarray, trials: float | np.ndarray,
                           alpha: float) -> np.ndarray:
    # scipy.special, not scipy.stats: stats costs ~1 s of import time for one function.
    from scipy.special import betaincinv

    with np.errstate(invalid="ignore"):
        lower = betaincinv(np.maximum(successes, 1e-300), trials - successes + 1, alpha)
    return np.where(successes > 0, lower, 0.0)


def _clopper_pearson_upper(successes: np.ndarray, trials: float, alpha: float) -> np.ndarray:
    from scipy.special import betaincinv

    with np.errstate(invalid="ignore"):
        upper = betaincinv(successes + 1, np.maximum(trials - successes, 1e-300), 1 - alpha)
    return np.where(successes < trials, upper, 1.0)


def _log_ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where((numerator > 0) & (denominator > 0),
                        np.log(np.maximum(numerator, 1e-300) / np.maximum(denominator, 1e-300)),
                        -np.inf)


def _bounds_at(tp: np.ndarray, fp: np.ndarray, n_members: float, n_nonmembers: float,
               alpha_each: float, delta: float) -> tuple[np.ndarray, np.ndarray]:
    """Both directions' (1 − 2·alpha_each) ε lower bounds at counts ``tp``, ``fp``."""
    tpr_lo = _clopper_pearson_lower(tp, n_members, alpha_each)
    fpr_hi = _clopper_pearson_upper(fp, n_nonmembers, alpha_each)
    tnr_lo = _clopper_pearson_lower(n_nonmembers - fp, n_nonmembers, alpha_each)
    fnr_hi = _clopper_pearson_upper(n_members - tp, n_members, alpha_each)
    return _log_ratio(tpr_lo - delta, fpr_hi), _log_ratio(tnr_lo - delta, fnr_hi)


def _candidate_indices(fpr: np.ndarray) -> np.ndarray:
    """At most a few hundred curve points, dense at low FPR, where a bound is worth trying."""
    positive = fpr[fpr > 0]
    low = positive.min() if len(positive) else 1e-6
    grid = np.concatenate([np.geomspace(low, 1.0, _EPSILON_CANDIDATES // 2),
                           np.linspace(0.0, 1.0, _EPSILON_CANDIDATES // 2)])
    index = np.searchsorted(fpr, grid, side="right") - 1
    return np.unique(np.clip(index, 0, len(fpr) - 1))


def epsilon_point(roc: RocCurve, delta: float = 0.0) -> float:
    """Plug-in ε at the best threshold: max of ln((TPR−δ)/FPR), ln((TNR−δ)/FNR), finite only."""
    forward = _log_ratio(roc.tpr - delta, roc.fpr)
    backward = _log_ratio((1 - roc.fpr) - delta, 1 - roc.tpr)
    values = np.concatenate([forward, backward])
    finite = values[np.isfinite(values)]
    return float(max(0.0, finite.max())) if len(finite) else 0.0


def epsilon_lower_bound(scores: np.ndarray, membership: np.ndarray, *, alpha: float = 0.05,
                        delta: float = 0.0, seed: int = 0,
                        roc: RocCurve | None = None) -> EpsilonBound:
    """Empirical ε lower bound of (ε, δ)-DP from an attack's scores (n,) and membership (n,).

    The threshold and direction are chosen on a seeded, membership-stratified half of the
    examples (maximising the Clopper-Pearson bound there); the ``confident`` bound is then
    computed on the other half with one-sided intervals at α/2 for each rate, so it holds with
    probability at least 1−α. ``point`` is the plug-in estimate on all examples (pass the
    unweighted full ``roc`` when already computed).
    """
    scores, membership, _ = _check_scores(scores, membership, None)
    alpha = check_probability("alpha", alpha)
    delta = check_probability("delta", delta, open_interval=False)
    point = epsilon_point(roc if roc is not None else _roc_curve(scores, membership, None), delta)
    select_half = _stratified_half(membership, np.random.default_rng(seed))
    bound_half = ~select_half
    if not _both_sides(membership, select_half) or not _both_sides(membership, bound_half):
        return EpsilonBound(point, 0.0, alpha, delta)
    select_roc = _roc_curve(scores[select_half], membership[select_half], None)
    candidates = _candidate_indices(select_roc.fpr)
    tp = select_roc.tpr[candidates] * select_roc.n_members
    fp = select_roc.fpr[candidates] * select_roc.n_nonmembers
    forward, backward = _bounds_at(np.round(tp), np.round(fp), select_roc.n_members,
                                   select_roc.n_nonmembers, alpha / 2, delta)
    best_forward, best_backward = int(np.argmax(forward)), int(np.argmax(backward))
    use_forward = forward[best_forward] >= backward[best_backward]
    threshold = select_roc.thresholds[candidates[best_forward if use_forward else best_backward]]
    held_scores, held_members = scores[bound_half], membership[bound_half]
    predicted = held_scores >= threshold
    n_members, n_nonmembers = float(held_members.sum()), float((~held_members).sum())
    held_tp = np.array([float((predicted & held_members).sum())])
    held_fp = np.array([float((predicted & ~held_members).sum())])
    held_out = HeldOutCounts(int(held_tp[0]), int(held_fp[0]), int(n_members),
                             int(n_nonmembers), bool(use_forward))
    return EpsilonBound(point, held_out.confident(alpha, delta), alpha, delta, held_out)


def family_epsilon_lower_bound(bounds: Sequence[EpsilonBound], *,
                               alpha: float = 0.05) -> FamilyEpsilon | None:
    """(1−α) lower bound on ε from the largest of k rows' bounds (k = ``len(bounds)`` ≥ 1).

    The largest of k bounds each valid at 1−α is not a (1−α) bound: on randomised-response
    outputs (exactly ε0-DP) the largest of an audit's 22 rows exceeded ε0 in 37 and 51 of 700
    audits (ε0 = 1, 2; benchmarks/dp_figure_bound.py), this bound in none. Each row's bound
    recomputed at α/k from its held-out counts makes the largest exceed the true ε with
    probability ≤ α by the union bound, however the rows depend on each other. Rows whose
    bound was 0 without held-out counts (no threshold could be tried) stay 0; any other row
    without counts (written before they were kept) makes the correction impossible: None.
    """
    alpha = check_probability("alpha", alpha)
    if not bounds:
        raise InputError("bounds must hold at least one row's epsilon bound; got none")
    values = []
    for bound in bounds:
        value = bound.confident_at(alpha / len(bounds))
        if value is None:
            if bound.confident > 0:
                return None
            value = 0.0
        values.append(value)
    index = int(np.argmax(values))
    return FamilyEpsilon(values[index], alpha, len(bounds), index)


def _stratified_half(membership: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A seeded mask holding exactly ⌊n₁/2⌋ of the n₁ members and ⌊n₀/2⌋ of the n₀
    non-members, each side's subset uniform among those of its size.

    The ε bound picks its threshold on this half and bounds on the rest (⌈n/2⌉ per side, the
    larger share for the bound). Validity needs only that the split ignores the scores; exact
    sizes make both halves as large as they can be, where a coin flip per example could leave
    one side of a small slice nearly empty.
    """
    mask = np.zeros(len(membership), dtype=bool)
    for side in (np.flatnonzero(membership), np.flatnonzero(~membership)):
        mask[rng.choice(side, len(side) // 2, replace=False)] = True
    return mask


def _both_sides(membership: np.ndarray, mask: np.ndarray) -> bool:
    chosen = membership[mask]
    return bool(chosen.any() and not chosen.all())


# --- everything for one attack on one slice ------------------------------------------------


def bootstrap_intervals(scores: np.ndarray, membership: np.ndarray, *, n_bootstrap: int,
                        fpr_targets: Sequence[float] = DEFAULT_FPR_TARGETS,
                        confidence: float = 0.95, seed: int = 0,
                        sample_weight: np.ndarray | None = None,
                        ) -> tuple[tuple[float, float], dict[float, tuple[float, float] | None]]:
    """Percentile bootstrap intervals for AUC and TPR at each FPR target.

    Members and non-members are resampled separately so each replicate keeps the slice's counts;
    each resampled example keeps its weight. A target the non-members cannot resolve
    (N·f < 1) gets None, like its TPR.
    """
    scores, membership, sample_weight = _check_scores(scores, membership, sample_weight)
    if n_bootstrap < 2:
        raise InputError(f"n_bootstrap must be >= 2; got {n_bootstrap}")
    rng = np.random.default_rng(seed)
    member_index, nonmember_index = np.flatnonzero(membership), np.flatnonzero(~membership)
    replicate_membership = np.concatenate([np.ones(len(member_index), bool),
                                           np.zeros(len(nonmember_index), bool)])
    targets = [float(f) for f in fpr_targets]
    aucs = np.empty(n_bootstrap)
    tprs = np.full((n_bootstrap, len(targets)), np.nan)
    for b in range(n_bootstrap):
        index = np.concatenate([
            member_index[rng.integers(0, len(member_index), len(member_index))],
            nonmember_index[rng.integers(0, len(nonmember_index), len(nonmember_index))],
        ])
        weights = None if sample_weight is None else sample_weight[index]
        roc = _roc_curve(scores[index], replicate_membership, weights)
        aucs[b] = auc_from_roc(roc)
        values = tpr_at_fpr_from_roc(roc, targets, warn=False,
                                     nonmember_count=float(len(nonmember_index)))
        tprs[b] = [np.nan if v is None else v for v in values.values()]
    tail = (1 - confidence) / 2 * 100
    auc_ci = _interval(aucs, tail)
    tpr_ci = {f: (_interval(tprs[:, i], tail) if resolvable(f, len(nonmember_index)) else None)
              for i, f in enumerate(targets)}
    return auc_ci, tpr_ci


def _interval(values: np.ndarray, tail: float) -> tuple[float, float]:
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def attack_metrics(scores: np.ndarray, membership: np.ndarray, *,
                   fpr_targets: Sequence[float] = DEFAULT_FPR_TARGETS, alpha: float = 0.05,
                   delta: float = 0.0, seed: int = 0, n_bootstrap: int = 0,
                   sample_weight: np.ndarray | None = None,
                   strata: np.ndarray | None = None) -> AttackMetrics:
    """Every metric of one attack's ``scores`` (n,) on examples with ``membership`` (n,).

    ``strata`` (n,), optional: groups within which alone the scores are exchangeable under
    H0 (the folds of out-of-fold scores); the p-value then uses the stratified test.
    """
    scores, membership, sample_weight = _check_scores(scores, membership, sample_weight)
    if strata is not None and np.shape(strata) != scores.shape:
        raise InputError(f"strata must be (n,) like scores; got shape {np.shape(strata)}")
    roc = _roc_curve(scores, membership, sample_weight)
    unweighted = roc if sample_weight is None else None
    n_members = float(np.count_nonzero(membership))
    n_nonmembers = float(len(membership)) - n_members
    auc_ci = tpr_ci = None
    if n_bootstrap:
        auc_ci, tpr_ci = bootstrap_intervals(scores, membership, n_bootstrap=n_bootstrap,
                                             fpr_targets=fpr_targets, seed=seed,
                                             sample_weight=sample_weight)
    tpr_at_fpr = tpr_at_fpr_from_roc(roc, fpr_targets, nonmember_count=n_nonmembers)
    notes = tuple(unresolvable_note(f, n_nonmembers)
                  for f, value in tpr_at_fpr.items() if value is None)
    auc = auc_from_roc(roc)
    return AttackMetrics(
        auc=auc,
        advantage=advantage_from_roc(roc),
        ppv=ppv_from_roc(roc, n_members, n_nonmembers) if sample_weight is not None
        else ppv_from_roc(roc),
        tpr_at_fpr=tpr_at_fpr,
        epsilon=epsilon_lower_bound(scores, membership, alpha=alpha, delta=delta, seed=seed,
                                    roc=unweighted),
        auc_ci=auc_ci,
        tpr_at_fpr_ci=tpr_ci,
        roc=roc,
        p_value=rank_test_p_value(scores, membership, strata=None if strata is None
                                  else np.asarray(strata), roc=unweighted),
        notes=notes,
    )
