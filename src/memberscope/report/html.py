"""One self-contained HTML page per audit or training run.

The page needs no network: figures are PNG ``data:`` URIs, style and the small sorting script
are inline, and a Content-Security-Policy forbids every fetch and every script but ours (by
hash). Every user string (model labels, slice names, metadata and config values) is
HTML-escaped; data embedded for scripts is JSON with ``<``, ``>`` and ``&`` escaped.
"""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import html
import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from memberscope.metrics import RocCurve
from memberscope.report import figures as _figures
from memberscope.report._data import (
    epoch_sort_key,
    group_rows,
    metadata_keys,
    metric_title,
    metric_value,
    slice_sort_key,
)
from memberscope.report.summary import ReportSummary, format_number, summarize
from memberscope.results import AuditResult, AuditRow, ResultsCollection, SkippedEntry
from memberscope.store import atomic_write_bytes, atomic_write_text, load_npz, load_results

logger = logging.getLogger(__name__)

REPORT_FILE = "report.html"
RESULTS_FILE = "results.jsonl"
CONFIG_FILE = "config.toml"
SCORES_DIR = "scores"
FIGURES_DIR = "figures"
MAX_ROC_CURVES = 8
EXPOSED_ROWS = 10
#: Row metadata shown in their own columns, before any other metadata key.
KNOWN_METADATA = ("model", "epoch", "train_accuracy", "test_accuracy", "epsilon")

__all__ = ["escape", "json_for_script", "render_page", "write_audit_report",
           "write_run_report"]


# --- escaping -------------------------------------------------------------------------------


def escape(value: Any) -> str:
    """``value`` as text safe in HTML content and in quoted attribute values."""
    return html.escape("" if value is None else str(value), quote=True)


def json_for_script(document: Any) -> str:
    """JSON safe inside ``<script type="application/json">``: no ``</script>``, ``<!--``,
    ``&`` or line separators can break out; NaN/inf become null."""
    text = json.dumps(_plain(document), allow_nan=False, ensure_ascii=True, sort_keys=True)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


# --- page inputs ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ExposedExample:
    """A member an attack flags most surely."""

    attack: str
    index: int
    score: float
    label: Any


@dataclass
class PageInputs:
    """Everything one page shows."""

    title: str
    source: str
    rows: list[AuditRow]
    skipped: list[SkippedEntry] = field(default_factory=list)
    figures: list[_figures.RenderedFigure] = field(default_factory=list)
    config_text: str | None = None
    exposed: list[ExposedExample] = field(default_factory=list)
    max_auc: float | None = None
    notes: list[str] = field(default_factory=list)


# --- metric explanations (plain language + definition, DESIGN.md) ---------------------------

METRIC_EXPLANATIONS: tuple[tuple[str, str, str], ...] = (
    ("AUC", "How well the attack's score separates training examples (members) from unseen "
     "ones (non-members). 0.5 is guessing; 1.0 means every member scores above every "
     "non-member.",
     "Area under the ROC curve over all thresholds, ties counting one half (the probability "
     "that a random member outscores a random non-member)."),
    ("Advantage", "How much better than a coin flip the attacker does at its best threshold: "
     "0 is no better, 1 is perfect.",
     "max over thresholds of |TPR − FPR| (as TF Privacy)."),
    ("PPV", "When the attack says 'member', how often it is right, at its best threshold, "
     "accounting for how many members and non-members there are.",
     "max over thresholds of TPR / (TPR + r·FPR) with r = non-members / members; "
     "1/(1+r) where TPR = FPR = 0."),
    ("TPR at x% FPR", "The share of members the attack finds while wrongly flagging at most "
     "x% of non-members. Low FPR is what matters: an attack that confidently identifies even "
     "a few training examples is a real privacy risk even when its AUC is modest.",
     "The largest TPR among thresholds with FPR ≤ x (on the full ROC curve)."),
    ("ε lower bound", "A floor on the differential-privacy ε this model can have, proven by "
     "the attack. Higher means more leakage; 0 means the attack proves nothing.",
     "ε ≥ max(ln((TPR_lo − δ)/FPR_hi), ln((TNR_lo − δ)/FNR_hi)) with Clopper-Pearson "
     "intervals at confidence 1−α; the threshold is chosen on one half of the examples and "
     "the bound computed on the other, so the 'confident' value is a valid (1−α) bound. "
     "'point' is the plug-in estimate at the best threshold."),
    ("Accountant ε", "Under DP training: the privacy guarantee the training algorithm "
     "promises (with its δ). The empirical lower bound should stay below it.",
     "ε of (ε, δ)-DP spent so far, from the privacy accountant (RDP or PRV) of DP-SGD/DP-Adam."),
)


