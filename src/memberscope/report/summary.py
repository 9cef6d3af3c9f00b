"""The answers at the top of a report: worst attack/slice, trend with training, suggested
checkpoint under a privacy limit. Pure functions over result rows (no plotting, no I/O).

Every answer ranks only rows whose leakage is distinguishable from chance
(:func:`~memberscope.results.distinguishable_rows`: significant after the audit's family-wise
correction); where there are none it says "no leakage distinguishable from chance (N results
tested)" instead of naming the largest of many noisy numbers."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from memberscope.errors import InputError
from memberscope.metric_definitions import parse_metric, tpr_metric
from memberscope.report._data import (
    Rows,
    as_rows,
    epoch_sort_key,
    group_rows,
    worst_series,
)
from memberscope.results import (
    AuditRow,
    ResultsCollection,
    distinguishable_rows,
    no_leakage_text,
    worst_distinguishable,
)

#: A change in the worst metric smaller than this between first and last epoch is "flat".
FLAT_TOLERANCE = 0.01
ACCURACY_KEYS = ("test_accuracy", "train_accuracy")


@dataclass(frozen=True)
class Trend:
    """How the worst distinguishable ``metric`` of one model variant moved over training,
    over the epochs that had a row distinguishable from chance (``n_epochs`` audited)."""

    model: Any
    metric: str
    first_epoch: Any
    first_value: float
    last_epoch: Any
    last_value: float
    peak_epoch: Any
    peak_value: float
    n_epochs: int = 0

    @property
    def direction(self) -> str:
        """``rose``, ``fell`` or ``stayed flat`` (within :data:`FLAT_TOLERANCE`)."""
        change = self.last_value - self.first_value
        if abs(change) < FLAT_TOLERANCE:
            return "stayed flat"
        return "rose" if change > 0 else "fell"


@dataclass(frozen=True)
class Suggestion:
    """The most accurate (model, epoch) whose worst distinguishable ``metric`` stays within
    ``limit``; ``worst`` is None where no row of it is distinguishable from chance (of
    ``n_tested`` rows)."""

    model: Any
    epoch: Any
    accuracy: float
    accuracy_key: str
    worst: float | None
    metric: str
    limit: float | None
    n_tested: int = 0


@dataclass(frozen=True)
class DpPoint:
    """Under DP: the accountant's ε of a variant next to the empirical lower bound, and the
    one-run canary audit's white-box and black-box ε̂ where the run had canaries."""

    model: Any
    epoch: Any
    accountant: float
    empirical: float
    white_box: float | None = None
    black_box: float | None = None


