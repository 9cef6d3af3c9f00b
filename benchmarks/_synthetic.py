"""Synthetic model outputs shaped like the codelab's, as ``ModelOutputs`` (our venv only)."""

from __future__ import annotations

from _tfp_data import codelab_arrays
from memberscope import ModelOutputs


def codelab_outputs(seed: int = 0, n_members: int = 50_000, n_nonmembers: int = 10_000,
                    num_classes: int = 10, leak: float = 1.0) -> ModelOutputs:
    """Logits where members' true-class logit is ``leak`` higher on average (leak=0: no signal).

    The same numbers as ``_tfp_data.codelab_arrays``, which the TF Privacy scripts use.
    """
    return ModelOutputs.from_train_test(
        **codelab_arrays(seed, n_members, n_nonmembers, num_classes, leak))
