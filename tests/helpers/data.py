"""Test helpers for memberscope.data: files in the official formats and a local HTTP server.

``py2_pickle`` writes pickles opcode by opcode the way Python 2's cPickle wrote the official
CIFAR-10 batches (protocol 2, ``str`` as SHORT_BINSTRING/BINSTRING, numpy arrays through
``numpy.core.multiarray._reconstruct``), because Python 3's pickler would write ``bytes``
through ``_codecs.encode`` and arrays through ``numpy._core``: not the official format.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import http.server
import io
import struct
import tarfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

CIFAR_LABEL_NAMES = [
    b"airplane",
    b"automobile",
    b"bird",
    b"cat",
    b"deer",
    b"dog",
    b"frog",
    b"horse",
    b"ship",
    b"truck",
]


class _Py2Pickler:
    """Emit protocol-2 opcodes for dicts, lists, bytes (py2 str), ints, None and uint8 arrays."""

    def __init__(self) -> None:
        self.out = io.BytesIO()
        self.memo = 0

    def put(self) -> None:
        self.memo += 1
        if self.memo < 256:
            self.out.write(b"q" + bytes([self.memo]))
        else:
            self.out.write(b"r" + struct.pack("<I", self.memo))

    def dump(self, value: Any) -> bytes:
        self.out.write(b"\x80\x02")
        self.save(value)
        self.out.write(b".")
        return self.out.getvalue()

    def save(self, value: Any) -> None:
        write = self.out.write
        if value is None:
            write(b"N")
        elif value is False or value is True:
            write(b"\x88" if value else b"\x89")
        elif isinstance(value, int):
            if 0 <= value < 256:
                write(b"K" + bytes([value]))
            elif 0 <= value < 65536:
                write(b"M" + struct.pack("<H", value))
            else:
                write(b"J" + struct.pack("<i", value))
        elif isinstance(value, bytes):
            if len(value) < 256:
                write(b"U" + bytes([len(value)]) + value)
            else:
                write(b"T" + struct.pack("<i", len(value)) + value)
            self.put()
        elif isinstance(value, tuple) and 1 <= len(value) <= 3:
            for item in value:
                self.save(item)
            write(b"\x85\x86\x87"[len(value) - 1 : len(value)])
        elif isinstance(value, tuple):
            write(b"(")
            for item in value:
                self.save(item)
            write(b"t")
        elif isinstance(value, list):
            write(b"]")
            self.put()
            for start in range(0, len(value), 1000):  # cPickle batches appends by 1000
                write(b"(")
                for item in value[start : start + 1000]:
                    self.save(item)
                write(b"e")
        elif isinstance(value, dict):
            write(b"}")
            self.put()
            write(b"(")
            for key, item in value.items():
                self.save(key)
                self.save(item)
            write(b"u")
        elif isinstance(value, np.ndarray):
            self.save_array(value)
        else:
            raise TypeError(type(value))

    def save_array(self, array: np.ndarray) -> None:
        assert array.dtype == np.uint8
        write = self.out.write
        write(b"cnumpy.core.multiarray\n_reconstruct\n")
        self.put()
        write(b"cnumpy\nndarray\n")
        self.put()
        write(b"K\x00\x85U\x01b\x87R")  # _reconstruct(ndarray, (0,), 'b')
        self.put()
        write(b"(K\x01")  # state: (version 1, shape, dtype, fortran, raw bytes)
        self.save(tuple(array.shape))
        write(b"cnumpy\ndtype\n")
        self.put()
        write(b"U\x02u1K\x00K\x01\x87R")  # dtype('u1', 0, 1)
        self.put()
        write(b"(K\x03U\x01|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb")
        write(b"\x89")
        self.save(np.ascontiguousarray(array).tobytes())
        write(b"tb")


def py2_pickle(value: Any) -> bytes:
    """Pickle ``value`` as Python 2's cPickle did with protocol 2."""
    return _Py2Pickler().dump(value)


