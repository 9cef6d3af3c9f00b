"""Are the trained attacks unbiased under the null? Many fresh no-signal datasets, every slice.

    PYTHONPATH=src .venv/bin/python benchmarks/trained_null_bias.py [--datasets 200]

A single dataset's own chance pattern moves every attack together, so this averages over many
fresh seeded datasets (members and non-members drawn from one distribution, 10 classes; slices
entire + by class). Prints per attack (lr, mlp, rf, knn): the grand mean AUC over all rows
(target 0.5 ± 0.005), the range of per-slice means (target each within 0.5 ± 0.02), the share
of rows with p < 0.05 (the fold-wise test's validity, target ≤ 5%), and that every example
got an out-of-fold score. ``tests/unit/test_trained_null_bias.py`` is the small version.
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


def null_rows(attack: str, datasets: int, n_per_side: int) -> list[ms.AuditRow]:
    rows: list[ms.AuditRow] = []
    for index in range(datasets):
        outputs = codelab_outputs(seed=400_000 + index, n_members=n_per_side,
                                  n_nonmembers=n_per_side, leak=0.0)
        result = ms.audit(outputs, attacks=attack, slices="entire,class", seed=index)
        assert not result.skipped, result.skipped
        assert np.isfinite(result.scores[attack]).all()  # every example scored out of fold
        rows.extend(result.rows)
    return rows


def summarise(attack: str, rows: list[ms.AuditRow], seconds: float) -> None:
    aucs = np.array([r.auc for r in rows])
    by_slice: dict[str, list[float]] = {}
    for row in rows:
        by_slice.setdefault(row.slice, []).append(row.auc)
    means = {name: float(np.mean(values)) for name, values in by_slice.items()}
    worst = max(means, key=lambda name: abs(means[name] - 0.5))
    p_values = np.array([r.p_value for r in rows])
    print(f"{attack:4s} {len(rows)} rows ({seconds:.0f} s): grand mean AUC {aucs.mean():.4f} "
          f"(SE {aucs.std(ddof=1) / np.sqrt(len(aucs)):.4f}); slice means "
          f"{min(means.values()):.4f}-{max(means.values()):.4f} (furthest: {worst}); "
          f"p < 0.05 in {np.mean(p_values < 0.05):.2%}, any significant in "
          f"{sum(r.significant for r in rows)} rows")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--datasets", type=int, default=200)
    parser.add_argument("--per-side", type=int, default=1000)
    parser.add_argument("--attacks", default="lr,mlp,rf,knn")
    args = parser.parse_args()
    print(f"{args.datasets} no-signal datasets, {args.per_side} per side, 10 classes, "
          f"slices entire + class")
    for attack in args.attacks.split(","):
        started = time.perf_counter()
        rows = null_rows(attack, args.datasets, args.per_side)
        summarise(attack, rows, time.perf_counter() - started)


if __name__ == "__main__":
    main()
