"""TF Privacy's figures of one attack: its ROC curve and the histograms of a statistic.

Each function makes a new :mod:`matplotlib.pyplot` figure (so that a notebook shows it, as
TF Privacy's do) and returns it; matplotlib (the ``report`` extra) is imported only here.
For ROC curves on log axes, dense at low FPR, with a chance band, see
:func:`memberscope.report.plots.plot_roc`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from memberscope.errors import require

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _pyplot() -> Any:
    require("matplotlib", "report", "memberscope.compat.tf_privacy.plotting")
    import matplotlib.pyplot as plt

    return plt


def save_plot(figure: Figure, path: str | Path | None, outformat: str = "png") -> None:
    """Write ``figure`` to ``path`` in ``outformat`` and close it (nothing when path is None)."""
    if path is None:
        return
    figure.savefig(path, bbox_inches="tight", format=outformat)
    _pyplot().close(figure)


def plot_curve_with_area(x: Iterable[float], y: Iterable[float], xlabel: str = "x",
                         ylabel: str = "y") -> Figure:
    """The curve (x, y), values in [0, 1], with the diagonal and the area under it in the
    legend (e.g. x = FPR, y = TPR)."""
    from sklearn.metrics import auc

    plt = _pyplot()
    xs, ys = np.asarray(list(x), float), np.asarray(list(y), float)
    figure = plt.figure()
    ax = figure.gca()
    ax.plot([0, 1], [0, 1], "k", lw=1.0)
    ax.plot(xs, ys, lw=2, label=f"AUC: {auc(xs, ys):.3f}")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_aspect("equal", adjustable="box")
    ax.legend()
    return figure


def plot_histograms(train: Iterable[float], test: Iterable[float], xlabel: str = "x",
                    thresh: float | None = None) -> Figure:
    """Density histograms (log scale) of a statistic on members (``train``) and non-members
    (``test``), with an optional threshold line."""
    plt = _pyplot()
    train_values, test_values = np.asarray(list(train), float), np.asarray(list(test), float)
    low = min(train_values.min(), test_values.min())
    high = max(train_values.max(), test_values.max())
    bins = np.linspace(low, high, 100)
    figure = plt.figure()
    ax = figure.gca()
    ax.hist(test_values, bins=bins, density=True, alpha=0.5, label="test", log=True)
    ax.hist(train_values, bins=bins, density=True, alpha=0.5, label="train", log=True)
    if thresh is not None:
        ax.axvline(thresh, color="r", label=f"threshold = {thresh:.3f}")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("normalized counts (density)")
    ax.legend()
    return figure


def plot_roc_curve(roc_curve: Any,
                   plot_func: Callable[..., Figure] = plot_curve_with_area) -> Figure:
    """The ROC curve of a result (``SingleAttackResult.roc_curve``): TPR against FPR."""
    return plot_func(roc_curve.fpr, roc_curve.tpr, xlabel="FPR", ylabel="TPR")


__all__ = ["plot_curve_with_area", "plot_histograms", "plot_roc_curve", "save_plot"]
