"""Estimating LiRA's TPR at low FPR without reference models, against measured LiRA (issue 18).

Measured: LiRA online (global variance) with 16 reference models of the same recipe,
checkpointed at the same epoch as the target (the recipe has no learning-rate schedule, so a
model after e of its 36 epochs is a model trained for e epochs), on the target's whole
population (5,000 members, 5,000 non-members): the largest TPR with FPR <= 1% and <= 0.1%.

Estimated: from the target's own losses on its members and non-members at that epoch only
(:func:`memberscope.lira_estimate.estimate_lira_tpr`: the "tail" estimate and the Gaussian
one at each κ of ``KAPPAS``), no reference model; the plain loss attack is shown beside.

Points: every (target, epoch) with epoch in 3, 6, ..., 36, for every target of every setting of
``_risk_models``; the quickstart's own two models at its audit epochs 6, 12, ..., 36 are the
headline table. Estimator variants are chosen on the selection targets (pair models 0 and 1)
and reported on the others.

Usage: python benchmarks/risk_estimate.py [--settings ...]
Writes the summaries and the quickstart table to ``benchmarks/results/risk_estimate.json``
and every record to ``benchmarks/results/cache/risk/risk_estimate_records.json``.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from _risk_models import CACHE, TrainedSetting
from memberscope.lira_estimate import (
    GAUSSIAN_KAPPA,
    estimate_lira_tpr,
    gaussian_shift_tpr,
    loss_to_logit,
)
from memberscope.metrics import roc_curve, tpr_at_fpr_from_roc
from memberscope.store import atomic_write_json
from risk_precision import SELECTION_TARGETS, lira, records_from_command_line, softplus_neg

RESULTS = Path(__file__).parent / "results"
FPRS = (0.01, 0.001)
QUICKSTART_EPOCHS = (6, 12, 18, 24, 30, 36)


KAPPAS = tuple(np.round(np.arange(0.30, 0.901, 0.05), 2))


def estimates(member_loss: np.ndarray, nonmember_loss: np.ndarray) -> dict[str, float]:
    """Every estimate of one (target, epoch): ``"<method>@<fpr>"`` -> TPR; the Gaussian one
    for each κ of ``KAPPAS``; and the plain loss attack's TPR for comparison."""
    values = {}
    for estimate in estimate_lira_tpr(member_loss, nonmember_loss, fprs=FPRS, method="tail"):
        values[f"tail@{estimate.fpr:g}"] = estimate.tpr
    members, nonmembers = loss_to_logit(member_loss), loss_to_logit(nonmember_loss)
    for kappa in KAPPAS:
        for fpr, tpr in gaussian_shift_tpr(members, nonmembers, FPRS, kappa=kappa).items():
            values[f"gaussian:{kappa:.2f}@{fpr:g}"] = tpr
    # As `memberscope risk` reads them: float64 cross-entropies round to 0 below ~1e-16.
    resolved = [np.where(loss < np.finfo(np.float64).eps / 2, 0.0, loss)
                for loss in (member_loss, nonmember_loss)]
    for estimate in estimate_lira_tpr(*resolved, fprs=FPRS):
        values[f"estimate_lira_tpr@{estimate.fpr:g}"] = estimate.tpr
    scores = -np.concatenate([member_loss, nonmember_loss])
    truth = np.r_[np.ones(len(member_loss), bool), np.zeros(len(nonmember_loss), bool)]
    for fpr, tpr in measured_tpr(scores, truth).items():
        values[f"loss attack@{fpr:g}"] = tpr
    return values


