"""LiRA and RMIA: analytic oracles, every option, direction, and their use through audit."""

from __future__ import annotations

import tracemalloc
import warnings

import numpy as np
import pytest
from scipy import stats

from memberscope import ModelOutputs, audit
from memberscope.attacks import AttackWarning
from memberscope.attacks.reference import (
    gaussian_fit,
    lira_scores,
    rmia_marginal,
    rmia_scores,
    tune_rmia_offline_a,
)
from memberscope.errors import InputError
from memberscope.metrics import auc_from_roc, roc_curve
from memberscope.outputs import ReferenceOutputs

# Standardised patterns: mean 0 and unbiased std 1, so values mu + sigma * pattern have
# sample mean mu and sample std sigma exactly.
FPRS = (0.01, 0.1)  # the small setups here cannot resolve FPR 0.001
_SYMMETRIC = np.array([-1.5, -0.5, 0.5, 1.5]) / np.std([-1.5, -0.5, 0.5, 1.5], ddof=1)


def _exact_gaussian_references(mu_in, sd_in, mu_out, sd_out):
    """(8, n, 1) signals whose 4 in / 4 out samples per example have exactly these moments."""
    n = len(mu_in)
    membership = np.zeros((8, n), dtype=bool)
    membership[:4] = True
    signal = np.empty((8, n))
    signal[:4] = mu_in + sd_in * _SYMMETRIC[:, None]
    signal[4:] = mu_out + sd_out * _SYMMETRIC[:, None]
    rng = np.random.default_rng(0)
    order = np.argsort(rng.random((8, n)), axis=0)  # shuffle models per example
    return (np.take_along_axis(signal, order, 0)[:, :, None],
            np.take_along_axis(membership, order, 0))


def _gaussian_problem(n=5, seed=0):
    rng = np.random.default_rng(seed)
    mu_out = rng.normal(size=n)
    mu_in = mu_out + rng.uniform(0.5, 2.0, n)
    sd_in, sd_out = rng.uniform(0.3, 1.0, n), rng.uniform(0.3, 1.0, n)
    target = rng.normal(size=(n, 1))
    return mu_in, sd_in, mu_out, sd_out, target


def test_lira_online_is_the_analytic_likelihood_ratio() -> None:
    mu_in, sd_in, mu_out, sd_out, target = _gaussian_problem()
    signal, membership = _exact_gaussian_references(mu_in, sd_in, mu_out, sd_out)
    scores = lira_scores(target, signal, membership, online=True, variance="per_example")
    expected = (stats.norm.logpdf(target[:, 0], mu_in, sd_in)
                - stats.norm.logpdf(target[:, 0], mu_out, sd_out))
    np.testing.assert_allclose(scores, expected, rtol=1e-10)


def test_lira_online_converges_to_the_true_ratio_with_many_models() -> None:
    mu_in, sd_in, mu_out, sd_out, target = _gaussian_problem(n=4, seed=1)
    rng = np.random.default_rng(2)
    membership = rng.random((4000, 4)) < 0.5
    signal = np.where(membership, rng.normal(mu_in, sd_in, (4000, 4)),
                      rng.normal(mu_out, sd_out, (4000, 4)))[:, :, None]
    expected = (stats.norm.logpdf(target[:, 0], mu_in, sd_in)
                - stats.norm.logpdf(target[:, 0], mu_out, sd_out))
    np.testing.assert_allclose(lira_scores(target, signal, membership, variance="per_example"),
                               expected, atol=0.15)


def test_lira_offline_is_the_one_sided_tail() -> None:
    mu_in, sd_in, mu_out, sd_out, target = _gaussian_problem()
    signal, membership = _exact_gaussian_references(mu_in, sd_in, mu_out, sd_out)
    scores = lira_scores(target, signal, membership, online=False, variance="per_example")
    np.testing.assert_allclose(scores, -stats.norm.logsf(target[:, 0], mu_out, sd_out))
    # offline ignores the in models entirely
    shifted = np.where(membership[:, :, None], signal + 100, signal)
    np.testing.assert_allclose(
        lira_scores(target, shifted, membership, online=False, variance="per_example"), scores)


