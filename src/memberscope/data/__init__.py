"""Datasets for training and auditing, loaded with numpy only.

>>> from memberscope.data import load_dataset
>>> data = load_dataset("digits")
>>> data.x_train.shape[1:], data.num_classes
((8, 8, 1), 10)

Names: ``cifar10`` (official python tarball, downloaded and verified into the cache),
``fashion_mnist`` (Debian package, cache or download), ``digits`` (bundled with scikit-learn),
or a path to an ``.npz``. The cache folder is ``cache_dir``, else ``$MEMBERSCOPE_DATA``, else
``~/.cache/memberscope``. Images are float32 NHWC in [0, 1] (pixels / 255, as the codelab);
train is the members, test the non-members.
"""

from __future__ import annotations

from pathlib import Path

from memberscope.data._cifar10 import CIFAR10_RESOURCE, load_cifar10, parse_cifar10_tarball
from memberscope.data._dataset import Dataset
from memberscope.data._digits import load_digits
from memberscope.data._download import CACHE_ENV, Resource, cache_root, fetch
from memberscope.data._fashion_mnist import FASHION_MNIST_RESOURCES, load_fashion_mnist
from memberscope.data._npz import load_npz_dataset
from memberscope.data._sampling import balanced_member_sample, stratified_split
from memberscope.errors import InputError, UnknownNameError

DATASET_NAMES = ("cifar10", "fashion_mnist", "digits")

__all__ = [
    "CACHE_ENV",
    "CIFAR10_RESOURCE",
    "DATASET_NAMES",
    "FASHION_MNIST_RESOURCES",
    "Dataset",
    "Resource",
    "balanced_member_sample",
    "cache_root",
    "fetch",
    "load_cifar10",
    "load_dataset",
    "load_digits",
    "load_fashion_mnist",
    "load_npz_dataset",
    "parse_cifar10_tarball",
    "stratified_split",
]


def load_dataset(
    name: str | Path,
    *,
    cache_dir: str | Path | None = None,
    split_seed: int = 0,
    path: str | Path | None = None,
    url: str | None = None,
    sha256: str | None = None,
) -> Dataset:
    """Load a dataset by name or from an ``.npz`` path.

    Parameters
    ----------
    name : str or path
        One of ``DATASET_NAMES`` or the path of an ``.npz`` file.
    cache_dir : path, optional
        Where downloads are kept; default ``$MEMBERSCOPE_DATA`` or ``~/.cache/memberscope``.
    split_seed : int
        Seed of the train/test split for data without an official one (digits, an ``.npz``
        holding only ``x`` and ``y``).
    path, url, sha256 : optional, ``cifar10`` only
        A local copy of the tarball, or a mirror to download from, and the file's SHA-256
        when it is not the official one (see :func:`load_cifar10`).

    Raises
    ------
    UnknownNameError
        An unknown name; the message lists the valid ones.
    InputError
        A bad or missing file.
    DownloadError
        A download failed; ``ChecksumError`` when the file is not the published one.
    """
    text = str(name)
    if text == "cifar10":
        return load_cifar10(cache_dir=cache_dir, path=path, url=url, sha256=sha256)
    given = [key for key, value in (("path", path), ("url", url), ("sha256", sha256))
             if value is not None]
    if given:
        raise InputError(f"{', '.join(given)}: only the cifar10 dataset takes these options; "
                         f"got dataset {text!r}")
    if text == "fashion_mnist":
        return load_fashion_mnist(cache_dir=cache_dir)
    if text == "digits":
        return load_digits(split_seed=split_seed)
    if text.endswith(".npz") or Path(text).is_file():
        return load_npz_dataset(text, split_seed=split_seed)
    raise UnknownNameError("dataset", text, (*DATASET_NAMES, "PATH.npz"))
