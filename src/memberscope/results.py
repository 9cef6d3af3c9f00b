"""Audit results: one row per (slice, attack), skipped entries, and collections of audits."""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from memberscope.errors import InputError, SchemaError, UnknownNameError
from memberscope.metric_definitions import SCALAR_METRICS, Metric, parse_metric, tpr_metric
from memberscope.metrics import EpsilonBound, HeldOutCounts, RocCurve
from memberscope.null_reference import FoldPooling, tpr_at_fpr_p_value
from memberscope.significance import FamilyVerdicts, family_verdicts

if TYPE_CHECKING:
    import pandas

SCHEMA_VERSION = 3
# Version 1 rows lack p_value, significant and notes (read as None, None, ()) and may hold
# TPR at unresolvable FPRs (kept as stored). Versions 1 and 2 lack the audit's alpha and
# correction (read as None: not recorded, since audit() always let callers choose them), the
# split guard and the rows' beyond-split test (read as None: not checked).
READABLE_SCHEMA_VERSIONS = (1, 2, 3)
#: What ``result.json`` records once per audit and ``results.jsonl`` on every row.
_AUDIT_FIELDS = ("alpha", "correction")
GUARD_ATTACKS = ("blind", "control")
"""Rows of these attacks measure the split, not the model: never leakage in a headline."""
SAME_DISTRIBUTION, SHIFTED, NOT_CHECKED = "same-distribution", "shifted", "not checked"
VERDICTS = (SAME_DISTRIBUTION, SHIFTED, NOT_CHECKED)


def _fpr_key(value: float) -> str:
    return f"{value:g}"


def _held_out(data: Mapping[str, Any] | None) -> HeldOutCounts | None:
    """A row's held-out ε counts; None on rows written before they were kept."""
    if data is None:
        return None
    return HeldOutCounts(int(data["tp"]), int(data["fp"]), int(data["n_members"]),
                         int(data["n_nonmembers"]), bool(data["forward"]))


