"""TF Privacy's privacy-report figures: privacy metrics by epoch and against accuracy.

Each function returns a :class:`matplotlib.figure.Figure` made with ``pyplot`` (so that a
notebook shows it), one panel per privacy metric, one line per (model variant, attack) on
the entire-dataset slice, as TF Privacy's do; a dashed grey line marks the chance level
(AUC 0.5, advantage 0, ε 0; PPV the share of members). The values are each result's
(memberscope's definitions, ``docs/migrating-from-tf-privacy.md``). memberscope's own report
(:func:`memberscope.report.plots.plot_metric_by_epoch` on
``AttackResultsCollection.to_results_collection()``) adds chance bands and marks the
significant points.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from memberscope.compat.tf_privacy.data_structures import (
    ENTIRE_DATASET_SLICE_STR,
    AttackResultsCollection,
    PrivacyMetric,
)
from memberscope.errors import InputError, require

if TYPE_CHECKING:
    from matplotlib.figure import Figure

EPOCH_STR = "Epoch"
TRAIN_ACCURACY_STR = "Train accuracy"


def plot_by_epochs(results: AttackResultsCollection,
                   privacy_metrics: Sequence[PrivacyMetric | str]) -> Figure:
    """Each metric against the epoch (``privacy_report_metadata.epoch_num``).

    Parameters
    ----------
    results : AttackResultsCollection
        Results whose ``privacy_report_metadata`` has ``epoch_num`` set.
    privacy_metrics : sequence of PrivacyMetric or its name (``"AUC"``, ``"Attacker
        advantage"``, …)
        One panel each.
    """
    return _figure(results, privacy_metrics, x_field="epoch_num", x_label=EPOCH_STR,
                   title="Vulnerability per Epoch")


def plot_privacy_vs_accuracy(results: AttackResultsCollection,
                             privacy_metrics: Sequence[PrivacyMetric | str]) -> Figure:
    """Each metric against ``privacy_report_metadata.accuracy_train`` (what the codelab
    fills with the validation accuracy); arguments as in :func:`plot_by_epochs`."""
    return _figure(results, privacy_metrics, x_field="accuracy_train",
                   x_label=TRAIN_ACCURACY_STR, title="Privacy vs Utility Analysis")


def _metrics(privacy_metrics: Sequence[PrivacyMetric | str]) -> list[PrivacyMetric]:
    if isinstance(privacy_metrics, PrivacyMetric | str):
        raise InputError("privacy_metrics must be a sequence, e.g. [PrivacyMetric.AUC] or "
                         f"['AUC']; got a single metric {privacy_metrics!r}")
    metrics = [PrivacyMetric.parse(m, f"privacy_metrics[{i}]")
               for i, m in enumerate(privacy_metrics)]
    if not metrics:
        raise InputError("privacy_metrics is empty; give at least one PrivacyMetric")
    return metrics


def _series(results: AttackResultsCollection, metrics: list[PrivacyMetric],
            x_field: str) -> dict[str, list[tuple[float, list[float], float]]]:
    """Per legend label ("model - ATTACK"): (x, metric values, share of members) of each
    entire-dataset result."""
    if not isinstance(results, AttackResultsCollection):
        raise InputError(f"results must be an AttackResultsCollection; "
                         f"got {type(results).__name__}")
    series: dict[str, list[tuple[float, list[float], float]]] = {}
    for index, attack_results in enumerate(results.attack_results_list):
        metadata = attack_results.privacy_report_metadata
        for field in ("epoch_num", x_field):
            if metadata is None or getattr(metadata, field) is None:
                raise InputError(f"attack_results_list[{index}] has no privacy_report_metadata."
                                 f"{field}; pass privacy_report_metadata to run_attacks")
        assert metadata is not None
        for result in attack_results.single_attack_results:
            if not result.slice_spec.entire_dataset:
                continue
            label = f"{metadata.model_variant_label} - {result.attack_type}"
            prior = result.data_size.ntrain / (result.data_size.ntrain + result.data_size.ntest)
            series.setdefault(label, []).append(
                (float(getattr(metadata, x_field)), [m.value_of(result) for m in metrics],
                 prior))
    if not series:
        raise InputError(f"results hold no attack result on the {ENTIRE_DATASET_SLICE_STR} "
                         "slice to plot (empty, or every slice was skipped)")
    return series


def _chance(metric: PrivacyMetric, priors: list[float]) -> float | None:
    if metric is PrivacyMetric.AUC:
        return 0.5
    if metric is PrivacyMetric.PPV:
        return float(np.mean(priors)) if np.ptp(priors) < 1e-9 else None
    return 0.0


def _figure(results: AttackResultsCollection, privacy_metrics: Sequence[PrivacyMetric | str],
            *, x_field: str, x_label: str, title: str) -> Figure:
    metrics = _metrics(privacy_metrics)
    series = _series(results, metrics, x_field)
    require("matplotlib", "report", "memberscope.compat.tf_privacy.privacy_report")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics) + 3, 5),
                                squeeze=False)
    figure.suptitle(title)
    priors = [prior for points in series.values() for _, _, prior in points]
    for column, (ax, metric) in enumerate(zip(axes[0], metrics, strict=True)):
        for label, points in series.items():
            ordered = sorted(points, key=lambda point: point[0])
            ax.plot([x for x, _, _ in ordered], [values[column] for _, values, _ in ordered],
                    marker="o", label=label)
        level = _chance(metric, priors)
        if level is not None:
            ax.axhline(level, color="0.6", linestyle="--", linewidth=1, label="chance level")
        ax.set_xlabel(x_label)
        ax.set_ylabel(str(metric))
        ax.set_title(f"{metric} for {ENTIRE_DATASET_SLICE_STR}")
    axes[0][-1].legend(loc="upper left", bbox_to_anchor=(1.02, 1))
    figure.tight_layout(rect=(0, 0, 1, 0.93))
    return figure


__all__ = ["EPOCH_STR", "TRAIN_ACCURACY_STR", "plot_by_epochs", "plot_privacy_vs_accuracy"]
