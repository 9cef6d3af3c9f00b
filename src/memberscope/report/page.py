"""The report page: :class:`PageInputs` -> one self-contained HTML document (pure, no I/O
beyond reading this package's templates and static files).

The page is rendered from Jinja2 templates (``report/templates/*.html.j2``) with autoescaping
on, so every user string (model labels, slice names, metadata, config text) is HTML-escaped
wherever a template puts it. Style and the small sorting/filtering script are package files
(``report/static/``) inlined at render time: the page needs no network, and a
Content-Security-Policy forbids every fetch and every script but ours (by hash). Data embedded
for scripts is JSON with ``<``, ``>`` and ``&`` escaped (:func:`json_for_script`).
"""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING, Any

import numpy as np

from memberscope._io import json_value
from memberscope.metric_definitions import (
    ADVANTAGE,
    AUC,
    EPSILON_CONFIDENT,
    EPSILON_POINT,
    GLOSSARY,
    PPV,
    parse_metric,
    tpr_metric,
)
from memberscope.report._data import metadata_keys, slice_sort_key
from memberscope.results import AuditRow, SkippedEntry, audit_family, metric_value
from memberscope.risk import RISK_METHODS
from memberscope.summary import (
    Label,
    Number,
    Summary,
    epoch_sort_key,
    family_text,
    format_number,
    summarize,
)

if TYPE_CHECKING:
    import jinja2
    from markupsafe import Markup

    from memberscope.report.figures import RenderedFigure

#: Row metadata shown in their own columns, before any other metadata key.
KNOWN_METADATA = ("model", "epoch", "train_accuracy", "test_accuracy", "epsilon")
#: Per-epoch diagnostics (one value per model and epoch, with the decimals shown): listed in
#: the checkpoints table rather than repeated on every result row.
EPOCH_DIAGNOSTICS = {"train_loss": 4, "epoch_seconds": 2, "inference_seconds": 3,
                     "audit_seconds": 3, "images_per_second": 0}

__all__ = ["ExposedExample", "PageInputs", "Table", "escape", "json_for_script", "render_page"]


# --- escaping -------------------------------------------------------------------------------


def escape(value: Any) -> str:
    """``value`` as text safe in HTML content and in quoted attribute values (what the
    templates' autoescaping does)."""
    from markupsafe import escape as _escape

    return str(_escape("" if value is None else str(value)))


def json_for_script(document: Any) -> str:
    """JSON safe inside ``<script type="application/json">``: no ``</script>``, ``<!--``,
    ``&`` or line separators can break out; NaN/inf become null."""
    text = json.dumps(json_value(document, other=str), allow_nan=False, ensure_ascii=True,
                      sort_keys=True)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


# --- page inputs ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ExposedExample:
    """A member an attack flags most surely (or, in ``trace_exposed``, that a loss-trace risk
    method, named in ``attack``, ranks most exposed); ``model``/``epoch`` are set in a run's
    report, and ``index`` is the training-set index where the run kept it. ``ties`` counts
    the members (this one included) with exactly this score."""

    attack: str
    index: int
    score: float
    label: Any
    model: str | None = None
    epoch: int | None = None
    ties: int = 1


@dataclass
class PageInputs:
    """Everything one page shows."""

    title: str
    source: str
    rows: list[AuditRow]
    skipped: list[SkippedEntry] = field(default_factory=list)
    figures: list[RenderedFigure] = field(default_factory=list)
    config_text: str | None = None
    exposed: list[ExposedExample] = field(default_factory=list)
    trace_exposed: list[ExposedExample] = field(default_factory=list)  # ranked by trace risk
    max_auc: float | None = None
    notes: list[str] = field(default_factory=list)
    summary: Summary | None = None  # of ``rows`` with ``max_auc``; computed when not given


# --- the glossary ----------------------------------------------------------------------------


