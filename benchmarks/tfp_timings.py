"""Time TF Privacy's membership-inference attacks on the codelab-size input (the incumbent).

Runs ONLY in the scratch venv with TensorFlow Privacy (see ``benchmarks/tfp_reference.py`` for
how to make it); not part of the test suite. Compare with ``benchmarks/core_vs_tfp.py``, which
runs memberscope on the same synthetic input (``_tfp_data.codelab_arrays``).

    /tmp/tfp-venv/bin/python benchmarks/tfp_timings.py [--trained-subsample]

BLAS is pinned to one thread (OPENBLAS/OMP/MKL_NUM_THREADS=1 unless already set), as memberscope
pins it for attacker fits: on this shared 2-core machine TF Privacy's LR grid search with
default BLAS threads took 147.8 s instead of 11.7 s (thread oversubscription, load ~8).

Prints, single runs (import time excluded):
- ``run_attacks`` wall time, 50,000 members / 10,000 non-members, 10 classes, logits, attacks
  threshold + LR, slices entire + by class (11 slices); and threshold alone;
- LR AUC mean/std over 10 seeds at 5:1 (10,000 / 2,000);
- how often TF Privacy's epsilon lower bound (Bailey ratio bound, max over thresholds) is > 0 on
  data with no membership signal, over 50 repeats;
- with ``--trained-subsample``: MLP and RF on a 1/10 subsample, entire-dataset slice only
  (full size, 11 slices, they take ~20 min; at 1/10 size with 11 slices RF alone took > 12 min).
"""

from __future__ import annotations

import os

for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")  # before numpy is imported

import argparse  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from _tfp_data import codelab_arrays, no_signal_logits  # noqa: E402

warnings.filterwarnings("ignore")
logging.getLogger().setLevel(logging.ERROR)


def _tfp() -> tuple[object, object]:
    from tensorflow_privacy.privacy.privacy_tests.membership_inference_attack import (
        data_structures as ds,
    )
    from tensorflow_privacy.privacy.privacy_tests.membership_inference_attack import (
        membership_inference_attack as mia,
    )

    return ds, mia


def timed_run(arrays: dict[str, np.ndarray], attacks: list[str], by_class: bool = True,
              seed: int = 0) -> tuple[float, object]:
    """Seconds for one ``run_attacks`` call, and its result."""
    ds, mia = _tfp()
    attack_types = [ds.AttackType(a) for a in attacks]  # type: ignore[attr-defined]
    spec = ds.SlicingSpec(entire_dataset=True, by_class=by_class)  # type: ignore[attr-defined]
    np.random.seed(seed)  # noqa: NPY002  (TF Privacy uses numpy's global RNG)
    started = time.perf_counter()
    result = mia.run_attacks(ds.AttackInputData(**arrays), spec,  # type: ignore[attr-defined]
                             attack_types=attack_types)
    return time.perf_counter() - started, result


def _auc(result: object, attack: str) -> float:
    for single in result.single_attack_results:  # type: ignore[attr-defined]
        if single.slice_spec.entire_dataset and single.attack_type.value == attack:
            return float(single.get_auc())
    raise KeyError(attack)


def bench_codelab() -> None:
    arrays = codelab_arrays()
    seconds, result = timed_run(arrays, ["threshold", "lr"])
    print(f"TF run_attacks threshold+lr, 50k/10k, 11 slices: {seconds:.2f} s  "
          f"AUC(entire) threshold {_auc(result, 'threshold'):.4f} lr {_auc(result, 'lr'):.4f}")
    seconds, result = timed_run(arrays, ["threshold"])
    print(f"TF run_attacks threshold only, 11 slices: {seconds:.3f} s")


def bench_lr_stability(seeds: int = 10) -> None:
    arrays = codelab_arrays(seed=1, n_members=10_000, n_nonmembers=2_000)
    aucs = [_auc(timed_run(arrays, ["lr"], by_class=False, seed=s)[1], "lr")
            for s in range(seeds)]
    print(f"TF lr AUC at 5:1 (10k/2k) over {seeds} seeds: mean {np.mean(aucs):.4f} "
          f"std {np.std(aucs, ddof=1):.4f} range [{min(aucs):.4f}, {max(aucs):.4f}]")


def bench_epsilon_no_signal(repeats: int = 50) -> None:
    positive = 0
    values = []
    for repeat in range(repeats):
        arrays = no_signal_logits(np.random.default_rng(10_000 + repeat), 1000, 1000, 10)
        _, result = timed_run(arrays, ["threshold"], by_class=False)
        bounds = result.single_attack_results[0].get_epsilon_lower_bound()  # type: ignore
        best = float(bounds.max()) if bounds.size else 0.0
        values.append(best)
        positive += best > 0
    print(f"TF epsilon lower bound > 0 on no-signal data (threshold attack, 1000/1000): "
          f"{positive}/{repeats} runs; median bound {np.median(values):.3f}, "
          f"max {max(values):.3f}")


def bench_trained_subsample() -> None:
    # Entire-dataset slice only: with 11 slices RF alone ran > 12 min even at 1/10 size.
    arrays = codelab_arrays(n_members=5_000, n_nonmembers=1_000)
    for attack in ("mlp", "rf"):
        seconds, result = timed_run(arrays, [attack], by_class=False)
        print(f"TF {attack} on 1/10 subsample (5k/1k), entire dataset only: {seconds:.1f} s  "
              f"AUC {_auc(result, attack):.4f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trained-subsample", action="store_true",
                        help="also time MLP and RF on a 1/10 subsample (minutes)")
    parser.add_argument("--codelab-only", action="store_true",
                        help="only the codelab-size run_attacks timings")
    parser.add_argument("--trained-subsample-only", action="store_true",
                        help="only the MLP/RF subsample timings")
    args = parser.parse_args()
    started = time.perf_counter()
    _tfp()
    print(f"(import of TF Privacy: {time.perf_counter() - started:.1f} s, excluded below)")
    if args.codelab_only:
        bench_codelab()
        return
    if args.trained_subsample_only:
        bench_trained_subsample()
        return
    bench_codelab()
    bench_lr_stability()
    bench_epsilon_no_signal()
    if args.trained_subsample:
        bench_trained_subsample()


if __name__ == "__main__":
    main()
