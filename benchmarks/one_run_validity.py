"""Validity and power of ``epsilon_one_run`` (issue 13) on synthetic canary scores.

Run: ``PYTHONPATH=src .venv/bin/python benchmarks/one_run_validity.py [--runs 200] [--m 1000]``.
Not part of the test suite. Prints:

1. validity: on no-signal canary scores (independent of inclusion) the fraction of seeded runs in
   which each bound is > 0 — a valid (1−α) bound allows at most about α. For contrast, the same
   search over the guess grid without the Bonferroni correction.
2. coverage of the continuous-score bound (``method="gaussian_auc"``): on ideal Gaussian canaries
   with known μ, the fraction of seeded runs with ε̂ ≤ the true ε of μ-GDP (valid: ≥ 1 − α);
3. power: scores of ideal Gaussian canaries, N(μ·included, 1), whose true privacy is μ-GDP,
   with the assumption-free bounds (approx_dp, the default, and Steinke's) and the two that
   assume a Gaussian trade-off curve (gaussian_fdp, gaussian_auc) beside the true ε of μ-GDP.
   Non-Gaussian mechanisms (Laplace, randomised response): benchmarks/one_run_mechanisms.py.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from memberscope import epsilon_one_run
from memberscope.one_run import gdp_epsilon, guess_grid

DELTA = 1e-5
ALPHA = 0.05


def no_signal(seed: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=m), rng.random(m) < 0.5


def gaussian_canaries(seed: int, m: int, mu: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    included = rng.random(m) < 0.5
    return rng.normal(size=m) + mu * included, included


def uncorrected_search(scores: np.ndarray, included: np.ndarray, method: str) -> float:
    """The best k of the grid, each tested at the full α: what not to do."""
    return max(epsilon_one_run(scores, included, delta=DELTA, alpha=ALPHA, method=method,
                               n_guesses=k).epsilon for k in guess_grid(len(scores)))


def bench_validity(runs: int, m: int) -> None:
    print(f"validity: no-signal scores, m = {m}, {runs} seeded runs, alpha = {ALPHA}, "
          f"delta = {DELTA}; fraction of runs with epsilon > 0 (valid: <= ~{ALPHA})")
    for method in ("approx_dp", "steinke", "gaussian_fdp"):
        for n_guesses in (None, m // 10):
            started = time.perf_counter()
            positive = sum(
                epsilon_one_run(*no_signal(seed, m), delta=DELTA, alpha=ALPHA, method=method,
                                n_guesses=n_guesses).epsilon > 0 for seed in range(runs))
            seconds = (time.perf_counter() - started) / runs
            label = "grid+Bonferroni" if n_guesses is None else f"k={n_guesses}"
            print(f"  {method:<12} {label:<16} positive {positive:3d}/{runs} = "
                  f"{positive / runs:.3f}   ({seconds * 1000:.1f} ms per call)")
        positive = sum(uncorrected_search(*no_signal(seed, m), method) > 0 for seed in range(runs))
        print(f"  {method:<12} {'grid, no corr.':<16} positive {positive:3d}/{runs} = "
              f"{positive / runs:.3f}   (invalid search, for contrast)")
    for data, name in ((no_signal, "normal scores"), (tied_no_signal, "tied scores")):
        started = time.perf_counter()
        positive = sum(epsilon_one_run(*data(seed, m), delta=DELTA, alpha=ALPHA,
                                       method="gaussian_auc").epsilon > 0
                       for seed in range(runs))
        seconds = (time.perf_counter() - started) / runs
        print(f"  gaussian_auc {name:<15} positive {positive:3d}/{runs} = {positive / runs:.3f}   "
              f"({seconds * 1000:.1f} ms per call)")


def tied_no_signal(seed: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    """No-signal scores with heavy ties (5 distinct values)."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 5, m).astype(float), rng.random(m) < 0.5


