"""ε lower bounds of (ε, δ)-DP from one training run with canaries.

Each of m canaries is included in training independently with probability ½; after training an
attack scores every canary (higher = more likely included). Guessing the k highest-scored
canaries as included and counting the correct guesses C gives a statistical test of a privacy
claim about training; the largest ε whose claim the test rejects at level α is a (1−α) lower
bound. What the bound holds for depends on the claim tested (``method``):

Valid for every (ε, δ)-DP mechanism (the claim tested is "training is (ε, δ)-DP"):

- ``"approx_dp"`` (default) — the smaller of two upper bounds on P[C ≥ c] under (ε, δ)-DP:
  Steinke's (below) and the f-DP one-run analysis of Mahloujifar, Melis & Chaudhuri (2025)
  applied to the trade-off curve of (ε, δ)-DP itself, f_{ε,δ}(x) = max(0, 1 − δ − e^ε x,
  e^{−ε}(1 − δ − x)) (a mechanism is (ε, δ)-DP exactly when it is f_{ε,δ}-DP: Wasserman & Zhou 2010;
  Dong, Roth & Su 2022, §2). Both bound the tail of the *same* count C, so their minimum bounds it
  too and its rejection region {C ≥ c*} is the larger of two nested upper sets: one test at
  level α, not two, and no correction is due. Neither analysis dominates: at δ = 0 Steinke's
  tail is exact for randomised response and the f-DP recursion is up to ~1% looser in ε; where
  δ matters (few guesses, 2mδ not ≪ α) the recursion is tighter, as its δ enters through the
  curve instead of Steinke's 2mδ·max term (benchmarks/one_run_validity.py measures both).
- ``"steinke"`` — Steinke, Nasr & Jagielski (2023), "Privacy auditing with one (1) training
  run", Theorem 5.2: under (ε, δ)-DP, P[C ≥ c] ≤ P[Bin(k, q) ≥ c] + 2mδ · max_{1≤i≤c}
  P[c−i ≤ Bin(k, q) < c] / i, with q = e^ε / (1 + e^ε), the accuracy of ε-randomised response.

Valid only if training's trade-off curve is Gaussian (the claim tested is "training is μ-GDP",
the accountant's model of DP-SGD; the ε reported is that of μ-GDP at δ, Dong, Roth & Su,
Corollary 2.13). On other mechanisms, e.g. Laplace or randomised response, these exceed the true
ε in most runs; they answer "is training at least as private as a Gaussian mechanism with this
(ε, δ)?", which is stronger on DP-SGD:

- ``"gaussian_fdp"`` — the same guessing game and f-DP recursion against the Gaussian curve
  G_μ(x) = Φ(Φ⁻¹(1−x) − μ); the largest μ rejected is converted to ε.
- ``"gaussian_auc"`` — no guesses: the continuous scores (the Gaussian view of one-run
  auditing, Agrawal et al. 2026, "Let's Ask Gauss"), through the area under the ROC curve
  (:func:`gaussian_auc_mu`, which states when it is a bound and when an estimate).

Choosing k: with ``n_guesses=None`` each k of a fixed grid (:func:`guess_grid`, fractions
1%, 2%, 5%, 10%, 20%, 50% of m) is tested at level α / (grid size) and the largest bound is kept;
by the union bound the result still holds with probability ≥ 1−α. Picking the best k without that
correction is not valid (positive in about 20% of no-signal runs when measured).

Records written before these names existed used ``"fdp"`` for ``"gaussian_fdp"`` and
``"gaussian"`` for ``"gaussian_auc"``; :func:`method_assumption` still labels them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

from memberscope._validation import as_bool_array, as_float_array, check_probability
from memberscope.errors import InputError, UnknownNameError

DEFAULT_METHOD = "approx_dp"
METHODS = ("approx_dp", "steinke", "gaussian_fdp")
"""The binary-guess methods (what training's ``epsilon_audit`` records)."""
ALL_METHODS = (*METHODS, "gaussian_auc")
GAUSSIAN_ASSUMPTION = "Gaussian trade-off curve (mu-GDP)"
"""What ``"gaussian_fdp"`` and ``"gaussian_auc"`` assume of training (ASCII: it is stored)."""
_GAUSSIAN_METHODS = ("gaussian_fdp", "gaussian_auc")
RENAMED_METHODS = {"fdp": "gaussian_fdp", "gaussian": "gaussian_auc"}
"""Names that older records (and versions) used for the Gaussian-assumption methods."""
MIN_CANARIES = 10
GUESS_FRACTIONS: tuple[float, ...] = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5)
_XTOL = 1e-7
_STANDARD_NORMAL = NormalDist()


