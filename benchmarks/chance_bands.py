"""Is the grey chance band of each attack kind right? No-signal audits against their bands.

    PYTHONPATH=src .venv/bin/python benchmarks/chance_bands.py --out DIR [--audits 400]
        [--start 0] [--kinds threshold,lr,rf,knn]       # validation, appends DIR/audits.jsonl
    PYTHONPATH=src .venv/bin/python benchmarks/chance_bands.py --out DIR --summarize
    PYTHONPATH=src .venv/bin/python benchmarks/chance_bands.py --out DIR --calibrate
        [--reps 300] [--kinds lr,mlp,rf,knn] [--sizes 100:100,…]  # DIR/calibration.jsonl
    PYTHONPATH=src .venv/bin/python benchmarks/chance_bands.py --out DIR
        --calibrate-class-slices [--audits 300] [--kinds lr,knn,rf]
                                            # DIR/calibration_class_slices.jsonl

A figure's band is the 95% quantile of the maximum, over the rows a point is the worst of,
of a metric under H0 (``memberscope.null_reference``); trained attacks' bands widen by their
pooled fold scores' spread (``Attack.null_pooling``).

Validation: each audit is of fresh no-signal outputs (the codelab-like synthetic with
``leak=0``; 1,000 members and 1,000 non-members, 10 classes; seed 800000 + index), all kinds
at once, on the entire dataset and each class (11 rows per kind). For each kind and metric
(AUC, advantage, TPR at 0.1%, 1%, 10% FPR over the rows resolving it) it records the maximum
over the kind's rows, the kind's band and the band as if the scores were exchangeable (the
Mann-Whitney spread, what every kind used before). ``--summarize`` prints, per kind and
metric, in how many audits the maximum left the band (target 5% ± 1.5%), and the share of
rows whose TPR at the lowest FPR it resolves has an exact p-value ≤ 0.05
(``null_reference.tpr_at_fpr_p_value``, widened for trained kinds; target ≤ 5%) and of
audits where one is significant after Holm over the kind's rows (the low-FPR headline's
family; target ≤ 5%).

Calibration (seeds 700000 + rep, other than the validation's): per trained kind and slice
size, the sd of the pooled AUC over ``--reps`` no-signal slices, divided by the Mann-Whitney
sd, and the ``fold_dependence`` it implies: (ratio² − 1) / ((k − 1) ρ_linear).

Calibration on class slices: the same, from the class slices (about 100 per side) of
no-signal audits shaped like the validation's but on other seeds (810000 + index).

Every mode appends one JSON line per audit (or size) as it finishes, so a long run (rf takes
~2-5 s an audit on a shared core) can be split with ``--start``/``--audits`` and resumed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import memberscope as ms
from _synthetic import codelab_outputs
from memberscope.null_reference import (
    fold_correlation,
    max_null_quantile,
    null_auc_sd,
    tpr_at_fpr_p_value,
)
from memberscope.significance import significant_rows

warnings.filterwarnings("ignore", category=ms.LowResolutionWarning)

PER_SIDE = 1000
METRICS = ("auc", "advantage", "tpr@0.001", "tpr@0.01", "tpr@0.1")
CALIBRATION_SIZES = ((100, 100), (300, 300), (1000, 1000), (3000, 3000), (3000, 600),
                     (200, 1000))


def _resolved(rows: Sequence[ms.AuditRow], metric: str) -> list[ms.AuditRow]:
    if not metric.startswith("tpr@"):
        return list(rows)
    fpr = float(metric[4:])
    return [r for r in rows if r.n_nonmembers * fpr >= 1 - 1e-9]


def audit_record(index: int, kinds: Sequence[str]) -> dict[str, object]:
    """One no-signal audit: per kind, each row's sizes and metrics (bands are computed when
    summarising, so the record does not depend on the code's constants)."""
    seed = 800_000 + index
    outputs = codelab_outputs(seed=seed, n_members=PER_SIDE, n_nonmembers=PER_SIDE, leak=0.0)
    result = ms.audit(outputs, attacks=list(kinds), slices="entire,class", seed=seed)
    record: dict[str, object] = {"index": index}
    for kind in kinds:
        record[kind] = [{"n_members": r.n_members, "n_nonmembers": r.n_nonmembers,
                         **{m: r.metric(m) for m in METRICS}}
                        for r in result if r.attack == kind]
    return record


