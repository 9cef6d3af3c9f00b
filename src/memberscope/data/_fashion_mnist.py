"""Fashion-MNIST: the Debian package's files, else the cache, else a verified download.

Source: https://github.com/zalandoresearch/fashion-mnist (Xiao, Rasul and Vollgraf, 2017):
60,000 training and 10,000 test 28×28 grayscale images of 10 kinds of clothing, as four
gzipped IDX files. Scaled like the codelab scales CIFAR-10: pixels / 255 as float32, images
(n, 28, 28, 1), the official train/test split.

Where each file is looked for, in order:

1. ``/usr/share/datasets/fashion-mnist/`` (``apt-get install dataset-fashion-mnist``). Debian
   recompressed these gzip files (they lack the original file-name header field), so their
   digests differ from the published ones; dpkg vouches for them and the strict IDX reader
   checks their structure.
2. ``<cache>/fashion-mnist/`` holding a previous download (verified again on every load).
3. A download of the authors' file, checked against the MD5 they publish in the project
   README and the SHA-256 that several independent projects (TensorFlow Datasets among
   them) pin for the same URLs. The published sizes agree with Debian's files: each is longer
   by exactly the gzip file-name field Debian dropped.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from memberscope.data._dataset import Dataset
from memberscope.data._download import Resource, cache_root, fetch
from memberscope.data._idx import read_idx_gz
from memberscope.errors import InputError

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
_BASE_URLS = (
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
)


def _resource(filename: str, sha256: str, md5: str) -> Resource:
    return Resource(filename, tuple(base + filename for base in _BASE_URLS), sha256, md5)


FASHION_MNIST_RESOURCES: dict[str, Resource] = {
    "train_images": _resource(
        "train-images-idx3-ubyte.gz",
        "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    ),
    "train_labels": _resource(
        "train-labels-idx1-ubyte.gz",
        "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        "25c81989df183df01b3e8a0aad5dffbe",
    ),
    "test_images": _resource(
        "t10k-images-idx3-ubyte.gz",
        "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        "bef4ecab320f06d8554ea6380940ec79",
    ),
    "test_labels": _resource(
        "t10k-labels-idx1-ubyte.gz",
        "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
        "bb300cfdad3c16e7a12a480ee83cd310",
    ),
}
CLASS_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
IMAGE_SIZE = 28


def load_fashion_mnist(
    *,
    cache_dir: str | Path | None = None,
    system_dir: str | Path | None = DEBIAN_DIR,
    resources: dict[str, Resource] | None = None,
) -> Dataset:
    """Load Fashion-MNIST: 60,000 train and 10,000 test images, (n, 28, 28, 1) float32 in [0, 1].

    Parameters
    ----------
    cache_dir : path, optional
        Cache folder; default ``$MEMBERSCOPE_DATA`` or ``~/.cache/memberscope``.
    system_dir : path or None
        Folder of system-installed files looked at first; ``None`` skips it.
    resources : dict, optional
        Download addresses and digests per file (keys ``train_images``, ``train_labels``,
        ``test_images``, ``test_labels``); tests point them at a local server.
    """
    resources = FASHION_MNIST_RESOURCES if resources is None else resources
    if set(resources) != set(FASHION_MNIST_RESOURCES):
        raise InputError(
            f"resources must have the keys {', '.join(FASHION_MNIST_RESOURCES)}; "
            f"got {', '.join(resources) or 'none'}"
        )
    paths = {key: _locate(resource, cache_dir, system_dir) for key, resource in resources.items()}
    x_train, y_train = _read_pair(paths["train_images"], paths["train_labels"])
    x_test, y_test = _read_pair(paths["test_images"], paths["test_labels"])
    return Dataset(
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        name="fashion_mnist",
        num_classes=len(CLASS_NAMES),
        input_shape=(IMAGE_SIZE, IMAGE_SIZE, 1),
        class_names=CLASS_NAMES,
    )


def _locate(
    resource: Resource, cache_dir: str | Path | None, system_dir: str | Path | None
) -> Path:
    if system_dir is not None:
        installed = Path(system_dir) / resource.filename
        if installed.is_file():
            return installed
    return fetch(resource, cache_root(cache_dir) / "fashion-mnist")


def _read_pair(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read matching image and label IDX files as scaled NHWC float32 and int64 labels."""
    images = read_idx_gz(images_path, ndim=3)
    labels = read_idx_gz(labels_path, ndim=1)
    if images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise InputError(
            f"{images_path}: images are {images.shape[1]}×{images.shape[2]}; "
            f"expected {IMAGE_SIZE}×{IMAGE_SIZE}"
        )
    if len(images) != len(labels):
        raise InputError(
            f"{images_path} has {len(images)} images but {labels_path} has {len(labels)} labels"
        )
    if labels.size and labels.max() >= len(CLASS_NAMES):
        raise InputError(
            f"{labels_path}: labels must be < {len(CLASS_NAMES)}; found {int(labels.max())}"
        )
    x = np.empty((*images.shape, 1), dtype=np.float32)
    np.divide(images[..., None], np.float32(255), out=x)
    return x, labels.astype(np.int64)