@dataclass(frozen=True)
class OneRunEpsilon:
    """The (1−α) lower bound on ε of one run, with the guess it came from.

    ``epsilon`` ≥ 0 is the bound; ``n_guesses`` canaries scored at least ``threshold`` were
    guessed included, ``n_correct`` of them were. ``candidates`` are the numbers of guesses
    tried (one value when ``n_guesses`` was given; the Bonferroni divisor otherwise). ``mu`` is
    the Gaussian-DP lower bound behind ``epsilon`` for ``method="gaussian_fdp"`` or
    ``"gaussian_auc"`` and None otherwise. ``method="gaussian_auc"`` makes no guesses:
    ``n_guesses = n_correct = 0``, ``threshold = 0``, ``candidates = ()``, and ``auc`` is the
    canaries' empirical AUC (included vs excluded scores), ``auc_lower`` its (1−α) lower
    confidence bound. ``assumption`` (:func:`method_assumption`) is None when the bound holds
    for every (ε, δ)-DP mechanism.
    """

    epsilon: float
    method: str
    m: int
    n_guesses: int
    n_correct: int
    threshold: float
    alpha: float
    delta: float
    candidates: tuple[int, ...]
    mu: float | None = None
    auc: float | None = None
    auc_lower: float | None = None

    def __post_init__(self) -> None:
        if not (self.epsilon >= 0 and 0 <= self.n_correct <= self.n_guesses <= self.m):
            raise InputError(
                f"inconsistent one-run bound: epsilon={self.epsilon}, n_correct={self.n_correct},"
                f" n_guesses={self.n_guesses}, m={self.m}"
            )

    @property
    def assumption(self) -> str | None:
        """What the bound assumes of training beyond (ε, δ)-DP: None, or the Gaussian curve."""
        return method_assumption(self.method)

    def to_dict(self) -> dict[str, object]:
        """Plain JSON-ready fields."""
        return {"epsilon": self.epsilon, "method": self.method, "assumption": self.assumption,
                "m": self.m,
                "n_guesses": self.n_guesses, "n_correct": self.n_correct,
                "threshold": self.threshold, "alpha": self.alpha, "delta": self.delta,
                "candidates": list(self.candidates), "mu": self.mu, "auc": self.auc,
                "auc_lower": self.auc_lower}