def validate(out: Path, start: int, audits: int, kinds: Sequence[str]) -> None:
    path = out / "audits.jsonl"
    started = time.perf_counter()
    with path.open("a") as sink:
        for index in range(start, start + audits):
            sink.write(json.dumps(audit_record(index, kinds)) + "\n")
            sink.flush()
    print(f"{audits} audits ({', '.join(kinds)}) appended to {path} in "
          f"{time.perf_counter() - started:.0f} s")


def _resolved(rows: list[dict[str, float]], metric: str) -> list[dict[str, float]]:
    return [r for r in rows if not np.isnan(r[metric])]


def _kind_summary(kind: str, audits: list[list[dict[str, float]]]) -> None:
    pooling = ms.get_attack(kind).null_pooling()
    parts = []
    for metric in METRICS:
        above = before = counted = 0
        for rows in audits:
            used = _resolved(rows, metric)
            if not used:
                continue
            sizes = [(int(r["n_members"]), int(r["n_nonmembers"])) for r in used]
            maximum = max(r[metric] for r in used)
            counted += 1
            above += maximum > max_null_quantile(metric, sizes, pooling=[pooling] * len(used))
            before += maximum > max_null_quantile(metric, sizes)
        parts.append(f"{metric} {above}/{counted} = {above / counted:.1%} "
                     f"({before / counted:.1%})")
    print(f"  {kind:9s}: " + "; ".join(parts))
    for metric in METRICS[2:]:
        fpr = float(metric[4:])
        per_audit = [[tpr_at_fpr_p_value(r[metric], int(r["n_members"]),
                                         int(r["n_nonmembers"]), fpr, pooling)
                      for r in _resolved(rows, metric)] for rows in audits]
        flat = np.concatenate([np.asarray(p, dtype=float) for p in per_audit])
        holm = sum(bool(significant_rows(p).any()) for p in per_audit if p)
        print(f"  {'':9s}  {metric}: exact p <= 0.05 in {np.mean(flat <= 0.05):.1%} of "
              f"{len(flat)} rows, Holm over the kind's rows significant in {holm}/"
              f"{len(audits)} audits (target <= 5%)")


def summarize(out: Path) -> None:
    records = [json.loads(line) for line in (out / "audits.jsonl").read_text().splitlines()]
    records = list({r["index"]: r for r in records}.values())  # a resumed run may repeat one
    kinds = [k for k in records[0] if k != "index"]
    print(f"{len(records)} no-signal audits, {PER_SIDE:,} per side, entire + 10 classes "
          f"(seeds 800000 + index): audits whose maximum over a kind's rows left the 95% band "
          f"(target 5% ± 1.5%); in brackets the exchangeable (Mann-Whitney) band")
    for kind in kinds:
        _kind_summary(kind, [[{k: (np.nan if v is None else v) for k, v in row.items()}
                              for row in r[kind]] for r in records if kind in r])