@dataclass(frozen=True)
class AuditRow:
    """Metrics of one attack on one slice, with the caller's metadata (model, epoch, …).

    ``tpr_at_fpr`` values are None where the non-members cannot resolve the FPR (then
    ``notes`` says why). ``p_value`` is the one-sided test of H0 "no membership information";
    ``significant`` the verdict after the family-wise correction over all rows of the audit
    (None on rows read from schema-1 files, which had neither), at level ``alpha`` with
    ``correction`` ("holm" or "bonferroni"; both None on rows of schema-1 and -2 files:
    :attr:`test_alpha`, :attr:`test_correction`).

    ``beyond_split_p_value`` is the one-sided paired test, on the same examples, of H0 "the
    attack separates members from non-members no better (AUC no higher) than the split
    guard's bars ``beyond_split_guard`` do" (``"control"``: the same attack on a control
    model and its loss, or the reference models that saw neither example; ``"blind"``: the
    blind attack; ``"blind+control"``: both, the largest p-value counting);
    ``beyond_split_significant`` the verdict after the family-wise correction over the
    audit's beyond-split tests. All three are None where no guard ran, and on the guard's
    own rows.
    """

    slice: str
    attack: str
    n_members: int
    n_nonmembers: int
    auc: float
    advantage: float
    ppv: float
    tpr_at_fpr: dict[float, float | None]
    epsilon_lower_bound: EpsilonBound
    metadata: dict[str, Any] = field(default_factory=dict)
    auc_ci: tuple[float, float] | None = None
    tpr_at_fpr_ci: dict[float, tuple[float, float] | None] | None = None
    p_value: float | None = None
    significant: bool | None = None
    notes: tuple[str, ...] = ()
    alpha: float | None = None
    correction: str | None = None
    beyond_split_p_value: float | None = None
    beyond_split_significant: bool | None = None
    beyond_split_guard: str | None = None

    @property
    def measures_split(self) -> bool:
        """Whether this row is a split check (blind, control), not an attack on the model."""
        return self.attack in GUARD_ATTACKS

    @property
    def test_alpha(self) -> float:
        """The level of the audit's family-wise test: ``alpha`` where recorded, else the ε
        bound's α (``audit`` passes its one ``alpha`` to both)."""
        return self.epsilon_lower_bound.alpha if self.alpha is None else self.alpha

    @property
    def test_correction(self) -> str:
        """The audit's family-wise correction: ``correction`` where recorded, else ``holm``
        (the default, which controls the family-wise error at α whatever the audit used)."""
        return "holm" if self.correction is None else self.correction

    def metric(self, name: str | Metric) -> float:
        """A scalar metric by name (:func:`~memberscope.metric_definitions.parse_metric`):
        auc, advantage, ppv, epsilon_confident, epsilon_point, or ``tpr@F`` for a stored FPR
        target F (e.g. ``tpr@0.01``; NaN where the slice cannot resolve it).

        Raises :class:`UnknownNameError` for a name that is no metric and
        :class:`InputError` for a ``tpr@F`` at an FPR this row does not store.
        """
        metric = name if isinstance(name, Metric) else parse_metric(name)
        if metric.fpr is None:
            value: Any = functools.reduce(getattr, metric.attribute, self)
            return float(value)
        for key, value in self.tpr_at_fpr.items():
            if math.isclose(key, metric.fpr):
                return math.nan if value is None else value
        raise InputError(f"metric {metric.key!r}: no TPR stored at FPR {metric.fpr:g}; stored: "
                         f"{', '.join(tpr_metric(k).key for k in self.tpr_at_fpr)}")

    def to_dict(self) -> dict[str, Any]:
        """The row as in ``result.json``."""
        out: dict[str, Any] = {
            "slice": self.slice, "attack": self.attack,
            "n_members": self.n_members, "n_nonmembers": self.n_nonmembers,
            "auc": self.auc, "advantage": self.advantage, "ppv": self.ppv,
            "tpr_at_fpr": {_fpr_key(k): v for k, v in self.tpr_at_fpr.items()},
            "epsilon_lower_bound": self.epsilon_lower_bound.to_dict(),
            "p_value": self.p_value, "significant": self.significant,
            "alpha": self.alpha, "correction": self.correction,
            "beyond_split_p_value": self.beyond_split_p_value,
            "beyond_split_significant": self.beyond_split_significant,
            "beyond_split_guard": self.beyond_split_guard,
            "notes": list(self.notes),
            "metadata": dict(self.metadata),
        }
        if self.auc_ci is not None:
            out["auc_ci"] = list(self.auc_ci)
        if self.tpr_at_fpr_ci is not None:
            out["tpr_at_fpr_ci"] = {_fpr_key(k): None if v is None else list(v)
                                    for k, v in self.tpr_at_fpr_ci.items()}
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AuditRow:
        """Inverse of :meth:`to_dict`; raises :class:`SchemaError` naming a missing field."""
        try:
            epsilon = data["epsilon_lower_bound"]
            ci = data.get("tpr_at_fpr_ci")
            return cls(
                slice=str(data["slice"]), attack=str(data["attack"]),
                n_members=int(data["n_members"]), n_nonmembers=int(data["n_nonmembers"]),
                auc=float(data["auc"]), advantage=float(data["advantage"]),
                ppv=float(data["ppv"]),
                tpr_at_fpr={float(k): None if v is None else float(v)
                            for k, v in data["tpr_at_fpr"].items()},
                epsilon_lower_bound=EpsilonBound(
                    float(epsilon["point"]), float(epsilon["confident"]),
                    float(epsilon["alpha"]), float(epsilon["delta"]),
                    _held_out(epsilon.get("held_out"))),
                metadata=dict(data.get("metadata", {})),
                auc_ci=tuple(data["auc_ci"]) if data.get("auc_ci") else None,
                tpr_at_fpr_ci=({float(k): None if v is None else tuple(v)
                                for k, v in ci.items()} if ci else None),
                p_value=None if data.get("p_value") is None else float(data["p_value"]),
                significant=(None if data.get("significant") is None
                             else bool(data["significant"])),
                notes=tuple(str(n) for n in data.get("notes", ())),
                alpha=None if data.get("alpha") is None else float(data["alpha"]),
                correction=None if data.get("correction") is None else str(data["correction"]),
                beyond_split_p_value=_float_or_none(data.get("beyond_split_p_value")),
                beyond_split_significant=(None if data.get("beyond_split_significant") is None
                                          else bool(data["beyond_split_significant"])),
                beyond_split_guard=(None if data.get("beyond_split_guard") is None
                                    else str(data["beyond_split_guard"])),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise SchemaError(f"result row is malformed ({type(exc).__name__}: {exc})") from exc

    def flat(self) -> dict[str, Any]:
        """One flat dict (for tables and pandas): metrics, ``tpr@F`` columns and metadata."""
        out: dict[str, Any] = {
            "slice": self.slice, "attack": self.attack, "n_members": self.n_members,
            "n_nonmembers": self.n_nonmembers,
            **{metric.key: self.metric(metric) for metric in SCALAR_METRICS},
            "p_value": self.p_value, "significant": self.significant,
            "beyond_split_p_value": self.beyond_split_p_value,
            "beyond_split_significant": self.beyond_split_significant,
        }
        out.update({tpr_metric(k).key: v for k, v in self.tpr_at_fpr.items()})
        out.update(self.metadata)
        return out


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)


