"""scikit-learn's bundled digits: 1,797 8×8 grayscale images of handwritten digits 0–9.

No download: the data ships with scikit-learn. There is no official split, so it is split
here with :func:`stratified_split`: half of every class is test (899 train / 898 test), which
gives a balanced member/non-member audit. Pixel values are 0–16 and are divided by 16 into
[0, 1]; images are (n, 8, 8, 1) float32.
"""

from __future__ import annotations

import numpy as np

from memberscope.data._dataset import Dataset
from memberscope.data._sampling import stratified_split

DIGITS_TEST_FRACTION = 0.5
DIGITS_MAX_VALUE = 16.0


def load_digits(*, split_seed: int = 0) -> Dataset:
    """Load the digits with a fixed stratified half/half split seeded by ``split_seed``."""
    from sklearn.datasets import load_digits as sklearn_load_digits

    bunch = sklearn_load_digits()
    images = np.asarray(bunch.images, dtype=np.float32) / np.float32(DIGITS_MAX_VALUE)
    labels = np.asarray(bunch.target, dtype=np.int64)
    train, test = stratified_split(labels, DIGITS_TEST_FRACTION, split_seed)
    x = images[..., None]
    return Dataset(
        x_train=x[train],
        y_train=labels[train],
        x_test=x[test],
        y_test=labels[test],
        name="digits",
        num_classes=10,
        input_shape=(8, 8, 1),
        class_names=tuple(str(d) for d in range(10)),
    )
