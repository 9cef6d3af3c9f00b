"""Which one-run ε bounds hold for which mechanisms (issue 17), on synthetic canaries.

Run: ``PYTHONPATH=src nice -n 10 .venv/bin/python benchmarks/one_run_mechanisms.py
[--seeds 300] [--parts exact,pure,gaussian,dpsgd]``. Not part of the test suite; about 10 min
on one core. Every run draws fresh seeds from ``SeedSequence([BASE_SEED, part, setting, seed])``
(the tests use other seeds). Prints, and writes to ``benchmarks/results/one_run_mechanisms.json``:

1. ``exact``: the exact size (no simulation) of each fixed-k test at the true (ε, δ) on the
   canonical (ε, δ)-DP mechanism — each canary reveals its bit with probability δ, else
   answers ε-randomised response — for k in 10..200 of m = 1,000: a valid level-α test has
   size ≤ α. For ``"approx_dp"``, Steinke's test and the f-DP recursion alone.
2. ``pure``: canaries from exactly ε-DP mechanisms — Laplace, score = included + Lap(1/ε), and
   randomised response, score = included with probability e^ε/(1+e^ε), else flipped — m = 1,000,
   grid + Bonferroni: in how many seeded runs each method's ε̂ exceeds the true ε (valid:
   ≤ α = 5%), and the median ε̂.
3. ``gaussian``: μ-GDP canaries, score = μ·included + N(0, 1): median ε̂ of each method beside
   the true ε of μ-GDP at δ, and the count above it.
4. ``dpsgd``: Poisson-subsampled Gaussian canaries (DP-SGD's mechanism; each step
   y_t = 1[sampled] + σ·z, sampling rate q, T steps, scored by the likelihood ratio), σ from
   Opacus' PRV accountant for a target ε: median ε̂ and the count above the accountant's ε.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from memberscope import epsilon_one_run
from memberscope._io import atomic_write_json
from memberscope.one_run import (
    ALL_METHODS,
    approx_dp_epsilon,
    gdp_epsilon,
    steinke_epsilon,
    tradeoff_epsilon,
)

BASE_SEED = 17_017
DELTA = 1e-5
ALPHA = 0.05
M = 1000
RESULTS = Path(__file__).parent / "results" / "one_run_mechanisms.json"
Canaries = tuple[np.ndarray, np.ndarray]


def rng_for(part: int, setting: int, seed: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([BASE_SEED, part, setting, seed]))


# --- 1. exact size on the canonical (ε, δ) mechanism ---------------------------------------


def exact_size(m: int, k: int, epsilon: float, delta: float,
               bound: Callable[..., float]) -> float:
    """P[the level-α test at k guesses rejects the true (ε, δ)] on the canonical mechanism.

    R canaries that revealed "included" (R ~ Bin(m, δ/2)) are guessed first and are right;
    the rest of the k guesses go to canaries that answered "included" by randomised response,
    each right with probability q = e^ε/(1+e^ε). For k ≤ m/5 at least k − R such canaries exist
    except with probability < 1e-40 (their number is Bin(m − R, ~½)), so C = min(k, R) +
    Bin(k − min(k, R), q).
    """
    from scipy import stats

    q = math.exp(epsilon) / (1 + math.exp(epsilon))
    rejected_from = next((c for c in range(k + 1)
                          if bound(m, k, c, alpha=ALPHA, delta=delta) > epsilon * (1 + 1e-6)),
                         None)
    if rejected_from is None:
        return 0.0
    if delta == 0:
        return float(stats.binom.sf(rejected_from - 1, k, q))
    reveals = np.arange(int(stats.binom.isf(1e-15, m, delta / 2)) + 2)
    sure = np.minimum(k, reveals)
    tails = stats.binom.sf(rejected_from - sure - 1, k - sure, q)
    return float(np.sum(stats.binom.pmf(reveals, m, delta / 2) * tails))


def bench_exact() -> dict[str, object]:
    print(f"1. exact size of each fixed-k test at the true (eps, delta), canonical (eps, delta) "
          f"mechanism, m = {M}, alpha = {ALPHA} (valid: <= {ALPHA})")
    tests = {"approx_dp": approx_dp_epsilon, "steinke": steinke_epsilon,
             "tradeoff only": tradeoff_epsilon}
    worst = {name: 0.0 for name in tests}
    rows = []
    for delta in (0.0, 1e-5, 1e-3, 1e-2):
        for epsilon in (0.5, 1.0, 2.0):
            for k in (10, 20, 50, 100, 200):
                sizes = {name: exact_size(M, k, epsilon, delta, test)
                         for name, test in tests.items()}
                rows.append({"delta": delta, "epsilon": epsilon, "k": k, **sizes})
                for name, size in sizes.items():
                    worst[name] = max(worst[name], size)
            print(f"  delta {delta:g} eps {epsilon}: largest size over k " + ", ".join(
                f"{name} {max(r[name] for r in rows[-5:]):.4f}" for name in tests))
    print("  largest size anywhere: " + ", ".join(f"{n} {v:.4f}" for n, v in worst.items()))
    return {"rows": rows, "largest": worst}


# --- 2-4. simulated canaries ------------------------------------------------------------------


def laplace(epsilon: float) -> Callable[[np.random.Generator], Canaries]:
    def draw(rng: np.random.Generator) -> Canaries:
        included = rng.random(M) < 0.5
        return included + rng.laplace(scale=1 / epsilon, size=M), included
    return draw


def randomised_response(epsilon: float) -> Callable[[np.random.Generator], Canaries]:
    truthful = math.exp(epsilon) / (1 + math.exp(epsilon))

    def draw(rng: np.random.Generator) -> Canaries:
        included = rng.random(M) < 0.5
        answer = np.where(rng.random(M) < truthful, included, ~included)
        return answer.astype(float), included
    return draw


def gaussian(mu: float) -> Callable[[np.random.Generator], Canaries]:
    def draw(rng: np.random.Generator) -> Canaries:
        included = rng.random(M) < 0.5
        return mu * included + rng.normal(size=M), included
    return draw


def subsampled_gaussian(sample_rate: float, sigma: float,
                        steps: int) -> Callable[[np.random.Generator], Canaries]:
    """DP-SGD's mechanism on idealised canaries, scored by the per-step likelihood ratio."""
    def draw(rng: np.random.Generator) -> Canaries:
        included = rng.random(M) < 0.5
        sampled = (rng.random((steps, M)) < sample_rate) & included
        y = sampled + sigma * rng.standard_normal((steps, M))
        score = np.logaddexp(np.log1p(-sample_rate),
                             np.log(sample_rate) + (y - 0.5) / sigma**2).sum(axis=0)
        return score, included
    return draw


