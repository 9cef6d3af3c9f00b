"""Do the bootstrap intervals cover? Gaussian simulations with known AUC and TPR at 1% FPR.

    PYTHONPATH=src .venv/bin/python benchmarks/bootstrap_coverage.py [--repeats 200]

Members' scores ~ N(mu, 1), non-members' ~ N(0, 1), 2,000 per side: the true AUC is
Phi(mu / sqrt 2) and the true TPR at FPR f is Phi(mu - z_(1-f)). Each repetition draws fresh data
and computes ``attack_metrics(..., n_bootstrap=B)``'s 95% intervals; the script prints how often
they contain the truth (target >= 93%), their mean width, and the estimates' mean bias.
"""

from __future__ import annotations

import argparse
import math
import time
from statistics import NormalDist

import numpy as np

from memberscope import attack_metrics

TARGET = 0.01


def coverage(mu: float, n_per_side: int, repeats: int, n_bootstrap: int) -> None:
    normal = NormalDist()
    true_auc = normal.cdf(mu / math.sqrt(2))
    true_tpr = normal.cdf(mu - normal.inv_cdf(1 - TARGET))
    membership = np.arange(2 * n_per_side) < n_per_side
    auc_hits = tpr_hits = 0
    auc_widths, tpr_widths, auc_errors, tpr_errors = [], [], [], []
    started = time.perf_counter()
    for repeat in range(repeats):
        rng = np.random.default_rng(50_000 + repeat)
        scores = rng.normal(size=2 * n_per_side) + mu * membership
        metrics = attack_metrics(scores, membership, fpr_targets=(TARGET,),
                                 n_bootstrap=n_bootstrap, seed=repeat)
        auc_low, auc_high = metrics.auc_ci
        interval = metrics.tpr_at_fpr_ci[TARGET]
        assert interval is not None
        tpr_low, tpr_high = interval
        auc_hits += auc_low <= true_auc <= auc_high
        tpr_hits += tpr_low <= true_tpr <= tpr_high
        auc_widths.append(auc_high - auc_low)
        tpr_widths.append(tpr_high - tpr_low)
        auc_errors.append(metrics.auc - true_auc)
        tpr_errors.append(metrics.tpr_at_fpr[TARGET] - true_tpr)
    seconds = time.perf_counter() - started
    print(f"mu {mu:.2f}, {n_per_side} per side, {repeats} repetitions x {n_bootstrap} "
          f"replicates ({seconds:.0f} s):")
    print(f"  AUC true {true_auc:.4f}: coverage {auc_hits / repeats:.1%}, mean width "
          f"{np.mean(auc_widths):.4f}, mean bias {np.mean(auc_errors):+.4f}")
    print(f"  TPR@{TARGET:g} FPR true {true_tpr:.4f}: coverage {tpr_hits / repeats:.1%}, mean "
          f"width {np.mean(tpr_widths):.4f}, mean bias {np.mean(tpr_errors):+.4f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--bootstrap", type=int, default=200)
    parser.add_argument("--per-side", type=int, default=2000)
    args = parser.parse_args()
    for mu in (0.5, 1.0, 2.0):
        coverage(mu, args.per_side, args.repeats, args.bootstrap)


if __name__ == "__main__":
    main()
