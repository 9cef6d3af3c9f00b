"""Saving and loading results: JSON, JSON lines and ``.npz`` only, written atomically.

Nothing here ever unpickles: ``.npz`` files are read with ``allow_pickle=False``.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from memberscope._version import __version__
from memberscope.errors import SchemaError
from memberscope.metrics import RocCurve
from memberscope.results import (
    SCHEMA_VERSION,
    AuditResult,
    AuditRow,
    ResultsCollection,
    SkippedEntry,
    check_schema_version,
)

RESULT_FILE = "result.json"
ARRAYS_FILE = "arrays.npz"


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temp file in the same folder, fsync, then rename.

    A crash or a full disk leaves either the old file or the new one, never a partial one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as temp:
            temp.write(data)
            temp.flush()
            os.fsync(temp.fileno())
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    """UTF-8 text version of :func:`atomic_write_bytes`."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, document: Any) -> None:
    """Write ``document`` as indented JSON (NaN refused: JSON has no NaN) atomically."""
    atomic_write_text(path, json.dumps(_jsonable(document), indent=1, allow_nan=False) + "\n")


def atomic_write_npz(path: str | Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Write plain arrays to an ``.npz`` atomically; object arrays are refused."""
    for key, array in arrays.items():
        if np.asarray(array).dtype == object:
            raise TypeError(f"array {key!r} has dtype object; only plain arrays are saved")
    buffer = io.BytesIO()
    plain: dict[str, Any] = {k: np.asarray(v) for k, v in arrays.items()}
    np.savez_compressed(buffer, **plain)
    atomic_write_bytes(path, buffer.getvalue())


def load_npz(path: str | Path) -> dict[str, np.ndarray]:
    """Read every array of an ``.npz`` without unpickling."""
    with np.load(path, allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}


def _jsonable(value: Any) -> Any:
    """Plain JSON types; non-finite floats become None (JSON has no NaN)."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


# --- one audit: result.json + arrays.npz -------------------------------------------------


def save_result(result: AuditResult, out_dir: str | Path) -> Path:
    """Write ``result.json`` and ``arrays.npz`` (ROC curves, per-example scores) to ``out_dir``."""
    out_dir = Path(out_dir)
    arrays: dict[str, np.ndarray] = {}
    for index, roc in enumerate(result.rocs):
        if roc is not None:
            arrays[f"roc_{index}_fpr"] = roc.fpr
            arrays[f"roc_{index}_tpr"] = roc.tpr
    for attack, scores in result.scores.items():
        arrays[f"scores_{attack}"] = scores
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
    rocs = tuple(
        RocCurve(np.full(len(arrays[f"roc_{i}_fpr"]), np.nan), arrays[f"roc_{i}_tpr"],
                 arrays[f"roc_{i}_fpr"], float(row.n_members), float(row.n_nonmembers))
        if f"roc_{i}_fpr" in arrays else None
        for i, row in enumerate(result.rows)
    )
    scores = {k.removeprefix("scores_"): v for k, v in arrays.items() if k.startswith("scores_")}
    return AuditResult(rows=result.rows, skipped=result.skipped, rocs=rocs, scores=scores,
                       membership=arrays.get("membership"), labels=arrays.get("labels"),
                       notes=result.notes)


# --- many audits: results.jsonl -----------------------------------------------------------


def append_jsonl(path: str | Path, records: Iterable[Mapping[str, Any]]) -> None:
    """Append records as JSON lines in one ``write`` and fsync.

    One ``os.write`` with ``O_APPEND`` lands whole or, on a crash, leaves at most one partial
    last line, which :func:`read_jsonl` drops; earlier lines are never touched.
    """
    payload = "".join(json.dumps(_jsonable(r), allow_nan=False) + "\n" for r in records)
    if not payload:
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        _repair_partial_tail(fd, path)
        data = payload.encode("utf-8")
        written = os.write(fd, data)
        if written != len(data):
            raise OSError(f"short write to {path}: {written} of {len(data)} bytes")
        os.fsync(fd)
    finally:
        os.close(fd)


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
    """Append every row and skipped entry of ``result`` to a ``results.jsonl``."""
    records: list[dict[str, Any]] = [
        {"schema_version": SCHEMA_VERSION, "kind": "row", **row.to_dict()} for row in result.rows
    ]
    records += [{"schema_version": SCHEMA_VERSION, "kind": "skipped", **s.to_dict()}
                for s in result.skipped]
    append_jsonl(path, records)


def load_results(path: str | Path) -> ResultsCollection:
    """Read a ``results.jsonl`` (or a run directory holding one) into a collection."""
    path = Path(path)
    if path.is_dir():
        path = path / "results.jsonl"
    collection = ResultsCollection()
    for number, record in enumerate(read_jsonl(path), start=1):
        check_schema_version(record, f"{path}:{number}")
        if record.get("kind") == "skipped":
            collection.skipped.append(SkippedEntry.from_dict(record))
        else:
            collection.add(AuditRow.from_dict(record))
    return collection