def epsilon_one_run(scores: object, included: object, *, delta: float, alpha: float = 0.05,
                    method: str = DEFAULT_METHOD,
                    n_guesses: int | None = None) -> OneRunEpsilon:
    """(1−α) lower bound on ε of (ε, δ)-DP from canary scores (m,) of one training run.

    Parameters
    ----------
    scores : (m,) float
        Attack score of each canary; higher = more likely included in training.
    included : (m,) bool
        Whether each canary was included; each must have been included independently with
        probability ½, whatever the scores.
    delta : float in (0, 1)
        The δ of the (ε, δ)-DP claim tested (use the accountant's δ).
    alpha : float in (0, 1)
        The bound holds with probability ≥ 1 − ``alpha``.
    method : {"approx_dp", "steinke", "gaussian_fdp", "gaussian_auc"}
        The test (module docstring). ``"approx_dp"`` (default) and ``"steinke"`` hold for every
        (ε, δ)-DP mechanism; ``"gaussian_fdp"`` and ``"gaussian_auc"`` only if training's
        trade-off curve is Gaussian (μ-GDP, as the accountant models DP-SGD).
        ``"gaussian_auc"`` uses the scores themselves, not guesses (:func:`gaussian_auc_mu`).
    n_guesses : int in [1, m], optional
        Guess the ``n_guesses`` highest-scored canaries (ties broken by lower index). None: try a
        fixed grid of guess counts with a Bonferroni correction and keep the best. Must be None
        for ``method="gaussian_auc"``.

    >>> import numpy as np
    >>> included = np.arange(1000) % 2 == 0
    >>> result = epsilon_one_run(included * 10.0, included, delta=1e-5, n_guesses=100)
    >>> (result.n_correct, round(result.epsilon, 2), result.assumption)
    (100, 3.49, None)
    """
    score_array, included_array = _check_canaries(scores, included)
    delta = check_probability("delta", delta)
    alpha = check_probability("alpha", alpha)
    _check_method(method)
    m = len(score_array)
    if method == "gaussian_auc":
        if n_guesses is not None:
            raise InputError(f'n_guesses must be None for method="gaussian_auc" (it makes no '
                             f"guesses); got {n_guesses!r}")
        return _gaussian_auc_bound(score_array, included_array, alpha=alpha, delta=delta)
    candidates = guess_grid(m) if n_guesses is None else (_check_n_guesses(n_guesses, m),)
    order = np.argsort(-score_array, kind="stable")
    correct_so_far = np.cumsum(included_array[order])
    counts = [(k, int(correct_so_far[k - 1])) for k in candidates]
    epsilon, k, c, mu = best_of_counts(m, counts, delta=delta, alpha=alpha, method=method)
    return OneRunEpsilon(epsilon, method, m, k, c, float(score_array[order[k - 1]]), alpha,
                         delta, candidates, mu)


def guess_counts(scores: object, included: object) -> list[tuple[int, int]]:
    """(k, correct) for each k of :func:`guess_grid`: how many of the k highest-scored canaries
    (ties broken by lower index) were included — all a binary-guess bound needs."""
    score_array, included_array = _check_canaries(scores, included)
    correct_so_far = np.cumsum(included_array[np.argsort(-score_array, kind="stable")])
    return [(k, int(correct_so_far[k - 1])) for k in guess_grid(len(score_array))]


def best_of_counts(m: int, counts: Sequence[tuple[int, int]], *, delta: float, alpha: float,
                   method: str) -> tuple[float, int, int, float | None]:
    """The largest binary-guess bound over ``counts`` [(k, correct), …] of m canaries, each k
    tested at level α / len(counts) (Bonferroni): (ε, its k, its correct count, μ or None)."""
    if method not in METHODS:
        raise UnknownNameError("method", str(method), METHODS)
    level = alpha / len(counts)
    best: tuple[float, int, int, float | None] | None = None
    for k, c in counts:
        # Only a bound above the best so far matters: each search starts there.
        above = best[0] if best else 0.0
        mu = None
        if method == "approx_dp":
            epsilon = approx_dp_epsilon(m, k, c, alpha=level, delta=delta, above=above)
        elif method == "steinke":
            epsilon = steinke_epsilon(m, k, c, alpha=level, delta=delta, above=above)
        else:
            mu = gaussian_fdp_mu(m, k, c, alpha=level,
                                 above=(best[3] or 0.0) if best else 0.0)
            epsilon = gdp_epsilon(mu, delta)
        if best is None or epsilon > best[0]:
            best = (epsilon, k, c, mu)
    if best is None:
        raise InputError("counts must hold at least one (k, correct) pair; got none")
    return best


