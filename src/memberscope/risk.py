"""Per-example privacy risk from loss traces: which training examples an attacker can single
out, from what training already computed, without reference models.

A *loss trace* is one training example's loss at each epoch of training: a row of an
(n_examples, n_epochs) array, NaN where no value was recorded (with Poisson sampling an example
joins no batch in some epochs; a monitor may record only at its audit epochs). A *risk method*
turns each trace into one number, higher = more exposed; :func:`rank_by_risk` and
:func:`top_k` order the examples by it.

Methods (a registry, by name; an unknown name suggests the closest):

``"iqr"``
    LT-IQR (Pollock et al. 2024, "Free Record-Level Privacy Risk Evaluation Through
    Artifact-Based Methods", arXiv 2411.05743): the inter-quartile range Q3 − Q1 of the
    example's recorded losses over all epochs, quartiles by linear interpolation between order
    statistics (numpy's and pandas' default, as in the authors' code). Examples that are learnt
    late (their loss falls from high to near zero during training) have a wide range; those the
    model fits at once, or never, have a narrow one. The paper found the top 1% by LT-IQR to be
    92% of LiRA's top 1% most vulnerable CIFAR-10 examples. The authors' code computes its
    traces in a separate eval-mode pass after each epoch; traces recorded in the training
    forward pass (what memberscope's trainer keeps, at no extra cost) are taken mid-epoch, in
    training mode.
``"std"``
    The standard deviation (ddof 0) of the example's recorded losses: the spread of the trace
    with its extremes counted.
``"std_then_fit"``
    The percentile of the trace's standard deviation among the scored examples, plus
    :data:`STD_THEN_FIT_WEIGHT` (0.05) × the percentile of how well the last recorded epoch
    fits the example (−log of its last loss): hard examples first and, among those of about
    the same spread, the ones the model ends up fitting — LiRA's most exposed members are hard
    examples (reference models that never saw them get them confidently wrong) that the
    target fits. Relative to the examples scored together (percentiles in (0, 1.05)).

The default, ``"std_then_fit"`` (:data:`DEFAULT_RISK_METHOD`), was chosen by a rule fixed
before the comparison: of 30 trace functions, the highest mean precision@1% (below) on the
selection targets (two models per setting), never on the targets reported. ``"iqr"`` is the
paper's method and stays available.

What was measured (``benchmarks/risk_precision.py``; docs/risk.md): the overlap of each
method's top 1% of a model's 5,000 members with the top 1% by LiRA with 16 reference models
(precision@1%), on 50 freshly trained targets of three settings (Fashion-MNIST with the
quickstart's 2- and 3-conv CNNs, and a coloured 32x32x3 Fashion-MNIST stand-in for CIFAR-10;
36 epochs). Mean precision@1% per setting: ``"iqr"`` 0.26, 0.33, 0.23; ``"std"`` 0.35, 0.36,
0.26; ``"std_then_fit"`` 0.38, 0.36, 0.22; LiRA with 2 of the 16 reference models 0.40,
0.34, 0.29; and LiRA with 8 of them against LiRA with the other 8 agreed on only 0.53, 0.45,
0.31 — the ground truth itself is noisy at this size. At 0.1% (the top 5 members)
``"std_then_fit"`` did worse than ``"std"`` (0.21, 0.05, 0.14 against 0.34, 0.31, 0.21): its
fit term decides the very top. The LT-IQR paper's 92% (CIFAR-10, its own ground truth) was not
reproduced in these settings.

A rule for short traces: an example with fewer recorded entries than the method's
``min_entries`` gets risk NaN (ranked last, never in a top-k). For ``"iqr"`` that is 5, the
fewest values whose quartiles (at positions 1 and 3 of 0..4) ignore the smallest and largest
value entirely; with 2 to 4 values the "IQR" is a fixed fraction of spans that include an
extreme (with 2 or 3 it is half the range). For ``"std"`` and ``"std_then_fit"`` it is 2.

A ranking is not a membership claim: it says which members a membership attack would most
likely single out, not that any attack succeeds on them. Removing the top examples exposes the
next ones (the "onion effect", Carlini et al. 2022): re-audit after removing data.

Numpy only (the core).
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from memberscope._validation import as_nan_float_array
from memberscope.errors import InputError, UnknownNameError
from memberscope.outputs import ModelOutputs

__all__ = ["DEFAULT_RISK_METHOD", "RISK_METHODS", "STD_THEN_FIT_WEIGHT", "LossTraces",
           "RiskMethod", "as_loss_traces", "get_risk_method", "last_recorded", "loss_trace_iqr",
           "loss_trace_std", "loss_trace_std_then_fit", "mid_rank_percentiles", "rank_by_risk",
           "risk_summary", "top_k", "trace_risk"]


@dataclass(frozen=True)
class RiskMethod:
    """A way to turn loss traces into per-example risk.

    ``score`` maps (n, n_epochs) float64 traces, NaN = not recorded, to (n,) float64 risk,
    higher = more exposed; it must accept rows with any number of recorded entries (those with
    fewer than ``min_entries`` are set to NaN by :func:`trace_risk` afterwards). ``summary`` is
    one line for listings. ``percentiles``: the risk is a percentile among the examples, so
    its top 1% start near 0.99 whatever the traces hold (no loss-unit threshold to show).
    """

    name: str
    score: Callable[[np.ndarray], np.ndarray]
    min_entries: int
    summary: str
    percentiles: bool = False


def nan_quantile_rows(traces: np.ndarray, q: float) -> np.ndarray:
    """The ``q``-quantile of each row's non-NaN values, (n,) float64 (NaN for empty rows).

    Linear interpolation between order statistics (numpy's default method): with k values
    sorted as v_0 <= … <= v_{k-1}, the quantile is at position h = (k − 1)·q. Vectorised over
    rows (``np.nanquantile`` loops over them in Python).
    """
    ordered = np.sort(traces, axis=1)  # NaN sorts last
    counts = np.count_nonzero(~np.isnan(traces), axis=1)
    position = np.maximum(counts - 1, 0) * q
    lower = np.floor(position).astype(np.intp)
    upper = np.minimum(lower + 1, np.maximum(counts - 1, 0))
    low = np.take_along_axis(ordered, lower[:, None], axis=1)[:, 0]
    high = np.take_along_axis(ordered, upper[:, None], axis=1)[:, 0]
    with np.errstate(invalid="ignore"):
        return low + (position - lower) * (high - low)


def loss_trace_iqr(traces: np.ndarray) -> np.ndarray:
    """LT-IQR: Q3 − Q1 of each row's recorded losses (n,) float64; see the module docstring."""
    return nan_quantile_rows(traces, 0.75) - nan_quantile_rows(traces, 0.25)


def loss_trace_std(traces: np.ndarray) -> np.ndarray:
    """The standard deviation (ddof 0) of each row's recorded losses, (n,) float64; NaN for
    rows with none."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a row with none gives NaN
        return np.nanstd(traces, axis=1)


def last_recorded(traces: np.ndarray) -> np.ndarray:
    """Each row's last recorded (non-NaN) value, (n,) float64; NaN for rows with none."""
    recorded = ~np.isnan(traces)
    if traces.shape[1] == 0:
        return np.full(len(traces), np.nan)
    last = traces.shape[1] - 1 - np.argmax(recorded[:, ::-1], axis=1)
    values = traces[np.arange(len(traces)), last].astype(np.float64)
    return np.where(recorded.any(axis=1), values, np.nan)


def mid_rank_percentiles(values: np.ndarray) -> np.ndarray:
    """(mid-rank − 1/2) / k of each non-NaN value among the k non-NaN ``values``, in (0, 1):
    ties share their mean rank, so the result does not depend on the examples' order; NaN
    stays NaN."""
    out = np.full(len(values), np.nan)
    scored = np.flatnonzero(~np.isnan(values))
    if len(scored) == 0:
        return out
    ordered = np.sort(values[scored])
    below = np.searchsorted(ordered, values[scored], side="left")
    at_or_below = np.searchsorted(ordered, values[scored], side="right")
    out[scored] = 0.5 * (below + at_or_below) / len(scored)  # mean 0-based rank + 1/2
    return out


STD_THEN_FIT_WEIGHT = 0.05
"""The fit's weight in ``"std_then_fit"``: a 5-percentile lead in spread outweighs any fit."""


def loss_trace_std_then_fit(traces: np.ndarray) -> np.ndarray:
    """``"std_then_fit"``, (n,) float64 in (0, 1 + STD_THEN_FIT_WEIGHT): the percentile of the
    trace's standard deviation plus ``STD_THEN_FIT_WEIGHT`` × the percentile of how well the
    last recorded epoch fits the example (−log of its last loss), both among the rows with at
    least two recorded losses (NaN for the others). See the module docstring."""
    spread = np.where(np.count_nonzero(~np.isnan(traces), axis=1) >= 2, loss_trace_std(traces),
                      np.nan)
    with np.errstate(divide="ignore"):
        fit = np.where(np.isnan(spread), np.nan, -np.log(last_recorded(traces)))
    return mid_rank_percentiles(spread) + STD_THEN_FIT_WEIGHT * mid_rank_percentiles(fit)


_METHODS: dict[str, RiskMethod] = {
    method.name: method for method in (
        RiskMethod("iqr", loss_trace_iqr, min_entries=5,
                   summary="inter-quartile range of the per-epoch training loss (LT-IQR, "
                           "Pollock et al. 2024)"),
        RiskMethod("std", loss_trace_std, min_entries=2,
                   summary="standard deviation of the per-epoch training loss"),
        RiskMethod("std_then_fit", loss_trace_std_then_fit, min_entries=2,
                   summary="percentile of the loss's standard deviation, then of the last "
                           "epoch's fit (hard examples the model ends up fitting)",
                   percentiles=True),
    )
}
RISK_METHODS: Mapping[str, RiskMethod] = _METHODS
"""Every risk method by name (read-only view)."""
DEFAULT_RISK_METHOD = "std_then_fit"
"""The method used when none is named: chosen on selection targets (module docstring)."""


def get_risk_method(name: str) -> RiskMethod:
    """The risk method called ``name``; an unknown name lists the valid ones."""
    if not isinstance(name, str) or name not in _METHODS:
        raise UnknownNameError("risk method", str(name), list(_METHODS))
    return _METHODS[name]


def trace_risk(loss_traces: Any, *, method: str = DEFAULT_RISK_METHOD,
               min_entries: int | None = None) -> np.ndarray:
    """Per-example risk from loss traces, higher = more exposed.

    Parameters
    ----------
    loss_traces : (n_examples, n_epochs) float
        Each example's training loss per epoch; NaN where none was recorded. Infinite values
        are refused.
    method : str, default "std_then_fit"
        A key of :data:`RISK_METHODS` (:data:`DEFAULT_RISK_METHOD` when not given).
    min_entries : int, optional
        Examples with fewer recorded (non-NaN) entries get NaN risk. Defaults to the method's
        own minimum (5 for "iqr", 2 for the others; see the module docstring).

    Returns
    -------
    (n_examples,) float64
        Risk in the method's unit ("iqr", "std": loss units, nats; "std_then_fit":
        percentiles among the scored examples), NaN for too-short traces.

    Examples
    --------
    >>> traces = np.array([[2.0, 1.5, 0.2, 0.1, 0.1, 0.0],      # learnt during training
    ...                    [0.1, 0.1, 0.1, 0.1, 0.1, 0.1],      # fitted at once
    ...                    [1.0, np.nan, 0.9, np.nan, np.nan, 0.8]])  # 3 entries: too few
    >>> trace_risk(traces, method="iqr").round(3)
    array([1.075, 0.   ,   nan])
    """
    chosen = get_risk_method(method)
    needed = chosen.min_entries if min_entries is None else _count("min_entries", min_entries)
    traces = as_loss_traces("loss_traces", loss_traces)
    recorded = np.count_nonzero(~np.isnan(traces), axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        risk = np.asarray(chosen.score(traces), dtype=np.float64)
    if risk.shape != (len(traces),):
        raise InputError(f"risk method {method!r} returned shape {risk.shape}; expected "
                         f"({len(traces)},)")
    risk = risk.copy()
    risk[recorded < needed] = np.nan
    return risk


@dataclass(frozen=True, eq=False)
class LossTraces:
    """One model's recorded loss traces: the input of :func:`trace_risk`, with who each row is.

    Parameters
    ----------
    losses : (n, n_epochs) float
        Row i is the loss of training example ``example_index[i]`` at each epoch in
        ``epochs``; NaN where none was recorded. Kept as float32 (what is recorded).
    epochs : (n_epochs,) int
        The 1-based epoch of each column, increasing.
    example_index : (n,) int, optional
        Training-set index of each row; defaults to ``0..n-1``.
    labels : (n,) int, optional
        Class label of each row.
    model : str
        The model (variant) label.
    """

    losses: np.ndarray
    epochs: np.ndarray
    example_index: np.ndarray | None = None
    labels: np.ndarray | None = None
    model: str = "model"

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        losses = as_loss_traces("losses", self.losses).astype(np.float32)
        set_(self, "losses", losses)
        n, width = losses.shape
        epochs = _index_vector("epochs", self.epochs, width, "column of losses")
        if len(epochs) and (epochs.min() < 1 or (np.diff(epochs) <= 0).any()):
            raise InputError(f"epochs must be increasing 1-based epoch numbers; got "
                             f"{epochs.tolist()[:10]}")
        set_(self, "epochs", epochs)
        index = np.arange(n, dtype=np.int64) if self.example_index is None else \
            _index_vector("example_index", self.example_index, n, "row of losses")
        set_(self, "example_index", index)
        if self.labels is not None:
            set_(self, "labels", _index_vector("labels", self.labels, n, "row of losses"))
        if not isinstance(self.model, str) or not self.model:
            raise InputError(f"model must be a non-empty label; got {self.model!r}")

    @classmethod
    def of_members(cls, losses: Any, outputs: ModelOutputs, model: str = "model"
                   ) -> LossTraces:
        """The traces of ``outputs``' members: ``losses`` (n_members, n_epochs) in the order
        the members appear in ``outputs`` (e.g. an audit ``.npz``'s ``loss_trace_train``),
        epochs numbered 1.., rows indexed by their position among the members, with their
        labels where ``outputs`` has them."""
        losses = as_loss_traces("loss_trace_train", losses)
        if len(losses) != outputs.n_members:
            raise InputError(f"loss_trace_train has {len(losses)} rows; expected one per "
                             f"member ({outputs.n_members})")
        labels = None if outputs.labels is None else outputs.labels[outputs.membership]
        return cls(losses=losses, epochs=np.arange(1, losses.shape[1] + 1), labels=labels,
                   model=model)

    @property
    def n(self) -> int:
        """Number of examples (rows)."""
        return int(self.losses.shape[0])

    def risk(self, method: str = DEFAULT_RISK_METHOD, *, min_entries: int | None = None
             ) -> np.ndarray:
        """(n,) :func:`trace_risk` of these traces."""
        return trace_risk(self.losses, method=method, min_entries=min_entries)

    def last_loss(self) -> np.ndarray:
        """(n,) float64: each row's last recorded loss (NaN when it has none)."""
        return last_recorded(self.losses)


def _index_vector(name: str, value: Any, length: int, what: str) -> np.ndarray:
    """(length,) int64 of non-negative integers, named ``name`` in errors."""
    array = np.asarray(value)
    if array.size == 0:
        array = array.astype(np.int64)
    if array.ndim != 1 or len(array) != length:
        raise InputError(f"{name} must be ({length},), one per {what}; got shape "
                         f"{array.shape}")
    if not np.issubdtype(array.dtype, np.integer) or (array < 0).any():
        raise InputError(f"{name} must hold non-negative integers; got dtype {array.dtype}")
    return array.astype(np.int64)


def risk_summary(risk: Any, *, method: str = "iqr", top_fraction: float = 0.01
                 ) -> dict[str, Any]:
    """A few numbers that describe per-example ``risk`` (n,) for a results row's metadata.

    Returns a dict: ``method``; ``n_examples``; ``n_scored`` (risk not NaN);
    ``top_fraction``; ``top_threshold``, the smallest risk among the ``top_fraction`` most
    exposed scored examples (at least one), None when none is scored; ``max`` and
    ``median`` of the scored risk. In the method's unit; a description of a ranking, not a
    measure of leakage (it has no chance level).
    """
    values = _risk_vector(risk)
    if not 0.0 < float(top_fraction) <= 1.0:
        raise InputError(f"top_fraction must be in (0, 1]; got {top_fraction!r}")
    scored = np.sort(values[~np.isnan(values)])[::-1]
    summary: dict[str, Any] = {"method": method, "n_examples": len(values),
                               "n_scored": len(scored), "top_fraction": float(top_fraction),
                               "top_threshold": None, "max": None, "median": None}
    if len(scored):
        count = max(1, int(np.ceil(top_fraction * len(scored))))
        summary.update(top_threshold=float(scored[count - 1]), max=float(scored[0]),
                       median=float(np.median(scored)))
    return summary


def rank_by_risk(risk: Any) -> np.ndarray:
    """Example indices (n,) int64, most exposed first: by decreasing risk, NaN last, ties (and
    the NaN block) in increasing index order.

    >>> rank_by_risk([0.2, np.nan, 0.5, 0.2]).tolist()
    [2, 0, 3, 1]
    """
    values = _risk_vector(risk)
    # A stable sort of -risk: ties keep index order; NaN (and -NaN) sort last.
    return np.argsort(-values, kind="stable").astype(np.int64)


def top_k(risk: Any, k: int) -> np.ndarray:
    """The indices of the ``k`` most exposed examples (as :func:`rank_by_risk`), never one
    with NaN risk: fewer than ``k`` when fewer have a risk.

    >>> top_k([0.2, np.nan, 0.5, 0.2], 2).tolist()
    [2, 0]
    """
    values = _risk_vector(risk)
    count = _count("k", k, minimum=0)
    ranked = rank_by_risk(values)
    return ranked[:min(count, int(np.count_nonzero(~np.isnan(values))))]


def as_loss_traces(name: str, value: Any) -> np.ndarray:
    """``value`` as (n_examples, n_epochs) float64 loss traces: finite or NaN (not recorded);
    errors name ``name``."""
    if _ndim(value) not in (2, None):
        raise InputError(f"{name} must be 2-dimensional (n_examples, n_epochs), one row of "
                         f"per-epoch losses per example; got shape {np.shape(value)}")
    return as_nan_float_array(name, value, 2)


def _risk_vector(risk: Any) -> np.ndarray:
    """``risk`` as (n,) float64; NaN allowed (too-short traces), infinities not."""
    if _ndim(risk) not in (1, None):
        raise InputError(f"risk must be 1-dimensional (one value per example); got shape "
                         f"{np.shape(risk)}")
    return as_nan_float_array("risk", risk, 1)


def _ndim(value: Any) -> int | None:
    try:
        return int(np.ndim(value))
    except ValueError:  # a ragged list: the array check names the problem
        return None


def _count(name: str, value: Any, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise InputError(f"{name} must be an integer >= {minimum}; got {value!r}")
    return int(value)