def test_lira_global_variance_pools_within_example_deviations() -> None:
    mu_in, sd_in, mu_out, sd_out, target = _gaussian_problem()
    signal, membership = _exact_gaussian_references(mu_in, sd_in, mu_out, sd_out)
    pooled_in = np.sqrt(np.mean(sd_in**2))  # 3 degrees of freedom per example each
    pooled_out = np.sqrt(np.mean(sd_out**2))
    _, scale, _ = gaussian_fit(signal, membership, variance="global")
    np.testing.assert_allclose(scale[:, 0], pooled_in)
    scores = lira_scores(target, signal, membership, variance="global")
    expected = (stats.norm.logpdf(target[:, 0], mu_in, pooled_in)
                - stats.norm.logpdf(target[:, 0], mu_out, pooled_out))
    np.testing.assert_allclose(scores, expected, rtol=1e-10)


def test_lira_median_center() -> None:
    values = np.array([[0.0], [1.0], [10.0], [5.0], [7.0]])[:, :, None]  # (5 models, 1, 1)
    mask = np.array([[True], [True], [True], [False], [True]])
    location, _, count = gaussian_fit(values, mask, center="median")
    assert count[0, 0] == 4
    assert location[0, 0] == pytest.approx(4.0)  # median of 0, 1, 7, 10
    location, _, _ = gaussian_fit(values, mask, center="mean")
    assert location[0, 0] == pytest.approx(4.5)
    odd = np.array([[True], [True], [True], [False], [False]])
    assert gaussian_fit(values, odd, center="median")[0][0, 0] == pytest.approx(1.0)


def test_lira_averages_over_augmented_queries() -> None:
    rng = np.random.default_rng(4)
    membership = rng.random((16, 30)) < 0.5
    signal = rng.normal(size=(16, 30, 3)) + membership[:, :, None]
    target = rng.normal(size=(30, 3))
    for online in (True, False):
        combined = lira_scores(target, signal, membership, online=online)
        one_by_one = [lira_scores(target[:, [q]], signal[:, :, [q]], membership, online=online)
                      for q in range(3)]
        np.testing.assert_allclose(combined, np.mean(one_by_one, axis=0))


def test_lira_per_example_variance_falls_back_to_global_with_one_model() -> None:
    signal = np.array([[1.0, 0.0], [2.0, 0.0], [3.0, 0.0], [9.0, 5.0]])[:, :, None]
    mask = np.array([[True, False], [True, False], [True, False], [False, True]])
    _, scale, count = gaussian_fit(signal, mask)
    assert count[1, 0] == 1
    assert scale[1, 0] == pytest.approx(scale_global := 1.0)  # pooled std of 1, 2, 3
    assert scale[0, 0] == pytest.approx(scale_global)


def test_lira_constant_signals_stay_finite() -> None:
    membership = np.array([[True], [False], [True], [False]])
    scores = lira_scores(np.array([[0.5]]), np.zeros((4, 1, 1)), membership, min_std=1e-3)
    assert np.isfinite(scores).all()


def test_lira_online_needs_both_sides() -> None:
    membership = np.zeros((4, 3), dtype=bool)
    membership[:2, 0] = True  # example 0 has 2 in and 2 out; examples 1, 2 are never in
    with pytest.raises(InputError, match=r"2 example\(s\) have no 'in' reference model "
                                         r"\(first at row 1\)"):
        lira_scores(np.zeros((3, 1)), np.zeros((4, 3, 1)), membership)
    offline = lira_scores(np.zeros((3, 1)), np.zeros((4, 3, 1)), membership, online=False)
    assert np.isfinite(offline).all()
    membership[:, 2] = True  # example 2 is in for every model: no out
    with pytest.raises(InputError, match=r"1 example\(s\) have no 'out' reference model "
                                         r"\(first at row 2\)"):
        lira_scores(np.zeros((3, 1)), np.zeros((4, 3, 1)), membership, online=False)


