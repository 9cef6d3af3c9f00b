"""ReferenceOutputs: validation, shapes, and the .npz round trip."""

from __future__ import annotations

import numpy as np
import pytest

from memberscope.errors import InputError, SchemaError
from memberscope.outputs import ReferenceOutputs, load_reference_npz, true_class_signals
from memberscope.signals import logit_scaled_confidence


def _arrays(m: int = 4, n: int = 6, q: int | None = None, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    shape = (m, n) if q is None else (m, n, q)
    prob = rng.uniform(0.01, 0.99, shape)
    return {"signal": np.log(prob / (1 - prob)), "true_class_prob": prob,
            "membership": rng.random((m, n)) < 0.5}


def test_two_dimensional_input_is_one_query() -> None:
    ref = ReferenceOutputs(**_arrays())
    assert ref.signal.shape == (4, 6, 1)
    assert (ref.n_models, ref.n_examples, ref.n_queries) == (4, 6, 1)
    assert not ref.has_target_queries


def test_round_trip_keeps_every_array(tmp_path) -> None:
    arrays = _arrays(q=3)
    rng = np.random.default_rng(1)
    ref = ReferenceOutputs(**arrays, labels=rng.integers(0, 10, 6),
                           target_signal=rng.normal(size=(6, 3)),
                           target_true_class_prob=rng.uniform(size=(6, 3)))
    path = ref.save_npz(tmp_path / "sub" / "ref.npz")
    loaded = ReferenceOutputs.load_npz(path)
    for name in ("signal", "true_class_prob", "membership", "labels", "target_signal",
                 "target_true_class_prob"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(ref, name))
    assert loaded.membership.dtype == bool
    assert [p.name for p in path.parent.iterdir()] == ["ref.npz"]  # no temp file left behind


def test_round_trip_without_optional_arrays(tmp_path) -> None:
    ref = ReferenceOutputs(**_arrays())
    loaded = load_reference_npz(ref.save_npz(tmp_path / "ref.npz"))
    assert loaded.labels is None and loaded.target_signal is None
    np.testing.assert_array_equal(loaded.signal, ref.signal)


@pytest.mark.parametrize(("change", "message"), [
    ({"true_class_prob": np.full((4, 5), 0.5)}, "true_class_prob must have the shape"),
    ({"true_class_prob": np.full((4, 6), 1.5)}, r"probabilities in \[0, 1\]; 24 value"),
    ({"membership": np.full((4, 5), True)}, r"membership must be \(m, n\)"),
    ({"membership": np.full((4, 6), 2)}, "membership must be boolean"),
    ({"membership": np.ones(6, bool)}, "2-d"),
    ({"signal": np.full((4, 6), np.nan)}, "signal contains 24 NaN"),
    ({"signal": np.zeros((4, 6, 2, 2))}, "signal must have 3 dimension"),
])
def test_bad_inputs_name_the_array(change: dict, message: str) -> None:
    with pytest.raises(InputError, match=message):
        ReferenceOutputs(**{**_arrays(), **change})


def test_target_arrays_must_come_together_and_match() -> None:
    with pytest.raises(InputError, match="target_true_class_prob is missing"):
        ReferenceOutputs(**_arrays(q=2), target_signal=np.zeros((6, 2)))
    with pytest.raises(InputError, match=r"target_signal must be \(n, q\) = \(6, 2\)"):
        ReferenceOutputs(**_arrays(q=2), target_signal=np.zeros((6, 3)),
                         target_true_class_prob=np.zeros((6, 3)))
    with pytest.raises(InputError, match="labels must have n = 6"):
        ReferenceOutputs(**_arrays(), labels=np.zeros(5, int))


def test_select_models_keeps_the_rest() -> None:
    ref = ReferenceOutputs(**_arrays(m=5), labels=np.arange(6))
    picked = ref.select_models([0, 3])
    np.testing.assert_array_equal(picked.signal, ref.signal[[0, 3]])
    np.testing.assert_array_equal(picked.labels, ref.labels)


def test_load_refuses_other_schemas_and_pickles(tmp_path) -> None:
    arrays = {k: v for k, v in _arrays().items()}
    np.savez(tmp_path / "old.npz", schema_version=np.asarray(99), **arrays)
    with pytest.raises(SchemaError, match="schema_version 99"):
        load_reference_npz(tmp_path / "old.npz")
    np.savez(tmp_path / "extra.npz", schema_version=np.asarray(1), extra=np.zeros(2), **arrays)
    with pytest.raises(InputError, match=r"unknown array\(s\) \['extra'\]"):
        load_reference_npz(tmp_path / "extra.npz")
    np.savez(tmp_path / "missing.npz", schema_version=np.asarray(1), signal=arrays["signal"])
    with pytest.raises(InputError, match="missing the array"):
        load_reference_npz(tmp_path / "missing.npz")
    np.savez(tmp_path / "pickled.npz", schema_version=np.asarray(1),
             signal=np.array([{"a": 1}], dtype=object))
    with pytest.raises(InputError, match="never unpickled"):
        load_reference_npz(tmp_path / "pickled.npz")
    (tmp_path / "text.npz").write_text("not a zip")
    with pytest.raises(InputError, match=r"not an \.npz"):
        load_reference_npz(tmp_path / "text.npz")
    with pytest.raises(InputError, match="does not exist"):
        load_reference_npz(tmp_path / "absent.npz")


def test_true_class_signals_match_the_core_signal() -> None:
    rng = np.random.default_rng(3)
    logits = rng.normal(scale=5, size=(2, 3, 7, 4))
    labels = rng.integers(0, 4, 7)
    signal, prob = true_class_signals(logits, labels)
    assert signal.shape == prob.shape == (2, 3, 7)
    np.testing.assert_allclose(signal[1, 2], logit_scaled_confidence(labels, logits=logits[1, 2]))
    softmax = np.exp(logits[0, 1]) / np.exp(logits[0, 1]).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(prob[0, 1], softmax[np.arange(7), labels])
