"""ε lower bounds of (ε, δ)-DP from one training run with canaries.

Each of m canaries is included in training independently with probability ½; after training an
attack scores every canary (higher = more likely included). Guessing the k highest-scored
canaries as included and counting the correct guesses c gives a statistical test of the claim
"training is (ε, δ)-DP"; the largest ε the test rejects at level α is a (1−α) lower bound.

Two tests of that claim (``method``):

- ``"steinke"`` — Steinke, Nasr & Jagielski (2023), "Privacy auditing with one (1) training
  run", Theorem 5.2: under (ε, δ)-DP, P[C ≥ c] ≤ P[Bin(k, q) ≥ c] + 2mδ · max_{1≤i≤c}
  P[c−i ≤ Bin(k, q) < c] / i, with q = e^ε / (1 + e^ε), the accuracy of ε-randomised response.
- ``"fdp"`` — Mahloujifar, Melis & Chaudhuri (2025), "Auditing f-differential privacy in one
  run": the same experiment tested against a trade-off curve f. We test the Gaussian curve
  G_μ(x) = Φ(Φ⁻¹(1−x) − μ), find the largest μ the test rejects, and report the ε of μ-GDP at δ
  (Dong, Roth & Su, Corollary 2.13). This refutes "training is at least as private as a Gaussian
  mechanism with this (ε, δ)" — the accountant's model of DP-SGD — which is stronger on strong
  signal than the Steinke test; with weak signal at a fixed k it can be lower.

- ``"gaussian"`` — no guesses: the continuous scores (the Gaussian view of one-run auditing,
  Agrawal et al. 2026, "Let's Ask Gauss"), through the area under
  the ROC curve (:func:`gaussian_mu`, which states when it is a bound and when an estimate).

Choosing k: with ``n_guesses=None`` each k of a fixed grid (:func:`guess_grid`, fractions
1%, 2%, 5%, 10%, 20%, 50% of m) is tested at level α / (grid size) and the largest bound is kept;
by the union bound the result still holds with probability ≥ 1−α. Picking the best k without that
correction is not valid (positive in about 20% of no-signal runs when measured).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from memberscope._validation import as_bool_array, as_float_array, check_probability
from memberscope.errors import InputError, UnknownNameError

METHODS = ("steinke", "fdp")
"""The binary-guess methods (what training's ``epsilon_audit`` records)."""
ALL_METHODS = (*METHODS, "gaussian")
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
    the Gaussian-DP lower bound behind ``epsilon`` for ``method="fdp"`` or ``"gaussian"`` and
    None otherwise. ``method="gaussian"`` makes no guesses: ``n_guesses = n_correct = 0``,
    ``threshold = 0``, ``candidates = ()``, and ``auc`` is the canaries' empirical AUC (included
    vs excluded scores), ``auc_lower`` its (1−α) lower confidence bound.
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

    def to_dict(self) -> dict[str, object]:
        """Plain JSON-ready fields."""
        return {"epsilon": self.epsilon, "method": self.method, "m": self.m,
                "n_guesses": self.n_guesses, "n_correct": self.n_correct,
                "threshold": self.threshold, "alpha": self.alpha, "delta": self.delta,
                "candidates": list(self.candidates), "mu": self.mu, "auc": self.auc,
                "auc_lower": self.auc_lower}