# --- building blocks ------------------------------------------------------------------------


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _num_cell(value: Any, digits: int = 3) -> str:
    """A table cell with the exact value in ``data-v`` for sorting and checking; ``digits``
    decimals, or -``digits`` significant digits when negative."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        return f"<td>{escape(value if value is not None else '')}</td>"
    if isinstance(value, int | np.integer):
        return f'<td class="n" data-v="{int(value)}">{int(value)}</td>'
    number = float(value)
    exact = repr(number) if math.isfinite(number) else ""
    shown = format_number(number, digits) if digits >= 0 or not math.isfinite(number) \
        else f"{number:.{-digits}g}"
    return f'<td class="n" data-v="{exact}">{escape(shown)}</td>'


def _number(value: float, key: str, digits: int = 3) -> str:
    """A summary number with its exact value for scripts and tests."""
    exact = repr(float(value)) if math.isfinite(value) else ""
    return (f'<span class="num" data-key="{escape(key)}" data-v="{exact}">'
            f"{escape(format_number(float(value), digits))}</span>")


def _is_numeric_column(values: Sequence[Any]) -> bool:
    present = [v for v in values if v is not None]
    return bool(present) and all(isinstance(v, int | float | np.number)
                                 and not isinstance(v, bool) for v in present)


def _table(table_id: str, headers: Sequence[str], columns: Sequence[Sequence[Any]], *,
           row_classes: Sequence[str] | None = None, digits: Sequence[int] | None = None,
           caption: str = "") -> str:
    """A sortable table; ``columns`` holds each column's values (all the same length)."""
    numeric = [_is_numeric_column(col) for col in columns]
    head = "".join(
        f'<th scope="col" tabindex="0" data-type="{"num" if num else "text"}">{escape(h)}</th>'
        for h, num in zip(headers, numeric, strict=True))
    n_rows = len(columns[0]) if columns else 0
    body = []
    for i in range(n_rows):
        cells = []
        for j, col in enumerate(columns):
            value = col[i]
            if numeric[j]:
                cells.append(_num_cell(value, digits[j] if digits else 3))
            else:
                cells.append(f"<td>{escape('' if value is None else value)}</td>")
        klass = f' class="{escape(row_classes[i])}"' if row_classes and row_classes[i] else ""
        body.append(f"<tr{klass}>{''.join(cells)}</tr>")
    cap = f"<caption>{escape(caption)}</caption>" if caption else ""
    return (f'<div class="table-wrap"><table class="sortable" id="{escape(table_id)}">{cap}'
            f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>")


def _fpr_metrics(rows: Sequence[AuditRow]) -> list[str]:
    return [f"tpr@{f:g}" for f in sorted({f for r in rows for f in r.tpr_at_fpr})]


def _metric_header(metric: str) -> str:
    if metric.startswith("tpr@"):
        return f"TPR@{float(metric[4:]) * 100:g}%"
    return {"auc": "AUC", "advantage": "advantage", "ppv": "PPV",
            "epsilon_confident": "ε ≥ (conf.)", "epsilon_point": "ε (point)"}.get(metric, metric)


def results_table(rows: Sequence[AuditRow]) -> str:
    """Every result row with every metric and metadata value."""
    fprs = _fpr_metrics(rows)
    keys = metadata_keys(rows)
    meta = [k for k in KNOWN_METADATA if k in keys] + [k for k in keys if k not in KNOWN_METADATA]
    ordered = sorted(rows, key=lambda r: (str(r.metadata.get("model")),
                                          epoch_sort_key(r.metadata.get("epoch")),
                                          r.attack, slice_sort_key(r.slice)))
    metrics = ["auc", "advantage", "ppv", *fprs, "epsilon_confident", "epsilon_point"]
    headers = [*(k.replace("_", " ") for k in meta[:2]), "attack", "slice", "members",
               "non-members", *(_metric_header(m) for m in metrics),
               *(k.replace("_", " ") for k in meta[2:])]
    columns: list[list[Any]] = [[r.metadata.get(k) for r in ordered] for k in meta[:2]]
    columns += [[r.attack for r in ordered], [r.slice for r in ordered],
                [r.n_members for r in ordered], [r.n_nonmembers for r in ordered]]
    columns += [[metric_value(r, m) for r in ordered] for m in metrics]
    columns += [[_scalar(r.metadata.get(k)) for r in ordered] for k in meta[2:]]
    return _table("all-results", headers, columns,
                  caption=f"{len(rows)} results: click a column header to sort")


def _scalar(value: Any) -> Any:
    return value if value is None or isinstance(value, str | int | float | bool) else str(value)


def checkpoints_table(rows: Sequence[AuditRow], summary: ReportSummary) -> str | None:
    """One row per (model, epoch): accuracies, ε, and the worst of each metric over slices."""
    with_epoch = [r for r in rows if r.metadata.get("epoch") is not None]
    if not with_epoch:
        return None
    low = summary.low_fpr_metric
    has_eps = any(isinstance(r.metadata.get("epsilon"), int | float) for r in with_epoch)
    has = {k: any(isinstance(r.metadata.get(k), int | float) for r in with_epoch)
           for k in ("train_accuracy", "test_accuracy")}
    groups = group_rows(with_epoch, ("model", "epoch"))
    keys = sorted(groups, key=lambda k: (str(k[0]), epoch_sort_key(k[1])))
    records = []
    classes = []
    suggestion = summary.suggestion
    for model, epoch in keys:
        group = groups[(model, epoch)]
        worst = max(group, key=lambda r: metric_value(r, "auc"))
        record: list[Any] = [model, epoch]
        record += [group[0].metadata.get(k) for k in has if has[k]]
        if has_eps:
            record.append(group[0].metadata.get("epsilon"))
        record += [worst.auc, worst.slice, worst.attack,
                   max(r.advantage for r in group)]
        if low:
            record.append(max(metric_value(r, low) for r in group))
        record.append(max(r.epsilon_lower_bound.confident for r in group))
        records.append(record)
        is_pick = suggestion is not None and (suggestion.model, suggestion.epoch) == (model,
                                                                                      epoch)
        classes.append("suggested" if is_pick else "")
    headers = ["model", "epoch", *(k.replace("_", " ") for k in has if has[k])]
    if has_eps:
        headers.append("accountant ε")
    headers += ["worst AUC", "worst slice", "attack", "max advantage"]
    if low:
        headers.append(f"max {_metric_header(low)}")
    headers.append("max ε ≥")
    columns = [list(col) for col in zip(*records, strict=True)]
    return _table("checkpoints", headers, columns, row_classes=classes,
                  caption="One row per model variant and epoch (worst over slices and attacks); "
                          "the suggested checkpoint is highlighted")


def skipped_table(skipped: Sequence[SkippedEntry]) -> str | None:
    """Pairs that were not evaluated, with the reason."""
    if not skipped:
        return None
    meta = [k for k in ("model", "epoch") if any(k in s.metadata for s in skipped)]
    columns: list[list[Any]] = [[s.metadata.get(k) for s in skipped] for k in meta]
    columns += [[s.slice for s in skipped], [s.attack for s in skipped],
                [s.reason for s in skipped]]
    return _table("skipped", [*meta, "slice", "attack", "reason"], columns,
                  caption="Slice × attack pairs that were not evaluated, and why")


def exposed_table(exposed: Sequence[ExposedExample]) -> str | None:
    """The members each attack flags most surely."""
    if not exposed:
        return None
    columns: list[list[Any]] = [[e.attack for e in exposed], [e.index for e in exposed],
                                [e.score for e in exposed], [e.label for e in exposed]]
    return _table("exposed", ["attack", "example index", "score", "label"], columns,
                  digits=[3, 3, -4, 3],
                  caption="Training examples with the highest attack score (most exposed)")


def _verdict(auc: float) -> str:
    if not math.isfinite(auc):
        return "undefined"
    if auc < 0.55:
        return "close to guessing: little measurable membership leakage"
    if auc < 0.6:
        return "weak: the attack does slightly better than guessing"
    if auc < 0.7:
        return "moderate: the attack clearly tells members from non-members"
    return "strong: the model reveals which examples it was trained on"


def _where(row: AuditRow) -> str:
    parts = []
    if row.metadata.get("model") is not None:
        parts.append(f"model <b>{escape(row.metadata['model'])}</b>")
    if row.metadata.get("epoch") is not None:
        parts.append(f"epoch <b>{escape(row.metadata['epoch'])}</b>")
    return f" ({', '.join(parts)})" if parts else ""


def answers_section(summary: ReportSummary) -> str:
    """The top of the page: worst leakage, trend, suggested checkpoint, DP check."""
    worst = summary.worst
    fprs = [f"tpr@{f:g}" for f in sorted(worst.tpr_at_fpr)]
    numbers = [f"AUC {_number(worst.auc, 'worst.auc')}",
               f"advantage {_number(worst.advantage, 'worst.advantage')}",
               f"PPV {_number(worst.ppv, 'worst.ppv')}"]
    numbers += [f"{escape(metric_title(m))} {_number(metric_value(worst, m), 'worst.' + m)}"
                for m in fprs]
    numbers.append(f"ε ≥ {_number(worst.epsilon_lower_bound.confident, 'worst.epsilon', 2)} "
                   f"({(1 - worst.epsilon_lower_bound.alpha):.0%} confidence)")
    cards = [
        '<div class="card" id="worst"><h2>Worst leakage</h2>'
        f'<p>Attack <b class="label">{escape(worst.attack)}</b> on slice '
        f'<b class="label">{escape(worst.slice)}</b>{_where(worst)}:</p>'
        f'<p class="numbers">{" · ".join(numbers)}</p>'
        f'<p class="verdict">{escape(_verdict(worst.auc).capitalize())}.</p>'
    ]
    low = summary.worst_low_fpr
    if low is not None and summary.low_fpr_metric and low is not worst:
        value = metric_value(low, summary.low_fpr_metric)
        cards[-1] += (f"<p>At the lowest false-positive rate, the most successful is "
                      f"<b>{escape(low.attack)}</b> on <b>{escape(low.slice)}</b>"
                      f"{_where(low)}: {escape(metric_title(summary.low_fpr_metric))} "
                      f"{_number(value, 'low_fpr.value')}.</p>")
    cards[-1] += "</div>"

    if summary.trends:
        items = "".join(
            f"<li><b>{escape(t.model)}</b>: worst AUC {escape(t.direction)} from "
            f"{_number(t.first_value, f'trend.{i}.first')} (epoch {escape(t.first_epoch)}) to "
            f"{_number(t.last_value, f'trend.{i}.last')} (epoch {escape(t.last_epoch)}); "
            f"peak {_number(t.peak_value, f'trend.{i}.peak')} at epoch "
            f"{escape(t.peak_epoch)}.</li>" for i, t in enumerate(summary.trends))
        rising = sum(t.direction == "rose" for t in summary.trends)
        lesson = ("Leakage grows with training, as the model memorises its training data: "
                  "earlier checkpoints are more private." if rising else
                  "Leakage does not grow with training here.")
        cards.append(f'<div class="card" id="trend"><h2>Trend with training</h2>'
                     f"<ul>{items}</ul><p>{escape(lesson)}</p></div>")
    else:
        cards.append('<div class="card" id="trend"><h2>Trend with training</h2><p>One audit '
                     "without epochs: no trend to show. Monitor training "
                     "(<code>memberscope run</code>) to see how leakage grows.</p></div>")

    cards.append(_suggestion_card(summary))
    if summary.dp:
        cards.append(_dp_card(summary))
    return f'<section class="answers" id="answers">{"".join(cards)}</section>'


def _suggestion_card(summary: ReportSummary) -> str:
    pick = summary.suggestion
    limit = summary.limit
    title = '<div class="card" id="suggestion"><h2>Suggested checkpoint</h2>'
    if summary.accuracy_key is None:
        return (title + "<p>No accuracies recorded, so no checkpoint can be suggested.</p>"
                "</div>")
    accuracy_name = escape(summary.accuracy_key.replace("_", " "))
    if pick is None:
        return (title + f"<p>No checkpoint keeps the worst AUC at or below "
                f"{_number(limit if limit is not None else math.nan, 'limit')}. Lower the "
                "learning rate or epochs, or train with differential privacy.</p></div>")
    limit_text = (f"with worst AUC ≤ {_number(limit, 'limit')}" if limit is not None else
                  "(no privacy limit set: pass <code>--max-auc</code>, e.g. 0.6)")
    return (title + f"<p>Most accurate checkpoint {limit_text}: model "
            f'<b class="label">{escape(pick.model)}</b> at epoch <b>{escape(pick.epoch)}</b>'
            f", {accuracy_name} {_number(pick.accuracy, 'suggestion.accuracy')}, worst AUC "
            f"{_number(pick.worst, 'suggestion.worst')}.</p></div>")


def _dp_card(summary: ReportSummary) -> str:
    last: dict[Any, Any] = {}
    for point in summary.dp:
        last[point.model] = point
    items = []
    for point in last.values():
        ok = point.empirical <= point.accountant
        status = ("consistent: the attacks stay below the guarantee" if ok else
                  "INCONSISTENT: the attacks prove more leakage than DP allows; check the "
                  "training and accounting")
        items.append(f"<li><b>{escape(point.model)}</b> at epoch {escape(point.epoch)}: "
                     f"accountant ε = {_number(point.accountant, 'dp.accountant', 2)}, "
                     f"empirical ε ≥ {_number(point.empirical, 'dp.empirical', 2)} "
                     f"({escape(status)}).</li>")
    return (f'<div class="card" id="dp"><h2>Differential privacy</h2><ul>{"".join(items)}</ul>'
            "</div>")


def _explanations() -> str:
    items = "".join(f"<dt>{escape(name)}</dt><dd>{escape(plain)}<br><small>Definition: "
                    f"{escape(definition)}</small></dd>"
                    for name, plain, definition in METRIC_EXPLANATIONS)
    return f'<section id="metrics"><h2>What the numbers mean</h2><dl>{items}</dl></section>'


# --- the page -------------------------------------------------------------------------------

_STYLE = """
:root{--fg:#1d2330;--muted:#5b6475;--line:#d9dee7;--bg:#f6f8fb;--accent:#3558c5;
--warn:#b3261e;--pick:#fff6cc}
*{box-sizing:border-box}
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);
margin:0;background:#fff}
header{background:var(--bg);border-bottom:1px solid var(--line);padding:18px 28px}
header h1{margin:0 0 4px;font-size:24px}
header p{margin:0;color:var(--muted);font-size:13px;overflow-wrap:anywhere}
main{max-width:1180px;margin:0 auto;padding:10px 28px 60px}
h2{font-size:19px;margin:28px 0 10px}
.answers{display:grid;grid-template-columns:repeat(auto-fit,minmax(330px,1fr));gap:14px;
margin-top:18px}
.card{border:1px solid var(--line);border-radius:8px;padding:4px 16px 10px;background:#fff;
box-shadow:0 1px 2px rgba(0,0,0,.04)}
.card h2{font-size:16px;margin:10px 0 6px;color:var(--accent)}
.card ul{padding-left:18px;margin:6px 0}
.card p{margin:6px 0}
.numbers{font-variant-numeric:tabular-nums}
.num{font-weight:600}
.verdict{color:var(--muted);font-style:italic}
.label{overflow-wrap:anywhere}
figure{margin:18px 0 26px;border-top:1px solid var(--line);padding-top:6px}
figure img{max-width:100%;height:auto;display:block;margin:6px auto}
figcaption{color:var(--muted);font-size:13px;max-width:900px}
figcaption b{color:var(--fg);font-size:15px;display:block}
.table-wrap{max-height:560px;overflow:auto;border:1px solid var(--line);border-radius:6px;
margin-bottom:8px}
table{border-collapse:collapse;width:100%;font-size:13px;font-variant-numeric:tabular-nums}
caption{caption-side:top;text-align:left;padding:6px 8px;color:var(--muted)}
th,td{padding:4px 8px;border-bottom:1px solid var(--line);text-align:left;white-space:nowrap}
td.n{text-align:right}
th{background:var(--bg);position:sticky;top:0;cursor:pointer;user-select:none;z-index:1}
th:hover,th:focus{background:#e8edf7;outline:none}
th[aria-sort=ascending]::after{content:" \\25B2";font-size:10px}
th[aria-sort=descending]::after{content:" \\25BC";font-size:10px}
tr.suggested td{background:var(--pick);font-weight:600}
input[type=search]{padding:5px 8px;width:320px;max-width:100%;border:1px solid var(--line);
border-radius:5px;margin:4px 0 8px}
dl dt{font-weight:600;margin-top:10px}
dl dd{margin:2px 0 0 18px}
dd small{color:var(--muted)}
pre{background:var(--bg);padding:10px;border-radius:6px;overflow:auto;font-size:12px}
.notes{color:var(--muted);font-size:13px}
details summary{cursor:pointer;font-weight:600}
"""

# Static: it never contains user data, which lives in the escaped page and the JSON block.
_SCRIPT = """
(function () {
  "use strict";
  var collator = new Intl.Collator(undefined, {numeric: true, sensitivity: "base"});
  function key(row, index, numeric) {
    var cell = row.cells[index];
    if (!cell) { return numeric ? NaN : ""; }
    var raw = cell.getAttribute("data-v");
    var text = raw === null ? cell.textContent : raw;
    return numeric ? (text === "" ? NaN : Number(text)) : text;
  }
  function sortTable(table, th) {
    var index = th.cellIndex;
    var numeric = th.getAttribute("data-type") === "num";
    var ascending = th.getAttribute("aria-sort") !== "ascending";
    var body = table.tBodies[0];
    var keyed = Array.prototype.map.call(body.rows, function (row, i) {
      return [key(row, index, numeric), i, row];
    });
    keyed.sort(function (a, b) {
      var x = a[0], y = b[0];
      if (numeric && (isNaN(x) || isNaN(y))) {
        return isNaN(x) === isNaN(y) ? a[1] - b[1] : (isNaN(x) ? 1 : -1);
      }
      var order = numeric ? (x < y ? -1 : (x > y ? 1 : 0)) : collator.compare(x, y);
      return (ascending ? order : -order) || a[1] - b[1];
    });
    var fragment = document.createDocumentFragment();
    keyed.forEach(function (item) { fragment.appendChild(item[2]); });
    body.appendChild(fragment);
    Array.prototype.forEach.call(th.parentNode.cells, function (other) {
      other.removeAttribute("aria-sort");
    });
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) {
      th.addEventListener("click", function () { sortTable(table, th); });
      th.addEventListener("keydown", function (event) {
        if (event.key === "Enter" || event.key === " ") {
          event.preventDefault();
          sortTable(table, th);
        }
      });
    });
  });
  document.querySelectorAll("input[data-filter]").forEach(function (input) {
    var table = document.getElementById(input.getAttribute("data-filter"));
    input.addEventListener("input", function () {
      var words = input.value.toLowerCase().split(/\\s+/).filter(Boolean);
      Array.prototype.forEach.call(table.tBodies[0].rows, function (row) {
        var text = row.textContent.toLowerCase();
        row.hidden = !words.every(function (word) { return text.indexOf(word) >= 0; });
      });
    });
  });
}());
"""


def _csp() -> str:
    digest = base64.b64encode(hashlib.sha256(_SCRIPT.encode("utf-8")).digest()).decode("ascii")
    return ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
            f"script-src 'sha256-{digest}'; base-uri 'none'; form-action 'none'")


