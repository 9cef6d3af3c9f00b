"""Held-out counts behind each row's confident ε bound, and the family bound over rows (issue 17).

The recomputation from counts must reproduce the bound the row was computed with; the family
bound is the largest row recomputed at α/k; rows stored without counts still load.
"""

from __future__ import annotations

import numpy as np
import pytest

from memberscope import InputError, epsilon_lower_bound
from memberscope.metrics import (
    EpsilonBound,
    HeldOutCounts,
    family_epsilon_lower_bound,
)
from memberscope.results import AuditRow


def _bound(seed: int, shift: float, n: int = 400) -> EpsilonBound:
    rng = np.random.default_rng(seed)
    membership = np.arange(n) % 2 == 0
    return epsilon_lower_bound(rng.normal(size=n) + shift * membership, membership, seed=seed)


def test_held_out_counts_reproduce_the_confident_bound():
    for seed, shift in [(0, 0.0), (1, 1.0), (2, 3.0), (3, -2.0)]:
        bound = _bound(seed, shift)
        assert bound.held_out is not None
        assert bound.confident_at(bound.alpha) == bound.confident
        assert bound.held_out.n_members + bound.held_out.n_nonmembers < 400  # one half
    strong = _bound(2, 3.0)
    assert strong.confident > 0 and strong.confident_at(0.001) < strong.confident


def test_family_bound_is_the_largest_row_at_alpha_over_k():
    bounds = [_bound(seed, shift) for seed, shift in enumerate((0.5, 2.0, 1.0))]
    family = family_epsilon_lower_bound(bounds, alpha=0.05)
    each = [b.confident_at(0.05 / 3) for b in bounds]
    assert family is not None and (family.k, family.alpha) == (3, 0.05)
    assert family.epsilon == max(each) and family.index == int(np.argmax(each)) == 1
    assert family.epsilon < max(b.confident for b in bounds)
    single = family_epsilon_lower_bound(bounds[1:2])
    assert single is not None and single.epsilon == bounds[1].confident


def test_rows_without_counts_make_the_family_bound_unavailable_unless_they_are_zero():
    with_counts = _bound(1, 2.0)
    old_positive = EpsilonBound(0.9, 0.4, 0.05, 0.0)
    old_zero = EpsilonBound(0.2, 0.0, 0.05, 0.0)
    assert family_epsilon_lower_bound([with_counts, old_positive]) is None
    family = family_epsilon_lower_bound([with_counts, old_zero])
    assert family is not None and family.epsilon == with_counts.confident_at(0.025)
    with pytest.raises(InputError, match="bounds must hold at least one"):
        family_epsilon_lower_bound([])
    with pytest.raises(InputError, match=r"alpha must be in \(0, 1\)"):
        family_epsilon_lower_bound([with_counts], alpha=0.0)


def test_counts_survive_result_json_and_old_rows_load_without_them():
    bound = _bound(2, 3.0)
    row = AuditRow("entire_dataset", "threshold", 200, 200, 0.9, 0.6, 0.8, {0.1: 0.5}, bound)
    data = row.to_dict()
    assert data["epsilon_lower_bound"]["held_out"] == bound.held_out.to_dict()
    assert AuditRow.from_dict(data).epsilon_lower_bound == bound
    del data["epsilon_lower_bound"]["held_out"]
    assert AuditRow.from_dict(data).epsilon_lower_bound.held_out is None


def test_inconsistent_counts_are_refused():
    with pytest.raises(InputError, match="inconsistent held-out counts: tp=5 of 4"):
        HeldOutCounts(5, 0, 4, 4, True)


def test_the_by_epoch_epsilon_line_is_the_family_bound_of_each_epochs_slices():
    # A figure's "95%" is about what it shows: the largest of an epoch's slices, so each point
    # is the family bound over them, never the plain largest of their separate 95% bounds.
    from memberscope.summary import largest_epsilon_bound, worst_series

    rows = []
    for epoch in (1, 2):
        for index, shift in enumerate((0.5, 2.0, 1.0)):
            bound = _bound(10 * epoch + index, shift)
            rows.append(AuditRow(f"class={index}", "threshold", 200, 200, 0.7, 0.3, 0.5,
                                 {0.1: 0.3}, bound, metadata={"model": "m", "epoch": epoch}))
    series = worst_series(rows, "epsilon_confident")[("m", "threshold")]
    for epoch, value, row in zip(series.epochs, series.values, series.rows, strict=True):
        at_epoch = [r for r in rows if r.metadata["epoch"] == epoch]
        assert value == largest_epsilon_bound(at_epoch)
        assert value == row.epsilon_lower_bound.confident_at(0.05 / 3)
        assert value < max(r.epsilon_lower_bound.confident for r in at_epoch)
    one_slice = worst_series(rows, "epsilon_confident", slice="class=1")[("m", "threshold")]
    assert list(one_slice.values) == [r.epsilon_lower_bound.confident
                                      for r in rows if r.slice == "class=1"]
