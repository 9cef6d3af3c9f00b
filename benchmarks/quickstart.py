"""Run the embedded quickstart (Fashion-MNIST) and summarise it, or summarise a finished run.

    PYTHONPATH=src python benchmarks/quickstart.py [--out DIR]      # run it, timed
    PYTHONPATH=src python benchmarks/quickstart.py --summarize DIR  # an existing run directory

Prints, per variant and audit epoch: test accuracy, the entire-dataset AUC of each attack, the
largest AUC over slices, and ε under DP — what the codelab teaches: AUC rising with epochs,
the DP variant near 0.5 with its ε. Targets: non-DP test accuracy >= 0.88; the whole run
under 10 minutes on an idle 2-core machine.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from memberscope.experiment.config import parse_toml
from memberscope.experiment.demo import quickstart_text
from memberscope.store import read_jsonl


def summarize(run_dir: Path) -> None:
    rows = [r for r in read_jsonl(run_dir / "results.jsonl") if r.get("kind") == "row"]
    table: dict[tuple[str, int], list[dict]] = defaultdict(list)
    for row in rows:
        table[row["metadata"]["model"], row["metadata"]["epoch"]].append(row)
    print(f"{'model':20s} {'epoch':>5s} {'test acc':>8s} {'AUC thr':>8s} {'AUC lr':>7s} "
          f"{'max AUC':>8s} {'epsilon':>8s} {'train s':>8s} {'report s':>8s}")
    for (model, epoch), group in sorted(table.items()):
        meta = group[0]["metadata"]
        entire = {r["attack"]: r["auc"] for r in group if r["slice"] == "entire_dataset"}
        epsilon = meta.get("epsilon")
        report = meta.get("inference_seconds", 0) + meta.get("audit_seconds", 0)
        print(f"{model:20s} {epoch:5d} {meta['test_accuracy']:8.4f} "
              f"{entire.get('threshold', float('nan')):8.3f} {entire.get('lr', float('nan')):7.3f} "
              f"{max(r['auc'] for r in group):8.3f} "
              f"{'-' if epsilon is None else f'{epsilon:.3f}':>8s} "
              f"{meta.get('epoch_seconds', float('nan')):8.1f} {report:8.1f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--summarize", type=Path, default=None)
    args = parser.parse_args()
    if args.summarize:
        summarize(args.summarize)
        return
    from memberscope.experiment.runner import run_experiment

    out = args.out or Path(tempfile.mkdtemp(prefix="quickstart-")) / "run"
    started = time.perf_counter()
    run_experiment(parse_toml(quickstart_text()), out, notify=print)
    print(f"\nwhole run: {time.perf_counter() - started:.0f} s wall\n")
    summarize(out)


if __name__ == "__main__":
    main()