@dataclass(frozen=True)
class ReportSummary:
    """Everything the top of the page and the terminal table say.

    ``worst`` is the worst row distinguishable from chance, None when no row is (then
    :attr:`no_leakage` says so); ``quiet_models`` are (variant, rows tested) of the variants
    with no such row at any epoch: no trend and no verdict for them."""

    worst: AuditRow | None
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
    n_significant: int = 0
    quiet_models: tuple[tuple[Any, int], ...] = ()
    has_epochs: bool = False

    @property
    def no_leakage(self) -> str:
        """"no leakage distinguishable from chance (N results tested)"."""
        return no_leakage_text(self.n_rows)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able numbers (embedded in the page for scripts and tests)."""
        return {
            "worst": self.worst.to_dict() if self.worst else None,
            "n_significant": self.n_significant,
            "quiet_models": [list(q) for q in self.quiet_models],
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
    return tpr_metric(targets[0]).key if targets else None


def accuracy_key_of(rows: Sequence[AuditRow],
                    preferred: Sequence[str] = ACCURACY_KEYS) -> str | None:
    """The first accuracy metadata key (test, then train) present in the rows."""
    for key in preferred:
        if any(isinstance(r.metadata.get(key), int | float) for r in rows):
            return key
    return None


def trends(rows: Sequence[AuditRow], metric: str = "auc") -> tuple[Trend, ...]:
    """Per model variant: the worst distinguishable ``metric`` (over slices and attacks) at
    the first, last and peak of the epochs that have such a row; variants with fewer than two
    such epochs have no trend."""
    out = []
    epochs_of: dict[Any, set[Any]] = {}
    for row in rows:
        if row.metadata.get("epoch") is not None:
            epochs_of.setdefault(row.metadata.get("model"), set()).add(row.metadata["epoch"])
    for (model,), series in worst_series(distinguishable_rows(rows), metric,
                                         by=("model",)).items():
        if len(series.epochs) < 2:
            continue
        peak = int(series.values.argmax())
        out.append(Trend(model, metric, series.epochs[0].item(), float(series.values[0]),
                         series.epochs[-1].item(), float(series.values[-1]),
                         series.epochs[peak].item(), float(series.values[peak]),
                         len(epochs_of.get(model, ()))))
    return tuple(out)


def suggest_checkpoint(rows: Sequence[AuditRow], *, limit: float | None, metric: str = "auc",
                       accuracy_key: str | None = None) -> Suggestion | None:
    """The best-accuracy (model, epoch) whose worst distinguishable ``metric`` is ≤ ``limit``
    (any when None),
    via :meth:`ResultsCollection.best_epoch`; None without accuracies or when none qualifies."""
    accuracy_key = accuracy_key or accuracy_key_of(rows)
    if accuracy_key is None:
        return None
    best = ResultsCollection(rows).best_epoch(metric=metric, max_value=limit,
                                              accuracy_key=accuracy_key)
    if best is None:
        return None
    worst = None if best["worst"] is None else float(best["worst"])
    return Suggestion(best["model"], best["epoch"], float(best["accuracy"]), accuracy_key,
                      worst, metric, limit, int(best["n_tested"]))


def dp_points(rows: Sequence[AuditRow], epsilon_key: str = "epsilon") -> tuple[DpPoint, ...]:
    """For each (model, epoch) whose rows carry the accountant's ε: it and the largest
    confident empirical lower bound over slices and attacks (non-finite ε is left out)."""
    points = []
    with_epsilon = [r for r in rows if isinstance(r.metadata.get(epsilon_key), int | float)
                    and not isinstance(r.metadata.get(epsilon_key), bool)
                    and math.isfinite(r.metadata[epsilon_key])]
    for (model, epoch), group in group_rows(with_epsilon, ("model", "epoch")).items():
        empirical = max(r.epsilon_lower_bound.confident for r in group)
        one_run = group[0].metadata.get("epsilon_audit")
        one_run = one_run if isinstance(one_run, dict) else {}
        points.append(DpPoint(model, epoch, float(group[0].metadata[epsilon_key]),
                              float(empirical), _number_or_none(one_run.get("white_box")),
                              _number_or_none(one_run.get("black_box"))))
    points.sort(key=lambda p: (str(p.model), epoch_sort_key(p.epoch)))
    return tuple(points)


def _number_or_none(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


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
    # TPR at the lowest FPR is a headline only where it is resolvable (a stored value, not
    # None), its row is distinguishable from chance, and it beats guessing (TPR > FPR) there.
    low_worst = worst_distinguishable(rows, low_metric) if low_metric is not None else None
    if low_worst is not None and low_metric is not None \
            and not low_worst.metric(low_metric) > (parse_metric(low_metric).fpr or 0.0):
        low_worst = None
    key = accuracy_key or accuracy_key_of(rows)
    significant = distinguishable_rows(rows)
    models = tuple(dict.fromkeys(r.metadata.get("model") for r in rows))
    leaking = {r.metadata.get("model") for r in significant}
    return ReportSummary(
        worst=worst_distinguishable(rows, metric),
        worst_low_fpr=low_worst,
        low_fpr_metric=low_metric,
        trends=trends(rows, metric),
        suggestion=suggest_checkpoint(rows, limit=max_auc, metric=metric, accuracy_key=key),
        limit=max_auc,
        accuracy_key=key,
        dp=dp_points(rows),
        n_rows=len(rows),
        models=models,
        attacks=tuple(dict.fromkeys(r.attack for r in rows)),
        slices=tuple(dict.fromkeys(r.slice for r in rows)),
        n_significant=len(significant),
        quiet_models=tuple((m, sum(r.metadata.get("model") == m for r in rows))
                           for m in models if m not in leaking),
        has_epochs=any(r.metadata.get("epoch") is not None for r in rows),
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

