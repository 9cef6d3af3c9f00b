"""The report's multi-panel figures, rendered to PNG bytes (built from :mod:`.plots`)."""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from memberscope.metrics import RocCurve
from memberscope.report import plots
from memberscope.report._data import EPOCH_METRICS, available_metrics
from memberscope.results import AuditRow, metric_value
from memberscope.summary import dp_points, marking_family

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DPI = 96
MAX_HEATMAPS = 6


@dataclass(frozen=True)
class RenderedFigure:
    """One figure of the page: a file-name stem, a title, a caption and PNG bytes."""

    name: str
    title: str
    caption: str
    png: bytes


def _figure(width: float, height: float) -> Figure:
    from memberscope.errors import require

    require("matplotlib", "report", "the HTML report")
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))


def to_png(figure: Figure, dpi: int = DPI) -> bytes:
    """PNG bytes of ``figure`` (Agg; no timestamp metadata, so output is reproducible)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    return buffer.getvalue()


def _grid(n: int, columns: int, panel: tuple[float, float], *, left: float = 0.75,
          bottom: float = 0.55, gap: float | None = None,
          legend_lines: int = 0) -> tuple[Figure, list[Any]]:
    """A figure of ``n`` panels of ``panel`` inches in ``columns`` columns, with fixed margins
    (inches; constrained layout would triple the rendering time) and room for a legend of
    ``legend_lines`` lines underneath; ``gap`` is the space between panels (inches)."""
    n_cols = min(columns, n)
    n_rows = math.ceil(n / n_cols)
    gap = left + 0.3 if gap is None else gap
    legend_height = 0.22 * legend_lines + (0.15 if legend_lines else 0.0)
    width = panel[0] * n_cols
    height = panel[1] * n_rows + legend_height
    figure = _figure(width, height)
    figure.subplots_adjust(left=left / width, right=1 - 0.25 / width,
                           top=1 - 0.4 / height, bottom=(bottom + legend_height) / height,
                           wspace=gap / (panel[0] - gap), hspace=0.95 / (panel[1] - 0.95))
    axes = figure.subplots(n_rows, n_cols, squeeze=False).ravel().tolist()
    for extra in axes[n:]:
        extra.set_axis_off()
    return figure, axes[:n]


def _legend_lines(rows: Sequence[AuditRow], per_line: int = 4, extra: int = 1) -> int:
    models = {r.metadata.get("model") for r in rows}
    attacks = {r.attack for r in rows}
    return math.ceil((len(models) * len(attacks) + extra) / per_line)


def _shared_legend(figure: Figure, axes: Sequence[Any]) -> None:
    """One legend under the panels, from the union of their labelled lines."""
    handles: dict[str, Any] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            if not label.startswith("worst: "):
                handles.setdefault(label, handle)
    if handles:
        figure.legend(list(handles.values()), list(handles), loc="lower center",
                      ncols=min(4, len(handles)), fontsize=8, frameon=False)


def epoch_figure(rows: Sequence[AuditRow], metrics: Sequence[str] = EPOCH_METRICS, *,
                 beyond_split: bool = False) -> RenderedFigure | None:
    """One panel per available metric by epoch; None when no row has an epoch. Stars
    follow :func:`~memberscope.summary.marking_family` over ``rows`` (``beyond_split``: the
    split was found shifted, as :attr:`~memberscope.summary.Summary.beyond_split`)."""
    with_epoch = [r for r in rows if r.metadata.get("epoch") is not None]
    wanted = available_metrics(with_epoch, metrics)
    if not with_epoch or not wanted:
        return None
    figure, axes = _grid(len(wanted), 2, (5.2, 3.3), legend_lines=_legend_lines(with_epoch))
    for metric, ax in zip(wanted, axes, strict=True):
        plots.plot_metric_by_epoch(
            with_epoch, metric, legend=False, ax=ax,
            family=marking_family(with_epoch, metric, beyond_split=beyond_split))
    _shared_legend(figure, axes)
    return RenderedFigure(
        "by_epoch", "Leakage by epoch",
        "Each point is the worst slice at that epoch (as an attacker would pick it); colour is "
        "the model variant, line style the attack. The star marks the worst point whose "
        "result is significant over the run (for TPR at a low FPR: whose TPR there beats "
        "chance by its own test; on a shifted split: beyond the split). The grey band "
        "(AUC, advantage, TPR at low FPR) is where the "
        "worst of that many slices lands 95% of the time when nothing leaks: points inside it "
        "are indistinguishable from chance. The empirical ε panel shows, per line and epoch, "
        "a lower bound that holds at its stated confidence for the largest of the slices "
        "together (each slice's bound at α/k, Bonferroni), not the largest of k separate "
        "95% bounds.",
        to_png(figure))


def utility_figure(rows: Sequence[AuditRow], accuracy_key: str, limit: float | None,
                   highlight: tuple[Any, Any] | None = None) -> RenderedFigure | None:
    """AUC and advantage against accuracy, one line per variant (the codelab's second plot)."""
    usable = [r for r in rows if isinstance(r.metadata.get(accuracy_key), int | float)
              and r.metadata.get("epoch") is not None]
    if not usable:
        return None
    n_models = len({r.metadata.get("model") for r in usable})
    figure, axes = _grid(2, 2, (5.2, 3.6), legend_lines=math.ceil((n_models + 2) / 4))
    plots.plot_privacy_vs_utility(usable, "auc", accuracy_key=accuracy_key, limit=limit,
                                  highlight=highlight, legend=False, ax=axes[0])
    plots.plot_privacy_vs_utility(usable, "advantage", accuracy_key=accuracy_key,
                                  legend=False, ax=axes[1])
    _shared_legend(figure, axes)
    return RenderedFigure(
        "privacy_vs_accuracy", "Privacy vs utility",
        f"Worst AUC and advantage against {accuracy_key.replace('_', ' ')}; numbers are "
        "epochs. Up and to the right means more accurate but leakier; the best checkpoint is "
        "the most accurate point below your privacy limit. The grey band is where the worst "
        "of one epoch's results lands 95% of the time when nothing leaks.", to_png(figure))


def _label_margin(labels: Sequence[str], fontsize: float = 7.0) -> float:
    """Inches left of the axes that tick labels of ``fontsize`` points need (DejaVu Sans
    averages about 0.6 em per character; the tick and its padding take about 0.15 in)."""
    longest = max((len(label) for label in labels), default=0)
    return 0.25 + longest * 0.6 * fontsize / 72


def heatmap_figure(rows: Sequence[AuditRow], metric: str = "auc", *,
                   beyond_split: bool = False) -> RenderedFigure | None:
    """Per-slice heatmaps: slice × epoch per variant (slice × attack for a single audit);
    outlines as :func:`epoch_figure` stars."""
    drawn = heatmaps(rows, metric, beyond_split=beyond_split)
    if drawn is None:
        return None
    figure, caption = drawn
    return RenderedFigure("per_slice", "Per-slice view", caption, to_png(figure))


def heatmaps(rows: Sequence[AuditRow], metric: str = "auc", *,
             beyond_split: bool = False) -> tuple[Figure, str] | None:
    """The figure of :func:`heatmap_figure` and its caption, with a left margin that fits
    the longest slice label."""
    if not rows:
        return None
    family = marking_family(rows, metric, beyond_split=beyond_split)
    with_epoch = [r for r in rows if r.metadata.get("epoch") is not None]
    left = max(1.25, _label_margin([r.slice for r in rows]))
    if with_epoch:
        every_model = list(dict.fromkeys(r.metadata.get("model") for r in with_epoch))
        models = every_model[:MAX_HEATMAPS]
        figure, axes = _grid(len(models), 2, (4.55 + left, 3.6), left=left, gap=left + 0.45)
        values = [v for v in (metric_value(r, metric) for r in with_epoch) if math.isfinite(v)]
        low = min([*values, 0.5]) if metric == "auc" else min(values, default=0.0)
        high = max(values, default=1.0)
        for model, ax in zip(models, axes, strict=True):
            plots.plot_slice_heatmap(with_epoch, metric, by="epoch", model=model, vmin=low,
                                     vmax=high, family=family, ax=ax)
        caption = ("Worst attack per slice and epoch for each variant, on one colour scale; the "
                   "outlined cell is each variant's worst result distinguishable from chance "
                   "(over the whole run; none on a variant without one). A slice much brighter "
                   "than the rest leaks more than the average.")
        if len(every_model) > len(models):
            caption += (f" Showing the first {len(models)} of {len(every_model)} variants; the "
                        "tables below list them all.")
    else:
        figure, axes = _grid(1, 1, (5.15 + left, 4.0), left=left)
        plots.plot_slice_heatmap(rows, metric, by="attack", family=family, ax=axes[0])
        caption = ("Each attack on each slice; the outlined cell is the worst result "
                   "distinguishable from chance (none when no result is).")
    return figure, caption


def dp_figure(rows: Sequence[AuditRow], epsilon_key: str = "epsilon") -> RenderedFigure | None:
    """Accountant ε vs the empirical lower bound; None without DP rows."""
    if not dp_points(rows, epsilon_key):
        return None
    figure, axes = _grid(1, 1, (6.4, 3.8))
    plots.plot_epsilon_by_epoch(rows, epsilon_key=epsilon_key, ax=axes[0])
    return RenderedFigure(
        "dp_epsilon", "Differential privacy: promised vs measured ε",
        "The accountant's ε is the guarantee of DP training (an upper bound on leakage). The "
        "dashed line is what the attacks demonstrate at each audit: the largest of its "
        "results' ε lower bounds, each computed at a Bonferroni-corrected level so that the "
        "largest, together with the canary bounds, is a lower bound at the stated confidence "
        "(the largest of many uncorrected 95% bounds is not a 95% bound). Where the run "
        "planted canaries (test records, each secretly trained on or not by a coin flip), the "
        "triangles are the one-run canary audit's ε̂ at the final epoch, the one the verdict "
        "reads: filled ones hold for any (ε, δ)-DP mechanism and, like the dashed line, must "
        "stay below the promised ε — the closer they get, the more the promise is confirmed; "
        "above it would indicate a bug in training or accounting. Hollow ones assume the "
        "training's trade-off curve is Gaussian (μ-GDP, the accountant's model of DP-SGD): "
        "tighter, but evidence about that model, not a proof about DP.",
        to_png(figure))


def roc_figure(curves: Mapping[str, RocCurve | tuple[np.ndarray, np.ndarray]]
               ) -> RenderedFigure | None:
    """ROC curves on log-log axes; None without curves."""
    if not curves:
        return None
    figure, axes = _grid(1, 1, (5.6, 4.6))
    plots.plot_roc_curves(curves, ax=axes[0])
    return RenderedFigure(
        "roc", "ROC curves (log-log)",
        "True positive rate against false positive rate on log axes, which shows the low-FPR "
        "region where a confident attack matters; the dashed diagonal is guessing.",
        to_png(figure))


def gallery_figure(scores: np.ndarray, images: np.ndarray, *,
                   membership: np.ndarray | None = None, labels: np.ndarray | None = None,
                   k: int = 16) -> RenderedFigure:
    """The most exposed training examples as a small gallery."""
    shown = min(k, len(scores))
    columns = min(8, max(shown, 1))
    height = 8.0 * math.ceil(max(shown, 1) / columns) / columns + 0.7
    figure, axes = _grid(1, 1, (8.0, height), left=0.1, bottom=0.1)
    plots.plot_exposed_examples(scores, images, membership=membership, labels=labels, k=k,
                                columns=columns, ax=axes[0])
    return RenderedFigure(
        "exposed_examples", "Most exposed training examples",
        "The training examples with the highest attack score, i.e. those the attack is most "
        "sure were in the training set (rank and score on each tile).", to_png(figure))
