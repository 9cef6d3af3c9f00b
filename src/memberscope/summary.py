"""What a result or a run says, computed once: the headline, the worst leakage and its verdict
word, the trend with training, the suggested checkpoint, DP consistency, and one summary per
checkpoint and per slice, each with its wording. Pure: no I/O, no plotting, no terminal.

Every surface renders one :class:`Summary`: the HTML page (its templates only place the
statements), the terminal table of ``memberscope audit``/``report``, the runner's per-epoch
line and the monitors' per-audit line. A statement is a :class:`Statement`, text with its
numbers (:class:`Number`) and user strings (:class:`Label`) kept apart, so the page can mark
them up and the terminal print them literally.

Every statement ranks only rows distinguishable from chance in its family
(:func:`~memberscope.results.distinguishable_rows`, the one rule) and carries that
:class:`~memberscope.results.Family`; where none is it says "no leakage distinguishable from
chance" instead of naming the largest of many noisy numbers. A summary is about all the rows
it is given, so by default its family is all of them (:func:`~memberscope.results.run_family`:
Holm over the run's results, one audit's when it is given one): "at any epoch", which
variants leak, the worst result and the suggested checkpoint are then controlled at α over
the whole run, while each row keeps its own audit's ``significant``. The TPR at the lowest
FPR is a headline only where it beats chance by its own exact test, corrected over the rows
it is picked from (:func:`~memberscope.results.tpr_family`). Statements that must precede
the headline on every surface go in :attr:`Summary.leading`: where an audit's split guard found
members and non-members different before any model saw them, it says so there first, and
every statement ranks only rows significant *beyond the split* instead (``Family.beyond_split``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from memberscope.attacks import null_pooling
from memberscope.errors import InputError
from memberscope.metric_definitions import (
    AUC,
    EPSILON_CONFIDENT,
    Metric,
    parse_metric,
    tpr_metric,
)
from memberscope.metrics import family_epsilon_lower_bound
from memberscope.one_run import recorded_bounds
from memberscope.results import (
    SAME_DISTRIBUTION,
    AuditResult,
    AuditRow,
    Family,
    ResultsCollection,
    SplitGuard,
    distinguishable_rows,
    metric_value,
    never_tested,
    run_family,
    tpr_family,
    worst_distinguishable,
    worst_row,
)

Rows = ResultsCollection | AuditResult | Iterable[AuditRow]

#: A change in the worst metric smaller than this between first and last epoch is "flat".
FLAT_TOLERANCE = 0.01
ACCURACY_KEYS = ("test_accuracy", "train_accuracy")
_CORRECTION_NAMES = {"holm": "Holm's", "bonferroni": "Bonferroni's"}
_ROW_FIELDS = ("slice", "attack")

__all__ = ["DpPoint", "Group", "Label", "Number", "Series", "Statement", "Suggestion", "Summary",
           "Trend", "accuracy_key_of", "as_rows", "dp_points", "epoch_sort_key", "family_text",
           "field_value", "format_number", "group_rows", "lowest_fpr_metric", "marking_family",
           "no_leakage_text", "split_guards_of", "split_statement", "suggest_checkpoint",
           "summarize", "summarize_group", "trends", "verdict", "worst_series"]


# --- rows, grouped ----------------------------------------------------------------------------


def as_rows(results: Rows) -> list[AuditRow]:
    """The rows of a collection, an audit result or any iterable of rows."""
    if isinstance(results, ResultsCollection | AuditResult):
        return list(results.rows)
    rows = list(results)
    for index, row in enumerate(rows):
        if not isinstance(row, AuditRow):
            raise InputError(f"results[{index}] must be an AuditRow; got {type(row).__name__}")
    return rows


def field_value(row: AuditRow, key: str) -> Any:
    """A row's ``slice``/``attack`` field or its metadata value (None when absent)."""
    if key in _ROW_FIELDS:
        return getattr(row, key)
    return row.metadata.get(key)


def group_rows(rows: Iterable[AuditRow], keys: Sequence[str]) -> dict[tuple[Any, ...],
                                                                       list[AuditRow]]:
    """Rows grouped by the values of ``keys`` (fields or metadata), in first-seen order."""
    groups: dict[tuple[Any, ...], list[AuditRow]] = {}
    for row in rows:
        groups.setdefault(tuple(field_value(row, k) for k in keys), []).append(row)
    return groups


def epoch_sort_key(epoch: Any) -> tuple[int, float, str]:
    """Numbers in numeric order, anything else after them by its text."""
    if isinstance(epoch, int | float) and not isinstance(epoch, bool):
        return (0, float(epoch), "")
    return (1, 0.0, str(epoch))


@dataclass(frozen=True)
class Series:
    """One line of a by-epoch view: ``epochs`` (k,), ``values`` (k,) and the row behind each."""

    epochs: np.ndarray
    values: np.ndarray
    rows: tuple[AuditRow, ...]


def worst_series(rows: Iterable[AuditRow], metric: str | Metric, *,
                 by: Sequence[str] = ("model", "attack"),
                 slice: str | None = None) -> dict[tuple[Any, ...], Series]:
    """For each group of ``by`` values, the worst ``metric`` over slices (and over whatever
    ``by`` leaves out) at each epoch, or the value on one ``slice`` when given.

    For ``epsilon_confident`` over several slices the value is not the largest row's bound
    (the largest of k bounds, each at 1 − α, is no (1 − α) bound) but
    :func:`largest_epsilon_bound`: a bound at the rows' confidence for the largest of them.
    Rows without an ``epoch`` in their metadata are left out; a name that is no metric raises.
    """
    parsed = metric if isinstance(metric, Metric) else parse_metric(metric)
    picked = [r for r in rows if r.metadata.get("epoch") is not None
              and (slice is None or r.slice == slice)]
    out: dict[tuple[Any, ...], Series] = {}
    for key, group in group_rows(picked, by).items():
        by_epoch = group_rows(group, ("epoch",))
        epochs = sorted(by_epoch, key=lambda e: epoch_sort_key(e[0]))
        points: list[tuple[AuditRow, float]] = []
        for epoch in epochs:
            at_epoch = by_epoch[epoch]
            if parsed == EPSILON_CONFIDENT and len(at_epoch) > 1:
                value, row = _largest_epsilon_bound_row(at_epoch)
                points.append((row, value))
                continue
            try:
                row = worst_row(at_epoch, parsed)
            except InputError:  # no row of this epoch stores the metric
                continue
            points.append((row, metric_value(row, parsed)))
        if points:
            out[key] = Series(
                epochs=np.array([r.metadata["epoch"] for r, _ in points]),
                values=np.array([v for _, v in points], dtype=float),
                rows=tuple(r for r, _ in points))
    return out