def render_page(inputs: PageInputs) -> str:
    """The full HTML document for ``inputs`` (pure: no I/O)."""
    from memberscope._version import __version__

    rows = inputs.rows
    summary = summarize(rows, max_auc=inputs.max_auc) if rows else None
    models = [m for m in dict.fromkeys(r.metadata.get("model") for r in rows) if m is not None]
    generated = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    facts = [f"{len(rows)} results", f"{len({r.attack for r in rows})} attack(s)",
             f"{len({r.slice for r in rows})} slice(s)"]
    if models:
        facts.insert(0, f"{len(models)} model variant(s)")
    if inputs.skipped:
        facts.append(f"{len(inputs.skipped)} skipped")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{escape(_csp())}">',
        '<meta name="viewport" content="width=device-width,initial-scale=1">',
        '<link rel="icon" href="data:,">',
        f"<title>{escape(inputs.title)}</title><style>{_STYLE}</style></head><body>",
        f"<header><h1>{escape(inputs.title)}</h1>"
        f'<p>Source: <span id="source">{escape(inputs.source)}</span> · '
        f"{escape(' · '.join(facts))} · generated {escape(generated)} by memberscope "
        f"{escape(__version__)}</p></header><main>",
        answers_section(summary) if summary is not None else
        '<section class="answers" id="answers"><div class="card"><h2>No results</h2><p>Every '
        "slice × attack pair was skipped; the reasons are listed below.</p></div></section>",
    ]
    if inputs.notes:
        parts.append('<ul class="notes">' + "".join(f"<li>{escape(n)}</li>" for n in inputs.notes)
                     + "</ul>")
    if inputs.figures:
        parts.append('<section id="figures"><h2>Figures</h2>')
        for fig in inputs.figures:
            parts.append(f'<figure id="fig-{escape(fig.name)}"><img src="{_data_uri(fig.png)}" '
                         f'alt="{escape(fig.title)}"><figcaption><b>{escape(fig.title)}</b>'
                         f"{escape(fig.caption)}</figcaption></figure>")
        parts.append("</section>")
    checkpoints = checkpoints_table(rows, summary) if summary is not None else None
    if checkpoints:
        parts.append(f'<section id="checkpoints-section"><h2>Checkpoints</h2>{checkpoints}'
                     "</section>")
    parts.append('<section id="results-section"><h2>Every result</h2>'
                 '<input type="search" data-filter="all-results" '
                 'placeholder="Filter rows, e.g. class=3 threshold" aria-label="filter results">'
                 f"{results_table(rows)}</section>")
    exposed = exposed_table(inputs.exposed)
    if exposed:
        parts.append(f'<section id="exposed-section"><h2>Most exposed examples</h2>{exposed}'
                     "</section>")
    skipped = skipped_table(inputs.skipped)
    if skipped:
        parts.append(f'<section id="skipped-section"><h2>Skipped</h2>{skipped}</section>')
    parts.append(_explanations())
    if inputs.config_text is not None:
        parts.append('<section id="config"><details><summary>Configuration (config.toml)'
                     f"</summary><pre>{escape(inputs.config_text)}</pre></details></section>")
    parts.append(f'<script type="application/json" id="memberscope-summary">'
                 f"{json_for_script(summary.to_dict() if summary else {})}</script>")
    parts.append(f"</main><script>{_SCRIPT}</script></body></html>\n")
    return "".join(parts)