def epsilon_one_run(scores: object, included: object, *, delta: float, alpha: float = 0.05,
                    method: str = "steinke", n_guesses: int | None = None) -> OneRunEpsilon:
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
    method : {"steinke", "fdp", "gaussian"}
        The test (module docstring). ``"gaussian"`` uses the scores themselves, not guesses
        (:func:`gaussian_mu`).
    n_guesses : int in [1, m], optional
        Guess the ``n_guesses`` highest-scored canaries (ties broken by lower index). None: try a
        fixed grid of guess counts with a Bonferroni correction and keep the best. Must be None
        for ``method="gaussian"``.

    >>> import numpy as np
    >>> included = np.arange(1000) % 2 == 0
    >>> result = epsilon_one_run(included * 10.0, included, delta=1e-5, n_guesses=100)
    >>> (result.n_correct, round(result.epsilon, 2))
    (100, 3.47)
    """
    score_array, included_array = _check_canaries(scores, included)
    delta = check_probability("delta", delta)
    alpha = check_probability("alpha", alpha)
    if method not in ALL_METHODS:
        raise UnknownNameError("method", str(method), ALL_METHODS)
    m = len(score_array)
    if method == "gaussian":
        if n_guesses is not None:
            raise InputError(f'n_guesses must be None for method="gaussian" (it makes no '
                             f"guesses); got {n_guesses!r}")
        return _gaussian_bound(score_array, included_array, alpha=alpha, delta=delta)
    candidates = guess_grid(m) if n_guesses is None else (_check_n_guesses(n_guesses, m),)
    order = np.argsort(-score_array, kind="stable")
    correct_so_far = np.cumsum(included_array[order])
    level = alpha / len(candidates)
    best: OneRunEpsilon | None = None
    for k in candidates:
        c = int(correct_so_far[k - 1])
        if method == "steinke":
            epsilon, mu = steinke_epsilon(m, k, c, alpha=level, delta=delta), None
        else:
            mu = fdp_mu(m, k, c, alpha=level)
            epsilon = gdp_epsilon(mu, delta)
        if best is None or epsilon > best.epsilon:
            best = OneRunEpsilon(epsilon, method, m, k, c, float(score_array[order[k - 1]]),
                                 alpha, delta, candidates, mu)
    assert best is not None  # candidates is never empty
    return best


def guess_grid(m: int) -> tuple[int, ...]:
    """The fixed numbers of guesses tried for m canaries: 1%, 2%, 5%, 10%, 20%, 50% of m."""
    return tuple(sorted({max(1, round(m * fraction)) for fraction in GUESS_FRACTIONS}))


# --- Steinke, Nasr & Jagielski ------------------------------------------------------------


def steinke_p_value(m: int, k: int, c: int, epsilon: float, delta: float) -> float:
    """P-value of ≥ c correct out of k guesses among m canaries under (ε, δ)-DP (Theorem 5.2)."""
    from scipy import special, stats

    q = special.expit(epsilon)
    tail = float(stats.binom.sf(c - 1, k, q))
    if delta == 0 or c == 0:
        return tail
    below = stats.binom.cdf(c - 1, k, q)
    i = np.arange(1, c + 1)
    # P[c−i ≤ Bin(k, q) < c] for i = 1..c
    window = below - stats.binom.cdf(c - 1 - i, k, q)
    return min(1.0, tail + 2 * m * delta * float(np.max(window / i)))


def steinke_epsilon(m: int, k: int, c: int, *, alpha: float, delta: float) -> float:
    """Largest ε whose (ε, δ)-DP claim the Steinke test rejects at level α (0 if none)."""
    def margin(epsilon: float) -> float:
        return alpha - steinke_p_value(m, k, c, epsilon, delta)

    return _largest_rejected(margin)


# --- Mahloujifar, Melis & Chaudhuri: the Gaussian trade-off curve --------------------------


def fdp_rejects(m: int, k: int, c: int, mu: float, *, alpha: float) -> bool:
    """Whether ≥ c correct of k guesses among m canaries rejects μ-GDP at level α.

    The paper's recursion: r and h bound the (scaled) probability mass of correct and wrong
    guesses. Going from c correct guesses down to 0, the wrong mass must be at least what the
    trade-off curve allows for the correct mass, h ≥ Φ(Φ⁻¹(r) − μ), and each increase of h
    feeds r by i/(k−i) of it. If the two masses together exceed k/m, the claim is rejected.
    """
    if c == 0:
        return False
    correct = alpha * c / m
    wrong = alpha * (k - c) / m
    for i in range(c - 1, -1, -1):
        least_wrong = _gaussian_least_wrong(correct, mu)
        if least_wrong <= wrong:
            break  # neither mass changes again
        correct = min(1.0, correct + i / (k - i) * (least_wrong - wrong))
        wrong = least_wrong
    return correct + wrong > k / m


def fdp_mu(m: int, k: int, c: int, *, alpha: float) -> float:
    """Largest μ whose μ-GDP claim the f-DP test rejects at level α (0 if none)."""
    def margin(mu: float) -> float:
        return 1.0 if fdp_rejects(m, k, c, mu, alpha=alpha) else -1.0

    return _largest_rejected(margin)


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


def gaussian_mu(scores: object, included: object, *, alpha: float) -> tuple[float, float, float]:
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

    Like ``method="fdp"``, a positive result refutes "training is μ-GDP" (at least as private
    as a Gaussian mechanism with that ε at δ), the accountant's model of DP-SGD; the AUC
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


def _gaussian_bound(scores: np.ndarray, included: np.ndarray, *, alpha: float,
                    delta: float) -> OneRunEpsilon:
    mu, auc, auc_lower = gaussian_mu(scores, included, alpha=alpha)
    return OneRunEpsilon(gdp_epsilon(mu, delta), "gaussian", len(scores), 0, 0, 0.0, alpha,
                         delta, (), mu, auc, auc_lower)


# --- helpers ------------------------------------------------------------------------------


def _largest_rejected(margin: Callable[[float], float]) -> float:
    """Largest x ≥ 0 with margin(x) > 0, for a margin that decreases in x; 0 if margin(0) ≤ 0."""
    if margin(0.0) <= 0:
        return 0.0
    low, high = 0.0, 1.0
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
