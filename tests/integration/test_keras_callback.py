"""The Keras 3 callback, run on the torch backend: the codelab's pattern on a tiny CNN."""

from __future__ import annotations

import importlib
import importlib.util
import os
import subprocess
import sys
import tempfile

import numpy as np
import pytest
from sklearn.datasets import load_digits

from memberscope.audit import audit
from memberscope.errors import InputError, MissingExtraError
from memberscope.outputs import ModelOutputs
from memberscope.store import load_results

# The backend is chosen when keras is first imported; these tests check the torch backend.
# Keras also reads (and on first use writes) $KERAS_HOME/keras.json at import: a folder of its
# own, so the user's ~/.keras settings (float type, image layout) neither change these tests
# nor get written by them.
if "keras" not in sys.modules:
    os.environ["KERAS_BACKEND"] = "torch"
    os.environ["KERAS_HOME"] = tempfile.mkdtemp(prefix="memberscope-keras-home")
keras = pytest.importorskip("keras")
PrivacyMetrics = pytest.importorskip("memberscope.monitor.keras").PrivacyMetrics

pytestmark = [
    pytest.mark.keras,
    # Keras' torch backend converts tensors with np.array(x), which numpy 2 warns about.
    pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::memberscope.LowResolutionWarning"),
]

EPOCHS = 4
EVERY = 2


def _digits(n_members: int = 400, n_nonmembers: int = 300):
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32).reshape(-1, 8, 8, 1)
    order = np.random.default_rng(0).permutation(len(y))
    members, nonmembers = order[:n_members], order[n_members:n_members + n_nonmembers]
    return (x[members], y[members]), (x[nonmembers], y[nonmembers])


