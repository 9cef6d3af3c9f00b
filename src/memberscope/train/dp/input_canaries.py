"""Black-box input-space canaries: mislabelled training examples (issue 13).

m training examples are drawn (seeded) and each gets a wrong label drawn uniformly from the
other classes; each such (x, wrong label) pair is included in training with probability ½ (an
extra example appended to the training set; the correctly labelled original stays in for every
canary alike). After training, a canary's score is the model's log-probability of its wrong
label (minus its loss; higher = more likely included), which only needs the model's outputs:
the audit a user without access to the training internals can run. Numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from memberscope._seeding import stream_rng
from memberscope.errors import InputError
from memberscope.signals import log_softmax


@dataclass(frozen=True)
class InputCanaries:
    """``index`` (m,) rows of the training set used as canaries, ``wrong_labels`` (m,) the label
    each is trained with when ``included`` (m,) is True."""

    index: np.ndarray
    wrong_labels: np.ndarray
    included: np.ndarray
    seed: int

    def __post_init__(self) -> None:
        if not self.index.shape == self.wrong_labels.shape == self.included.shape:
            raise InputError("index, wrong_labels and included must all be (m,)")

    @property
    def m(self) -> int:
        """Number of canaries."""
        return len(self.index)

    def training_data(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(x, y) with the included canaries appended after the n original rows."""
        chosen = self.index[self.included]
        return (np.concatenate([x, x[chosen]]),
                np.concatenate([y, self.wrong_labels[self.included].astype(y.dtype)]))

    def scores(self, logits: np.ndarray) -> np.ndarray:
        """(m,) log-probability of each canary's wrong label from its (m, C) logits."""
        log_probs = log_softmax(np.asarray(logits, dtype=np.float64))
        return log_probs[np.arange(self.m), self.wrong_labels]


def plan_input_canaries(labels: np.ndarray, num_classes: int, m: int, *,
                        seed: int) -> InputCanaries:
    """Draw m distinct training rows (of ``labels`` (n,)), a wrong label and a fair coin each,
    from the stream ``(seed, "input-canaries")`` (:mod:`memberscope._seeding`; apart from the
    gradient canaries' draws of the same seed)."""
    labels = np.asarray(labels)
    if not 1 <= m <= len(labels):
        raise InputError(f"input canaries m must be in [1, {len(labels)}] (the training "
                         f"examples); got {m}")
    if num_classes < 2:
        raise InputError(f"mislabelled canaries need >= 2 classes; got {num_classes}")
    rng = stream_rng(seed, "input-canaries")
    included = rng.random(m) < 0.5
    index = np.sort(rng.choice(len(labels), size=m, replace=False))
    shift = rng.integers(1, num_classes, size=m)  # never 0: always another class
    wrong = (labels[index] + shift) % num_classes
    return InputCanaries(index.astype(np.int64), wrong.astype(np.int64), included, seed)