def coupled_canaries(seed: int, m: int, mu: float, blocks: int = 20,
                     rho: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian canaries whose noise is shared within blocks (correlation ``rho``): dependent
    scores. The others in a canary's block reveal the shared part, so each canary is
    μ·√(Σ⁻¹)ᵢᵢ-GDP, not μ-GDP (:func:`coupled_mu`)."""
    rng = np.random.default_rng(seed)
    included = rng.random(m) < 0.5
    shared = rng.normal(size=blocks)[np.arange(m) % blocks]
    noise = rho ** 0.5 * shared + (1 - rho) ** 0.5 * rng.normal(size=m)
    return noise + mu * included, included


def coupled_mu(mu: float, m: int, blocks: int = 20, rho: float = 0.9) -> float:
    """True GDP μ of one canary of :func:`coupled_canaries`: μ·√((Σ⁻¹)ᵢᵢ), Σ equicorrelated."""
    size = m // blocks
    inverse_diagonal = (1 - rho / (1 + (size - 1) * rho)) / (1 - rho)
    return mu * inverse_diagonal ** 0.5


def bench_coverage(runs: int, m: int, data: object = gaussian_canaries,
                   name: str = "ideal Gaussian canaries") -> None:
    print(f"coverage: gaussian bound on {name}, m = {m}, {runs} seeded runs; "
          f"fraction with eps_hat <= true eps (valid: >= {1 - ALPHA})")
    assert callable(data)
    for mu in (0.25, 0.5, 1.0, 2.0, 3.0):
        true_mu = coupled_mu(mu, m) if data is coupled_canaries else mu
        true_epsilon = gdp_epsilon(true_mu, DELTA)
        estimates = [epsilon_one_run(*data(seed, m, mu), delta=DELTA, alpha=ALPHA,
                                     method="gaussian_auc").epsilon for seed in range(runs)]
        covered = sum(e <= true_epsilon for e in estimates)
        print(f"  mu {mu:4.2f}  true eps {true_epsilon:6.2f}  covered {covered:3d}/{runs} = "
              f"{covered / runs:.3f}   median eps_hat {statistics.median(estimates):.2f} "
              f"({statistics.median(estimates) / true_epsilon:.2f}x)")


def bench_power(seeds: int, m: int) -> None:
    print(f"power: ideal Gaussian canaries N(mu*included, 1), m = {m}, grid+Bonferroni, "
          f"median over {seeds} seeds")
    methods = ("approx_dp", "steinke", "gaussian_fdp", "gaussian_auc")
    print("   mu   eps(mu-GDP)  " + "  ".join(f"{name:>12}" for name in methods)
          + "  approx_dp/gaussian_fdp")
    for mu in (0.5, 1.0, 2.0, 3.0, 4.0):
        estimates: dict[str, list[float]] = {name: [] for name in methods}
        for seed in range(seeds):
            scores, included = gaussian_canaries(seed, m, mu)
            for name in methods:
                estimates[name].append(epsilon_one_run(scores, included, delta=DELTA,
                                                       method=name).epsilon)
        medians = {name: statistics.median(values) for name, values in estimates.items()}
        ratio = medians["approx_dp"] / medians["gaussian_fdp"] if medians["gaussian_fdp"] else 0
        not_below = sum(a >= s for a, s in zip(estimates["approx_dp"], estimates["steinke"],
                                               strict=True))
        print(f"  {mu:3.1f}  {gdp_epsilon(mu, DELTA):10.2f}  "
              + "  ".join(f"{medians[name]:12.2f}" for name in methods)
              + f"  {ratio:22.2f}   (approx_dp >= steinke in {not_below}/{seeds} seeds)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--m", type=int, default=1000)
    parser.add_argument("--power-seeds", type=int, default=20)
    parser.add_argument("--parts", default="validity,coverage,power")
    args = parser.parse_args()
    if "validity" in args.parts:
        bench_validity(args.runs, args.m)
    if "coverage" in args.parts:
        bench_coverage(args.runs, args.m)
        bench_coverage(args.runs, 20 * args.m)
        bench_coverage(args.runs, args.m, coupled_canaries,
                       "block-coupled canaries (20 blocks, noise correlation 0.9)")
    if "power" not in args.parts:
        return
    bench_power(args.power_seeds, args.m)
    bench_power(max(3, args.power_seeds // 4), 20 * args.m)


if __name__ == "__main__":
    main()
