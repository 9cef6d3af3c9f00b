"""Training settings as frozen, validated dataclasses (no torch needed to build them).

DP's own settings live with the rest of DP, in :mod:`memberscope.train.dp.settings`."""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral

from memberscope.errors import InputError, UnknownNameError
from memberscope.train.dp.settings import DPSettings

__all__ = ["OPTIMIZERS", "DPSettings", "TrainSettings"]

OPTIMIZERS = ("adam", "adamw", "sgd")
"""Optimizer names of every trainer (experiment variants and reference models alike)."""


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
        if self.epochs < 1:
            raise InputError(f"epochs must be >= 1; got {self.epochs}")
        if self.batch_size < 1:
            raise InputError(f"batch_size must be >= 1; got {self.batch_size}")
        if not self.learning_rate > 0:
            raise InputError(f"learning_rate must be > 0; got {self.learning_rate}")
        if self.optimizer not in OPTIMIZERS:
            raise UnknownNameError("optimizer", self.optimizer, OPTIMIZERS)
        if not 0 <= self.momentum < 1:
            raise InputError(f"momentum must be in [0, 1); got {self.momentum}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, Integral) or self.seed < 0:
            raise InputError(f"seed must be an int >= 0; got {self.seed!r}")
        if self.weight_decay < 0:
            raise InputError(f"weight_decay must be >= 0; got {self.weight_decay}")
