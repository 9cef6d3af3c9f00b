"""Figures of a privacy report. matplotlib is imported inside each function.

Every function takes ``ax=None`` and returns the axes it drew on; without ``ax`` it draws on
a new :class:`matplotlib.figure.Figure` (Agg canvas, no pyplot state, safe in threads and on
machines without a display). ``results`` is a :class:`~memberscope.ResultsCollection`, an
:class:`~memberscope.AuditResult` or any iterable of rows.

Where a figure summarises several slices it shows the *worst* slice (highest metric) at each
point, as the attacker would pick it; the worst point whose result is significant is marked
with a star (none when no plotted result is), and a heatmap outlines its worst significant
cell (none on a panel without one). "Significant" is in the family of all the rows given
(:func:`~memberscope.summary.marking_family`: a figure of a run is a statement about the run;
a TPR at low FPR is marked only where that TPR beats chance by its own test, and a shifted
split's rows only where they beat the split guard).
Such a maximum climbs above chance by chance alone, so AUC, advantage and TPR-at-FPR figures
shade the *chance band*: up to the 95% quantile of that maximum when nothing leaks, for the
sizes and attack kinds plotted (:func:`~memberscope.report._data.chance_band`; the math is
in :mod:`memberscope.null_reference`). A point inside the band is what noise produces; the
rows' p-values say which results are distinguishable from chance.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from memberscope.errors import InputError
from memberscope.metric_definitions import EPSILON_CONFIDENT, parse_metric
from memberscope.metrics import RocCurve
from memberscope.report._data import ChanceBand, chance_band, metric_title, slice_sort_key
from memberscope.results import Family, distinguishable_rows, metric_value
from memberscope.summary import (
    Rows,
    as_rows,
    dp_points,
    epoch_sort_key,
    field_value,
    marking_family,
    worst_series,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from memberscope.results import AuditRow

LINESTYLES = ("-", "--", ":", "-.")
#: The ``gid`` of a heatmap's outline of its worst significant cell.
WORST_CELL_GID = "worst-cell"
#: Up to this many epochs, each gets its own tick.
MAX_EPOCH_TICKS = 12
__all__ = [
    "plot_epsilon_by_epoch",
    "plot_exposed_examples",
    "plot_metric_by_epoch",
    "plot_privacy_vs_utility",
    "plot_roc_curves",
    "plot_slice_heatmap",
    "text_for_matplotlib",
]


def _new_axes(ax: Axes | None, figsize: tuple[float, float] = (6.4, 4.0)) -> Axes:
    if ax is not None:
        return ax
    from memberscope.errors import require

    require("matplotlib", "report", "memberscope.report.plots")
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, layout="constrained").add_subplot()


def text_for_matplotlib(value: Any) -> str:
    """A user string drawn literally: ``$`` would start mathtext and a leading ``_`` would
    hide a legend entry."""
    text = "none" if value is None else str(value)
    text = text.replace("$", r"\$")
    return " " + text if text.startswith("_") else text


def _series_label(model: Any, attack: Any) -> str:
    parts = [str(p) for p in (model, attack) if p is not None]
    return text_for_matplotlib(" · ".join(parts) or "result")


def _color(index: int) -> str:
    return f"C{index % 10}"


def _integer_epochs(ax: Axes, epochs: Sequence[Any]) -> None:
    """Epoch ticks on whole numbers only: at each epoch drawn when there are few (one epoch
    gets a unit-wide axis around it, not matplotlib's 0.945 … 1.050), else evenly spaced."""
    from matplotlib.ticker import FixedLocator, MaxNLocator

    values = sorted({float(e) for e in epochs if isinstance(e, int | float | np.number)})
    if values and len(values) <= MAX_EPOCH_TICKS and all(v.is_integer() for v in values):
        ax.xaxis.set_major_locator(FixedLocator(values))
        if len(values) == 1:
            ax.set_xlim(values[0] - 1, values[0] + 1)
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))


def _annotate_worst(ax: Axes, x: float, y: float, text: str, xs: Sequence[float]) -> None:
    """Label the starred point beside it, on the side with more room, in two lines
    (slice, attack), so the text stays inside the axes."""
    low, high = (min(xs), max(xs)) if xs else (x, x)
    right = x <= (low + high) / 2
    ax.annotate(text, (x, y), xytext=(9 if right else -9, 0), textcoords="offset points",
                ha="left" if right else "right", va="center", fontsize=8, linespacing=1.0)


