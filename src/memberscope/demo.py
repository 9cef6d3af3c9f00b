"""``python -m memberscope.demo``: the built-in default job behind ``make demo``.

Trains a small scikit-learn MLP on the bundled digits data (offline everywhere), saves its
per-example outputs as an ``.npz`` exactly as a user of any framework would, and runs
``memberscope audit`` on that file.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np


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


def main(out_dir: str = "demo-out") -> int:
    """Save the digits outputs and audit them with the CLI."""
    from memberscope.cli import main as cli_main

    outputs_path = save_digits_outputs(Path(out_dir) / "digits_outputs.npz")
    return cli_main(["audit", str(outputs_path), "--attacks", "threshold,lr",
                     "--slices", "entire,class", "--out", str(Path(out_dir) / "audit")])


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