# --- numbers and statements ------------------------------------------------------------------


def format_number(value: Any, digits: int = 3) -> str:
    """A metric for display: fixed ``digits`` decimals; ``n/a`` for None/NaN; ints as is."""
    if value is None:
        return "n/a"
    if isinstance(value, bool | int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        if math.isinf(value):
            return "∞" if value > 0 else "-∞"
        return f"{value:.{digits}f}"
    return str(value)


@dataclass(frozen=True)
class Number:
    """A number in a statement: shown rounded (``digits`` decimals, or -``digits`` significant
    digits when negative, as for p-values), with its exact value and a ``key`` that names it
    for scripts and tests (the page's ``data-key``)."""

    value: float
    key: str
    digits: int = 3

    @property
    def text(self) -> str:
        """The rounded value as shown."""
        if self.digits < 0 and math.isfinite(self.value):
            return f"{float(self.value):.{-self.digits}g}"
        return format_number(float(self.value), self.digits)

    @property
    def exact(self) -> str:
        """``repr`` of the value, "" when it is not finite."""
        return repr(float(self.value)) if math.isfinite(self.value) else ""


@dataclass(frozen=True)
class Label:
    """A user string in a statement (model, attack, slice): shown literally everywhere."""

    text: str


Part = str | Number | Label


@dataclass(frozen=True)
class Statement:
    """One sentence of a summary: ``parts`` joined make its text; ``family`` is the family of
    tests its "significant" refers to (None where it says nothing about significance)."""

    parts: tuple[Part, ...]
    family: Family | None = None

    @property
    def text(self) -> str:
        """The plain text (terminal, logs)."""
        return "".join(p if isinstance(p, str) else p.text for p in self.parts)

    @property
    def sentence(self) -> Statement:
        """The statement with its first letter in upper case (it opens a sentence)."""
        first, *rest = self.parts or ("",)
        if isinstance(first, str):
            first = first[:1].upper() + first[1:]
        return Statement((first, *rest), self.family)


def _place(row: AuditRow) -> tuple[Part, ...]:
    """`` (model M, epoch E)`` where the row has them, else nothing."""
    found = [(k, row.metadata[k]) for k in ("model", "epoch") if row.metadata.get(k) is not None]
    if not found:
        return ()
    parts: list[Part] = [" ("]
    for index, (key, value) in enumerate(found):
        parts += [", " if index else "", f"{key} ", Label(str(value))]
    return (*parts, ")")


def no_leakage_text(n_tested: int, family: Family | None = None) -> str:
    """What a headline says when no row is significant: ``no leakage distinguishable from
    chance (22 results tested)``; in the family of a run of several audits also which:
    ``(132 results tested, after Holm's correction over the run's results (6 audits))``, or
    for part of it ``(22 results tested, after Holm's correction over the run's 132
    results (6 audits))``; in a beyond-split family ``no leakage beyond the split …``."""
    text = f"no leakage{_beyond(family)} distinguishable from chance ({n_tested} results tested"
    counts = None if family is None else family.n_results_audits
    if family is None or counts is None or counts[1] <= 1:
        return text + ")"
    return f"{text}, {family.describe(counted=n_tested != counts[0])})"


def _beyond(family: Family | None) -> str:
    """" beyond the split" in the beyond-split family, else nothing."""
    return " beyond the split" if family is not None and family.beyond_split else ""


def _worst_words(family: Family | None) -> str:
    """How a headline names its pick: "worst significant" (per audit), "worst beyond-split"."""
    return "worst beyond-split" if _beyond(family) else "worst significant"


def _p_parts(p_value: float | None, key: str) -> tuple[Part, ...]:
    """``p = 3e-09``; ``p < 1e-300`` where the tail underflowed to 0."""
    if p_value is None:
        return ()
    if p_value < 1e-300:
        return (", p < 1e-300",)
    return (", p = ", Number(p_value, key, -2))


def split_statement(guard: SplitGuard, key: str = "split") -> Statement:
    """What an audit's split guard found, in words a newcomer reads first.

    Shifted: ``members and non-members differ before the model sees them (blind AUC 0.640,
    p = 3e-09): this split cannot show memorisation, so only leakage beyond the split is
    reported``; same-distribution: ``split check: no difference between members and
    non-members found before the model (blind AUC 0.505, p = 0.41)``; not checked: what to give
    so it can be."""
    checks: list[Part] = []
    if guard.blind_auc is not None:
        checks += ["blind AUC ", Number(guard.blind_auc, f"{key}.blind_auc"),
                   *_p_parts(guard.blind_p_value, f"{key}.blind_p_value")]
    if guard.control_auc is not None:
        source = guard.control_source or "control model"
        checks += ["; " if checks else "", f"{source} that saw neither: AUC ",
                   Number(guard.control_auc, f"{key}.control_auc"),
                   *_p_parts(guard.control_p_value, f"{key}.control_p_value")]
    if guard.shifted:
        return Statement(("members and non-members differ before the model sees them (",
                          *checks, "): this split cannot show memorisation, so only leakage "
                          "beyond the split is reported"))
    if guard.verdict == SAME_DISTRIBUTION:
        return Statement(("split check: no difference between members and non-members found "
                          "before the model (", *checks, ")"))
    return Statement(("split not checked: give the model's inputs (inputs_train/inputs_test) "
                      "or a control model, so that leakage can be told from a shifted split",))


def split_guards_of(results: Rows) -> tuple[SplitGuard, ...]:
    """The split guards of an audit result or a collection (none for bare rows)."""
    if isinstance(results, AuditResult):
        return () if results.split_guard is None else (results.split_guard,)
    if isinstance(results, ResultsCollection):
        return tuple(results.split_guards)
    return ()


def marking_family(results: Rows, metric: str | Metric, *,
                   beyond_split: bool | None = None) -> Family:
    """The family that decides which result may be named the worst for ``metric`` (a
    headline, a star, an outlined cell), the same for :func:`summarize` and the figures: a
    TPR at FPR F by each model row's own test at F (:func:`~memberscope.results.tpr_family`;
    a row significant by AUC is not shown to beat chance at 0.1% FPR), and by none where the
    split is shifted (no test of a TPR beyond the split exists); any other metric by the run
    family, over the rows' beyond-split tests where the split is shifted. ``beyond_split``:
    whether it is (by default, whether a split guard of ``results`` found it so)."""
    parsed = metric if isinstance(metric, Metric) else parse_metric(metric)
    rows = as_rows(results)
    if beyond_split is None:
        beyond_split = any(guard.shifted for guard in split_guards_of(results))
    if parsed.fpr is None:
        return run_family(rows, beyond_split=beyond_split)
    # Split checks measure the data: never in a TPR headline's family.
    model_rows = [row for row in rows if not row.measures_split] or rows
    family = tpr_family(model_rows, parsed.fpr, null_pooling)
    return replace(family, significant_keys=frozenset(), beyond_split=True) if beyond_split \
        else family


def _split_statements(guards: Sequence[SplitGuard]) -> tuple[tuple[Statement, ...],
                                                             Statement | None]:
    """(leading statements: one per model variant whose last audit's split is shifted,
    labelled where guards of several variants are given; the note on an unshifted split)."""
    last: dict[Any, SplitGuard] = {}
    for guard in guards:
        last[guard.metadata.get("model")] = guard
    labelled = len(last) > 1
    leading: dict[str, Statement] = {}
    for index, (model, guard) in enumerate(last.items()):
        if guard.shifted:
            statement = split_statement(guard, f"split.{index}")
            if labelled:
                statement = Statement((Label(str(model)), ": ", *statement.parts))
            leading.setdefault(statement.text, statement)
    note = None
    if not leading and last:
        note = split_statement(list(last.values())[-1])
    return tuple(leading.values()), note


def verdict(auc: float) -> str:
    """How strong the worst leakage is, in words; only for a row distinguishable from chance
    (a non-significant row gets :func:`no_leakage_text` instead)."""
    if not math.isfinite(auc):
        return "undefined"
    if auc < 0.55:
        return "slight: distinguishable from chance, but the attack does little better"
    if auc < 0.6:
        return "weak: the attack does slightly better than guessing"
    if auc < 0.7:
        return "moderate: the attack clearly tells members from non-members"
    return "strong: the model reveals which examples it was trained on"


def family_text(family: Family, n_audits: int = 1) -> str:
    """How ``family``'s rows were judged: in a run family "significant after Holm's
    correction over the run's 132 results (6 audits) at α = 0.05" ("over this audit's
    results" for one audit; "its own exact test of TPR at 0.1% FPR, significant after …"
    for a TPR family); in the per-audit family "significant after Holm's correction over
    this audit's results at α = 0.05" (over "each audit's" for several audits); without a
    recorded level (files of schema 1 and 2), "significant after each audit's family-wise
    correction". In a beyond-split family: "significant beyond the split (a one-sided paired
    test … against the split guard's bars) after …"."""
    if _beyond(family):
        plain = family_text(Family(family.scope, family.alpha, family.correction, family.size,
                                   family.n_audits, family.test), n_audits)
        return ("significant beyond the split (a one-sided paired test, on the same examples, "
                "against the split guard's bars: the same attack on a control model, the "
                "reference models' signal on examples they did not train on, the blind "
                "attack)" + plain.removeprefix("significant"))
    if family.n_results_audits is not None and family.alpha is not None:
        text = f"significant {family.describe()} at α = {family.alpha:g}"
        if family.test is None:
            return text
        return f"its own exact test of {parse_metric(family.test).title}, {text}"
    whose = "this audit's" if n_audits <= 1 else "each audit's"
    if family.correction is None or family.alpha is None:
        return f"significant after {whose} family-wise correction"
    name = _CORRECTION_NAMES.get(family.correction, family.correction)
    return f"significant after {name} correction over {whose} results at α = {family.alpha:g}"


# --- the answers -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Trend:
    """How the worst distinguishable ``metric`` of one model variant moved over training,
    over the epochs that had a row distinguishable from chance (``n_epochs`` audited)."""

    model: Any
    metric: str
    first_epoch: Any
    first_value: float
    last_epoch: Any
    last_value: float
    peak_epoch: Any
    peak_value: float
    n_epochs: int = 0
    family: Family | None = None

    @property
    def direction(self) -> str:
        """``rose``, ``fell`` or ``stayed flat`` (within :data:`FLAT_TOLERANCE`)."""
        change = self.last_value - self.first_value
        if abs(change) < FLAT_TOLERANCE:
            return "stayed flat"
        return "rose" if change > 0 else "fell"

    def statement(self, index: int = 0) -> Statement:
        """``M: worst significant AUC rose from 0.600 (epoch 1) to 0.700 (epoch 3); peak
        0.700 at epoch 3`` (numbers keyed ``trend.<index>.first`` …)."""
        header = parse_metric(self.metric).header
        return Statement((
            Label(str(self.model)), f": {_worst_words(self.family)} {header} {self.direction} "
            "from ",
            Number(self.first_value, f"trend.{index}.first"), f" (epoch {self.first_epoch}) to ",
            Number(self.last_value, f"trend.{index}.last"), f" (epoch {self.last_epoch}); peak ",
            Number(self.peak_value, f"trend.{index}.peak"), f" at epoch {self.peak_epoch}"),
            self.family)


@dataclass(frozen=True)
class Suggestion:
    """The most accurate (model, epoch) whose worst distinguishable ``metric`` stays within
    ``limit``; ``worst`` is None where no row of it is distinguishable from chance (of
    ``n_tested`` rows)."""

    model: Any
    epoch: Any
    accuracy: float
    accuracy_key: str
    worst: float | None
    metric: str
    limit: float | None
    n_tested: int = 0
    family: Family | None = None

    def statement(self) -> Statement:
        """``most accurate checkpoint with worst significant AUC ≤ 0.7: model M at epoch 4,
        test accuracy 0.800, worst significant AUC 0.650``."""
        header = parse_metric(self.metric).header
        words = _worst_words(self.family)
        condition: tuple[Part, ...] = (
            (f"with {words} {header} ≤ ", Number(self.limit, "limit"))
            if self.limit is not None else ("(no privacy limit set: pass --max-auc, e.g. 0.6)",))
        leakage: tuple[Part, ...] = (
            (no_leakage_text(self.n_tested, self.family),) if self.worst is None else
            (f"{words} {header} ", Number(self.worst, "suggestion.worst")))
        return Statement((
            "most accurate checkpoint ", *condition, ": model ", Label(str(self.model)),
            f" at epoch {self.epoch}, {self.accuracy_key.replace('_', ' ')} ",
            Number(self.accuracy, "suggestion.accuracy"), ", ", *leakage), self.family)


@dataclass(frozen=True)
class DpPoint:
    """Under DP, one audit of a variant: the accountant's ε beside what the audit shows.

    ``empirical`` is the largest attack result's ε lower bound and ``white_box``/``black_box``
    the one-run canary audit's bounds valid for every (ε, δ)-DP mechanism (None without such
    canaries): together, a lower bound on ε at ``confidence`` — each of the ``n_sources``
    sources at level α/``n_sources`` and each of the ``n_results`` attack results at
    α/(``n_sources``·``n_results``) (Bonferroni), so that the largest of them all holds
    (:func:`dp_points`). ``pre_chosen`` names the one attack result used instead where the rows
    were stored without what the correction needs. ``gaussian_white_box``/
    ``gaussian_black_box`` are the canaries' bounds that assume a Gaussian trade-off curve
    (μ-GDP): shown, never part of the verdict. ``quiet`` when the variant has no row
    distinguishable from chance at any epoch. ``shifted``: the split guard found members and
    non-members to differ before the model, so the attacks' bound (which needs them drawn
    from one pool) is shown but not read by the verdict; canaries are unaffected.
    """

    model: Any
    epoch: Any
    accountant: float
    empirical: float
    white_box: float | None = None
    black_box: float | None = None
    quiet: bool = False
    family: Family | None = None
    gaussian_white_box: float | None = None
    gaussian_black_box: float | None = None
    confidence: float = 0.95
    n_results: int = 1
    n_sources: int = 1
    pre_chosen: str | None = None
    shifted: bool = False

    @property
    def audited(self) -> float:
        """The largest of the lower bounds the verdict reads (attacks unless the split is
        shifted, canaries without assumptions)."""
        return max(0.0 if self.shifted else self.empirical, self.white_box or 0.0,
                   self.black_box or 0.0)

    @property
    def consistent(self) -> bool:
        """Whether every lower bound the verdict reads stays at or below the accountant's ε (a
        bound above it means the training or the accounting is broken, at ``confidence``)."""
        return self.audited <= self.accountant

    @property
    def gaussian_above(self) -> bool:
        """Whether a Gaussian-assumption canary bound exceeds the accountant's ε."""
        return max(self.gaussian_white_box or 0.0,
                   self.gaussian_black_box or 0.0) > self.accountant

    def statement(self) -> Statement:
        """``M at epoch 3: accountant ε = 3.00; at 95% confidence for all together, the
        attacks show ε ≥ 0.10 (largest of 22 results), the one-run canary audit ε ≥ 1.04
        (white-box), valid for any (ε, δ)-DP mechanism (consistent: …)``; the verdict reads
        only those, and any Gaussian-assumption bound follows, labelled."""
        parts: list[Part] = [Label(str(self.model)), f" at epoch {self.epoch}: accountant ε = ",
                             Number(self.accountant, "dp.accountant", 2),
                             f"; at {self.confidence:.0%} confidence for all together, the "
                             "attacks show ε ≥ ", Number(self.empirical, "dp.empirical", 2),
                             f" ({self.empirical_basis})"]
        if self.shifted:
            parts.append(", not read by the verdict: members and non-members differ before "
                         "the model, and a membership bound needs them drawn from one pool")
        if self.white_box is not None:
            parts += [", the one-run canary audit ε ≥ ",
                      Number(self.white_box, "dp.white_box", 2), " (white-box)"]
        if self.black_box is not None:
            parts += [", ≥ " if self.white_box is not None else
                      ", the one-run canary audit ε ≥ ",
                      Number(self.black_box, "dp.black_box", 2), " (black-box)"]
        parts.append(", valid for any (ε, δ)-DP mechanism")
        if not self.consistent:
            parts.append(f" (INCONSISTENT: at {self.confidence:.0%} confidence this run leaks "
                         "more than DP allows; check the training and accounting)")
        else:
            below = ("what this run measurably leaks stays below the guarantee"
                     if self.white_box is not None or self.shifted
                     else "the attacks stay below the guarantee")
            quiet = "; no result distinguishable from chance" if self.quiet else ""
            parts.append(f" (consistent: {below}{quiet})")
        gaussian = [(kind, value) for kind, value in (("white-box", self.gaussian_white_box),
                                                      ("black-box", self.gaussian_black_box))
                    if value is not None]
        if gaussian:
            parts.append("; assuming a Gaussian trade-off curve (μ-GDP), the canaries show ε ≥ ")
            for index, (kind, value) in enumerate(gaussian):
                parts += [", ≥ " if index else "",
                          Number(value, f"dp.gaussian_{kind.replace('-', '_')}", 2),
                          f" ({kind})"]
            if self.gaussian_above:
                parts.append(", above the accountant's ε: evidence against the Gaussian model, "
                             "not against (ε, δ)-DP itself")
        return Statement(tuple(parts), self.family)

    @property
    def empirical_basis(self) -> str:
        """Which attack results ``empirical`` is the largest of."""
        if self.pre_chosen is not None:
            return f"the pre-chosen result {self.pre_chosen}"
        return f"largest of {self.n_results} results"


@dataclass(frozen=True)
class Group:
    """The summary of one group of rows, e.g. one checkpoint (model, epoch) or one slice:
    its ``key`` values, ``n_significant`` of its rows distinguishable from chance (all of them
    where none was ``tested``: rows of schema-1 files), the
    ``worst`` of those by the summary's metric (None when none is), the largest advantage
    among them and the largest TPR at the lowest FPR among the rows whose TPR there beats
    chance by its own test (None when none), the ``highest`` value of the metric over every
    row (chance included) and ``max_epsilon``, a confident ε lower bound for the largest over
    every row (:func:`largest_epsilon_bound`)."""

    key: tuple[Any, ...]
    rows: tuple[AuditRow, ...]
    n_significant: int
    tested: bool
    worst: AuditRow | None
    max_advantage: float | None
    max_low_fpr: float | None
    highest: float
    max_epsilon: float

    @property
    def metadata(self) -> dict[str, Any]:
        """The first row's metadata (one audit's rows share it)."""
        return self.rows[0].metadata


def summarize_group(key: tuple[Any, ...], rows: Sequence[AuditRow], metric: Metric,
                    low_metric: Metric | None, family: Family,
                    low_family: Family | None = None) -> Group:
    """:class:`Group` of ``rows`` (at least one); the TPR at ``low_metric`` of the rows
    distinguishable in ``low_family`` (that TPR's own test), else in ``family``."""
    leaking = distinguishable_rows(rows, family)
    low_rows = leaking if low_family is None else distinguishable_rows(rows, low_family)
    low_values = [] if low_metric is None else [
        v for v in (metric_value(r, low_metric) for r in low_rows) if not math.isnan(v)]
    values = [v for v in (metric_value(r, metric) for r in rows) if not math.isnan(v)]
    return Group(key, tuple(rows), len(leaking), not never_tested(rows),
                 worst_distinguishable(rows, metric, family),
                 max((r.advantage for r in leaking), default=None),
                 max(low_values, default=None), max(values, default=math.nan),
                 largest_epsilon_bound(rows))


def largest_epsilon_bound(rows: Sequence[AuditRow]) -> float:
    """A lower bound on ε at the rows' confidence about the largest of them: each of the k
    rows' bounds at α/k (:func:`~memberscope.metrics.family_epsilon_lower_bound`), or, where
    rows were stored without what that needs, the bound of one row chosen before seeing any
    (the first attack's entire-dataset row, else the first row). The plain largest of k rows'
    95% bounds is not a 95% bound."""
    return _largest_epsilon_bound_row(rows)[0]


def _largest_epsilon_bound_row(rows: Sequence[AuditRow]) -> tuple[float, AuditRow]:
    """:func:`largest_epsilon_bound` and the row it comes from (at least one row)."""
    family = family_epsilon_lower_bound([r.epsilon_lower_bound for r in rows],
                                        alpha=rows[0].epsilon_lower_bound.alpha)
    if family is not None:
        return family.epsilon, rows[family.index]
    chosen = _pre_chosen_row(rows)
    return chosen.epsilon_lower_bound.confident, chosen


def lowest_fpr_metric(rows: Sequence[AuditRow]) -> Metric | None:
    """``tpr@F`` for the smallest FPR target the rows store, or None."""
    targets = sorted({f for r in rows for f in r.tpr_at_fpr})
    return tpr_metric(targets[0]) if targets else None


def accuracy_key_of(rows: Sequence[AuditRow],
                    preferred: Sequence[str] = ACCURACY_KEYS) -> str | None:
    """The first accuracy metadata key (test, then train) present in the rows."""
    for key in preferred:
        if any(isinstance(r.metadata.get(key), int | float) for r in rows):
            return key
    return None


def trends(rows: Sequence[AuditRow], metric: str | Metric = AUC,
           family: Family | None = None) -> tuple[Trend, ...]:
    """Per model variant: the worst distinguishable ``metric`` (over slices and attacks) at
    the first, last and peak of the epochs that have such a row; variants with fewer than two
    such epochs have no trend."""
    parsed = metric if isinstance(metric, Metric) else parse_metric(metric)
    out = []
    epochs_of: dict[Any, set[Any]] = {}
    for row in rows:
        if row.metadata.get("epoch") is not None:
            epochs_of.setdefault(row.metadata.get("model"), set()).add(row.metadata["epoch"])
    for (model,), series in worst_series(distinguishable_rows(rows, family), parsed,
                                         by=("model",)).items():
        if len(series.epochs) < 2:
            continue
        peak = int(series.values.argmax())
        out.append(Trend(model, parsed.key, series.epochs[0].item(), float(series.values[0]),
                         series.epochs[-1].item(), float(series.values[-1]),
                         series.epochs[peak].item(), float(series.values[peak]),
                         len(epochs_of.get(model, ())), family))
    return tuple(out)


def suggest_checkpoint(rows: Sequence[AuditRow], *, limit: float | None,
                       metric: str | Metric = AUC, accuracy_key: str | None = None,
                       family: Family | None = None) -> Suggestion | None:
    """The best-accuracy (model, epoch) whose worst distinguishable ``metric`` is ≤ ``limit``
    (any when None), via :meth:`ResultsCollection.best_epoch`; None without accuracies or
    when none qualifies."""
    parsed = metric if isinstance(metric, Metric) else parse_metric(metric)
    accuracy_key = accuracy_key or accuracy_key_of(rows)
    if accuracy_key is None:
        return None
    best = ResultsCollection(rows).best_epoch(metric=parsed.key, max_value=limit,
                                              accuracy_key=accuracy_key, family=family)
    if best is None:
        return None
    worst = None if best["worst"] is None else float(best["worst"])
    return Suggestion(best["model"], best["epoch"], float(best["accuracy"]), accuracy_key,
                      worst, parsed.key, limit, int(best["n_tested"]), family)


def dp_points(rows: Sequence[AuditRow], epsilon_key: str = "epsilon", *,
              quiet_models: Iterable[Any] = (), family: Family | None = None,
              shifted: bool = False) -> tuple[DpPoint, ...]:
    """For each (model, epoch) whose rows carry the accountant's ε: it beside the audit's
    lower bounds, corrected so that the largest of them all holds at the rows' 1 − α.

    The sources are the attacks and each canary source with an assumption-free bound; with s
    of them, each canary bound is recomputed at α/s from its recorded guess counts and each of
    the k attack results at α/(s·k) from its held-out counts
    (:func:`~memberscope.metrics.family_epsilon_lower_bound`), Bonferroni. Rows stored without
    held-out counts give the entire-dataset result of the first attack, a choice made before
    seeing any result, at its own level; canary records without guess counts their bounds at
    the level recorded; ``confidence`` then says what is left. Non-finite ε is left out.
    ``shifted``: the split guard found the split shifted (:attr:`DpPoint.shifted`).
    """
    quiet = set(quiet_models)
    with_epsilon = [r for r in rows if _number_or_none(r.metadata.get(epsilon_key)) is not None]
    points = [replace(_dp_point(group, float(group[0].metadata[epsilon_key]), model in quiet,
                                family), shifted=shifted)
              for (model, _), group in group_rows(with_epsilon, ("model", "epoch")).items()]
    points.sort(key=lambda p: (str(p.model), epoch_sort_key(p.epoch)))
    return tuple(points)


def _dp_point(group: Sequence[AuditRow], accountant: float, quiet: bool,
              family: Family | None) -> DpPoint:
    """One audit's :class:`DpPoint` (:func:`dp_points` says how it is corrected)."""
    alpha = group[0].epsilon_lower_bound.alpha
    record = group[0].metadata.get("epsilon_audit")
    record = record if isinstance(record, dict) else {}
    recorded = next((b for b in recorded_bounds(record) if b.assumption is None), None)
    n_sources = 1 + len(recorded.sources() if recorded else ())
    level = alpha / n_sources
    canaries = recorded_bounds(record, level)
    free = next((b for b in canaries if b.assumption is None), None)
    gaussian = next((b for b in canaries if b.assumption is not None), None)
    attacks = family_epsilon_lower_bound([r.epsilon_lower_bound for r in group], alpha=level)
    pre_chosen = None
    if attacks is not None:
        empirical, spent = attacks.epsilon, level
    else:
        chosen = _pre_chosen_row(group)
        empirical, spent = chosen.epsilon_lower_bound.confident, chosen.epsilon_lower_bound.alpha
        pre_chosen = f"{chosen.slice} / {chosen.attack}"
    if free is not None:
        spent += len(free.sources()) * (free.alpha if free.alpha is not None else alpha)
    metadata = group[0].metadata
    return DpPoint(
        metadata.get("model"), metadata.get("epoch"), accountant, float(empirical),
        free.white_box if free else None, free.black_box if free else None, quiet, family,
        gaussian.white_box if gaussian else None, gaussian.black_box if gaussian else None,
        confidence=max(0.0, 1.0 - spent), n_results=len(group), n_sources=n_sources,
        pre_chosen=pre_chosen)


def _pre_chosen_row(rows: Sequence[AuditRow]) -> AuditRow:
    """The entire-dataset row of the first attack (else the first row): fixed before seeing
    any result, so its own bound holds without a correction."""
    first_attack = rows[0].attack
    return next((r for r in rows if r.attack == first_attack and r.slice == "entire_dataset"),
                rows[0])


def _number_or_none(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


# --- one summary --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    """Everything a result or a run says, for every surface to render.

    ``worst`` is the worst row distinguishable from chance by ``metric`` (None when no row
    is: then :attr:`no_leakage` says so); ``quiet_models`` are (variant, rows tested) of the
    variants with no such row at any epoch: no trend and no verdict for them.
    ``checkpoints`` summarise each (model, epoch) in model and epoch order, ``by_slice`` each
    slice. ``family`` is the family of tests the statements rank by, described by
    :attr:`family_text`. ``leading`` are statements every surface shows before the headline
    (e.g. a warning that members and non-members differ before any model saw them).
    """

    worst: AuditRow | None
    worst_low_fpr: AuditRow | None
    low_fpr_metric: str | None
    trends: tuple[Trend, ...]
    suggestion: Suggestion | None
    limit: float | None
    accuracy_key: str | None
    dp: tuple[DpPoint, ...]
    n_rows: int
    models: tuple[Any, ...]
    attacks: tuple[str, ...]
    slices: tuple[str, ...]
    n_significant: int = 0
    quiet_models: tuple[tuple[Any, int], ...] = ()
    has_epochs: bool = False
    metric: str = AUC.key
    family: Family = field(default_factory=Family)
    n_audits: int = 1
    tested: bool = True
    checkpoints: tuple[Group, ...] = ()
    by_slice: tuple[Group, ...] = ()
    leading: tuple[Statement, ...] = ()
    low_fpr_family: Family | None = None
    split_note: Statement | None = None
    split_guards: tuple[SplitGuard, ...] = ()

    @property
    def no_leakage(self) -> str:
        """"no leakage distinguishable from chance (after Holm over the run's N results)"
        (beyond the split, in that family)."""
        return no_leakage_text(self.n_rows, self.family)

    @property
    def beyond_split(self) -> bool:
        """Whether the statements rank rows significant beyond the split (a shifted split)."""
        return self.family.beyond_split

    @property
    def family_text(self) -> str:
        """How rows were judged significant (:func:`family_text`)."""
        return family_text(self.family, self.n_audits)

    @property
    def verdict(self) -> str | None:
        """How strong the worst leakage is (:func:`verdict`), None without a worst row."""
        return None if self.worst is None else verdict(self.worst.auc)

    @property
    def headline(self) -> Statement:
        """The leakage in one phrase: ``worst significant AUC 0.612 (lr on class=3; 4 of 22
        significant)``, or :attr:`no_leakage`."""
        worst, header = self.worst, parse_metric(self.metric).header
        if worst is None:
            return Statement((self.no_leakage,), self.family)
        value = Number(worst.metric(self.metric), "headline.value")
        if not self.tested:  # schema-1 rows: never tested
            return Statement((f"worst {header} ", value, " (", Label(worst.attack), " on ",
                              Label(worst.slice), "; not tested)"))
        counts = self.family.n_results_audits
        which = (f" {self.family.describe(counted=False)}"
                 if counts is not None and counts[1] > 1 else "")
        return Statement((f"{_worst_words(self.family)} {header} ", value, " (",
                          Label(worst.attack), " on ", Label(worst.slice),
                          f"; {self.n_significant} of {self.n_rows} significant"
                          f"{_beyond(self.family)}{which})"),
                         self.family)

    @property
    def headline_text(self) -> str:
        """The :attr:`leading` statements, then the :attr:`headline`, as one line."""
        return "; ".join(s.text for s in (*self.leading, self.headline))

    @property
    def worst_statement(self) -> Statement | None:
        """The worst row and its numbers: ``lr on class=3 (model M, epoch 4): AUC 0.712,
        advantage 0.424, PPV 0.610, TPR at 1% FPR 0.030, p-value 1.3e-40, ε ≥ 0.90 (95%
        confidence)``; TPR only where its non-members resolve it. None without a worst row."""
        worst = self.worst
        if worst is None:
            return None
        numbers: list[tuple[str, Number]] = [
            ("AUC", Number(worst.auc, "worst.auc")),
            ("advantage", Number(worst.advantage, "worst.advantage")),
            ("PPV", Number(worst.ppv, "worst.ppv"))]
        numbers += [(m.title, Number(worst.metric(m), "worst." + m.key))
                    for m in (tpr_metric(f) for f, v in sorted(worst.tpr_at_fpr.items())
                              if v is not None)]
        if worst.p_value is not None:
            numbers.append(("p-value", Number(worst.p_value, "worst.p_value", -2)))
        numbers.append(("ε ≥", Number(worst.epsilon_lower_bound.confident, "worst.epsilon", 2)))
        parts: list[Part] = [Label(worst.attack), " on ", Label(worst.slice), *_place(worst),
                             ": "]
        for index, (name, number) in enumerate(numbers):
            parts += [", " if index else "", f"{name} ", number]
        parts.append(f" ({1 - worst.epsilon_lower_bound.alpha:.0%} confidence)")
        return Statement(tuple(parts), self.family)

    @property
    def significance_statement(self) -> Statement:
        """``4 of 22 results distinguishable from chance (significant after Holm's correction
        over each audit's results at α = 0.05)``."""
        if not self.tested:
            return Statement((f"{self.n_rows} results, none tested for significance (a file of "
                              "schema 1): every result is ranked",))
        return Statement((f"{self.n_significant} of {self.n_rows} results distinguishable from "
                          f"chance ({self.family_text})",), self.family)

    @property
    def low_fpr_statement(self) -> Statement | None:
        """The most successful row at the lowest FPR, where its TPR there beats chance by its
        own test and it is not the worst row: ``at the lowest false-positive rate, the most
        successful is …: TPR at 0.1% FPR 0.050 (its own exact test of TPR at 0.1% FPR,
        significant after Holm over the run's 44 results at α = 0.05)``."""
        low, metric = self.worst_low_fpr, self.low_fpr_metric
        if low is None or metric is None or low is self.worst:
            return None
        parsed = parse_metric(metric)
        family = self.low_fpr_family or self.family
        return Statement(("at the lowest false-positive rate, the most successful is ",
                          Label(low.attack), " on ", Label(low.slice), *_place(low),
                          f": {parsed.title} ", Number(low.metric(parsed), "low_fpr.value"),
                          f" ({family_text(family, self.n_audits)})"), family)

    @property
    def quiet_statements(self) -> tuple[Statement, ...]:
        """Per variant without significant rows: ``M: no leakage distinguishable from chance
        at any epoch (6 results tested)`` (only for runs with epochs)."""
        if not self.has_epochs:
            return ()
        return tuple(Statement((Label(str(model)), ": "
                                + no_leakage_text(n, self.family).replace(" (", " at any epoch (",
                                                                           1)), self.family)
                     for model, n in self.quiet_models)

    @property
    def trend_note(self) -> str:
        """What the trends add up to, or why there is none."""
        if self.trends:
            if any(t.direction == "rose" for t in self.trends):
                return ("Leakage grows with training, as the model memorises its training "
                        "data: earlier checkpoints are more private.")
            return "Leakage does not grow with training here."
        if self.has_epochs:
            return ("No variant shows leakage distinguishable from chance at two or more "
                    "epochs: no trend to show." if not self.quiet_models else "")
        return ("One audit without epochs: no trend to show. Monitor training (memberscope "
                "run) to see how leakage grows.")

    @property
    def suggestion_statement(self) -> Statement:
        """The suggested checkpoint, or why there is none."""
        if self.suggestion is not None:
            return self.suggestion.statement()
        if self.accuracy_key is None:
            return Statement(("no accuracies recorded, so no checkpoint can be suggested",))
        header = parse_metric(self.metric).header
        limit = Number(self.limit if self.limit is not None else math.nan, "limit")
        return Statement((f"no checkpoint keeps the worst {header} at or below ", limit,
                          " (counting only results distinguishable from chance"
                          f"{_beyond(self.family)})"), self.family)

    @property
    def last_dp(self) -> tuple[DpPoint, ...]:
        """Each model variant's last DP point."""
        last: dict[Any, DpPoint] = {}
        for point in self.dp:
            last[point.model] = point
        return tuple(last.values())

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able numbers (embedded in the page for scripts and tests)."""
        return {
            "worst": self.worst.to_dict() if self.worst else None,
            "n_significant": self.n_significant,
            "quiet_models": [list(q) for q in self.quiet_models],
            "worst_low_fpr": self.worst_low_fpr.to_dict() if self.worst_low_fpr else None,
            "low_fpr_metric": self.low_fpr_metric,
            "trends": [_plain(t) | {"direction": t.direction} for t in self.trends],
            "suggestion": _plain(self.suggestion) if self.suggestion else None,
            "limit": self.limit,
            "accuracy_key": self.accuracy_key,
            "dp": [_plain(p) | {"consistent": p.consistent} for p in self.dp],
            "n_rows": self.n_rows,
            "metric": self.metric,
            "family": self.family.to_dict(),
            "low_fpr_family": (None if self.low_fpr_family is None
                               else self.low_fpr_family.to_dict()),
            "headline": self.headline_text,
            "split_guards": [g.to_dict() for g in self.split_guards],
        }


def _plain(item: Any) -> dict[str, Any]:
    """A summary dataclass's fields, its family as a plain dict."""
    return {k: v.to_dict() if isinstance(v, Family) else v for k, v in vars(item).items()}


def summarize(results: Rows, *, max_auc: float | None = None, metric: str = "auc",
              accuracy_key: str | None = None, family: Family | None = None,
              split_guards: Sequence[SplitGuard] | None = None) -> Summary:
    """The summary of ``results`` (a run's collection, one audit, or rows).

    The split guard's rows (``blind``, ``control``) measure the split, not the model: no
    statement about leakage counts them (its family still holds their tests, as their audits
    did). Where an audit's split guard (from ``results``, or ``split_guards`` for bare rows)
    found the split shifted, that comes first (:attr:`Summary.leading`) and the statements
    rank rows significant beyond the split (``run_family(..., beyond_split=True)``).

    Parameters
    ----------
    max_auc : float, optional
        Privacy limit on the worst ``metric`` for the suggested checkpoint (no limit when None).
    metric : str
        The metric the worst row, trends and the checkpoint limit rank by (default AUC).
    accuracy_key : str, optional
        Metadata key of the accuracy to maximise (default: test, else train accuracy).
    family : Family, optional
        Which rows count as distinguishable from chance (default: :func:`run_family` of all
        the rows given, at the α and with the correction they record; ``audit_family(rows)``
        for each audit's own verdicts, from :mod:`memberscope.results`).
    split_guards : sequence of SplitGuard, optional
        The guards of the audits behind bare ``rows`` (taken from ``results`` otherwise).
    """
    parsed = parse_metric(metric)
    every_row = as_rows(results)
    if not every_row:
        raise InputError("results have no rows: every (slice, attack) was skipped or none ran")
    if max_auc is not None and parsed is AUC and not 0.0 <= max_auc <= 1.0:
        raise InputError(f"max_auc must be within [0, 1]; got {max_auc}")
    # Only the guard's rows ran (e.g. attacks=["blind"]): they are what there is to show.
    rows = [row for row in every_row if not row.measures_split] or every_row
    guards = tuple(split_guards) if split_guards is not None else split_guards_of(results)
    leading, split_note = _split_statements(guards)
    family = family or run_family(every_row, beyond_split=bool(leading))
    # What the worst, the trends and the suggestion rank by: a TPR by its own test.
    ranking = (family if parsed.fpr is None
               else marking_family(rows, parsed, beyond_split=bool(leading)))
    low_metric = lowest_fpr_metric(rows)
    # TPR at the lowest FPR is a headline only where it is resolvable (a stored value, not
    # None) and beats chance by its own exact test, corrected over every row resolving it,
    # and never on a shifted split.
    low_worst = low_family = None
    if low_metric is not None and low_metric.fpr is not None:
        low_family = marking_family(rows, low_metric, beyond_split=bool(leading))
        low_worst = worst_distinguishable(rows, low_metric, low_family)
    key = accuracy_key or accuracy_key_of(rows)
    significant = distinguishable_rows(rows, family)
    models = tuple(dict.fromkeys(r.metadata.get("model") for r in rows))
    leaking = {r.metadata.get("model") for r in significant}
    quiet = tuple((m, sum(r.metadata.get("model") == m for r in rows))
                  for m in models if m not in leaking)
    with_epoch = [r for r in rows if r.metadata.get("epoch") is not None]
    checkpoint_groups = group_rows(with_epoch, ("model", "epoch"))
    checkpoint_keys = sorted(checkpoint_groups, key=lambda k: (str(k[0]), epoch_sort_key(k[1])))
    return Summary(
        worst=worst_distinguishable(rows, parsed, ranking),
        worst_low_fpr=low_worst,
        low_fpr_metric=None if low_metric is None else low_metric.key,
        trends=trends(rows, parsed, ranking),
        # A checkpoint is a (model, epoch): rows without an epoch suggest none.
        suggestion=(suggest_checkpoint(with_epoch, limit=max_auc, metric=parsed,
                                       accuracy_key=key, family=ranking)
                    if with_epoch else None),
        limit=max_auc,
        accuracy_key=key,
        dp=dp_points(rows, quiet_models=(m for m, _ in quiet), family=family,
                     shifted=bool(leading)),
        n_rows=len(rows),
        models=models,
        attacks=tuple(dict.fromkeys(r.attack for r in rows)),
        slices=tuple(dict.fromkeys(r.slice for r in rows)),
        n_significant=len(significant),
        quiet_models=quiet,
        has_epochs=bool(with_epoch),
        metric=parsed.key,
        family=family,
        n_audits=family.n_audits or max(len(group_rows(rows, ("model", "epoch"))), 1),
        tested=not never_tested(rows),
        checkpoints=tuple(summarize_group(k, checkpoint_groups[k], parsed, low_metric, ranking,
                                          low_family) for k in checkpoint_keys),
        by_slice=tuple(summarize_group(k, group, parsed, low_metric, ranking, low_family)
                       for k, group in group_rows(rows, ("slice",)).items()),
        low_fpr_family=low_family,
        leading=leading,
        split_note=split_note,
        split_guards=guards,
    )