def measured_tpr(scores: np.ndarray, membership: np.ndarray) -> dict[float, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        values = tpr_at_fpr_from_roc(roc_curve(scores, membership), FPRS)
    return {f: float(values[f] or 0.0) for f in FPRS}


def evaluate(trained: TrainedSetting, targets: list[str] | None = None) -> list[dict]:
    """One record per (target, snapshot epoch): measured LiRA TPRs and every estimate."""
    records = []
    for name in trained.names if targets is None else targets:
        target = trained.index(name)
        references = trained.references_for(name)
        membership = trained.membership[target]
        for snapshot, epoch in enumerate(trained.snapshot_epochs):
            signal = trained.signal[target, snapshot]
            loss = np.maximum(softplus_neg(signal), np.finfo(np.float64).tiny)
            measured = measured_tpr(lira(trained, target, references, snapshot), membership)
            record = {"setting": trained.setting.name, "target": name, "epoch": int(epoch),
                      "phase": "selection" if name in SELECTION_TARGETS else "report",
                      "train_accuracy": float(np.mean(trained.signal[target, snapshot,
                                                                      membership] > 0)),
                      "test_accuracy": float(np.mean(trained.signal[target, snapshot,
                                                                     ~membership] > 0))}
            for fpr in FPRS:
                record[f"lira_tpr@{fpr:g}"] = measured[fpr]
            record.update(estimates(loss[membership], loss[~membership]))
            records.append(record)
    return records


def log_ratios(records: list[dict], estimator: str, fpr: float) -> np.ndarray:
    """log(estimate / measured) of each record whose measured TPR is above 0."""
    return np.array([np.log(max(r[f"{estimator}@{fpr:g}"], 1e-12) / r[f"lira_tpr@{fpr:g}"])
                     for r in records if r[f"lira_tpr@{fpr:g}"] > 0])


def ratio_summary(records: list[dict], estimator: str, fpr: float) -> dict:
    ratios = np.exp(log_ratios(records, estimator, fpr))
    within = float(np.mean((ratios >= 1 / 1.5) & (ratios <= 1.5))) if len(ratios) else None
    return {"n": len(ratios), "min": float(ratios.min()), "median": float(np.median(ratios)),
            "max": float(ratios.max()), "within_1.5x": within}


def choose(records: list[dict]) -> str:
    """The estimator (tail, or Gaussian at one κ) with the smallest mean |log ratio| at
    1% FPR on the given (selection) records."""
    names = ["tail"] + [f"gaussian:{kappa:.2f}" for kappa in KAPPAS]
    errors = {name: float(np.mean(np.abs(log_ratios(records, name, 0.01)))) for name in names}
    return min(errors, key=lambda name: errors[name])


def main() -> None:
    records, selection_only = records_from_command_line(evaluate)
    selection = [r for r in records if r["phase"] == "selection"]
    report = [r for r in records if r["phase"] == "report"]
    chosen = choose(selection)
    if selection_only:
        for name in ["tail"] + [f"gaussian:{kappa:.2f}" for kappa in KAPPAS]:
            print(f"{name:14s} mean |log(estimate / LiRA)| at 1% FPR "
                  f"{np.mean(np.abs(log_ratios(selection, name, 0.01))):.3f}, "
                  f"{ratio_summary(selection, name, 0.01)}")
        print(f"chosen: {chosen}")
        return
    if chosen.startswith("gaussian") and float(chosen.split(":")[1]) != GAUSSIAN_KAPPA:
        print(f"NOTE: selection chose {chosen}; memberscope.lira_estimate.GAUSSIAN_KAPPA is "
              f"{GAUSSIAN_KAPPA}")
    shown = list(dict.fromkeys(["tail", chosen, "estimate_lira_tpr", "loss attack"]))
    headline = [r for r in records if r["target"] == "quickstart"
                and r["epoch"] in QUICKSTART_EPOCHS]
    summary = {group: {f"{e}@{f:g}": ratio_summary(rows, e, f) for e in shown for f in FPRS}
               for group, rows in (("selection", selection), ("report", report),
                                   ("quickstart", headline))}
    print(f"chosen on the selection targets: {chosen}\n")
    print(f"{'setting':13s} {'ep':>3s} {'acc in/out':>11s} {'LiRA@1%':>8s} {'LiRA@.1%':>8s} "
          + " ".join(f"{e[:13] + '@' + format(f, '.1%'):>19s}" for e in shown for f in FPRS))
    for r in headline:
        cells = []
        for e in shown:
            for f in FPRS:
                measured = r[f"lira_tpr@{f:g}"]
                ratio = f"{r[f'{e}@{f:g}'] / measured:4.2f}x" if measured > 0 else "  - "
                cells.append(f"{r[f'{e}@{f:g}']:8.4f} ({ratio})")
        print(f"{r['setting']:13s} {r['epoch']:3d} {r['train_accuracy']:.3f}/"
              f"{r['test_accuracy']:.3f} {r['lira_tpr@0.01']:8.4f} {r['lira_tpr@0.001']:8.4f} "
              + " ".join(f"{c:>19s}" for c in cells))
    # Per setting, and with κ chosen on the other two settings' selection targets only.
    summary["by_setting"] = {}
    summary["leave_one_setting_out"] = {}
    for setting in dict.fromkeys(r["setting"] for r in records):
        rows = [r for r in report if r["setting"] == setting]
        summary["by_setting"][setting] = {f"{chosen}@{f:g}": ratio_summary(rows, chosen, f)
                                          for f in FPRS}
        others = [r for r in selection if r["setting"] != setting]
        if others:
            elsewhere = choose(others)
            summary["leave_one_setting_out"][setting] = {
                "chosen_elsewhere": elsewhere,
                **{f"{elsewhere}@{f:g}": ratio_summary(rows, elsewhere, f) for f in FPRS}}
    for group, values in summary.items():
        if group in ("by_setting", "leave_one_setting_out"):
            for setting, entries in values.items():
                print(f"{group}: {setting}")
                for key, value in entries.items():
                    if isinstance(value, str):
                        print(f"  chosen on the other settings: {value}")
                        continue
                    print(f"  {key:24s} n={value['n']:3d} ratio {value['min']:.2f}.."
                          f"{value['max']:.2f} median {value['median']:.2f}, within 1.5x: "
                          f"{value['within_1.5x']:.0%}")
            continue
        print(group)
        for key, value in values.items():
            print(f"  {key:24s} n={value['n']:3d} ratio {value['min']:.2f}..{value['max']:.2f}"
                  f" median {value['median']:.2f}, within 1.5x: {value['within_1.5x']:.0%}")
    header = {"schema_version": 1, "fprs": list(FPRS), "chosen": chosen,
              "kappas": list(KAPPAS)}
    keys = ("setting", "target", "epoch", "train_accuracy", "test_accuracy",
            *(f"{e}@{f:g}" for e in ("lira_tpr", *shown) for f in FPRS))
    atomic_write_json(RESULTS / "risk_estimate.json", {
        **header, "summary": summary,
        "quickstart": [{key: r[key] for key in keys} for r in headline]})
    # Every (target, epoch) record with every estimate: too long to keep in the repository.
    atomic_write_json(CACHE / "risk_estimate_records.json", {**header, "records": records})


if __name__ == "__main__":
    main()
