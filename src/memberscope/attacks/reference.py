"""Attacks that compare the target with reference models: LiRA and RMIA.

Both score every example once, from a :class:`~memberscope.outputs.ReferenceOutputs`;
slices take their rows of the scores. Higher score = more likely member.

- LiRA (Carlini et al. 2022, "Membership Inference Attacks From First Principles"): fit
  Gaussians to the reference models' logit-scaled confidences of each example, from the models
  that trained on it ("in") and those that did not ("out"); the score is the log likelihood
  ratio of the target's confidence (online) or a one-sided test against "out" (offline).
- RMIA (Zarifzadeh et al. 2024, "Low-Cost High-Power Membership Inference Attacks"): the
  likelihood ratio Pr(x|θ)/Pr(x) of x, compared pairwise with those of population samples z;
  the score is the fraction of z with LR(x, z) = (Pr(x|θ)/Pr(x)) / (Pr(z|θ)/Pr(z)) ≥ γ.

Both average over the q queries (augmented views) of each example.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from memberscope import signals
from memberscope.attacks._base import Attack, AttackWarning, check_number_option
from memberscope.errors import InputError
from memberscope.outputs import ModelOutputs

logger = logging.getLogger(__name__)

_TINY = np.finfo(np.float64).tiny
_LOG_SQRT_2PI = 0.5 * np.log(2.0 * np.pi)
DEFAULT_MAX_PAIRWISE_BYTES = 64 * 2**20
_PAIRWISE_BYTES_PER_PAIR = 9  # one float64 difference and one bool per (x, z) pair


# --- per-example Gaussian statistics over the reference models ------------------------------


def _masked_mean(values: np.ndarray, mask: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Mean over axis 0 of ``values`` (m, n, q) where ``mask`` (m, n, 1); NaN where count is 0."""
    total = np.where(mask, values, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return total / count


def _masked_median(values: np.ndarray, mask: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Median over axis 0 of the masked entries; NaN where count is 0.

    Masked-out entries sort last (+inf), so the k selected values are the first k rows.
    """
    ordered = np.sort(np.where(mask, values, np.inf), axis=0)
    k = np.broadcast_to(count.astype(np.int64), ordered.shape[1:])
    low = np.take_along_axis(ordered, np.maximum((k - 1) // 2, 0)[None], axis=0)[0]
    high = np.take_along_axis(ordered, np.maximum(k // 2, 0)[None], axis=0)[0]
    with np.errstate(invalid="ignore"):
        median = 0.5 * (low + high)
    return np.where(k > 0, median, np.nan)


def _squared_deviations(values: np.ndarray, mask: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """Sum over the masked models of (value - per-example mean)², shape (n, q)."""
    return np.where(mask, (values - np.nan_to_num(mean)[None]) ** 2, 0.0).sum(axis=0)


def gaussian_fit(values: np.ndarray, mask: np.ndarray, *, center: str = "mean",
                 variance: str = "per_example", min_std: float = 1e-3
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-example location and scale of ``values`` over the models selected by ``mask``.

    Parameters
    ----------
    values : (m, n, q) float
        Reference signals.
    mask : (m, n) bool
        Which models count for each example (its "in" or its "out" models).
    center : {"mean", "median"}
    variance : {"per_example", "global"}
        ``per_example``: unbiased std of each example's selected values (examples with fewer
        than two use the global value); ``global``: one pooled within-example std per query.
    min_std : float
        Floor on the std, so a constant signal does not give infinite likelihoods.

    Returns
    -------
    location, scale : (n, q) float
        NaN location where an example has no selected model.
    count : (n, 1) int
        Number of selected models per example.
    """
    mask3 = mask[:, :, None]
    count = mask.sum(axis=0)[:, None].astype(np.float64)
    mean = _masked_mean(values, mask3, count)
    location = mean if center == "mean" else _masked_median(values, mask3, count)
    deviations = _squared_deviations(values, mask3, mean)
    pooled_dof = np.maximum(count - 1, 0).sum()
    if pooled_dof > 0:
        global_std = np.sqrt(deviations.sum(axis=0) / pooled_dof)  # (q,)
    else:
        global_std = np.full(values.shape[2], min_std)
    if variance == "global":
        scale = np.broadcast_to(global_std, location.shape)
    else:
        with np.errstate(invalid="ignore", divide="ignore"):
            own = np.sqrt(deviations / (count - 1))
        scale = np.where(count >= 2, own, global_std[None])
    return location, np.maximum(scale, min_std), count.astype(np.int64)


def _gaussian_logpdf(x: np.ndarray, location: np.ndarray, scale: np.ndarray) -> np.ndarray:
    z = (x - location) / scale
    return -0.5 * z * z - np.log(scale) - _LOG_SQRT_2PI


def _check_counts(count: np.ndarray, side: str, option_hint: str) -> None:
    missing = count[:, 0] == 0
    if missing.any():
        raise InputError(
            f"{int(missing.sum())} example(s) have no {side!r} reference model (first at row "
            f"{int(np.argmax(missing))}); {option_hint}")


def _check_choice(attack: str, name: str, value: Any, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise InputError(f"{attack}: {name} must be one of {list(valid)}; got {value!r}")


# --- LiRA -----------------------------------------------------------------------------------


def lira_scores(target_signal: np.ndarray, reference_signal: np.ndarray,
                membership: np.ndarray, *, online: bool = True, variance: str = "global",
                center: str = "mean", min_std: float = 1e-3) -> np.ndarray:
    """LiRA membership scores (n,), higher = member.

    Parameters
    ----------
    target_signal : (n, q) float
        The target's logit-scaled confidence of each example on each query.
    reference_signal : (m, n, q) float
        The same for m reference models.
    membership : (m, n) bool
        Which examples each reference model trained on.
    online : bool
        True: log N(s; μ_in, σ_in) - log N(s; μ_out, σ_out). False (offline, "out" models
        only): -log Pr[Z ≥ s] for Z ~ N(μ_out, σ_out), a one-sided test.
    variance : {"global", "per_example"}
        ``global`` (one pooled std, the default) is the better choice with few reference
        models (Carlini et al. find per-example variances pay off from about 64 models on);
        see :func:`gaussian_fit`.
    center : {"mean", "median"}
    min_std : float

    Returns
    -------
    (n,) float
        Score averaged over the q queries.
    """
    from scipy.special import log_ndtr

    _check_choice("lira", "variance", variance, ("per_example", "global"))
    _check_choice("lira", "center", center, ("mean", "median"))
    out_loc, out_scale, out_count = gaussian_fit(reference_signal, ~membership, center=center,
                                                 variance=variance, min_std=min_std)
    _check_counts(out_count, "out", "train more reference models")
    if not online:
        _warn_without_variance({"out": out_count}, min_std)
        per_query = -log_ndtr(-(target_signal - out_loc) / out_scale)
        return np.asarray(per_query.mean(axis=1))
    in_loc, in_scale, in_count = gaussian_fit(reference_signal, membership, center=center,
                                              variance=variance, min_std=min_std)
    _check_counts(in_count, "in", "online LiRA needs both sides: train more reference models "
                                  "or use online=False")
    _warn_without_variance({"in": in_count, "out": out_count}, min_std)
    per_query = (_gaussian_logpdf(target_signal, in_loc, in_scale)
                 - _gaussian_logpdf(target_signal, out_loc, out_scale))
    return np.asarray(per_query.mean(axis=1))


def _warn_without_variance(counts: Mapping[str, np.ndarray], min_std: float) -> None:
    """Warn (an :class:`AttackWarning`) for each side whose std cannot be estimated at all:
    no example has two of its models there, so the std falls to ``min_std``."""
    sides = [side for side, count in counts.items() if np.maximum(count - 1, 0).sum() == 0]
    if not sides:
        return
    named = " and ".join(f"'{side}'" for side in sides)
    warnings.warn(
        f"lira: the spread of the {named} signals cannot be estimated: no example has 2 or more "
        f"{named} reference models, so the std is min_std={min_std:g} and the scores are not "
        f"calibrated likelihood ratios (their size means nothing; their order still ranks "
        f"examples by distance to the means); train more reference models: at least 2 "
        f"{named} per example, 4 models in complementary halves",
        AttackWarning, stacklevel=3)


# --- RMIA -----------------------------------------------------------------------------------


def rmia_marginal(reference_prob: np.ndarray, membership: np.ndarray, *, online: bool,
                  a: float) -> np.ndarray:
    """Pr(x), (n, q): the reference models' average true-class probability.

    Online: the average over all reference models (about half trained on x). Offline: from the
    "out" models only, Pr(x) = ((1 + a)·Pr_out(x) + (1 - a)) / 2, which follows from
    Pr(x) = (Pr_in(x) + Pr_out(x)) / 2 with the linear guess Pr_in(x) ≈ a·Pr_out(x) + (1 - a).
    """
    if online:
        return np.asarray(reference_prob.mean(axis=0))
    out = ~membership
    count = out.sum(axis=0)[:, None].astype(np.float64)
    _check_counts(count.astype(np.int64), "out", "train more reference models")
    out_mean = _masked_mean(reference_prob, out[:, :, None], count)
    return np.asarray(0.5 * ((1.0 + a) * out_mean + (1.0 - a)))


def _log_ratio(target_prob: np.ndarray, marginal: np.ndarray) -> np.ndarray:
    return np.log(np.maximum(target_prob, _TINY)) - np.log(np.maximum(marginal, _TINY))


def _fraction_sorted(log_ratio_x: np.ndarray, log_ratio_z: np.ndarray,
                     log_gamma: float) -> np.ndarray:
    """Per x: the fraction of z with log LR(x, z) ≥ log γ, by binary search in sorted z."""
    ordered = np.sort(log_ratio_z)
    counts = np.searchsorted(ordered, log_ratio_x - log_gamma, side="right")
    return counts / len(ordered)


def _fraction_pairwise(log_ratio_x: np.ndarray, log_ratio_z: np.ndarray, log_gamma: float,
                       max_bytes: int) -> np.ndarray:
    """The same fraction from explicit (x, z) comparisons, in blocks of at most ``max_bytes``."""
    n_z = len(log_ratio_z)
    pairs = max(1, max_bytes // _PAIRWISE_BYTES_PER_PAIR)
    cols = min(n_z, pairs)
    rows = max(1, pairs // cols)
    counts = np.zeros(len(log_ratio_x), dtype=np.int64)
    for start in range(0, len(log_ratio_x), rows):
        block_x = log_ratio_x[start:start + rows, None]
        for z_start in range(0, n_z, cols):
            difference = block_x - log_ratio_z[None, z_start:z_start + cols]
            counts[start:start + rows] += np.count_nonzero(difference >= log_gamma, axis=1)
    return counts / n_z


def rmia_scores(target_prob: np.ndarray, reference_prob: np.ndarray, membership: np.ndarray,
                *, online: bool = True, gamma: float = 1.0, a: float = 0.3,
                z_index: np.ndarray | None = None, method: str = "sorted",
                max_pairwise_bytes: int = DEFAULT_MAX_PAIRWISE_BYTES) -> np.ndarray:
    """RMIA membership scores (n,), higher = member.

    Parameters
    ----------
    target_prob : (n, q) float
        Pr(x|θ): the target's probability of the true class on each query.
    reference_prob : (m, n, q) float
        The same for m reference models.
    membership : (m, n) bool
    online : bool
        Whether Pr(x) averages all reference models (online) or only the "out" ones (offline,
        with the interpolation ``a``; see :func:`rmia_marginal`).
    gamma : float
        Threshold γ > 0 on the pairwise likelihood ratio.
    a : float
        Offline interpolation in [0, 1]; tune with :func:`tune_rmia_offline_a`.
    z_index : (k,) int, optional
        Which examples serve as population samples z (default: all n).
    method : {"sorted", "pairwise"}
        ``sorted`` counts by binary search in the sorted z ratios, O((n + k) log k) time and
        O(n + k) memory; ``pairwise`` compares every (x, z) pair literally, in blocks of at
        most ``max_pairwise_bytes``. Both give the same scores.
    max_pairwise_bytes : int
        Memory cap of one block of the pairwise comparison.

    Returns
    -------
    (n,) float in [0, 1]
        The fraction of z that x dominates, averaged over queries.
    """
    _check_choice("rmia", "method", method, ("sorted", "pairwise"))
    if not gamma > 0:
        raise InputError(f"rmia gamma must be > 0; got {gamma!r}")
    if not 0.0 <= a <= 1.0:
        raise InputError(f"rmia a must be in [0, 1]; got {a!r}")
    if max_pairwise_bytes < 1024:
        raise InputError(f"rmia max_pairwise_bytes must be >= 1024; got {max_pairwise_bytes!r}")
    log_ratio = _log_ratio(target_prob, rmia_marginal(reference_prob, membership,
                                                      online=online, a=a))
    z = np.arange(log_ratio.shape[0]) if z_index is None else np.asarray(z_index)
    if z.size == 0:
        raise InputError("rmia needs at least one population sample z; z_index is empty")
    log_gamma = float(np.log(gamma))
    fractions = np.empty_like(log_ratio)
    for query in range(log_ratio.shape[1]):
        x_ratio = np.ascontiguousarray(log_ratio[:, query])
        z_ratio = x_ratio[z]
        if method == "sorted":
            fractions[:, query] = _fraction_sorted(x_ratio, z_ratio, log_gamma)
        else:
            fractions[:, query] = _fraction_pairwise(x_ratio, z_ratio, log_gamma,
                                                     max_pairwise_bytes)
    return np.asarray(fractions.mean(axis=1))


def tune_rmia_offline_a(reference: Any, *, pseudo_target: int = 0,
                        grid: Sequence[float] = tuple(np.round(np.linspace(0, 1, 11), 2)),
                        gamma: float = 1.0, z_index: np.ndarray | None = None) -> float:
    """The offline ``a`` that attacks one reference model best, used as a pseudo-target.

    Reference model ``pseudo_target`` plays the target; the other models are its references.
    Each ``a`` in ``grid`` is scored by the AUC of offline RMIA against that model's known
    membership; ties go to the earlier ``a`` of ``grid``.

    Parameters
    ----------
    reference : ReferenceOutputs
        With at least two models; only query 0 is used unless all queries are wanted.
    pseudo_target : int
        Index of the model that plays the target.

    Returns
    -------
    float
        The best ``a`` of ``grid``.
    """
    return _tune_a(reference.true_class_prob, reference.membership, pseudo_target=pseudo_target,
                   grid=grid, gamma=gamma, z_index=z_index)


def _tune_a(reference_prob: np.ndarray, membership: np.ndarray, *, pseudo_target: int,
            grid: Sequence[float], gamma: float, z_index: np.ndarray | None) -> float:
    from memberscope.metrics import auc_from_roc, roc_curve

    n_models = reference_prob.shape[0]
    if n_models < 2:
        raise InputError(f"tuning rmia's a needs at least 2 reference models; got {n_models}")
    if not 0 <= pseudo_target < n_models:
        raise InputError(f"pseudo_target must be in [0, {n_models}); got {pseudo_target}")
    if len(grid) == 0:
        raise InputError("grid of candidate a values is empty")
    others = np.arange(n_models) != pseudo_target
    _check_counts((~membership).sum(axis=0)[:, None], "out", "offline rmia needs every example "
                  "out of at least one model: train more reference models")
    left_out = (~membership[others]).sum(axis=0) == 0
    if left_out.any():
        raise InputError(
            f"rmia: a='tune' lets reference model {pseudo_target} play the target, leaving "
            f"{n_models - 1} reference model(s); {int(left_out.sum())} example(s) (first at row "
            f"{int(np.argmax(left_out))}) are 'out' of model {pseudo_target} only, so without it "
            "they have no 'out' model. Tuning needs at least 4 reference models in "
            "complementary halves; train more, or give a fixed a (e.g. a=0.3)")
    truth = membership[pseudo_target]
    best_a, best_auc = float(grid[0]), -np.inf
    for a in grid:
        scores = rmia_scores(reference_prob[pseudo_target], reference_prob[others],
                             membership[others], online=False, gamma=gamma, a=float(a),
                             z_index=z_index)
        auc = auc_from_roc(roc_curve(scores, truth))
        logger.info("rmia offline a=%.2f: AUC %.4f on pseudo-target %d", a, auc, pseudo_target)
        if auc > best_auc:
            best_a, best_auc = float(a), auc
    return best_a


# --- the attacks as registered: options, target signals --------------------------------------


def _check_options(name: str, options: Mapping[str, Any], choices: Mapping[str, Any]) -> None:
    unknown = sorted(set(options) - set(choices))
    if unknown:
        raise InputError(f"{name}: unknown option(s) {unknown}; valid: {sorted(choices)}")
    for key, allowed in choices.items():
        if isinstance(allowed, tuple) and options.get(key) not in allowed:
            raise InputError(f"{name}: option {key!r} must be one of {list(allowed)}; "
                             f"got {options.get(key)!r}")


class _Aligned(NamedTuple):
    """Target and reference arrays on the same examples and queries."""

    target_signal: np.ndarray  # (n, q)
    target_prob: np.ndarray  # (n, q)
    reference_signal: np.ndarray  # (m, n, q)
    reference_prob: np.ndarray  # (m, n, q)
    membership: np.ndarray  # (m, n)


def check_aligned(outputs: ModelOutputs, reference: Any) -> None:
    """Raise :class:`InputError` unless ``reference`` is a ReferenceOutputs on the same
    examples as ``outputs``, in the same order (as far as their labels tell)."""
    for attribute in ("signal", "true_class_prob", "membership", "labels", "target_signal"):
        if not hasattr(reference, attribute):
            raise InputError("reference must be a memberscope.outputs.ReferenceOutputs; got "
                             f"{type(reference).__name__}")
    n_ref = reference.signal.shape[1]
    if n_ref != outputs.n:
        raise InputError(f"reference has {n_ref} examples but outputs has {outputs.n}; they "
                         "must be the same examples in the same order")
    if (reference.labels is not None and outputs.labels is not None
            and not np.array_equal(reference.labels, outputs.labels)):
        mismatch = int(np.argmax(reference.labels != outputs.labels))
        raise InputError(f"reference labels differ from the outputs' labels (first at row "
                         f"{mismatch}); the examples must be in the same order")


def _aligned(outputs: ModelOutputs, reference: Any) -> _Aligned:
    """The target's signals (n, q) and the references restricted to the same queries."""
    check_aligned(outputs, reference)
    if reference.target_signal is not None:
        return _Aligned(reference.target_signal, reference.target_true_class_prob,
                        reference.signal, reference.true_class_prob, reference.membership)
    if outputs.has_distribution:
        signal = signals.logit_scaled_confidence(outputs.known_labels, logits=outputs.logits,
                                                 probs=outputs.probs)
    else:  # p_y = exp(-loss): log(p / (1 - p)) = -loss - log(1 - exp(-loss))
        loss = np.maximum(outputs.loss_values, _TINY)
        signal = -loss - np.log(-np.expm1(-loss))
    prob = np.exp(-outputs.loss_values)
    if reference.signal.shape[2] > 1:
        logger.info("the target has one query: using query 0 of the %d reference queries",
                    reference.signal.shape[2])
    return _Aligned(signal[:, None], prob[:, None], reference.signal[:, :, :1],
                    reference.true_class_prob[:, :, :1], reference.membership)


LIRA_DEFAULTS = {"online": True, "variance": "global", "center": "mean", "min_std": 1e-3}
RMIA_DEFAULTS = {"online": True, "gamma": 1.0, "a": 0.3, "z": "all", "z_seed": 0,
                 "method": "sorted", "max_pairwise_bytes": DEFAULT_MAX_PAIRWISE_BYTES}
# With reference models trained on complementary halves (``memberscope reference train``).
LIRA_MINIMUM = ("online: 2 models (1 'in' + 1 'out' per example), 4 to estimate a variance "
                "(2 + 2); offline: 2 (1 'out' per example), 4 for a variance (2 'out')")
RMIA_MINIMUM = ("online: 1 model; offline: 2 (1 'out' per example); offline with a='tune': 4 "
                "(one model plays the target, the rest still need 1 'out' per example)")


def check_lira_options(options: Mapping[str, Any]) -> None:
    """LiRA's options (merged over the defaults), before any work."""
    _check_options("lira", options, {**LIRA_DEFAULTS, "online": (True, False),
                                     "variance": ("per_example", "global"),
                                     "center": ("mean", "median")})
    check_number_option("lira", options, "min_std", above=0.0)


def check_rmia_options(options: Mapping[str, Any]) -> None:
    """RMIA's options (merged over the defaults), before any work; ``z`` is checked against
    the number of examples when the attack runs."""
    _check_options("rmia", options, {**RMIA_DEFAULTS, "online": (True, False),
                                     "method": ("sorted", "pairwise")})
    check_number_option("rmia", options, "gamma", above=0.0)
    a = options["a"]
    if a != "tune" and (isinstance(a, bool) or not isinstance(a, int | float | np.number)
                        or not 0 <= a <= 1):
        raise InputError(f"rmia: option 'a' must be in [0, 1] or 'tune'; got {a!r}")
    check_number_option("rmia", options, "max_pairwise_bytes", at_least=1024)


def lira_signal(outputs: ModelOutputs, reference: Any, options: Mapping[str, Any]) -> np.ndarray:
    """LiRA scores (n,) of the target in ``outputs`` against ``reference``."""
    check_lira_options(options)
    arrays = _aligned(outputs, reference)
    return lira_scores(arrays.target_signal, arrays.reference_signal, arrays.membership,
                       online=bool(options["online"]), variance=str(options["variance"]),
                       center=str(options["center"]), min_std=float(options["min_std"]))


def _population_index(option: Any, n: int, seed: int) -> np.ndarray | None:
    """``z`` option: "all", a count k (a seeded random sample), or explicit indices."""
    if isinstance(option, str):
        if option != "all":
            raise InputError(f"rmia: option 'z' must be 'all', a count or indices; got {option!r}")
        return None
    if np.ndim(option) == 0:
        k = int(option)
        if not 1 <= k <= n:
            raise InputError(f"rmia: option 'z' as a count must be in [1, {n}]; got {k}")
        return np.sort(np.random.default_rng(seed).choice(n, k, replace=False))
    index = np.asarray(option)
    if not np.issubdtype(index.dtype, np.integer) or index.ndim != 1 or index.size == 0 or (
            index.min() < 0 or index.max() >= n):
        raise InputError(f"rmia: option 'z' as indices must be a non-empty 1-d int array in "
                         f"[0, {n})")
    return index


def rmia_signal(outputs: ModelOutputs, reference: Any, options: Mapping[str, Any]) -> np.ndarray:
    """RMIA scores (n,) of the target in ``outputs`` against ``reference``.

    Option ``a="tune"`` picks the offline ``a`` with :func:`tune_rmia_offline_a`.
    """
    check_rmia_options(options)
    arrays = _aligned(outputs, reference)
    z_index = _population_index(options["z"], outputs.n, int(options["z_seed"]))
    a = options["a"]
    if a == "tune" and options["online"]:
        a = RMIA_DEFAULTS["a"]  # online RMIA does not use a: nothing to tune
    if a == "tune":
        a = _tune_a(arrays.reference_prob, arrays.membership, pseudo_target=0,
                    grid=tuple(np.round(np.linspace(0, 1, 11), 2)),
                    gamma=float(options["gamma"]), z_index=z_index)
        logger.info("rmia: tuned offline a = %.2f", a)
    return rmia_scores(arrays.target_prob, arrays.reference_prob, arrays.membership,
                       online=bool(options["online"]), gamma=float(options["gamma"]),
                       a=float(a), z_index=z_index, method=str(options["method"]),
                       max_pairwise_bytes=int(options["max_pairwise_bytes"]))


REFERENCE_ATTACKS = (
    Attack("lira", "likelihood-ratio attack with reference models (Carlini et al. 2022)",
           "logits/probs or loss", lira_signal, needs_reference=True,
           defaults=LIRA_DEFAULTS, check_options=check_lira_options,
           reference_models=LIRA_MINIMUM),
    Attack("rmia", "relative membership inference with reference models (Zarifzadeh et al. "
           "2024)", "logits/probs or loss", rmia_signal,
           needs_reference=True, defaults=RMIA_DEFAULTS, check_options=check_rmia_options,
           reference_models=RMIA_MINIMUM),
)