# --- collecting the inputs ------------------------------------------------------------------


def _exposed_examples(scores: Mapping[str, np.ndarray], membership: np.ndarray | None,
                      labels: np.ndarray | None, k: int = EXPOSED_ROWS) -> list[ExposedExample]:
    from memberscope.report.plots import exposed_indices

    out = []
    for attack, values in scores.items():
        values = np.asarray(values, dtype=float)
        if membership is not None and len(membership) != len(values):
            continue
        for index in exposed_indices(values, membership, k):
            label = labels[index].item() if labels is not None and len(labels) > index else None
            out.append(ExposedExample(attack, int(index), float(values[index]), label))
    return out


def _audit_curves(result: AuditResult) -> dict[str, RocCurve]:
    curves: dict[str, RocCurve] = {}
    for row, roc in zip(result.rows, result.rocs, strict=False):
        if roc is not None and row.slice == "entire_dataset":
            curves[f"{row.attack} (AUC {row.auc:.3f})"] = roc
    return curves


def _render_figures(rows: Sequence[AuditRow], limit: float | None,
                    curves: Mapping[str, RocCurve | tuple[np.ndarray, np.ndarray]],
                    gallery: tuple[np.ndarray, np.ndarray, np.ndarray | None,
                                   np.ndarray | None] | None) -> list[_figures.RenderedFigure]:
    from memberscope.report.summary import accuracy_key_of, suggest_checkpoint

    built: list[_figures.RenderedFigure | None] = [_figures.epoch_figure(rows)]
    accuracy_key = accuracy_key_of(rows)
    if accuracy_key is not None:
        pick = suggest_checkpoint(rows, limit=limit, accuracy_key=accuracy_key)
        built.append(_figures.utility_figure(rows, accuracy_key, limit,
                                             (pick.model, pick.epoch) if pick else None))
    built.append(_figures.roc_figure(curves))
    built.append(_figures.heatmap_figure(rows))
    built.append(_figures.dp_figure(rows))
    if gallery is not None:
        scores, images, membership, labels = gallery
        built.append(_figures.gallery_figure(scores, images, membership=membership,
                                             labels=labels))
    return [fig for fig in built if fig is not None]