def run_setting(part: int, setting: int, name: str, draw: Callable[[np.random.Generator],
                Canaries], true_epsilon: float, seeds: int,
                methods: tuple[str, ...] = ALL_METHODS) -> dict[str, object]:
    estimates: dict[str, list[float]] = {method: [] for method in methods}
    started = time.perf_counter()
    for seed in range(seeds):
        scores, included = draw(rng_for(part, setting, seed))
        for method in methods:
            estimates[method].append(epsilon_one_run(scores, included, delta=DELTA,
                                                     alpha=ALPHA, method=method).epsilon)
    result = {"setting": name, "true_epsilon": true_epsilon, "seeds": seeds,
              "above": {m: sum(e > true_epsilon for e in v) for m, v in estimates.items()},
              "median": {m: statistics.median(v) for m, v in estimates.items()},
              "approx_dp_minus_steinke": (
                  {"min": min(a - s for a, s in zip(estimates["approx_dp"],
                                                     estimates["steinke"], strict=True)),
                   "median": statistics.median(a - s for a, s in zip(
                       estimates["approx_dp"], estimates["steinke"], strict=True))}
                  if "approx_dp" in methods and "steinke" in methods else None),
              "seconds": time.perf_counter() - started}
    print(f"  {name:<34} true eps {true_epsilon:5.2f}  " + "  ".join(
        f"{m} {result['above'][m]:3d}/{seeds} ({result['median'][m]:.2f})"  # type: ignore[index]
        for m in methods), flush=True)
    return result


def bench_pure(seeds: int) -> list[dict[str, object]]:
    print(f"2. exactly eps-DP canaries, m = {M}, {seeds} seeds each: method above/seeds "
          f"(median eps_hat); valid: above <= {ALPHA:.0%}")
    settings = [(f"Laplace eps = {e:g}", laplace(e), e) for e in (1.0, 2.0)] + \
        [(f"randomised response eps = {e:g}", randomised_response(e), e) for e in (0.5, 1.0, 2.0)]
    return [run_setting(2, i, name, draw, e, seeds) for i, (name, draw, e) in enumerate(settings)]


def bench_gaussian(seeds: int) -> list[dict[str, object]]:
    print(f"3. mu-GDP canaries N(mu*included, 1), m = {M}, {seeds} seeds each")
    return [run_setting(3, i, f"Gaussian mu = {mu:g}", gaussian(mu), gdp_epsilon(mu, DELTA),
                        seeds) for i, mu in enumerate((0.5, 1.0, 2.0, 3.0))]


def bench_dpsgd(seeds: int) -> list[dict[str, object]]:
    from opacus.accountants.utils import get_noise_multiplier

    sample_rate, steps = 0.02, 500
    print(f"4. Poisson-subsampled Gaussian canaries (q = {sample_rate}, T = {steps}, likelihood-"
          f"ratio score), m = {M}, {seeds} seeds each; sigma from Opacus' PRV accountant")
    out = []
    for i, target in enumerate((2.0, 4.0, 8.0)):
        sigma = get_noise_multiplier(target_epsilon=target, target_delta=DELTA,
                                     sample_rate=sample_rate, steps=steps, accountant="prv",
                                     epsilon_tolerance=0.005)
        out.append(run_setting(4, i, f"DP-SGD eps {target:g} (sigma {sigma:.3f})",
                               subsampled_gaussian(sample_rate, sigma, steps), target, seeds))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=300)
    parser.add_argument("--dpsgd-seeds", type=int, default=100)
    parser.add_argument("--parts", default="exact,pure,gaussian,dpsgd")
    args = parser.parse_args()
    results: dict[str, object] = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results.update(base_seed=BASE_SEED, m=M, alpha=ALPHA, delta=DELTA)
    parts: dict[str, Callable[[], object]] = {
        "exact": bench_exact, "pure": lambda: bench_pure(args.seeds),
        "gaussian": lambda: bench_gaussian(args.seeds),
        "dpsgd": lambda: bench_dpsgd(args.dpsgd_seeds)}
    for part in args.parts.split(","):
        results[part] = parts[part]()
        atomic_write_json(RESULTS, {"schema_version": 1, **results})


if __name__ == "__main__":
    main()
