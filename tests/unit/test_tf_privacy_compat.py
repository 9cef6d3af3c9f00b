"""``memberscope.compat.tf_privacy``: TF Privacy's API mapped onto memberscope (no TensorFlow).

The oracle for every number is :func:`memberscope.audit` run directly on the same arrays: the
compat layer must only translate names, slices and metadata, never compute metrics itself.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import memberscope as ms
from memberscope.compat.tf_privacy import membership_inference_attack as mia
from memberscope.compat.tf_privacy import privacy_report
from memberscope.compat.tf_privacy.data_structures import (
    AttackInputData,
    AttackResults,
    AttackResultsCollection,
    AttackType,
    LossFunction,
    PrivacyMetric,
    PrivacyReportMetadata,
    SingleSliceSpec,
    SlicingFeature,
    SlicingSpec,
)

pytestmark = pytest.mark.filterwarnings("ignore::memberscope.LowResolutionWarning")
NUM_CLASSES = 4


def _leaky(n_train: int = 400, n_test: int = 200, shift: float = 1.5, seed: int = 0):
    """Logits whose true-class logit is larger on members: (logits, labels) per side."""
    rng = np.random.default_rng(seed)

    def side(n: int, boost: float) -> tuple[np.ndarray, np.ndarray]:
        labels = rng.integers(0, NUM_CLASSES, n)
        logits = rng.normal(size=(n, NUM_CLASSES))
        logits[np.arange(n), labels] += boost
        return logits, labels

    (lt, yt), (ls, ys) = side(n_train, shift + 1.0), side(n_test, 1.0)
    return {"logits_train": lt, "logits_test": ls, "labels_train": yt, "labels_test": ys}


def _run(data: dict, **kwargs):
    return mia.run_attacks(AttackInputData(**data), **kwargs)


# --- numbers: exactly memberscope's audit ---------------------------------------------------


def test_run_attacks_reports_memberscope_audit_numbers_for_every_slice_and_attack():
    data = _leaky()
    results = _run(data, slicing_spec=SlicingSpec(entire_dataset=True, by_class=True),
                   attack_types=(AttackType.THRESHOLD_ATTACK, AttackType.LOGISTIC_REGRESSION))
    oracle = ms.audit(ms.ModelOutputs.from_train_test(**data), attacks=["threshold", "lr"],
                      slices=["entire", "class"], seed=0)
    assert len(results.single_attack_results) == len(oracle.rows) == 2 * (1 + NUM_CLASSES)
    for single in results.single_attack_results:
        row = oracle.row(single.row.slice, single.row.attack)
        assert single.get_auc() == row.auc
        assert single.get_attacker_advantage() == row.advantage
        assert single.get_ppv() == row.ppv
        assert single.get_epsilon_lower_bound() == row.epsilon_lower_bound.confident
        assert single.data_size == (row.n_members, row.n_nonmembers)
    entire = [s for s in results.single_attack_results if s.slice_spec.entire_dataset]
    assert {s.attack_type for s in entire} == {AttackType.THRESHOLD_ATTACK,
                                               AttackType.LOGISTIC_REGRESSION}
    assert all(s.get_auc() > 0.6 for s in entire)  # the synthetic model leaks


def test_probs_input_gives_the_same_numbers_as_logits():
    data = _leaky()
    probs = {k.replace("logits", "probs"): (np.exp(v) / np.exp(v).sum(1, keepdims=True)
                                             if k.startswith("logits") else v)
             for k, v in data.items()}
    by_logits = _run(data).single_attack_results[0]
    by_probs = _run(probs).single_attack_results[0]
    assert by_probs.get_auc() == pytest.approx(by_logits.get_auc(), abs=1e-12)


def test_entire_dataset_result_keeps_membership_scores_split_by_side():
    data = _leaky(n_train=300, n_test=120)
    single = _run(data).single_attack_results[0]
    assert single.membership_scores_train.shape == (300,)
    assert single.membership_scores_test.shape == (120,)
    assert single.roc_curve is not None
    # Higher = member: the threshold attack scores are −loss.
    loss = ms.ModelOutputs.from_train_test(**data).loss_values
    np.testing.assert_allclose(single.membership_scores_train, -loss[:300])


FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
TF_TYPES = {"threshold": AttackType.THRESHOLD_ATTACK,
            "threshold-entropy": AttackType.THRESHOLD_ENTROPY_ATTACK}


def _tf_cases() -> list:
    reference = json.loads((FIXTURES / "tfp_reference.json").read_text())["cases"]
    params = []
    for case, info in reference.items():
        for tf_attack in sorted({row["attack"] for row in info["rows"]} & set(TF_TYPES)):
            rows = {r["slice"]: r["auc"] for r in info["rows"] if r["attack"] == tf_attack}
            # TF Privacy caps losses at -log(1e-8); its AUC differs where that ties losses.
            clipped = (case, tf_attack) == ("saturated_logits10", "threshold")
            marks = [pytest.mark.xfail(strict=True, reason="exact losses")] if clipped else []
            params.append(pytest.param(case, tf_attack, rows, marks=marks,
                                       id=f"{case}-{tf_attack}"))
    return params


@pytest.mark.parametrize(("case", "tf_attack", "tf_aucs"), _tf_cases())
def test_the_codelab_call_gives_tf_privacy_aucs_on_recorded_inputs(case, tf_attack, tf_aucs):
    """The same ``run_attacks`` call TF Privacy 0.9.0 answered (fixtures of
    ``benchmarks/tfp_reference.py``): the same slices and, for threshold attacks, its AUC."""
    with np.load(FIXTURES / "tfp_inputs.npz", allow_pickle=False) as stored:
        fields = {key.split("__", 1)[1]: stored[key] for key in stored.files
                  if key.startswith(f"{case}__")}
    results = mia.run_attacks(AttackInputData(**fields),
                              SlicingSpec(entire_dataset=True, by_class=True),
                              attack_types=(TF_TYPES[tf_attack],), min_num_samples=1)
    ours = {s.row.slice: s.get_auc() for s in results.single_attack_results}
    assert set(ours) == set(tf_aucs)
    for slice_name, auc in tf_aucs.items():
        assert ours[slice_name] == pytest.approx(auc, abs=1e-9), slice_name


# --- attack types and slicing specs --------------------------------------------------------


@pytest.mark.parametrize("attack_type", list(AttackType))
def test_every_attack_type_names_a_registered_attack(attack_type):
    for has_labels in (True, False):
        name = attack_type.memberscope_name(has_labels)
        assert ms.get_attack(name).name == name
        assert AttackType.from_memberscope_name(name) is attack_type


def test_every_attack_type_runs_through_run_attacks():
    results = _run(_leaky(n_train=300, n_test=300), attack_types=tuple(AttackType))
    assert [s.attack_type for s in results.single_attack_results] == list(AttackType)
    assert [s.row.attack for s in results.single_attack_results] == [
        "lr", "mlp", "rf", "knn", "threshold", "threshold_mentr"]
    assert all(s.get_auc() > 0.55 for s in results.single_attack_results)


def test_entropy_attack_is_modified_entropy_with_labels_and_plain_entropy_without():
    assert AttackType.THRESHOLD_ENTROPY_ATTACK.memberscope_name(True) == "threshold_mentr"
    assert AttackType.THRESHOLD_ENTROPY_ATTACK.memberscope_name(False) == "threshold_entropy"
    assert [t.is_trained_attack for t in AttackType] == [True, True, True, True, False, False]


def test_tf_privacy_string_forms():
    assert str(AttackType.LOGISTIC_REGRESSION) == "LOGISTIC_REGRESSION"
    assert str(PrivacyMetric.ATTACKER_ADVANTAGE) == "Attacker advantage"
    assert str(SingleSliceSpec()) == "Entire dataset"
    assert str(SingleSliceSpec(SlicingFeature.CLASS, 3)) == "CLASS=3"
    assert str(SingleSliceSpec(SlicingFeature.PERCENTILE, (10, 20))) == "Loss percentiles: 10-20"
    assert [m.metric for m in PrivacyMetric] == ["auc", "advantage", "ppv", "epsilon_confident"]


@pytest.mark.parametrize(("spec", "kinds"), [
    (SlicingSpec(), ("entire",)),
    (SlicingSpec(entire_dataset=True, by_class=True), ("entire", "class")),
    (SlicingSpec(entire_dataset=False, by_percentiles=True), ("loss_percentile",)),
    (SlicingSpec(by_classification_correctness=True), ("entire", "correctness")),
    (SlicingSpec(by_class=3), ("entire", "class")),
])
def test_slicing_spec_maps_to_slice_kinds(spec, kinds):
    assert spec.slice_kinds() == kinds


def test_slice_specs_of_every_kind_come_back_typed():
    spec = SlicingSpec(entire_dataset=True, by_class=True, by_percentiles=True,
                       by_classification_correctness=True)
    results = _run(_leaky(n_train=1000, n_test=600), slicing_spec=spec)
    specs = {s.slice_spec for s in results.single_attack_results}
    skipped = {SingleSliceSpec.from_slice_name(s.slice) for s in results.skipped}
    features = {s.feature for s in specs | skipped}
    assert features == {None, *SlicingFeature} - {SlicingFeature.CUSTOM}
    assert SingleSliceSpec(SlicingFeature.PERCENTILE, (0, 10)) in specs | skipped
    assert SingleSliceSpec(SlicingFeature.CORRECTLY_CLASSIFIED, True) in specs


@pytest.mark.parametrize(("by_class", "classes"), [(2, {0, 1}), ([1, 3], {1, 3}),
                                                   ((3,), {3})])
def test_by_class_as_a_count_or_a_list_keeps_only_those_classes(by_class, classes):
    results = _run(_leaky(), slicing_spec=SlicingSpec(entire_dataset=False, by_class=by_class))
    assert {s.slice_spec.value for s in results.single_attack_results} == classes
    assert results.audit_result is not None
    assert {r.slice for r in results.audit_result.rows} == {f"class={c}" for c in classes}


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"entire_dataset": False}, "selects no slice"),
    ({"by_class": "yes"}, "by_class must be"),
    ({"by_class": [1, 2.5]}, "integer classes"),
    ({"by_class": -1}, "by_class must be >= 0"),
    ({"by_percentiles": 1}, "by_percentiles must be True or False"),
])
def test_bad_slicing_spec_is_refused_naming_the_field(kwargs, match):
    with pytest.raises(ms.InputError, match=match):
        SlicingSpec(**kwargs)


# --- inputs ----------------------------------------------------------------------------------


def test_loss_only_input_without_labels_runs_loss_attacks_and_refuses_class_slices():
    rng = np.random.default_rng(1)
    data = AttackInputData(loss_train=rng.exponential(0.5, 300),
                           loss_test=rng.exponential(1.0, 200))
    results = mia.run_attacks(data, SlicingSpec(by_percentiles=True), attack_types=(
        AttackType.THRESHOLD_ATTACK, AttackType.LOGISTIC_REGRESSION))
    entire = results.single_attack_results[0]
    assert entire.slice_spec.entire_dataset and entire.get_auc() > 0.6
    assert results.privacy_report_metadata.accuracy_train is None  # nothing to compute it from
    assert results.privacy_report_metadata.loss_train == pytest.approx(
        np.mean(data.loss_train))
    with pytest.raises(ms.InputError, match="by_class needs labels_train"):
        mia.run_attacks(data, SlicingSpec(by_class=True))
    with pytest.raises(ms.InputError, match="needs labels_train"):
        _ = data.num_classes


@pytest.mark.parametrize(("extra", "match"), [
    ({"entropy_train": np.ones(400), "entropy_test": np.ones(200)}, "entropy_train is not"),
    ({"multilabel_data": True}, "multi-label"),
    ({"force_multilabel_data": True}, "multi-label"),
    ({"loss_function": LossFunction.SQUARED}, "loss_function=LossFunction.SQUARED"),
    ({"labels_train": None, "labels_test": None}, "labels_train and labels_test are needed"),
    ({"labels_test": None}, "labels_train was given without labels_test"),
])
def test_unsupported_or_incomplete_input_is_refused_when_built(extra, match):
    with pytest.raises(ms.InputError, match=match):
        AttackInputData(**{**_leaky(), **extra})


def test_callable_loss_function_supplies_the_loss():
    data = _leaky()
    calls = []

    def loss_function(labels, predictions):
        calls.append(predictions.shape)
        return np.full(len(labels), 2.0) - (labels == predictions.argmax(1))

    built = AttackInputData(**data, loss_function=loss_function)
    assert calls == [(400, NUM_CLASSES), (200, NUM_CLASSES)]
    expected = 2.0 - (data["labels_train"] == data["logits_train"].argmax(1))
    np.testing.assert_array_equal(built.get_loss_train(), expected)
    assert built.get_train_size() == 400 and built.get_test_size() == 200
    assert built.num_classes == NUM_CLASSES
    built.validate()  # kept for TF Privacy code; nothing left to check


def test_run_attacks_refuses_what_it_cannot_honour():
    data = AttackInputData(**_leaky())
    with pytest.raises(ms.InputError, match="balance_attacker_training=False"):
        mia.run_attacks(data, balance_attacker_training=False)
    with pytest.raises(ms.InputError, match="attack_types\\[1\\] must be an AttackType"):
        mia.run_attacks(data, attack_types=(AttackType.THRESHOLD_ATTACK, 3))
    with pytest.raises(ms.InputError, match="'lira' is not an AttackType value"):
        mia.run_attacks(data, attack_types=("lira",))
    with pytest.raises(ms.InputError, match="run_attacks sets slices"):
        mia.run_attacks(data, slices=["entire"])
    with pytest.raises(ms.InputError, match="min_num_samples must be >= 1"):
        mia.run_attacks(data, min_num_samples=0)


# --- metadata, skipped slices, summaries ---------------------------------------------------


def test_missing_metadata_is_computed_on_a_copy_and_given_values_are_kept():
    data = _leaky()
    given = PrivacyReportMetadata(accuracy_test=0.25, epoch_num=3, model_variant_label="m")
    results = _run(data, privacy_report_metadata=given)
    filled = results.privacy_report_metadata
    train_accuracy = np.mean(data["logits_train"].argmax(1) == data["labels_train"])
    assert filled.accuracy_train == pytest.approx(train_accuracy)
    assert filled.accuracy_test == 0.25 and filled.epoch_num == 3
    assert given.accuracy_train is None  # the caller's object is left alone
    row = results.single_attack_results[0].row
    assert row.metadata["model"] == "m" and row.metadata["epoch"] == 3
    assert row.metadata["train_accuracy"] == pytest.approx(train_accuracy)


def test_too_small_slices_are_kept_as_skipped_with_their_reason():
    data = _leaky(n_train=200, n_test=100)
    data["labels_test"][:3] = NUM_CLASSES  # class 4: 3 non-members, no members
    data["logits_test"] = np.hstack([data["logits_test"], np.zeros((100, 1))])
    data["logits_train"] = np.hstack([data["logits_train"], np.zeros((200, 1))])
    results = _run(data, slicing_spec=SlicingSpec(by_class=True))
    assert [s.slice for s in results.skipped] == ["class=4"]
    assert "too small" in results.skipped[0].reason
    assert "1 (slice, attack) pair(s) skipped" in results.summary()
    assert "CLASS=4 / threshold: too small" in results.summary()


def test_max_getters_and_summary_pick_the_highest_value():
    results = _run(_leaky(), slicing_spec=SlicingSpec(by_class=True),
                   attack_types=(AttackType.THRESHOLD_ATTACK, AttackType.LOGISTIC_REGRESSION))
    singles = results.single_attack_results
    best = results.get_result_with_max_auc()
    assert best.get_auc() == max(s.get_auc() for s in singles)
    assert results.get_result_with_max_attacker_advantage().get_attacker_advantage() == max(
        s.get_attacker_advantage() for s in singles)
    assert results.get_result_with_max_ppv().get_ppv() == max(s.get_ppv() for s in singles)
    text = results.summary(by_slices=True)
    assert f"reached an AUC of {best.get_auc():.2f} on slice {best.slice_spec}" in text
    assert 'over slice: "CLASS=2"' in text


def test_every_slice_skipped_gives_a_clear_error_not_an_empty_max():
    data = _leaky(n_train=5, n_test=5)
    results = _run(data)
    assert results.single_attack_results == [] and len(results.skipped) == 1
    assert results.summary().splitlines() == [
        "No attack result: every (slice, attack) was skipped",
        f"  Entire dataset / threshold: {results.skipped[0].reason}"]
    with pytest.raises(ms.InputError, match="every \\(slice, attack\\) was skipped"):
        results.get_result_with_max_auc()


def test_dataframe_has_tf_privacy_columns():
    pytest.importorskip("pandas")
    frame = _run(_leaky(), slicing_spec=SlicingSpec(by_class=True)).calculate_pd_dataframe()
    assert list(frame.columns) == ["slice feature", "slice value", "train size", "test size",
                                   "attack type", "Attacker advantage",
                                   "Positive predictive value", "AUC"]
    assert frame["slice feature"].tolist() == ["Entire dataset"] + ["class"] * NUM_CLASSES
    assert frame["slice value"].tolist() == ["", "0", "1", "2", "3"]


# --- the collection and the report ------------------------------------------------------------


def _collection(epochs=(2, 4, 6), models=("2 Layers", "3 Layers")) -> AttackResultsCollection:
    reports = []
    for model_index, model in enumerate(models):
        for epoch in epochs:
            metadata = PrivacyReportMetadata(accuracy_train=0.5 + epoch / 100 + model_index / 10,
                                             accuracy_test=0.5, epoch_num=epoch,
                                             model_variant_label=model)
            reports.append(_run(_leaky(shift=epoch / 4, seed=epoch + model_index),
                                slicing_spec=SlicingSpec(by_class=True),
                                attack_types=(AttackType.THRESHOLD_ATTACK,
                                              AttackType.LOGISTIC_REGRESSION),
                                privacy_report_metadata=metadata))
    return AttackResultsCollection(reports)


def test_collection_converts_to_memberscope_rows_with_model_and_epoch():
    collection = _collection(epochs=(1, 2), models=("a",))
    rows = collection.to_results_collection()
    assert len(rows) == 2 * 2 * (1 + NUM_CLASSES)
    assert rows.values("epoch") == [1, 2] and rows.values("model") == ["a"]
    assert rows.worst_slice("auc").auc == max(
        s.get_auc() for r in collection.attack_results_list for s in r.single_attack_results)


def test_plot_by_epochs_draws_one_panel_per_metric_and_a_line_per_model_and_attack():
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    collection = _collection()
    metrics = [PrivacyMetric.ATTACKER_ADVANTAGE, PrivacyMetric.AUC]
    figure = privacy_report.plot_by_epochs(collection, metrics)
    try:
        assert len(figure.axes) == 2
        for ax, metric in zip(figure.axes, metrics, strict=True):
            lines = [ln for ln in ax.get_lines() if not ln.get_label().startswith("chance")]
            assert len(lines) == 4  # 2 models × 2 attacks
            for line in lines:
                np.testing.assert_array_equal(line.get_xdata(), [2, 4, 6])
            first = lines[0].get_label()
            assert first.startswith("2 Layers") and first.endswith("threshold")
            expected = [r.single_attack_results[0].row.metric(metric.metric)
                        for r in collection.attack_results_list[:3]]
            np.testing.assert_allclose(lines[0].get_ydata(), expected)
    finally:
        plt.close(figure)


def test_plot_privacy_vs_accuracy_puts_accuracy_train_on_x():
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    collection = _collection(epochs=(2, 4))
    figure = privacy_report.plot_privacy_vs_accuracy(collection,
                                                     privacy_metrics=(PrivacyMetric.AUC,))
    try:
        (ax,) = figure.axes
        lines = ax.get_lines()
        assert len(lines) == 4
        accuracies = [r.privacy_report_metadata.accuracy_train
                      for r in collection.attack_results_list[:2]]
        np.testing.assert_allclose(lines[0].get_xdata(), accuracies)
        ax.set_xlabel("Validation accuracy")  # what the codelab does with the figure
    finally:
        plt.close(figure)


def test_report_needs_epochs_and_real_metrics():
    pytest.importorskip("matplotlib")
    no_epoch = AttackResultsCollection([_run(_leaky())])
    with pytest.raises(ms.InputError, match=r"attack_results_list\[0\] has no "
                                            r"privacy_report_metadata\.epoch_num"):
        privacy_report.plot_by_epochs(no_epoch, [PrivacyMetric.AUC])
    collection = _collection(epochs=(1,), models=("a",))
    with pytest.raises(ms.InputError, match="a single PrivacyMetric"):
        privacy_report.plot_by_epochs(collection, PrivacyMetric.AUC)
    with pytest.raises(ms.InputError, match="privacy_metrics\\[0\\] must be a PrivacyMetric"):
        privacy_report.plot_by_epochs(collection, ["AUC"])
    with pytest.raises(ms.InputError, match="AttackResultsCollection"):
        privacy_report.plot_by_epochs(collection.attack_results_list, [PrivacyMetric.AUC])
    empty = AttackResultsCollection([AttackResults([], PrivacyReportMetadata(epoch_num=1))])
    with pytest.raises(ms.InputError, match="no attack result to plot"):
        privacy_report.plot_by_epochs(empty, [PrivacyMetric.AUC])


def test_codelab_names_import_from_the_replaced_prefix():
    import importlib

    prefix = "memberscope.compat.tf_privacy"
    expected = {
        "data_structures": {"AttackInputData", "AttackResultsCollection", "AttackType",
                            "PrivacyMetric", "PrivacyReportMetadata", "SlicingSpec",
                            "AttackResults", "SingleAttackResult", "SingleSliceSpec",
                            "SlicingFeature", "DataSize", "LossFunction",
                            "ENTIRE_DATASET_SLICE_STR"},
        "membership_inference_attack": {"run_attacks"},
        "privacy_report": {"plot_by_epochs", "plot_privacy_vs_accuracy"},
    }
    for module_name, names in expected.items():
        module = importlib.import_module(f"{prefix}.{module_name}")
        assert set(module.__all__) == names, module_name
        assert all(getattr(module, name) is not None for name in names)
