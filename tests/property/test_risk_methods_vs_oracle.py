"""The "std" and "std_then_fit" risk methods against slow, obviously-correct oracles on ragged
traces (rows of different lengths, NaN-padded and with NaN holes)."""

from __future__ import annotations

import math
import statistics

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.property.test_risk_vs_oracle import ragged_traces

from memberscope.risk import STD_THEN_FIT_WEIGHT, rank_by_risk, trace_risk

FAST = settings(max_examples=150, deadline=None)


def recorded(row: list[float]) -> list[float]:
    return [v for v in row if not math.isnan(v)]


def oracle_std(traces: np.ndarray, min_entries: int) -> list[float]:
    return [statistics.pstdev(recorded(row)) if len(recorded(row)) >= min_entries else math.nan
            for row in traces.tolist()]


def oracle_percentiles(values: list[float]) -> list[float]:
    """(number below + half the number equal) / k among the k non-NaN values."""
    scored = [v for v in values if not math.isnan(v)]
    return [math.nan if math.isnan(v) else
            (sum(w < v for w in scored) + 0.5 * sum(w == v for w in scored)) / len(scored)
            for v in values]


def oracle_std_then_fit(traces: np.ndarray, min_entries: int) -> list[float]:
    spreads, fits = [], []
    for row in traces.tolist():
        values = recorded(row)
        if len(values) < 2:
            spreads.append(math.nan)
            fits.append(math.nan)
            continue
        spreads.append(statistics.pstdev(values))
        fits.append(math.inf if values[-1] == 0 else -math.log(values[-1]))
    combined = [s + STD_THEN_FIT_WEIGHT * f for s, f in zip(oracle_percentiles(spreads),
                                                            oracle_percentiles(fits),
                                                            strict=True)]
    return [c if len(recorded(row)) >= min_entries else math.nan
            for c, row in zip(combined, traces.tolist(), strict=True)]


@FAST
@given(ragged_traces(), st.integers(1, 8))
def test_std_matches_oracle(traces, min_entries):
    got = trace_risk(traces, method="std", min_entries=min_entries)
    np.testing.assert_allclose(got, oracle_std(traces, min_entries), rtol=1e-9, atol=1e-9)


@FAST
@given(ragged_traces(), st.integers(1, 8))
def test_std_then_fit_matches_oracle(traces, min_entries):
    got = trace_risk(traces, method="std_then_fit", min_entries=min_entries)
    np.testing.assert_allclose(got, oracle_std_then_fit(traces, min_entries), rtol=1e-12,
                               atol=1e-12)


@FAST
@given(ragged_traces())
def test_std_then_fit_follows_the_rows_when_they_are_shuffled(traces):
    order = np.random.default_rng(0).permutation(len(traces))
    np.testing.assert_array_equal(trace_risk(traces[order], method="std_then_fit"),
                                  trace_risk(traces, method="std_then_fit")[order])


def test_between_equal_spreads_the_fitted_example_ranks_first():
    fitted = [2.0, 0.5, 1e-6]     # hard, then fitted
    unfitted = [1e-6, 0.5, 2.0]   # the same losses (the same spread), ending high
    easy = [0.01, 0.01, 0.01]
    risk = trace_risk(np.array([easy, unfitted, fitted]), method="std_then_fit")
    assert rank_by_risk(risk).tolist() == [2, 1, 0]
    assert risk[2] - risk[1] < STD_THEN_FIT_WEIGHT  # the fit only breaks the tie
