"""Write the report of one audit or of a training run: gather what the page shows (rows, ROC
curves, most exposed examples, figures) and write one self-contained HTML file atomically.

Rendering lives in :mod:`memberscope.report.page` (Jinja2 templates, autoescaping on); the run
directory is read through :mod:`memberscope.rundir`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from memberscope import rundir
from memberscope._io import atomic_write_bytes, atomic_write_text
from memberscope.errors import InputError
from memberscope.metric_definitions import AUC
from memberscope.metrics import RocCurve
from memberscope.report import figures as _figures
from memberscope.report.page import ExposedExample, PageInputs, render_page
from memberscope.results import (
    GUARD_ATTACKS,
    AuditResult,
    AuditRow,
    ResultsCollection,
    SplitGuard,
)
from memberscope.risk import DEFAULT_RISK_METHOD, LossTraces
from memberscope.rundir import AuditScores
from memberscope.store import load_results
from memberscope.summary import Summary, split_guards_of, summarize

logger = logging.getLogger(__name__)

MAX_ROC_CURVES = 8
EXPOSED_ROWS = 10
TRACE_RISK_METHOD = DEFAULT_RISK_METHOD

__all__ = ["write_audit_report", "write_results_report", "write_run_report"]


# --- collecting the inputs ------------------------------------------------------------------


def _exposed_examples(scores: Mapping[str, np.ndarray], membership: np.ndarray | None,
                      labels: np.ndarray | None, k: int = EXPOSED_ROWS) -> list[ExposedExample]:
    from memberscope.report.plots import exposed_indices

    out = []
    for attack, values in scores.items():
        if attack in GUARD_ATTACKS:
            continue  # a split check's score ranks inputs, not what the model exposes
        values = np.asarray(values, dtype=float)
        if membership is not None and len(membership) != len(values):
            continue
        candidates = values if membership is None else values[np.asarray(membership, bool)]
        for index in exposed_indices(values, membership, k):
            label = labels[index].item() if labels is not None and len(labels) > index else None
            ties = int(np.count_nonzero(candidates == values[index]))
            out.append(ExposedExample(attack, int(index), float(values[index]), label,
                                      ties=ties))
    return out


def _audit_curves(result: AuditResult) -> dict[str, RocCurve]:
    curves: dict[str, RocCurve] = {}
    for row, roc in zip(result.rows, result.rocs, strict=False):
        if roc is not None and row.slice == "entire_dataset":
            curves[f"{row.attack} (AUC {row.auc:.3f})"] = roc
    return curves


def _summary(rows: Sequence[AuditRow], max_auc: float | None, metric: str,
             split_guards: Sequence[SplitGuard]) -> Summary | None:
    """The one summary the page and its figures show (None when every pair was skipped)."""
    return (summarize(rows, max_auc=max_auc, metric=metric, split_guards=split_guards)
            if rows else None)


def _render_figures(rows: Sequence[AuditRow], summary: Summary | None,
                    curves: Mapping[str, RocCurve | tuple[np.ndarray, np.ndarray]],
                    gallery: tuple[np.ndarray, np.ndarray, np.ndarray | None,
                                   np.ndarray | None] | None) -> list[_figures.RenderedFigure]:
    beyond_split = summary is not None and summary.beyond_split
    built: list[_figures.RenderedFigure | None] = [
        _figures.epoch_figure(rows, beyond_split=beyond_split)]
    if summary is not None and summary.accuracy_key is not None:
        pick = summary.suggestion
        limit = summary.limit if summary.metric == AUC.key else None  # the figure's y is AUC
        built.append(_figures.utility_figure(rows, summary.accuracy_key, limit,
                                             (pick.model, pick.epoch) if pick else None))
    built.append(_figures.roc_figure(curves))
    built.append(_figures.heatmap_figure(rows, beyond_split=beyond_split))
    built.append(_figures.dp_figure(rows))
    if gallery is not None:
        scores, images, membership, labels = gallery
        built.append(_figures.gallery_figure(scores, images, membership=membership,
                                             labels=labels))
    return [fig for fig in built if fig is not None]


def write_audit_report(result: AuditResult, path: str | Path, *,
                       max_auc: float | None = None, metric: str = "auc",
                       images: np.ndarray | None = None,
                       title: str = "memberscope privacy report",
                       source: str | None = None, traces: LossTraces | None = None) -> Path:
    """Write the self-contained HTML report of one audit to ``path`` (atomically).

    Parameters
    ----------
    result : AuditResult
        From :func:`memberscope.audit` or :func:`memberscope.load_result` (ROC curves and
        per-example scores appear when the result carries them).
    max_auc : float, optional
        Privacy limit for the suggested checkpoint (rows need accuracy metadata).
    metric : str
        The metric the worst result, trends and the limit rank by (default AUC; a name that
        is no metric raises with a did-you-mean).
    images : (n, H, W[, C]), optional
        The audited examples, aligned with the result's scores: adds a gallery of the most
        exposed training examples.
    traces : LossTraces, optional
        The members' loss traces (e.g. an audit ``.npz``'s ``loss_trace_train``): adds the
        members they rank most exposed (:func:`memberscope.risk.trace_risk`).

    Returns
    -------
    Path
        ``path``.
    """
    path = Path(path)
    rows = list(result.rows)
    gallery = None
    model_attacks = [a for a in result.scores if a not in GUARD_ATTACKS]
    if images is not None and model_attacks:
        attack = max(model_attacks, key=lambda a: _entire_auc(rows, a))
        gallery = (result.scores[attack], np.asarray(images), result.membership, result.labels)
    curves = _audit_curves(result)
    notes = []
    if not curves:
        notes.append("No ROC curves: they are kept in arrays.npz next to result.json.")
    summary = _summary(rows, max_auc, metric, split_guards_of(result))
    inputs = PageInputs(
        title=title, source=source or str(path.parent), rows=rows, skipped=list(result.skipped),
        figures=_render_figures(rows, summary, curves, gallery),
        exposed=_exposed_examples(result.scores, result.membership, result.labels),
        trace_exposed=_trace_exposed([] if traces is None else [traces]),
        max_auc=max_auc, notes=notes, summary=summary)
    atomic_write_text(path, render_page(inputs))
    return path


def _entire_auc(rows: Sequence[AuditRow], attack: str) -> float:
    values = [r.auc for r in rows if r.attack == attack and r.slice == "entire_dataset"]
    return max(values) if values else -math.inf


def _run_curves(audits: Sequence[AuditScores]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The ROC curve of every attack at each variant's last audit (at most MAX_ROC_CURVES)."""
    from memberscope.metrics import auc_from_roc, roc_curve

    curves: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for audit in audits:
        for attack, scores in audit.scores.items():
            roc = roc_curve(scores, audit.membership)
            name = f"{audit.model} · epoch {audit.epoch} · {attack} (AUC {auc_from_roc(roc):.3f})"
            thin = roc.thinned()
            curves[name] = (thin.fpr, thin.tpr)
    if len(curves) > MAX_ROC_CURVES:
        logger.info("the ROC figure shows %d of %d curves", MAX_ROC_CURVES, len(curves))
    return dict(list(curves.items())[:MAX_ROC_CURVES])