def write_audit_report(result: AuditResult, path: str | Path, *,
                       max_auc: float | None = None, images: np.ndarray | None = None,
                       title: str = "memberscope privacy report",
                       source: str | None = None) -> Path:
    """Write the self-contained HTML report of one audit to ``path`` (atomically).

    Parameters
    ----------
    result : AuditResult
        From :func:`memberscope.audit` or :func:`memberscope.load_result` (ROC curves and
        per-example scores appear when the result carries them).
    max_auc : float, optional
        Privacy limit for the suggested checkpoint (rows need accuracy metadata).
    images : (n, H, W[, C]), optional
        The audited examples, aligned with the result's scores: adds a gallery of the most
        exposed training examples.

    Returns
    -------
    Path
        ``path``.
    """
    path = Path(path)
    rows = list(result.rows)
    gallery = None
    if images is not None and result.scores:
        attack = max(result.scores, key=lambda a: _entire_auc(rows, a))
        gallery = (result.scores[attack], np.asarray(images), result.membership, result.labels)
    curves = _audit_curves(result)
    notes = []
    if not curves:
        notes.append("No ROC curves: they are kept in arrays.npz next to result.json.")
    inputs = PageInputs(
        title=title, source=source or str(path.parent), rows=rows, skipped=list(result.skipped),
        figures=_render_figures(rows, max_auc, curves, gallery),
        exposed=_exposed_examples(result.scores, result.membership, result.labels),
        max_auc=max_auc, notes=notes)
    atomic_write_text(path, render_page(inputs))
    return path


