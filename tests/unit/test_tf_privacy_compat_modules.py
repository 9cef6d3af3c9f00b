"""``memberscope.compat.tf_privacy``: the structures TF Privacy users build by hand, and the
``dataset_slicing``, ``models``, ``advanced_mia`` and ``plotting`` modules (numpy only).

Each number is checked against an obvious oracle written here (loops, numpy's own median and
std), or against memberscope's definition where the compat layer keeps it.
"""

from __future__ import annotations

import importlib
import json
import logging

import numpy as np
import pytest

import memberscope as ms
from memberscope.compat.tf_privacy import advanced_mia as amia
from memberscope.compat.tf_privacy import membership_inference_attack as mia
from memberscope.compat.tf_privacy import models
from memberscope.compat.tf_privacy.data_structures import (
    AttackInputData,
    AttackResults,
    AttackResultsCollection,
    AttackType,
    DataSize,
    EpsilonLowerBoundValue,
    PrivacyReportMetadata,
    RocCurve,
    SingleAttackResult,
    SingleMembershipProbabilityResult,
    SingleSliceSpec,
    SlicingFeature,
    SlicingSpec,
    get_flattened_attack_metrics,
)
from memberscope.compat.tf_privacy.dataset_slicing import get_single_slice_specs, get_slice
from memberscope.compat.tf_privacy.epsilon_lower_bound import BoundMethod

pytestmark = pytest.mark.filterwarnings("ignore::memberscope.LowResolutionWarning")

RANDOM = {"tpr": np.array([0.0, 0.5, 1.0]), "fpr": np.array([0.0, 0.5, 1.0]),
          "thresholds": np.array([0, 1, 2]), "test_train_ratio": 1.0}


def _single(roc: RocCurve, bounds: dict, spec: SingleSliceSpec | None = None):
    return SingleAttackResult(slice_spec=spec or SingleSliceSpec(), data_size=DataSize(10, 10),
                              attack_type=AttackType.THRESHOLD_ATTACK, roc_curve=roc,
                              epsilon_lower_bound_value=EpsilonLowerBoundValue(bounds))


# --- hand-built curves and results ------------------------------------------------------------


def test_a_curve_from_rates_reports_area_one_sided_advantage_and_plug_in_precision():
    random = RocCurve(**RANDOM)
    assert (random.get_auc(), random.get_attacker_advantage(), random.get_ppv()) == (
        0.5, 0.0, 0.5)
    # Worse than chance: TF Privacy's |TPR - FPR| would say 0.8; in our direction it is 0.
    inverted = RocCurve(tpr=np.array([0.0, 0.1, 1.0]), fpr=np.array([0.0, 0.9, 1.0]),
                        thresholds=np.array([2, 1, 0]), test_train_ratio=2.0)
    assert inverted.get_attacker_advantage() == 0.0
    oracle = max(t / (t + 2.0 * f) for t, f in ((0.1, 0.9), (1.0, 1.0)))
    assert inverted.get_ppv() == pytest.approx(oracle)
    assert str(random) == ("RocCurve(\n  AUC: 0.50\n  Attacker advantage: 0.00\n"
                           "  Positive predictive value: 0.50\n)")


def test_a_curve_from_run_attacks_reports_its_rows_full_curve_metrics():
    rng = np.random.default_rng(0)
    loss = {"loss_train": rng.exponential(0.5, 3000), "loss_test": rng.exponential(1.0, 2000)}
    single = mia.run_attacks(AttackInputData(**loss)).single_attack_results[0]
    assert len(single.roc_curve.fpr) <= 400  # thinned for plotting
    assert single.roc_curve.get_auc() == single.row.auc
    assert single.roc_curve.get_ppv() == single.row.ppv
    # TF Privacy's thresholds of a threshold attack are on the loss, not on -loss.
    assert single.roc_curve.thresholds[-1] == pytest.approx(max(loss["loss_test"].max(),
                                                                loss["loss_train"].max()))


def test_epsilon_bounds_pick_the_method_with_the_largest_mean():
    value = EpsilonLowerBoundValue({BoundMethod.KATZ_LOG: np.array([2.0, 2.0]),
                                    BoundMethod.BAILEY: np.array([5.0, 4.0]),
                                    BoundMethod.ADJUSTED_LOG: np.array([])})
    np.testing.assert_array_equal(value.get_max_epsilon_bounds(), [5.0, 4.0])
    assert str(value) == "EpsilonLowerBoundValue([5.0000, 4.0000])"
    assert EpsilonLowerBoundValue({}).get_max_epsilon_bounds().size == 0


