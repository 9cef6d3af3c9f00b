"""Pieces every adapter shares: the results sink, the headline rows of an audit and the one
line each audit prints."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from memberscope.results import AuditResult, AuditRow
from memberscope.store import append_result
from memberscope.summary import summarize

ENTIRE_DATASET = "entire_dataset"


def jsonl_sink(path: str | Path | None) -> Callable[[AuditResult], None] | None:
    """A ``PrivacyMonitor.on_result`` that appends each audit to ``path`` (None: no sink)."""
    if path is None:
        return None
    target = Path(path)

    def append(result: AuditResult) -> None:
        append_result(target, result)

    return append


def entire_dataset_rows(result: AuditResult) -> list[AuditRow]:
    """The rows on the whole dataset (one per attack): what callbacks log and summarise."""
    return [row for row in result.rows if row.slice == ENTIRE_DATASET]


def entire_dataset_numbers(result: AuditResult) -> str:
    """The entire-dataset numbers of an audit: ``threshold auc=0.612 adv=0.201; lr auc=…``."""
    return "; ".join(f"{row.attack} auc={row.auc:.3f} adv={row.advantage:.3f}"
                     for row in entire_dataset_rows(result))


def audit_line(model_label: str, epoch: int, seconds: float, result: AuditResult) -> str:
    """The one line an audit reports: what must come first (a shifted split:
    :attr:`memberscope.summary.Summary.leading`), the entire-dataset numbers, then the audit's
    headline (the worst row distinguishable from chance, or that there is none), e.g.
    ``Privacy report for epoch 2 (2 Layers, 1.3 s): threshold auc=0.512 adv=0.030; lr
    auc=0.520 adv=0.041 | no leakage distinguishable from chance (22 results tested)``."""
    parts = [entire_dataset_numbers(result)
             or "no row on the entire dataset (see the skipped entries)"]
    if result.rows:
        summary = summarize(result)
        parts = [*(s.text for s in summary.leading), *parts, summary.headline.text]
    return (f"Privacy report for epoch {epoch} ({model_label}, {seconds:.1f} s): "
            + " | ".join(parts))


def report(line: str, *, verbose: bool, logger: logging.Logger) -> None:
    """Show an audit's line: printed when ``verbose`` (what a notebook user sees, next to the
    training progress the framework prints), else logged at INFO for whoever configured
    logging. Never both, so configured logging does not show each line twice."""
    if verbose:
        print(line, flush=True)
    else:
        logger.info("%s", line)
