"""Estimating LiRA's TPR at low FPR without reference models, against measured LiRA (issue 18).

Measured: LiRA online (global variance) with 16 reference models of the same recipe,
checkpointed at the same epoch as the target (the recipe has no learning-rate schedule, so a
model after e of its 36 epochs is a model trained for e epochs), on the target's whole
population (5,000 members, 5,000 non-members): the largest TPR with FPR <= 1% and <= 0.1%.

Estimated: from the target's own losses on its members and non-members at that epoch only
(``ESTIMATORS``), no reference model.

Points: every (target, epoch) with epoch in 3, 6, ..., 36, for every target of every setting of
``_risk_models``; the quickstart's own two models at its audit epochs 6, 12, ..., 36 are the
headline table. Estimator variants are chosen on the selection targets (pair models 0 and 1)
and reported on the others.

Usage: python benchmarks/risk_estimate.py [--settings ...]
Writes ``benchmarks/results/risk_estimate.json``.
"""

from __future__ import annotations

import argparse
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from _risk_models import SETTINGS, TrainedSetting, load_setting
from risk_precision import SELECTION_TARGETS, lira, softplus_neg
from memberscope.metrics import roc_curve, tpr_at_fpr_from_roc
from memberscope.store import atomic_write_json

RESULTS = Path(__file__).parent / "results"
FPRS = (0.01, 0.001)
QUICKSTART_EPOCHS = (6, 12, 18, 24, 30, 36)


def tail_tnr(member_loss: np.ndarray, nonmember_loss: np.ndarray, fpr: float) -> float:
    """Fraction of non-members whose loss exceeds the members' (1 - fpr) quantile."""
    threshold = np.quantile(member_loss, 1.0 - fpr)
    return float(np.mean(nonmember_loss > threshold))


def loss_attack_tpr(member_loss: np.ndarray, nonmember_loss: np.ndarray, fpr: float) -> float:
    """The plain loss attack's TPR at FPR <= fpr."""
    scores = -np.concatenate([member_loss, nonmember_loss])
    truth = np.r_[np.ones(len(member_loss), bool), np.zeros(len(nonmember_loss), bool)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(tpr_at_fpr_from_roc(roc_curve(scores, truth), [fpr])[fpr] or 0.0)


Estimator = Callable[[np.ndarray, np.ndarray, float], float]
ESTIMATORS: dict[str, Estimator] = {
    "tail TNR": tail_tnr,
    "loss attack TPR": loss_attack_tpr,
}


def measured_tpr(scores: np.ndarray, membership: np.ndarray) -> dict[float, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        values = tpr_at_fpr_from_roc(roc_curve(scores, membership), FPRS)
    return {f: float(values[f] or 0.0) for f in FPRS}


def evaluate(trained: TrainedSetting) -> list[dict]:
    records = []
    for name in trained.names:
        target = trained.index(name)
        references = trained.references_for(name)
        membership = trained.membership[target]
        for snapshot, epoch in enumerate(trained.snapshot_epochs):
            loss = softplus_neg(trained.signal[target, snapshot])
            measured = measured_tpr(lira(trained, target, references, snapshot), membership)
            record = {"setting": trained.setting.name, "target": name, "epoch": int(epoch),
                      "phase": "selection" if name in SELECTION_TARGETS else "report",
                      "train_accuracy": float(np.mean(trained.signal[target, snapshot,
                                                                      membership] > 0)),
                      "test_accuracy": float(np.mean(trained.signal[target, snapshot,
                                                                     ~membership] > 0))}
            for fpr in FPRS:
                record[f"lira_tpr@{fpr:g}"] = measured[fpr]
                for estimator, function in ESTIMATORS.items():
                    record[f"{estimator}@{fpr:g}"] = function(loss[membership],
                                                              loss[~membership], fpr)
            records.append(record)
    return records


def ratio_summary(records: list[dict], estimator: str, fpr: float) -> dict:
    ratios = np.array([r[f"{estimator}@{fpr:g}"] / r[f"lira_tpr@{fpr:g}"] for r in records
                       if r[f"lira_tpr@{fpr:g}"] > 0])
    within = np.mean((ratios >= 1 / 1.5) & (ratios <= 1.5)) if len(ratios) else float("nan")
    return {"n": len(ratios), "min": float(ratios.min()), "median": float(np.median(ratios)),
            "max": float(ratios.max()), "within_1.5x": float(within)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--settings", default=",".join(SETTINGS))
    args = parser.parse_args()
    records = []
    for name in args.settings.split(","):
        records.extend(evaluate(load_setting(SETTINGS[name])))
    summary = {}
    for phase in ("selection", "report"):
        chosen = [r for r in records if r["phase"] == phase]
        summary[phase] = {f"{e}@{f:g}": ratio_summary(chosen, e, f)
                          for e in ESTIMATORS for f in FPRS}
    headline = [r for r in records if r["target"] == "quickstart"
                and r["epoch"] in QUICKSTART_EPOCHS]
    summary["quickstart"] = {f"{e}@{f:g}": ratio_summary(headline, e, f)
                             for e in ESTIMATORS for f in FPRS}
    print(f"{'setting':13s} {'ep':>3s} {'acc in/out':>11s} {'LiRA@1%':>8s} {'LiRA@.1%':>8s} "
          + " ".join(f"{e[:12] + '@' + format(f, '.1%'):>18s}" for e in ESTIMATORS for f in FPRS))
    for r in headline:
        print(f"{r['setting']:13s} {r['epoch']:3d} {r['train_accuracy']:.3f}/{r['test_accuracy']:.3f} "
              f"{r['lira_tpr@0.01']:8.4f} {r['lira_tpr@0.001']:8.4f} "
              + " ".join(f"{r[f'{e}@{f:g}']:9.4f} ({r[f'{e}@{f:g}'] / max(r[f'lira_tpr@{f:g}'], 1e-9):4.2f}x)"
                         for e in ESTIMATORS for f in FPRS))
    for phase, values in summary.items():
        print(phase)
        for key, value in values.items():
            print(f"  {key:28s} n={value['n']:3d} ratio {value['min']:.2f}..{value['max']:.2f} "
                  f"median {value['median']:.2f}, within 1.5x: {value['within_1.5x']:.0%}")
    atomic_write_json(RESULTS / "risk_estimate.json", {
        "schema_version": 1, "fprs": list(FPRS), "summary": summary, "records": records})


if __name__ == "__main__":
    main()
