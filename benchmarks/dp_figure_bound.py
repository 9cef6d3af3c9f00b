"""The DP figure's empirical ε lower bound: does it hold at 95% as the figure reads? (issue 17)

Run: ``PYTHONPATH=src nice -n 10 .venv/bin/python benchmarks/dp_figure_bound.py
[--audits 700] [--epsilons 1,2]``. Not part of the test suite; about 1 s per audit on one core.

Each audit is the report's default: attacks threshold + lr on the entire set and each of 10
classes (22 rows), 1,000 members and 1,000 non-members. Every example's outputs depend on its
membership only through one randomised-response bit (membership, flipped with probability
1/(1+e^ε0)) — exactly ε0-DP per example, whatever the attacks do with it: its true-class logit
is 5·bit + N(0, 0.1²) beside nine N(0, 1) logits, so the bit is recoverable and each row's bound
sits as close to ε0 as its data allow. Seeds from ``SeedSequence([BASE_SEED, ε0 index, audit])``.

Prints, per ε0, how many audits have each number above ε0 (a (1−α) bound allows α = 5%):

- ``max of rows``: the largest row's 95% bound — what the figure drew before (each row valid
  alone, the largest of 22 not);
- ``figure``: the DP figure's point and the verdict's number, ``memberscope.summary.dp_points``
  (the run has no canaries: :func:`memberscope.metrics.family_epsilon_lower_bound`, each row at
  α/22, Bonferroni, then the largest); the verdict says INCONSISTENT exactly when it is above
  the accountant's ε, here ε0;
- ``entire/threshold``: one pre-chosen row at 95% (the fallback for rows stored without their
  held-out counts);

and the medians, with the result in ``benchmarks/results/dp_figure_bound.json``.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
import warnings
from pathlib import Path

import numpy as np

from memberscope import ModelOutputs, audit
from memberscope._io import atomic_write_json
from memberscope.metrics import LowResolutionWarning
from memberscope.summary import dp_points

BASE_SEED = 17_004
PER_SIDE = 1000
CLASSES = 10
RESULTS = Path(__file__).parent / "results" / "dp_figure_bound.json"


def randomised_response_outputs(epsilon: float, rng: np.random.Generator) -> ModelOutputs:
    membership = np.r_[np.ones(PER_SIDE, bool), np.zeros(PER_SIDE, bool)]
    labels = rng.integers(0, CLASSES, 2 * PER_SIDE)
    truthful = rng.random(2 * PER_SIDE) < math.exp(epsilon) / (1 + math.exp(epsilon))
    bit = np.where(truthful, membership, ~membership)
    logits = rng.normal(size=(2 * PER_SIDE, CLASSES))
    logits[np.arange(2 * PER_SIDE), labels] = 5.0 * bit + 0.1 * rng.normal(size=2 * PER_SIDE)
    return ModelOutputs(membership=membership, labels=labels, logits=logits)


def bench(epsilon: float, index: int, audits: int) -> dict[str, object]:
    values: dict[str, list[float]] = {"max of rows": [], "figure": [], "entire/threshold": []}
    inconsistent = 0
    rows_per_audit = set()
    started = time.perf_counter()
    for number in range(audits):
        rng = np.random.default_rng(np.random.SeedSequence([BASE_SEED, index, number]))
        result = audit(randomised_response_outputs(epsilon, rng), seed=number,
                       keep_scores=False, metadata={"model": "rr", "epoch": 1,
                                                    "epsilon": epsilon})
        rows = result.rows
        rows_per_audit.add(len(rows))
        (point,) = dp_points(rows)
        assert point.pre_chosen is None  # fresh rows keep their held-out counts
        inconsistent += not point.consistent
        values["max of rows"].append(max(r.epsilon_lower_bound.confident for r in rows))
        values["figure"].append(point.empirical)
        values["entire/threshold"].append(next(
            r.epsilon_lower_bound.confident for r in rows
            if r.slice == "entire_dataset" and r.attack == "threshold"))
    above = {name: sum(v > epsilon for v in vs) for name, vs in values.items()}
    medians = {name: statistics.median(vs) for name, vs in values.items()}
    print(f"  eps0 = {epsilon:g}: rows per audit {sorted(rows_per_audit)}; above eps0 in "
          + ", ".join(f"{name} {above[name]}/{audits}" for name in values) + "; median "
          + ", ".join(f"{name} {medians[name]:.3f}" for name in values)
          + f"; verdict INCONSISTENT in {inconsistent}/{audits}"
          + f"  ({(time.perf_counter() - started) / audits:.2f} s per audit)", flush=True)
    return {"epsilon0": epsilon, "audits": audits, "rows_per_audit": sorted(rows_per_audit),
            "above": above, "median": medians, "inconsistent": inconsistent}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--audits", type=int, default=700)
    parser.add_argument("--epsilons", default="1,2")
    args = parser.parse_args()
    warnings.simplefilter("ignore", LowResolutionWarning)  # TPR at 0.1% on class slices
    print(f"DP figure's bound on randomised-response outputs, {PER_SIDE} per side, threshold + "
          f"lr on entire + {CLASSES} classes, alpha = 0.05")
    results = [bench(float(e), i, args.audits)
               for i, e in enumerate(args.epsilons.split(","))]
    atomic_write_json(RESULTS, {"schema_version": 1, "base_seed": BASE_SEED,
                                "per_side": PER_SIDE, "results": results})


if __name__ == "__main__":
    main()