def code_spans(text: str) -> Markup:
    """``text`` escaped for HTML, with each `backticked` part as ``<code>`` (the definitions'
    text is written for the README's Markdown too)."""
    from markupsafe import Markup

    parts = text.split("`")
    return Markup("").join(Markup("<code>{}</code>").format(part) if index % 2
                           else Markup("{}").format(part) for index, part in enumerate(parts))


# --- tables ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    """One table cell: the text shown, and for numbers the exact value (``data-v``) that
    sorting and tests read ("" for a non-finite number)."""

    text: str
    exact: str | None = None


@dataclass(frozen=True)
class Table:
    """A sortable table as the template draws it; ``headers`` pairs each title with whether
    the column is numeric."""

    table_id: str
    caption: str
    headers: tuple[tuple[str, bool], ...]
    rows: tuple[tuple[tuple[Cell, ...], str], ...]  # (cells, row class)
    wrap: bool = False  # long text columns may wrap instead of widening the table


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.number) and not isinstance(value, bool)


def _cell(value: Any, numeric: bool, digits: int = 3) -> Cell:
    """``digits`` decimals, or -``digits`` significant digits when negative."""
    if not numeric or not _is_number(value):
        return Cell("" if value is None else str(value))
    if isinstance(value, int | np.integer):
        return Cell(str(int(value)), str(int(value)))
    number = float(value)
    exact = repr(number) if math.isfinite(number) else ""
    shown = format_number(number, digits) if digits >= 0 or not math.isfinite(number) \
        else f"{number:.{-digits}g}"
    return Cell(shown, exact)


def make_table(table_id: str, headers: Sequence[str], columns: Sequence[Sequence[Any]], *,
               row_classes: Sequence[str] | None = None, digits: Sequence[int] | None = None,
               caption: str = "", wrap: bool = False) -> Table:
    """A sortable table; ``columns`` holds each column's values (all the same length)."""
    numeric = [bool([v for v in col if v is not None])
               and all(_is_number(v) for v in col if v is not None) for col in columns]
    n_rows = len(columns[0]) if columns else 0
    rows = tuple(
        (tuple(_cell(col[i], numeric[j], digits[j] if digits else 3)
               for j, col in enumerate(columns)),
         row_classes[i] if row_classes else "")
        for i in range(n_rows))
    return Table(table_id, caption, tuple(zip(headers, numeric, strict=True)), rows, wrap)


def _fpr_metrics(rows: Sequence[AuditRow]) -> list[str]:
    return [tpr_metric(f).key for f in sorted({f for r in rows for f in r.tpr_at_fpr})]


def _metric_header(metric: str) -> str:
    return parse_metric(metric).header


def _scalar(value: Any) -> Any:
    return value if value is None or isinstance(value, str | int | float | bool) else str(value)


def _interval_text(interval: tuple[float, float] | None) -> str | None:
    return None if interval is None else f"{interval[0]:.3f}–{interval[1]:.3f}"


def _tpr_interval(row: AuditRow, fpr: float) -> tuple[float, float] | None:
    if not row.tpr_at_fpr_ci:
        return None
    return next((v for k, v in row.tpr_at_fpr_ci.items() if math.isclose(k, fpr)), None)


def _yes_no(verdict: bool | None) -> str | None:
    return None if verdict is None else ("yes" if verdict else "no")