def test_hand_built_results_rank_summarise_and_flatten():
    perfect = _single(RocCurve(tpr=np.array([0.0, 1.0, 1.0]), fpr=np.array([0.0, 0.0, 1.0]),
                               thresholds=np.array([2, 1, 0]), test_train_ratio=1.0),
                      {BoundMethod.CLOPPER_PEARSON: np.array([3.0])},
                      SingleSliceSpec(SlicingFeature.CORRECTLY_CLASSIFIED, True))
    random = _single(RocCurve(**RANDOM), {BoundMethod.KATZ_LOG: np.array([-0.1])})
    results = AttackResults([random, perfect])
    for getter in ("auc", "attacker_advantage", "ppv", "epsilon"):
        assert getattr(results, f"get_result_with_max_{getter}")() is perfect
    text = results.summary(by_slices=True)
    assert ("THRESHOLD_ATTACK (with 10 training and 10 test examples) achieved an AUC of 1.00 "
            "on slice CORRECTLY_CLASSIFIED=True") in text
    assert "top-5 epsilon lower bounds of 3.0000 on slice" in text
    types, slices, names, values = get_flattened_attack_metrics(results)
    assert names == ["adv", "auc", "ppv"] * 2 and values[:3] == [0.0, 0.5, 0.5]
    assert slices[3:] == ["CORRECTLY_CLASSIFIED=True"] * 3 and types == ["THRESHOLD_ATTACK"] * 6


def test_membership_probability_thresholds_give_precision_and_recall():
    result = SingleMembershipProbabilityResult(
        SingleSliceSpec(), train_membership_probs=np.array([0.91, 1, 0.92, 0.82, 0.75]),
        test_membership_probs=np.array([0.81, 0.7, 0.75, 0.25, 0.3, 0.2]))
    kept, precision, recall = result.attack_with_varied_thresholds([0.8, 0.7, 1.5])
    np.testing.assert_array_equal(kept, [0.8, 0.7])
    np.testing.assert_allclose(precision, [4 / 5, 5 / 8])  # TP / (TP + FP), by counting
    np.testing.assert_allclose(recall, [4 / 5, 1.0])
    lines = result.collect_results([0.8])
    assert lines[1].endswith("precision-recall pair is (0.8000, 0.8000)")
    assert "valid epsilon lower bound" in lines[-1]


def test_membership_probability_analysis_is_the_histogram_share_of_members():
    data = AttackInputData(loss_train=np.array([1.0, 1, 1, 10, 100]),
                           loss_test=np.array([10.0, 100, 100, 1000, 10000]))
    result = next(iter(mia.run_membership_probability_analysis(data).membership_prob_results))
    np.testing.assert_allclose(result.train_membership_probs, [1, 1, 1, 0.5, 1 / 3], atol=1e-9)
    np.testing.assert_allclose(result.test_membership_probs, [0.5, 1 / 3, 1 / 3, 0, 0],
                               atol=1e-9)


# --- saving without pickle --------------------------------------------------------------------


def test_results_round_trip_through_json_files(tmp_path):
    rng = np.random.default_rng(2)
    data = AttackInputData(loss_train=rng.exponential(0.5, 200),
                           loss_test=rng.exponential(1.0, 100),
                           labels_train=rng.integers(0, 2, 200),
                           labels_test=rng.integers(0, 2, 100))
    ran = mia.run_attacks(data, SlicingSpec(by_class=True), return_slice_indices=True,
                          privacy_report_metadata=PrivacyReportMetadata(epoch_num=3))
    built = AttackResults([_single(RocCurve(**RANDOM), {BoundMethod.BAILEY: np.array([np.inf])})])
    path = tmp_path / "results.json"
    for results in (ran, built):
        results.save(path)
        loaded = AttackResults.load(path)
        assert repr(loaded) == repr(results)
        assert [r.row for r in loaded.single_attack_results] == [
            r.row for r in results.single_attack_results]
    document = json.loads(path.read_text())
    assert document["schema_version"] == 1
    collection = AttackResultsCollection([ran, built, ran])
    collection.save(tmp_path / "all")
    (tmp_path / "all" / "notes.txt").write_text("not a result")
    assert repr(AttackResultsCollection.load(tmp_path / "all")) == repr(collection)
    path.write_text("{}")
    with pytest.raises(ms.SchemaError, match="not saved AttackResults"):
        AttackResults.load(path)


