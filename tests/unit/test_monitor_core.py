"""The framework-free monitor core: one cadence name, every argument checked up front."""

from __future__ import annotations

import numpy as np
import pytest

from memberscope.errors import InputError, UnknownNameError
from memberscope.monitor._outputs import label_indices
from memberscope.monitor.core import PrivacyMonitor, epochs_per_report_argument

pytestmark = pytest.mark.filterwarnings("ignore::memberscope.LowResolutionWarning")

LABELS = np.arange(40) % 4


def _monitor(**options):
    return PrivacyMonitor(LABELS, LABELS[:30], **options)


def test_epochs_per_report_is_the_one_name_and_every_is_deprecated():
    assert epochs_per_report_argument(None, None) == 2
    assert epochs_per_report_argument(5, None) == 5
    with pytest.warns(DeprecationWarning, match="'every' is deprecated; use 'epochs_per_report'"):
        assert epochs_per_report_argument(None, 3) == 3
    with pytest.warns(DeprecationWarning), pytest.raises(InputError, match="not both"):
        epochs_per_report_argument(2, 3)
    for bad in (0, -1):
        with pytest.raises(InputError, match=f"epochs_per_report must be >= 1 epoch; got {bad}"):
            epochs_per_report_argument(bad, None)
    for bad in (True, 2.0, "2"):
        with pytest.raises(InputError, match="epochs_per_report must be an integer"):
            epochs_per_report_argument(bad, None)


def test_the_core_decides_the_audit_epochs():
    monitor = _monitor(epochs_per_report=3)
    assert [e for e in range(1, 10) if monitor.should_audit(e)] == [3, 6, 9]
    with pytest.warns(DeprecationWarning):
        old = PrivacyMonitor(LABELS, LABELS, every=4)
    with pytest.warns(DeprecationWarning):
        assert old.every == old.epochs_per_report == 4


@pytest.mark.parametrize(("options", "message"), [
    ({"attacks": ["threshold", "lrr"]}, "unknown attack 'lrr' (did you mean 'lr'?)"),
    ({"attacks": "threshold,"}, "attacks must name at least one"),
    ({"attacks": 3}, "attacks must be names"),
    ({"attacks": ["rmia"]}, "attack 'rmia' needs reference models"),
    ({"slices": ["entire", "clas"]}, "unknown slice 'clas' (did you mean 'class'?)"),
    ({"slices": ["custom"]}, "slice kind 'custom' needs custom_slices"),
    ({"audit_options": {"fpr_target": [0.1]}}, "unknown audit option 'fpr_target' (did you mean"),
    ({"audit_options": {"metadata": {}}}, "audit option 'metadata' is set by the monitor"),
    ({"audit_options": {"fpr_targets": [0.1, 1.5]}}, "fpr_targets must be in (0, 1); got 1.5"),
    ({"audit_options": {"fpr_targets": 0.1}}, "fpr_targets must be a non-empty list"),
    ({"audit_options": {"alpha": 0}}, "alpha must be in (0, 1); got 0"),
    ({"audit_options": {"delta": 1.0}}, "delta must be a number in [0, 1); got 1.0"),
    ({"audit_options": {"min_slice_size": 0}}, "min_slice_size must be >= 1; got 0"),
    ({"audit_options": {"n_bootstrap": -1}}, "n_bootstrap must be an integer >= 0; got -1"),
    ({"audit_options": {"attack_options": {"mlp": {}}}}, "attack_options names 'mlp', which"),
    ({"audit_options": {"custom_slices": {"odd": np.ones(5, bool)}}, "slices": ["custom"]},
     "custom_slices['odd'] has 5 entries; expected 70"),
    ({"member_sample": 0}, "member_sample must be >= 1; got 0"),
    ({"member_sample": 2.5}, "member_sample must be an integer >= 1; got 2.5"),
    ({"model_label": ""}, "model_label must be a non-empty string"),
    ({"seed": -1}, "seed must be an integer >= 0; got -1"),
    ({"on_result": "results.jsonl"}, "on_result must be callable; got str"),
])
def test_every_argument_is_checked_at_construction(options, message):
    with pytest.raises(InputError) as caught:
        _monitor(**options)
    assert message in str(caught.value)


def test_a_misspelt_name_is_an_unknown_name_error_listing_the_valid_ones():
    with pytest.raises(UnknownNameError) as caught:
        _monitor(attacks=["treshold"])
    assert caught.value.kind == "attack" and "threshold" in caught.value.valid


def test_empty_sides_are_refused():
    with pytest.raises(InputError, match="nonmembers has no examples"):
        PrivacyMonitor(LABELS, np.zeros(0, int))


def test_one_hot_labels_are_class_indices():
    monitor = PrivacyMonitor(np.eye(4)[LABELS], np.eye(4, dtype=np.float32)[LABELS[:30]])
    np.testing.assert_array_equal(monitor.member_labels, LABELS)
    np.testing.assert_array_equal(monitor.nonmember_labels, LABELS[:30])
    smoothed = np.eye(4)[LABELS] * 0.9 + 0.025
    np.testing.assert_array_equal(label_indices(smoothed), LABELS)


@pytest.mark.parametrize(("rows", "message"), [
    (np.zeros((3, 4)), "row 0 is not one-hot"),
    (np.array([[0.0, 1.0], [0.5, 0.5]]), "row 1 is not one-hot"),
    (np.array([[1.0, -0.5], [0.0, 1.0]]), "row 0 is not one-hot"),
    (np.array([[1.0, np.nan]]), "contains 1 NaN value"),
])
def test_rows_that_are_not_one_hot_are_refused_naming_the_row(rows, message):
    with pytest.raises(InputError, match=message):
        label_indices(rows, name="y_train")


def test_negative_labels_are_refused():
    with pytest.raises(InputError, match="member labels must be >= 0; row 2 is -1"):
        PrivacyMonitor(np.array([0, 1, -1]), LABELS)


def test_auditing_leaves_numpy_global_random_state_alone():
    np.random.seed(123)  # noqa: NPY002 - the legacy global state is what must stay untouched
    before = np.random.get_state()[1].copy()  # noqa: NPY002
    monitor = _monitor(member_sample=20, attacks=["threshold", "lr"])
    rng = np.random.default_rng(0)
    monitor.on_epoch_end(2, lambda index: rng.normal(size=(len(index), 4)),
                         lambda: rng.normal(size=(30, 4)))
    assert len(monitor.results.rows) > 0
    np.testing.assert_array_equal(np.random.get_state()[1], before)  # noqa: NPY002