def _small_cnn(softmax: bool = False):
    """The codelab's small_cnn at 8x8: conv 3x3 + max-pool, dense 64, logits."""
    layers = [keras.Input((8, 8, 1)), keras.layers.Conv2D(16, 3, activation="relu"),
              keras.layers.MaxPooling2D(), keras.layers.Flatten(),
              keras.layers.Dense(64, activation="relu"), keras.layers.Dense(10)]
    if softmax:
        layers.append(keras.layers.Softmax())
    return keras.Sequential(layers)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Fit once with the callback every 2 of 4 epochs, auditing a 200-member sample."""
    keras.utils.set_random_seed(0)
    (x_train, y_train), (x_test, y_test) = _digits()
    model = _small_cnn()
    model.compile(optimizer=keras.optimizers.Adam(0.003),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    sink = tmp_path_factory.mktemp("keras") / "results.jsonl"
    # The codelab's call, PrivacyMetrics(epochs_per_report, model_name), plus the data.
    callback = PrivacyMetrics(EVERY, "2 layers", members=(x_train, y_train),
                              nonmembers=(x_test, y_test), member_sample=200,
                              results_path=sink, batch_size=128, add_to_logs=True,
                              verbose=False)
    history = model.fit(x_train, y_train, batch_size=32, epochs=EPOCHS, verbose=0,
                        validation_data=(x_test, y_test), callbacks=[callback])
    return model, callback, history, sink


def test_runs_on_the_torch_backend():
    assert keras.backend.backend() == "torch"


def test_rows_carry_epochs_model_and_valid_metrics(trained):
    _, callback, _, _ = trained
    rows = callback.results.rows
    assert sorted({r.metadata["epoch"] for r in rows}) == [2, 4]
    assert len(callback.attack_results) == EPOCHS // EVERY
    assert {r.metadata["model"] for r in rows} == {"2 layers"}
    assert {r.attack for r in rows if not r.measures_split} == {"threshold", "lr"}
    assert {r.attack for r in rows if r.measures_split} == {"blind"}  # x_train, x_test
    for epoch in (2, 4):
        slices = {r.slice for r in callback.results.filter(epoch=epoch)}
        assert slices == {"entire_dataset", *(f"class={k}" for k in range(10))}
    for row in rows:
        assert 0.0 <= row.metadata["train_accuracy"] <= 1.0
        assert 0.0 <= row.metadata["test_accuracy"] <= 1.0
        assert 0.0 <= row.auc <= 1.0
        assert 0.0 <= row.advantage <= 1.0
        assert row.metadata["inference_seconds"] >= 0.0
    entire = callback.results.filter(slice="entire_dataset", attack="threshold").rows
    assert [r.n_members for r in entire] == [200, 200]
    assert [r.n_nonmembers for r in entire] == [300, 300]
    # Four epochs on digits already classify well: the accuracies are real, not placeholders.
    assert entire[-1].metadata["test_accuracy"] > 0.7


def test_final_audit_equals_auditing_the_trained_models_outputs(trained):
    """Oracle: after the last epoch, predicting by hand and auditing gives the same rows."""
    model, callback, _, _ = trained
    (x_train, y_train), (x_test, y_test) = _digits()
    index = callback.monitor.member_index
    size = callback.batch_size  # the callback's batches: other shapes, other float32 kernels
    outputs = ModelOutputs.from_train_test(
        logits_train=model.predict(x_train[index], batch_size=size, verbose=0),
        logits_test=model.predict(x_test, batch_size=size, verbose=0),
        labels_train=y_train[index], labels_test=y_test)
    # threshold on every slice; lr (0.2 s per slice here) on the entire dataset only.
    expected = [*audit(outputs, attacks=["threshold"], slices=["entire", "class"], seed=0).rows,
                *audit(outputs, attacks=["lr"], slices=["entire"], seed=0).rows]
    last = callback.attack_results[-1]
    assert len(expected) == 12
    for row in expected:
        got = last.row(row.slice, row.attack)
        assert got.auc == pytest.approx(row.auc, abs=1e-9)
        assert got.advantage == pytest.approx(row.advantage, abs=1e-9)
    member_logits = model.predict(x_train[index], batch_size=size, verbose=0)
    train_accuracy = np.mean(member_logits.argmax(1) == y_train[index])
    assert last.rows[0].metadata["train_accuracy"] == pytest.approx(train_accuracy)


def test_sink_holds_every_row_and_history_the_headline_metrics(trained):
    _, callback, history, sink = trained
    loaded = load_results(sink)
    assert [r.to_dict() for r in loaded] == [r.to_dict() for r in callback.results]
    # add_to_logs: History sees the entire-dataset AUC on each audit epoch.
    aucs = history.history["privacy_threshold_auc"]
    assert aucs == [r.auc for r in callback.results.filter(slice="entire_dataset",
                                                           attack="threshold")]


def test_softmax_model_with_from_logits_false_matches_the_logits_model():
    """A model ending in softmax, audited on its probabilities, leaks what its logits do."""
    keras.utils.set_random_seed(1)
    (x_train, y_train), (x_test, y_test) = _digits(150, 150)
    logits_model = _small_cnn()
    softmax_model = keras.Sequential([logits_model, keras.layers.Softmax()])
    one_hot = keras.utils.to_categorical(y_train, 10)  # the codelab's one-hot labels
    results = []
    for model, from_logits in ((logits_model, True), (softmax_model, False)):
        callback = PrivacyMetrics(1, members=(x_train, one_hot), nonmembers=(x_test, y_test),
                                  attacks=["threshold"], slices=["entire"],
                                  from_logits=from_logits, verbose=False)
        callback.set_model(model)
        logs: dict = {}
        callback.on_epoch_end(0, logs)
        assert logs == {}  # add_to_logs is off by default
        results.append(callback.results.rows[0])
    assert results[1].metadata["epoch"] == 1
    assert results[1].auc == pytest.approx(results[0].auc, abs=1e-3)
    assert results[1].metadata["train_accuracy"] == results[0].metadata["train_accuracy"]


def test_mismatched_inputs_are_refused_naming_the_argument():
    (x_train, y_train), test = _digits(50, 50)
    with pytest.raises(InputError, match="members: x has 50 rows but y has 49"):
        PrivacyMetrics(2, "m", members=(x_train, y_train[:-1]), nonmembers=test)
    with pytest.raises(InputError, match="nonmembers must be a pair"):
        PrivacyMetrics(2, "m", members=(x_train, y_train), nonmembers=x_train)
    with pytest.raises(InputError, match="epochs_per_report must be >= 1 epoch; got 0"):
        PrivacyMetrics(0, "m", members=(x_train, y_train), nonmembers=test)
    with pytest.raises(InputError, match="batch_size must be >= 1; got 0"):
        PrivacyMetrics(2, "m", members=(x_train, y_train), nonmembers=test, batch_size=0)


def test_misspelt_names_fail_at_construction_with_a_suggestion():
    train, test = _digits(50, 50)
    with pytest.raises(InputError, match=r"unknown attack 'treshold' \(did you mean 'threshold'"):
        PrivacyMetrics(2, "m", members=train, nonmembers=test, attacks=["treshold"])
    with pytest.raises(InputError, match=r"unknown slice 'clas' \(did you mean 'class'"):
        PrivacyMetrics(2, "m", members=train, nonmembers=test, slices=["entire", "clas"])
    with pytest.raises(InputError, match=r"unknown audit option 'fpr_target' \(did you mean"):
        PrivacyMetrics(2, "m", members=train, nonmembers=test,
                       audit_options={"fpr_target": [0.1]})


def test_the_codelab_call_without_data_says_what_to_add():
    with pytest.raises(InputError, match=r"needs the examples to audit; members and "
                                         r"nonmembers not given.*members=\(x_train, y_train\)"):
        PrivacyMetrics(2, "2 Layers")


def test_the_first_release_order_still_works_and_warns():
    train, test = _digits(50, 50)
    with pytest.warns(DeprecationWarning, match="PrivacyMetrics.members, nonmembers, .... is "
                                                "deprecated"):
        callback = PrivacyMetrics(train, test, epochs_per_report=3, model_label="old")
    assert callback.monitor.epochs_per_report == 3
    assert callback.monitor.model_label == "old"
    with pytest.raises(InputError, match="got epochs_per_report twice"):
        PrivacyMetrics(2, "m", members=train, nonmembers=test, epochs_per_report=2)


def test_prints_one_line_per_audit_unless_verbose_is_false(capsys):
    train, test = _digits(60, 60)
    model = _small_cnn()
    for verbose in (True, False):
        callback = PrivacyMetrics(1, "2 Layers", members=train, nonmembers=test,
                                  attacks=["threshold"], slices=["entire"], verbose=verbose)
        callback.set_model(model)
        callback.on_epoch_end(0, {})
        printed = capsys.readouterr().out
        if verbose:
            assert printed.count("\n") == 1
            assert printed.startswith("Privacy report for epoch 1 (2 Layers, ")
            assert "threshold auc=" in printed
        else:
            assert printed == ""


def _fit_weights(with_callback: bool):
    """Weights after 2 epochs, with or without auditing at both."""
    keras.utils.set_random_seed(5)
    (x_train, y_train), (x_test, y_test) = _digits(120, 60)
    model = _small_cnn()
    model.compile(optimizer=keras.optimizers.Adam(0.003),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    callbacks = [PrivacyMetrics(1, "m", members=(x_train, y_train), nonmembers=(x_test, y_test),
                                attacks=["threshold"], slices=["entire"], member_sample=50,
                                verbose=False)] if with_callback else []
    model.fit(x_train, y_train, batch_size=30, epochs=2, shuffle=True, verbose=0,
              callbacks=callbacks)
    return [np.asarray(w) for w in model.get_weights()]


def test_training_is_the_same_with_and_without_the_callback():
    for a, b in zip(_fit_weights(False), _fit_weights(True), strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_missing_backend_is_named_as_the_problem(tmp_path):
    """Keras installed, its configured backend not: the error says so (not 'needs keras')."""
    if importlib.util.find_spec("tensorflow") is not None:
        pytest.skip("TensorFlow is installed: no missing backend to show")
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "KERAS_HOME": str(tmp_path)}
    code = ("from memberscope.errors import MissingBackendError\n"
            "try:\n    import memberscope.monitor.keras\n"
            "except MissingBackendError as exc:\n    print(exc)\n")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=120, check=True).stdout
    assert "Keras is installed but its backend 'tensorflow' (from the KERAS_BACKEND " \
           "environment variable) cannot be loaded" in out
    assert "No module named 'tensorflow'" in out and "set KERAS_BACKEND" in out


def test_missing_keras_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "keras", None)
    monkeypatch.delitem(sys.modules, "memberscope.monitor.keras")
    with pytest.raises(MissingExtraError, match=r"pip install 'memberscope\[keras\]'"):
        importlib.import_module("memberscope.monitor.keras")


def test_records_the_sampled_members_losses_at_each_audit(trained):
    model, callback, _, _ = trained
    traces = callback.loss_traces
    (x_train, y_train), _ = _digits()
    index = callback.monitor.member_index
    assert traces.epochs.tolist() == [2, 4] and traces.losses.shape == (200, 2)
    np.testing.assert_array_equal(traces.example_index, index)
    np.testing.assert_array_equal(traces.labels, y_train[index])
    logits = model.predict(x_train[index], batch_size=callback.batch_size, verbose=0)
    shifted = logits - logits.max(axis=1, keepdims=True)
    loss = np.log(np.exp(shifted).sum(axis=1)) - shifted[np.arange(200), y_train[index]]
    np.testing.assert_allclose(traces.losses[:, -1], loss, rtol=1e-4, atol=1e-5)


def test_trace_every_epoch_records_between_audits_too():
    keras.utils.set_random_seed(0)
    (x_train, y_train), (x_test, y_test) = _digits(200, 100)
    model = _small_cnn()
    model.compile(optimizer=keras.optimizers.Adam(0.003),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    callback = PrivacyMetrics(2, "every epoch", members=(x_train, y_train),
                              nonmembers=(x_test, y_test), attacks=["threshold"],
                              slices=["entire"], trace_every_epoch=True, verbose=False)
    model.fit(x_train, y_train, batch_size=50, epochs=3, verbose=0, callbacks=[callback])
    assert callback.loss_traces.epochs.tolist() == [1, 2, 3]
    assert [r.metadata["epoch"]
            for r in callback.results.filter(attack="threshold").rows] == [2]
    assert np.isfinite(callback.loss_traces.losses).all()
