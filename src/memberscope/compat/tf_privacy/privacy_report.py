"""TF Privacy's privacy-report figures, drawn with memberscope's plots.

Each function returns a :class:`matplotlib.figure.Figure` with one panel per privacy metric
and one line per (model variant, attack), as TF Privacy's do. Like TF Privacy's, the figure
is made with ``pyplot`` so that a notebook shows it; memberscope's own plotting functions
(:mod:`memberscope.report.plots`) never touch pyplot state.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from memberscope.compat.tf_privacy.data_structures import (
    AttackResultsCollection,
    PrivacyMetric,
)
from memberscope.errors import InputError, require
from memberscope.results import AuditRow

if TYPE_CHECKING:
    from matplotlib.figure import Figure

ENTIRE_DATASET = "entire_dataset"


def plot_by_epochs(results: AttackResultsCollection,
                   privacy_metrics: Sequence[PrivacyMetric], *,
                   slice: str | None = ENTIRE_DATASET) -> Figure:
    """Each metric against the epoch, one line per (model variant, attack).

    Parameters
    ----------
    results : AttackResultsCollection
        Results whose ``privacy_report_metadata`` has ``epoch_num`` set.
    privacy_metrics : sequence of PrivacyMetric
        One panel each.
    slice : str or None
        The slice plotted (memberscope label), the entire dataset as in TF Privacy; None
        plots the worst slice at each epoch, as an attacker would pick it.
    """
    from memberscope.report.plots import plot_metric_by_epoch

    rows = _rows(results, need="epoch")
    figure, panels = _panels(privacy_metrics, "Membership leakage by epoch")
    for ax, metric in panels:
        plot_metric_by_epoch(rows, metric.metric, slice=slice, mark_worst=False, ax=ax)
    return figure


def plot_privacy_vs_accuracy(results: AttackResultsCollection,
                             privacy_metrics: Sequence[PrivacyMetric], *,
                             slice: str | None = ENTIRE_DATASET) -> Figure:
    """Each metric against ``accuracy_train`` of the metadata (what the codelab fills with
    validation accuracy), one line per (model variant, attack), points labelled by epoch.

    ``slice`` as in :func:`plot_by_epochs`.
    """
    from memberscope.report.plots import plot_privacy_vs_utility

    rows = _rows(results, need="train_accuracy")
    if slice is not None:
        rows = [r for r in rows if r.slice == slice]
    # One line per (model, attack) as in TF Privacy: the plot draws one line per "model".
    rows = [replace(r, metadata={**r.metadata, "model": f"{r.metadata.get('model')} · {r.attack}"})
            for r in rows]
    figure, panels = _panels(privacy_metrics, "Privacy vs utility")
    for ax, metric in panels:
        plot_privacy_vs_utility(rows, metric.metric, accuracy_key="train_accuracy", ax=ax)
        where = "worst slice" if slice is None else f"slice {slice}"
        ax.set_title(f"{metric} vs accuracy ({where}; labels: epoch)", fontsize=10)
        ax.set_ylabel(str(metric))
    return figure


_NEEDED = {"epoch": "epoch_num", "train_accuracy": "accuracy_train"}


def _rows(results: AttackResultsCollection, *, need: str) -> list[AuditRow]:
    """Rows of every result, each needing ``need`` in its metadata (named as TF's field)."""
    if not isinstance(results, AttackResultsCollection):
        raise InputError(f"results must be an AttackResultsCollection; "
                         f"got {type(results).__name__}")
    rows: list[AuditRow] = []
    for index, attack_results in enumerate(results.attack_results_list):
        metadata = attack_results.privacy_report_metadata
        if metadata is None or getattr(metadata, _NEEDED[need]) is None:
            raise InputError(f"attack_results_list[{index}] has no privacy_report_metadata."
                             f"{_NEEDED[need]}; pass privacy_report_metadata to run_attacks")
        rows += attack_results.rows()
    if not rows:
        raise InputError("results hold no attack result to plot (empty, or every slice "
                         "was skipped)")
    return rows


def _panels(privacy_metrics: Sequence[PrivacyMetric],
            title: str) -> tuple[Figure, list[tuple[Any, PrivacyMetric]]]:
    """A pyplot figure and its (axes, metric) panels, after checking the metrics."""
    if isinstance(privacy_metrics, PrivacyMetric):
        raise InputError("privacy_metrics must be a sequence of PrivacyMetric, e.g. "
                         "(PrivacyMetric.AUC,); got a single PrivacyMetric")
    metrics = list(privacy_metrics)
    if not metrics:
        raise InputError("privacy_metrics is empty; give at least one PrivacyMetric")
    for index, metric in enumerate(metrics):
        if not isinstance(metric, PrivacyMetric):
            raise InputError(f"privacy_metrics[{index}] must be a PrivacyMetric; "
                             f"got {metric!r}")
    require("matplotlib", "report", "memberscope.compat.tf_privacy.privacy_report")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics) + 3, 5),
                                squeeze=False, layout="constrained")
    figure.suptitle(title)
    return figure, list(zip(axes[0], metrics, strict=True))


__all__ = ["plot_by_epochs", "plot_privacy_vs_accuracy"]
