"""How high can the *maximum* of many results climb by chance alone? The chance band of plots.

A by-epoch figure shows at each epoch the worst of k results (slices × attacks), so even a
model that leaks nothing draws a line well above 0.5: the maximum of k null AUCs. This module
gives the level that maximum stays below with probability ``level`` (95%) under H0 "the scores
carry no membership information", for the slice sizes plotted.

Per row, the null distribution used:

- ``auc``: normal with mean 0.5 and sd √((n₁ + n₂ + 1) / (12 n₁ n₂)) (the Mann-Whitney
  statistic without ties, divided by n₁ n₂);
- ``advantage`` (max over thresholds of TPR − FPR, the one-sided two-sample
  Kolmogorov-Smirnov statistic D⁺): Smirnov's limit P(D⁺ ≥ d) = exp(−2 d² n₁ n₂ / (n₁ + n₂)),
  slightly conservative for small slices (the maximum of 11 slices of 40 + 30: 0.396 against
  0.375 by simulation; AUC quantiles agree with simulation within 0.003);
- ``tpr@F`` (the largest TPR with FPR ≤ F): exact. With k = ⌊F·n₂⌋ false positives allowed,
  TPR·n₁ is the number X of members ranked above the (k+1)-th highest non-member, and
  P(X ≤ x) = P(at least k+1 non-members among the top x+k+1 scores), a hypergeometric tail.
  Its chance level is F.

Trained attacks (:class:`FoldPooling`) pool the out-of-fold scores of k fold models, each
fold's scores as within-fold percentiles. Were the folds independent, the pooled AUC would
spread exactly like the Mann-Whitney AUC (simulated: sd ratio 0.99-1.02): it is, to first
order, the mean of the k within-fold AUCs (each member's percentile is its rank among its
fold), and the cross-fold comparisons add nothing to the variance. The extra spread comes from
the fold models: the model scoring fold f learnt the noise of fold g and the model scoring g
learnt that of f, so the folds' AUCs are positively correlated under H0. For a linear attacker
whose weights follow the training mean difference, that correlation is

    ρ = V_held-out / ((k − 1)² V_train),  V_held-out = 1/m_f + 1/n_f,  V_train = 2 / t,

(m_f, n_f a fold's members and non-members, t the members = non-members a training fold
keeps after balancing and capping): 1/(k − 1) for balanced slices, less where the larger side
is subsampled. The pooled AUC's variance is then the Mann-Whitney variance × (1 + (k − 1) ρ)
(√2 × the sd for three balanced folds). Each attack scales ρ by its ``dependence``, measured
at several sizes (ranks and nonlinear models share less than the linear ideal, and forests
and neighbours fit on few examples less still; ``benchmarks/chance_bands.py --calibrate``).
The advantage's effective size n₁n₂/(n₁+n₂) is divided by the same factor², and a TPR's
distance from its mean under H0, (k + 1)/(n₂ + 1) for k = ⌊F·n₂⌋, is divided by it before
the exact null below is read. For the TPR this is a measured choice, not a derivation: a
shared shift of the members' scores in a normal model moves the TPR at 1% FPR less than the
AUC, yet no-signal lr and rf audits exceeded that model's band at 1% FPR in 7-8% of 150;
with the AUC's factor 4.0-5.3% (1% FPR) and 2.0-4.0% (10%) (``benchmarks/chance_bands.py``).

The maximum of k rows is taken as if the rows were independent: P(max ≤ q) = Π Fᵢ(q), solved
for q. Rows of one audit are positively dependent (the entire dataset contains every class
slice; attacks score the same examples), and for positively dependent normal statistics the
product is a lower bound on P(max ≤ q) (Slepian's inequality), so the band is at or above the
true quantile: conservative, never a band that real noise routinely clears. The band is a
reference for the eye; the row's ``p_value`` and ``significant`` are the tests.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from memberscope._validation import check_probability
from memberscope.errors import InputError
from memberscope.metric_definitions import AUC, SCALAR_METRICS, Metric, parse_metric


def chance_level(metric: str | Metric) -> float | None:
    """The value a no-signal attack centres on — AUC 0.5, advantage 0, TPR at FPR F: F — or
    None for a metric without a chance band (:attr:`Metric.chance
    <memberscope.metric_definitions.Metric>`); an unknown name raises."""
    return (metric if isinstance(metric, Metric) else parse_metric(metric)).chance


@dataclass(frozen=True)
class FoldPooling:
    """How a trained attack pools out-of-fold scores, as far as their spread under H0
    depends on it: ``n_folds`` (k), ``max_train_per_side`` (the cap on each side of a
    training fold, after balancing) and ``dependence``: the correlation of two folds' AUCs
    relative to a linear attacker's (see the module docstring), as points
    (training examples per side, dependence) measured at several sizes, interpolated
    linearly in the log of the size and constant beyond the measured sizes."""

    n_folds: int
    max_train_per_side: int
    dependence: tuple[tuple[float, float], ...]

    def __post_init__(self) -> None:
        if self.n_folds < 2 or self.max_train_per_side < 1:
            raise InputError(f"FoldPooling needs n_folds >= 2 and max_train_per_side >= 1; "
                             f"got {self.n_folds} and {self.max_train_per_side}")
        sizes = [size for size, _ in self.dependence]
        if not sizes or min(sizes) <= 0 or sizes != sorted(set(sizes)) or not all(
                0.0 <= value <= 1.0 for _, value in self.dependence):
            raise InputError(f"FoldPooling.dependence must be (size, value) points with "
                             f"increasing positive sizes and values within [0, 1]; got "
                             f"{self.dependence!r}")

    def dependence_at(self, train_per_side: float) -> float:
        """The dependence for training folds of ``train_per_side`` examples per side."""
        sizes = np.log([size for size, _ in self.dependence])
        values = [value for _, value in self.dependence]
        return float(np.interp(math.log(train_per_side), sizes, values))


def fold_correlation(n_members: float, n_nonmembers: float, pooling: FoldPooling) -> float:
    """Correlation of two folds' AUCs under H0 for a slice of these sizes (module docstring).

    >>> linear = FoldPooling(3, 5000, ((1, 1.0),))
    >>> round(fold_correlation(1000, 1000, linear), 3)  # 1 / (k - 1)
    0.5
    >>> round(fold_correlation(3000, 600, linear), 3)  # the members subsampled
    0.3
    """
    k = pooling.n_folds
    kept = min(pooling.max_train_per_side, (k - 1) / k * min(n_members, n_nonmembers))
    held_out = k / n_members + k / n_nonmembers
    return min(1.0, pooling.dependence_at(kept) * held_out / ((k - 1) ** 2 * 2.0 / kept))


def spread_factor(n_members: float, n_nonmembers: float,
                  pooling: FoldPooling | None) -> float:
    """How many times the Mann-Whitney sd a row's AUC spreads under H0: √(1 + (k − 1) ρ)
    for pooled fold scores, 1 for exchangeable scores (``pooling`` None)."""
    if pooling is None:
        return 1.0
    correlation = fold_correlation(n_members, n_nonmembers, pooling)
    return math.sqrt(1.0 + (pooling.n_folds - 1) * correlation)


def null_auc_sd(n_members: int, n_nonmembers: int, pooling: FoldPooling | None = None) -> float:
    """Standard deviation of a slice's AUC under H0 (no ties): √((n₁+n₂+1)/(12 n₁ n₂)) for
    exchangeable scores, × :func:`spread_factor` for a trained attack's pooled fold scores.

    >>> round(null_auc_sd(100, 100), 4)
    0.0409
    >>> round(null_auc_sd(100, 100, FoldPooling(3, 5000, ((1, 1.0),))), 4)  # x sqrt(2)
    0.0579
    """
    _check_sizes([(n_members, n_nonmembers)])
    return spread_factor(n_members, n_nonmembers, pooling) * math.sqrt(
        (n_members + n_nonmembers + 1) / (12.0 * n_members * n_nonmembers))


def max_null_quantile(metric: str | Metric, sizes: Sequence[tuple[int, int]],
                      level: float = 0.95, *,
                      pooling: Sequence[FoldPooling | None] | None = None) -> float:
    """The ``level`` quantile of the maximum of ``metric`` over rows of ``sizes`` under H0.

    Parameters
    ----------
    metric : {"auc", "advantage", "tpr@F"}
    sizes : sequence of (n_members, n_nonmembers), one per row the maximum is taken over
        (rows with an empty side compare nothing and are left out; for ``tpr@F`` every row
        must resolve F: n_nonmembers · F ≥ 1).
    level : float in (0, 1)
    pooling : sequence of FoldPooling or None, one per row, optional
        How each row's attack pooled fold scores (None: exchangeable scores, the default
        for every row): widens the AUC's and the advantage's null spread by
        :func:`spread_factor`, and the TPR's distance from its mean by the same factor.

    Returns
    -------
    float
        q with Π P(rowᵢ ≤ q) = ``level`` (see the module docstring), within [chance, 1].

    Examples
    --------
    >>> round(max_null_quantile("auc", [(100, 100)]), 3)  # one row: 0.5 + 1.645 sd
    0.567
    >>> max_null_quantile("auc", [(100, 100)] * 11) > max_null_quantile("auc", [(100, 100)])
    True
    """
    from scipy import optimize, special  # here: scipy's submodules cost import time

    parsed = metric if isinstance(metric, Metric) else parse_metric(metric)
    chance = parsed.chance
    if chance is None:
        banded = [m.key for m in SCALAR_METRICS if m.chance is not None]
        raise InputError(f"metric must be one of {', '.join(banded)} or tpr@F (0 < F < 1) "
                         f"for a chance band; got {parsed.key!r}")
    level = check_probability("level", level)
    _check_sizes([(a, b) for a, b in sizes if a != 0 and b != 0])
    poolings = [None] * len(sizes) if pooling is None else list(pooling)
    if len(poolings) != len(sizes):
        raise InputError(f"pooling must have one entry per row of sizes ({len(sizes)}); got "
                         f"{len(poolings)}")
    kept = [(int(a), int(b), how) for (a, b), how in zip(sizes, poolings, strict=True)
            if a > 0 and b > 0]
    if not kept:
        raise InputError("sizes must hold at least one row with members and non-members")
    n1 = np.array([a for a, _, _ in kept], dtype=np.float64)
    n2 = np.array([b for _, b, _ in kept], dtype=np.float64)
    spread = np.array([spread_factor(a, b, how) for a, b, how in kept])
    target = math.log(level)
    if parsed is AUC:
        sd = spread * np.sqrt((n1 + n2 + 1) / (12 * n1 * n2))

        def log_cdf(q: float) -> float:
            return float(special.log_ndtr((q - 0.5) / sd).sum())
    elif parsed.fpr is not None:
        return _max_null_tpr_quantile(parsed.fpr, n1, n2, target, spread)
    else:
        effective = n1 * n2 / (n1 + n2) / spread**2

        def log_cdf(q: float) -> float:
            tail = np.exp(-2 * q * q * effective)
            return -math.inf if tail.max() >= 1 else float(np.log1p(-tail).sum())

    low, high = chance, 1.0
    if log_cdf(high) <= target:
        return high
    if parsed is AUC and log_cdf(low) >= target:  # only for level ≤ 0.5^k
        return low
    return float(optimize.brentq(lambda q: log_cdf(q) - target, low, high, xtol=1e-9))


def _max_null_tpr_quantile(fpr: float, n1: np.ndarray, n2: np.ndarray, target: float,
                           widen: np.ndarray) -> float:
    """The smallest TPR q with Π P(TPRᵢ ≤ q) ≥ e^target; row i's TPR spreads ``widen``ᵢ
    times as far from its mean under H0 as for exchangeable scores (TPRs of exchangeable
    scores are steps of 1/n₁ᵢ)."""
    from scipy import stats

    allowed = np.floor(fpr * n2 + 1e-9)  # false positives a threshold may admit
    if np.any(allowed < 1):
        raise InputError(f"sizes must resolve FPR {fpr:g} (n_nonmembers x FPR >= 1); the "
                         f"smallest has {int(n2.min())} non-members")
    total = n1 + n2
    centre = (allowed + 1) / (n2 + 1)  # the mean TPR under H0

    def log_cdf(q: float) -> float:
        # Members above the threshold, for q brought back to the exchangeable spread.
        found = np.floor((centre + (q - centre) / widen) * n1 + 1e-9)
        drawn = np.clip(found + allowed + 1, 0, total)
        return float(np.log(stats.hypergeom.sf(allowed, total, n2, drawn)).sum())

    # Candidate answers are where some row's CDF steps; the product only steps there.
    candidates = np.unique(np.concatenate(
        [c + w * (np.arange(int(a) + 1) / a - c) for a, c, w in zip(n1, centre, widen,
                                                                   strict=True)]))
    candidates = candidates[(candidates >= 0) & (candidates <= 1)]
    low, high = 0, len(candidates) - 1
    while low < high:
        middle = (low + high) // 2
        if log_cdf(float(candidates[middle])) >= target:
            high = middle
        else:
            low = middle + 1
    return float(candidates[low])


def tpr_at_fpr_p_value(tpr: float, n_members: int, n_nonmembers: int, fpr: float,
                       pooling: FoldPooling | None = None) -> float:
    """One-sided p-value of a row's TPR at FPR ≤ ``fpr``: P(TPR ≥ ``tpr``) under H0.

    With k = ⌊F·n₂⌋ false positives allowed, TPR·n₁ ≥ x exactly when at most k non-members
    are among the top x + k scores, a hypergeometric probability: exact for exchangeable
    scores without ties. Ties only lower the TPR a curve reaches (its thresholds are a subset
    of those of any tie-breaking), so the p-value stays valid with them. For a trained
    attack's pooled fold scores (``pooling``) the TPR's distance from its mean under H0 is
    first divided by :func:`spread_factor` (module docstring).

    Parameters
    ----------
    tpr : float in [0, 1]
        The row's largest TPR with FPR ≤ ``fpr``.
    n_members, n_nonmembers : int
        The slice's sizes; the non-members must resolve ``fpr`` (n₂·F ≥ 1).
    fpr : float in (0, 1)

    Examples
    --------
    >>> round(tpr_at_fpr_p_value(0.0, 1000, 1000, 0.01), 3)  # nothing found: 1
    1.0
    >>> tpr_at_fpr_p_value(0.05, 1000, 1000, 0.01) < 1e-4  # 5x the chance level F
    True
    """
    from scipy import stats

    _check_sizes([(n_members, n_nonmembers)])
    allowed = math.floor(fpr * n_nonmembers + 1e-9)
    if allowed < 1:
        raise InputError(f"n_nonmembers={n_nonmembers} cannot resolve FPR {fpr:g} (need "
                         "n_nonmembers x FPR >= 1)")
    centre = (allowed + 1) / (n_nonmembers + 1)  # the mean TPR under H0
    widen = spread_factor(n_members, n_nonmembers, pooling)
    found = math.ceil((centre + (tpr - centre) / widen) * n_members - 1e-6)
    if found <= 0:
        return 1.0
    total = n_members + n_nonmembers
    return float(stats.hypergeom.cdf(allowed, total, n_nonmembers, found + allowed))


def _check_sizes(sizes: Sequence[tuple[int, int]]) -> None:
    for members, nonmembers in sizes:
        if members < 1 or nonmembers < 1:
            raise InputError(f"sizes must be positive (n_members, n_nonmembers) pairs; got "
                             f"({members}, {nonmembers})")
