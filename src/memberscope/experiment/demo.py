"""What ``make demo`` runs, as data and helpers; ``memberscope demo`` (:mod:`memberscope.cli.demo`)
drives them through the CLI.

The embedded quickstart experiment (``examples/quickstart.toml``: the TF Privacy codelab's
2- vs 3-conv-layer CNNs and a DP-Adam variant on Fashion-MNIST, audited every 2 epochs) runs
with ``memberscope run``. Where Fashion-MNIST is not available (no Debian package, no cached
copy, no network) the demo says so and runs the same experiment on scikit-learn's bundled
digits instead. Without torch it falls back further, to auditing a scikit-learn model's saved
outputs.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np

QUICKSTART = "quickstart.toml"
DIGITS_NOTICE = (
    "notice: Fashion-MNIST is not available here (install it with `apt-get install "
    "dataset-fashion-mnist`, or let memberscope download it); running the quickstart on "
    "scikit-learn's bundled digits instead (8x8 images: 1 conv layer instead of 2 and 3)")


def quickstart_text() -> str:
    """The embedded quickstart config."""
    packaged = resources.files("memberscope").joinpath("experiment", "examples", QUICKSTART)
    return packaged.read_text("utf-8")


def fashion_mnist_available() -> bool:
    """Whether Fashion-MNIST loads without a download failing."""
    from memberscope.data import load_dataset

    try:
        load_dataset("fashion_mnist")
    except Exception:  # any failure (missing files, no network) means: fall back
        return False
    return True


def digits_config(text: str) -> str:
    """The quickstart config rewritten for digits: its 8x8 images allow one conv layer, so the
    variants become 1 conv layer vs an MLP, plus DP-Adam. The training and audit settings stay:
    digits' 899 training images are fewer than the quickstart's subset, so all are members."""
    replacements = {
        'name = "quickstart"': 'name = "quickstart_digits"',
        'name = "fashion_mnist"': 'name = "digits"',
        'nonmembers = "train"': 'nonmembers = "test"',
        'label = "2 layers"\nmodel = "small_cnn"\nnum_conv = 2':
            'label = "MLP"\nmodel = "mlp"\nhidden = [128]',
        'label = "3 layers"\nmodel = "small_cnn"\nnum_conv = 3':
            'label = "1 layer"\nmodel = "small_cnn"\nnum_conv = 1',
        'label = "3 layers, DP-Adam"\nmodel = "small_cnn"\nnum_conv = 3':
            'label = "1 layer, DP-Adam"\nmodel = "small_cnn"\nnum_conv = 1',
    }
    for old, new in replacements.items():
        if old not in text:
            raise RuntimeError(f"the embedded quickstart changed; cannot adapt {old!r}")
        text = text.replace(old, new)
    return text


def save_digits_outputs(path: Path, seed: int = 0) -> Path:
    """Train an over-fitting MLP on half of digits; save logits of members and non-members."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier

    images, labels = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(
        images / 16.0, labels, test_size=0.5, random_state=seed, stratify=labels)
    model = MLPClassifier(hidden_layer_sizes=(128,), alpha=0.0, max_iter=400, random_state=seed)
    model.fit(x_train, y_train)
    probs_train = np.clip(model.predict_proba(x_train), 1e-12, 1.0)
    probs_test = np.clip(model.predict_proba(x_test), 1e-12, 1.0)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, logits_train=np.log(probs_train), logits_test=np.log(probs_test),
             labels_train=y_train, labels_test=y_test)
    return path