def results_table(rows: Sequence[AuditRow], summary: Summary | None = None) -> Table:
    """Every result row with every metric and metadata value, the p-value and significance
    verdict (described by ``summary``'s family), and the bootstrap intervals where rows have
    them."""
    fprs = _fpr_metrics(rows)
    keys = metadata_keys(rows)
    if rows and all(r.metadata.get("epoch") is not None for r in rows):  # a checkpoints table
        keys = [k for k in keys if k not in EPOCH_DIAGNOSTICS]
    meta = [k for k in KNOWN_METADATA if k in keys] + [k for k in keys if k not in KNOWN_METADATA]
    ordered = sorted(rows, key=lambda r: (str(r.metadata.get("model")),
                                          epoch_sort_key(r.metadata.get("epoch")),
                                          r.attack, slice_sort_key(r.slice)))
    headers = [*(k.replace("_", " ") for k in meta[:2]), "attack", "slice", "members",
               "non-members"]
    columns: list[list[Any]] = [[r.metadata.get(k) for r in ordered] for k in meta[:2]]
    columns += [[r.attack for r in ordered], [r.slice for r in ordered],
                [r.n_members for r in ordered], [r.n_nonmembers for r in ordered]]
    digits = [3] * len(headers)

    def add(header: str, values: list[Any], places: int = 3) -> None:
        headers.append(header)
        columns.append(values)
        digits.append(places)

    add(AUC.header, [r.auc for r in ordered])
    if any(r.auc_ci is not None for r in ordered):
        add("AUC 95% CI", [_interval_text(r.auc_ci) for r in ordered])
    if any(r.p_value is not None for r in ordered):
        add("p-value", [r.p_value for r in ordered], -2)
        add("significant", [_yes_no(r.significant) for r in ordered])
    beyond = any(r.beyond_split_p_value is not None for r in ordered)
    if beyond:
        add("beyond-split p-value", [r.beyond_split_p_value for r in ordered], -2)
        add("beyond split", [_yes_no(r.beyond_split_significant) for r in ordered])
    for metric in [ADVANTAGE.key, PPV.key, *fprs]:
        add(_metric_header(metric), [metric_value(r, metric) for r in ordered])
        fpr = parse_metric(metric).fpr
        if fpr is not None:
            intervals = [_tpr_interval(r, fpr) for r in ordered]
            if any(i is not None for i in intervals):
                add(f"{_metric_header(metric)} CI", [_interval_text(i) for i in intervals])
    for metric in (EPSILON_CONFIDENT.key, EPSILON_POINT.key):
        add(_metric_header(metric), [metric_value(r, metric) for r in ordered])
    for key in meta[2:]:
        add(key.replace("_", " "), [_scalar(r.metadata.get(key)) for r in ordered])
    return make_table("all-results", headers, columns, digits=digits,
                      caption=f"{len(rows)} results: click a column header to sort. "
                              "p-value: one-sided test of 'no membership information'; "
                              + ("" if summary is None else
                                 f"significant: {family_text(audit_family(rows))}; ")
                              + (f"beyond split: "
                                 f"{family_text(audit_family(rows, beyond_split=True))}; "
                                 if beyond else "")
                              + "CI: bootstrap 95% interval")


def checkpoints_table(summary: Summary) -> Table | None:
    """One row per (model, epoch) of ``summary.checkpoints``: accuracies, ε, and the worst of
    each metric over the slices and attacks distinguishable from chance."""
    checkpoints = summary.checkpoints
    if not checkpoints:
        return None
    metric = parse_metric(summary.metric)
    low = None if summary.low_fpr_metric is None else parse_metric(summary.low_fpr_metric)

    def present(key: str) -> bool:
        return any(isinstance(c.metadata.get(key), int | float) for c in checkpoints)

    accuracies = [k for k in ("train_accuracy", "test_accuracy") if present(k)]
    has_eps = present("epsilon")
    diagnostics = [k for k in EPOCH_DIAGNOSTICS if present(k)]
    records = []
    classes = []
    pick = summary.suggestion
    for checkpoint in checkpoints:
        worst = checkpoint.worst
        record: list[Any] = [*checkpoint.key, *(checkpoint.metadata.get(k) for k in accuracies)]
        if has_eps:
            record.append(checkpoint.metadata.get("epsilon"))
        record.append(f"{checkpoint.n_significant} of {len(checkpoint.rows)}"
                      if checkpoint.tested else "not tested")
        record += ([None, "none distinguishable from chance", None] if worst is None else
                   [worst.metric(metric), worst.slice, worst.attack])
        record.append(checkpoint.max_advantage)
        if low is not None:
            record.append(checkpoint.max_low_fpr)
        record.append(checkpoint.max_epsilon)
        record += [checkpoint.metadata.get(k) for k in diagnostics]
        records.append(record)
        is_pick = pick is not None and (pick.model, pick.epoch) == checkpoint.key
        classes.append("suggested" if is_pick else "")
    headers = ["model", "epoch", *(k.replace("_", " ") for k in accuracies)]
    if has_eps:
        headers.append("accountant ε")
    headers += ["significant", f"worst {metric.header}", "worst slice", "attack",
                f"max {ADVANTAGE.header}"]
    if low is not None:
        headers.append(f"max {low.header}")
    headers.append(f"max {EPSILON_CONFIDENT.header}")
    headers += [k.replace("_", " ") for k in diagnostics]
    digits = [3] * (len(headers) - len(diagnostics)) + [EPOCH_DIAGNOSTICS[k] for k in diagnostics]
    columns = [list(col) for col in zip(*records, strict=True)]
    return make_table("checkpoints", headers, columns, row_classes=classes, digits=digits,
                      caption="One row per model variant and epoch: the worst over the slices "
                              "and attacks distinguishable from chance "
                              f"({summary.family_text}); the suggested checkpoint is "
                              "highlighted")