def _entire_auc(rows: Sequence[AuditRow], attack: str) -> float:
    values = [r.auc for r in rows if r.attack == attack and r.slice == "entire_dataset"]
    return max(values) if values else -math.inf


def _run_scores(run_dir: Path) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]],
                                        tuple[np.ndarray, np.ndarray, np.ndarray | None,
                                              np.ndarray | None] | None]:
    """ROC curves (and a gallery) from ``scores/*.npz`` files holding ``membership`` and
    ``scores_<attack>`` arrays (the ``arrays.npz`` layout), plus optional ``labels``/``images``.
    """
    from memberscope.metrics import roc_curve

    curves: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    gallery = None
    files = sorted((run_dir / SCORES_DIR).glob("*.npz")) if (run_dir / SCORES_DIR).is_dir() else []
    for file in files[-MAX_ROC_CURVES:]:
        try:
            arrays = load_npz(file)
        except (OSError, ValueError) as exc:
            logger.warning("skipping %s: %s", file, exc)
            continue
        membership = arrays.get("membership")
        if membership is None:
            continue
        membership = membership.astype(bool)
        for name, scores in arrays.items():
            if name.startswith("scores_") and scores.shape == membership.shape:
                roc = roc_curve(scores, membership).thinned()
                curves[f"{file.stem} · {name.removeprefix('scores_')}"] = (roc.fpr, roc.tpr)
                if "images" in arrays and len(arrays["images"]) == len(scores):
                    gallery = (scores, arrays["images"], membership, arrays.get("labels"))
    return dict(list(curves.items())[-MAX_ROC_CURVES:]), gallery


