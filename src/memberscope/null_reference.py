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

The maximum of k rows is taken as if the rows were independent: P(max ≤ q) = Π Fᵢ(q), solved
for q. Rows of one audit are positively dependent (the entire dataset contains every class
slice; attacks score the same examples), and for positively dependent normal statistics the
product is a lower bound on P(max ≤ q) (Slepian's inequality), so the band is at or above the
true quantile: conservative, never a band that real noise routinely clears. Scores of trained
attacks (out-of-fold models) vary a little more under H0 than exchangeable scores; the band is
a reference for the eye, the row's ``p_value`` and ``significant`` are the tests.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import optimize, special, stats

from memberscope._validation import check_probability
from memberscope.errors import InputError
from memberscope.metric_definitions import AUC, SCALAR_METRICS, Metric, parse_metric


def chance_level(metric: str | Metric) -> float | None:
    """The value a no-signal attack centres on — AUC 0.5, advantage 0, TPR at FPR F: F — or
    None for a metric without a chance band (:attr:`Metric.chance
    <memberscope.metric_definitions.Metric>`); an unknown name raises."""
    return (metric if isinstance(metric, Metric) else parse_metric(metric)).chance


def null_auc_sd(n_members: int, n_nonmembers: int) -> float:
    """Standard deviation of a slice's AUC under H0 (no ties), √((n₁+n₂+1)/(12 n₁ n₂)).

    >>> round(null_auc_sd(100, 100), 4)
    0.0409
    """
    _check_sizes([(n_members, n_nonmembers)])
    return math.sqrt((n_members + n_nonmembers + 1) / (12.0 * n_members * n_nonmembers))


def max_null_quantile(metric: str | Metric, sizes: Sequence[tuple[int, int]],
                      level: float = 0.95) -> float:
    """The ``level`` quantile of the maximum of ``metric`` over rows of ``sizes`` under H0.

    Parameters
    ----------
    metric : {"auc", "advantage", "tpr@F"}
    sizes : sequence of (n_members, n_nonmembers), one per row the maximum is taken over
        (rows with an empty side compare nothing and are left out; for ``tpr@F`` every row
        must resolve F: n_nonmembers · F ≥ 1).
    level : float in (0, 1)

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
    parsed = metric if isinstance(metric, Metric) else parse_metric(metric)
    chance = parsed.chance
    if chance is None:
        banded = [m.key for m in SCALAR_METRICS if m.chance is not None]
        raise InputError(f"metric must be one of {', '.join(banded)} or tpr@F (0 < F < 1) "
                         f"for a chance band; got {parsed.key!r}")
    level = check_probability("level", level)
    _check_sizes([(a, b) for a, b in sizes if a != 0 and b != 0])
    pairs = [(int(a), int(b)) for a, b in sizes if a > 0 and b > 0]
    if not pairs:
        raise InputError("sizes must hold at least one row with members and non-members")
    n1, n2 = np.array(pairs, dtype=np.float64).T
    target = math.log(level)
    if parsed is AUC:
        sd = np.sqrt((n1 + n2 + 1) / (12 * n1 * n2))

        def log_cdf(q: float) -> float:
            return float(special.log_ndtr((q - 0.5) / sd).sum())
    elif parsed.fpr is not None:
        return _max_null_tpr_quantile(parsed.fpr, n1, n2, target)
    else:
        effective = n1 * n2 / (n1 + n2)

        def log_cdf(q: float) -> float:
            tail = np.exp(-2 * q * q * effective)
            return -math.inf if tail.max() >= 1 else float(np.log1p(-tail).sum())

    low, high = chance, 1.0
    if log_cdf(high) <= target:
        return high
    if parsed is AUC and log_cdf(low) >= target:  # only for level ≤ 0.5^k
        return low
    return float(optimize.brentq(lambda q: log_cdf(q) - target, low, high, xtol=1e-9))


def _max_null_tpr_quantile(fpr: float, n1: np.ndarray, n2: np.ndarray, target: float) -> float:
    """The smallest TPR q with Π P(TPRᵢ ≤ q) ≥ e^target (TPRs are steps of 1/n₁ᵢ)."""
    allowed = np.floor(fpr * n2 + 1e-9)  # false positives a threshold may admit
    if np.any(allowed < 1):
        raise InputError(f"sizes must resolve FPR {fpr:g} (n_nonmembers x FPR >= 1); the "
                         f"smallest has {int(n2.min())} non-members")
    total = n1 + n2

    def log_cdf(q: float) -> float:
        found = np.floor(q * n1 + 1e-9)  # members above the threshold
        drawn = np.minimum(found + allowed + 1, total)
        return float(np.log(stats.hypergeom.sf(allowed, total, n2, drawn)).sum())

    # Candidate answers are the values the rows can take; the CDF product only steps there.
    candidates = np.unique(np.concatenate([np.arange(int(a) + 1) / a for a in n1]))
    low, high = 0, len(candidates) - 1
    while low < high:
        middle = (low + high) // 2
        if log_cdf(float(candidates[middle])) >= target:
            high = middle
        else:
            low = middle + 1
    return float(candidates[low])


def _check_sizes(sizes: Sequence[tuple[int, int]]) -> None:
    for members, nonmembers in sizes:
        if members < 1 or nonmembers < 1:
            raise InputError(f"sizes must be positive (n_members, n_nonmembers) pairs; got "
                             f"({members}, {nonmembers})")
