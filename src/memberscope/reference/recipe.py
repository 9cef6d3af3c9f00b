"""``TrainingRecipe``: a plain, picklable description of how one model is trained.

It holds only JSON-able values, so it can travel to worker processes and Ray tasks, be written
into configs, and be hashed into cache keys.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from memberscope._validation import field_problems, raise_field_problems
from memberscope.errors import InputError
from memberscope.train.settings import TRAIN_RULES

_TRAINING_KEYS = ("optimizer", "learning_rate", "epochs", "batch_size", "seed")


@dataclass(frozen=True)
class TrainingRecipe:
    """How to train one (reference or target) model.

    Parameters
    ----------
    architecture : str
        Model kind of :func:`memberscope.train.models.build_model`: ``"small_cnn"`` (the TF
        Privacy codelab's CNN) or ``"mlp"``.
    architecture_args : mapping
        Its keyword arguments: ``num_conv`` (default 3), ``activation``, ``hidden``.
    optimizer : {"adam", "adamw", "sgd"}
        :data:`memberscope.train.settings.OPTIMIZERS`, as for experiment variants.
    learning_rate : float
    epochs : int
    batch_size : int
    seed : int
        Base seed; model j is trained with a seed derived from (seed, j).
    queries : tuple of str
        Views scored per example: ``"identity"``, ``"hflip"``, ``"shift:DX:DY"`` (pixels).
        The first is ``"identity"``.
    """

    architecture: str = "small_cnn"
    architecture_args: Mapping[str, Any] = field(default_factory=dict)
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    epochs: int = 10
    batch_size: int = 128
    seed: int = 0
    queries: tuple[str, ...] = ("identity",)

    def __post_init__(self) -> None:
        # What TrainSettings, which the recipe becomes, accepts.
        problems = field_problems(self, {key: TRAIN_RULES[key] for key in _TRAINING_KEYS})
        queries = tuple(self.queries)
        if not queries or queries[0] != "identity":
            problems.append(("queries", f"must start with 'identity'; got {list(queries)}"))
        raise_field_problems(self, problems)
        object.__setattr__(self, "queries", queries)
        object.__setattr__(self, "architecture_args", dict(self.architecture_args))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict."""
        document = asdict(self)
        document["queries"] = list(self.queries)
        return document

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> TrainingRecipe:
        """Inverse of :meth:`to_dict`; unknown keys are refused."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(document) - known)
        if unknown:
            raise InputError(f"TrainingRecipe: unknown key(s) {unknown}; valid: {sorted(known)}")
        values = dict(document)
        if "queries" in values:
            values["queries"] = tuple(values["queries"])
        return cls(**values)

    def digest(self) -> str:
        """SHA-256 of the canonical JSON form: equal recipes, equal digests."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()
