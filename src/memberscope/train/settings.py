"""Training settings as frozen, validated dataclasses (no torch needed to build them).

Each field's rule is stated once, in ``TRAIN_RULES``: ``TrainSettings`` checks itself with
it, and the experiment config and ``TrainingRecipe`` check their values with the same rules.
DP's own settings live with the rest of DP, in :mod:`memberscope.train.dp.settings`."""

from __future__ import annotations

from dataclasses import dataclass

from memberscope._validation import FieldRule, field_problems, raise_field_problems
from memberscope.train.dp.settings import CanarySettings, DPSettings

__all__ = ["OPTIMIZERS", "TRAIN_RULES", "CanarySettings", "DPSettings", "TrainSettings"]

OPTIMIZERS = ("adam", "adamw", "sgd")
"""Optimizer names of every trainer (experiment variants and reference models alike)."""

TRAIN_RULES = {
    "epochs": FieldRule(int, at_least=1),
    "batch_size": FieldRule(int, at_least=1),
    "learning_rate": FieldRule(float, above=0),
    "optimizer": FieldRule(str, names=OPTIMIZERS, name_kind="optimizer"),
    "momentum": FieldRule(float, at_least=0, below=1),
    "weight_decay": FieldRule(float, at_least=0),
    "seed": FieldRule(int, at_least=0),
}


@dataclass(frozen=True)
class TrainSettings:
    """How one model is trained.

    Parameters
    ----------
    epochs : int
        Total epochs (>= 1).
    batch_size : int
        Examples per step (the expected size under Poisson sampling).
    learning_rate : float
    optimizer : "adam" | "adamw" | "sgd"
        With ``dp`` set, these become DP-Adam, DP-AdamW, DP-SGD.
    seed : int
        Seeds batch order, Poisson sampling and DP noise (the model's initial weights are
        seeded by whoever builds the model).
    """

    epochs: int
    batch_size: int = 50
    learning_rate: float = 1e-3
    optimizer: str = "adam"
    momentum: float = 0.0
    weight_decay: float = 0.0
    seed: int = 0
    dp: DPSettings | None = None

    def __post_init__(self) -> None:
        raise_field_problems(self, field_problems(self, TRAIN_RULES))
