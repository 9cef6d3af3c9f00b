"""``memberscope report PATH``: the HTML report of a run directory or an audit result."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


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
    from memberscope.report.html import write_audit_report, write_run_report
    from memberscope.report.summary import summarize
    from memberscope.store import REPORT_FILE, load_result, load_results

    if args.max_auc is not None and not 0.0 <= args.max_auc <= 1.0:
        raise InputError(f"--max-auc must be within [0, 1]; got {args.max_auc}")
    path: Path = args.path
    kind = _kind(path)
    if kind == "run":
        rows = load_results(path).rows  # the run directory's results.jsonl, or the file given
        written = write_run_report(path, out=args.out, max_auc=args.max_auc)
    else:
        result = load_result(path)
        rows = list(result.rows)
        base = path.parent if path.is_file() else path
        written = write_audit_report(result, args.out or base / REPORT_FILE,
                                     max_auc=args.max_auc, source=str(path))
    if rows:
        print_summary(summarize(rows, max_auc=args.max_auc), rows)
    else:
        print("no results: every slice × attack pair was skipped")
    print(f"\nwrote {written}")
    return 0


def print_summary(summary: Any, rows: Any) -> None:
    """A compact rich table: per model variant its last epoch (or the worst rows of a single
    audit), then the worst attack/slice and the suggested checkpoint. User strings are shown
    literally (rich markup is not interpreted)."""
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from memberscope.metric_definitions import parse_metric
    from memberscope.report._data import group_rows, metric_value
    from memberscope.report.summary import format_number
    from memberscope.results import distinguishable_rows, worst_distinguishable, worst_row

    console = Console(highlight=False)
    low = summary.low_fpr_metric
    table = Table(title="memberscope privacy summary", title_justify="left",
                  box=box.SIMPLE_HEAD, pad_edge=False)
    with_epoch = [r for r in rows if r.metadata.get("epoch") is not None]
    has_dp = any(r.metadata.get("epsilon") is not None for r in with_epoch)
    headers = ["model", "epoch", "test acc"] if with_epoch else ["slice"]
    headers += ["ε (DP)"] if has_dp else []
    headers += ["worst" if with_epoch else "worst attack", "AUC", "adv."]
    headers += [parse_metric(low).header] if low else []
    headers.append("ε ≥")
    for header in headers:
        text_column = header in ("model", "slice") or header.startswith("worst")
        table.add_column(header, justify="left" if text_column else "right",
                         overflow="fold")

    def cells(group: list[Any]) -> list[Text]:
        worst = worst_distinguishable(group, "auc")
        leaking = distinguishable_rows(group)
        if worst is None:
            values = [f"none of {len(group)} distinguishable from chance", "-", "-"]
        else:
            values = [f"{worst.attack} @ {worst.slice}" if with_epoch else worst.attack,
                      format_number(worst.auc), format_number(max(r.advantage for r in leaking))]
        if low:
            resolved = [v for v in (metric_value(r, low) for r in leaking) if v == v]
            values.append(format_number(max(resolved)) if resolved else "-")
        values.append(format_number(max(r.epsilon_lower_bound.confident for r in group), 2))
        return [Text(str(v)) for v in values]

    if with_epoch:
        last: dict[Any, tuple[Any, list[Any]]] = {}
        for (model, epoch), group in group_rows(with_epoch, ("model", "epoch")).items():
            last[model] = (epoch, group)
        for model, (epoch, group) in last.items():
            meta = group[0].metadata
            first = [Text(str(model)), Text(str(epoch)),
                     Text(format_number(meta.get("test_accuracy")))]
            if has_dp:
                first.append(Text(format_number(meta.get("epsilon"), 2)))
            table.add_row(*first, *cells(group))
    else:
        by_slice = group_rows(rows, ("slice",))
        ranked = sorted(by_slice.items(), key=lambda kv: -worst_row(kv[1], "auc").auc)
        for (slice_name,), group in ranked[:12]:
            table.add_row(Text(str(slice_name)), *cells(group))
    console.print(table)
    worst = summary.worst
    if worst is None:
        console.print(Text(summary.no_leakage))
    else:
        where = "".join(f", {k} {worst.metadata[k]}" for k in ("model", "epoch")
                        if worst.metadata.get(k) is not None)
        p_value = "" if worst.p_value is None else f", p = {worst.p_value:.2g}"
        console.print(Text(f"worst: {worst.attack} on {worst.slice}{where}: AUC "
                           f"{worst.auc:.3f}, advantage {worst.advantage:.3f}{p_value} "
                           f"({summary.n_significant} of {summary.n_rows} results "
                           "distinguishable from chance)"))
    for trend in summary.trends:
        console.print(Text(f"trend: {trend.model}: worst significant AUC {trend.direction} "
                           f"from {trend.first_value:.3f} (epoch {trend.first_epoch}) to "
                           f"{trend.last_value:.3f} (epoch {trend.last_epoch})"))
    if summary.has_epochs:
        for model, n_tested in summary.quiet_models:
            console.print(Text(f"trend: {model}: no leakage distinguishable from chance at any "
                               f"epoch ({n_tested} results tested)"))
    pick = summary.suggestion
    if pick is not None:
        limit = (f"worst AUC ≤ {summary.limit:g}" if summary.limit is not None
                 else "no limit; use --max-auc")
        leakage = (f"no leakage distinguishable from chance ({pick.n_tested} results tested)"
                   if pick.worst is None else f"worst significant AUC {pick.worst:.3f}")
        console.print(Text(f"suggested checkpoint ({limit}): {pick.model} at epoch "
                           f"{pick.epoch}, {pick.accuracy_key.replace('_', ' ')} "
                           f"{pick.accuracy:.3f}, {leakage}"))
    elif summary.limit is not None and summary.accuracy_key is not None:
        console.print(Text(f"no checkpoint keeps the worst AUC ≤ {summary.limit:g}"))
