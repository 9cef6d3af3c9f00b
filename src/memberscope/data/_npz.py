"""Any dataset saved as plain arrays in an ``.npz`` (read with ``allow_pickle=False``).

The file holds either ``x_train``, ``y_train``, ``x_test``, ``y_test`` or ``x`` and ``y``, which
are then split with :func:`stratified_split` (``test_fraction`` of every class to test).

``x`` may be ``(n, d)`` (tabular), ``(n, h, w)`` (grayscale images, a channel axis is added) or
``(n, h, w, c)`` (images, NHWC). uint8 arrays are taken as 8-bit pixels and divided by 255,
as the codelab does; any other numeric dtype is used as it is, cast to float32.
Labels are integer classes from 0; ``num_classes`` is the largest label + 1.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from memberscope.data._dataset import Dataset
from memberscope.data._sampling import stratified_split
from memberscope.errors import InputError

SPLIT_KEYS = ("x_train", "y_train", "x_test", "y_test")
NPZ_TEST_FRACTION = 0.2


def load_npz_dataset(
    path: str | Path, *, split_seed: int = 0, test_fraction: float = NPZ_TEST_FRACTION
) -> Dataset:
    """Load an ``.npz`` dataset; the name is the file's stem.

    Parameters
    ----------
    path : path
        The ``.npz`` file.
    split_seed : int
        Seed of the split when the file holds only ``x`` and ``y``.
    test_fraction : float
        Fraction of every class put in the test split in that case.

    Raises
    ------
    InputError
        The file is missing or unreadable, holds object arrays, lacks the arrays, or their
        shapes do not fit together; the message names the array.
    """
    path = Path(path)
    arrays = _read_arrays(path)
    if all(key in arrays for key in SPLIT_KEYS):
        x_train, y_train = _pair(arrays, "x_train", "y_train", path)
        x_test, y_test = _pair(arrays, "x_test", "y_test", path)
    elif "x" in arrays and "y" in arrays:
        x, y = _pair(arrays, "x", "y", path)
        train, test = stratified_split(y, test_fraction, split_seed)
        x_train, y_train, x_test, y_test = x[train], y[train], x[test], y[test]
    else:
        raise InputError(
            f"{path} must hold arrays {', '.join(SPLIT_KEYS)} or x and y; "
            f"it holds {', '.join(sorted(arrays)) or 'no arrays'}"
        )
    if x_train.shape[1:] != x_test.shape[1:]:
        raise InputError(
            f"{path}: x_train rows have shape {x_train.shape[1:]} but x_test rows have "
            f"{x_test.shape[1:]}"
        )
    num_classes = max(int(y_train.max()), int(y_test.max())) + 1
    return Dataset(
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        name=path.stem,
        num_classes=max(num_classes, 2),
        input_shape=x_train.shape[1:],
    )


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise InputError(f"dataset file {path} does not exist")
    with path.open("rb") as handle:
        magic = handle.read(4)
    if magic != b"PK\x03\x04":  # an .npz is a zip archive
        raise InputError(f"{path} is not a readable .npz file (no zip header)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise InputError(f"{path} holds object arrays, which are never unpickled") from exc
        raise InputError(f"{path} is not a readable .npz file: {exc}") from exc
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise InputError(f"{path} is not a readable .npz file: {exc}") from exc


def _pair(
    arrays: dict[str, np.ndarray], x_key: str, y_key: str, path: Path
) -> tuple[np.ndarray, np.ndarray]:
    """Return features (float32, NHWC or (n, d)) and labels of one split, checked."""
    x, y = arrays[x_key], arrays[y_key]
    if x.dtype == np.uint8:
        features = x.astype(np.float32) / np.float32(255)
    elif np.issubdtype(x.dtype, np.number) or x.dtype == bool:
        features = x.astype(np.float32)
    else:
        raise InputError(f"{path}: {x_key} must hold numbers; got dtype {x.dtype}")
    if features.ndim == 3:
        features = features[..., None]
    if features.ndim not in (2, 4):
        raise InputError(
            f"{path}: {x_key} must be (n, d), (n, h, w) or (n, h, w, c); got shape {x.shape}"
        )
    if y.ndim != 1:
        raise InputError(f"{path}: {y_key} must be 1-dimensional; got shape {y.shape}")
    if len(y) != len(x):
        raise InputError(f"{path}: {x_key} has {len(x)} rows but {y_key} has {len(y)}")
    if len(y) == 0:
        raise InputError(f"{path}: {x_key} is empty")
    if not np.issubdtype(y.dtype, np.integer):
        raise InputError(f"{path}: {y_key} must hold integer class labels; got dtype {y.dtype}")
    if y.min() < 0:
        raise InputError(f"{path}: {y_key} must be >= 0; found {int(y.min())}")
    return features, y.astype(np.int64)
