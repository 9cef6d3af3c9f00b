"""The lr attack's solver: memberscope's Newton (IRLS) logistic regression against scikit-learn's
``LogisticRegression(solver="newton-cholesky")`` at the same regularisation.

Run from the repository root: ``.venv/bin/python benchmarks/lr_solver.py [--repeats 7]
[--leak 1.0]``. Codelab-size outputs (``_synthetic.codelab_outputs``: 50,000 members and
10,000 non-members, 10 classes), the lr attack's features (``attack_features``), and the lr
attack's own cross-validation (``cross_validated_scores``: 3 folds, balanced training folds of
at most 5,000 per side) on the entire dataset and on each of the 10 class slices. Both solvers
minimise mean log-loss + l2 / (2 n) ||w||² with a free intercept: scikit-learn's
C = 1 / l2. Repetitions are interleaved (A, B, A, B, ...) so load from other processes hits
both alike; the script prints medians, the ratio of medians and its spread over repetitions,
the AUC of both on each slice, and the largest coefficient difference on one fit.
Not run by pytest.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _synthetic import codelab_outputs
from memberscope.attacks.trained import (
    NewtonLogisticRegression,
    attack_features,
    cross_validated_scores,
)
from memberscope.metrics import LowResolutionWarning, attack_metrics

L2 = 1.0
N_FOLDS = 3
MAX_TRAIN_PER_SIDE = 5000


def newton(seed: int) -> Any:
    return NewtonLogisticRegression(l2=L2)


def sklearn_newton_cholesky(seed: int) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=1.0 / L2, solver="newton-cholesky", max_iter=50)


SOLVERS: dict[str, Callable[[int], Any]] = {"ours (Newton/IRLS)": newton,
                                            "sklearn newton-cholesky": sklearn_newton_cholesky}


def slices_of(labels: np.ndarray) -> dict[str, np.ndarray]:
    masks = {"entire": np.ones(len(labels), dtype=bool)}
    masks.update({f"class={k}": labels == k for k in range(int(labels.max()) + 1)})
    return masks


def run_attack(features: np.ndarray, membership: np.ndarray, masks: dict[str, np.ndarray],
               make_model: Callable[[int], Any]) -> tuple[dict[str, float], dict[str, float]]:
    """Seconds and AUC per slice of the lr attack's cross-validation with ``make_model``."""
    seconds, aucs = {}, {}
    for name, mask in masks.items():
        started = time.perf_counter()
        scored = cross_validated_scores(features[mask], membership[mask], 0, make_model,
                                        n_folds=N_FOLDS, max_train_per_side=MAX_TRAIN_PER_SIDE)
        seconds[name] = time.perf_counter() - started
        aucs[name] = attack_metrics(scored.scores, membership[mask]).auc
    return seconds, aucs


def training_fold(features: np.ndarray, membership: np.ndarray,
                  per_side: int) -> tuple[np.ndarray, np.ndarray]:
    """A balanced, standardised training fold of ``per_side`` members and non-members."""
    rng = np.random.default_rng(per_side)
    rows = np.concatenate([rng.choice(np.flatnonzero(membership), per_side, replace=False),
                           rng.choice(np.flatnonzero(~membership), per_side, replace=False)])
    design = (features[rows] - features[rows].mean(0)) / np.maximum(features[rows].std(0), 1e-12)
    return design, membership[rows]


def fit_seconds(design: np.ndarray, target: np.ndarray, repeats: int) -> dict[str, float]:
    """Median seconds of one fit per solver, interleaved repetitions."""
    taken: dict[str, list[float]] = {name: [] for name in SOLVERS}
    for _ in range(repeats):
        for name, make_model in SOLVERS.items():
            started = time.perf_counter()
            make_model(0).fit(design, target)
            taken[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in taken.items()}


def largest_coefficient_difference(design: np.ndarray, target: np.ndarray) -> float:
    ours = newton(0).fit(design, target)
    theirs = sklearn_newton_cholesky(0).fit(design, target)
    return float(max(np.abs(ours.coef_ - theirs.coef_[0]).max(),
                     abs(ours.intercept_ - theirs.intercept_[0])))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--leak", type=float, default=1.0)
    args = parser.parse_args(argv)

    # Class slices hold ~1,000 non-members: TPR at FPR 0.1% is null there, as it should be.
    warnings.simplefilter("ignore", LowResolutionWarning)
    outputs = codelab_outputs(leak=args.leak)
    features = attack_features(outputs)
    membership = outputs.membership
    masks = slices_of(outputs.known_labels)
    sizes = {name: (int(membership[m].sum()), int((~membership[m]).sum()))
             for name, m in masks.items()}
    for make_model in SOLVERS.values():  # warm imports and caches
        run_attack(features, membership, {"class=0": masks["class=0"]}, make_model)

    seconds: dict[str, list[dict[str, float]]] = {name: [] for name in SOLVERS}
    aucs: dict[str, dict[str, float]] = {}
    for _ in range(args.repeats):
        for name, make_model in SOLVERS.items():
            taken, aucs[name] = run_attack(features, membership, masks, make_model)
            seconds[name].append(taken)

    ours, theirs = SOLVERS
    print(f"features {features.shape}, leak {args.leak}, {args.repeats} interleaved repetitions"
          f" (medians; machine shared with other jobs)\n")
    print(f"{'slice':<10} {'members/non':>13} {'ours s':>8} {'sklearn s':>9} {'ours/sk':>8}"
          f" {'AUC ours':>9} {'AUC sk':>9}")
    groups = {"entire": ["entire"], "10 classes": [n for n in masks if n != "entire"]}
    for name in masks:
        a = statistics.median(r[name] for r in seconds[ours])
        b = statistics.median(r[name] for r in seconds[theirs])
        members, nonmembers = sizes[name]
        print(f"{name:<10} {members:>6}/{nonmembers:<6} {a:8.3f} {b:9.3f} {a / b:8.2f}"
              f" {aucs[ours][name]:9.4f} {aucs[theirs][name]:9.4f}")
    print()
    for label, names in {**groups, "all 11": list(masks)}.items():
        per_repeat = [sum(r[n] for n in names) for r in seconds[ours]]
        per_repeat_sk = [sum(r[n] for n in names) for r in seconds[theirs]]
        ratios = [a / b for a, b in zip(per_repeat, per_repeat_sk, strict=True)]
        print(f"{label:<10} ours {statistics.median(per_repeat):.3f} s, sklearn "
              f"{statistics.median(per_repeat_sk):.3f} s, ratio of medians "
              f"{statistics.median(per_repeat) / statistics.median(per_repeat_sk):.2f} "
              f"(per-repeat ratios {min(ratios):.2f}-{max(ratios):.2f})")
    difference = max(abs(aucs[ours][n] - aucs[theirs][n]) for n in masks)
    print(f"\nlargest AUC difference over the 11 slices: {difference:.2e}")
    print("\nfit only (one training fold, standardised; median of 5 x repeats):")
    for per_side in (5000, 660):  # the entire slice's folds; a class slice's
        design, target = training_fold(features, membership, per_side)
        fits = fit_seconds(design, target, 5 * args.repeats)
        print(f"  {per_side} + {per_side} rows: ours {fits[ours] * 1e3:.1f} ms, sklearn "
              f"{fits[theirs] * 1e3:.1f} ms, ratio {fits[ours] / fits[theirs]:.2f}; largest "
              f"coefficient difference {largest_coefficient_difference(design, target):.1e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