# --- dataset_slicing --------------------------------------------------------------------------


def _sliceable() -> AttackInputData:
    return AttackInputData(
        logits_train=np.array([[0, 1, 0], [2, 0, 3], [4, 5, 0], [6, 7, 0]], float),
        logits_test=np.array([[10, 0, 11], [12, 13, 0], [14, 15, 0], [0, 16, 17]], float),
        labels_train=np.array([1, 0, 1, 2]), labels_test=np.array([1, 2, 0, 2]),
        loss_train=np.array([2, 0.25, 4, 3]), loss_test=np.array([0.5, 3.5, 7, 4.5]),
        sample_weight_train=np.array([1.0, 0.2, 0.5, 0.8]),
        sample_weight_test=np.array([0.5, 1.0, 0.1, 0.8]))


def test_slice_specs_in_tf_privacy_order():
    spec = SlicingSpec(entire_dataset=True, by_class=True, by_percentiles=True,
                       by_classification_correctness=True,
                       all_custom_train_indices=[np.array([1, 2, 1])],
                       all_custom_test_indices=[np.array([2, 3])])
    specs = get_single_slice_specs(spec, num_classes=3)
    assert [s.feature for s in specs] == ([None] + [SlicingFeature.CLASS] * 3
                                          + [SlicingFeature.PERCENTILE] * 10
                                          + [SlicingFeature.CORRECTLY_CLASSIFIED] * 2
                                          + [SlicingFeature.CUSTOM])
    assert specs[-1].value[2] == 2  # the only group on both sides
    with pytest.raises(ms.InputError, match="needs the number of classes"):
        get_single_slice_specs(SlicingSpec(by_class=True))
    many = SlicingSpec(all_custom_train_indices=[np.arange(1001)],
                       all_custom_test_indices=[np.arange(1001)])
    with pytest.raises(ms.InputError, match="too many custom groups"):
        get_single_slice_specs(many)


def test_get_slice_cuts_every_array_by_the_slice():
    data = _sliceable()
    by_class = get_slice(data, SingleSliceSpec(SlicingFeature.CLASS, 1))
    np.testing.assert_array_equal(by_class.loss_train, [2, 4])
    np.testing.assert_array_equal(by_class.sample_weight_test, [0.5])
    wrong = get_slice(data, SingleSliceSpec(SlicingFeature.CORRECTLY_CLASSIFIED, False),
                      return_slice_indices=True)
    np.testing.assert_array_equal(wrong.train_indices, [1, 3])
    np.testing.assert_array_equal(wrong.test_indices, [0, 1, 2])
    assert not hasattr(get_slice(data, SingleSliceSpec(SlicingFeature.CLASS, 1)),
                       "train_indices")
    lower_half = get_slice(data, SingleSliceSpec(SlicingFeature.PERCENTILE, (0, 50)))
    cutoff = np.percentile(np.concatenate([data.loss_train, data.loss_test]), 50)
    np.testing.assert_array_equal(lower_half.loss_train, data.loss_train[data.loss_train <= cutoff])
    entire = get_slice(data, SingleSliceSpec())
    assert entire.slice_spec == SingleSliceSpec() and entire.loss_train is data.loss_train
    custom = SingleSliceSpec(SlicingFeature.CUSTOM, (np.array([2, 2, 100]), np.array([1]), 2,
                                                     None))
    with pytest.raises(ms.InputError, match="one value per train example"):
        get_slice(data, custom)


# --- models -----------------------------------------------------------------------------------


def test_attacker_data_stacks_predictions_and_loss_and_balances():
    data = AttackInputData(logits_train=np.arange(6.0).reshape(3, 2),
                           logits_test=np.arange(4.0).reshape(2, 2),
                           loss_train=np.array([3.0, 7, 10]), loss_test=np.array([12.0, 16]))
    unbalanced = models.create_attacker_data(data, balance=False)
    assert unbalanced.features_all.shape == (5, 3) and len(unbalanced.fold_indices) == 5
    np.testing.assert_array_equal(unbalanced.labels_all, [1, 1, 1, 0, 0])
    balanced = models.create_attacker_data(data)
    assert len(balanced.left_out_indices) == 1 and balanced.left_out_indices[0] in (0, 1, 2)
    assert sorted([*balanced.fold_indices, *balanced.left_out_indices]) == list(range(5))


