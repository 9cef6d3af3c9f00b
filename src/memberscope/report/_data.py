"""Pure views of result rows for figures and pages: metric titles, chance bands, the metrics
a figure can show, slice order. Grouping and the worst series by epoch are
:mod:`memberscope.summary`'s.

No plotting and no I/O here, so every number a figure or the page shows is computed (and
tested) in one place.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from memberscope.attacks import null_pooling
from memberscope.metric_definitions import (
    ADVANTAGE,
    AUC,
    EPSILON_CONFIDENT,
    parse_metric,
    parse_metrics,
    tpr_metric,
)
from memberscope.metrics import resolvable
from memberscope.null_reference import max_null_quantile
from memberscope.results import AuditRow, metric_value
from memberscope.summary import epoch_sort_key, group_rows

#: Metrics the by-epoch figure shows by default (those a row lacks are left out).
EPOCH_METRICS = tuple(m.key for m in (AUC, ADVANTAGE, tpr_metric(0.001), tpr_metric(0.01),
                                      EPSILON_CONFIDENT))


def metric_title(metric: str) -> str:
    """A human name for a metric key (``tpr@0.001`` -> ``TPR at 0.1% FPR``)."""
    return parse_metric(metric).title


def slice_sort_key(name: str) -> tuple[Any, ...]:
    """Natural order of slice labels: entire dataset first, then ``class=2`` before ``class=10``."""
    parts = re.split(r"(-?\d+(?:\.\d+)?)", name)
    natural = tuple((0, float(p), "") if i % 2 else (1, 0.0, p) for i, p in enumerate(parts))
    return (name != "entire_dataset", natural)


@dataclass(frozen=True)
class ChanceBand:
    """Where the worst of a figure's results stays under H0: at each of ``epochs`` (k,) the
    95% quantile ``upper`` (k,) of the maximum over the rows a plotted point is the worst
    of, from ``chance`` (0.5 for AUC, 0 for advantage). See :mod:`memberscope.null_reference`."""

    epochs: np.ndarray
    upper: np.ndarray
    chance: float
    level: float


def chance_band(rows: Iterable[AuditRow], metric: str, *, by: Sequence[str] = ("model", "attack"),
                slice: str | None = None, level: float = 0.95) -> ChanceBand | None:
    """The chance band of a by-epoch figure drawn by :func:`worst_series` with the same
    ``by`` and ``slice``: at each epoch, for each plotted line, the ``level`` quantile of the
    maximum of its rows' ``metric`` under H0 (:func:`~memberscope.null_reference.max_null_quantile`
    for their sizes and their attacks' pooling of fold scores: trained attacks spread wider);
    where lines differ, the highest. None for metrics without a null reference (``auc``,
    ``advantage`` and ``tpr@F`` have one) or without rows with an epoch."""
    parsed = parse_metric(metric)
    chance, fpr = parsed.chance, parsed.fpr
    if chance is None:
        return None
    picked = [r for r in rows if r.metadata.get("epoch") is not None
              and (slice is None or r.slice == slice)
              and r.n_members > 0 and r.n_nonmembers > 0
              and not math.isnan(metric_value(r, metric))
              # Files written before TPR was left null where unresolvable may still hold it.
              and (fpr is None or resolvable(fpr, r.n_nonmembers))]
    upper: dict[Any, float] = {}
    for key, group in group_rows(picked, (*by, "epoch")).items():
        quantile = max_null_quantile(metric, [(r.n_members, r.n_nonmembers) for r in group],
                                     level, pooling=[null_pooling(r.attack) for r in group])
        upper[key[-1]] = max(upper.get(key[-1], -math.inf), quantile)
    if not upper:
        return None
    epochs = sorted(upper, key=epoch_sort_key)
    return ChanceBand(np.array(epochs), np.array([upper[e] for e in epochs]),
                      chance, level)


def available_metrics(rows: Sequence[AuditRow], wanted: Sequence[str] = EPOCH_METRICS) -> list[str]:
    """The metrics of ``wanted`` that at least one row stores; a name that is no metric
    raises (:func:`~memberscope.metric_definitions.parse_metric`), never silently dropped."""
    return [m.key for m in parse_metrics(wanted)
            if any(not math.isnan(metric_value(r, m)) for r in rows)]


def metadata_keys(rows: Iterable[AuditRow]) -> list[str]:
    """Every metadata key with a scalar value, in first-seen order."""
    seen: dict[str, None] = {}
    for row in rows:
        for key, value in row.metadata.items():
            if value is None or isinstance(value, str | int | float | bool):
                seen.setdefault(key, None)
    return list(seen)