@dataclass(frozen=True)
class SplitGuard:
    """Do members and non-members differ before the model sees them? One audit's answer.

    ``verdict``: ``"shifted"`` when the blind check (the ``blind`` attack on the inputs,
    over the whole audited split) or the control check (the loss of a model that saw
    neither side: a control model, or the reference models that left each example out)
    separates members from non-members significantly, at ``alpha`` after a family-wise
    ``correction`` over these (at most two) checks; ``"same-distribution"`` when at least one
    check ran and none did (no difference *detected*, not proven absent); ``"not checked"``
    when none could run (``reason`` says why). AUCs and p-values are those of the guard's
    rows on the entire dataset; None where a check did not run. ``control_source`` is
    ``"control model"`` or ``"reference models"``.
    """

    verdict: str
    blind_auc: float | None = None
    blind_p_value: float | None = None
    control_auc: float | None = None
    control_p_value: float | None = None
    control_source: str | None = None
    alpha: float = 0.05
    correction: str | None = None
    reason: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise UnknownNameError("split verdict", str(self.verdict), VERDICTS)

    @property
    def shifted(self) -> bool:
        """Whether members and non-members differ before any model sees them."""
        return self.verdict == SHIFTED

    def to_dict(self) -> dict[str, Any]:
        """As in ``result.json`` (``split_guard``)."""
        out: dict[str, Any] = {
            "verdict": self.verdict, "blind_auc": self.blind_auc,
            "blind_p_value": self.blind_p_value, "control_auc": self.control_auc,
            "control_p_value": self.control_p_value, "control_source": self.control_source,
            "alpha": self.alpha, "correction": self.correction, "reason": self.reason}
        if self.metadata:
            out["metadata"] = dict(self.metadata)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SplitGuard:
        """Inverse of :meth:`to_dict`; raises :class:`SchemaError` naming what is wrong."""
        try:
            return cls(
                verdict=str(data["verdict"]),
                blind_auc=_float_or_none(data.get("blind_auc")),
                blind_p_value=_float_or_none(data.get("blind_p_value")),
                control_auc=_float_or_none(data.get("control_auc")),
                control_p_value=_float_or_none(data.get("control_p_value")),
                control_source=(None if data.get("control_source") is None
                                else str(data["control_source"])),
                alpha=float(data.get("alpha", 0.05)),
                correction=None if data.get("correction") is None else str(data["correction"]),
                reason=str(data.get("reason", "")),
                metadata=dict(data.get("metadata", {})))
        except (KeyError, TypeError, ValueError) as exc:
            raise SchemaError(f"split_guard is malformed ({type(exc).__name__}: {exc})") from exc


@dataclass(frozen=True)
class SkippedEntry:
    """A (slice, attack) that was not evaluated, and why."""

    slice: str
    attack: str
    reason: str
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """As in ``result.json``."""
        out: dict[str, Any] = {"slice": self.slice, "attack": self.attack, "reason": self.reason}
        if self.metadata:
            out["metadata"] = dict(self.metadata)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SkippedEntry:
        """Inverse of :meth:`to_dict`."""
        try:
            return cls(str(data["slice"]), str(data["attack"]), str(data["reason"]),
                       dict(data.get("metadata", {})))
        except (KeyError, TypeError) as exc:
            raise SchemaError(f"skipped entry is malformed: {exc}") from exc