# --- RMIA -----------------------------------------------------------------------------------


def _rmia_problem(m=8, n=60, q=1, seed=0):
    rng = np.random.default_rng(seed)
    membership = rng.random((m, n)) < 0.5
    membership[0], membership[1] = True, False  # every example has both sides
    hardness = rng.normal(size=(n, 1))
    prob = 1 / (1 + np.exp(-(hardness + membership[:, :, None] + rng.normal(size=(m, n, q)))))
    target_in = rng.random(n) < 0.5
    target = 1 / (1 + np.exp(-(hardness + target_in[:, None] + rng.normal(size=(n, q)))))
    return target, prob, membership, target_in


def _rmia_oracle(target, prob, membership, *, online, gamma, a, z_index):
    """The paper's definition, one (x, z) pair at a time."""
    n, q = target.shape
    scores = np.zeros(n)
    for k in range(q):
        if online:
            marginal = prob[:, :, k].mean(axis=0)
        else:
            out_mean = np.array([prob[~membership[:, i], i, k].mean() for i in range(n)])
            marginal = 0.5 * ((1 + a) * out_mean + (1 - a))
        ratio = target[:, k] / marginal
        for i in range(n):
            scores[i] += np.mean([ratio[i] / ratio[j] >= gamma for j in z_index]) / q
    return scores


@pytest.mark.parametrize("online", [True, False])
@pytest.mark.parametrize("gamma", [1.0, 2.0, 0.5])
def test_rmia_matches_the_pairwise_definition(online: bool, gamma: float) -> None:
    target, prob, membership, _ = _rmia_problem(q=2)
    z_index = np.arange(0, 60, 3)
    expected = _rmia_oracle(target, prob, membership, online=online, gamma=gamma, a=0.3,
                            z_index=z_index)
    for method in ("sorted", "pairwise"):
        scores = rmia_scores(target, prob, membership, online=online, gamma=gamma, a=0.3,
                             z_index=z_index, method=method)
        np.testing.assert_allclose(scores, expected, atol=1e-12, err_msg=method)


def test_rmia_gamma_is_monotone() -> None:
    target, prob, membership, _ = _rmia_problem()
    low = rmia_scores(target, prob, membership, gamma=0.5)
    high = rmia_scores(target, prob, membership, gamma=4.0)
    assert (high <= low).all() and (high < low).any()


def test_rmia_offline_marginal_interpolation() -> None:
    prob = np.array([[0.9, 0.2], [0.5, 0.4], [0.3, 0.8]])[:, :, None]
    membership = np.array([[True, False], [False, False], [False, True]])
    np.testing.assert_allclose(rmia_marginal(prob, membership, online=True, a=0.3)[:, 0],
                               prob[:, :, 0].mean(axis=0))
    out_mean = np.array([0.4, 0.3])
    for a in (0.0, 0.3, 1.0):
        expected = ((1 + a) * out_mean + (1 - a)) / 2
        np.testing.assert_allclose(rmia_marginal(prob, membership, online=False, a=a)[:, 0],
                                   expected)
    # a = 1: Pr(x) is Pr_out(x); a = 0: halfway between Pr_out(x) and 1
    np.testing.assert_allclose(rmia_marginal(prob, membership, online=False, a=1.0)[:, 0],
                               out_mean)


