"""Does pooling out-of-fold scores bias a trained attack's AUC? Paired, so it resolves ~0.0003.

    PYTHONPATH=src .venv/bin/python benchmarks/trained_pooling.py [--datasets 100]

Within one cross-validation fold the held-out scores come from one model that saw none of them,
so under no signal the within-fold AUC is exactly unbiased. The stored (pooled) scores should
give the same AUC: this prints, per attack and slice size (100, 300, 1,000 per side, and 100
members with 500 non-members), over fresh no-signal slices, the mean pooled AUC, the mean
size-weighted within-fold AUC, and their paired difference with its standard error. Pooling the
fold models' raw probabilities (before within-fold percentiles) gave differences of -0.0004 to
-0.0024 here. ``benchmarks/trained_null_bias.py`` measures the AUCs of whole audits.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import memberscope as ms
from _synthetic import codelab_outputs

warnings.filterwarnings("ignore", category=ms.LowResolutionWarning)

SIZES = ((100, 100), (300, 300), (1000, 1000), (100, 500))


def pooled_and_within(attack: str, seed: int, n_members: int,
                      n_nonmembers: int) -> tuple[float, float]:
    """One fresh no-signal slice: (pooled AUC, size-weighted mean of within-fold AUCs)."""
    scorer = ms.get_attack(attack)
    options = scorer.validate_options({})
    outputs = codelab_outputs(seed=seed, n_members=n_members, n_nonmembers=n_nonmembers,
                              leak=0.0)
    membership = outputs.membership
    scored = scorer.scores_for_slice(scorer.signal(outputs, None, options), membership, seed,
                                     options)
    assert scored.strata is not None and np.isfinite(scored.scores).all()
    weights, aucs = [], []
    for fold in np.unique(scored.strata):
        inside = scored.strata == fold
        weights.append(membership[inside].sum() * (~membership[inside]).sum())
        aucs.append(ms.roc_metrics(scored.scores[inside], membership[inside])["auc"])
    pooled = ms.roc_metrics(scored.scores, membership)["auc"]
    return pooled, float(np.average(aucs, weights=weights))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--datasets", type=int, default=100)
    parser.add_argument("--attacks", default="lr,mlp,rf,knn")
    args = parser.parse_args()
    for attack in args.attacks.split(","):
        for n_members, n_nonmembers in SIZES:
            started = time.perf_counter()
            pairs = np.array([pooled_and_within(attack, 600_000 + index, n_members, n_nonmembers)
                              for index in range(args.datasets)])
            difference = pairs[:, 0] - pairs[:, 1]
            standard_error = difference.std(ddof=1) / np.sqrt(len(difference))
            print(f"{attack:4s} {n_members}:{n_nonmembers}, {args.datasets} datasets "
                  f"({time.perf_counter() - started:.0f} s): pooled AUC {pairs[:, 0].mean():.4f}, "
                  f"within-fold {pairs[:, 1].mean():.4f}, pooled - within "
                  f"{difference.mean():+.4f} (SE {standard_error:.4f}), "
                  f"max |pooled - within| {np.abs(difference).max():.4f}", flush=True)


if __name__ == "__main__":
    main()