def cifar_batch(images: np.ndarray, labels: list[int], label: bytes) -> dict[bytes, Any]:
    """A batch dict in the official layout; ``images`` uint8 (n, 3072)."""
    return {
        b"batch_label": label,
        b"labels": labels,
        b"data": images,
        b"filenames": [b"synthetic_%06d.png" % i for i in range(len(labels))],
    }


@dataclass
class SyntheticCifar:
    """A small tarball in the official CIFAR-10 layout and the arrays it holds."""

    tarball: bytes
    x_train: np.ndarray  # uint8 (n, 3072), channel planes
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    sha256: str = field(init=False)

    def __post_init__(self) -> None:
        self.sha256 = hashlib.sha256(self.tarball).hexdigest()


def tar_bytes(members: dict[str, bytes], extra: list[tarfile.TarInfo] | None = None) -> bytes:
    """A gzipped tar with the given regular-file members (and extra raw entries)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        folder = tarfile.TarInfo("cifar-10-batches-py")
        folder.type = tarfile.DIRTYPE
        archive.addfile(folder)
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        for info in extra or []:
            archive.addfile(info)
    return buffer.getvalue()


def cifar_members(
    per_batch: int = 4, n_test: int = 5, seed: int = 0
) -> tuple[dict[str, bytes], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The member files of a synthetic CIFAR-10 tarball and the arrays they hold."""
    rng = np.random.default_rng(seed)
    members: dict[str, bytes] = {}
    xs, ys = [], []
    for i in range(1, 6):
        x = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
        y = rng.integers(0, 10, size=per_batch).tolist()
        members[f"cifar-10-batches-py/data_batch_{i}"] = py2_pickle(
            cifar_batch(x, y, b"training batch %d of 5" % i)
        )
        xs.append(x)
        ys.extend(y)
    x_test = rng.integers(0, 256, size=(n_test, 3072), dtype=np.uint8)
    y_test = rng.integers(0, 10, size=n_test).tolist()
    members["cifar-10-batches-py/test_batch"] = py2_pickle(
        cifar_batch(x_test, y_test, b"testing batch 1 of 1")
    )
    members["cifar-10-batches-py/batches.meta"] = py2_pickle(
        {b"num_cases_per_batch": per_batch, b"label_names": CIFAR_LABEL_NAMES, b"num_vis": 3072}
    )
    members["cifar-10-batches-py/readme.html"] = b"<html>synthetic</html>"
    return members, np.concatenate(xs), np.asarray(ys), x_test, np.asarray(y_test)


def synthetic_cifar(per_batch: int = 4, n_test: int = 5, seed: int = 0) -> SyntheticCifar:
    """A synthetic CIFAR-10 tarball in the exact official layout."""
    members, x_train, y_train, x_test, y_test = cifar_members(per_batch, n_test, seed)
    return SyntheticCifar(tar_bytes(members), x_train, y_train, x_test, y_test)


def idx_gz(array: np.ndarray) -> bytes:
    """A gzipped IDX file of unsigned bytes."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return gzip.compress(header + array.astype(np.uint8).tobytes())


@dataclass
class ServerBehaviour:
    """What the local server serves and how it misbehaves; it records each request."""

    files: dict[str, bytes] = field(default_factory=dict)
    honour_range: bool = True
    # Number of responses to cut short after this many body bytes (announcing the full length).
    truncate_after: int | None = None
    truncations_left: int = 0
    requests: list[tuple[str, str | None]] = field(default_factory=list)


@contextlib.contextmanager
def local_server(behaviour: ServerBehaviour) -> Iterator[str]:
    """Serve ``behaviour.files`` on 127.0.0.1 at a free port; yields the base URL."""

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def do_GET(self) -> None:
            range_header = self.headers.get("Range")
            behaviour.requests.append((self.path, range_header))
            data = behaviour.files.get(self.path.lstrip("/"))
            if data is None:
                self.send_error(404)
                return
            start = 0
            if range_header and behaviour.honour_range:
                start = int(range_header.removeprefix("bytes=").rstrip("-"))
                if start >= len(data):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            body = data[start:]
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if behaviour.truncate_after is not None and behaviour.truncations_left > 0:
                behaviour.truncations_left -= 1
                body = body[: behaviour.truncate_after]
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