def method_assumption(method: str) -> str | None:
    """What a one-run ``method`` assumes of training beyond (ε, δ)-DP: None when its bound
    holds for every (ε, δ)-DP mechanism, else :data:`GAUSSIAN_ASSUMPTION`. Knows the names
    of older records (:data:`RENAMED_METHODS`)."""
    name = RENAMED_METHODS.get(method, method)
    if name not in ALL_METHODS:
        raise UnknownNameError("method", str(method), ALL_METHODS)
    return GAUSSIAN_ASSUMPTION if name in _GAUSSIAN_METHODS else None


def _check_method(method: object) -> None:
    if method in RENAMED_METHODS:
        raise InputError(
            f"method {method!r} is now {RENAMED_METHODS[str(method)]!r}: it bounds μ of μ-GDP and "
            f"converts, so it holds only if training's trade-off curve is Gaussian; the default "
            f"{DEFAULT_METHOD!r} holds for every (ε, δ)-DP mechanism")
    if method not in ALL_METHODS:
        raise UnknownNameError("method", str(method), ALL_METHODS)


def guess_grid(m: int) -> tuple[int, ...]:
    """The fixed numbers of guesses tried for m canaries: 1%, 2%, 5%, 10%, 20%, 50% of m."""
    return tuple(sorted({max(1, round(m * fraction)) for fraction in GUESS_FRACTIONS}))


# --- the record a DP run keeps: row metadata ``epsilon_audit`` -----------------------------

CANARY_SOURCES = ("white_box", "black_box")
"""Where a run's canaries come from: gradient-space (white-box) or input-space (black-box)."""


@dataclass(frozen=True)
class CanaryBounds:
    """One method's one-run ε bounds of a run's canaries, read from a row's ``epsilon_audit``.

    ``method`` is the name the record used (older records: ``"fdp"``); ``assumption`` what it
    assumes of training (None: valid for every (ε, δ)-DP mechanism); ``white_box`` and
    ``black_box`` the (1 − ``alpha``) bounds from each canary source, None where the run had
    none.
    """

    method: str
    assumption: str | None
    white_box: float | None
    black_box: float | None
    alpha: float | None = None

    def sources(self) -> tuple[str, ...]:
        """The canary sources this method has a bound from."""
        return tuple(kind for kind in CANARY_SOURCES if getattr(self, kind) is not None)


def epsilon_audit_record(sources: Mapping[str, tuple[np.ndarray, np.ndarray]], *,
                         delta: float, alpha: float = 0.05) -> dict[str, Any]:
    """The ``epsilon_audit`` record of a DP result row from each source's canaries.

    ``sources`` maps each of :data:`CANARY_SOURCES` present to its (scores (m,), included (m,)).
    The record's ``white_box`` / ``black_box`` are the default, assumption-free method's bounds
    (``method``, ``assumption`` = None); ``by_method`` holds every binary-guess method's bounds,
    guesses and assumption — the Gaussian-assumption ``"gaussian_fdp"`` among them; ``guesses``
    holds each source's (k, correct) on the whole guess grid (:func:`guess_counts`), from which
    :func:`recorded_bounds` recomputes every bound at another level.
    """
    unknown = set(sources) - set(CANARY_SOURCES)
    if unknown:
        raise UnknownNameError("canary source", sorted(unknown)[0], CANARY_SOURCES)
    guesses = {kind: guess_counts(scores, included)
               for kind, (scores, included) in sources.items()}
    sizes = {kind: len(included) for kind, (_, included) in sources.items()}
    by_method: dict[str, dict[str, Any]] = {}
    for name in METHODS:
        entry: dict[str, Any] = {"assumption": method_assumption(name)}
        for kind, counts in guesses.items():
            epsilon, k, c, _ = best_of_counts(sizes[kind], counts, delta=delta, alpha=alpha,
                                              method=name)
            entry[kind] = epsilon
            entry[f"{kind}_guesses"] = [k, c]
        by_method[name] = entry
    headline = by_method[DEFAULT_METHOD]
    return {"white_box": headline.get("white_box"), "black_box": headline.get("black_box"),
            "method": DEFAULT_METHOD, "assumption": None,
            "m": next(iter(sizes.values())) if sizes else 0, "alpha": alpha, "delta": delta,
            "by_method": by_method,
            "guesses": {kind: [list(pair) for pair in counts] for kind, counts in guesses.items()},
            "sizes": sizes}