def skipped_table(skipped: Sequence[SkippedEntry]) -> Table | None:
    """Pairs that were not evaluated, with the reason."""
    if not skipped:
        return None
    meta = [k for k in ("model", "epoch") if any(k in s.metadata for s in skipped)]
    columns: list[list[Any]] = [[s.metadata.get(k) for s in skipped] for k in meta]
    columns += [[s.slice for s in skipped], [s.attack for s in skipped],
                [s.reason for s in skipped]]
    return make_table("skipped", [*meta, "slice", "attack", "reason"], columns, wrap=True,
                      caption="Slice × attack pairs that were not evaluated, and why")


def exposed_table(exposed: Sequence[ExposedExample]) -> Table | None:
    """The members each attack flags most surely."""
    if not exposed:
        return None
    run = any(e.model is not None for e in exposed)
    headers = ["model", "epoch"] if run else []
    columns: list[list[Any]] = [[e.model for e in exposed], [e.epoch for e in exposed]] \
        if run else []
    headers += ["attack", "example index", "score", "label"]
    columns += [[e.attack for e in exposed], [e.index for e in exposed],
                [e.score for e in exposed], [e.label for e in exposed]]
    digits = [3] * (len(headers) - 2) + [-4, 3]
    caption = ("Training examples with the highest attack score (most exposed)" +
               (" at each variant's last audit; the index is the example's position in the "
                "training set" if run else "") + ".")
    caption += _add_ties(exposed, headers, columns, digits, "score")
    return make_table("exposed", headers, columns, digits=digits, caption=caption)


def trace_exposed_table(exposed: Sequence[ExposedExample]) -> Table | None:
    """The members each model's loss traces rank most exposed (``attack`` holds the risk
    method, ``epoch`` the last recorded epoch)."""
    if not exposed:
        return None
    methods = ", ".join(dict.fromkeys(e.attack for e in exposed))
    headers = ["model", "through epoch", "example index", f"risk ({methods})", "label"]
    columns: list[list[Any]] = [[e.model for e in exposed], [e.epoch for e in exposed],
                                [e.index for e in exposed], [e.score for e in exposed],
                                [e.label for e in exposed]]
    digits = [3, 3, 3, -4, 3]
    described = "; ".join(f"{name}: the {RISK_METHODS[name].summary}" for name in
                          dict.fromkeys(e.attack for e in exposed) if name in RISK_METHODS)
    caption = (f"Members ranked by the risk their training-loss traces show ({described}), "
               "without reference models. A ranking of the members a membership attack would "
               "most likely single out, not a claim that any of them is exposed: it has no "
               "chance level. Removing them exposes the next ones (the onion effect): re-audit "
               "after removing data.")
    caption += _add_ties(exposed, headers, columns, digits, "risk")
    return make_table("trace-exposed", headers, columns, digits=digits, caption=caption)


