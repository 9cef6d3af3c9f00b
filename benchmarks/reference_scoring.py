"""Scoring speed of LiRA and RMIA: 64 reference models × 50,000 examples (synthetic signals).

Target: each variant ≤ 2 s on the project machine. Prints the median of ``--repeats`` runs per
variant and writes ``benchmarks/results/reference_scoring.json``. Also checks that RMIA's
pairwise mode under a 64 MiB cap gives the same scores as the sorted mode.

Usage: python benchmarks/reference_scoring.py [--models 64] [--examples 50000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from memberscope.attacks.reference import lira_scores, rmia_scores
from memberscope.reference.training import balanced_splits
from memberscope.store import atomic_write_json

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", type=int, default=64)
    parser.add_argument("--examples", type=int, default=50_000)
    parser.add_argument("--queries", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    m, n, q = args.models, args.examples, args.queries
    membership = balanced_splits(m, n, seed=0)
    difficulty = rng.normal(0, 2, (n, q))
    signal = difficulty + membership[:, :, None] + rng.normal(0, 0.5, (m, n, q))
    target = difficulty + (rng.random(n) < 0.5)[:, None] + rng.normal(0, 0.5, (n, q))
    prob, target_prob = 1 / (1 + np.exp(-signal)), 1 / (1 + np.exp(-target))
    variants = {
        "lira online, per-example variance": lambda: lira_scores(target, signal, membership,
                                                                 variance="per_example"),
        "lira online, global variance": lambda: lira_scores(target, signal, membership,
                                                            variance="global"),
        "lira online, median": lambda: lira_scores(target, signal, membership, center="median"),
        "lira offline": lambda: lira_scores(target, signal, membership, online=False),
        "rmia online (sorted)": lambda: rmia_scores(target_prob, prob, membership),
        "rmia offline (sorted)": lambda: rmia_scores(target_prob, prob, membership,
                                                     online=False),
    }
    rows = []
    for label, run in variants.items():
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            run()
            times.append(time.perf_counter() - start)
        rows.append({"variant": label, "median_seconds": float(np.median(times)),
                     "all_seconds": times})
        print(f"{label:40s} {np.median(times):6.3f} s  (target <= 2 s)")
    sample = slice(0, 10_000)  # the literal pairwise mode is for checking, not for speed
    start = time.perf_counter()
    pairwise = rmia_scores(target_prob[sample], prob[:, sample], membership[:, sample],
                           method="pairwise", max_pairwise_bytes=64 * 2**20)
    pairwise_seconds = time.perf_counter() - start
    sorted_ = rmia_scores(target_prob[sample], prob[:, sample], membership[:, sample])
    same = bool(np.array_equal(pairwise, sorted_))
    print(f"rmia pairwise (64 MiB blocks) on 10,000 x 10,000: {pairwise_seconds:.2f} s, "
          f"equal to sorted: {same}")
    atomic_write_json(RESULTS / "reference_scoring.json", {
        "schema_version": 1, "models": m, "examples": n, "queries": q, "rows": rows,
        "rmia_pairwise_10k_seconds": pairwise_seconds, "pairwise_equals_sorted": same})


if __name__ == "__main__":
    main()
