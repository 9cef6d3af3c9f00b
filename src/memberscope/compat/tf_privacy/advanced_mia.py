"""TF Privacy's scores for attacks with shadow (reference) models: LiRA and offset scores.

These are the functions TF Privacy users call with per-example statistics they computed on
their own shadow models, in TF Privacy's convention: **a lower score means "more likely a
member"** for :func:`compute_score_lira` (a negative log-likelihood ratio), and the sign of
:func:`compute_score_offset` follows the statistic's. Spreads are population standard
deviations (ddof 0) and a missing average (an example with no shadow model on that side)
takes the mean over the other examples, as in TF Privacy.

memberscope's own ``lira`` attack (``memberscope.audit(..., attacks=["lira"],
reference=ReferenceOutputs(...))``) scores higher = member, floors the spread at ``min_std``
and pools the variance by default; it also gives metrics with p-values.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from memberscope import signals
from memberscope.compat.tf_privacy.utils import log_loss
from memberscope.errors import InputError

_OPTIONS = ("both", "in", "out")
_AVERAGES = ("median", "mean")
_STATISTICS = ("conf with prob", "xe", "logit", "conf with logit", "hinge")
_LOG_SQRT_2PI = 0.5 * np.log(2 * np.pi)


def replace_nan_with_column_mean(a: np.ndarray) -> None:
    """Replace, in place, each NaN of ``a`` (n, k) by the mean of the finite values of its
    column."""
    column_means = np.nanmean(a, axis=0)
    rows, columns = np.nonzero(np.isnan(a))
    a[rows, columns] = column_means[columns]


def _check_choices(option: str, median_or_mean: str) -> None:
    if option not in _OPTIONS:
        raise InputError(f"option must be one of {list(_OPTIONS)}; got {option!r}")
    if median_or_mean not in _AVERAGES:
        raise InputError(f"median_or_mean must be one of {list(_AVERAGES)}; "
                         f"got {median_or_mean!r}")


def _check_shadow(name: str, stats: Sequence[np.ndarray]) -> None:
    """Each example's statistics are (m_i, k) with the same k."""
    if any(np.ndim(s) != 2 for s in stats):
        raise InputError(f"every element of {name} must be a 2-d array (shadow models, "
                         "augmentations)")
    widths = {np.shape(s)[1] for s in stats}
    if len(widths) > 1:
        raise InputError(f"every element of {name} must have the same number of "
                         f"augmentations (columns); got {sorted(widths)}")


def _averages(stats: Sequence[np.ndarray], median_or_mean: str) -> np.ndarray:
    """Per-example average over its shadow models (n, k); NaN-free (column means fill in)."""
    average = np.nanmedian if median_or_mean == "median" else np.nanmean
    rows = []
    for values in stats:
        values = np.asarray(values, dtype=np.float64)
        rows.append(np.full(values.shape[1], np.nan) if len(values) == 0
                    else average(values, axis=0))
    result = np.array(rows)
    replace_nan_with_column_mean(result)
    return result


def _spreads(stats: Sequence[np.ndarray], averages: np.ndarray, fix_variance: bool) -> Any:
    """Population std per example (n, k), or one std of all deviations (``fix_variance``)."""
    if fix_variance:
        deviations = [np.asarray(s, dtype=np.float64) - a[None] for s, a in zip(stats, averages,
                                                                                 strict=True)]
        return np.nanstd(np.concatenate(deviations))
    rows = [np.full(np.shape(s)[1], np.nan) if len(s) == 0
            else np.nanstd(np.asarray(s, dtype=np.float64), axis=0) for s in stats]
    result = np.array(rows)
    replace_nan_with_column_mean(result)
    return result


def compute_score_offset(stat_target: np.ndarray | Sequence[Sequence[float]],
                         stat_in: Sequence[np.ndarray], stat_out: Sequence[np.ndarray],
                         option: str = "both", median_or_mean: str = "median") -> np.ndarray:
    """Score (n,) of each example: its target statistic minus the average of its shadow
    models' statistics, averaged over the k augmentations.

    Parameters
    ----------
    stat_target : (n, k)
        Statistic of each example on the target model, per augmentation.
    stat_in, stat_out : sequences of n arrays (m_i, k)
        The example's statistic on the shadow models that trained on it (``in``) or not
        (``out``); m_i may differ between examples and may be 0.
    option : {"both", "in", "out"}
        Offset by the ``in`` average, the ``out`` average, or their midpoint.
    median_or_mean : {"median", "mean"}
        Average over the shadow models.
    """
    _check_choices(option, median_or_mean)
    offsets = []
    if option in ("in", "both"):
        _check_shadow("stat_in", stat_in)
        offsets.append(_averages(stat_in, median_or_mean))
    if option in ("out", "both"):
        _check_shadow("stat_out", stat_out)
        offsets.append(_averages(stat_out, median_or_mean))
    offset = sum(offsets) / len(offsets)
    return np.asarray((np.asarray(stat_target, dtype=np.float64) - offset).mean(axis=1))


