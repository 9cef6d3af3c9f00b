"""Is an attack distinguishable from chance? One-sided rank tests and a family-wise correction.

H0 for every row of an audit: *the scores carry no membership information*. What makes a test
valid under H0 is which scores are exchangeable between members and non-members:

- one statistic per example computed without looking at membership (threshold attacks; LiRA and
  RMIA, whose reference models were not trained on the audited split): all scores of a slice
  are exchangeable, so the one-sided Mann-Whitney U test applies (:func:`p_value_from_groups`,
  fed by :func:`memberscope.metrics.rank_test_p_value` with the tie groups of the ROC curve);
- out-of-fold scores of trained attacks: each fold's held-out examples are scored by one model
  fit on the other folds, so scores are exchangeable *within* a fold but not across folds (the
  fold models differ). Pooling them made 8.8% of no-signal rows "significant" at 0.05. Each
  fold's Mann-Whitney test is exactly valid (its model never saw the fold), but the folds'
  statistics are positively correlated (every two fold models share training data): van
  Elteren's stratified sum, which assumes independent strata, put 9-12% of no-signal lr rows
  below 0.05 here. So the per-fold p-values are combined by Bonferroni, k × the smallest,
  valid under any dependence (measured: 4.4-4.8% below 0.05; Simes' combination, valid under
  the positive dependence seen here, gained < 2% power and is not used).

:func:`significant_rows` then applies Holm's step-down correction over all rows of one audit, so
the chance that any row of a no-signal audit is called significant stays ≤ α.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from memberscope._validation import check_probability
from memberscope.errors import InputError, UnknownNameError

CORRECTIONS = ("holm", "bonferroni")
_EXACT_MAX_PAIRS = 10_000


def p_value_from_groups(strata: Sequence[tuple[np.ndarray, np.ndarray]]) -> float:
    """One-sided Mann-Whitney p-value from tie groups; several strata combined by Bonferroni.

    Each stratum is ``(members, nonmembers)``: counts (k,) per group of tied scores, groups in
    descending score order (as on an ROC curve). See :func:`u_test_p_value` and
    :func:`combine_strata`.
    """
    return combine_strata([u_test_p_value(*_u_statistic(members, nonmembers))
                           for members, nonmembers in strata])


def u_test_p_value(u: float, n_members: int, n_nonmembers: int,
                   tie_term: float) -> float | None:
    """P(U ≥ u) under H0 for U = #(member above non-member) + ½ #(tied pairs).

    ``tie_term`` is Σ (t³ − t) over groups of t tied scores. Without ties and with
    C(n, n_members) < 2^60: exact. Otherwise the normal approximation with the tie-corrected
    variance and a continuity correction; 1.0 when every score is tied; None when one side is
    empty (nothing is compared).
    """
    if n_members == 0 or n_nonmembers == 0:
        return None
    if tie_term == 0 and _exact_is_affordable(n_members, n_nonmembers):
        return _exact_upper_tail(u, n_members, n_nonmembers)
    variance = _u_variance(n_members, n_nonmembers, tie_term)
    if variance <= 0:
        return 1.0
    return _normal_upper_tail((u - n_members * n_nonmembers / 2 - 0.5) / math.sqrt(variance))


def combine_strata(p_values: Sequence[float | None]) -> float:
    """Bonferroni over the strata that compared anything: min(1, m × the smallest p-value)
    for m such strata (valid however the strata's statistics depend on each other); 1.0 when
    there are none."""
    compared = [p for p in p_values if p is not None]
    if not compared:
        return 1.0
    return min(1.0, len(compared) * min(compared))


def _u_statistic(members: np.ndarray, nonmembers: np.ndarray) -> tuple[float, int, int, float]:
    """U = #(member above non-member) + ½ #(tied pairs), the two counts, Σ (t³ − t) over groups."""
    n_members, n_nonmembers = round(float(members.sum())), round(float(nonmembers.sum()))
    # Each group's members beat the non-members below it and tie with those inside it. Plain
    # products, not np.dot: BLAS dot threads badly under load (33 ms instead of 1 ms at 60k).
    nonmembers_credit = n_nonmembers - np.cumsum(nonmembers)
    nonmembers_credit += 0.5 * nonmembers
    u = float(np.sum(members * nonmembers_credit))
    sizes = members + nonmembers
    tie_term = float(np.sum((sizes * sizes - 1) * sizes))
    return u, n_members, n_nonmembers, tie_term


def _u_variance(n_members: int, n_nonmembers: int, tie_term: float) -> float:
    n = n_members + n_nonmembers
    if n < 2:
        return 0.0
    return n_members * n_nonmembers / 12 * ((n + 1) - tie_term / (n * (n - 1)))


def _normal_upper_tail(z: float) -> float:
    return 0.5 * math.erfc(z / math.sqrt(2))


def _exact_upper_tail(u: float, n_members: int, n_nonmembers: int) -> float:
    """P(U ≥ u) under H0 without ties, by counting arrangements exactly.

    The number of arrangements with U = k is the coefficient of q^k in the Gaussian binomial
    [m+n choose m]_q = Π_{i=1..m} (1 − q^(n+i)) / (1 − q^i), computed in int64 (callers keep
    C(m+n, m) < 2^60, so every intermediate coefficient is exact).
    """
    small, large = sorted((n_members, n_nonmembers))
    counts = np.zeros(small * large + 1, dtype=np.int64)
    counts[0] = 1
    for i in range(1, small + 1):
        shift = large + i
        counts[shift:] -= counts[:-shift].copy()
        # Dividing by (1 − q^i) is a running sum along each residue class modulo i.
        padded = np.zeros(-(-len(counts) // i) * i, dtype=np.int64)
        padded[: len(counts)] = counts
        counts = np.cumsum(padded.reshape(-1, i), axis=0).reshape(-1)[: len(counts)]
    threshold = math.ceil(u - 1e-9)
    return float(counts[threshold:].sum() / counts.sum())


def _exact_is_affordable(n_members: int, n_nonmembers: int) -> bool:
    return (n_members * n_nonmembers <= _EXACT_MAX_PAIRS
            and math.comb(n_members + n_nonmembers, n_members) < 2**60)


def significant_rows(p_values: Sequence[float], *, alpha: float = 0.05,
                     correction: str = "holm") -> np.ndarray:
    """Which of the family's p-values are significant after a family-wise correction.

    ``holm`` (default): Holm's step-down procedure — sort ascending, reject p_(i) while
    p_(i) ≤ α / (m − i + 1); it controls the family-wise error rate at α for any dependence
    between the tests and is uniformly more powerful than ``bonferroni`` (p ≤ α / m).

    Returns a (m,) bool array in the order of ``p_values``.
    """
    alpha = check_probability("alpha", alpha)
    check_correction(correction)
    values = np.asarray(p_values, dtype=np.float64)
    if values.ndim != 1 or np.isnan(values).any():
        raise InputError("p_values must be a 1-D sequence of numbers without NaN")
    m = len(values)
    if correction == "bonferroni":
        return values <= alpha / m
    order = np.argsort(values, kind="stable")
    passes = values[order] <= alpha / (m - np.arange(m))
    # Step-down: stop at the first failure.
    n_rejected = m if passes.all() else int(np.argmin(passes))
    significant = np.zeros(m, dtype=bool)
    significant[order[:n_rejected]] = True
    return significant


def check_correction(correction: object) -> str:
    """``correction`` if it names a known family-wise correction; else an error listing them."""
    if not isinstance(correction, str) or correction not in CORRECTIONS:
        raise UnknownNameError("correction", str(correction), CORRECTIONS)
    return correction
