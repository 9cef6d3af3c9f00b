"""Candidate per-example risk scores from loss traces, tried against the LiRA ground truth.

Each maps (n, E) per-epoch training losses (NaN = missing) to (n,) scores, higher = more
exposed. ``benchmarks/risk_precision.py`` chooses among them on the selection targets only;
what wins there is what ``memberscope.risk`` offers.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np

Candidate = Callable[[np.ndarray], np.ndarray]


def _quiet(function: Callable[..., np.ndarray], *args: object, **kwargs: object) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return function(*args, **kwargs)


def _late(trace: np.ndarray, fraction: float = 0.5) -> np.ndarray:
    epochs = trace.shape[1]
    return trace[:, int(np.floor(epochs * (1 - fraction))):]


def _iqr(values: np.ndarray) -> np.ndarray:
    high, low = _quiet(np.nanpercentile, values, [75, 25], axis=1)
    return high - low


def _logit(trace: np.ndarray) -> np.ndarray:
    """log(p / (1 - p)) of the true class from the loss -log p: -log(expm1(loss))."""
    loss = np.maximum(trace.astype(np.float64), 1e-12)
    return -np.log(np.expm1(loss))


def _epoch_percentiles(trace: np.ndarray) -> np.ndarray:
    """Each entry's percentile (0..1) among the examples' losses of the same epoch."""
    out = np.full(trace.shape, np.nan)
    for epoch in range(trace.shape[1]):
        column = trace[:, epoch]
        seen = ~np.isnan(column)
        if seen.sum() < 2:
            continue
        ranks = np.argsort(np.argsort(column[seen], kind="stable"), kind="stable")
        out[seen, epoch] = ranks / (seen.sum() - 1)
    return out


def _percentile_rank(values: np.ndarray) -> np.ndarray:
    """Each value's rank among ``values`` scaled to [0, 1] (NaN ranks last, as lowest)."""
    filled = np.where(np.isnan(values), -np.inf, values)
    return np.argsort(np.argsort(filled, kind="stable"), kind="stable") / max(len(values) - 1, 1)


def _hard_then_fit(trace: np.ndarray, weight: float = 0.05,
                   hardness: Callable[[np.ndarray], np.ndarray] | None = None) -> np.ndarray:
    """Hardness first (the mean loss over the first quarter of the epochs, as a percentile),
    then, within about ``weight`` of a percentile, how well the last epoch fits the example
    (-log of its last loss): LiRA's most exposed members are hard examples the model fits."""
    quarter = max(1, trace.shape[1] // 4)
    hard = _quiet(np.nanmean, trace[:, :quarter], axis=1) if hardness is None else \
        hardness(trace)
    last = trace[:, -1].astype(np.float64)
    fit = -np.log(np.maximum(last, 1e-30))
    return _percentile_rank(hard) + weight * _percentile_rank(fit)


def _learned_epoch(trace: np.ndarray, threshold: float = np.log(2.0)) -> np.ndarray:
    """First epoch after which the loss stays below ``threshold`` (p_y > 1/2) for good, with
    the mean loss breaking ties."""
    above = np.where(np.isnan(trace), False, trace >= threshold)
    last_above = np.where(above.any(axis=1),
                          trace.shape[1] - np.argmax(above[:, ::-1], axis=1), 0)
    mean = _quiet(np.nanmean, trace, axis=1)
    return last_above + mean / (1.0 + np.nanmax(mean))


CANDIDATES: dict[str, Candidate] = {
    "iqr": lambda t: _iqr(t),
    "iqr_late": lambda t: _iqr(_late(t)),
    "iqr_logit": lambda t: _iqr(-_logit(t)),
    "std": lambda t: _quiet(np.nanstd, t, axis=1),
    "mean": lambda t: _quiet(np.nanmean, t, axis=1),
    "mean_late": lambda t: _quiet(np.nanmean, _late(t), axis=1),
    "mean_early": lambda t: _quiet(np.nanmean, t[:, :t.shape[1] // 2], axis=1),
    "std_early": lambda t: _quiet(np.nanstd, t[:, :t.shape[1] // 2], axis=1),
    "q90": lambda t: _quiet(np.nanpercentile, t, 90, axis=1),
    "mean_first_quarter": lambda t: _quiet(np.nanmean, t[:, :max(1, t.shape[1] // 4)], axis=1),
    "max_early": lambda t: _quiet(np.nanmax, t[:, :t.shape[1] // 2], axis=1),
    "rank_mean_early": lambda t: _quiet(np.nanmean, _epoch_percentiles(t)[:, :t.shape[1] // 2],
                                        axis=1),
    "logit_gain": lambda t: _quiet(np.nanmax, -_logit(t), axis=1) + _logit(t[:, -1:])[:, 0],
    "early_logit_gain": lambda t: (_quiet(np.nanmean, -_logit(t[:, :max(1, t.shape[1] // 4)]),
                                          axis=1) + _logit(t[:, -1:])[:, 0]),
    "late_logit_over_early": lambda t: (_quiet(np.nanmean, _logit(_late(t, 0.25)), axis=1)
                                        - _quiet(np.nanmean, _logit(t[:, :max(1, t.shape[1] // 4)]),
                                                 axis=1)),
    "mean_last_quarter": lambda t: _quiet(np.nanmean, _late(t, 0.25), axis=1),
    "median": lambda t: _quiet(np.nanmedian, t, axis=1),
    "q75": lambda t: _quiet(np.nanpercentile, t, 75, axis=1),
    "max": lambda t: _quiet(np.nanmax, t, axis=1),
    "mean_log_loss": lambda t: _quiet(np.nanmean, np.log(np.maximum(t, 1e-12)), axis=1),
    "mean_neg_logit": lambda t: _quiet(np.nanmean, -_logit(t), axis=1),
    "mean_neg_logit_late": lambda t: _quiet(np.nanmean, -_logit(_late(t)), axis=1),
    "rank_mean": lambda t: _quiet(np.nanmean, _epoch_percentiles(t), axis=1),
    "rank_mean_late": lambda t: _quiet(np.nanmean, _late(_epoch_percentiles(t)), axis=1),
    "learned_epoch": _learned_epoch,
    "hard_then_fit": _hard_then_fit,
    "hard_then_fit_0.1": lambda t: _hard_then_fit(t, 0.1),
    "std_then_fit": lambda t: _hard_then_fit(t, 0.05, lambda u: _quiet(np.nanstd, u, axis=1)),
    "mean_log_loss_first_quarter": lambda t: _quiet(
        np.nanmean, np.log(np.maximum(t[:, :max(1, t.shape[1] // 4)], 1e-12)), axis=1),
    "last_entry": lambda t: t[:, -1].astype(np.float64),
}