def recorded_bounds(record: Mapping[str, Any],
                    alpha: float | None = None) -> tuple[CanaryBounds, ...]:
    """Every method's bounds in an ``epsilon_audit`` record, its headline method first.

    With ``alpha``, each bound is recomputed at that level from the record's ``guesses``
    (e.g. α/s for a statement that combines s bounds); a record without them (written before
    they were kept) gives its bounds at the level they were recorded at, which ``alpha`` of
    each result says. Records written before the methods were renamed carry ``"fdp"`` (the
    Gaussian-assumption f-DP bound) as their headline and ``"steinke"`` beside it; each is
    labelled by what it was. A method whose name this version does not know is left out.
    """
    by_method = record.get("by_method")
    by_method = by_method if isinstance(by_method, Mapping) else {}
    headline = record.get("method")
    names = [headline] if isinstance(headline, str) else []
    names += [name for name in by_method if name not in names]
    recorded_alpha = _finite_or_none(record.get("alpha"))
    out = []
    for name in names:
        if RENAMED_METHODS.get(name, name) not in ALL_METHODS:
            continue
        entry = by_method.get(name)
        if not isinstance(entry, Mapping):  # the headline's numbers are also at the top
            entry = record if name == headline else {}
        bounds = CanaryBounds(name, method_assumption(name), _finite_or_none(
            entry.get("white_box")), _finite_or_none(entry.get("black_box")), recorded_alpha)
        if alpha is not None and name in METHODS and isinstance(record.get("guesses"), Mapping):
            bounds = _recomputed(bounds, record, alpha)
        out.append(bounds)
    return tuple(out)


def _recomputed(bounds: CanaryBounds, record: Mapping[str, Any], alpha: float) -> CanaryBounds:
    """``bounds`` recomputed at ``alpha`` from the record's grid counts."""
    delta = float(record["delta"])
    values: dict[str, float | None] = {}
    for kind in CANARY_SOURCES:
        counts = record["guesses"].get(kind)
        values[kind] = None if not counts else best_of_counts(
            int(record.get("sizes", {}).get(kind, record["m"])),
            [(int(k), int(c)) for k, c in counts], delta=delta, alpha=alpha,
            method=bounds.method)[0]
    return CanaryBounds(bounds.method, bounds.assumption, values["white_box"],
                        values["black_box"], alpha)


