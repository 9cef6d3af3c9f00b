"""p-values (Mann-Whitney, per stratum), the family-wise correction, and their use in audit()."""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memberscope import InputError, ModelOutputs, audit
from memberscope.errors import UnknownNameError
from memberscope.metrics import LowResolutionWarning, attack_metrics, rank_test_p_value
from memberscope.significance import family_verdicts, significant_rows

FAST = settings(max_examples=100, deadline=None, derandomize=True)

# --- slow oracles -------------------------------------------------------------------------------


def oracle_u(scores, membership):
    """Pairwise: members above non-members, ties counting one half."""
    members = [s for s, m in zip(scores, membership, strict=True) if m]
    nonmembers = [s for s, m in zip(scores, membership, strict=True) if not m]
    return sum(1.0 if a > b else 0.5 if a == b else 0.0 for a in members for b in nonmembers)


def oracle_permutation_p(scores, membership):
    """Exact one-sided p-value: the share of all relabellings with U at least the observed."""
    n_members = sum(membership)
    observed = oracle_u(scores, membership)
    hits = total = 0
    for chosen in itertools.combinations(range(len(scores)), n_members):
        labels = [False] * len(scores)
        for index in chosen:
            labels[index] = True
        hits += oracle_u(scores, labels) >= observed - 1e-9
        total += 1
    return hits / total


def oracle_normal_p(scores, membership):
    """Textbook normal approximation: tie-corrected variance, continuity correction 1/2."""
    m = sum(membership)
    n = len(scores) - m
    total = m + n
    ties = sum(c**3 - c for c in (scores.count(v) for v in set(scores)))
    variance = m * n / 12 * ((total + 1) - ties / (total * (total - 1)))
    if variance == 0:
        return 1.0
    z = (oracle_u(scores, membership) - m * n / 2 - 0.5) / math.sqrt(variance)
    return 0.5 * math.erfc(z / math.sqrt(2))


def oracle_holm(p_values, alpha):
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    significant = [False] * len(p_values)
    for rank, index in enumerate(order):
        if p_values[index] > alpha / (len(p_values) - rank):
            break
        significant[index] = True
    return significant


@st.composite
def labelled_scores(draw, max_side: int = 6):
    n_members = draw(st.integers(1, max_side))
    n_nonmembers = draw(st.integers(1, max_side))
    n = n_members + n_nonmembers
    values = st.sampled_from([0.0, 1.0, 2.0]) if draw(st.booleans()) else st.floats(-3, 3)
    scores = draw(st.lists(values, min_size=n, max_size=n))
    membership = draw(st.permutations([True] * n_members + [False] * n_nonmembers))
    return scores, list(membership)


# --- the statistic and its p-value ---------------------------------------------------------------


@FAST
@given(labelled_scores())
def test_p_value_is_the_exact_permutation_p_value_without_ties(data):
    scores, membership = data
    if len(set(scores)) < len(scores):  # ties: the normal approximation is used instead
        expected = oracle_normal_p(scores, membership)
    else:
        expected = oracle_permutation_p(scores, membership)
    got = rank_test_p_value(np.array(scores), np.array(membership))
    assert got == pytest.approx(expected, rel=1e-9, abs=1e-12)


@FAST
@given(labelled_scores(max_side=40))
def test_p_value_matches_scipy_where_it_is_exact_or_asymptotic(data):
    from scipy.stats import mannwhitneyu

    scores, membership = np.array(data[0]), np.array(data[1])
    tied = len(np.unique(scores)) < len(scores)
    if tied and len(np.unique(scores)) == 1:
        return  # scipy answers NaN where every score is tied; ours is 1.0 (tested below)
    n_members, n_nonmembers = int(membership.sum()), int((~membership).sum())
    # Ours counts exactly where that stays within int64, like scipy's "exact" method.
    exact = (not tied and n_members * n_nonmembers <= 10_000
             and math.comb(n_members + n_nonmembers, n_members) < 2**60)
    method = "exact" if exact else "asymptotic"
    expected = mannwhitneyu(scores[membership], scores[~membership], alternative="greater",
                            method=method).pvalue
    assert rank_test_p_value(scores, membership) == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_normal_approximation_matches_scipy_on_large_tied_samples():
    from scipy.stats import mannwhitneyu

    rng = np.random.default_rng(0)
    for n_members, n_nonmembers, shift in [(3000, 3000, 0.05), (50, 2000, 0.3), (700, 90, 0.0)]:
        membership = np.arange(n_members + n_nonmembers) < n_members
        scores = np.round(rng.normal(size=len(membership)) + shift * membership, 1)
        expected = mannwhitneyu(scores[membership], scores[~membership],
                                alternative="greater").pvalue
        assert rank_test_p_value(scores, membership) == pytest.approx(expected, rel=1e-9)


