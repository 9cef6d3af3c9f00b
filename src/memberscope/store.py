"""The owner of the result formats: ``result.json`` + ``arrays.npz`` (one audit, in an audit
output directory next to its ``report.html``) and
``results.jsonl`` (many audits, appended as training goes). JSON, JSON lines and ``.npz`` only,
written atomically through :mod:`memberscope._io`.

Nothing here ever unpickles: ``.npz`` files are read with ``allow_pickle=False``.

``arrays.npz`` at ``schema_version`` 2:

====================  =================  ==================================================
``schema_version``    () int             2
``roc_slice``         (k,) str           the row id of curve j: its slice …
``roc_attack``        (k,) str           … and its attack (one row per pair in an audit)
``roc_<j>_fpr/_tpr``  (p_j,) float       the thinned ROC curve j
``scores_<attack>``   (n,) float         per-example scores on the entire dataset
``membership``        (n,) bool          members and non-members, aligned with the scores
``labels``            (n,)               class labels, aligned with the scores
====================  =================  ==================================================

Curves are matched to the rows of ``result.json`` by (slice, attack). Files without a
``schema_version`` (version 1) numbered curves by row position (``roc_<i>`` is row i's) and
are still read that way.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from memberscope._io import (
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_npz,
    atomic_write_text,
    json_value,
    load_npz,
)
from memberscope._version import __version__
from memberscope.errors import InputError, SchemaError
from memberscope.metrics import RocCurve
from memberscope.results import (
    SCHEMA_VERSION,
    AuditResult,
    AuditRow,
    ResultsCollection,
    SkippedEntry,
    SplitGuard,
    check_schema_version,
)

RESULT_FILE = "result.json"
ARRAYS_FILE = "arrays.npz"
RESULTS_FILE = "results.jsonl"
REPORT_FILE = "report.html"  # next to result.json, and in a run directory
SCORES_PREFIX = "scores_"
ARRAYS_SCHEMA_VERSION = 2
_ROC_SLICE, _ROC_ATTACK = "roc_slice", "roc_attack"

# The atomic writers moved to memberscope._io; these names stay importable from here.
__all__ = ["ARRAYS_FILE", "ARRAYS_SCHEMA_VERSION", "REPORT_FILE", "RESULTS_FILE", "RESULT_FILE",
           "SCORES_PREFIX", "append_jsonl", "append_result", "atomic_write_bytes",
           "atomic_write_json", "atomic_write_npz", "atomic_write_text", "load_npz",
           "load_result", "load_results", "read_jsonl", "save_result", "write_jsonl"]


# --- one audit: result.json + arrays.npz -------------------------------------------------


def save_result(result: AuditResult, out_dir: str | Path) -> Path:
    """Write ``result.json`` and ``arrays.npz`` (ROC curves, per-example scores) to ``out_dir``."""
    out_dir = Path(out_dir)
    ids = [(row.slice, row.attack) for row in result.rows]
    if len(set(ids)) != len(ids):
        repeated = sorted({pair for pair in ids if ids.count(pair) > 1})
        raise InputError(f"result rows must have distinct (slice, attack) pairs, the ids "
                         f"arrays.npz matches curves by; repeated: {repeated}")
    curves = [(pair, roc) for pair, roc in zip(ids, result.rocs, strict=False) if roc is not None]
    arrays: dict[str, np.ndarray] = {
        "schema_version": np.asarray(ARRAYS_SCHEMA_VERSION),
        _ROC_SLICE: np.array([pair[0] for pair, _ in curves], dtype=str),
        _ROC_ATTACK: np.array([pair[1] for pair, _ in curves], dtype=str),
    }
    for index, (_, roc) in enumerate(curves):
        arrays[f"roc_{index}_fpr"] = roc.fpr
        arrays[f"roc_{index}_tpr"] = roc.tpr
    for attack, scores in result.scores.items():
        arrays[f"{SCORES_PREFIX}{attack}"] = scores
    if result.membership is not None:
        arrays["membership"] = result.membership
    if result.labels is not None:
        arrays["labels"] = result.labels
    atomic_write_npz(out_dir / ARRAYS_FILE, arrays)
    atomic_write_json(out_dir / RESULT_FILE, result.to_dict(__version__))
    return out_dir / RESULT_FILE


def load_result(path: str | Path) -> AuditResult:
    """Read a result directory (or its ``result.json``), with ``arrays.npz`` when present."""
    path = Path(path)
    json_path = path / RESULT_FILE if path.is_dir() else path
    try:
        document = json.loads(json_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SchemaError(f"{json_path} is not valid JSON: {exc}") from exc
    result = AuditResult.from_dict(document)
    arrays_path = json_path.parent / ARRAYS_FILE
    if not arrays_path.exists():
        return result
    arrays = load_npz(arrays_path)
    curve_of = _curve_numbers(arrays, result.rows, arrays_path)
    rocs = tuple(
        None if (number := curve_of.get(index)) is None else
        RocCurve(np.full(len(arrays[f"roc_{number}_fpr"]), np.nan), arrays[f"roc_{number}_tpr"],
                 arrays[f"roc_{number}_fpr"], float(row.n_members), float(row.n_nonmembers))
        for index, row in enumerate(result.rows))
    scores = {k.removeprefix(SCORES_PREFIX): v for k, v in arrays.items()
              if k.startswith(SCORES_PREFIX)}
    return replace(result, rocs=rocs, scores=scores, membership=arrays.get("membership"),
                   labels=arrays.get("labels"))


def _curve_numbers(arrays: Mapping[str, np.ndarray], rows: Sequence[AuditRow],
                   path: Path) -> dict[int, int]:
    """{row position: curve number j of ``roc_<j>_*``} for the rows that have a curve."""
    version = arrays.get("schema_version")
    if version is None:  # version 1: curve i belongs to row i
        return {i: i for i in range(len(rows)) if f"roc_{i}_fpr" in arrays}
    if version.shape != () or int(version) != ARRAYS_SCHEMA_VERSION:
        raise SchemaError(f"{path} has schema_version {version.tolist()!r}; this memberscope "
                          f"reads arrays.npz of schema_version 1 (none) and "
                          f"{ARRAYS_SCHEMA_VERSION}")
    number_of = {(str(s), str(a)): j for j, (s, a) in enumerate(
        zip(arrays[_ROC_SLICE].tolist(), arrays[_ROC_ATTACK].tolist(), strict=True))}
    return {i: number_of[(row.slice, row.attack)] for i, row in enumerate(rows)
            if (row.slice, row.attack) in number_of}


# --- many audits: results.jsonl -----------------------------------------------------------


def append_jsonl(path: str | Path, records: Iterable[Mapping[str, Any]]) -> None:
    """Append records as JSON lines in one ``write`` and fsync.

    One ``os.write`` with ``O_APPEND`` lands whole or, on a crash, leaves at most one partial
    last line, which :func:`read_jsonl` drops; earlier lines are never touched.
    """
    payload = _json_lines(records)
    if not payload:
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)  # less the umask
    try:
        _repair_partial_tail(fd, path)
        data = payload.encode("utf-8")
        written = os.write(fd, data)
        if written != len(data):
            raise OSError(f"short write to {path}: {written} of {len(data)} bytes")
        os.fsync(fd)
    finally:
        os.close(fd)


def write_jsonl(path: str | Path, records: Iterable[Mapping[str, Any]]) -> None:
    """Replace ``path`` with ``records`` as JSON lines, atomically (e.g. to drop stale rows)."""
    atomic_write_text(path, _json_lines(records))


def _json_lines(records: Iterable[Mapping[str, Any]]) -> str:
    return "".join(json.dumps(json_value(r), allow_nan=False) + "\n" for r in records)


def _repair_partial_tail(fd: int, path: Path) -> None:
    """Drop a partial last line a crash left, so the next record starts on its own line."""
    size = path.stat().st_size
    if size == 0:
        return
    with path.open("rb") as reader:
        reader.seek(size - 1)
        if reader.read(1) == b"\n":
            return
        reader.seek(0)
        content = reader.read()
    os.ftruncate(fd, content.rfind(b"\n") + 1)


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Every complete JSON line of ``path``; a partial last line (a crash mid-write) is dropped."""
    records = []
    lines = Path(path).read_bytes().split(b"\n")
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as exc:
            if number == len(lines):  # no newline after it: a write the crash cut short
                break
            raise SchemaError(f"{path}:{number} is not valid JSON: {exc}") from exc
    return records