#: The ``gid`` of the chance band's artist (tests and scripts find it by this).
CHANCE_BAND_GID = "chance-band"


def _band_label(band: ChanceBand) -> str:
    return f"chance: {band.level:.0%} of no-leakage maxima"


def _draw_band_by_epoch(ax: Axes, band: ChanceBand) -> None:
    """Shade chance … upper at each epoch (a one-epoch band is drawn half an epoch wide)."""
    epochs = band.epochs.astype(float)
    upper = band.upper
    if len(epochs) == 1:
        epochs, upper = np.array([epochs[0] - 0.5, epochs[0] + 0.5]), np.repeat(upper, 2)
    ax.fill_between(epochs, band.chance, upper, color="0.55", alpha=0.18, linewidth=0,
                    zorder=0, label=_band_label(band), gid=CHANCE_BAND_GID)


def plot_metric_by_epoch(results: Rows, metric: str = "auc", *,
                         slice: str | None = None,
                         mark_worst: bool = True, legend: bool = True,
                         family: Family | None = None, ax: Axes | None = None) -> Axes:
    """``metric`` by epoch: one line per (model variant, attack), colour by variant and line
    style by attack; each point is the worst slice at that epoch unless ``slice`` names one.

    Parameters
    ----------
    metric : str
        ``auc``, ``advantage``, ``ppv``, ``epsilon_confident``, ``epsilon_point`` or ``tpr@F``.
    mark_worst : bool
        Star the single highest point whose result is significant (any point of files that
        were never tested) and write its slice and attack next to it; no star when none is.
    family : Family, optional
        Which results count as significant (default:
        :func:`~memberscope.summary.marking_family` of ``results`` and ``metric``).

    For ``auc``, ``advantage`` and ``tpr@F`` the chance band is shaded (artist ``gid``
    "chance-band"): at each epoch, the 95% quantile of the maximum over a line's slices when
    nothing leaks.
    """
    metric = parse_metric(metric).key
    rows = as_rows(results)
    ax = _new_axes(ax)
    series = worst_series(rows, metric, by=("model", "attack"), slice=slice)
    band = chance_band(rows, metric, by=("model", "attack"), slice=slice) if series else None
    if band is not None:
        _draw_band_by_epoch(ax, band)
    models = list(dict.fromkeys(key[0] for key in series))
    attacks = list(dict.fromkeys(key[1] for key in series))
    for (model, attack), line in series.items():
        ax.plot(line.epochs, line.values, color=_color(models.index(model)),
                linestyle=LINESTYLES[attacks.index(attack) % len(LINESTYLES)], marker="o",
                markersize=3, linewidth=1.5, label=_series_label(model, attack))
    if metric == "auc":
        ax.axhline(0.5, color="0.6", linewidth=0.8, linestyle=":", label="chance (0.5)")
    if mark_worst and series:
        # Like every headline, the star names only a result distinguishable from chance.
        family = family or marking_family(results, metric)
        marked = {id(r) for r in distinguishable_rows(
            [r for s in series.values() for r in s.rows], family)}
        candidates = [(v, e, r) for s in series.values()
                      for v, e, r in zip(s.values, s.epochs, s.rows, strict=True)
                      if not math.isnan(v) and id(r) in marked]
        if candidates:
            value, epoch, row = max(candidates, key=lambda c: c[0])
            ax.plot([epoch], [value], linestyle="none", marker="*", markersize=13,
                    color="black", zorder=5, label=text_for_matplotlib(f"worst: {row.slice}"))
            _annotate_worst(ax, epoch, value,
                            text_for_matplotlib(f"{row.slice}\n({row.attack})"),
                            [float(c[1]) for c in candidates])
            ax.margins(y=0.12)
    if slice is not None:
        where = f"slice {slice}"
    elif metric == EPSILON_CONFIDENT.key and rows:
        # The largest of k rows' bounds is no bound at their level; worst_series corrects it.
        where = (f"largest over slices, {1 - rows[0].epsilon_lower_bound.alpha:.0%} "
                 f"for the largest")
    else:
        where = "worst slice per epoch"
    ax.set_title(text_for_matplotlib(f"{metric_title(metric)} by epoch ({where})"), fontsize=10)
    ax.set_xlabel("epoch")
    _integer_epochs(ax, [e for line in series.values() for e in line.epochs.tolist()])
    ax.set_ylabel(metric_title(metric))
    ax.grid(True, alpha=0.3)
    if legend and series:
        ax.legend(fontsize=7)
    return ax