def test_rmia_chunked_pairwise_equals_unchunked_and_respects_the_cap() -> None:
    rng = np.random.default_rng(5)
    n = 3000
    membership = rng.random((4, n)) < 0.5
    prob = rng.uniform(0.01, 0.99, (4, n, 1))
    target = rng.uniform(0.01, 0.99, (n, 1))
    unchunked = rmia_scores(target, prob, membership, method="pairwise",
                            max_pairwise_bytes=10**9)
    cap = 256 * 1024
    tracemalloc.start()
    chunked = rmia_scores(target, prob, membership, method="pairwise", max_pairwise_bytes=cap)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    np.testing.assert_array_equal(chunked, unchunked)
    np.testing.assert_array_equal(rmia_scores(target, prob, membership), unchunked)
    # n × |z| pairs would take 81 MB; the blocks stay under the cap plus O(n) arrays
    assert peak < cap + 40 * n * 8, peak


def test_rmia_parameter_errors() -> None:
    target, prob, membership, _ = _rmia_problem()
    with pytest.raises(InputError, match="gamma must be > 0"):
        rmia_scores(target, prob, membership, gamma=0)
    with pytest.raises(InputError, match=r"a must be in \[0, 1\]"):
        rmia_scores(target, prob, membership, a=1.5)
    with pytest.raises(InputError, match="max_pairwise_bytes must be >= 1024"):
        rmia_scores(target, prob, membership, max_pairwise_bytes=10)
    with pytest.raises(InputError, match=r"method must be one of \['sorted', 'pairwise'\]"):
        rmia_scores(target, prob, membership, method="chunked")
    with pytest.raises(InputError, match="lira: variance must be one of"):
        lira_scores(target, prob, membership, variance="fixed")
    with pytest.raises(InputError, match="z_index is empty"):
        rmia_scores(target, prob, membership, z_index=np.array([], int))


def test_tune_offline_a_picks_the_best_auc_on_the_pseudo_target() -> None:
    _, prob, membership, _ = _rmia_problem(m=10, n=400, seed=7)
    ref = ReferenceOutputs(signal=np.log(prob / (1 - prob)), true_class_prob=prob,
                           membership=membership)
    grid = (0.0, 0.25, 0.5, 0.75, 1.0)
    best = tune_rmia_offline_a(ref, pseudo_target=2, grid=grid)
    others = np.arange(10) != 2

    def auc(a: float) -> float:
        scores = rmia_scores(prob[2], prob[others], membership[others], online=False, a=a)
        return auc_from_roc(roc_curve(scores, membership[2]))

    aucs = {a: auc(a) for a in grid}
    assert best in grid and aucs[best] == max(aucs.values())
    assert len(set(np.round(list(aucs.values()), 6))) > 1  # a matters on this problem
    with pytest.raises(InputError, match="at least 2 reference models"):
        tune_rmia_offline_a(ref.select_models([0]))


# --- through audit ---------------------------------------------------------------------------


def _entire(outputs, attacks, **options):
    return audit(outputs, attacks=attacks, slices=["entire"], fpr_targets=FPRS, **options)