def _run_exposed(audits: Sequence[AuditScores]) -> list[ExposedExample]:
    """The most exposed members of each variant's last audit, with training-set indices."""
    out = []
    for audit in audits:
        for example in _exposed_examples(audit.scores, audit.membership, audit.labels):
            index = audit.training_index(example.index)
            out.append(ExposedExample(example.attack, example.index if index is None else index,
                                      example.score, example.label, audit.model, audit.epoch,
                                      example.ties))
    return out


def _trace_exposed(traces: Sequence[LossTraces], method: str = TRACE_RISK_METHOD,
                   k: int = EXPOSED_ROWS) -> list[ExposedExample]:
    """The ``k`` members of each model with the highest loss-trace risk (a ranking by
    :func:`memberscope.risk.trace_risk`, not by an attack), at the last recorded epoch."""
    from memberscope.risk import top_k

    out = []
    for model in traces:
        risk = model.risk(method)
        index = np.asarray(model.example_index)
        last_epoch = int(model.epochs[-1]) if len(model.epochs) else None
        for row in top_k(risk, k):
            label = None if model.labels is None else int(model.labels[row])
            out.append(ExposedExample(method, int(index[row]),
                                      float(risk[row]), label, model.model, last_epoch,
                                      ties=int(np.count_nonzero(risk == risk[row]))))
    return out


