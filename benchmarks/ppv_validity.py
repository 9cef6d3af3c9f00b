"""Is ``ppv`` a lower bound that holds over all thresholds at once? Validity, power and cost.

    PYTHONPATH=src .venv/bin/python benchmarks/ppv_validity.py [--runs 3000] [--repeats 9]

``ppv`` bounds TP / (TP + FP) at the thresholds of a fixed grid of predicted-member counts
(1, 2, 3, 5, 8, … ×1.5), each Clopper-Pearson at level 0.01 / |grid| (Bonferroni). The
definition it replaced, the maximum over every threshold of pointwise 99% bounds, is
reimplemented here as ``pointwise`` (the same numbers as the old code, which screened points
before the exact bound) to compare with. Prints:

- no-signal data (scores independent of membership) at 30, 300 and 3,000 per side and two
  imbalanced sizes: in how many of ``--runs`` runs each definition exceeds the prior
  P / (P + N) and the prior + 0.1 (targets for ``ppv``: ≤ 1% and never);
- leaky data: ``ppv`` before and after on the codelab-like synthetic (members' true-class
  logit higher), on data where a few members are exposed (score + 5), and on every row of a
  codelab-size audit (50,000 members, 10,000 non-members, threshold + lr, entire + 10 classes);
- the cost of the codelab-size audit with each definition, interleaved repetitions, medians
  (target: + ≤ 10%).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy.special import betaincinv

sys.path.insert(0, str(Path(__file__).parent))
import memberscope as ms
import memberscope.metrics as metrics_module
from _synthetic import codelab_outputs
from memberscope.metrics import RocCurve, ppv_from_roc, roc_curve

warnings.filterwarnings("ignore", category=ms.LowResolutionWarning)

NO_SIGNAL_SIZES = ((30, 30), (300, 300), (3000, 3000), (300, 3000), (3000, 300))
_SCREENED = 128
_Z99 = 2.3263478740408408


def pointwise(roc: RocCurve, member_count: float | None = None,
              nonmember_count: float | None = None) -> float:
    """The replaced definition: max over thresholds of pointwise 99% Clopper-Pearson lower
    bounds (the old code's screening: the first 128 points and the 128 best Wilson bounds)."""
    members = roc.n_members if member_count is None else member_count
    nonmembers = roc.n_nonmembers if nonmember_count is None else nonmember_count
    tpr, fpr = roc.tpr[1:], roc.fpr[1:]
    predicted = tpr * members + fpr * nonmembers
    weighted_positive = tpr + (roc.n_nonmembers / roc.n_members) * fpr
    precision = np.divide(tpr, weighted_positive, out=np.zeros_like(tpr),
                          where=weighted_positive > 0)
    true_positives = precision * predicted
    if member_count is None:
        true_positives = np.rint(true_positives)
    if len(predicted) <= 2 * _SCREENED:
        candidates = np.arange(len(predicted))
    else:
        share = true_positives / predicted
        centre = share + _Z99**2 / (2 * predicted)
        spread = _Z99 * np.sqrt(share * (1 - share) / predicted + _Z99**2 / (4 * predicted**2))
        wilson = (centre - spread) / (1 + _Z99**2 / predicted)
        best = np.argpartition(-wilson, _SCREENED)[:_SCREENED]
        candidates = np.union1d(np.arange(_SCREENED), best)
    successes = true_positives[candidates]
    bounds = np.where(successes > 0,
                      betaincinv(np.maximum(successes, 1e-300),
                                 predicted[candidates] - successes + 1, 0.01), 0.0)
    return float(np.max(bounds, initial=0.0))


def no_signal(runs: int) -> None:
    print(f"no signal, {runs} runs per size (seeds 900000 + size + run):")
    for n_members, n_nonmembers in NO_SIGNAL_SIZES:
        prior = n_members / (n_members + n_nonmembers)
        membership = np.arange(n_members + n_nonmembers) < n_members
        values = {"ppv": [], "pointwise (before)": []}
        for run in range(runs):
            rng = np.random.default_rng([900_000, n_members, n_nonmembers, run])
            roc = roc_curve(rng.normal(size=len(membership)), membership)
            values["ppv"].append(ppv_from_roc(roc))
            values["pointwise (before)"].append(pointwise(roc))
        for name, found in values.items():
            array = np.array(found)
            print(f"  {n_members:>5} members, {n_nonmembers:>5} non-members, {name:<18}: "
                  f"> prior {np.count_nonzero(array > prior)}/{runs}, > prior + 0.1 "
                  f"{np.count_nonzero(array > prior + 0.1)}/{runs}, max - prior "
                  f"{array.max() - prior:+.3f}", flush=True)


def leaky() -> None:
    print("leaky data: ppv after (pointwise before)")
    for leak, n_members, n_nonmembers in ((1.0, 50_000, 10_000), (0.6, 3000, 3000),
                                         (1.0, 300, 300)):
        outputs = codelab_outputs(seed=5, n_members=n_members, n_nonmembers=n_nonmembers,
                                  leak=leak)
        roc = roc_curve(-outputs.loss_values, outputs.membership)
        print(f"  codelab-like synthetic, leak {leak}, {n_members}/{n_nonmembers}, loss "
              f"threshold: {ppv_from_roc(roc):.4f} ({pointwise(roc):.4f}); prior "
              f"{n_members / (n_members + n_nonmembers):.4f}")
    for n_members, n_nonmembers, exposed in ((3000, 3000, 150), (3000, 3000, 30),
                                             (30_000, 30_000, 60), (300, 300, 15)):
        rng = np.random.default_rng(3)
        scores = rng.normal(size=n_members + n_nonmembers)
        scores[:exposed] += 5.0
        roc = roc_curve(scores, np.arange(len(scores)) < n_members)
        print(f"  {exposed} of {n_members} members exposed (score + 5), {n_nonmembers} "
              f"non-members: {ppv_from_roc(roc):.4f} ({pointwise(roc):.4f})")


def audit_rows() -> None:
    outputs = codelab_outputs()
    result = ms.audit(outputs, attacks="threshold,lr")
    signal = -outputs.loss_values
    print("codelab-size audit (50,000/10,000, codelab synthetic), ppv after (pointwise before):")
    for row in result:
        if row.attack == "threshold":
            mask = (np.ones(len(signal), bool) if row.slice == "entire_dataset"
                    else outputs.labels == int(row.slice.removeprefix("class=")))
            before = pointwise(roc_curve(signal[mask], outputs.membership[mask]))
        elif row.slice == "entire_dataset":
            before = pointwise(roc_curve(result.scores["lr"], outputs.membership))
        else:
            continue
        print(f"  {row.attack:9s} {row.slice:15s}: {row.ppv:.4f} ({before:.4f})")


def cost(repeats: int) -> None:
    outputs = codelab_outputs()
    definitions: dict[str, Callable[..., float]] = {"after": ppv_from_roc, "before": pointwise}
    times: dict[str, list[float]] = {name: [] for name in definitions}
    ms.audit(outputs, attacks="threshold,lr")  # warm up
    for _ in range(repeats):
        for name, definition in definitions.items():
            metrics_module.ppv_from_roc = definition  # what attack_metrics calls
            started = time.perf_counter()
            ms.audit(outputs, attacks="threshold,lr")
            times[name].append(time.perf_counter() - started)
    metrics_module.ppv_from_roc = ppv_from_roc
    after, before = statistics.median(times["after"]), statistics.median(times["before"])
    print(f"codelab-size audit (threshold,lr; 11 slices), {repeats} interleaved repeats: "
          f"median {after:.3f} s with ppv, {before:.3f} s with the pointwise definition: "
          f"{after / before - 1:+.1%} (target <= +10%)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    no_signal(args.runs)
    leaky()
    audit_rows()
    cost(args.repeats)


if __name__ == "__main__":
    main()