def _leaky_setup(n=2000, m=16, q=1, seed=0):
    rng = np.random.default_rng(seed)
    membership = np.zeros((m, n), dtype=bool)
    for j in range(0, m, 2):
        half = rng.permutation(n)[: n // 2]
        membership[j, half] = True
        membership[j + 1] = ~membership[j]
    difficulty = rng.normal(0, 2, n)
    signal = difficulty[None, :, None] + 1.0 * membership[:, :, None] + rng.normal(
        0, 0.5, (m, n, q))
    target_in = rng.random(n) < 0.5
    target_signal = difficulty[:, None] + 1.0 * target_in[:, None] + rng.normal(0, 0.5, (n, q))
    sigmoid = lambda s: 1 / (1 + np.exp(-s))  # noqa: E731
    outputs = ModelOutputs(membership=target_in, labels=np.zeros(n, int),
                           probs=np.stack([sigmoid(target_signal[:, 0]),
                                           1 - sigmoid(target_signal[:, 0])], axis=1))
    ref = ReferenceOutputs(signal=signal, true_class_prob=sigmoid(signal), membership=membership,
                           labels=np.zeros(n, int))
    return outputs, ref, target_signal, sigmoid(target_signal)


@pytest.mark.parametrize(("attack", "options"), [
    ("lira", {}), ("lira", {"online": False}), ("lira", {"variance": "per_example"}),
    ("lira", {"center": "median"}), ("rmia", {}), ("rmia", {"online": False, "a": "tune"}),
    ("rmia", {"z": 500, "gamma": 2.0}),
])
def test_reference_attacks_beat_chance_and_the_loss_attack(attack: str, options: dict) -> None:
    outputs, ref, _, _ = _leaky_setup()
    result = audit(outputs, attacks=["threshold", attack], slices=["entire", "class"],
                   reference=ref, attack_options={attack: options})
    ours = result.row("entire_dataset", attack)
    assert ours.auc > 0.5
    # the difficulty of each example hides membership from the loss; references remove it
    assert ours.auc > result.row("entire_dataset", "threshold").auc + 0.1
    assert result.scores[attack].shape == (2000,)


def test_audit_uses_stored_target_queries() -> None:
    outputs, ref, target_signal, target_prob = _leaky_setup(q=3)
    with_queries = ReferenceOutputs(signal=ref.signal, true_class_prob=ref.true_class_prob,
                                    membership=ref.membership, target_signal=target_signal,
                                    target_true_class_prob=target_prob)
    result = _entire(outputs, ["lira"], reference=with_queries)
    np.testing.assert_allclose(result.scores["lira"],
                               lira_scores(target_signal, ref.signal, ref.membership))
    # without the target's queries only query 0 of the references is used
    result = _entire(outputs, ["lira"], reference=ref)
    np.testing.assert_allclose(
        result.scores["lira"],
        lira_scores(target_signal[:, :1], ref.signal[:, :, :1], ref.membership), rtol=1e-9)


def test_loss_only_outputs_give_the_same_scores() -> None:
    outputs, ref, _, _ = _leaky_setup(n=400)
    loss_only = ModelOutputs(membership=outputs.membership, labels=outputs.labels,
                             loss=outputs.loss_values)
    for attack in ("lira", "rmia"):
        a = _entire(outputs, [attack], reference=ref).scores[attack]
        b = _entire(loss_only, [attack], reference=ref).scores[attack]
        np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-9)


def test_audit_reports_misaligned_or_missing_references() -> None:
    outputs, ref, _, _ = _leaky_setup(n=400)
    with pytest.raises(InputError, match="needs reference models"):
        audit(outputs, attacks=["lira"])
    shuffled = ReferenceOutputs(signal=ref.signal, true_class_prob=ref.true_class_prob,
                                membership=ref.membership, labels=np.arange(400) % 2)
    result = _entire(outputs, ["lira"], reference=shuffled)
    assert "labels differ" in result.skipped[0].reason
    with pytest.raises(InputError, match=r"^rmia: unknown option\(s\) \['gamma_typo'\]"):
        _entire(outputs, ["rmia"], reference=ref, attack_options={"rmia": {"gamma_typo": 1}})
    result = _entire(outputs.subset(np.arange(400) < 300), ["lira"], reference=ref)
    assert "reference has 400 examples but outputs has 300" in result.skipped[0].reason


def test_rmia_population_option() -> None:
    outputs, ref, _, _ = _leaky_setup(n=400)
    by_count = _entire(outputs, ["rmia"], reference=ref,
                     attack_options={"rmia": {"z": 50, "z_seed": 3}}).scores["rmia"]
    assert set(np.round(by_count * 50, 9)) <= set(range(51))  # fractions of 50 samples
    index = np.arange(0, 400, 8)
    by_index = _entire(outputs, ["rmia"], reference=ref,
                     attack_options={"rmia": {"z": index}}).scores["rmia"]
    assert set(np.round(by_index * len(index), 9)) <= set(range(len(index) + 1))
    result = _entire(outputs, ["rmia"], reference=ref,
                   attack_options={"rmia": {"z": 0}})
    assert "must be in [1, 400]" in result.skipped[0].reason


