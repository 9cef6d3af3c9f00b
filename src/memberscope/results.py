"""Audit results: one row per (slice, attack), skipped entries, and collections of audits."""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from memberscope.errors import InputError, SchemaError, UnknownNameError
from memberscope.metric_definitions import SCALAR_METRICS, Metric, parse_metric, tpr_metric
from memberscope.metrics import EpsilonBound, HeldOutCounts, RocCurve

if TYPE_CHECKING:
    import pandas

SCHEMA_VERSION = 3
# Version 1 rows lack p_value, significant and notes (read as None, None, ()) and may hold
# TPR at unresolvable FPRs (kept as stored). Versions 1 and 2 lack the audit's alpha and
# correction (read as None: not recorded, since audit() always let callers choose them).
READABLE_SCHEMA_VERSIONS = (1, 2, 3)
#: What ``result.json`` records once per audit and ``results.jsonl`` on every row.
_AUDIT_FIELDS = ("alpha", "correction")


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
    ``correction`` ("holm" or "bonferroni"; both None on rows of schema-1 and -2 files).
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
        }
        out.update({tpr_metric(k).key: v for k, v in self.tpr_at_fpr.items()})
        out.update(self.metadata)
        return out


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

    ``rows``, ``skipped``, ``notes`` (caveats an attack raised, e.g. a variance it could
    not estimate; in ``result.json`` only when there are any) and the family-wise test's
    ``alpha`` and ``correction`` (None when not recorded) go to ``result.json``.
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
        """A copy whose every row and skipped entry also carries ``metadata``."""
        return replace(
            self,
            rows=tuple(replace(r, metadata={**r.metadata, **metadata}) for r in self.rows),
            skipped=tuple(replace(s, metadata={**s.metadata, **metadata}) for s in self.skipped),
        )

    def worst(self, metric: str = "auc") -> AuditRow:
        """The row with the highest ``metric`` (most leakage; NaN never wins: :func:`worst_row`)."""
        if not self.rows:
            raise InputError("the result has no rows (every slice was skipped)")
        return worst_row(self.rows, metric)

    def to_dict(self, memberscope_version: str) -> dict[str, Any]:
        """The ``result.json`` document."""
        document = {"schema_version": SCHEMA_VERSION, "memberscope_version": memberscope_version,
                    "alpha": self.alpha, "correction": self.correction,
                    # Once per audit here; each row of results.jsonl carries them itself.
                    "rows": [{k: v for k, v in r.to_dict().items() if k not in _AUDIT_FIELDS}
                             for r in self.rows],
                    "skipped": [s.to_dict() for s in self.skipped]}
        if self.notes:
            document["notes"] = list(self.notes)
        return document

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AuditResult:
        """Read a ``result.json`` document, checking its schema version."""
        check_schema_version(data, "result.json")
        test = {key: data.get(key) for key in _AUDIT_FIELDS}
        rows = tuple(AuditRow.from_dict({**r, **test}) for r in data.get("rows", []))
        return cls(rows=rows,
                   skipped=tuple(SkippedEntry.from_dict(s) for s in data.get("skipped", [])),
                   notes=tuple(str(n) for n in data.get("notes", [])),
                   alpha=_number_or_none(test["alpha"]),
                   correction=None if test["correction"] is None else str(test["correction"]))

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
#: ``significant`` flag every row carries. (A family over all audits of a run is planned.)
FAMILY_SCOPES = ("audit",)


@dataclass(frozen=True)
class Family:
    """The family of tests a statement's "distinguishable from chance" refers to.

    ``scope`` is one of :data:`FAMILY_SCOPES`; ``alpha`` and ``correction`` are the level
    and the correction of its tests ("holm" or "bonferroni"), None where the rows do not
    record them (files of schema 1 and 2) or their audits differ. Every statement of a
    summary carries the family it refers to, so that it can say so.
    """

    scope: str = "audit"
    alpha: float | None = None
    correction: str | None = None

    def __post_init__(self) -> None:
        if self.scope not in FAMILY_SCOPES:
            raise UnknownNameError("family scope", self.scope, FAMILY_SCOPES)


def audit_family(rows: Iterable[AuditRow]) -> Family:
    """The per-audit family of ``rows``: each row's own ``significant``, with the α and
    correction their audits recorded (None unless every row records the same)."""
    rows = list(rows)
    alphas = {row.alpha for row in rows}
    corrections = {row.correction for row in rows}
    return Family("audit", alphas.pop() if len(alphas) == 1 else None,
                  corrections.pop() if len(corrections) == 1 else None)


def distinguishable_rows(rows: Iterable[AuditRow],
                         family: Family | None = None) -> list[AuditRow]:
    """The rows whose leakage is distinguishable from chance in ``family`` (by default each
    row's own audit): the one rule behind what every headline, verdict and pick ranks.

    In the per-audit family: rows with ``significant`` True (after their audit's family-wise
    correction). Rows read from schema-1 files were never tested (``significant`` None): when
    *no* row was tested, all rows are returned, as those files were always read.
    """
    rows = list(rows)
    if all(row.significant is None for row in rows):
        return rows
    return [row for row in rows if row.significant]


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
                 skipped: Iterable[SkippedEntry] = ()) -> None:
        self.rows: list[AuditRow] = []
        self.skipped: list[SkippedEntry] = list(skipped)
        for item in results:
            self.add(item)

    def add(self, item: AuditResult | AuditRow) -> None:
        """Add one audit's rows (and skipped entries) or a single row."""
        if isinstance(item, AuditResult):
            self.rows.extend(item.rows)
            self.skipped.extend(item.skipped)
        else:
            self.rows.append(item)

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

        return ResultsCollection([r for r in self.rows if keep(r)])

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
