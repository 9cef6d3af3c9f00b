"""CIFAR-10 from its official python tarball, read in memory with a restricted unpickler.

Source: https://www.cs.toronto.edu/~kriz/cifar.html (Alex Krizhevsky, 2009). The tarball holds
``cifar-10-batches-py/data_batch_1`` … ``data_batch_5`` (10,000 training images each),
``test_batch`` (10,000) and ``batches.meta`` (class names). Each batch is a Python 2 pickle
of ``{b'batch_label', b'labels', b'data', b'filenames'}`` where ``data`` is uint8 of shape
(n, 3072): 1024 red, then 1024 green, then 1024 blue values of a 32×32 image, row-major.

The split and scaling are the codelab's: the official train/test split, pixels / 255 as
float32, images NHWC (n, 32, 32, 3).
"""

from __future__ import annotations

import logging
import tarfile
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import numpy as np

from memberscope.data._dataset import Dataset
from memberscope.data._download import CACHE_ENV, Resource, cache_root, fetch, verify
from memberscope.data._pickle import restricted_loads
from memberscope.errors import ChecksumError, DownloadError, InputError

logger = logging.getLogger(__name__)

# The SHA-256 is the one Keras pins for this URL (keras.datasets.cifar10, file_hash) and that
# several independent projects record; the MD5 is the one the dataset's authors publish on
# https://www.cs.toronto.edu/~kriz/cifar.html. Both are checked.
CIFAR10_RESOURCE = Resource(
    filename="cifar-10-python.tar.gz",
    urls=("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",),
    sha256="6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
    md5="c58f30108f718f92721af3b95e74349a",
)
FOLDER = "cifar-10-batches-py"
TRAIN_MEMBERS = tuple(f"{FOLDER}/data_batch_{i}" for i in range(1, 6))
TEST_MEMBER = f"{FOLDER}/test_batch"
META_MEMBER = f"{FOLDER}/batches.meta"
NUM_CLASSES = 10
IMAGE_SHAPE = (32, 32, 3)
# An official batch is ~31 MB; refuse members far beyond that before reading them.
MAX_MEMBER_BYTES = 64 << 20


def load_cifar10(
    *,
    cache_dir: str | Path | None = None,
    resource: Resource = CIFAR10_RESOURCE,
    path: str | Path | None = None,
    url: str | None = None,
    sha256: str | None = None,
) -> Dataset:
    """Load CIFAR-10: 50,000 train and 10,000 test images, (n, 32, 32, 3) float32 in [0, 1].

    Downloads the tarball into ``<cache>/cifar10/`` on first use (see :func:`fetch`), or reads
    a tarball you already have (``path``), or downloads from a mirror (``url``). When the
    download fails, one message says where to put the file and how to name a mirror.

    Parameters
    ----------
    cache_dir : path, optional
        Cache folder; default ``$MEMBERSCOPE_DATA`` or ``~/.cache/memberscope``.
    resource : Resource
        Where to download from and the digests to check; tests point it at a local server.
    path : path, optional
        A local copy of the python tarball, read in place (never copied or changed).
    url : str, optional
        A mirror to download from instead of ``resource``'s address.
    sha256 : str, optional
        The SHA-256 of the file at ``path`` or ``url`` when it is not the official tarball
        (default: the official digests are checked).
    """
    if sha256 is not None:
        sha256 = sha256.strip().lower()
    if path is not None:
        if url is not None:
            raise InputError("give path (a local tarball) or url (a mirror), not both")
        return parse_cifar10_tarball(_verified_local(Path(path).expanduser(), resource, sha256))
    if url is not None:
        resource = mirror_resource(resource, url, sha256)
    elif sha256 is not None:
        raise InputError("sha256 checks the file given by path or url; give one of them too")
    folder = cache_root(cache_dir) / "cifar10"
    try:
        archive = fetch(resource, folder)
    except DownloadError as exc:
        raise type(exc)(f"{exc}. {_where_to_put_it(resource, folder)}") from exc
    return parse_cifar10_tarball(archive)


def mirror_resource(official: Resource, url: str, sha256: str | None) -> Resource:
    """``official`` downloaded from ``url``; a file with another ``sha256`` gets its own cache
    name, so it never replaces (or is mistaken for) the official one."""
    if sha256 is None or sha256 == official.sha256:
        return replace(official, urls=(url,))
    stem = official.filename.removesuffix(".tar.gz")
    return Resource(f"{stem}-{sha256[:12]}.tar.gz", (url,), sha256)


def _verified_local(path: Path, official: Resource, sha256: str | None) -> Path:
    """``path`` when it is a file with the official digests (or the given ``sha256``)."""
    if not path.is_file():
        raise InputError(f"path {str(path)!r}: no such file; give the CIFAR-10 python tarball "
                         f"({official.filename})")
    expected = official if sha256 is None else Resource(path.name, official.urls, sha256)
    problem = verify(path, expected)
    if problem is not None:
        hint = ("if you trust this file, give its sha256 too" if sha256 is None
                else "is it the file you meant?")
        raise ChecksumError(f"path {str(path)!r} is not the expected CIFAR-10 tarball: "
                            f"{problem}; the file was left as it is ({hint})")
    return path


