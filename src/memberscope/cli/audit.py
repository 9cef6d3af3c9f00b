"""``memberscope audit INPUT.npz``: audit saved model outputs."""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path
from typing import Any

from memberscope.audit import DEFAULT_ATTACKS, DEFAULT_SLICES
from memberscope.cli._table import format_table, summary_lines
from memberscope.metric_definitions import ADVANTAGE, AUC, EPSILON_CONFIDENT, PPV, tpr_metric


def register(subparsers: Any) -> None:
    """Add the ``audit`` subcommand."""
    parser = subparsers.add_parser(
        "audit", help="audit per-example outputs saved in an .npz",
        description="Audit per-example outputs of members and non-members saved in an .npz "
                    "(TF Privacy's *_train/*_test names, or membership + logits|probs|loss + "
                    "labels), optionally with loss_trace_train (members x epochs: the report "
                    "then also ranks members by trace risk). Writes result.json, arrays.npz "
                    "and report.html to --out.")
    parser.add_argument("input", type=Path, help="the .npz of model outputs")
    attacks, slices = ",".join(DEFAULT_ATTACKS), ",".join(DEFAULT_SLICES)
    parser.add_argument("--attacks", default=attacks,
                        help=f"comma-separated attack names (default: {attacks})")
    parser.add_argument("--slices", default=slices,
                        help="comma-separated slice kinds: entire, class, loss_percentile, "
                             f"correctness (default: {slices})")
    parser.add_argument("--out", type=Path, default=None,
                        help="output directory (default: audit-<input name>)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fpr", default="0.001,0.01,0.1",
                        help="FPR targets for TPR@FPR (default: 0.001,0.01,0.1)")
    parser.add_argument("--alpha", type=float, default=0.05,
                        help="1 - confidence of the epsilon lower bound")
    parser.add_argument("--delta", type=float, default=0.0, help="delta of (epsilon, delta)-DP")
    parser.add_argument("--bootstrap", type=int, default=0,
                        help="bootstrap replicates for AUC/TPR intervals (default: none)")
    parser.add_argument("--reference", type=Path, default=None,
                        help="reference-model outputs (.npz from `memberscope reference train`) "
                             "for the lira and rmia attacks")
    parser.add_argument("--no-report", action="store_true", help="skip report.html")
    parser.set_defaults(handler=handle)


def _fpr_targets(text: str) -> tuple[float, ...]:
    from memberscope.errors import InputError

    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise InputError(f"--fpr must be comma-separated numbers; got {text!r}") from None


def handle(args: argparse.Namespace) -> int:
    """Load, audit, save, summarise."""
    from memberscope.attacks import AttackWarning, get_attack
    from memberscope.audit import audit
    from memberscope.cli import EXIT_NOTHING_MEASURED
    from memberscope.metrics import LowResolutionWarning
    from memberscope.outputs import load_outputs_and_trace
    from memberscope.risk import LossTraces
    from memberscope.slicing import parse_slice_kinds
    from memberscope.store import ARRAYS_FILE, save_result

    attacks = [name.strip() for name in args.attacks.split(",")]
    for name in attacks:
        get_attack(name)
    slices = parse_slice_kinds(args.slices)
    outputs, trace = load_outputs_and_trace(args.input)
    traces = None if trace is None else LossTraces.of_members(trace, outputs,
                                                              model=args.input.stem)
    reference = None
    if args.reference is not None:
        from memberscope.outputs import load_reference_npz

        reference = load_reference_npz(args.reference)
    out_dir = args.out or Path(f"audit-{args.input.stem}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", LowResolutionWarning)
        result = audit(outputs, attacks=attacks, slices=slices, seed=args.seed,
                       fpr_targets=_fpr_targets(args.fpr), alpha=args.alpha, delta=args.delta,
                       n_bootstrap=args.bootstrap, reference=reference,
                       metadata={"source": args.input.name})
    written = [save_result(result, out_dir), out_dir / ARRAYS_FILE]
    missing_extra = None
    if not args.no_report and result.rows:
        report, missing_extra = _write_report(result, out_dir, traces)
        if report is not None:
            written.append(report)
    print(summary_table(result))
    for warning in caught:
        if not issubclass(warning.category, AttackWarning):
            print(f"note: {warning.message}")
    for note in result.notes:
        print(f"warning: {note}")
    print("\nwrote " + ", ".join(str(p) for p in written))
    if missing_extra is not None:
        print(f"report.html not written: {missing_extra}")
    if not any(row.attack in attacks for row in result.rows):  # the split guard's rows aside
        print(f"memberscope audit: error: nothing was measured: every requested attack "
              f"({', '.join(attacks)}) was skipped on every slice; the reasons are listed "
              f"above and in {out_dir / 'result.json'}", file=sys.stderr)
        return EXIT_NOTHING_MEASURED
    return 0


def _write_report(result: Any, out_dir: Path,
                  traces: Any = None) -> tuple[Path | None, str | None]:
    """The HTML report, or why it could not be written: the ``report`` extra (matplotlib)
    is optional, and the table, result.json and arrays.npz do not need it."""
    from memberscope.errors import MissingExtraError

    try:
        from memberscope.report.html import write_audit_report
        from memberscope.store import REPORT_FILE

        return write_audit_report(result, out_dir / REPORT_FILE, traces=traces), None
    except MissingExtraError as exc:
        return None, str(exc)
    except ImportError as exc:  # the extra is there but broken, or a module is missing
        return None, f"{exc} (pip install 'memberscope[report]')"


def summary_table(result: Any) -> str:
    """The terminal summary: one line per (slice, attack), worst first, with each row's
    p-value and significance; then the summary's statements (:func:`summary_lines`: how many
    results are distinguishable from chance in which family, the worst of them or that there
    is none); then the skipped pairs."""
    from memberscope.summary import summarize

    rows = sorted(result.rows, key=lambda r: r.auc, reverse=True)
    fprs = [tpr_metric(f) for f in rows[0].tpr_at_fpr] if rows else []
    headers = ["slice", "attack", "members", "non-members",
               *(m.header for m in (AUC, ADVANTAGE, PPV, *fprs, EPSILON_CONFIDENT)),
               "p-value", "significant", "beyond split"]
    table = format_table(headers, [
        (r.slice, r.attack, r.n_members, r.n_nonmembers, r.auc, r.advantage, r.ppv,
         *r.tpr_at_fpr.values(), r.epsilon_lower_bound.confident,
         None if r.p_value is None else f"{r.p_value:.2g}",
         _yes_no(r.significant), _yes_no(r.beyond_split_significant))
        for r in rows])
    lines = [table]
    if rows:
        lines += ["", *summary_lines(summarize(result))]
    for entry in result.skipped:
        lines.append(f"skipped {entry.slice} / {entry.attack}: {entry.reason}")
    return "\n".join(lines)


def _yes_no(verdict: bool | None) -> str | None:
    return None if verdict is None else ("yes" if verdict else "no")