def _label_positions(n: int, max_labels: int) -> np.ndarray:
    """Up to ``max_labels`` evenly spaced indices of n points, always first and last."""
    if n <= max_labels:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, max(max_labels, 2)).round().astype(int))


def plot_privacy_vs_utility(results: Rows, metric: str = "auc", *,
                            accuracy_key: str = "test_accuracy", limit: float | None = None,
                            max_labels: int = 8, highlight: tuple[Any, Any] | None = None,
                            legend: bool = True, ax: Axes | None = None) -> Axes:
    """Worst ``metric`` (over slices and attacks; split checks left out) against
    ``accuracy_key`` (metadata), one line per model variant in epoch order, points labelled
    by epoch (at most ``max_labels`` labels per line); a dashed line at the privacy ``limit``
    and a ring around the ``highlight`` (model, epoch) point when given. For ``auc`` and
    ``advantage`` the chance band is shaded (``gid`` "chance-band"): the 95% quantile of the
    maximum over one epoch's slices and attacks when nothing leaks (the highest over the
    epochs drawn)."""
    metric = parse_metric(metric).key
    # The model's leakage against its accuracy: a split check's rows measure the data.
    rows = [r for r in as_rows(results)
            if isinstance(r.metadata.get(accuracy_key), int | float) and not r.measures_split]
    ax = _new_axes(ax)
    series = worst_series(rows, metric, by=("model",))
    band = chance_band(rows, metric, by=("model",)) if series else None
    if band is not None:  # x is accuracy, not epoch: the band of the widest epoch throughout
        ax.axhspan(band.chance, float(band.upper.max()), color="0.55", alpha=0.18,
                   linewidth=0, zorder=0, label=_band_label(band), gid=CHANCE_BAND_GID)
    for index, ((model,), line) in enumerate(series.items()):
        accuracy = np.array([r.metadata[accuracy_key] for r in line.rows], dtype=float)
        color = _color(index)
        ax.plot(accuracy, line.values, color=color, marker="o", markersize=4, linewidth=1.2,
                label=_series_label(model, None))
        for position in _label_positions(len(accuracy), max_labels):
            ax.annotate(str(line.epochs[position]), (accuracy[position], line.values[position]),
                        xytext=(3, 3), textcoords="offset points", fontsize=7, color=color)
        if highlight is not None and highlight[0] == model:
            hits = [i for i, e in enumerate(line.epochs.tolist()) if e == highlight[1]]
            for i in hits:
                ax.plot([accuracy[i]], [line.values[i]], linestyle="none", marker="o",
                        markersize=13, markerfacecolor="none", markeredgecolor="black",
                        markeredgewidth=1.5, zorder=5, label="suggested checkpoint")
    if limit is not None:
        ax.axhline(limit, color="crimson", linewidth=1, linestyle="--",
                   label=f"privacy limit {limit:g}")
    ax.set_title(f"privacy vs utility ({metric_title(metric)}; labels: epoch)", fontsize=10)
    ax.set_xlabel(accuracy_key.replace("_", " "))
    ax.set_ylabel(f"worst {metric_title(metric)}")
    ax.grid(True, alpha=0.3)
    if legend and (series or limit is not None):
        ax.legend(fontsize=7)
    return ax