def _log_density(x: np.ndarray, location: np.ndarray, scale: Any) -> np.ndarray:
    scale = scale + 1e-30  # TF Privacy's guard against a zero spread
    z = (x - location) / scale
    return np.asarray(-0.5 * z * z - np.log(scale) - _LOG_SQRT_2PI)


def compute_score_lira(stat_target: np.ndarray | Sequence[Sequence[float]],
                       stat_in: Sequence[np.ndarray], stat_out: Sequence[np.ndarray],
                       option: str = "both", fix_variance: bool = False,
                       median_or_mean: str = "median") -> np.ndarray:
    """LiRA score (n,) from Gaussians fit to each example's shadow statistics (Carlini et
    al. 2022), averaged over the k augmentations; **lower = more likely a member**.

    ``option`` "both": log N(s; out) − log N(s; in); "in": −log N(s; in); "out":
    log N(s; out). ``fix_variance`` uses one std for all examples; arguments otherwise as in
    :func:`compute_score_offset`.
    """
    _check_choices(option, median_or_mean)
    target = np.asarray(stat_target, dtype=np.float64)
    log_in: Any = 0.0
    log_out: Any = 0.0
    if option in ("in", "both"):
        _check_shadow("stat_in", stat_in)
        average = _averages(stat_in, median_or_mean)
        log_in = _log_density(target, average, _spreads(stat_in, average, fix_variance))
    if option in ("out", "both"):
        _check_shadow("stat_out", stat_out)
        average = _averages(stat_out, median_or_mean)
        log_out = _log_density(target, average, _spreads(stat_out, average, fix_variance))
    return np.asarray((np.asarray(log_out) - np.asarray(log_in)).mean(axis=1))


def convert_logit_to_prob(logit: np.ndarray) -> np.ndarray:
    """Softmax of logits (n, C), row by row."""
    return signals.softmax(np.asarray(logit, dtype=np.float64))


def calculate_statistic(pred: np.ndarray, labels: np.ndarray,
                        sample_weight: np.ndarray | None = None, is_logits: bool = True,
                        option: str = "logit", small_value: float = 1e-45) -> np.ndarray:
    """A per-example statistic (n,) of predictions ``pred`` (n, C) and integer ``labels``.

    ``option``: "conf with prob" p_y; "xe" the cross-entropy (times ``sample_weight``);
    "logit" log(p_y / (1 − p_y)); "conf with logit" the true class's logit; "hinge" the
    true class's logit minus the largest other logit. The last two need logits. Computed
    exactly from logits (log-softmax); ``small_value`` is kept for TF Privacy's signature.
    """
    if option not in _STATISTICS:
        raise InputError(f"option must be one of {list(_STATISTICS)}; got {option!r}")
    values = np.asarray(pred, dtype=np.float64)
    labels = np.asarray(labels)
    rows = np.arange(len(labels))
    if option in ("conf with logit", "hinge"):
        if not is_logits:
            raise InputError(f"option {option!r} needs logits (is_logits=True), not "
                             "probabilities")
        true_logit = values[rows, labels]
        if option == "conf with logit":
            return true_logit
        others = values.copy()
        others[rows, labels] = -np.inf
        return np.asarray(true_logit - others.max(axis=1))
    if option == "xe":
        return log_loss(labels, values, sample_weight, from_logits=is_logits)
    kind = "logits" if is_logits else "probs"
    if option == "logit":
        return signals.logit_scaled_confidence(labels, **{kind: values})
    probs = signals.softmax(values) if is_logits else values
    return np.asarray(probs[rows, labels])


__all__ = [
    "calculate_statistic",
    "compute_score_lira",
    "compute_score_offset",
    "convert_logit_to_prob",
    "replace_nan_with_column_mean",
]