def test_all_tied_or_one_sided_strata_give_one():
    assert rank_test_p_value(np.zeros(40), np.arange(40) < 20) == 1.0
    # Stratum 1 has members only: it compares nothing, and stratum 0 is all tied.
    strata = np.array([0] * 20 + [1] * 5)
    membership = np.array([True, False] * 10 + [True] * 5)
    assert rank_test_p_value(np.zeros(25), membership, strata=strata) == 1.0


def test_stratified_p_value_is_bonferroni_over_the_strata_tests():
    rng = np.random.default_rng(3)
    strata = np.repeat([0, 1, 2, 3], [30, 50, 40, 6])
    membership = rng.random(126) < 0.4
    membership[120:] = True  # stratum 3 has members only: it compares nothing
    scores = np.round(rng.normal(size=126) + 0.5 * membership + strata, 1)
    per_stratum = [oracle_normal_p(list(scores[strata == s]), list(membership[strata == s]))
                   for s in range(3)]
    expected = min(1.0, 3 * min(per_stratum))
    assert rank_test_p_value(scores, membership, strata=strata) == pytest.approx(expected,
                                                                                 rel=1e-12)


def _share_below(p_values: list[float], level: float) -> float:
    return float(np.mean(np.array(p_values) < level))


def test_stratified_test_is_valid_where_pooling_is_not():
    # Each stratum's scores come from a differently shifted model, and members are more common
    # in high-shift strata: pooled ranks then "see" membership that is not in the scores.
    rng = np.random.default_rng(11)
    strata = np.repeat([0, 1, 2], 100)
    member_share = np.repeat([0.3, 0.5, 0.7], 100)
    pooled, stratified = [], []
    for _ in range(400):
        membership = rng.random(300) < member_share
        scores = rng.normal(size=300) + 1.0 * strata  # no membership information
        pooled.append(rank_test_p_value(scores, membership))
        stratified.append(rank_test_p_value(scores, membership, strata=strata))
    assert _share_below(pooled, 0.05) > 0.5
    assert 0.02 <= _share_below(stratified, 0.05) <= 0.08


def test_p_values_are_uniform_enough_under_the_null():
    rng = np.random.default_rng(5)
    membership = np.arange(400) < 150
    p_values = [rank_test_p_value(np.round(rng.normal(size=400), 1), membership)
                for _ in range(1000)]
    assert 0.035 <= _share_below(p_values, 0.05) <= 0.065
    assert 0.004 <= _share_below(p_values, 0.01) <= 0.02


def test_bad_strata_shape_is_an_input_error():
    with pytest.raises(InputError, match="strata must be"):
        attack_metrics(np.zeros(4), np.array([True, False] * 2), strata=np.zeros(3))


# --- the family-wise correction ----------------------------------------------------------------


@FAST
@given(st.lists(st.floats(0, 1), min_size=1, max_size=30), st.sampled_from([0.01, 0.05, 0.2]))
def test_holm_equals_the_step_down_oracle(p_values, alpha):
    got = significant_rows(p_values, alpha=alpha)
    assert list(got) == oracle_holm(p_values, alpha)
    bonferroni = significant_rows(p_values, alpha=alpha, correction="bonferroni")
    assert list(bonferroni) == [p <= alpha / len(p_values) for p in p_values]
    assert (got >= bonferroni).all()  # Holm rejects everything Bonferroni does


@pytest.mark.parametrize("alpha", [0.0, 1.0, -0.1, 1.5, float("nan"), "x"])
def test_alpha_outside_the_open_unit_interval_is_an_error_naming_alpha(alpha):
    with pytest.raises(InputError, match=r"alpha must be"):
        significant_rows([0.1], alpha=alpha)
    with pytest.raises(InputError, match=r"alpha must be"):
        audit(_outputs(0.0), attacks="threshold", slices="entire", alpha=alpha)


def test_unknown_correction_is_an_error_naming_the_parameter_and_the_choices():
    with pytest.raises(UnknownNameError, match=r"correction.*'holms'.*holm"):
        audit(_outputs(0.0), attacks="threshold", slices="entire", correction="holms")
    with pytest.raises(UnknownNameError, match="correction"):
        significant_rows([0.1], correction="fdr")


# --- in audit() ------------------------------------------------------------------------------


def _outputs(leak: float, seed: int = 0, n: int = 600) -> ModelOutputs:
    rng = np.random.default_rng(seed)
    membership = np.arange(2 * n) < n
    loss = rng.exponential(1.0, size=2 * n) * np.where(membership, np.exp(-leak), 1.0)
    return ModelOutputs(membership=membership, labels=np.arange(2 * n) % 3, loss=loss)