def _roc_points(curve: RocCurve | tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(curve, RocCurve):
        return np.asarray(curve.fpr, float), np.asarray(curve.tpr, float)
    fpr, tpr = curve
    fpr, tpr = np.asarray(fpr, float), np.asarray(tpr, float)
    if fpr.shape != tpr.shape or fpr.ndim != 1:
        raise InputError(f"a ROC curve needs fpr and tpr of one equal (k,) shape; got "
                         f"{fpr.shape} and {tpr.shape}")
    return fpr, tpr


def plot_roc_curves(curves: Mapping[str, RocCurve | tuple[np.ndarray, np.ndarray]], *,
                    min_fpr: float | None = None, legend: bool = True,
                    ax: Axes | None = None) -> Axes:
    """ROC curves on log-log axes (the view that shows TPR at low FPR) with the diagonal of a
    guessing attacker.

    Parameters
    ----------
    curves : {label: RocCurve or (fpr (k,), tpr (k,))}
    min_fpr : float, optional
        Left end of both axes (default: the smallest positive FPR of the curves).
        Points at FPR or TPR 0 cannot be drawn on log axes and are left out.
    """
    ax = _new_axes(ax, (5.0, 4.5))
    points = {label: _roc_points(curve) for label, curve in curves.items()}
    if min_fpr is None:
        positive = [f[f > 0].min() for f, _ in points.values() if (f > 0).any()]
        min_fpr = min(positive) if positive else 1e-4
    floor = float(min_fpr)
    for index, (label, (fpr, tpr)) in enumerate(points.items()):
        keep = (fpr >= floor) & (tpr > 0)
        ax.plot(fpr[keep], tpr[keep], color=_color(index), linewidth=1.4,
                label=text_for_matplotlib(label))
    ax.plot([floor, 1.0], [floor, 1.0], color="0.5", linestyle="--", linewidth=0.9,
            label="guessing (TPR = FPR)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(floor, 1.0)
    ax.set_ylim(floor, 1.0)
    ax.set_xlabel("false positive rate (non-members flagged)")
    ax.set_ylabel("true positive rate (members found)")
    ax.set_title("ROC curves (log-log)", fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    if legend:
        ax.legend(fontsize=7, loc="lower right")
    return ax


def plot_slice_heatmap(results: Rows, metric: str = "auc", *, by: str = "epoch",
                       model: Any = None, attack: str | None = None, colorbar: bool = True,
                       vmin: float | None = None, vmax: float | None = None,
                       family: Family | None = None, ax: Axes | None = None) -> Axes:
    """``metric`` per slice (rows) × value of ``by`` (columns: ``epoch`` or any metadata key,
    or ``attack``); each cell is the worst over whatever else varies (attacks, variants;
    split checks only in their own column) unless ``model``/``attack`` pick one. The worst
    cell whose result is significant in ``family`` (default:
    :func:`~memberscope.summary.marking_family` of all of ``results`` and ``metric``, before
    ``model``/``attack`` pick) is outlined; none where no cell's result is.

    ``vmin``/``vmax`` fix the colour scale (give several panels the same one, so a private
    variant does not look as leaky as the others); by default it spans this panel's values
    (from at most 0.5 for AUC)."""
    metric = parse_metric(metric).key
    every_row = as_rows(results)
    family = family or marking_family(results, metric)
    # A cell's worst over attacks is the model's leakage: split checks stay out of it (they
    # keep a column of their own where the columns are attacks).
    mixes_attacks = attack is None and by != "attack"
    rows = [r for r in every_row
            if (model is None or r.metadata.get("model") == model)
            and (attack is None or r.attack == attack)
            and not (mixes_attacks and r.measures_split)
            and field_value(r, by) is not None]
    if not rows:
        raise InputError(f"no rows to draw: none has {by!r}"
                         + (f" for model={model!r}" if model is not None else "")
                         + (f" and attack={attack!r}" if attack is not None else ""))
    ax = _new_axes(ax)
    slices = sorted({r.slice for r in rows}, key=slice_sort_key)
    columns = sorted({field_value(r, by) for r in rows}, key=epoch_sort_key)
    slice_index = {name: i for i, name in enumerate(slices)}
    column_index = {value: j for j, value in enumerate(columns)}
    grid = np.full((len(slices), len(columns)), np.nan)
    worst_in: dict[tuple[int, int], AuditRow] = {}
    for row in rows:
        i, j = slice_index[row.slice], column_index[field_value(row, by)]
        value = metric_value(row, metric)
        if not math.isnan(value) and not value <= grid[i, j]:
            grid[i, j] = value
            worst_in[i, j] = row
    finite = grid[np.isfinite(grid)]
    low = float(finite.min()) if finite.size else 0.0
    high = float(finite.max()) if finite.size else 1.0
    if metric == "auc":
        low = min(low, 0.5)
    low = low if vmin is None else vmin
    high = high if vmax is None else vmax
    image = ax.imshow(grid, aspect="auto", cmap="magma", vmin=low,
                      vmax=high if high > low else low + 1e-9, interpolation="nearest")
    ax.set_yticks(range(len(slices)), [text_for_matplotlib(s) for s in slices], fontsize=7)
    step = max(1, math.ceil(len(columns) / 13))
    ax.set_xticks(range(0, len(columns), step),
                  [text_for_matplotlib(c) for c in columns[::step]], fontsize=7)
    ax.set_xlabel(by)
    # Like every headline, the outline names only a result distinguishable from chance.
    significant = {id(r) for r in distinguishable_rows(list(worst_in.values()), family)}
    outlined = [(grid[cell], cell) for cell, row in worst_in.items() if id(row) in significant]
    if outlined:
        from matplotlib.patches import Rectangle

        _, (top, col) = max(outlined)
        ax.add_patch(Rectangle((float(col) - 0.5, float(top) - 0.5), 1, 1, fill=False,
                               edgecolor="cyan", linewidth=2, gid=WORST_CELL_GID))
    which = " · ".join(str(p) for p in (model, attack) if p is not None) or "worst of all"
    ax.set_title(text_for_matplotlib(f"{metric_title(metric)} per slice ({which})"), fontsize=10)
    if colorbar:
        ax.figure.colorbar(image, ax=ax, shrink=0.9, label=metric_title(metric))
    return ax


def plot_epsilon_by_epoch(results: Rows, *, epsilon_key: str = "epsilon", legend: bool = True,
                          ax: Axes | None = None) -> Axes:
    """Under DP, per model variant by epoch: the accountant's ε (solid) and the empirical ε
    lower bound (dashed: at each audit the largest of its results, corrected so that it holds
    at the stated confidence together with the canary bounds, :func:`dp_points`); for runs
    with canaries, the one-run audit's white-box (▲) and black-box (▼) ε̂ at the final
    epoch only (the one the verdict reads): filled where valid for any (ε, δ)-DP mechanism,
    hollow where they assume a Gaussian trade-off curve.

    The accountant's ε is an upper bound on what any attack can show; an assumption-free
    bound above it would mean the DP implementation or the accounting is wrong."""
    rows = as_rows(results)
    points = dp_points(rows, epsilon_key)
    if not points:
        raise InputError(f"no rows carry the accountant's epsilon in metadata[{epsilon_key!r}]; "
                         "this figure is for DP training runs")
    ax = _new_axes(ax)
    all_models = list(dict.fromkeys(r.metadata.get("model") for r in rows))
    for model in dict.fromkeys(p.model for p in points):
        index = all_models.index(model)
        mine = [p for p in points if p.model == model]
        epochs = [p.epoch for p in mine]
        color = _color(index)
        last = mine[-1]
        ax.plot(epochs, [p.accountant for p in mine], color=color, marker="o", markersize=4,
                label=_series_label(model, "accountant ε"))
        ax.plot(epochs, [p.empirical for p in mine], color=color, linestyle="--", marker="s",
                markersize=4, label=_series_label(
                    model, f"attacks' ε lower bound ({last.empirical_basis}, "
                           f"{last.confidence:.0%} with the canaries)"))
        for kind, marker, name in (("white_box", "^", "white-box"),
                                   ("black_box", "v", "black-box")):
            free, gaussian = getattr(last, kind), getattr(last, f"gaussian_{kind}")
            if free is not None:
                ax.plot([last.epoch], [free], color=color, linestyle="none", marker=marker,
                        markersize=7, label=_series_label(
                            model, f"canary ε̂, {name}, final epoch (any DP mechanism)"))
            if gaussian is not None:
                ax.plot([last.epoch], [gaussian], color=color, linestyle="none", marker=marker,
                        markersize=7, markerfacecolor="none", label=_series_label(
                            model, f"canary ε̂, {name}, final epoch (assumes Gaussian curve)"))
    ax.set_title("DP: accountant ε vs empirical lower bound", fontsize=10)
    ax.set_xlabel("epoch")
    _integer_epochs(ax, [p.epoch for p in points])
    ax.set_ylabel("ε")
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    if legend:
        ax.legend(fontsize=7)
    return ax


def _normalised_tiles(images: np.ndarray) -> np.ndarray:
    """(k, H, W) or (k, H, W, 3|4) in [0, 1]; channels first are moved last, one is squeezed."""
    tiles = np.asarray(images, dtype=float)
    if tiles.ndim == 4 and tiles.shape[-1] not in (1, 3, 4) and tiles.shape[1] in (1, 3):
        tiles = np.moveaxis(tiles, 1, -1)
    if tiles.ndim == 4 and tiles.shape[-1] == 1:
        tiles = tiles[..., 0]
    if tiles.ndim == 4 and tiles.shape[-1] not in (3, 4):
        raise InputError(f"images must have 1, 3 or 4 channels; got shape {images.shape}")
    low, high = np.nanmin(tiles), np.nanmax(tiles)
    return (tiles - low) / (high - low) if high > low else np.zeros_like(tiles)


def exposed_indices(scores: np.ndarray, membership: np.ndarray | None = None,
                    k: int = 16) -> np.ndarray:
    """Indices (≤ k,) of the highest-scoring members (all examples without ``membership``),
    highest first; ties keep index order."""
    scores = np.asarray(scores, dtype=float)
    candidates = np.arange(len(scores))
    if membership is not None:
        membership = np.asarray(membership, dtype=bool)
        if membership.shape != scores.shape:
            raise InputError(f"membership has shape {membership.shape}; expected "
                             f"{scores.shape} like scores")
        candidates = candidates[membership]
    candidates = candidates[np.isfinite(scores[candidates])]
    order = np.argsort(-scores[candidates], kind="stable")
    return candidates[order[:k]]


def plot_exposed_examples(scores: np.ndarray, images: np.ndarray, *,
                          membership: np.ndarray | None = None,
                          labels: Sequence[Any] | np.ndarray | None = None, k: int = 16,
                          columns: int = 8, ax: Axes | None = None) -> Axes:
    """A gallery of the training examples an attack flags most surely (highest score).

    Parameters
    ----------
    scores : (n,) float
        Per-example attack scores (higher = more likely member).
    images : (n, H, W), (n, H, W, C) or (n, C, H, W)
        The examples, aligned with ``scores``.
    membership : (n,) bool, optional
        Only members are shown when given.
    labels : (n,), optional
        Class labels, printed on each tile with its rank and score.
    """
    scores = np.asarray(scores, dtype=float)
    images = np.asarray(images)
    if scores.ndim != 1 or len(images) != len(scores):
        raise InputError(f"images must hold one example per score: scores has shape "
                         f"{scores.shape}, images {images.shape}")
    if images.ndim not in (3, 4):
        raise InputError(f"images must be (n, H, W) or (n, H, W, C); got shape {images.shape}")
    if k < 1 or columns < 1:
        raise InputError(f"k and columns must be >= 1; got k={k}, columns={columns}")
    chosen = exposed_indices(scores, membership, k)
    ax = _new_axes(ax, (8.0, 2.4))
    ax.set_axis_off()
    ax.set_title(f"most exposed training examples (top {len(chosen)} by attack score)",
                 fontsize=10)
    if not len(chosen):
        ax.text(0.5, 0.5, "no examples to show", ha="center", va="center")
        return ax
    tiles = _normalised_tiles(images[chosen])
    height, width = tiles.shape[1:3]
    pad = max(1, height // 14)
    n_cols = min(columns, len(chosen))
    n_rows = math.ceil(len(chosen) / n_cols)
    shape = (n_rows * (height + pad) + pad, n_cols * (width + pad) + pad, *tiles.shape[3:])
    mosaic = np.ones(shape)
    for position, tile in enumerate(tiles):
        top = pad + (position // n_cols) * (height + pad)
        left = pad + (position % n_cols) * (width + pad)
        mosaic[top:top + height, left:left + width] = tile
    ax.imshow(mosaic, cmap="gray" if mosaic.ndim == 2 else None, vmin=0, vmax=1,
              interpolation="nearest")
    for position, index in enumerate(chosen):
        top = pad + (position // n_cols) * (height + pad)
        left = pad + (position % n_cols) * (width + pad)
        caption = f"#{position + 1} {scores[index]:.2g}"
        if labels is not None:
            caption += f"\ny={text_for_matplotlib(labels[index])}"
        ax.text(left + 0.5, top + 0.5, caption, fontsize=6, va="top", ha="left",
                color="yellow", bbox={"facecolor": "black", "alpha": 0.5, "pad": 0.5,
                                      "linewidth": 0})
    return ax
