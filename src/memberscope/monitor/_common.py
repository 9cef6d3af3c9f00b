"""Pieces both callbacks share: the results sink and the headline rows of an audit."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from memberscope.results import AuditResult, AuditRow
from memberscope.store import append_result

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


def summary(result: AuditResult) -> str:
    """One line per audit for the log: ``threshold auc=0.612 adv=0.201; lr auc=…``."""
    return "; ".join(f"{row.attack} auc={row.auc:.3f} adv={row.advantage:.3f}"
                     for row in entire_dataset_rows(result))