def append_result(path: str | Path, result: AuditResult) -> None:
    """Append every row, skipped entry and the split guard of ``result`` to a
    ``results.jsonl`` (record kinds ``row``, ``skipped``, ``split_guard``)."""
    records: list[dict[str, Any]] = [
        {"schema_version": SCHEMA_VERSION, "kind": "row", **row.to_dict()} for row in result.rows
    ]
    records += [{"schema_version": SCHEMA_VERSION, "kind": "skipped", **s.to_dict()}
                for s in result.skipped]
    if result.split_guard is not None:
        records.append({"schema_version": SCHEMA_VERSION, "kind": "split_guard",
                        **result.split_guard.to_dict()})
    append_jsonl(path, records)


def load_results(path: str | Path) -> ResultsCollection:
    """Read a ``results.jsonl`` (or a run directory holding one) into a collection."""
    path = Path(path)
    if path.is_dir():
        path = path / RESULTS_FILE
    collection = ResultsCollection()
    for number, record in enumerate(read_jsonl(path), start=1):
        check_schema_version(record, f"{path}:{number}")
        if record.get("kind") == "skipped":
            collection.skipped.append(SkippedEntry.from_dict(record))
        elif record.get("kind") == "split_guard":
            collection.split_guards.append(SplitGuard.from_dict(record))
        else:
            collection.add(AuditRow.from_dict(record))
    return collection
