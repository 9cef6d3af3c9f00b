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

A statement about several audits ("no leakage at any epoch", the run's worst result, which
variants leak) is a test over all their rows: an audit's own correction no longer bounds it
(6 no-signal audits of 22 rows each had a significant row in 13.5% of runs).
:func:`family_verdicts` corrects over every test of the audits given, with the audits'
recorded α and correction (:class:`FamilyVerdicts`).

:func:`paired_auc_p_value` compares two scores *on the same examples* (an attack against the
split guard's score): DeLong, DeLong & Clarke-Pearson's (1988) test on correlated AUCs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

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


def distinct(strata: np.ndarray) -> np.ndarray:
    """The distinct values of ``strata`` (n,), ascending; fold ids (small non-negative
    integers) are counted rather than sorted (``np.unique`` hashes or sorts all n)."""
    if strata.dtype.kind in "iu" and len(strata) and strata.min() >= 0 and strata.max() < 1024:
        return np.flatnonzero(np.bincount(strata))
    return np.unique(strata)


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


@dataclass(frozen=True)
class RankedScores:
    """n scores sorted once: ``sorted_scores`` (n,) ascending and ``order`` (n,), the
    permutation that sorts them (``sorted_scores = scores[order]``).

    Filtering a sorted order keeps it sorted, so a large subset (a fold of a slice) gets its
    AUC placements in O(n) without another sort; scores ranked where they were computed (a
    trained attack's within-fold percentiles) are not sorted again.
    """

    sorted_scores: np.ndarray
    order: np.ndarray

    @classmethod
    def of(cls, scores: np.ndarray) -> RankedScores:
        """``scores`` (n,) float, ranked by one O(n log n) sort."""
        values = np.asarray(scores, dtype=np.float64)
        order = np.argsort(values)
        return cls(values[order], order)

    @classmethod
    def merged(cls, parts: Sequence[tuple[np.ndarray, RankedScores]]) -> RankedScores:
        """One ranking of n scores from the rankings of disjoint parts that cover them:
        ``parts`` holds (each part's positions (m,) among the n, its m scores ranked). A
        stable sort of the parts' sorted runs laid end to end is a linear-time merge
        (timsort finds the runs): ~5x cheaper than sorting 60,000 scores afresh."""
        runs = np.concatenate([ranked.sorted_scores for _, ranked in parts])
        positions = np.concatenate([where[ranked.order] for where, ranked in parts])
        merge = np.argsort(runs, kind="stable")
        return cls(runs[merge], positions[merge])

    def in_example_order(self) -> np.ndarray:
        """The scores (n,) in example order (``scores`` of :meth:`of`)."""
        scores = np.empty(len(self.order))
        scores[self.order] = self.sorted_scores
        return scores

    def subset(self, mask: np.ndarray) -> RankedScores:
        """The scores where ``mask`` (n,) bool is True, in their order, still ranked: O(n)."""
        if mask.all():
            return self
        kept_sorted = mask[self.order]
        kept = self.order[kept_sorted]
        # Each kept example's index among the kept: how many kept examples precede it.
        position = np.empty(len(mask), dtype=np.intp)
        np.cumsum(mask, out=position)
        position -= 1
        return RankedScores(self.sorted_scores[kept_sorted], position[kept])

    def placements(self, membership: np.ndarray) -> np.ndarray:
        """Each example's placement (n,) (DeLong's structural components) for ``membership``
        (n,) bool: for a member, the share of non-members it scores above; for a non-member,
        the share of members scoring above it (ties count one half). Their mean over members,
        and over non-members, is the AUC. One pass over the sorted scores, O(n)."""
        n = len(self.order)
        member = membership[self.order]
        # Counts stay whole numbers (integers) until the one division: each placement is
        # twice its count over twice the other side's size, the same correctly rounded
        # quotient however the counts were found.
        members_through = np.cumsum(member)  # members among sorted positions 0..k
        n_members = int(members_through[-1]) if n else 0
        starts_group = np.empty(n, dtype=bool)
        starts_group[:1] = True
        np.not_equal(self.sorted_scores[1:], self.sorted_scores[:-1], out=starts_group[1:])
        if starts_group.all():
            # No ties: a member at k has k + 1 − (members through k) non-members below it;
            # a non-member at k has n_members − (members through k) members above it.
            twice_count = np.where(member, np.arange(1, n + 1) - members_through,
                                   n_members - members_through)
            twice_count *= 2
        else:
            starts = np.flatnonzero(starts_group)
            ends = np.append(starts[1:], n)
            members_before = np.zeros(len(starts), dtype=members_through.dtype)
            members_before[1:] = members_through[starts[1:] - 1]
            members_inside = members_through[ends - 1] - members_before
            # Per tie group: a member counts 2·(non-members below) + the non-members tied
            # with it; a non-member 2·(members above) + the members tied with it.
            for_member = 2 * (starts - members_before) + (ends - starts - members_inside)
            for_nonmember = 2 * (n_members - members_before) - members_inside
            group = np.cumsum(starts_group) - 1
            twice_count = np.where(member, for_member[group], for_nonmember[group])
        placements = np.empty(n)
        placements[self.order] = twice_count / np.where(member, 2 * (n - n_members),
                                                        2 * n_members)
        return placements


def auc_placements(scores: np.ndarray, membership: np.ndarray) -> np.ndarray:
    """Each example's placement (n,) (DeLong's structural components): for a member, the
    share of non-members it scores above; for a non-member, the share of members scoring
    above it (ties count one half). Their mean over members, and over non-members, is the AUC.
    One sort, O(n log n) (:class:`RankedScores`)."""
    return RankedScores.of(scores).placements(np.asarray(membership, dtype=bool))


def paired_auc_p_value(scores: np.ndarray | RankedScores,
                       guard_scores: np.ndarray | RankedScores, membership: np.ndarray,
                       strata: np.ndarray | None = None, *,
                       ranked_strata: Mapping[int, RankedScores] | None = None) -> float:
    """One-sided p-value of H0 "AUC(scores) ≤ AUC(guard_scores)", both on the same examples.

    DeLong's test for correlated AUCs: the AUC difference over its standard error from the
    examples' paired placements (:func:`auc_placements`), normal approximation. The pairing
    accounts for the two scores' dependence through the shared examples; the test needs the
    pairs of different examples to be independent, i.e. each score a fixed function of its
    example. Out-of-fold scores of a trained attack are not (every two fold models share
    training data, which made a pooled test reject a true H0 far too often on small slices):
    with ``strata`` (the folds) the test runs within each fold, where one fitted model scored
    every example, and the folds' p-values are combined by Bonferroni (:func:`combine_strata`),
    valid however the folds depend on each other.

    Parameters
    ----------
    scores, guard_scores : (n,) float, or :class:`RankedScores` of them
        Higher = more likely member, for the same n examples in the same order. Ranked
        scores are not sorted again (a bar compared with many rows is ranked once).
    membership : (n,) bool
        With at least two members and two non-members.
    strata : (n,) int, optional
        The cross-validation fold of each example, for out-of-fold ``scores`` (and guard
        scores fitted with the same folds).
    ranked_strata : {stratum: RankedScores}, optional
        ``scores`` within each stratum (in example order), already ranked by whoever
        computed them (:class:`~memberscope.attacks.SliceScores`): not sorted again.

    Returns
    -------
    float
        P(T ≥ t) for t = (AUC − AUC_guard) / SE and Student's T with Welch-Satterthwaite
        degrees of freedom (the normal tail for large slices); 1.0 where the difference has
        no variance and is ≤ 0, 0.0 where it has none and is > 0. With strata: Bonferroni
        over the folds holding at least two members and two non-members.

    Examples
    --------
    >>> membership = np.array([True] * 50 + [False] * 50)
    >>> better = np.r_[np.linspace(1, 2, 50), np.linspace(0, 1.2, 50)]
    >>> worse = np.r_[np.linspace(0, 2, 50), np.linspace(0, 2, 50)]
    >>> paired_auc_p_value(better, worse, membership) < 0.001
    True
    """
    membership = np.asarray(membership, dtype=bool)
    if strata is not None:
        strata = np.asarray(strata)
        p_values = []
        for stratum in distinct(strata):
            inside = strata == stratum
            ranked = (_ranked_within(scores, inside) if ranked_strata is None
                      else ranked_strata[int(stratum)])
            p_values.append(_paired_p_value(ranked, _ranked_within(guard_scores, inside),
                                            membership[inside]))
        return combine_strata(p_values)
    p_value = _paired_p_value(_ranked_within(scores, None), _ranked_within(guard_scores, None),
                              membership)
    if p_value is None:
        raise InputError("the paired AUC test needs at least two members and two non-members")
    return p_value


def _ranked_within(scores: np.ndarray | RankedScores, mask: np.ndarray | None
                   ) -> RankedScores:
    """``scores`` where ``mask`` is True (all where None), ranked: ranked scores are filtered,
    not sorted again; an array is sorted within the mask alone (cheaper than whole)."""
    if isinstance(scores, RankedScores):
        return scores if mask is None else scores.subset(mask)
    return RankedScores.of(scores if mask is None else np.asarray(scores)[mask])


def _paired_p_value(scores: RankedScores, guard_scores: RankedScores,
                    membership: np.ndarray) -> float | None:
    """DeLong's one-sided p-value on one group of independent pairs; None with fewer than
    two members or two non-members."""
    n_members = int(membership.sum())
    if min(n_members, len(membership) - n_members) < 2:
        return None
    difference = scores.placements(membership) - guard_scores.placements(membership)
    on_members, on_nonmembers = difference[membership], difference[~membership]
    estimate = float(on_members.mean())
    from_members = float(on_members.var(ddof=1)) / len(on_members)
    from_nonmembers = float(on_nonmembers.var(ddof=1)) / len(on_nonmembers)
    variance = from_members + from_nonmembers
    if variance <= 1e-15:
        return 1.0 if estimate <= 1e-12 else 0.0
    # Student's t with Welch-Satterthwaite degrees of freedom: the variance is estimated,
    # and on slices of a few hundred examples the normal tail was up to 1.4x too light at
    # the levels Holm's correction reaches (p ~ 0.002).
    freedom = variance ** 2 / (from_members ** 2 / (len(on_members) - 1)
                               + from_nonmembers ** 2 / (len(on_nonmembers) - 1))
    # scipy.stats.t.sf is this function behind ~50x its cost in argument handling; scipy
    # is loaded here, not at import: `import memberscope` loads numpy only.
    from scipy.special import stdtr

    return float(stdtr(freedom, -estimate / math.sqrt(variance)))


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


@dataclass(frozen=True)
class FamilyVerdicts:
    """A family of tests whose family-wise error rate one statement controls, and the
    verdict on each of its tests.

    ``significant`` (m,) in the order the tests were given, None for an entry that was never
    tested (no p-value: rows of schema-1 files); ``n_audits`` the audits the tests came from.
    Under H0 for every test, the chance that any is significant is ≤ ``alpha``.
    """

    significant: tuple[bool | None, ...]
    alpha: float
    correction: str
    n_audits: int

    @property
    def size(self) -> int:
        """The number of tests in the family."""
        return sum(verdict is not None for verdict in self.significant)


def family_verdicts(p_values: Sequence[float | None], audits: Sequence[object], *,
                    alphas: Sequence[float], corrections: Sequence[str]) -> FamilyVerdicts:
    """Which tests are significant when the family is every test of every audit given.

    Parameters
    ----------
    p_values : (m,) float or None
        One per test (row), any audits mixed; None for an entry never tested (it gets the
        verdict None and is not counted).
    audits : (m,) hashable
        The audit each entry belongs to (only counted, for the description).
    alphas, corrections : (m,)
        Each entry's audit's recorded level and correction. The family uses the smallest
        level, and the audits' correction when they agree; when they differ, Bonferroni,
        which every audit's choice allows.

    Returns
    -------
    FamilyVerdicts
        ``significant`` (m,) in the order of ``p_values``. With one audit this is exactly
        that audit's own verdict.

    Examples
    --------
    >>> family = family_verdicts([0.001, 0.03, 0.3], ["a", "a", "b"], alphas=[0.05] * 3,
    ...                          corrections=["holm"] * 3)
    >>> family.significant, family.size, family.n_audits
    ((True, False, False), 3, 2)
    """
    m = len(p_values)
    if not (len(audits) == len(alphas) == len(corrections) == m):
        raise InputError(f"p_values, audits, alphas and corrections must have one entry per "
                         f"test; got {m}, {len(audits)}, {len(alphas)} and "
                         f"{len(corrections)}")
    tested = [(i, p) for i, p in enumerate(p_values) if p is not None]
    if not tested:
        return FamilyVerdicts((None,) * m, 0.05, "holm", len(dict.fromkeys(audits)))
    alpha = min(check_probability("alphas", alphas[i]) for i, _ in tested)
    chosen = {check_correction(corrections[i]) for i, _ in tested}
    correction = chosen.pop() if len(chosen) == 1 else "bonferroni"
    verdicts = significant_rows([p for _, p in tested], alpha=alpha, correction=correction)
    significant: list[bool | None] = [None] * m
    for (index, _), verdict in zip(tested, verdicts, strict=True):
        significant[index] = bool(verdict)
    return FamilyVerdicts(tuple(significant), alpha, correction,
                  len(dict.fromkeys(audits[i] for i, _ in tested)))