@pytest.mark.parametrize("attack_type", [t for t in AttackType if t.is_trained_attack])
def test_each_attacker_learns_membership_from_separable_features(attack_type, caplog):
    rng = np.random.default_rng(0)
    features = np.vstack([rng.normal(1.5, 1, (120, 2)), rng.normal(-1.5, 1, (120, 2))])
    labels = np.repeat([1, 0], 120)
    with caplog.at_level(logging.INFO):
        attacker = models.create_attacker(attack_type, backend="threading")
    assert "Using the single-threaded backend for training" in caplog.text
    attacker.train_model(features, labels)
    scores = attacker.predict(features)
    assert ms.roc_metrics(scores, labels.astype(bool))["auc"] > 0.9


def test_trained_attacker_base_class_and_untrained_prediction_fail_clearly():
    with pytest.raises(NotImplementedError):
        models.TrainedAttacker().train_model([[0.0]], [1])
    with pytest.raises(AssertionError, match="not trained yet"):
        models.LogisticRegressionAttacker().predict([[0.0]])
    with pytest.raises(ms.InputError, match="without sample weights"):
        models.LogisticRegressionAttacker().train_model([[0.0], [1.0]], [0, 1], [1.0, 2.0])


# --- advanced_mia -----------------------------------------------------------------------------

STAT_IN = [np.array([[1.0, 2, -3]]), np.array([[-2.0, 4, 6], [0, 0, 0], [5, -7, -9]]),
           np.empty((0, 3))]
STAT_OUT = [10 - s for s in STAT_IN]
TARGET = np.array([[-0.1, 0.1, 0], [0, 0, 27], [0, 0, 0]])


def _average_oracle(stats, average):
    rows = [average(s, axis=0) if len(s) else np.full(3, np.nan) for s in stats]
    table = np.array(rows)
    for column in range(3):
        missing = np.isnan(table[:, column])
        table[missing, column] = table[~missing, column].mean()
    return table


@pytest.mark.parametrize("average", ["median", "mean"])
@pytest.mark.parametrize("option", ["both", "in", "out"])
def test_offset_score_is_target_minus_the_shadow_average(option, average):
    function = np.median if average == "median" else np.mean
    parts = {"in": _average_oracle(STAT_IN, function), "out": _average_oracle(STAT_OUT, function)}
    offset = (parts["in"] + parts["out"]) / 2 if option == "both" else parts[option]
    expected = (TARGET - offset).mean(axis=1)
    scores = amia.compute_score_offset(TARGET, STAT_IN, STAT_OUT, option, average)
    np.testing.assert_allclose(scores, expected)


def _log_normal(x, mean, std):
    std = std + 1e-30
    return -0.5 * ((x - mean) / std) ** 2 - np.log(std) - 0.5 * np.log(2 * np.pi)


@pytest.mark.parametrize("fix_variance", [False, True])
def test_lira_score_is_the_gaussian_log_likelihood_ratio_members_low(fix_variance):
    target = np.array([[1.0], [0.0], [2.0]])
    stat_in = [np.array([[-1.0], [1.0], [2.0]]), np.array([[0.0], [2.0]]),
               np.array([[1.0], [3.0]])]
    stat_out = [-s for s in stat_in]
    expected = []
    pooled = {side: np.std(np.concatenate([s - np.median(s) for s in stats]))
              for side, stats in (("in", stat_in), ("out", stat_out))}
    for i in range(3):
        logs = {}
        for side, stats in (("in", stat_in), ("out", stat_out)):
            std = pooled[side] if fix_variance else np.std(stats[i])
            logs[side] = _log_normal(target[i, 0], np.median(stats[i]), std)
        expected.append(logs["out"] - logs["in"])
    scores = amia.compute_score_lira(target, stat_in, stat_out, "both", fix_variance, "median")
    np.testing.assert_allclose(scores, expected)
    with pytest.raises(ms.InputError, match="option must be one of"):
        amia.compute_score_lira(target, stat_in, stat_out, "neither")


