"""Strict reader of gzipped IDX files (the MNIST / Fashion-MNIST format), unsigned bytes only.

Layout: two zero bytes, a type byte (0x08 = unsigned byte), a byte with the number of
dimensions d, then d big-endian uint32 sizes, then exactly prod(sizes) data bytes.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from memberscope.errors import InputError

UNSIGNED_BYTE = 0x08
_TYPE_NAMES = {
    0x08: "unsigned byte",
    0x09: "signed byte",
    0x0B: "int16",
    0x0C: "int32",
    0x0D: "float32",
    0x0E: "float64",
}
# Far above the 47 MB of Fashion-MNIST's training images; guards against a decompression bomb.
MAX_DATA_BYTES = 1 << 30


def read_idx_gz(path: str | Path, ndim: int) -> np.ndarray:
    """Read a gzipped IDX file of unsigned bytes with ``ndim`` dimensions.

    Parameters
    ----------
    path : path
        The ``.gz`` file.
    ndim : int
        Expected number of dimensions (1 for labels, 3 for images).

    Returns
    -------
    ndarray of uint8 with ``ndim`` dimensions

    Raises
    ------
    InputError
        Not gzip, wrong magic number or dimensions, or data shorter or longer than the header
        announces; the message names the file.
    """
    try:
        with gzip.open(path, "rb") as stream:
            header = stream.read(4)
            _check_header(header, ndim, path)
            dims = stream.read(4 * ndim)
            if len(dims) != 4 * ndim:
                raise InputError(f"{path}: header ends after {len(dims)} of {4 * ndim} size bytes")
            shape = struct.unpack(f">{ndim}I", dims)
            size = int(np.prod(shape, dtype=np.int64))
            if size > MAX_DATA_BYTES:
                raise InputError(f"{path}: header announces {size} bytes; at most {MAX_DATA_BYTES}")
            data = stream.read(size)
            trailing = stream.read(1)
    except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        raise InputError(f"{path} is not a readable gzip file: {exc}") from exc
    if len(data) != size:
        raise InputError(
            f"{path}: header announces shape {shape} ({size} bytes) but only {len(data)} "
            f"data bytes follow"
        )
    if trailing:
        raise InputError(f"{path}: data continues past the {size} bytes of shape {shape}")
    return np.frombuffer(data, dtype=np.uint8).reshape(shape)


def _check_header(header: bytes, ndim: int, path: str | Path) -> None:
    if len(header) != 4 or header[:2] != b"\x00\x00":
        raise InputError(f"{path}: not an IDX file (magic number {header.hex() or 'missing'})")
    data_type, dims = header[2], header[3]
    if data_type != UNSIGNED_BYTE:
        found = _TYPE_NAMES.get(data_type, "unknown")
        raise InputError(
            f"{path}: IDX data type 0x{data_type:02X} ({found}); expected 0x08 (unsigned byte)"
        )
    if dims != ndim:
        raise InputError(f"{path}: IDX file has {dims} dimension(s); expected {ndim}")