@dataclass(frozen=True, eq=False)
class AuditResult:
    """Everything one ``audit`` call found.

    ``rows``, ``skipped``, ``split_guard`` (None on results read from files written before
    it existed), ``notes`` (caveats an attack raised, e.g. a variance it could not estimate;
    in ``result.json`` only when there are any) and the family-wise test's ``alpha`` and
    ``correction`` (None when not recorded) go to ``result.json``.
    ``rocs`` (one thinned curve per row),
    ``scores`` (attack name -> (n,) per-example scores on the entire dataset), ``membership``
    and ``labels`` go to ``arrays.npz``.
    """

    rows: tuple[AuditRow, ...]
    skipped: tuple[SkippedEntry, ...] = ()
    rocs: tuple[RocCurve | None, ...] = ()
    scores: dict[str, np.ndarray] = field(default_factory=dict)
    membership: np.ndarray | None = None
    labels: np.ndarray | None = None
    notes: tuple[str, ...] = ()
    alpha: float | None = None
    correction: str | None = None
    split_guard: SplitGuard | None = None

    def __iter__(self) -> Iterator[AuditRow]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def row(self, slice: str, attack: str) -> AuditRow:
        """The row of ``slice`` × ``attack``; raises naming what exists when absent."""
        for row in self.rows:
            if row.slice == slice and row.attack == attack:
                return row
        present = sorted({(r.slice, r.attack) for r in self.rows})
        raise KeyError(f"no row for slice={slice!r}, attack={attack!r}; present: {present}")

    def with_metadata(self, **metadata: Any) -> AuditResult:
        """A copy whose every row, skipped entry and split guard also carries ``metadata``."""
        guard = self.split_guard
        return replace(
            self,
            rows=tuple(replace(r, metadata={**r.metadata, **metadata}) for r in self.rows),
            skipped=tuple(replace(s, metadata={**s.metadata, **metadata}) for s in self.skipped),
            split_guard=(None if guard is None
                         else replace(guard, metadata={**guard.metadata, **metadata})),
        )

    def worst(self, metric: str = "auc") -> AuditRow:
        """The model's row with the highest ``metric``, as an attacker would pick it (NaN
        never wins: :func:`worst_row`), significant or not; split checks (blind, control)
        measure the data and count only where nothing else ran. For the worst result
        distinguishable from chance: :func:`memberscope.summary.summarize`."""
        if not self.rows:
            raise InputError("the result has no rows (every slice was skipped)")
        return worst_row([r for r in self.rows if not r.measures_split] or self.rows, metric)

    def to_dict(self, memberscope_version: str) -> dict[str, Any]:
        """The ``result.json`` document."""
        document = {"schema_version": SCHEMA_VERSION, "memberscope_version": memberscope_version,
                    "alpha": self.alpha, "correction": self.correction,
                    # Once per audit here; each row of results.jsonl carries them itself.
                    "rows": [{k: v for k, v in r.to_dict().items() if k not in _AUDIT_FIELDS}
                             for r in self.rows],
                    "skipped": [s.to_dict() for s in self.skipped]}
        if self.split_guard is not None:
            document["split_guard"] = self.split_guard.to_dict()
        if self.notes:
            document["notes"] = list(self.notes)
        return document

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AuditResult:
        """Read a ``result.json`` document, checking its schema version."""
        check_schema_version(data, "result.json")
        test = {key: data.get(key) for key in _AUDIT_FIELDS}
        rows = tuple(AuditRow.from_dict({**r, **test}) for r in data.get("rows", []))
        guard = data.get("split_guard")
        return cls(rows=rows,
                   skipped=tuple(SkippedEntry.from_dict(s) for s in data.get("skipped", [])),
                   notes=tuple(str(n) for n in data.get("notes", [])),
                   alpha=_number_or_none(test["alpha"]),
                   correction=None if test["correction"] is None else str(test["correction"]),
                   split_guard=None if guard is None else SplitGuard.from_dict(guard))

    def to_pandas(self) -> pandas.DataFrame:
        """One row per (slice, attack) with flat metric and metadata columns."""
        return ResultsCollection([self]).to_pandas()


