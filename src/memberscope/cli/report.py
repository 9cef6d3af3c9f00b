"""``memberscope report PATH``: the HTML report of a run directory or an audit result."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from memberscope.cli._table import render_summary

if TYPE_CHECKING:
    from memberscope.summary import Summary


def register(subparsers: Any) -> None:
    """Add the ``report`` subcommand."""
    parser = subparsers.add_parser(
        "report", help="write the HTML privacy report of a run or an audit",
        description="Write one self-contained HTML report (opens offline, from file://) for a "
                    "training run directory (results.jsonl) or an audit output directory / "
                    "result.json, and print a summary table.")
    parser.add_argument("path", type=Path,
                        help="run directory, audit output directory, or result.json")
    parser.add_argument("--out", type=Path, default=None,
                        help="HTML file to write (default: report.html next to the results)")
    parser.add_argument("--max-auc", type=float, default=None, dest="max_auc",
                        help="privacy limit for the suggested checkpoint: the most accurate "
                             "epoch whose worst AUC is at most this (e.g. 0.6)")
    parser.add_argument("--metric", default="auc",
                        help="the metric the worst result, the trends and the suggested "
                             "checkpoint rank by: auc (default), advantage, ppv, "
                             "epsilon_confident, epsilon_point or tpr@F (e.g. tpr@0.01)")
    parser.set_defaults(handler=handle)


def _kind(path: Path) -> str:
    """``run`` (results.jsonl), ``audit`` (result.json) or raise naming what was expected."""
    from memberscope.rundir import is_run_dir
    from memberscope.store import RESULT_FILE

    if path.is_file() and path.suffix == ".json":
        return "audit"
    if path.is_file() and path.name.endswith(".jsonl"):
        return "run"
    if is_run_dir(path):
        return "run"
    if path.is_dir() and (path / RESULT_FILE).is_file():
        return "audit"
    raise FileNotFoundError(f"path {str(path)!r} is not a run directory (with results.jsonl), "
                            "an audit directory (with result.json) or a result.json file")


def handle(args: argparse.Namespace) -> int:
    """Write the report and print the summary table."""
    from memberscope.errors import InputError
    from memberscope.metric_definitions import AUC, parse_metric
    from memberscope.report.html import write_audit_report, write_run_report
    from memberscope.results import AuditResult, ResultsCollection
    from memberscope.store import REPORT_FILE, load_result, load_results
    from memberscope.summary import summarize

    metric = parse_metric(args.metric)
    if args.max_auc is not None and not 0.0 <= args.max_auc <= 1.0:
        raise InputError(f"--max-auc must be within [0, 1]; got {args.max_auc}")
    if args.max_auc is not None and metric is not AUC:
        raise InputError(f"--max-auc limits the worst AUC; it cannot be combined with "
                         f"--metric {metric.key}")
    path: Path = args.path
    kind = _kind(path)
    results: ResultsCollection | AuditResult
    if kind == "run":
        results = load_results(path)  # the run directory's results.jsonl, or the file given
        written = write_run_report(path, out=args.out, max_auc=args.max_auc,
                                   metric=metric.key)
    else:
        results = load_result(path)
        base = path.parent if path.is_file() else path
        written = write_audit_report(results, args.out or base / REPORT_FILE,
                                     max_auc=args.max_auc, metric=metric.key, source=str(path))
    if results.rows:
        print_summary(summarize(results, max_auc=args.max_auc, metric=metric.key))
    else:
        print("no results: every slice × attack pair was skipped")
    print(f"\nwrote {written}")
    return 0


def print_summary(summary: Summary) -> None:
    """The terminal summary (:func:`memberscope.cli._table.render_summary`): per model variant
    its last epoch (or the slices of a single audit), then the worst leakage, trends, the
    suggested checkpoint and DP consistency. User strings are printed literally."""
    print(render_summary(summary))
