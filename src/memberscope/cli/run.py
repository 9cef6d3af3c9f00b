"""``memberscope run CONFIG.toml``: train the config's model variants with privacy monitoring."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    """Add the ``run`` subcommand."""
    parser = subparsers.add_parser(
        "run", help="train model variants from a TOML config, auditing them as they train",
        description="Train every model variant of CONFIG.toml, run membership inference "
                    "attacks every epochs_per_report epochs, and write config.toml, "
                    "results.jsonl, scores/, checkpoints/ and report.html to the run "
                    "directory. A killed run continues with --resume.")
    parser.add_argument("config", type=Path, help="the experiment config (TOML)")
    parser.add_argument("--out", type=Path, default=None,
                        help="run directory (default: runs/<config name>)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --out from its checkpoints")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    """Check the config, run it, print where the results and report are."""
    from memberscope.experiment.config import load_config
    from memberscope.experiment.runner import run_experiment

    config = load_config(args.config)
    run_dir = args.out or Path("runs") / config.name
    progress = not args.no_progress and sys.stderr.isatty()
    summary = run_experiment(config, run_dir, resume=args.resume, progress=progress,
                             notify=lambda line: print(line, flush=True))
    print()
    for variant in summary.variants:
        epsilon = "" if variant.epsilon is None else f", DP epsilon {variant.epsilon:.2f}"
        print(f"{variant.label}: epoch {variant.epoch}, train acc {variant.train_accuracy:.3f},"
              f" test acc {variant.test_accuracy:.3f}, {variant.leakage}{epsilon}")
    print(f"\nresults: {summary.results_path}")
    if summary.report_path is not None:
        print(f"report:  {summary.report_path}")
    else:
        print("report:  not written (the report module is not installed)")
    return 0