def _finite_or_none(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


# --- Steinke, Nasr & Jagielski ------------------------------------------------------------


def steinke_p_value(m: int, k: int, c: int, epsilon: float, delta: float) -> float:
    """P-value of ≥ c correct out of k guesses among m canaries under (ε, δ)-DP (Theorem 5.2)."""
    # scipy.special's binomial tails, not scipy.stats': the same values at a tenth of the cost
    # (the searches call this a few hundred times per bound).
    from scipy import special

    q = special.expit(epsilon)
    if c == 0:
        return 1.0
    tail = float(special.bdtrc(c - 1, k, q))
    if delta == 0:
        return tail
    below = special.bdtr(c - 1, k, q)
    i = np.arange(1, c + 1)
    # P[c−i ≤ Bin(k, q) < c] for i = 1..c (P[Bin < 0] = 0, which bdtr leaves undefined)
    lower = np.where(i < c, special.bdtr(np.maximum(c - 1 - i, 0), k, q), 0.0)
    return min(1.0, tail + 2 * m * delta * float(np.max((below - lower) / i)))


def steinke_epsilon(m: int, k: int, c: int, *, alpha: float, delta: float,
                    above: float = 0.0) -> float:
    """Largest ε whose (ε, δ)-DP claim the Steinke test rejects at level α (0 if none); only
    ε > ``above`` is searched (``above`` when none of them is rejected)."""
    def margin(epsilon: float) -> float:
        return alpha - steinke_p_value(m, k, c, epsilon, delta)

    return _largest_rejected(margin, low=above)


# --- Mahloujifar, Melis & Chaudhuri: the f-DP recursion, for any trade-off curve -----------


def tradeoff_rejects(m: int, k: int, c: int, least_wrong: Callable[[float], float], *,
                     alpha: float) -> bool:
    """Whether ≥ c correct of k guesses among m canaries rejects f-DP at level α.

    ``least_wrong(r)`` = f(1 − r) is the least probability an event can have under one of two
    neighbouring inputs when it has probability r under the other (f symmetric). The paper's
    recursion: r and h bound the (scaled) probability mass of correct and wrong guesses. Going
    from c correct guesses down to 0, the wrong mass must be at least what the trade-off curve
    allows for the correct mass, h ≥ least_wrong(r), and each increase of h feeds r by i/(k−i)
    of it. If the two masses together exceed k/m, the claim is rejected.
    """
    if c == 0:
        return False
    correct = alpha * c / m
    wrong = alpha * (k - c) / m
    for i in range(c - 1, -1, -1):
        least = least_wrong(correct)
        if least <= wrong:
            break  # neither mass changes again
        correct = min(1.0, correct + i / (k - i) * (least - wrong))
        wrong = least
    return correct + wrong > k / m


def approx_dp_least_wrong(correct: float, epsilon: float, delta: float) -> float:
    """f_{ε,δ}(1 − r) = max(0, e^{−ε}(r − δ), 1 − δ − e^ε(1 − r)) for r = ``correct``: the
    least probability (ε, δ)-DP allows an event under one input when it has r under the other."""
    if correct >= 1.0:
        return 1.0
    return max(0.0, math.exp(-epsilon) * (correct - delta),
               1.0 - delta - math.exp(epsilon) * (1.0 - correct))


def tradeoff_epsilon(m: int, k: int, c: int, *, alpha: float, delta: float,
                     above: float = 0.0) -> float:
    """Largest ε whose (ε, δ)-DP claim the f-DP recursion on f_{ε,δ} rejects at level α (0 if
    none); only ε > ``above`` is searched (``above`` when none of them is rejected)."""
    def margin(epsilon: float) -> float:
        rejected = tradeoff_rejects(
            m, k, c, lambda r: approx_dp_least_wrong(r, epsilon, delta), alpha=alpha)
        return 1.0 if rejected else -1.0

    return _largest_rejected(margin, low=above)


def approx_dp_epsilon(m: int, k: int, c: int, *, alpha: float, delta: float,
                      above: float = 0.0) -> float:
    """Largest ε whose (ε, δ)-DP claim the ``"approx_dp"`` test rejects at level α (0 if none):
    the larger of :func:`steinke_epsilon` and :func:`tradeoff_epsilon` (module docstring: both
    bound the tail of the same count, so rejecting when either does is one level-α test); only
    ε > ``above`` is searched (``above`` when none of them is rejected)."""
    steinke = steinke_epsilon(m, k, c, alpha=alpha, delta=delta, above=above)
    return tradeoff_epsilon(m, k, c, alpha=alpha, delta=delta, above=steinke)


# --- the same recursion on the Gaussian trade-off curve ------------------------------------


def gaussian_fdp_mu(m: int, k: int, c: int, *, alpha: float, above: float = 0.0) -> float:
    """Largest μ whose μ-GDP claim the f-DP recursion rejects at level α (0 if none); only
    μ > ``above`` is searched (``above`` when none of them is rejected)."""
    def margin(mu: float) -> float:
        rejected = tradeoff_rejects(m, k, c, lambda r: _gaussian_least_wrong(r, mu), alpha=alpha)
        return 1.0 if rejected else -1.0

    return _largest_rejected(margin, low=above)


def gdp_epsilon(mu: float, delta: float) -> float:
    """ε at δ of μ-Gaussian DP: the ε solving Φ(−ε/μ + μ/2) − e^ε Φ(−ε/μ − μ/2) = δ."""
    if mu <= 0:
        return 0.0

    def excess_delta(epsilon: float) -> float:
        return _gdp_delta(mu, epsilon) - delta

    if excess_delta(0.0) <= 0:
        return 0.0
    from scipy import optimize

    high = max(1.0, mu * mu)
    while excess_delta(high) > 0:
        high *= 2
    return float(optimize.brentq(excess_delta, 0.0, high, xtol=_XTOL))


def _gdp_delta(mu: float, epsilon: float) -> float:
    from scipy import special

    first = special.ndtr(-epsilon / mu + mu / 2)
    second = math.exp(epsilon + special.log_ndtr(-epsilon / mu - mu / 2))
    return float(first - second)


def _gaussian_least_wrong(correct: float, mu: float) -> float:
    """Least type-I mass Φ(Φ⁻¹(r) − μ) of a test of N(0,1) vs N(μ,1) with power r."""
    if correct >= 1.0:
        return 1.0
    return _STANDARD_NORMAL.cdf(_STANDARD_NORMAL.inv_cdf(correct) - mu)


# --- the Gaussian view: continuous scores through the AUC ----------------------------------


def gaussian_auc_mu(scores: object, included: object, *,
                    alpha: float) -> tuple[float, float, float]:
    """(1−α) lower bound on the μ of μ-GDP from continuous canary scores: (μ, AUC, AUC bound).

    Why the AUC. If training is μ-GDP, every pair of output distributions differing in one
    canary has trade-off curve ≥ G_μ, and so does any score computed from the output (post-
    processing), and so does the mixture over the other canaries' random inclusion (joint
    convexity of the hockey-stick divergences that define G_μ). A score's ROC curve is
    1 − (its trade-off curve), so its AUC — P[score included > score excluded], ties ½ — is at
    most 1 − ∫₀¹ G_μ(x) dx = Φ(μ/√2): μ ≥ √2 Φ⁻¹(AUC). This needs no Gaussian scores: any
    score distribution, any shape, only the GDP claim being tested.

    The statistics. The AUC is estimated by the Mann–Whitney statistic Â over the canaries
    (included vs excluded) and bounded below by the Wilson-type interval built on the
    distribution-free variance bound Var Â ≤ A(1−A)/min(n₁, n₀) (van Dantzig 1951; Birnbaum &
    Klose 1957) at the one-sided normal quantile z₁₋α: the smallest A with
    (Â − A)² ≤ z² A(1−A)/min(n₁, n₀), A ≤ Â.

    When it is a bound, and when an estimate. With no signal (scores independent of the
    inclusion bits, however the scores depend on each other) the fair coins are independent of
    the scores, the null is the permutation null, whose variance (n+1)/(12 n₁n₀) is below the
    bound used: valid up to the normal approximation (measured: positive in 6 of 200 runs at
    α = 5%). With signal the variance bound assumes the canaries' scores are exchangeable and
    independent given their inclusion — exact for idealised canaries (each its own coordinate
    and noise), only approximate for canaries in real training, whose scores are coupled
    through the model; there it is an estimate with a confidence margin, checked against the
    accountant in benchmarks/one_run_canaries.py, not a proven bound. (Canaries that differ by
    a fixed offset only lower the pooled AUC: Φ(x+d) + Φ(x−d) ≤ 2Φ(x) for x ≥ 0.) Unlike the
    binary-guess tests, it relies on the normal approximation of Â (m ≥ a few hundred
    advised), and being tight it misses as often as α allows: at ε ≈ 1 (m = 1,000) it exceeded
    the accountant's ε in 0.75% of idealised runs and in 1 of 5 real trainings.

    Like ``method="gaussian_fdp"``, a positive result refutes "training is μ-GDP" (at least as
    private as a Gaussian mechanism with that ε at δ), the accountant's model of DP-SGD; the AUC
    refutes a general (ε, δ)-DP claim only far more weakly (its largest AUC is near 1).

    Returns
    -------
    mu : float ≥ 0
        √2 Φ⁻¹(AUC lower bound), 0 when that bound is ≤ ½.
    auc : float in [0, 1]
        The empirical AUC Â (½ when all canaries are on one side).
    auc_lower : float in [0, 1]
        Its (1−α) lower confidence bound.
    """
    score_array, included_array = _check_canaries(scores, included)
    alpha = check_probability("alpha", alpha)
    n_in = int(included_array.sum())
    n_out = len(included_array) - n_in
    if n_in == 0 or n_out == 0:
        return 0.0, 0.5, 0.0
    auc = rank_auc(score_array, included_array)
    auc_lower = wilson_auc_lower(auc, min(n_in, n_out), alpha)
    mu = math.sqrt(2) * _STANDARD_NORMAL.inv_cdf(auc_lower) if auc_lower > 0.5 else 0.0
    return mu, auc, auc_lower


def rank_auc(scores: np.ndarray, included: np.ndarray) -> float:
    """Mann–Whitney AUC of included (m₁,) vs excluded scores, ties counted ½; needs both."""
    from scipy import stats

    ranks = stats.rankdata(scores)
    n_in = int(included.sum())
    n_out = len(included) - n_in
    rank_sum = float(ranks[included].sum())
    return (rank_sum - n_in * (n_in + 1) / 2) / (n_in * n_out)


def wilson_auc_lower(auc: float, n_min: int, alpha: float) -> float:
    """Smallest A ≤ ``auc`` with (auc − A)² ≤ z²·A(1−A)/n_min, z the (1−α) normal quantile."""
    t = _STANDARD_NORMAL.inv_cdf(1 - alpha) ** 2 / n_min
    centre = 2 * auc + t
    root = math.sqrt(max(0.0, centre * centre - 4 * (1 + t) * auc * auc))
    return max(0.0, (centre - root) / (2 * (1 + t)))


def _gaussian_auc_bound(scores: np.ndarray, included: np.ndarray, *, alpha: float,
                        delta: float) -> OneRunEpsilon:
    mu, auc, auc_lower = gaussian_auc_mu(scores, included, alpha=alpha)
    return OneRunEpsilon(gdp_epsilon(mu, delta), "gaussian_auc", len(scores), 0, 0, 0.0, alpha,
                         delta, (), mu, auc, auc_lower)


# --- helpers ------------------------------------------------------------------------------


def _largest_rejected(margin: Callable[[float], float], low: float = 0.0) -> float:
    """Largest x ≥ ``low`` with margin(x) > 0, for a margin that decreases in x; ``low`` if
    margin(low) ≤ 0."""
    if margin(low) <= 0:
        return low
    high = max(1.0, 2 * low)
    while margin(high) > 0:
        low, high = high, 2 * high
    while high - low > _XTOL * max(1.0, high):
        middle = (low + high) / 2
        if margin(middle) > 0:
            low = middle
        else:
            high = middle
    return low


def _check_canaries(scores: object, included: object) -> tuple[np.ndarray, np.ndarray]:
    score_array = as_float_array("scores", scores, 1)
    included_array = as_bool_array("included", included)
    if len(score_array) != len(included_array):
        raise InputError(
            f"scores has {len(score_array)} canaries but included has {len(included_array)}"
        )
    if len(score_array) < MIN_CANARIES:
        raise InputError(
            f"scores must hold at least {MIN_CANARIES} canaries; got {len(score_array)}"
        )
    return score_array, included_array


def _check_n_guesses(n_guesses: object, m: int) -> int:
    if isinstance(n_guesses, bool) or not isinstance(n_guesses, int | np.integer):
        raise InputError(f"n_guesses must be an integer in [1, {m}] or None; got {n_guesses!r}")
    if not 1 <= n_guesses <= m:
        raise InputError(f"n_guesses must be in [1, {m}] (the number of canaries); "
                         f"got {n_guesses}")
    return int(n_guesses)