def _add_ties(exposed: Sequence[ExposedExample], headers: list[str],
              columns: list[list[Any]], digits: list[int], value: str) -> str:
    """Add a column counting the members tied at each listed ``value`` where some tie;
    returns the caption's sentence about them (empty when none ties)."""
    tied = [e for e in exposed if e.ties > 1]
    if not tied:
        return ""
    headers.append(f"members at this {value}")
    columns.append([e.ties for e in exposed])
    digits.append(3)
    return (f" Some members tie at one {value} (" + _ties_text(tied) + "); among tied "
            "members the table lists the lowest indices, which are no more exposed than the "
            "others.")


def _ties_text(tied: Sequence[ExposedExample], most: int = 3) -> str:
    """"12 members at 0.9531 (threshold)", one per distinct tied score, at most ``most``."""
    seen = dict.fromkeys((e.model, e.attack, e.score, e.ties) for e in tied)
    parts = []
    for model, attack, score, ties in list(seen)[:most]:
        where = " · ".join(str(p) for p in (model, attack) if p is not None)
        parts.append(f"{ties} members at {score:.4g} ({where})")
    return "; ".join(parts) + ("; …" if len(seen) > most else "")


# --- rendering ------------------------------------------------------------------------------


def _static(name: str) -> str:
    return resources.files("memberscope.report").joinpath("static", name).read_text("utf-8")


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    from memberscope.errors import require

    require("jinja2", "report", "the HTML report")
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("memberscope.report", "templates"),
        autoescape=True, trim_blocks=True, lstrip_blocks=True,
        undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    env.globals.update(code_spans=code_spans, is_number=_is_number_part,
                       is_label=_is_label_part)
    return env


@lru_cache(maxsize=1)
def _assets() -> tuple[str, str, str]:
    """(style, script, Content-Security-Policy); the script is ours, allowed by its hash."""
    style, script = _static("report.css"), _static("report.js")
    if "</" in style or "</" in script:
        raise RuntimeError("report static files must not contain '</'")
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    csp = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
           f"script-src 'sha256-{digest}'; base-uri 'none'; form-action 'none'")
    return style, script, csp


def _is_number_part(part: object) -> bool:
    return isinstance(part, Number)


def _is_label_part(part: object) -> bool:
    return isinstance(part, Label)


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def render_page(inputs: PageInputs) -> str:
    """The full HTML document for ``inputs`` (pure: no I/O but reading package files)."""
    from markupsafe import Markup

    from memberscope._version import __version__

    rows = inputs.rows
    summary = inputs.summary
    if summary is None and rows:
        summary = summarize(rows, max_auc=inputs.max_auc)
    models = [m for m in dict.fromkeys(r.metadata.get("model") for r in rows) if m is not None]
    facts = [f"{len(rows)} results", f"{len({r.attack for r in rows})} attack(s)",
             f"{len({r.slice for r in rows})} slice(s)"]
    if models:
        facts.insert(0, f"{len(models)} model variant(s)")
    if inputs.skipped:
        facts.append(f"{len(inputs.skipped)} skipped")
    style, script, csp = _assets()
    tables = {
        "checkpoints": checkpoints_table(summary) if summary is not None else None,
        "results": results_table(rows, summary),
        "exposed": exposed_table(inputs.exposed),
        "trace_exposed": trace_exposed_table(inputs.trace_exposed),
        "skipped": skipped_table(inputs.skipped),
    }
    return _environment().get_template("page.html.j2").render(
        inputs=inputs, summary=summary, facts=facts, tables=tables,
        generated=_dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        version=__version__, glossary=GLOSSARY,
        figures=[(fig, _data_uri(fig.png)) for fig in inputs.figures],
        summary_json=Markup(json_for_script(summary.to_dict() if summary else {})),
        style=Markup(style), script=Markup(script), csp=csp)
