"""The answers at the top of a report: worst attack/slice, trend with training, suggested
checkpoint under a privacy limit. Pure functions over result rows (no plotting, no I/O)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from memberscope.errors import InputError
from memberscope.report._data import (
    Rows,
    as_rows,
    epoch_sort_key,
    group_rows,
    worst_series,
)
from memberscope.results import AuditRow, ResultsCollection, worst_row

#: A change in the worst metric smaller than this between first and last epoch is "flat".
FLAT_TOLERANCE = 0.01
ACCURACY_KEYS = ("test_accuracy", "train_accuracy")


@dataclass(frozen=True)
class Trend:
    """How the worst ``metric`` of one model variant moved over training."""

    model: Any
    metric: str
    first_epoch: Any
    first_value: float
    last_epoch: Any
    last_value: float
    peak_epoch: Any
    peak_value: float

    @property
    def direction(self) -> str:
        """``rose``, ``fell`` or ``stayed flat`` (within :data:`FLAT_TOLERANCE`)."""
        change = self.last_value - self.first_value
        if abs(change) < FLAT_TOLERANCE:
            return "stayed flat"
        return "rose" if change > 0 else "fell"


@dataclass(frozen=True)
class Suggestion:
    """The most accurate (model, epoch) whose worst ``metric`` stays within ``limit``."""

    model: Any
    epoch: Any
    accuracy: float
    accuracy_key: str
    worst: float
    metric: str
    limit: float | None


@dataclass(frozen=True)
class DpPoint:
    """Under DP: the accountant's ε of a variant next to the empirical lower bound."""

    model: Any
    epoch: Any
    accountant: float
    empirical: float


@dataclass(frozen=True)
class ReportSummary:
    """Everything the top of the page and the terminal table say."""

    worst: AuditRow
    worst_low_fpr: AuditRow | None
    low_fpr_metric: str | None
    trends: tuple[Trend, ...]
    suggestion: Suggestion | None
    limit: float | None
    accuracy_key: str | None
    dp: tuple[DpPoint, ...]
    n_rows: int
    models: tuple[Any, ...]
    attacks: tuple[str, ...]
    slices: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able numbers (embedded in the page for scripts and tests)."""
        return {
            "worst": self.worst.to_dict(),
            "worst_low_fpr": self.worst_low_fpr.to_dict() if self.worst_low_fpr else None,
            "low_fpr_metric": self.low_fpr_metric,
            "trends": [vars(t) | {"direction": t.direction} for t in self.trends],
            "suggestion": vars(self.suggestion) if self.suggestion else None,
            "limit": self.limit,
            "accuracy_key": self.accuracy_key,
            "dp": [vars(p) for p in self.dp],
            "n_rows": self.n_rows,
        }


def lowest_fpr_metric(rows: Sequence[AuditRow]) -> str | None:
    """``tpr@F`` for the smallest FPR target the rows store, or None."""
    targets = sorted({f for r in rows for f in r.tpr_at_fpr})
    return f"tpr@{targets[0]:g}" if targets else None


def accuracy_key_of(rows: Sequence[AuditRow],
                    preferred: Sequence[str] = ACCURACY_KEYS) -> str | None:
    """The first accuracy metadata key (test, then train) present in the rows."""
    for key in preferred:
        if any(isinstance(r.metadata.get(key), int | float) for r in rows):
            return key
    return None


def trends(rows: Sequence[AuditRow], metric: str = "auc") -> tuple[Trend, ...]:
    """Per model variant: the worst ``metric`` (over slices and attacks) at its first, last and
    peak epoch; variants seen at fewer than two epochs have no trend."""
    out = []
    for (model,), series in worst_series(rows, metric, by=("model",)).items():
        if len(series.epochs) < 2:
            continue
        peak = int(series.values.argmax())
        out.append(Trend(model, metric, series.epochs[0].item(), float(series.values[0]),
                         series.epochs[-1].item(), float(series.values[-1]),
                         series.epochs[peak].item(), float(series.values[peak])))
    return tuple(out)


def suggest_checkpoint(rows: Sequence[AuditRow], *, limit: float | None, metric: str = "auc",
                       accuracy_key: str | None = None) -> Suggestion | None:
    """The best-accuracy (model, epoch) whose worst ``metric`` is ≤ ``limit`` (any when None),
    via :meth:`ResultsCollection.best_epoch`; None without accuracies or when none qualifies."""
    accuracy_key = accuracy_key or accuracy_key_of(rows)
    if accuracy_key is None:
        return None
    best = ResultsCollection(rows).best_epoch(metric=metric, max_value=limit,
                                              accuracy_key=accuracy_key)
    if best is None:
        return None
    return Suggestion(best["model"], best["epoch"], float(best["accuracy"]), accuracy_key,
                      float(best["worst"]), metric, limit)


def dp_points(rows: Sequence[AuditRow], epsilon_key: str = "epsilon") -> tuple[DpPoint, ...]:
    """For each (model, epoch) whose rows carry the accountant's ε: it and the largest
    confident empirical lower bound over slices and attacks (non-finite ε is left out)."""
    points = []
    with_epsilon = [r for r in rows if isinstance(r.metadata.get(epsilon_key), int | float)
                    and not isinstance(r.metadata.get(epsilon_key), bool)
                    and math.isfinite(r.metadata[epsilon_key])]
    for (model, epoch), group in group_rows(with_epsilon, ("model", "epoch")).items():
        empirical = max(r.epsilon_lower_bound.confident for r in group)
        points.append(DpPoint(model, epoch, float(group[0].metadata[epsilon_key]),
                              float(empirical)))
    points.sort(key=lambda p: (str(p.model), epoch_sort_key(p.epoch)))
    return tuple(points)


def summarize(results: Rows, *, max_auc: float | None = None, metric: str = "auc",
              accuracy_key: str | None = None) -> ReportSummary:
    """The report's answers for ``results`` (a run's collection or one audit).

    Parameters
    ----------
    max_auc : float, optional
        Privacy limit on the worst ``metric`` for the suggested checkpoint (no limit when None).
    accuracy_key : str, optional
        Metadata key of the accuracy to maximise (default: test, else train accuracy).
    """
    rows = as_rows(results)
    if not rows:
        raise InputError("results have no rows: every (slice, attack) was skipped or none ran")
    if max_auc is not None and metric == "auc" and not 0.0 <= max_auc <= 1.0:
        raise InputError(f"max_auc must be within [0, 1]; got {max_auc}")
    low_metric = lowest_fpr_metric(rows)
    low_worst = None
    if low_metric is not None:
        try:
            low_worst = worst_row(rows, low_metric)
        except InputError:
            low_worst = None
    key = accuracy_key or accuracy_key_of(rows)
    return ReportSummary(
        worst=worst_row(rows, metric),
        worst_low_fpr=low_worst,
        low_fpr_metric=low_metric,
        trends=trends(rows, metric),
        suggestion=suggest_checkpoint(rows, limit=max_auc, metric=metric, accuracy_key=key),
        limit=max_auc,
        accuracy_key=key,
        dp=dp_points(rows),
        n_rows=len(rows),
        models=tuple(dict.fromkeys(r.metadata.get("model") for r in rows)),
        attacks=tuple(dict.fromkeys(r.attack for r in rows)),
        slices=tuple(dict.fromkeys(r.slice for r in rows)),
    )


def format_number(value: Any, digits: int = 3) -> str:
    """A metric for display: fixed ``digits`` decimals; ``n/a`` for None/NaN; ints as is."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        if math.isinf(value):
            return "∞" if value > 0 else "-∞"
        return f"{value:.{digits}f}"
    return str(value)

