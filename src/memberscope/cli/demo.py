"""``memberscope demo``: the built-in default job behind ``make demo``.

Runs the embedded quickstart experiment (see :mod:`memberscope.experiment.demo`) with
``memberscope run``; without torch it audits a scikit-learn model's saved outputs with
``memberscope audit`` instead. It lives in the CLI because it drives the CLI exactly as a user
types it: the experiment layer below never imports the CLI.
"""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    """Add the ``demo`` subcommand."""
    parser = subparsers.add_parser(
        "demo", help="run the built-in quickstart experiment (what `make demo` runs)",
        description="Train and audit the quickstart's model variants on Fashion-MNIST (or on "
                    "scikit-learn's digits where Fashion-MNIST is not available); a run left "
                    "unfinished in --out continues.")
    parser.add_argument("--out", type=Path, default=Path("demo-out"),
                        help="output directory (default: demo-out)")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    """Run the quickstart (or its digits fallback) into ``args.out``; returns the exit code."""
    from memberscope.cli import main as cli_main
    from memberscope.experiment.demo import (
        DIGITS_NOTICE,
        digits_config,
        fashion_mnist_available,
        quickstart_text,
        save_digits_outputs,
    )
    from memberscope.rundir import config_path as run_config_path

    out: Path = args.out
    if importlib.util.find_spec("torch") is None:
        print("notice: torch is not installed (pip install 'memberscope[torch]'); auditing a "
              "scikit-learn model's saved outputs instead of training with monitoring")
        outputs_path = save_digits_outputs(out / "digits_outputs.npz")
        return cli_main(["audit", str(outputs_path), "--attacks", "threshold,lr",
                         "--slices", "entire,class", "--out", str(out / "audit")])
    text = quickstart_text()
    if fashion_mnist_available():
        run_dir = out / "quickstart"
    else:
        print(DIGITS_NOTICE, flush=True)
        text = digits_config(text)
        run_dir = out / "quickstart_digits"
    config_path = out / "config.toml"
    out.mkdir(parents=True, exist_ok=True)
    config_path.write_text(text, encoding="utf-8")
    resume = run_config_path(run_dir).exists()
    if resume:
        print(f"continuing the run in {run_dir} (delete it to start afresh)", flush=True)
    return cli_main(["run", str(config_path), "--out", str(run_dir),
                     *(["--resume"] if resume else [])])
