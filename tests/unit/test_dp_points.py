"""The DP figure's and verdict's numbers (issue 17): one audit's attack results and canary
bounds corrected together, so that the largest holds at the rows' confidence.

Checked against the corrections written out: every attack result at α/(s·k) from its held-out
counts, every canary bound recomputed at α/s from its guess counts; rows stored without counts
fall back to one result chosen before seeing any, at its own level, and say so.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from tests.helpers.canaries import two_source_record

from memberscope import ModelOutputs, audit
from memberscope.metrics import EpsilonBound
from memberscope.one_run import epsilon_one_run
from memberscope.summary import dp_points


def _dp_audit(epsilon_audit=None, seed=0):
    rng = np.random.default_rng(seed)
    membership = np.arange(600) < 300
    labels = rng.integers(0, 3, 600)
    logits = rng.normal(size=(600, 3)) + 1.5 * np.eye(3)[labels] * membership[:, None]
    metadata = {"model": "dp", "epoch": 2, "epsilon": 3.0, "delta": 1e-5}
    if epsilon_audit is not None:
        metadata["epsilon_audit"] = epsilon_audit
    return audit(ModelOutputs(membership=membership, labels=labels, logits=logits),
                 attacks=["threshold"], slices=["entire", "class"], seed=seed,
                 fpr_targets=(0.1,), metadata=metadata).rows


def test_without_canaries_the_attacks_share_alpha_over_their_results():
    rows = _dp_audit()
    (point,) = dp_points(rows)
    assert (point.n_results, point.n_sources, point.confidence) == (4, 1, 0.95)
    expected = max(r.epsilon_lower_bound.confident_at(0.05 / 4) for r in rows)
    assert point.empirical == expected > 0
    assert point.empirical < max(r.epsilon_lower_bound.confident for r in rows)
    assert "largest of 4 results" in point.statement().text
    assert "at 95% confidence for all together" in point.statement().text


def test_with_both_canary_sources_each_source_gets_a_third():
    included, white, black, record = two_source_record(1, 1000, 2.0, 0.5)
    rows = _dp_audit(record)
    (point,) = dp_points(rows)
    assert (point.n_sources, point.confidence) == (3, 0.95)
    assert point.empirical == max(r.epsilon_lower_bound.confident_at(0.05 / 12) for r in rows)
    level = 0.05 / 3
    assert point.white_box == epsilon_one_run(white, included, delta=1e-5, alpha=level).epsilon
    assert point.black_box == epsilon_one_run(black, included, delta=1e-5, alpha=level).epsilon
    assert point.gaussian_white_box == epsilon_one_run(
        white, included, delta=1e-5, alpha=level, method="gaussian_fdp").epsilon
    assert point.white_box < record["white_box"]  # recorded at 95% alone


def test_rows_without_held_out_counts_fall_back_to_one_pre_chosen_result():
    rows = [replace(r, epsilon_lower_bound=EpsilonBound(
        r.epsilon_lower_bound.point, r.epsilon_lower_bound.confident, 0.05, 1e-5))
        for r in _dp_audit()]
    (point,) = dp_points(rows)
    entire = next(r for r in rows if r.slice == "entire_dataset")
    assert point.empirical == entire.epsilon_lower_bound.confident
    assert point.pre_chosen == "entire_dataset / threshold" and point.confidence == 0.95
    assert "the pre-chosen result entire_dataset / threshold" in point.statement().text
