"""Threshold attacks: a single per-example statistic, signed so that higher = member."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from memberscope import signals
from memberscope.attacks._base import Attack
from memberscope.outputs import ModelOutputs


def negative_loss(outputs: ModelOutputs, reference: Any, options: Mapping[str, Any]) -> np.ndarray:
    """−loss: members are fit better, so lower loss means member (Yeom et al. 2018)."""
    return -outputs.loss_values


def negative_entropy(outputs: ModelOutputs, reference: Any,
                     options: Mapping[str, Any]) -> np.ndarray:
    """−entropy of the predicted distribution: members get more confident predictions."""
    return -signals.entropy(outputs.probabilities)


def negative_modified_entropy(outputs: ModelOutputs, reference: Any,
                              options: Mapping[str, Any]) -> np.ndarray:
    """−modified entropy (Song & Mittal 2021), which uses the true label."""
    return -signals.modified_entropy(outputs.probabilities, outputs.known_labels)


def max_confidence(outputs: ModelOutputs, reference: Any, options: Mapping[str, Any]) -> np.ndarray:
    """Largest predicted probability; needs no label (Salem et al. 2019)."""
    return signals.max_confidence(outputs.probabilities)


THRESHOLD_ATTACKS = (
    Attack("threshold", "loss threshold: -loss (Yeom et al.)", "loss, or logits/probs + labels",
           negative_loss),
    Attack("threshold_entropy", "entropy threshold: -entropy of the prediction", "logits or probs",
           negative_entropy),
    Attack("threshold_mentr", "modified-entropy threshold (Song & Mittal)",
           "logits or probs + labels", negative_modified_entropy),
    Attack("threshold_confidence", "max-confidence threshold (Salem et al.)", "logits or probs",
           max_confidence),
)
