"""Reference-training throughput: ``jobs=2`` vs ``jobs=1`` (target: ≥ 1.7× on 2 cores).

Each configuration runs in a fresh interpreter (so both pay for importing torch once per
process that trains) and trains the same models of the codelab small CNN on Fashion-MNIST
(digits when it is absent), without a cache. Repeats alternate the order; prints models/minute
per configuration, the median ratio, and writes ``benchmarks/results/reference_throughput.json``.

Usage: python benchmarks/reference_training_throughput.py [--models 4] [--population 4000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results"


def child(jobs: int, models: int, population: int, epochs: int) -> None:
    """Train ``models`` models with ``jobs`` workers; print the wall time as JSON."""
    from memberscope.data import load_dataset
    from memberscope.reference.recipe import TrainingRecipe
    from memberscope.reference.training import balanced_splits, train_models

    try:
        data = load_dataset("fashion_mnist")
    except Exception:
        data = load_dataset("digits")
    x, y = data.x_train[:population], data.y_train[:population]
    recipe = TrainingRecipe(architecture_args={"num_conv": 2}, epochs=epochs, batch_size=128)
    start = time.perf_counter()
    train_models(recipe, x, y, balanced_splits(models, len(y)), jobs=jobs)
    print(json.dumps({"jobs": jobs, "seconds": time.perf_counter() - start}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", type=int, default=4)
    parser.add_argument("--population", type=int, default=4000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.child, args.models, args.population, args.epochs)
        return
    seconds: dict[int, list[float]] = {1: [], 2: []}
    for repeat in range(args.repeats):
        for jobs in ((1, 2) if repeat % 2 == 0 else (2, 1)):
            output = subprocess.run(
                [sys.executable, __file__, "--child", str(jobs), "--models", str(args.models),
                 "--population", str(args.population), "--epochs", str(args.epochs)],
                check=True, capture_output=True, text=True).stdout
            seconds[jobs].append(json.loads(output.strip().splitlines()[-1])["seconds"])
            print(f"jobs={jobs}: {seconds[jobs][-1]:.1f} s for {args.models} models")
    ratios = [one / two for one, two in zip(seconds[1], seconds[2], strict=True)]
    ratio = float(np.median(ratios))
    per_minute = {jobs: 60 * args.models / float(np.median(s)) for jobs, s in seconds.items()}
    print(f"throughput: jobs=1 {per_minute[1]:.2f} models/min, jobs=2 {per_minute[2]:.2f} "
          f"models/min; jobs=2 / jobs=1 = {ratio:.2f}x (median of {len(ratios)}; target >= 1.7)")
    from memberscope.store import atomic_write_json

    atomic_write_json(RESULTS / "reference_throughput.json", {
        "schema_version": 1, "models": args.models, "population": args.population,
        "epochs": args.epochs, "seconds": {str(k): v for k, v in seconds.items()},
        "ratio_median": ratio})


if __name__ == "__main__":
    main()
