"""Do run-level statements hold at the run's level? No-signal runs of several audits.

    PYTHONPATH=src .venv/bin/python benchmarks/run_family.py [--runs 200] [--out FILE]

A run here is 2 model variants × 3 epochs = 6 audits, each of fresh no-signal outputs (the
codelab-like synthetic with ``leak=0``: 1,000 members and 1,000 non-members, 10 classes),
attacks threshold + lr on the entire dataset and each class: 22 rows per audit, 132 per run.
For every run this counts

- ``per audit``: some row is ``significant`` in its own audit's family (Holm over 22 rows),
  what the run's report used to read as "leakage";
- ``run family``: some row is significant after Holm over the run's 132 rows
  (:func:`memberscope.results.run_family`), which every run-level statement now reads;
- ``report``: the report's summary (:func:`memberscope.summary.summarize`) names a
  worst result or a leaking variant: a run-level statement of leakage (target ≤ 5% of runs).

One line per run goes to ``--out`` (JSON lines) as it finishes, so a long run loses nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import memberscope as ms
from _synthetic import codelab_outputs
from memberscope.results import ResultsCollection, run_family
from memberscope.summary import summarize

warnings.filterwarnings("ignore", category=ms.LowResolutionWarning)

VARIANTS = ("2 layers", "3 layers")
EPOCHS = (6, 12, 18)
PER_SIDE = 1000


def one_run(run: int) -> dict[str, object]:
    collection = ResultsCollection()
    for v, variant in enumerate(VARIANTS):
        for epoch in EPOCHS:
            seed = 5_000_000 + 100 * run + 10 * v + epoch
            outputs = codelab_outputs(seed=seed, n_members=PER_SIDE, n_nonmembers=PER_SIDE,
                                      leak=0.0)
            result = ms.audit(outputs, attacks="threshold,lr", slices="entire,class",
                              seed=seed, metadata={"model": variant, "epoch": epoch,
                                                   "test_accuracy": 0.8})
            assert len(result) == 22, [s.reason for s in result.skipped]
            collection.add(result)
    rows = collection.rows
    family = run_family(rows)
    summary = summarize(rows)
    leaking_variants = len(summary.models) - len(summary.quiet_models)
    return {"run": run, "rows": len(rows), "family": family.describe(),
            "per_audit": any(row.significant for row in rows),
            "run_family": bool(family.significant_keys),
            "report": summary.worst is not None or leaking_variants > 0,
            "min_p": min(row.p_value for row in rows if row.p_value is not None)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--out", type=Path, default=Path("run_family.jsonl"))
    args = parser.parse_args()
    started = time.perf_counter()
    records = []
    with args.out.open("w") as out:
        for run in range(args.runs):
            record = one_run(run)
            records.append(record)
            out.write(json.dumps(record) + "\n")
            out.flush()
    seconds = time.perf_counter() - started
    print(f"{args.runs} no-signal runs of {len(VARIANTS) * len(EPOCHS)} audits "
          f"(threshold + lr, entire + 10 classes, {PER_SIDE:,} per side; {seconds:.0f} s); "
          f"{records[0]['family']}:")
    for key, what in (("per_audit", "a row significant in its own audit's family"),
                      ("run_family", "a row significant in the run's family"),
                      ("report", "the report states leakage (worst result or leaking variant)")):
        count = sum(bool(r[key]) for r in records)
        print(f"  {what}: {count}/{args.runs} = {count / args.runs:.1%}")


if __name__ == "__main__":
    main()