def metric_value(row: AuditRow, metric: str | Metric) -> float:
    """``row.metric(metric)``, or NaN where the row does not store it (a ``tpr@F`` at an FPR
    it was not audited at). A name that is no metric raises, as in :meth:`AuditRow.metric`."""
    metric = metric if isinstance(metric, Metric) else parse_metric(metric)
    try:
        return row.metric(metric)
    except InputError:  # parsed above, so only "not stored at this FPR" lands here
        return math.nan


def worst_row(rows: Iterable[AuditRow], metric: str | Metric = "auc") -> AuditRow:
    """The row with the highest ``metric``: the most leakage, as an attacker would pick it.

    The one rule behind every "worst" pick (results, report, CLI, runner): a row whose
    ``metric`` is NaN, or that does not store it (a ``tpr@F`` at another FPR), never wins;
    ties go to the first row. Raises :class:`InputError` when no row has a value, and
    :class:`UnknownNameError` for a name that is no metric.

    >>> from memberscope.metrics import EpsilonBound
    >>> def row(name, auc):
    ...     return AuditRow(name, "threshold", 10, 10, auc, 0.0, 0.5, {},
    ...                     EpsilonBound(0.0, 0.0, 0.05, 0.0))
    >>> worst_row([row("a", 0.6), row("b", float("nan")), row("c", 0.7)]).slice
    'c'
    """
    metric = metric if isinstance(metric, Metric) else parse_metric(metric)
    best: AuditRow | None = None
    best_value = -math.inf
    first_error: InputError | None = None
    for row in rows:
        try:
            value = row.metric(metric)
        except InputError as exc:  # this row does not store the metric
            first_error = first_error or exc
            continue
        if not math.isnan(value) and (best is None or value > best_value):
            best, best_value = row, value
    if best is None:
        if first_error is not None:
            raise first_error
        raise InputError(f"no row has a value for metric {metric.key!r}")
    return best


#: Which rows a family-wise verdict is corrected over. "audit": each audit's own rows, the
#: ``significant`` flag every row carries. "run": every row of every audit a statement is
#: about (:func:`run_family`), for statements about several audits. Either may count rows
#: *beyond the split* (``Family.beyond_split``: by their beyond-split tests, where the split
#: guard found members and non-members different before any model saw them).
FAMILY_SCOPES = ("audit", "run")


