"""Trace risk, ranks and top-k against slow, obviously-correct oracles on ragged traces
(rows of different lengths, NaN-padded and with NaN holes, as Poisson batches leave them)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memberscope.errors import InputError, UnknownNameError
from memberscope.risk import RISK_METHODS, rank_by_risk, top_k, trace_risk

FAST = settings(max_examples=150, deadline=None)

losses = st.floats(0.0, 20.0, allow_nan=False, width=32)
# A value, a hole (not recorded that epoch), or the same value twice (ties within a row).
entries = st.one_of(losses, st.just(math.nan))


@st.composite
def ragged_traces(draw: st.DrawFn) -> np.ndarray:
    """(n, e) traces: each row a run of entries with holes, NaN-padded to the longest."""
    rows = draw(st.lists(st.lists(entries, min_size=0, max_size=12), min_size=1, max_size=25))
    width = max(1, max(len(row) for row in rows))
    return np.array([row + [math.nan] * (width - len(row)) for row in rows], dtype=np.float64)


def oracle_quantile(values: list[float], q: float) -> float:
    """The textbook linear-interpolation quantile of sorted values at position (k - 1)·q."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    below = math.floor(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (position - below) * (ordered[above] - ordered[below])


def oracle_iqr(traces: np.ndarray, min_entries: int) -> list[float]:
    out = []
    for row in traces.tolist():
        recorded = [v for v in row if not math.isnan(v)]
        if len(recorded) < min_entries:
            out.append(math.nan)
        else:
            out.append(oracle_quantile(recorded, 0.75) - oracle_quantile(recorded, 0.25))
    return out


def oracle_rank(risk: list[float]) -> list[int]:
    """Most exposed first; NaN after every number; ties by lower index."""
    return sorted(range(len(risk)),
                  key=lambda i: (math.isnan(risk[i]), 0.0 if math.isnan(risk[i]) else -risk[i],
                                 i))


@FAST
@given(ragged_traces(), st.integers(1, 8))
def test_iqr_matches_oracle_on_ragged_traces(traces, min_entries):
    got = trace_risk(traces, method="iqr", min_entries=min_entries)
    expected = oracle_iqr(traces, min_entries)
    assert got.shape == (len(traces),) and got.dtype == np.float64
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)  # NaN where NaN


@FAST
@given(ragged_traces())
def test_default_min_entries_is_the_methods(traces):
    for method in RISK_METHODS:
        np.testing.assert_array_equal(
            trace_risk(traces, method=method),
            trace_risk(traces, method=method, min_entries=RISK_METHODS[method].min_entries))
    recorded = np.count_nonzero(~np.isnan(traces), axis=1)
    assert np.isnan(trace_risk(traces, method="iqr")[recorded < 5]).all()
    assert np.isnan(trace_risk(traces)[recorded < 2]).all()
    # The default method is the one chosen on the selection targets.
    np.testing.assert_array_equal(trace_risk(traces),
                                  trace_risk(traces, method="std_then_fit"))


@FAST
@given(ragged_traces())
def test_iqr_is_nonnegative_and_ignores_epoch_order(traces):
    risk = trace_risk(traces, method="iqr", min_entries=1)
    scored = ~np.isnan(risk)
    assert (risk[scored] >= 0).all()
    shuffled = traces[:, np.random.default_rng(0).permutation(traces.shape[1])]
    np.testing.assert_allclose(trace_risk(shuffled, method="iqr", min_entries=1), risk,
                               rtol=1e-12)


@FAST
@given(st.lists(st.one_of(st.floats(-1e6, 1e6, allow_nan=False), st.just(math.nan),
                          st.sampled_from([0.0, 1.0, -0.0])), max_size=40))
def test_rank_matches_oracle(risk):
    ranked = rank_by_risk(np.array(risk, dtype=np.float64))
    assert ranked.tolist() == oracle_rank(risk)
    assert ranked.dtype == np.int64


@FAST
@given(st.lists(st.one_of(st.floats(-10, 10, allow_nan=False), st.just(math.nan),
                          st.just(1.0)), max_size=40),
       st.integers(0, 50))
def test_top_k_is_the_head_of_the_ranking_without_nan(risk, k):
    chosen = top_k(np.array(risk, dtype=np.float64), k)
    finite = [i for i in oracle_rank(risk) if not math.isnan(risk[i])]
    assert chosen.tolist() == finite[:k]


@pytest.mark.parametrize("method", list(RISK_METHODS))
def test_a_late_learnt_example_outranks_fitted_and_never_fitted_ones(method):
    epochs = np.arange(20)
    late = 2.3 / (1 + np.exp(epochs - 10))             # high, then near 0 from epoch ~12
    easy = np.full(20, 0.01)                           # fitted at once
    hard = 2.3 + 0.05 * np.sin(epochs)                 # never fitted
    risk = trace_risk(np.stack([easy, hard, late]), method=method)
    assert rank_by_risk(risk).tolist()[0] == 2


@pytest.mark.parametrize(("traces", "message"), [
    (np.ones(6), r"loss_traces must be 2-dimensional \(n_examples, n_epochs\).*\(6,\)"),
    (np.ones((2, 3, 4)), r"loss_traces must be 2-dimensional.*\(2, 3, 4\)"),
    (np.array([["a", "b"]]), r"loss_traces has dtype <U1; expected numbers"),
    ([[1.0, 2.0], [3.0]], r"loss_traces could not be read as an array"),
    (np.array([[1.0, np.inf, 0.5, 0.1, 0.1]]),
     r"loss_traces contains 1 infinite value\(s\) \(first at row 0, column 1\)"),
])
def test_bad_traces_name_the_argument(traces, message):
    with pytest.raises(InputError, match=message):
        trace_risk(traces)


def test_unknown_method_suggests_the_closest():
    with pytest.raises(UnknownNameError, match=r"unknown risk method 'iq' \(did you mean 'iqr'"
                                               r"\?\); valid: iqr"):
        trace_risk(np.ones((2, 6)), method="iq")


@pytest.mark.parametrize("value", [0, -1, 2.5, True])
def test_min_entries_must_be_a_positive_integer(value):
    with pytest.raises(InputError, match=r"min_entries must be an integer >= 1"):
        trace_risk(np.ones((2, 6)), min_entries=value)


def test_bad_risk_and_k():
    with pytest.raises(InputError, match=r"risk must be 1-dimensional"):
        rank_by_risk(np.ones((2, 2)))
    with pytest.raises(InputError, match=r"risk contains 1 infinite value"):
        top_k([1.0, np.inf], 1)
    with pytest.raises(InputError, match=r"k must be an integer >= 0; got -1"):
        top_k([1.0], -1)
