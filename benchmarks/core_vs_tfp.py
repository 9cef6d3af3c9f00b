"""memberscope on the same inputs as ``benchmarks/tfp_timings.py`` (TF Privacy), for comparison.

Run in our venv: ``.venv/bin/python benchmarks/core_vs_tfp.py [--tfp-full S] [--tfp-threshold S]``.
The inputs come from ``_tfp_data`` (numpy only), so both scripts see identical arrays. Pass TF
Privacy's seconds (from ``tfp_timings.py``, measured on the same machine) to print ratios.
Single runs after one warm-up, import excluded, as in ``tfp_timings.py``.
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
from _tfp_data import codelab_arrays, no_signal_logits

warnings.filterwarnings("ignore", category=ms.LowResolutionWarning)


def outputs_of(arrays: dict[str, np.ndarray]) -> ms.ModelOutputs:
    return ms.ModelOutputs.from_train_test(**arrays)


def timed_audit(outputs: ms.ModelOutputs, **kwargs: object) -> tuple[float, ms.AuditResult]:
    started = time.perf_counter()
    result = ms.audit(outputs, **kwargs)  # type: ignore[arg-type]
    return time.perf_counter() - started, result


def bench_codelab(tfp_full: float | None, tfp_threshold: float | None) -> None:
    # The same numbers as benchmarks/core_audit.py uses, so all figures are comparable.
    outputs = outputs_of(codelab_arrays())
    # Warm-up on a small subset: lazy imports (scikit-learn for lr) as TF Privacy's import
    # already did, excluded like its import; the full input's caches stay cold.
    ms.audit(outputs_of(codelab_arrays(n_members=2_000, n_nonmembers=1_000)),
             attacks="threshold,lr")
    seconds, result = timed_audit(outputs, attacks="threshold,lr", slices="entire,class")
    ratio = f"  (TF/ours {tfp_full / seconds:.1f}x)" if tfp_full else ""
    print(f"memberscope audit threshold+lr, 50k/10k, {len(result)} rows: {seconds:.3f} s{ratio}  "
          f"AUC(entire) threshold {result.row('entire_dataset', 'threshold').auc:.4f} "
          f"lr {result.row('entire_dataset', 'lr').auc:.4f}")
    seconds, result = timed_audit(outputs, attacks="threshold", slices="entire,class")
    ratio = f"  (TF/ours {tfp_threshold / seconds:.1f}x)" if tfp_threshold else ""
    print(f"memberscope audit threshold only, {len(result)} rows: {seconds:.3f} s{ratio}")


def bench_lr_stability(seeds: int = 10) -> None:
    outputs = outputs_of(codelab_arrays(seed=1, n_members=10_000, n_nonmembers=2_000))
    aucs = [ms.audit(outputs, attacks="lr", slices="entire", seed=s).row("entire_dataset", "lr")
            .auc for s in range(seeds)]
    print(f"memberscope lr AUC at 5:1 (10k/2k) over {seeds} seeds: mean {np.mean(aucs):.4f} "
          f"std {np.std(aucs, ddof=1):.4f} range [{min(aucs):.4f}, {max(aucs):.4f}]")


def bench_epsilon_no_signal(repeats: int = 50) -> None:
    confident_positive = point_positive = 0
    for repeat in range(repeats):
        outputs = outputs_of(no_signal_logits(np.random.default_rng(10_000 + repeat),
                                              1000, 1000, 10))
        bound = ms.audit(outputs, attacks="threshold", slices="entire", seed=repeat).row(
            "entire_dataset", "threshold").epsilon_lower_bound
        confident_positive += bound.confident > 0
        point_positive += bound.point > 0
    print(f"memberscope on no-signal data (same inputs as TF's count), {repeats} runs: "
          f"confident eps > 0 in {confident_positive}, plug-in point > 0 in {point_positive}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tfp-full", type=float, help="TF Privacy seconds, threshold+lr")
    parser.add_argument("--tfp-threshold", type=float, help="TF Privacy seconds, threshold")
    args = parser.parse_args()
    bench_codelab(args.tfp_full, args.tfp_threshold)
    bench_lr_stability()
    bench_epsilon_no_signal()


if __name__ == "__main__":
    main()