# --- too few reference models: a recorded warning, the real cause (issue 12) ---------------


@pytest.mark.parametrize(("options", "side"), [({}, "'in' and 'out'"),
                                               ({"online": False}, "'out'")])
def test_lira_without_a_variance_says_so_in_the_result(options, side) -> None:
    """1 'in' + 1 'out' model per example: no std can be estimated (min_std is used)."""
    outputs, ref, _, _ = _leaky_setup(n=400, m=2)
    with pytest.warns(AttackWarning, match=f"lira: the spread of the {side} signals cannot be "
                                           "estimated"):
        result = _entire(outputs, ["lira"], reference=ref, attack_options={"lira": options})
    assert len(result.notes) == 1
    assert result.notes[0].startswith(f"lira: the spread of the {side} signals cannot be "
                                      "estimated: no example has 2 or more")
    assert "min_std=0.001" in result.notes[0] and "4 models" in result.notes[0]
    assert result.to_dict("x")["notes"] == list(result.notes)
    assert result.row("entire_dataset", "lira").auc > 0.5  # the ranking still works
    enough, ref4, _, _ = _leaky_setup(n=400, m=4)
    with warnings.catch_warnings():
        warnings.simplefilter("error", AttackWarning)
        result = _entire(enough, ["lira"], reference=ref4, attack_options={"lira": options})
    assert result.notes == () and "notes" not in result.to_dict("x")


@pytest.mark.parametrize("m", [2, 3])
def test_tuning_a_names_the_pseudo_target_as_the_cause(m) -> None:
    outputs, ref, _, _ = _leaky_setup(n=400, m=4)
    few = ref.select_models(list(range(m)))
    result = _entire(outputs, ["rmia"], reference=few,
                     attack_options={"rmia": {"online": False, "a": "tune"}})
    assert [s.reason for s in result.skipped] == [result.skipped[0].reason]
    reason = result.skipped[0].reason
    assert reason.startswith(f"rmia: a='tune' lets reference model 0 play the target, leaving "
                             f"{m - 1} reference model(s); ")
    assert "are 'out' of model 0 only" in reason and "at least 4 reference models" in reason
    # Without tuning, offline RMIA runs on the same models; online RMIA does not use a.
    for options in ({"online": False}, {"online": True, "a": "tune"}):
        result = _entire(outputs, ["rmia"], reference=few, attack_options={"rmia": options})
        assert result.row("entire_dataset", "rmia").auc > 0.5
    result = _entire(outputs, ["rmia"], reference=ref,
                     attack_options={"rmia": {"online": False, "a": "tune"}})
    assert result.row("entire_dataset", "rmia").auc > 0.5


@pytest.mark.parametrize(("attack", "options", "message"), [
    ("lira", {"min_std": 0}, r"^lira: option 'min_std' must be a number > 0; got 0$"),
    ("lira", {"variance": "pooled"}, r"^lira: option 'variance' must be one of"),
    ("rmia", {"gamma": -1}, r"^rmia: option 'gamma' must be a number > 0; got -1$"),
    ("rmia", {"a": 1.5}, r"^rmia: option 'a' must be in \[0, 1\] or 'tune'; got 1.5$"),
    ("rmia", {"a": "auto"}, r"^rmia: option 'a' must be in \[0, 1\] or 'tune'; got 'auto'$"),
])
def test_reference_attack_options_are_checked_before_any_work(attack, options, message) -> None:
    outputs, ref, _, _ = _leaky_setup(n=400, m=4)
    with pytest.raises(InputError, match=message):
        _entire(outputs, ["threshold", attack], reference=ref,
                attack_options={attack: options})