@dataclass(frozen=True)
class Family:
    """The family of tests a statement's "distinguishable from chance" refers to.

    ``scope`` is one of :data:`FAMILY_SCOPES`; ``alpha`` and ``correction`` are the level
    and the correction of its tests ("holm" or "bonferroni"), None where the rows do not
    record them (files of schema 1 and 2) or their audits differ. Every statement of a
    summary carries the family it refers to, so that it can say so.

    A "run" family also holds its verdicts: ``size`` results tested in ``n_audits`` audits,
    and the keys (:func:`row_key`) of those significant. ``test`` names what each row was
    tested by: None for its rank test (``p_value``), ``tpr@F`` for the exact test of its TPR
    at FPR F (:func:`tpr_family`).
    """

    scope: str = "audit"
    alpha: float | None = None
    correction: str | None = None
    size: int | None = None
    n_audits: int | None = None
    test: str | None = None
    significant_keys: frozenset[tuple[str, str, str]] = field(default=frozenset(), repr=False)
    beyond_split: bool = False

    def __post_init__(self) -> None:
        if self.scope not in FAMILY_SCOPES:
            raise UnknownNameError("family scope", self.scope, FAMILY_SCOPES)

    @property
    def n_results_audits(self) -> tuple[int, int] | None:
        """(results tested, audits) of a run family; None for the per-audit family."""
        if self.scope == "audit" or self.size is None:
            return None
        return self.size, self.n_audits or 0

    def describe(self, counted: bool = True) -> str:
        """Which family, for a sentence: "after Holm's correction over the run's 132 results
        (6 audits)" ("over the run's results (6 audits)" when not ``counted``), "after Holm's
        correction over this audit's results" for a run of one audit, "after each audit's
        family-wise correction" for the per-audit family."""
        name = {"holm": "Holm's", "bonferroni": "Bonferroni's"}.get(self.correction or "")
        counts = self.n_results_audits
        if counts is None or name is None:
            if name is None:
                return "after each audit's family-wise correction"
            return f"after {name} correction over each audit's results"
        size, n_audits = counts
        if n_audits <= 1:
            return f"after {name} correction over this audit's results"
        results = f"{size} results" if counted else "results"
        return f"after {name} correction over the run's {results} ({n_audits} audits)"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able fields (the verdicts' keys left out)."""
        return {"scope": self.scope, "alpha": self.alpha, "correction": self.correction,
                "size": self.size, "n_audits": self.n_audits, "test": self.test,
                "beyond_split": self.beyond_split, "text": self.describe()}


def audit_family(rows: Iterable[AuditRow], *, beyond_split: bool = False) -> Family:
    """The per-audit family of ``rows``: each row's own ``significant`` (with
    ``beyond_split``, its ``beyond_split_significant``), with the α and correction their
    audits recorded (None unless every row records the same)."""
    rows = list(rows)
    alphas = {row.alpha for row in rows}
    corrections = {row.correction for row in rows}
    return Family("audit", alphas.pop() if len(alphas) == 1 else None,
                  corrections.pop() if len(corrections) == 1 else None,
                  beyond_split=beyond_split)


def audit_of(row: AuditRow) -> str:
    """Which audit a row came from, as a key: every row of one audit carries the same
    metadata (model, epoch, accuracies, …), and rows of different audits of a run differ in
    it (a result without metadata is one audit)."""
    return json.dumps(row.metadata, sort_keys=True, default=str)


def row_key(row: AuditRow) -> tuple[str, str, str]:
    """A row's identity within a run: its audit (:func:`audit_of`), slice and attack."""
    return (audit_of(row), row.slice, row.attack)


def run_family(rows: Iterable[AuditRow], *, beyond_split: bool = False) -> Family:
    """The family of a statement about all ``rows`` together (a run: every variant and
    epoch; "no leakage at any epoch", the worst result, which variants leak).

    The audits' recorded correction over every tested row of every audit, at their recorded
    α (:func:`~memberscope.significance.family_verdicts`; rows of files that did not record
    them: the ε bound's α and Holm). Each row keeps its own ``significant`` (its audit's
    family); with one audit the two agree. Six no-signal audits of 22 rows each called some
    row significant in 24% of runs in their own families, in 4.0% in this one
    (``benchmarks/run_family.py``). With ``beyond_split`` the tests are the rows' beyond-split
    tests (a run whose split the guard found shifted). Split checks (blind, control) test the
    data, not the model: they are no member of a leakage family (unless nothing else ran).
    """
    rows = [row for row in rows if not row.measures_split] or list(rows)
    return _family(rows, family_verdicts(
        [row.beyond_split_p_value if beyond_split else row.p_value for row in rows],
        [audit_of(row) for row in rows], alphas=[row.test_alpha for row in rows],
        corrections=[row.test_correction for row in rows]), test=None,
        beyond_split=beyond_split)


def tpr_family(rows: Iterable[AuditRow], fpr: float,
               pooling: Callable[[str], FoldPooling | None] | None = None) -> Family:
    """The family of a headline "TPR at FPR ``fpr``": each row's TPR there tested on its own
    (the exact one-sided test, :func:`~memberscope.null_reference.tpr_at_fpr_p_value`) and
    corrected over every row given that resolves ``fpr`` (of one audit, or of a run), with
    the audits' recorded α and correction. ``pooling`` maps an attack name to how it pools
    fold scores (``memberscope.attacks.null_pooling``; default: every row's scores taken as
    exchangeable), which widens a trained attack's null.

    A TPR picked as the largest of many, or from rows significant by AUC, is not itself
    shown to beat chance: at 0.1% FPR a row is one or two lucky members away from its
    "headline".
    """
    rows = list(rows)
    poolings = [None if pooling is None else pooling(row.attack) for row in rows]
    return _family(rows, family_verdicts(
        [_tpr_p_value(row, fpr, how) for row, how in zip(rows, poolings, strict=True)],
        [audit_of(row) for row in rows],
        alphas=[row.test_alpha for row in rows],
        corrections=[row.test_correction for row in rows]), test=tpr_metric(fpr).key)


def _family(rows: list[AuditRow], verdicts: FamilyVerdicts, test: str | None,
            beyond_split: bool = False) -> Family:
    return Family("run", verdicts.alpha, verdicts.correction, verdicts.size,
                  verdicts.n_audits, test,
                  frozenset(row_key(row) for row, significant
                            in zip(rows, verdicts.significant, strict=True) if significant),
                  beyond_split=beyond_split)


def _tpr_p_value(row: AuditRow, fpr: float, pooling: FoldPooling | None) -> float | None:
    value = next((v for k, v in row.tpr_at_fpr.items() if math.isclose(k, fpr)), None)
    if value is None or row.n_nonmembers * fpr < 1 - 1e-9 or row.n_members < 1:
        return None
    return tpr_at_fpr_p_value(value, row.n_members, row.n_nonmembers, fpr, pooling)


def distinguishable_rows(rows: Iterable[AuditRow],
                         family: Family | None = None) -> list[AuditRow]:
    """The rows whose leakage is distinguishable from chance in ``family`` (by default each
    row's own audit): the one rule behind what every headline, verdict and pick ranks.

    In the per-audit family: rows with ``significant`` True (after their audit's family-wise
    correction). In a run family: the rows it found significant. Rows read from schema-1
    files were never tested (``significant`` None): when *no* row was tested by its rank
    test, all rows are returned, as those files were always read. A beyond-split family
    (``family.beyond_split``) counts the rows' beyond-split tests instead. Never the split
    guard's own rows (``blind``, ``control``): they measure the split, not the model.
    """
    rows = [row for row in rows if not row.measures_split]
    if family is not None and family.beyond_split and family.scope == "audit":
        return [row for row in rows if row.beyond_split_significant]
    if never_tested(rows) and (family is None or family.test is None):
        return rows
    if family is None or family.scope == "audit":
        return [row for row in rows if row.significant]
    return [row for row in rows if row_key(row) in family.significant_keys]


def leakage_rows(rows: Iterable[AuditRow], split_guard: SplitGuard | None = None
                 ) -> list[AuditRow]:
    """The rows a headline may call leakage of the model.

    Never the split guard's own rows (``blind``, ``control``: they measure the split). Where
    the guard found the split shifted, only rows whose beyond-split test is significant
    (the attack beats what the split alone gives); otherwise :func:`distinguishable_rows`.
    """
    shifted = split_guard is not None and split_guard.shifted
    return distinguishable_rows(rows, Family("audit", beyond_split=shifted))


def never_tested(rows: Iterable[AuditRow]) -> bool:
    """Whether no row carries a significance verdict (rows of schema-1 files)."""
    return all(row.significant is None for row in rows)


def worst_distinguishable(rows: Iterable[AuditRow], metric: str | Metric = "auc",
                          family: Family | None = None) -> AuditRow | None:
    """:func:`worst_row` among :func:`distinguishable_rows`; None when none is (or none has
    a value of ``metric``, e.g. TPR at an FPR its non-members cannot resolve)."""
    metric = metric if isinstance(metric, Metric) else parse_metric(metric)
    candidates = distinguishable_rows(rows, family)
    if not candidates:
        return None
    try:
        return worst_row(candidates, metric)
    except InputError:  # no candidate has a value of the (valid) metric
        return None


def _number_or_none(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError) as exc:
        raise SchemaError(f"result.json: alpha must be a number or null; got {value!r}") from exc


def check_schema_version(data: Mapping[str, Any], what: str) -> None:
    """Raise :class:`SchemaError` unless ``data`` declares a schema this version reads."""
    version = data.get("schema_version") if isinstance(data, Mapping) else None
    if version not in READABLE_SCHEMA_VERSIONS:
        readable = ", ".join(str(v) for v in READABLE_SCHEMA_VERSIONS)
        raise SchemaError(f"{what} has schema_version {version!r}; this memberscope reads "
                          f"{readable}")


class ResultsCollection:
    """Rows of many audits (epochs × model variants) with queries across them."""

    def __init__(self, results: Iterable[AuditResult | AuditRow] = (),
                 skipped: Iterable[SkippedEntry] = (),
                 split_guards: Iterable[SplitGuard] = ()) -> None:
        self.rows: list[AuditRow] = []
        self.skipped: list[SkippedEntry] = list(skipped)
        self.split_guards: list[SplitGuard] = list(split_guards)
        for item in results:
            self.add(item)

    def add(self, item: AuditResult | AuditRow) -> None:
        """Add one audit's rows (with its skipped entries and split guard) or a single row."""
        if isinstance(item, AuditResult):
            self.rows.extend(item.rows)
            self.skipped.extend(item.skipped)
            if item.split_guard is not None:
                self.split_guards.append(item.split_guard)
        else:
            self.rows.append(item)

    def split_guard(self, **metadata: Any) -> SplitGuard | None:
        """The split guard of the audit whose metadata matches ``metadata`` (e.g. ``model=…,
        epoch=…``); the last one when several match; None when none does."""
        matching = [g for g in self.split_guards
                    if all(g.metadata.get(k) == v for k, v in metadata.items())]
        return matching[-1] if matching else None

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[AuditRow]:
        return iter(self.rows)

    def filter(self, **metadata_or_fields: Any) -> ResultsCollection:
        """Rows whose field (slice, attack) or metadata key equals each given value."""

        def keep(row: AuditRow) -> bool:
            for key, value in metadata_or_fields.items():
                actual = getattr(row, key) if key in ("slice", "attack") else row.metadata.get(key)
                if actual != value:
                    return False
            return True

        guards = [g for g in self.split_guards
                  if all(g.metadata.get(k) == v for k, v in metadata_or_fields.items()
                         if k not in ("slice", "attack"))]
        return ResultsCollection([r for r in self.rows if keep(r)], split_guards=guards)

    def values(self, key: str) -> list[Any]:
        """Distinct values of a metadata key (e.g. ``model``, ``epoch``) in first-seen order."""
        seen: dict[Any, None] = {}
        for row in self.rows:
            if key in row.metadata:
                seen.setdefault(row.metadata[key], None)
        return list(seen)

    def worst_slice(self, metric: str = "auc", **where: Any) -> AuditRow:
        """The row with the highest ``metric`` among rows matching ``where`` (:func:`worst_row`)."""
        rows = self.filter(**where).rows
        if not rows:
            raise InputError(f"no result rows match {where or 'anything'}")
        return worst_row(rows, metric)

    def best_epoch(self, *, model: Any = None, metric: str = "auc", max_value: float | None = None,
                   accuracy_key: str = "test_accuracy",
                   family: Family | None = None) -> dict[str, Any] | None:
        """The (model, epoch) with the best ``accuracy_key`` whose worst ``metric`` over the
        slices and attacks distinguishable from chance in ``family`` (:func:`distinguishable_rows`)
        stays ≤ ``max_value`` (no limit when None). An epoch with no such row qualifies under any
        limit: its ``worst`` is None (no leakage distinguishable from chance).

        Returns ``{"model", "epoch", "accuracy", "worst", "n_tested"}`` or None when no point
        qualifies.
        """
        groups: dict[tuple[Any, Any], list[AuditRow]] = {}
        for row in self.rows:
            if model is not None and row.metadata.get("model") != model:
                continue
            key = (row.metadata.get("model"), row.metadata.get("epoch"))
            groups.setdefault(key, []).append(row)
        best: dict[str, Any] | None = None
        for (model_label, epoch), rows in groups.items():
            if not any(not math.isnan(metric_value(r, metric)) for r in rows):
                continue  # no row of this epoch has a value of the metric
            worst_pick = worst_distinguishable(rows, metric, family)
            worst = None if worst_pick is None else worst_pick.metric(metric)
            accuracy = rows[0].metadata.get(accuracy_key)
            if accuracy is None or (max_value is not None and worst is not None
                                    and worst > max_value):
                continue
            if best is None or accuracy > best["accuracy"]:
                best = {"model": model_label, "epoch": epoch, "accuracy": accuracy,
                        "worst": worst, "n_tested": len(rows)}
        return best

    def to_pandas(self) -> pandas.DataFrame:
        """A DataFrame with one row per result row (needs the ``pandas`` extra)."""
        from memberscope.errors import require

        pd: Any = require("pandas", "pandas", "ResultsCollection.to_pandas")
        return pd.DataFrame([row.flat() for row in self.rows])
