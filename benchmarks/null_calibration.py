"""Are p-values and ``significant`` honest? No-signal audits, leaky audits, and their cost.

    PYTHONPATH=src .venv/bin/python benchmarks/null_calibration.py [--audits 200]

Prints, for fresh seeded no-signal datasets (members and non-members drawn from one
distribution; 10 classes; slices entire + by class = 11; attacks threshold + lr):

- per attack, the share of rows with raw p < 0.05 and < 0.01 (target ≤ 5% ± 1% and ≈ 1%);
- the share of audits with any ``significant`` row after Holm at α = 0.05 (target ≤ 5%);
- on leaky datasets: how many entire-dataset rows with AUC ≥ 0.6 are significant (target all);
- the cost of p-values + Holm in a codelab-size audit (50,000 + 10,000, threshold + lr,
  11 slices): the audit's time with and without them, medians of interleaved runs.
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
import memberscope.metrics as metrics_module
from _synthetic import codelab_outputs

# The module, not the function that ``memberscope.audit`` names.
audit_module = sys.modules["memberscope.audit"]

warnings.filterwarnings("ignore", category=ms.LowResolutionWarning)

SIZES = ((2000, 2000), (5000, 1000))


def no_signal_rows(n_audits: int) -> None:
    for n_members, n_nonmembers in SIZES:
        p_values: dict[str, list[float]] = {"threshold": [], "lr": []}
        any_significant = 0
        started = time.perf_counter()
        for index in range(n_audits):
            outputs = codelab_outputs(seed=100_000 + index, n_members=n_members,
                                      n_nonmembers=n_nonmembers, leak=0.0)
            result = ms.audit(outputs, attacks="threshold,lr", slices="entire,class", seed=index)
            assert len(result) == 22, [s.reason for s in result.skipped]
            for row in result:
                p_values[row.attack].append(row.p_value)
            any_significant += any(row.significant for row in result)
        seconds = time.perf_counter() - started
        print(f"no signal, {n_members} members / {n_nonmembers} non-members, {n_audits} audits "
              f"x 11 slices ({seconds:.0f} s):")
        for attack, values in p_values.items():
            array = np.array(values)
            print(f"  {attack:9s} rows {len(array)}: raw p < 0.05 in {np.mean(array < 0.05):.2%}, "
                  f"p < 0.01 in {np.mean(array < 0.01):.2%}; entire-dataset rows p < 0.05: "
                  f"{np.mean(array[::11] < 0.05):.2%}")
        print(f"  audits with any significant row (Holm, alpha 0.05): "
              f"{any_significant}/{n_audits} = {any_significant / n_audits:.2%}")


def leaky_rows(n_audits: int) -> None:
    checked = significant = 0
    weakest = 1.0
    misses = []
    for index in range(n_audits):
        leak = (0.15, 0.3, 0.6, 1.0)[index % 4]
        size = (200, 1000, 5000)[index % 3]
        outputs = codelab_outputs(seed=200_000 + index, n_members=size, n_nonmembers=size,
                                  leak=leak)
        result = ms.audit(outputs, attacks="threshold,lr", slices="entire,class", seed=index)
        for row in result:
            if row.slice == "entire_dataset" and row.auc >= 0.6:
                checked += 1
                significant += bool(row.significant)
                weakest = min(weakest, row.auc)
                if not row.significant:
                    misses.append(f"{row.attack} AUC {row.auc:.3f} p {row.p_value:.2g} at "
                                  f"{size}/side")
    print(f"leaky data: {significant}/{checked} entire-dataset rows with AUC >= 0.6 are "
          f"significant (lowest such AUC {weakest:.3f}; sizes 200-5000 per side); not: "
          f"{'; '.join(misses) or 'none'}")


def overhead(repeats: int) -> None:
    outputs = codelab_outputs()
    ms.audit(codelab_outputs(n_members=2000, n_nonmembers=1000), attacks="threshold,lr")

    def without_tests() -> float:
        # The same audit with the p-value and the correction replaced by constants.
        saved = (metrics_module.rank_test_p_value, audit_module.significant_rows)
        metrics_module.rank_test_p_value = lambda *a, **k: 1.0  # type: ignore[assignment]
        audit_module.significant_rows = (  # type: ignore[assignment]
            lambda p, **k: np.zeros(len(p), bool))
        try:
            return timed()
        finally:
            metrics_module.rank_test_p_value, audit_module.significant_rows = saved

    def timed() -> float:
        started = time.perf_counter()
        ms.audit(outputs, attacks="threshold,lr", slices="entire,class")
        return time.perf_counter() - started

    with_times, without_times = [], []
    for _ in range(repeats):
        with_times.append(timed())
        without_times.append(without_tests())
    with_median, without_median = np.median(with_times), np.median(without_times)
    print(f"codelab-size audit (50k + 10k, threshold + lr, 11 slices), {repeats} interleaved "
          f"runs: with p-values + Holm {with_median:.3f} s, without {without_median:.3f} s: "
          f"+{with_median / without_median - 1:.1%} (median ratio of pairs "
          f"{np.median(np.array(with_times) / np.array(without_times)):.3f})")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--audits", type=int, default=200)
    parser.add_argument("--leaky-audits", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    overhead(args.repeats)
    leaky_rows(args.leaky_audits)
    no_signal_rows(args.audits)


if __name__ == "__main__":
    main()
