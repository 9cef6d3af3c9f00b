"""The terminal's one renderer: plain-text tables and a :class:`~memberscope.summary.Summary`
as text (no dependency beyond the core: works on a core-only install)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from memberscope.metric_definitions import ADVANTAGE, EPSILON_CONFIDENT, parse_metric
from memberscope.summary import Group, Number, Summary

#: At most this many slices in the table of a single audit (the worst first).
MAX_SLICES = 12


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]], *,
                 title: str | None = None) -> str:
    """Left-aligned text columns, numbers right-aligned, a rule under the header, ``title``
    above. A cell may be a :class:`~memberscope.summary.Number` (shown as its text)."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    numeric = [all(isinstance(row[i], int | float | Number | None) for row in rows)
               and bool(rows) for i in range(len(headers))]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.rjust(w) if num else v.ljust(w)
                         for v, w, num in zip(values, widths, numeric, strict=True)).rstrip()

    table = [line(headers), line(["-" * w for w in widths]), *(line(r) for r in cells)]
    return "\n".join([title, *table] if title else table)


def _cell(value: object) -> str:
    if value is None:  # e.g. TPR at an FPR the slice cannot resolve
        return "-"
    if isinstance(value, Number):
        return value.text
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def summary_table(summary: Summary) -> str:
    """Per model variant its last audited epoch, or for one audit without epochs its slices
    (the worst first, at most :data:`MAX_SLICES`): the worst row distinguishable from chance
    and the largest advantage, TPR at the lowest FPR and ε bound."""
    metric = parse_metric(summary.metric)
    low = None if summary.low_fpr_metric is None else parse_metric(summary.low_fpr_metric)
    if summary.checkpoints:
        last: dict[Any, Group] = {}
        for checkpoint in summary.checkpoints:
            last[checkpoint.key[0]] = checkpoint
        groups = list(last.values())
        has_dp = any(g.metadata.get("epsilon") is not None for g in groups)
        headers = ["model", "epoch", "test accuracy", *(["accountant ε"] if has_dp else []),
                   "worst"]
    else:
        # Slices with a result distinguishable from chance first: a noisy maximum must not
        # push a significant slice out of the table.
        groups = sorted(summary.by_slice,
                        key=lambda g: (g.worst is None, -g.highest))[:MAX_SLICES]
        has_dp = False
        headers = ["slice", "worst attack"]
    headers += [f"worst {metric.header}", f"max {ADVANTAGE.header}",
                *([f"max {low.header}"] if low is not None else []),
                f"max {EPSILON_CONFIDENT.header}"]
    rows = []
    for group in groups:
        meta = group.metadata
        first: list[object] = [str(group.key[0])]
        if summary.checkpoints:
            first += [group.key[1], Number(meta.get("test_accuracy", float("nan")), "")]
            if has_dp:
                first.append("not DP" if meta.get("epsilon") is None
                             else Number(meta["epsilon"], "", 2))
        worst = group.worst
        if worst is None:
            first.append(f"none of {len(group.rows)} distinguishable from chance")
            values: list[object] = [None, None]
        else:
            first.append(f"{worst.attack} @ {worst.slice}" if summary.checkpoints
                         else worst.attack)
            values = [Number(worst.metric(metric), ""), Number(group.max_advantage or 0.0, "")]
        if low is not None:
            values.append(None if group.max_low_fpr is None else Number(group.max_low_fpr, ""))
        values.append(Number(group.max_epsilon, "", 2))
        rows.append([*first, *values])
    table = format_table(headers, rows, title="memberscope privacy summary")
    if any(value is None for row in rows for value in row[len(first) - 1:]):
        # A blank max is no result distinguishable from chance, not a missing number.
        table += ("\n-: no result distinguishable from chance (TPR at a low FPR: by its own "
                  "test)")
    return table


def summary_lines(summary: Summary) -> list[str]:
    """The summary's statements, one per line: what must come first, how many results are
    distinguishable from chance in which family, the worst leakage (or that there is none),
    the low-FPR pick, trends, the suggested checkpoint, DP consistency."""
    lines = [s.text for s in summary.leading]
    lines.append(summary.significance_statement.text)
    if summary.split_note is not None:
        lines.append(summary.split_note.text)
    worst = summary.worst_statement
    lines.append(summary.headline.text if worst is None else f"worst: {worst.text}")
    if summary.low_fpr_statement is not None:
        lines.append(summary.low_fpr_statement.text)
    lines += [f"trend: {t.statement(i).text}" for i, t in enumerate(summary.trends)]
    lines += [f"trend: {s.text}" for s in summary.quiet_statements]
    if summary.has_epochs and summary.accuracy_key is not None:
        lines.append(f"suggested checkpoint: {summary.suggestion_statement.text}")
    lines += [f"DP: {p.statement().text}" for p in summary.last_dp]
    return lines


def render_summary(summary: Summary) -> str:
    """The terminal summary: :func:`summary_table`, then :func:`summary_lines`."""
    return "\n".join([summary_table(summary), "", *summary_lines(summary)])

