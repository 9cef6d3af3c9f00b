"""Plain file helpers every format owner uses: atomic writes, ``.npz`` without pickle, and the
one conversion of Python/numpy values to JSON.

Atomic means temp file in the same folder, fsync, rename: a crash or a full disk leaves either
the old file or the new one, never a partial one. Files are created with mode ``0o666``
filtered by the process umask (0644 under the usual 022), like any ``open(path, "w")``.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["atomic_append_npz", "atomic_write_bytes", "atomic_write_json", "atomic_write_npz",
           "atomic_write_text", "json_value", "load_npz"]

_NEW_FILE_MODE = 0o666  # the kernel applies the umask, as for open(path, "w")


def _create_temp(folder: Path, name: str) -> tuple[int, Path]:
    """A new, empty temp file next to ``name`` (O_EXCL: never someone else's file)."""
    while True:
        temp = folder / f".{name}.{secrets.token_hex(6)}.tmp"
        try:
            return os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _NEW_FILE_MODE), temp
        except FileExistsError:
            continue


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temp file in the same folder, fsync, then rename.

    A crash or a full disk leaves either the old file or the new one, never a partial one.
    The new file's mode is ``0o666`` less the umask (0644 under umask 022).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_path = _create_temp(path.parent, path.name)
    try:
        with os.fdopen(handle, "wb") as temp:
            temp.write(data)
            temp.flush()
            os.fsync(temp.fileno())
        os.replace(temp_path, path)
    except BaseException:
        temp_path.unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    """UTF-8 text version of :func:`atomic_write_bytes`."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, document: Any) -> None:
    """Write ``document`` as indented JSON atomically (non-finite floats become null)."""
    atomic_write_text(path, json.dumps(json_value(document), indent=1, allow_nan=False) + "\n")


def atomic_write_npz(path: str | Path, arrays: Mapping[str, Any]) -> None:
    """Write plain arrays to a compressed ``.npz`` atomically; object arrays are refused."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **_plain_arrays(arrays))
    atomic_write_bytes(path, buffer.getvalue())


def atomic_append_npz(path: str | Path, arrays: Mapping[str, Any]) -> None:
    """Add plain arrays to the compressed ``.npz`` at ``path`` atomically (temp file, fsync,
    rename), compressing only them: the file's arrays are copied as stored bytes, so a record
    that grows by one array at a time compresses its new part only (the byte copy still grows
    with the file). A key already in the file, or an object array, is refused."""
    path = Path(path)
    plain = _plain_arrays(arrays)
    buffer = io.BytesIO(path.read_bytes())
    with zipfile.ZipFile(buffer, "a", compression=zipfile.ZIP_DEFLATED,
                         allowZip64=True) as archive:
        present = set(archive.namelist())
        for key, array in plain.items():
            name = f"{key}.npy"
            if name in present:
                raise ValueError(f"array {key!r} is already in {path}")
            with archive.open(name, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, array, allow_pickle=False)
    atomic_write_bytes(path, buffer.getvalue())


def _plain_arrays(arrays: Mapping[str, Any]) -> dict[str, Any]:
    plain: dict[str, Any] = {}
    for key, array in arrays.items():
        plain[key] = np.asarray(array)
        if plain[key].dtype == object:
            raise TypeError(f"array {key!r} has dtype object; only plain arrays are saved")
    return plain


def load_npz(path: str | Path) -> dict[str, np.ndarray]:
    """Read every array of an ``.npz`` without unpickling (``allow_pickle=False``)."""
    with np.load(path, allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}


def json_value(value: Any, *, other: Callable[[Any], Any] | None = None) -> Any:
    """``value`` as plain JSON types: mappings (keys as str), lists, str, int, float, bool, None.

    numpy scalars and arrays become Python numbers and lists, paths become str, and
    non-finite floats become None (JSON has no NaN). Any other object goes through ``other``
    (e.g. ``str`` for display); without it, a :class:`TypeError` names its type, so a data file
    never stores an object's repr by accident.
    """
    if isinstance(value, Mapping):
        return {str(k): json_value(v, other=other) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_value(v, other=other) for v in value]
    if isinstance(value, np.ndarray):
        return json_value(value.tolist(), other=other)
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    if value is None or isinstance(value, str | int | bool):
        return value
    if isinstance(value, Path):
        return str(value)
    if other is not None:
        return json_value(other(value))
    raise TypeError(f"cannot store a value of type {type(value).__name__} as JSON: {value!r}")
