"""What the split guard's blind check adds to a codelab-size audit (issue 16's cost target).

Run: ``.venv/bin/python benchmarks/split_guard_cost.py [--repeats 9] [--dtype uint8]``.
50,000 members + 10,000 non-members with 32×32×3 inputs (CIFAR-10's geometry: random pixels,
``--dtype uint8`` as the datasets hold them, or ``float32`` scaled to [0, 1] as the codelab
feeds them), the codelab's outputs (``_synthetic.codelab_outputs``), threshold + lr on the
entire dataset and each of 10 classes. The same audit with and without inputs, interleaved,
``--repeats`` times; prints the medians and their ratio, and the blind check's parts
(featurizer, cross-validation, the row's metrics: each timed alone).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import memberscope as ms
from _synthetic import codelab_outputs
from memberscope.attacks import get_attack
from memberscope.attacks.blind import input_summary
from memberscope.metrics import LowResolutionWarning, attack_metrics


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--dtype", choices=("uint8", "float32"), default="uint8")
    args = parser.parse_args()
    warnings.simplefilter("ignore", LowResolutionWarning)
    outputs = codelab_outputs()
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(outputs.n, 32, 32, 3), dtype=np.uint8)
    images = pixels if args.dtype == "uint8" else pixels.astype(np.float32) / 255
    with_inputs = replace(outputs, inputs=images)

    def timed(audited: ms.ModelOutputs) -> float:
        started = time.perf_counter()
        ms.audit(audited, attacks=["threshold", "lr"], slices=["entire", "class"])
        return time.perf_counter() - started

    def blind_check() -> float:
        """The blind check alone: its featurizer, cross-validation and row, with the one
        beyond-split test of a threshold attack on the entire dataset."""
        started = time.perf_counter()
        ms.audit(with_inputs, attacks=["threshold"], slices=["entire"])
        middle = time.perf_counter()
        ms.audit(outputs, attacks=["threshold"], slices=["entire"])
        return (middle - started) - (time.perf_counter() - middle)

    timed(outputs), timed(with_inputs)  # warm up imports and caches
    plain, guarded, ratios, blind = [], [], [], []
    for _ in range(args.repeats):
        plain.append(timed(outputs))
        guarded.append(timed(with_inputs))
        ratios.append(guarded[-1] / plain[-1])
        blind.append(blind_check())
    features, folds, metrics = [], [], []
    blind_attack = get_attack("blind")
    for _ in range(args.repeats):
        started = time.perf_counter()
        input_summary(with_inputs.inputs)  # type: ignore[arg-type]
        features.append(time.perf_counter() - started)
        signal = blind_attack.signal(with_inputs, None, blind_attack.defaults)
        started = time.perf_counter()
        scored = blind_attack.scores_for_slice(signal, outputs.membership, 0, {})
        folds.append(time.perf_counter() - started)
        started = time.perf_counter()
        attack_metrics(scored.scores, outputs.membership, strata=scored.strata)
        metrics.append(time.perf_counter() - started)
    print(f"codelab-size audit, 50,000 + 10,000, 32x32x3 {args.dtype} inputs, threshold + lr, "
          f"entire + 10 classes, {args.repeats} interleaved repeats (medians):")
    print(f"  without inputs: {statistics.median(plain):.3f} s")
    print(f"  with inputs (blind check, beyond-split tests): {statistics.median(guarded):.3f} s")
    print(f"  ratio per repeat: median {statistics.median(ratios):.3f} "
          f"(range {min(ratios):.3f}-{max(ratios):.3f}; target <= 1.15)")
    print(f"  of which the blind check alone (featurizer, cross-validation, its row): "
          f"{statistics.median(blind):.3f} s = "
          f"{statistics.median(blind) / statistics.median(plain):.1%} of the audit; the "
          f"default featurizer {statistics.median(features):.3f} s, the cross-validation "
          f"{statistics.median(folds):.3f} s, the row's metrics {statistics.median(metrics):.3f} "
          "s; the rest is the 22 beyond-split tests")


if __name__ == "__main__":
    main()
