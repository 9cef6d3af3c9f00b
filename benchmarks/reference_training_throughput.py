"""Reference-training throughput: ``jobs=2`` vs ``jobs=1`` (target: ≥ 1.7× on 2 cores).

Every job is one single-threaded process, so ``jobs=1`` uses one core and ``jobs=2`` both.
A third configuration, one process with torch's two intra-op threads ("1x2"), shows what
``jobs=2`` gains over the other way of using both cores.

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


def child(config: str, models: int, population: int, epochs: int) -> None:
    """Train ``models`` models with ``config`` ("JOBSxTHREADS"); print the wall time as JSON."""
    from memberscope.data import load_dataset
    from memberscope.reference.executors import LocalExecutor
    from memberscope.reference.recipe import TrainingRecipe
    from memberscope.reference.training import balanced_splits, train_models

    try:
        data = load_dataset("fashion_mnist")
    except Exception:
        data = load_dataset("digits")
    x, y = data.x_train[:population], data.y_train[:population]
    recipe = TrainingRecipe(architecture_args={"num_conv": 2}, epochs=epochs, batch_size=128)
    start = time.perf_counter()
    jobs, threads = (int(part) for part in config.split("x"))
    train_models(recipe, x, y, balanced_splits(models, len(y)),
                 executor=LocalExecutor(jobs, threads_per_job=threads))
    print(json.dumps({"config": config, "seconds": time.perf_counter() - start}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", type=int, default=4)
    parser.add_argument("--population", type=int, default=4000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.child, args.models, args.population, args.epochs)
        return
    configs = ("1x1", "2x1", "1x2")
    seconds: dict[str, list[float]] = {config: [] for config in configs}
    for repeat in range(args.repeats):
        for config in (configs if repeat % 2 == 0 else configs[::-1]):
            output = subprocess.run(
                [sys.executable, __file__, "--child", config, "--models", str(args.models),
                 "--population", str(args.population), "--epochs", str(args.epochs)],
                check=True, capture_output=True, text=True).stdout
            seconds[config].append(json.loads(output.strip().splitlines()[-1])["seconds"])
            print(f"{config} (jobs x threads): {seconds[config][-1]:.1f} s for {args.models} "
                  "models")
    ratio = float(np.median([one / two for one, two in
                             zip(seconds["1x1"], seconds["2x1"], strict=True)]))
    versus_threads = float(np.median([one / two for one, two in
                                      zip(seconds["1x2"], seconds["2x1"], strict=True)]))
    per_minute = {config: 60 * args.models / float(np.median(s))
                  for config, s in seconds.items()}
    print("throughput (models/min): " + ", ".join(f"{c} {v:.2f}" for c, v in per_minute.items()))
    print(f"jobs=2 / jobs=1 = {ratio:.2f}x (median of {args.repeats}; target >= 1.7); "
          f"jobs=2 / one process of 2 threads = {versus_threads:.2f}x")
    from memberscope.store import atomic_write_json

    atomic_write_json(RESULTS / "reference_throughput.json", {
        "schema_version": 1, "models": args.models, "population": args.population,
        "epochs": args.epochs, "seconds": seconds, "ratio_median": ratio,
        "jobs2_vs_one_process_two_threads": versus_threads})


if __name__ == "__main__":
    main()