def _where_to_put_it(resource: Resource, folder: Path) -> str:
    """The one hint a failed download ends with: where the file goes and the options."""
    return (f"To use CIFAR-10 without this download, get {resource.filename} yourself "
            f"(from that address or a mirror) and either put it at "
            f"{folder / resource.filename}, or name it in the config's [dataset] table with "
            f'path = "/where/it/is/{resource.filename}" (load_cifar10(path=...) in Python); '
            f'or download from a mirror with url = "https://..." and, unless it serves the '
            f'official file, its sha256 = "...". {CACHE_ENV} sets the cache folder.')


def parse_cifar10_tarball(path: str | Path) -> Dataset:
    """Read a CIFAR-10 python tarball without extracting it to disk."""
    members = read_tar_members(path, (*TRAIN_MEMBERS, TEST_MEMBER, META_MEMBER))
    # pop: each batch's pickle bytes are freed as soon as it is parsed.
    train = [_parse_batch(members.pop(name), name) for name in TRAIN_MEMBERS]
    x_test_u8, y_test = _parse_batch(members.pop(TEST_MEMBER), TEST_MEMBER)
    class_names = _parse_meta(members.pop(META_MEMBER))
    y_train = np.concatenate([y for _, y in train])
    return Dataset(
        x_train=_to_nhwc_unit(*(x for x, _ in train)),
        y_train=y_train,
        x_test=_to_nhwc_unit(x_test_u8),
        y_test=y_test,
        name="cifar10",
        num_classes=NUM_CLASSES,
        input_shape=IMAGE_SHAPE,
        class_names=class_names,
    )


def read_tar_members(path: str | Path, names: tuple[str, ...]) -> dict[str, bytes]:
    """Return the bytes of the named regular-file members of a (gzipped) tar, in memory.

    Only members whose names equal one of ``names`` are read; nothing is written to disk, so
    names like ``../x`` cannot escape anywhere. Links, devices, duplicates and oversized
    members among the wanted names are refused.
    """
    wanted = set(names)
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(path, mode="r:*") as archive:
            for member in archive:
                if member.name not in wanted:
                    continue
                if member.name in found:
                    raise InputError(f"{path} holds {member.name} twice")
                if not member.isfile():
                    raise InputError(f"{path}: {member.name} is not a regular file")
                if member.size > MAX_MEMBER_BYTES:
                    raise InputError(
                        f"{path}: {member.name} has {member.size} bytes; at most "
                        f"{MAX_MEMBER_BYTES} expected"
                    )
                handle = archive.extractfile(member)
                if handle is None:  # pragma: no cover - isfile() members always have data
                    raise InputError(f"{path}: {member.name} has no data")
                found[member.name] = handle.read()
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise InputError(f"{path} is not a readable tar archive: {exc}") from exc
    missing = [name for name in names if name not in found]
    if missing:
        raise InputError(f"{path} lacks the member(s) {', '.join(missing)}")
    return found


def _parse_batch(data: bytes, source: str) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(images uint8 (n, 3072), labels int64 (n,))`` of one batch file."""
    batch = _as_bytes_keyed_dict(restricted_loads(data, source=source), source)
    for key in (b"data", b"labels"):
        if key not in batch:
            raise InputError(f"{source} lacks the key {key!r}; keys are {sorted(batch)}")
    images = batch[b"data"]
    if not isinstance(images, np.ndarray) or images.ndim != 2 or images.shape[1] != 3072:
        shape = getattr(images, "shape", type(images).__name__)
        raise InputError(f"{source}: b'data' must be uint8 of shape (n, 3072); got {shape}")
    labels = batch[b"labels"]
    if not isinstance(labels, list) or not all(type(v) is int for v in labels):
        raise InputError(f"{source}: b'labels' must be a list of ints")
    y = np.asarray(labels, dtype=np.int64)
    if len(y) != len(images):
        raise InputError(f"{source} has {len(images)} images but {len(y)} labels")
    if len(y) and (y.min() < 0 or y.max() >= NUM_CLASSES):
        raise InputError(
            f"{source}: labels must be in [0, {NUM_CLASSES}); got {y.min()} to {y.max()}"
        )
    return images, y


def _parse_meta(data: bytes) -> tuple[str, ...]:
    """Return the ten class names stored in ``batches.meta``."""
    meta = _as_bytes_keyed_dict(restricted_loads(data, source=META_MEMBER), META_MEMBER)
    names = meta.get(b"label_names")
    if (
        not isinstance(names, list)
        or len(names) != NUM_CLASSES
        or not all(isinstance(n, bytes) for n in names)
    ):
        raise InputError(f"{META_MEMBER}: b'label_names' must be {NUM_CLASSES} byte strings")
    return tuple(n.decode("ascii", errors="replace") for n in names)


def _as_bytes_keyed_dict(value: object, source: str) -> Mapping[bytes, object]:
    if not isinstance(value, dict):
        raise InputError(f"{source} must hold a dict; got {type(value).__name__}")
    return value


def _to_nhwc_unit(*batches: np.ndarray) -> np.ndarray:
    """(n, 3072) channel-planar uint8 batches -> one (N, 32, 32, 3) float32 array, pixels / 255.

    Written batch by batch into the output, so no concatenated uint8 copy is made.
    """
    out = np.empty((sum(len(b) for b in batches), *IMAGE_SHAPE), dtype=np.float32)
    start = 0
    for images in batches:
        nhwc = images.reshape(len(images), 3, 32, 32).transpose(0, 2, 3, 1)
        np.divide(nhwc, np.float32(255), out=out[start : start + len(images)])
        start += len(images)
    return out