def calibrate(out: Path, reps: int, kinds: Sequence[str],
              sizes: Sequence[tuple[int, int]] = CALIBRATION_SIZES) -> None:
    path = out / "calibration.jsonl"
    for kind in kinds:
        attack = ms.get_attack(kind)
        options = attack.validate_options({})
        pooling = attack.null_pooling()
        assert pooling is not None, f"{kind} pools no folds"
        linear = type(pooling)(pooling.n_folds, pooling.max_train_per_side, ((1, 1.0),))
        for n_members, n_nonmembers in sizes:
            started = time.perf_counter()
            aucs = []
            for rep in range(reps):
                seed = 700_000 + rep
                outputs = codelab_outputs(seed=seed, n_members=n_members,
                                          n_nonmembers=n_nonmembers, leak=0.0)
                scored = attack.scores_for_slice(attack.signal(outputs, None, options),
                                                 outputs.membership, seed, options)
                aucs.append(ms.roc_metrics(scored.scores, outputs.membership)["auc"])
            ratio = float(np.std(aucs, ddof=1)) / null_auc_sd(n_members, n_nonmembers)
            linear_rho = fold_correlation(n_members, n_nonmembers, linear)
            record = {"attack": kind, "n_members": n_members, "n_nonmembers": n_nonmembers,
                      "reps": reps, "sd_ratio": ratio,
                      "dependence": (ratio**2 - 1) / ((pooling.n_folds - 1) * linear_rho),
                      "seconds": round(time.perf_counter() - started)}
            with path.open("a") as sink:
                sink.write(json.dumps(record) + "\n")
            print(json.dumps(record), flush=True)


def calibrate_on_class_slices(out: Path, audits: int, kinds: Sequence[str]) -> None:
    """The dependence as audits see it: class slices (about 100 per side) of no-signal
    audits of 1,000 members and 1,000 non-members (seeds 810000 + index, apart from the
    validation's), each row's AUC standardised by its Mann-Whitney sd."""
    path = out / "calibration_class_slices.jsonl"
    for kind in kinds:
        started = time.perf_counter()
        pooling = ms.get_attack(kind).null_pooling()
        assert pooling is not None, f"{kind} pools no folds"
        linear = type(pooling)(pooling.n_folds, pooling.max_train_per_side, ((1, 1.0),))
        standardised, linear_rho = [], []
        for index in range(audits):
            seed = 810_000 + index
            outputs = codelab_outputs(seed=seed, n_members=PER_SIDE, n_nonmembers=PER_SIDE,
                                      leak=0.0)
            for row in ms.audit(outputs, attacks=kind, slices="class", seed=seed):
                sd = null_auc_sd(row.n_members, row.n_nonmembers)
                standardised.append((row.auc - 0.5) / sd)
                linear_rho.append(fold_correlation(row.n_members, row.n_nonmembers, linear))
        ratio = float(np.sqrt(np.mean(np.square(standardised))))
        record = {"attack": kind, "audits": audits, "rows": len(standardised),
                  "sd_ratio": ratio,
                  "dependence": (ratio**2 - 1) / ((pooling.n_folds - 1) * np.mean(linear_rho)),
                  "seconds": round(time.perf_counter() - started)}
        with path.open("a") as sink:
            sink.write(json.dumps(record) + "\n")
        print(json.dumps(record), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--audits", type=int, default=400)
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--kinds", default=None)
    parser.add_argument("--summarize", action="store_true")
    parser.add_argument("--calibrate", action="store_true")
    parser.add_argument("--calibrate-class-slices", action="store_true",
                        dest="class_slices")
    parser.add_argument("--reps", type=int, default=300)
    parser.add_argument("--sizes", default=None,
                        help="calibration sizes as members:non-members,… (default: all)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.summarize:
        summarize(args.out)
    elif args.class_slices:
        calibrate_on_class_slices(args.out, args.audits, (args.kinds or "lr,knn,rf").split(","))
    elif args.calibrate:
        sizes = CALIBRATION_SIZES if args.sizes is None else [
            tuple(int(n) for n in size.split(":")) for size in args.sizes.split(",")]
        calibrate(args.out, args.reps, (args.kinds or "lr,mlp,rf,knn").split(","), sizes)
    else:
        validate(args.out, args.start, args.audits,
                 (args.kinds or "threshold,lr,rf,knn").split(","))


if __name__ == "__main__":
    main()