def write_run_report(run_dir: str | Path, *, out: str | Path | None = None,
                     max_auc: float | None = None, write_figures: bool = True) -> Path:
    """Write the HTML report of a training run directory (``results.jsonl``, ``config.toml``,
    optional ``scores/*.npz``) atomically.

    Parameters
    ----------
    run_dir : path
        The run directory (DESIGN.md "Run directory").
    out : path, optional
        The HTML file (default ``run_dir/report.html``).
    max_auc : float, optional
        Privacy limit: the suggested checkpoint is the most accurate (model, epoch) whose
        worst AUC over slices and attacks is ≤ ``max_auc``.
    write_figures : bool
        Also save each figure as ``run_dir/figures/<name>.png``.

    Returns
    -------
    Path
        The HTML file written.
    """
    run_dir = Path(run_dir)
    results_path = run_dir / RESULTS_FILE
    if not results_path.is_file():
        raise FileNotFoundError(f"{results_path} not found: run_dir must be a run directory "
                                "holding results.jsonl")
    collection: ResultsCollection = load_results(results_path)
    rows = list(collection.rows)
    config_path = run_dir / CONFIG_FILE
    config_text = config_path.read_text(encoding="utf-8", errors="replace") \
        if config_path.is_file() else None
    curves, gallery = _run_scores(run_dir)
    rendered = _render_figures(rows, max_auc, curves, gallery)
    inputs = PageInputs(
        title=f"memberscope privacy report: {run_dir.resolve().name}", source=str(run_dir),
        rows=rows, skipped=list(collection.skipped), figures=rendered, config_text=config_text,
        max_auc=max_auc)
    path = Path(out) if out is not None else run_dir / REPORT_FILE
    page = render_page(inputs)
    if write_figures:
        for fig in rendered:
            atomic_write_bytes(run_dir / FIGURES_DIR / f"{fig.name}.png", fig.png)
    atomic_write_text(path, page)
    return path