def write_results_report(results: ResultsCollection, path: str | Path, *,
                         max_auc: float | None = None, metric: str = "auc",
                         title: str = "memberscope privacy report",
                         source: str = "results in memory") -> Path:
    """Write the HTML report of results held in memory (e.g. ``PrivacyMonitor.results``)
    to ``path`` atomically; the same page as a run's, without config or per-example scores.

    Parameters
    ----------
    results : ResultsCollection
        Rows (and skipped entries) of one or more audits.
    path : path
        The HTML file to write.
    max_auc, metric :
        Privacy limit for the suggested checkpoint and the metric it limits (see
        :func:`write_run_report`).

    Returns
    -------
    Path
        ``path``.
    """
    if not isinstance(results, ResultsCollection):
        raise InputError(f"results must be a ResultsCollection; got {type(results).__name__} "
                         "(for one AuditResult use write_audit_report)")
    path = Path(path)
    rows = list(results.rows)
    summary = _summary(rows, max_auc, metric, split_guards_of(results))
    inputs = PageInputs(title=title, source=source, rows=rows, skipped=list(results.skipped),
                        figures=_render_figures(rows, summary, {}, None), max_auc=max_auc,
                        summary=summary)
    atomic_write_text(path, render_page(inputs))
    return path


def write_run_report(run_dir: str | Path, *, out: str | Path | None = None,
                     max_auc: float | None = None, metric: str = "auc",
                     write_figures: bool = True) -> Path:
    """Write the HTML report of a training run directory (``results.jsonl``, ``config.toml``,
    optional per-example scores: :mod:`memberscope.rundir`) atomically.

    Parameters
    ----------
    run_dir : path
        The run directory (DESIGN.md "Run directory"), or a results ``.jsonl`` file: its rows
        are reported, with the ``config.toml`` and score files of its folder where present
        (scores only of the audits the file holds).
    out : path, optional
        The HTML file (default ``report.html`` in the run directory).
    max_auc : float, optional
        Privacy limit: the suggested checkpoint is the most accurate (model, epoch) whose
        worst ``metric`` over the slices and attacks distinguishable from chance is
        ≤ ``max_auc``.
    metric : str
        The metric the worst result, trends and the limit rank by (default AUC).
    write_figures : bool
        Also save each figure as ``figures/<name>.png`` in the run directory.

    Returns
    -------
    Path
        The HTML file written.
    """
    given = Path(run_dir)
    results_path = given if given.is_file() else rundir.results_path(given)
    if not results_path.is_file():
        raise FileNotFoundError(f"{results_path} not found: run_dir must be a run directory "
                                "holding results.jsonl, or a results .jsonl file")
    folder = results_path.parent
    collection = load_results(results_path)
    rows = list(collection.rows)
    config_path = rundir.config_path(folder)
    config_text = config_path.read_text(encoding="utf-8", errors="replace") \
        if config_path.is_file() else None
    audited = {(str(r.metadata.get("model")), r.metadata["epoch"]) for r in rows
               if isinstance(r.metadata.get("epoch"), int)}
    audits = rundir.last_scores(folder, audited)
    summary = _summary(rows, max_auc, metric, split_guards_of(collection))
    rendered = _render_figures(rows, summary, _run_curves(audits), None)
    inputs = PageInputs(
        title=f"memberscope privacy report: {folder.resolve().name}", source=str(given),
        rows=rows, skipped=list(collection.skipped), figures=rendered, config_text=config_text,
        exposed=_run_exposed(audits), trace_exposed=_trace_exposed(rundir.run_traces(folder)),
        max_auc=max_auc, summary=summary)
    path = Path(out) if out is not None else rundir.report_path(folder)
    page = render_page(inputs)
    if write_figures:
        for fig in rendered:
            atomic_write_bytes(rundir.figure_path(folder, fig.name), fig.png)
    atomic_write_text(path, page)
    return path
