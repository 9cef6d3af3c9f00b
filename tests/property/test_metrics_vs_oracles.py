"""ROC metrics against slow, obviously-correct oracles, and their invariants (Hypothesis).

Every oracle works on plain Python lists, threshold by threshold, straight from the definitions
in DESIGN.md: a threshold t predicts "member" for score >= t; the thresholds are +inf and every
distinct score.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from memberscope import attack_metrics, epsilon_lower_bound, roc_curve, roc_metrics
from memberscope.metrics import LowResolutionWarning

pytestmark = pytest.mark.filterwarnings("ignore::memberscope.metrics.LowResolutionWarning")

FAST = settings(max_examples=100, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])
DEFAULT_TARGETS = (0.001, 0.01, 0.1)


# --- oracles --------------------------------------------------------------------------------


def _weights(scores: list[float], weights: list[float] | None) -> list[float]:
    return [1.0] * len(scores) if weights is None else list(weights)


def oracle_points(scores, membership, weights=None):
    """(TPR, FPR) at +inf and at every distinct score, by counting."""
    weights = _weights(scores, weights)
    total_p = sum(w for w, m in zip(weights, membership, strict=True) if m)
    total_n = sum(w for w, m in zip(weights, membership, strict=True) if not m)
    points = []
    for threshold in [math.inf, *sorted(set(scores), reverse=True)]:
        tp = sum(w for s, m, w in zip(scores, membership, weights, strict=True)
                 if m and s >= threshold)
        fp = sum(w for s, m, w in zip(scores, membership, weights, strict=True)
                 if not m and s >= threshold)
        points.append((tp / total_p, fp / total_n))
    return points, total_p, total_n


def oracle_auc(scores, membership, weights=None):
    """Pairwise: P(member score > non-member score) + 1/2 P(tie), weighted by w_i·w_j."""
    weights = _weights(scores, weights)
    members = [(s, w) for s, m, w in zip(scores, membership, weights, strict=True) if m]
    nonmembers = [(s, w) for s, m, w in zip(scores, membership, weights, strict=True) if not m]
    won = sum(wi * wj * (1.0 if si > sj else 0.5 if si == sj else 0.0)
              for si, wi in members for sj, wj in nonmembers)
    return won / (sum(w for _, w in members) * sum(w for _, w in nonmembers))


def oracle_advantage(points):
    """One-sided: max of TPR − FPR (the +inf threshold gives 0)."""
    return max(tpr - fpr for tpr, fpr in points)


def oracle_grid(n):
    """1, 2, 3, 5, 8, …: round(1.5 ** j) for j = 0, 1, …, distinct, at most n."""
    grid, j = [], 0
    while round(1.5**j) <= n:
        if round(1.5**j) not in grid:
            grid.append(round(1.5**j))
        j += 1
    return grid


def oracle_ppv(points, total_p, total_n, count_p=None, count_n=None):
    """For each grid count k: at the finite threshold with the most predicted members, at most
    k, the Clopper-Pearson lower bound on the precision at level 0.01 / |grid|; the largest.

    Unweighted: TP successes in TP + FP trials. Weighted: the weighted precision TPR/(TPR+r·FPR)
    (r = N/P in weight) on the expected count TPR·count_p + FPR·count_n of predicted members.
    """
    from scipy.stats import beta

    weighted = count_p is not None
    count_p = total_p if count_p is None else count_p
    count_n = total_n if count_n is None else count_n
    grid = oracle_grid(round(count_p + count_n))
    values = [0.0]
    for k in grid:
        admitted = [(tpr, fpr) for tpr, fpr in points[1:]
                    if tpr * count_p + fpr * count_n <= k + 1e-9]
        if not admitted:
            continue
        tpr, fpr = admitted[-1]
        trials = tpr * count_p + fpr * count_n
        weighted_positive = tpr + (total_n / total_p) * fpr
        successes = tpr / weighted_positive * trials if weighted_positive > 0 else 0.0
        if not weighted:
            successes, trials = round(successes), round(trials)
        if successes > 0:
            values.append(float(beta.ppf(0.01 / len(grid), successes, trials - successes + 1)))
    return max(values)


def oracle_tpr_at_fpr(points, target, count_n):
    """None where fewer than one false positive fits in ``count_n`` non-members at ``target``."""
    if count_n * target < 1 - 1e-9:
        return None
    return max(tpr for tpr, fpr in points if fpr <= target)


def _approx_or_none(expected):
    return None if expected is None else pytest.approx(expected, abs=1e-12)


def oracle_epsilon_point(points, delta=0.0):
    """Max of ln((TPR−δ)/FPR) and ln((TNR−δ)/FNR) over thresholds, finite values only, >= 0."""
    values = [0.0]
    for tpr, fpr in points:
        if tpr - delta > 0 and fpr > 0:
            values.append(math.log((tpr - delta) / fpr))
        if (1 - fpr) - delta > 0 and (1 - tpr) > 0:
            values.append(math.log(((1 - fpr) - delta) / (1 - tpr)))
    return max(values)


# --- strategies -----------------------------------------------------------------------------


@st.composite
def examples(draw, weighted: bool = False):
    """Scores, membership (both sides present) and optional dyadic weights.

    Shapes cover tiny slices (1–3 per side), heavy imbalance either way, and heavy ties
    (scores drawn from 1–3 values). Weights are multiples of 1/4, so weighted sums are exact.
    """
    shape = draw(st.sampled_from(["balanced", "tiny", "few_members", "few_nonmembers"]))
    small, large = st.integers(1, 3), st.integers(1, 40)
    n_members = draw(small if shape in ("tiny", "few_members") else large)
    n_nonmembers = draw(small if shape in ("tiny", "few_nonmembers") else large)
    n = n_members + n_nonmembers
    if draw(st.booleans()):  # heavy ties
        values = draw(st.lists(st.floats(-5, 5, allow_nan=False), min_size=1, max_size=3,
                               unique=True))
        element = st.sampled_from(values)
    else:
        element = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
    scores = draw(st.lists(element, min_size=n, max_size=n))
    order = draw(st.permutations(range(n)))
    membership = [i < n_members for i in order]
    weights = None
    if weighted:
        weights = draw(st.lists(st.integers(0, 8).map(lambda k: k / 4), min_size=n, max_size=n))
        for side in (True, False):  # each side needs positive total weight
            if not any(w > 0 for w, m in zip(weights, membership, strict=True) if m == side):
                weights[membership.index(side)] = 1.0
    return scores, membership, weights


def _targets(total_n: float) -> list[float]:
    """The default targets, the ends, and FPR values the curve hits exactly (boundary cases)."""
    exact = [k / total_n for k in range(int(total_n) + 1) if k / total_n <= 1]
    return sorted({*DEFAULT_TARGETS, 0.0, 1.0, *exact[:6]})


# --- equality with the oracles --------------------------------------------------------------


@FAST
@given(examples())
def test_metrics_equal_oracles(data):
    scores, membership, _ = data
    points, total_p, total_n = oracle_points(scores, membership)
    targets = _targets(total_n)
    got = roc_metrics(np.array(scores), np.array(membership), fpr_targets=targets)
    assert got["auc"] == pytest.approx(oracle_auc(scores, membership), abs=1e-12)
    assert got["advantage"] == pytest.approx(oracle_advantage(points), abs=1e-12)
    assert got["ppv"] == pytest.approx(oracle_ppv(points, total_p, total_n), abs=1e-9)
    for target in targets:
        assert got["tpr_at_fpr"][target] == _approx_or_none(
            oracle_tpr_at_fpr(points, target, total_n)), target


@FAST
@given(examples(weighted=True))
def test_weighted_metrics_equal_weighted_oracles(data):
    scores, membership, weights = data
    points, total_p, total_n = oracle_points(scores, membership, weights)
    targets = sorted({*DEFAULT_TARGETS, 0.0, 1.0, *(fpr for _, fpr in points)})
    got = roc_metrics(np.array(scores), np.array(membership), fpr_targets=targets,
                      sample_weight=np.array(weights))
    assert got["auc"] == pytest.approx(oracle_auc(scores, membership, weights), abs=1e-12)
    assert got["advantage"] == pytest.approx(oracle_advantage(points), abs=1e-12)
    count_p = sum(membership)
    count_n = len(membership) - count_p
    assert got["ppv"] == pytest.approx(oracle_ppv(points, total_p, total_n, count_p, count_n),
                                       abs=1e-9)
    for target in targets:
        assert got["tpr_at_fpr"][target] == _approx_or_none(
            oracle_tpr_at_fpr(points, target, count_n)), target


@FAST
@given(examples(weighted=True))
def test_attack_metrics_agree_with_roc_metrics(data):
    scores, membership, weights = data
    full = attack_metrics(np.array(scores), np.array(membership),
                          sample_weight=np.array(weights))
    alone = roc_metrics(np.array(scores), np.array(membership), sample_weight=np.array(weights))
    assert (full.auc, full.advantage, full.ppv) == (alone["auc"], alone["advantage"],
                                                    alone["ppv"])
    assert full.tpr_at_fpr == alone["tpr_at_fpr"]


@FAST
@given(examples(), st.sampled_from([0.0, 1e-3, 0.05]))
def test_epsilon_point_equals_plug_in_oracle(data, delta):
    scores, membership, _ = data
    points, _, _ = oracle_points(scores, membership)
    bound = epsilon_lower_bound(np.array(scores), np.array(membership), delta=delta)
    assert bound.point == pytest.approx(oracle_epsilon_point(points, delta), abs=1e-9)


def test_oracles_on_a_hand_computed_case():
    # members 3, 2, 2; non-members 2, 1: pairs won 2 + 1 (3>2, 3>1) + ... by hand below.
    scores, membership = [3.0, 2.0, 2.0, 2.0, 1.0], [True, True, True, False, False]
    # pairs: 3>2,3>1 -> 2; 2=2 (x2) -> 1; 2>1 (x2) -> 2; total 5 of 6.
    assert oracle_auc(scores, membership) == pytest.approx(5 / 6)
    got = roc_metrics(np.array(scores), np.array(membership))
    assert got["auc"] == pytest.approx(5 / 6)
    # thresholds inf, 3, 2, 1: (TPR, FPR) = (0,0), (1/3,0), (1,1/2), (1,1)
    assert got["advantage"] == pytest.approx(1 / 2)
    # Grid counts 1, 2, 3, 5 admit thresholds predicting 1, 1, 1 and 5 examples (3 of 4 is
    # off the grid): lower bounds at level 0.01 / 4 on precision 1/1 and 3/5 (beta
    # quantiles): 0.0025 and 0.0651; the best is at 3 of 5, not at the lucky 1 of 1.
    assert got["ppv"] == pytest.approx(0.065131, abs=1e-5)
    # Two non-members resolve no FPR below 1/2: every default target is null.
    assert got["tpr_at_fpr"] == {0.001: None, 0.01: None, 0.1: None}
    assert roc_metrics(np.array(scores), np.array(membership),
                       fpr_targets=[0.5])["tpr_at_fpr"] == {0.5: 1.0}


# --- invariants -----------------------------------------------------------------------------


@FAST
@given(examples(weighted=True))
def test_auc_of_negated_scores_is_one_minus_auc(data):
    scores, membership, weights = data
    args = {"membership": np.array(membership), "sample_weight": np.array(weights)}
    auc = roc_metrics(np.array(scores), **args)["auc"]
    assert roc_metrics(-np.array(scores), **args)["auc"] == pytest.approx(1 - auc, abs=1e-12)


def _dense_ranks(scores: np.ndarray) -> np.ndarray:
    return np.unique(scores, return_inverse=True)[1].astype(np.float64)


@FAST
@given(examples(), st.sampled_from(["cube", "exp", "affine"]))
def test_metrics_invariant_under_strictly_increasing_transforms(data, transform):
    scores, membership, _ = data
    ranks = _dense_ranks(np.array(scores))  # exact integers: no rounding can merge two scores
    transformed = {"cube": ranks**3 - 7.0, "exp": np.exp(ranks / 3.0),
                   "affine": 1e6 * ranks - 3.5}[transform]
    assert len(np.unique(transformed)) == len(np.unique(ranks))
    before = roc_metrics(np.array(scores), np.array(membership))
    after = roc_metrics(transformed, np.array(membership))
    assert after == before
    eps_before = epsilon_lower_bound(np.array(scores), np.array(membership), seed=3)
    eps_after = epsilon_lower_bound(transformed, np.array(membership), seed=3)
    assert eps_after == eps_before


@FAST
@given(examples(weighted=True), st.randoms(use_true_random=False))
def test_metrics_invariant_under_permutation_of_examples(data, random):
    scores, membership, weights = data
    order = list(range(len(scores)))
    random.shuffle(order)
    before = roc_metrics(np.array(scores), np.array(membership),
                         sample_weight=np.array(weights))
    after = roc_metrics(np.array(scores)[order], np.array(membership)[order],
                        sample_weight=np.array(weights)[order])
    for name in ("auc", "advantage", "ppv"):
        assert after[name] == pytest.approx(before[name], abs=1e-12)
    assert after["tpr_at_fpr"] == before["tpr_at_fpr"]


@FAST
@given(examples(weighted=True))
def test_metric_ranges(data):
    scores, membership, weights = data
    got = roc_metrics(np.array(scores), np.array(membership), sample_weight=np.array(weights),
                      fpr_targets=(0.0, 0.001, 0.01, 0.1, 0.5, 1.0))
    total_p = sum(w for w, m in zip(weights, membership, strict=True) if m)
    total_n = sum(w for w, m in zip(weights, membership, strict=True) if not m)
    assert total_p > 0 and total_n > 0
    assert 0.0 <= got["auc"] <= 1.0
    assert 0.0 <= got["advantage"] <= 1.0
    assert 0.0 <= got["ppv"] <= 0.01 ** (1 / len(scores)) + 1e-12  # below n of n at 99%
    tprs = [v for v in got["tpr_at_fpr"].values() if v is not None]
    assert all(0.0 <= v <= 1.0 for v in tprs)
    assert tprs == sorted(tprs)  # nondecreasing in the target
    assert got["tpr_at_fpr"][1.0] == 1.0


def _confident_ceiling(n_members: int, n_nonmembers: int, alpha: float) -> float:
    """The largest value any Clopper-Pearson ratio bound can reach on the held-out half.

    FPR_hi (or FNR_hi) is at least the one-sided upper bound for 0 successes in the half's
    count, 1 − (α/2)^(1/m), and TPR_lo, TNR_lo are at most 1.
    """
    held_p, held_n = n_members - n_members // 2, n_nonmembers - n_nonmembers // 2
    return max(-math.log1p(-((alpha / 2) ** (1 / held)))
               for held in (held_p, held_n))


@FAST
@given(examples(), st.sampled_from([0.01, 0.05, 0.2]), st.sampled_from([0.0, 1e-5, 0.1]),
       st.integers(0, 2**31 - 1))
def test_epsilon_bound_ranges(data, alpha, delta, seed):
    scores, membership, _ = data
    bound = epsilon_lower_bound(np.array(scores), np.array(membership), alpha=alpha,
                                delta=delta, seed=seed)
    n_members = sum(membership)
    assert (bound.alpha, bound.delta) == (alpha, delta)
    assert bound.point >= 0.0
    assert math.isfinite(bound.confident)
    assert 0.0 <= bound.confident <= _confident_ceiling(n_members, len(membership) - n_members,
                                                        alpha) + 1e-9


@FAST
@given(examples(), st.integers(0, 2**31 - 1))
def test_epsilon_bound_is_deterministic_under_seed(data, seed):
    scores, membership, _ = data
    first = epsilon_lower_bound(np.array(scores), np.array(membership), seed=seed)
    again = epsilon_lower_bound(np.array(scores), np.array(membership), seed=seed)
    assert first == again


# --- thinned curves -------------------------------------------------------------------------


def _read_tpr_at_fpr(tpr: np.ndarray, fpr: np.ndarray, target: float) -> float:
    return float(tpr[fpr <= target].max())


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(300, 4000), st.integers(20, 4000),
       st.sampled_from([8, 50, 400]), st.booleans())
def test_thinned_curve_keeps_endpoints_and_never_raises_tpr_at_fpr(seed, n_members,
                                                                   n_nonmembers, max_points,
                                                                   ties):
    rng = np.random.default_rng(seed)
    membership = np.r_[np.ones(n_members, bool), np.zeros(n_nonmembers, bool)]
    scores = rng.normal(size=len(membership)) + 0.7 * membership
    if ties:
        scores = np.round(scores, 1)
    full = roc_curve(scores, membership)
    thin = full.thinned(max_points)
    assume(len(full.fpr) > max_points)
    assert (thin.fpr[0], thin.tpr[0]) == (0.0, 0.0)
    assert (thin.fpr[-1], thin.tpr[-1]) == (1.0, 1.0)
    assert thin.thresholds[0] == np.inf
    # Every thinned point is a point of the full curve, in order.
    index = np.searchsorted(-full.thresholds, -thin.thresholds)
    np.testing.assert_array_equal(full.thresholds[index], thin.thresholds)
    np.testing.assert_array_equal(full.fpr[index], thin.fpr)
    np.testing.assert_array_equal(full.tpr[index], thin.tpr)
    assert np.all(np.diff(thin.fpr) >= 0) and np.all(np.diff(thin.tpr) >= 0)
    for target in (0.0, 1e-4, 1e-3, 0.01, 0.1, 0.5, 1.0):
        assert _read_tpr_at_fpr(thin.tpr, thin.fpr, target) <= _read_tpr_at_fpr(
            full.tpr, full.fpr, target)


def test_thinned_curve_has_at_most_max_points():
    rng = np.random.default_rng(0)
    membership = np.r_[np.ones(5000, bool), np.zeros(5000, bool)]
    full = roc_curve(rng.normal(size=10000) + membership, membership)
    for max_points in (50, 400):
        assert len(full.thinned(max_points).fpr) <= max_points


def test_low_fpr_target_warns_when_below_resolution():
    membership = np.r_[np.ones(50, bool), np.zeros(50, bool)]
    scores = np.arange(100.0)
    with pytest.warns(LowResolutionWarning, match="50 non-members"):
        roc_metrics(scores, membership, fpr_targets=(0.001,))
    with warnings.catch_warnings():
        warnings.simplefilter("error", LowResolutionWarning)
        roc_metrics(scores, membership, fpr_targets=(0.1,))
