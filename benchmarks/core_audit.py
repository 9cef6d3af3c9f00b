"""Benchmarks of the core audit engine against the targets of the core issue.

Run: ``.venv/bin/python benchmarks/core_audit.py [--quick]``. Prints absolute seconds (medians)
and ratios measured in the same run. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import memberscope as ms
from _synthetic import codelab_outputs
from memberscope.metrics import roc_metrics


def median_seconds(run: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def bench_audit(repeats: int) -> None:
    outputs = codelab_outputs()
    ms.audit(outputs, attacks="threshold")  # warm caches and imports
    for attacks, target in (("threshold", 0.1), ("threshold,lr", 1.0)):
        seconds = median_seconds(lambda a=attacks: ms.audit(outputs, attacks=a), repeats)
        result = ms.audit(outputs, attacks=attacks)
        print(f"audit {attacks:<14} 50k/10k, 11 slices: {seconds:6.3f} s (target <= {target} s)  "
              f"rows={len(result)} AUC(entire)="
              f"{result.row('entire_dataset', attacks.split(',')[-1]).auc:.4f}")
    total = 0.0
    for attack in ("lr", "mlp", "rf", "knn"):
        seconds = median_seconds(lambda a=attack: ms.audit(outputs, attacks=a), 1)
        total += seconds
        auc = ms.audit(outputs, attacks=attack).row("entire_dataset", attack).auc
        print(f"audit {attack:<4} 11 slices: {seconds:6.2f} s  AUC(entire)={auc:.4f}")
    print(f"all four trained attacks: {total:.2f} s (target <= 30 s)")


def bench_stability(seeds: int) -> None:
    leaky = codelab_outputs(seed=1, n_members=10_000, n_nonmembers=2_000)
    aucs = [ms.audit(leaky, attacks="lr", slices="entire", seed=s).row("entire_dataset", "lr").auc
            for s in range(seeds)]
    print(f"lr AUC at 5:1 over {seeds} seeds: mean {np.mean(aucs):.4f} std {np.std(aucs):.4f} "
          "(target std <= 0.01)")
    null = codelab_outputs(seed=2, leak=0.0, n_members=10_000, n_nonmembers=2_000)
    for attack in ("lr", "mlp", "rf", "knn"):
        rows = [ms.audit(null, attacks=attack, slices="entire", seed=s)
                .row("entire_dataset", attack) for s in range(3)]
        print(f"no signal, {attack:<4}: AUC {[round(r.auc, 4) for r in rows]} (target 0.5 ± 0.02), "
              f"confident eps {[r.epsilon_lower_bound.confident for r in rows]}")
    positives = 0
    runs = 200
    for s in range(runs):
        rng = np.random.default_rng(1000 + s)
        scores = rng.normal(size=2000)
        membership = rng.random(2000) < 0.5
        positives += ms.epsilon_lower_bound(scores, membership, seed=s).confident > 0
    print(f"confident eps > 0 on no-signal data: {positives}/{runs} runs (valid bound: <= 5%)")


def bench_metrics(n: int, repeats: int) -> None:
    from sklearn.metrics import auc, roc_curve

    rng = np.random.default_rng(0)
    scores = rng.normal(size=n)
    tied = rng.random(n) < 0.1
    scores[tied] = np.round(scores[tied], 1)  # 10% of scores share a few values
    membership = rng.random(n) < 0.5

    def ours() -> object:
        return roc_metrics(scores, membership)

    def sklearn() -> object:
        fpr, tpr, _ = roc_curve(membership, scores)
        return auc(fpr, tpr)

    ours_seconds = median_seconds(ours, repeats)
    sklearn_seconds = median_seconds(sklearn, repeats)
    print(f"metrics on {n:,} scores: ours {ours_seconds:.3f} s, sklearn roc_curve+auc "
          f"{sklearn_seconds:.3f} s, ratio {ours_seconds / sklearn_seconds:.2f}x (target <= 1.0x)")
    tracemalloc.start()
    ours()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(f"peak extra memory: {peak / (8 * n):.2f} arrays of n float64 (target <= 5)")


def bench_import() -> None:
    code = ("import time, sys; t = time.perf_counter(); import memberscope; "
            "print(time.perf_counter() - t); "
            "print(','.join(m for m in ('torch', 'matplotlib', 'pandas', 'keras') "
            "if m in sys.modules))")
    times = []
    for _ in range(5):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True).stdout.split("\n")
        times.append(float(out[0]))
    print(f"import memberscope: median {statistics.median(times):.3f} s (target <= 0.5 s), "
          f"heavy modules imported: {out[1] or 'none'}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer repeats, 1M metrics")
    args = parser.parse_args()
    bench_import()
    bench_audit(3 if args.quick else 7)
    bench_stability(5 if args.quick else 10)
    bench_metrics(1_000_000 if args.quick else 10_000_000, 3 if args.quick else 5)


if __name__ == "__main__":
    main()
