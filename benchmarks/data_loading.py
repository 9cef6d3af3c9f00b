"""Benchmarks of memberscope.data on full-size inputs.

Run from the repository root: ``.venv/bin/python -m benchmarks.data_loading [--quick]`` (it
borrows the tests' format writers and local server from ``tests.helpers``). Builds a
full-size synthetic CIFAR-10 tarball in the official format (50,000 + 10,000 images, gzip
level 1) in a temp folder, serves it from 127.0.0.1, and prints medians of: download +
verification, verification of the cached file, parsing, the restricted unpickler against stock
``pickle.loads`` on the same batch (ratio), peak memory of a parse, and Fashion-MNIST from the
Debian package. Not run by pytest.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import pickle
import resource
import statistics
import tarfile
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
from tests.helpers.data import (
    ServerBehaviour,
    cifar_batch,
    local_server,
    py2_pickle,
)

from memberscope.data import Resource, fetch, load_fashion_mnist, parse_cifar10_tarball
from memberscope.data._download import verify
from memberscope.data._pickle import restricted_loads


def median_seconds(run: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def full_size_tarball(path: Path, per_batch: int) -> bytes:
    """Write a CIFAR-10-format tarball with 5 train batches and one test batch of ``per_batch``."""
    rng = np.random.default_rng(0)
    with (
        open(path, "wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1) as gz,
        tarfile.open(fileobj=gz, mode="w") as archive,
    ):
        names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
        first = b""
        for name in names:
            x = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
            y = rng.integers(0, 10, size=per_batch).tolist()
            data = py2_pickle(cifar_batch(x, y, name.encode()))
            first = first or data
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        meta = py2_pickle({b"label_names": [b"c%d" % i for i in range(10)]})
        info = tarfile.TarInfo("cifar-10-batches-py/batches.meta")
        info.size = len(meta)
        archive.addfile(info, io.BytesIO(meta))
    return first


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="1,000 images per batch, 1 repeat")
    args = parser.parse_args()
    per_batch, repeats = (1000, 1) if args.quick else (10_000, 3)

    with tempfile.TemporaryDirectory() as folder:
        tarball = Path(folder) / "cifar.tgz"
        started = time.perf_counter()
        batch = full_size_tarball(tarball, per_batch)
        size_mb = tarball.stat().st_size / 1e6
        print(
            f"built synthetic CIFAR-10 tarball: {size_mb:.0f} MB "
            f"in {time.perf_counter() - started:.1f} s"
        )
        blob = tarball.read_bytes()
        digest = hashlib.sha256(blob).hexdigest()
        md5 = hashlib.md5(blob).hexdigest()

        with local_server(ServerBehaviour(files={"c.tgz": blob})) as base:
            res = Resource("cifar-10-python.tar.gz", (base + "c.tgz",), digest, md5)
            cache = Path(folder) / "cache"

            def download() -> None:
                for leftover in cache.glob("*"):
                    leftover.unlink()
                fetch(res, cache)

            seconds = median_seconds(download, repeats)
            print(
                f"download + SHA-256 + MD5 from 127.0.0.1: {seconds:.2f} s "
                f"({size_mb / seconds:.0f} MB/s)"
            )
            seconds = median_seconds(lambda: verify(cache / res.filename, res), repeats)
            print(
                f"verify cached file (SHA-256 + MD5): {seconds:.2f} s "
                f"({size_mb / seconds:.0f} MB/s)"
            )

        restricted = median_seconds(lambda: restricted_loads(batch, source="b"), repeats * 3)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            stock = median_seconds(lambda: pickle.loads(batch, encoding="bytes"), repeats * 3)
        print(
            f"one batch: restricted unpickler {restricted * 1e3:.1f} ms, stock pickle "
            f"{stock * 1e3:.1f} ms, ratio {restricted / stock:.2f}x"
        )

        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        seconds = median_seconds(lambda: parse_cifar10_tarball(tarball), repeats)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        n = 6 * per_batch
        output_mb = n * 3072 * 4 / 2**20
        print(
            f"parse tarball -> float32 NHWC ({n} images): {seconds:.2f} s "
            f"({n / seconds:,.0f} images/s); peak RSS {peak:.0f} MiB (before {before:.0f} MiB,"
            f" output arrays {output_mb:.0f} MiB)"
        )

    seconds = median_seconds(load_fashion_mnist, repeats)
    print(f"Fashion-MNIST from the Debian package: {seconds:.2f} s")


if __name__ == "__main__":
    main()