def test_statistics_of_logits_and_probabilities():
    logits = np.array([[1.0, 2, -3], [-1, 1, 0]])
    labels = np.array([1, 2])
    probs = ms.signals.softmax(logits)
    true = probs[[0, 1], labels]
    np.testing.assert_allclose(amia.calculate_statistic(logits, labels, option="conf with prob"),
                               true)
    np.testing.assert_allclose(amia.calculate_statistic(logits, labels, np.array([1.0, 0.5]),
                                                        option="xe"), -np.log(true) * [1, 0.5])
    np.testing.assert_allclose(amia.calculate_statistic(logits, labels, option="logit"),
                               np.log(true / (1 - true)))
    np.testing.assert_array_equal(amia.calculate_statistic(logits, labels,
                                                           option="conf with logit"), [2, 0])
    np.testing.assert_array_equal(amia.calculate_statistic(logits, labels, option="hinge"),
                                  [1, -1])
    np.testing.assert_allclose(amia.calculate_statistic(probs, labels, is_logits=False,
                                                        option="logit"), np.log(true / (1 - true)))
    with pytest.raises(ms.InputError, match="needs logits"):
        amia.calculate_statistic(probs, labels, is_logits=False, option="hinge")
    np.testing.assert_allclose(amia.convert_logit_to_prob(logits), probs)


# --- plotting and the public names ----------------------------------------------------------


def test_plot_roc_curve_draws_the_curve_and_saves_it(tmp_path):
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    from memberscope.compat.tf_privacy import plotting

    figure = plotting.plot_roc_curve(RocCurve(**RANDOM))
    _, curve = figure.axes[0].get_lines()
    np.testing.assert_array_equal(curve.get_xdata(), RANDOM["fpr"])
    assert curve.get_label() == "AUC: 0.500"
    plotting.save_plot(figure, tmp_path / "roc.png")
    assert (tmp_path / "roc.png").read_bytes().startswith(b"\x89PNG")
    histogram = plotting.plot_histograms([0.1, 0.2, 0.3], [0.5, 0.6], xlabel="loss", thresh=0.4)
    assert histogram.axes[0].get_xlabel() == "loss"
    plt.close("all")


# Every name TF Privacy 0.9.0's own tests of these modules import (or reach as module.NAME).
TF_TEST_NAMES = {
    "data_structures": {"AttackInputData", "AttackResults", "AttackResultsCollection",
                        "AttackType", "DataSize", "EpsilonLowerBoundValue",
                        "PrivacyReportMetadata", "RocCurve", "SingleAttackResult",
                        "SingleMembershipProbabilityResult", "SingleSliceSpec", "SlicingFeature",
                        "SlicingSpec", "get_flattened_attack_metrics", "EPSILON_K"},
    "membership_inference_attack": {"run_attacks"},
    "dataset_slicing": {"get_single_slice_specs", "get_slice"},
    "models": {"TrainedAttacker", "LogisticRegressionAttacker", "MultilayerPerceptronAttacker",
               "RandomForestAttacker", "KNearestNeighborsAttacker", "create_attacker",
               "create_attacker_data"},
    "advanced_mia": {"compute_score_offset", "compute_score_lira", "convert_logit_to_prob",
                     "calculate_statistic"},
    "privacy_report": {"plot_by_epochs", "plot_privacy_vs_accuracy"},
    "plotting": {"plot_roc_curve", "plot_curve_with_area", "plot_histograms", "save_plot"},
    "epsilon_lower_bound": {"BoundMethod"},
    "utils": {"LossFunction"},
}


@pytest.mark.parametrize("module_name", sorted(TF_TEST_NAMES))
def test_every_name_tf_privacys_tests_use_is_public(module_name):
    module = importlib.import_module(f"memberscope.compat.tf_privacy.{module_name}")
    assert TF_TEST_NAMES[module_name] <= set(module.__all__)
    assert all(getattr(module, name) is not None for name in module.__all__)


def test_audit_runs_an_attack_object_as_given_without_registering_it():
    from dataclasses import replace

    rng = np.random.default_rng(4)
    membership = np.arange(300) < 150
    signal = rng.normal(size=300) + membership
    custom = replace(ms.get_attack("threshold"), signal=lambda outputs, reference, options: signal)
    outputs = ms.ModelOutputs(membership=membership, loss=np.zeros(300))
    result = ms.audit(outputs, attacks=[custom], slices=["entire"])
    assert result.rows[0].auc == ms.roc_metrics(signal, membership)["auc"]
    assert ms.get_attack("threshold").signal is not custom.signal
