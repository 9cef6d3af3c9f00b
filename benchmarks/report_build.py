"""Benchmark: build the full HTML report of a generated run.

3 model variants (one trained with DP) × 25 report points × 11 slices × 2 attacks = 1,650
result rows, appended to ``results.jsonl`` as the trainer does, plus per-example scores for
ROC curves. Targets (issue 4): the report builds in ≤ 10 s and the HTML is ≤ 5 MB.

    PYTHONPATH=src python benchmarks/report_build.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from memberscope.metrics import EpsilonBound
from memberscope.results import AuditResult, AuditRow
from memberscope.store import append_result, atomic_write_npz

VARIANTS = (("2 layers", 0.50, None), ("3 layers", 0.52, None), ("3 layers DP-Adam", 0.49, 4.0))
EPOCHS = tuple(range(2, 51, 2))  # 25 report points, as the codelab (every 2 of 50 epochs)
SLICES = ("entire_dataset", *(f"class={k}" for k in range(10)))
ATTACKS = ("threshold", "lr")


def generate_run(run_dir: Path, seed: int = 0) -> int:
    """Write results.jsonl, config.toml and scores/*.npz; return the number of rows."""
    rng = np.random.default_rng(seed)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.toml").write_text(
        'name = "benchmark"\nepochs = 50\nepochs_per_report = 2\n', encoding="utf-8")
    n_rows = 0
    for epoch in EPOCHS:
        for model, base, dp_epsilon in VARIANTS:
            progress = epoch / EPOCHS[-1]
            metadata = {"model": model, "epoch": epoch,
                        "train_accuracy": 0.55 + 0.4 * progress,
                        "test_accuracy": 0.55 + 0.15 * progress - 0.05 * progress ** 2}
            if dp_epsilon is not None:
                metadata["epsilon"] = dp_epsilon * np.sqrt(progress)
            rows = []
            for attack in ATTACKS:
                for slice_name in SLICES:
                    auc = base + (0.02 if dp_epsilon else 0.2) * progress + rng.normal(0, 0.01)
                    advantage = max(0.0, 2 * (auc - 0.5))
                    rows.append(AuditRow(
                        slice=slice_name, attack=attack, n_members=1000, n_nonmembers=1000,
                        auc=auc, advantage=advantage, ppv=0.5 + advantage / 2,
                        tpr_at_fpr={0.001: advantage / 30, 0.01: advantage / 10,
                                    0.1: advantage / 2},
                        epsilon_lower_bound=EpsilonBound(advantage * 2, advantage, 0.05, 0.0),
                        metadata=metadata))
            append_result(run_dir / "results.jsonl", AuditResult(rows=tuple(rows)))
            n_rows += len(rows)
    membership = np.arange(20_000) < 10_000
    for model, _, dp_epsilon in VARIANTS:
        shift = 0.05 if dp_epsilon else 0.6
        scores = {f"scores_{a}": rng.normal(0, 1, 20_000) + shift * membership for a in ATTACKS}
        atomic_write_npz(run_dir / "scores" / f"{model.replace(' ', '_')}_epoch50.npz",
                         {"membership": membership, **scores})
    return n_rows


def main() -> None:
    """Generate once, build the report ``--repeats`` times, print median time and size."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temp:
        run_dir = Path(temp) / "run"
        started = time.perf_counter()
        n_rows = generate_run(run_dir)
        print(f"generated {n_rows} rows in {time.perf_counter() - started:.2f} s")
        started = time.perf_counter()
        import matplotlib.figure  # noqa: F401 - a one-off cost, reported on its own

        from memberscope.report.html import write_run_report

        print(f"import matplotlib + report: {time.perf_counter() - started:.2f} s")
        times, cpu_times = [], []
        for _ in range(args.repeats):
            started, cpu_started = time.perf_counter(), time.process_time()
            path = write_run_report(run_dir, max_auc=0.6)
            times.append(time.perf_counter() - started)
            cpu_times.append(time.process_time() - cpu_started)
        size = path.stat().st_size
        figures = sorted((run_dir / "figures").iterdir())
        print(f"report build: median {statistics.median(times):.2f} s over {len(times)} "
              f"(min {min(times):.2f}, max {max(times):.2f}); CPU time median "
              f"{statistics.median(cpu_times):.2f} s (wall > CPU means a busy machine); "
              "target <= 10 s")
        print(f"report.html: {size / 1e6:.2f} MB (target <= 5 MB); figures: "
              + ", ".join(f"{f.name} {f.stat().st_size / 1e3:.0f} kB" for f in figures))


if __name__ == "__main__":
    main()