def test_every_row_has_a_p_value_and_a_holm_verdict():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LowResolutionWarning)
        leaky = audit(_outputs(1.0), attacks="threshold,lr", slices="entire,class")
        quiet = audit(_outputs(0.0), attacks="threshold,lr", slices="entire,class")
    assert all(row.significant for row in leaky)
    assert all(row.p_value < 1e-4 for row in leaky)
    assert not any(row.significant for row in quiet)
    assert all(0.0 < row.p_value <= 1.0 for row in quiet)
    expected = significant_rows([r.p_value for r in quiet], alpha=0.05)
    assert [r.significant for r in quiet] == list(expected)


def test_below_chance_attack_has_zero_advantage_and_a_large_p_value():
    outputs = _outputs(-1.0)  # members have *higher* loss: the loss attack is worse than chance
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LowResolutionWarning)
        row = audit(outputs, attacks="threshold", slices="entire").row("entire_dataset",
                                                                       "threshold")
    assert row.auc < 0.3
    assert row.advantage == 0.0
    assert row.p_value > 0.999 and not row.significant


def test_warning_says_what_is_stored_for_unresolvable_fpr():
    with pytest.warns(LowResolutionWarning, match=r"TPR at FPR 0.001 is stored as null on 4 of "
                                                  r"4 rows.*fewer than 1000 non-members"):
        result = audit(_outputs(0.5), attacks="threshold", slices="entire,class")
    for row in result:
        assert row.tpr_at_fpr[0.001] is None
        assert row.tpr_at_fpr[0.01] is not None  # 200-600 non-members resolve 1%
        assert row.notes == (f"tpr_at_fpr[0.001] is null: {row.n_nonmembers} non-members "
                             f"resolve FPR only down to {1 / row.n_nonmembers:.2g} "
                             "(need n_nonmembers x FPR >= 1)",)


# --- the family of a statement about several audits ------------------------------------------


def test_one_audit_family_is_the_audits_own_verdict():
    p_values = [0.001, 0.02, 0.3, 0.004]
    family = family_verdicts(p_values, ["a"] * 4, alphas=[0.05] * 4,
                             corrections=["holm"] * 4)
    assert list(family.significant) == list(significant_rows(p_values))
    assert (family.size, family.n_audits) == (4, 1)


def test_run_family_corrects_over_every_audit_and_skips_untested_rows():
    p_values = [0.001, 0.008, None, 0.3, 0.03]
    family = family_verdicts(p_values, ["a", "a", "a", "b", "b"], alphas=[0.05] * 5,
                             corrections=["holm"] * 5)
    # Holm over the 4 tested rows: 0.001 <= 0.05/4, 0.008 <= 0.05/3, 0.03 > 0.05/2.
    assert family.significant == (True, True, None, False, False)
    assert family.size == 4 and family.n_audits == 2


def test_run_family_takes_the_smallest_alpha_and_bonferroni_when_audits_differ():
    family = family_verdicts([0.004, 0.006], ["a", "b"], alphas=[0.05, 0.01],
                             corrections=["holm", "bonferroni"])
    assert (family.alpha, family.correction) == (0.01, "bonferroni")
    assert family.significant == (True, False)  # 0.004 <= 0.01/2 < 0.006


def test_family_without_tested_rows_has_no_verdicts():
    family = family_verdicts([None, None], ["a", "a"], alphas=[0.05] * 2,
                             corrections=["holm"] * 2)
    assert family.significant == (None, None) and family.size == 0


def test_family_needs_one_entry_per_test():
    with pytest.raises(InputError, match="one entry per test; got 2, 1, 2 and 2"):
        family_verdicts([0.1, 0.2], ["a"], alphas=[0.05] * 2, corrections=["holm"] * 2)
    with pytest.raises(UnknownNameError, match="correction"):
        family_verdicts([0.1], ["a"], alphas=[0.05], corrections=["fdr"])


def test_run_family_keeps_a_run_of_no_signal_audits_at_alpha():
    """Six independent 22-row audits under H0: some audit calls a row significant in about
    1 − 0.95⁶ = 26% of runs; the run's family in ≤ 5%."""
    rng = np.random.default_rng(17)
    runs, per_audit, any_audit = 600, 0, 0
    audits = np.repeat(np.arange(6), 22)
    for _ in range(runs):
        p_values = rng.random(132)
        per_audit += any(significant_rows(p_values[audits == a]).any() for a in range(6))
        any_audit += any(family_verdicts(list(p_values), list(audits), alphas=[0.05] * 132,
                                         corrections=["holm"] * 132).significant)
    assert per_audit / runs > 0.2
    assert any_audit / runs <= 0.06
