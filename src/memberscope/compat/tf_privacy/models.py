"""TF Privacy's trained attackers, fitting memberscope's attack models.

``create_attacker_data`` lays out an attacker's training data as TF Privacy does (the logits
or probabilities and the loss of each example; membership 1 for members; optionally the
larger side subsampled to the smaller), and each attacker class fits the model of the
memberscope attack of the same kind (:func:`memberscope.attacks.trained.fit_attack_model`):
features standardised, deterministic under ``seed``. ``run_attacks`` does not go through
these classes: its trained attacks are memberscope's, cross-validated per slice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from memberscope.attacks.trained import fit_attack_model
from memberscope.compat.tf_privacy.data_structures import AttackInputData, AttackType, DataSize
from memberscope.errors import InputError

logger = logging.getLogger(__name__)


@dataclass
class AttackerData:
    """An attacker's data: ``features_all`` (n, d), ``labels_all`` (n,) 1 for members and 0
    for non-members, their ``sample_weights_all`` (n,) if given, the positions used to train
    (``fold_indices``) and those left out by balancing (``left_out_indices``)."""

    features_all: np.ndarray | None = None
    labels_all: np.ndarray | None = None
    sample_weights_all: np.ndarray | None = None
    fold_indices: np.ndarray | None = None
    left_out_indices: np.ndarray | None = None
    data_size: DataSize | None = None


def _features(predictions: Any, loss: Any) -> np.ndarray:
    columns = [np.asarray(c, dtype=np.float64) for c in (predictions, loss) if c is not None]
    if not columns:
        raise InputError("an attacker needs logits, probs or losses")
    return np.column_stack([c.reshape(len(c), -1) for c in columns])


def create_attacker_data(attack_input_data: AttackInputData, balance: bool = True, *,
                         seed: int = 0) -> AttackerData:
    """Features (the logits or probabilities, then the loss, of each example) and membership
    labels of members then non-members; with ``balance`` a seeded random subset of the
    larger side is left out so both sides train with the same count."""
    train = _features(attack_input_data.logits_or_probs_train, attack_input_data.get_loss_train())
    test = _features(attack_input_data.logits_or_probs_test, attack_input_data.get_loss_test())
    n_train, n_test = len(train), len(test)
    weights = None
    if attack_input_data.has_nonnull_sample_weights():
        weights = np.concatenate([attack_input_data.sample_weight_train,
                                  attack_input_data.sample_weight_test])
    rng = np.random.default_rng(seed)
    index = np.arange(n_train + n_test)
    left_out = np.array([], dtype=np.int64)
    if balance and n_train != n_test:
        larger = index[:n_train] if n_train > n_test else index[n_train:]
        left_out = rng.permutation(larger)[:abs(n_train - n_test)]
    used = np.setdiff1d(index, left_out)
    return AttackerData(features_all=np.concatenate([train, test]),
                        labels_all=np.concatenate([np.ones(n_train), np.zeros(n_test)]),
                        sample_weights_all=weights, fold_indices=rng.permutation(used),
                        left_out_indices=left_out, data_size=DataSize(n_train, n_test))


class TrainedAttacker:
    """An attacker that learns P(member) from features; ``attack_name`` names the memberscope
    attack whose model it fits. ``backend`` is accepted for TF Privacy code and not used:
    the models fit on one thread."""

    attack_name = ""

    def __init__(self, backend: str | None = None, *, seed: int = 0) -> None:
        self.backend = backend
        self.seed = seed
        self.model: Callable[[np.ndarray], np.ndarray] | None = None
        unused = "" if backend is None else f" (backend {backend!r} is not used)"
        logger.info("Using the single-threaded backend for training%s.", unused)

    def train_model(self, input_features: Any, is_training_labels: Any,
                    sample_weight: Any = None) -> None:
        """Fit on ``input_features`` (n, d) and ``is_training_labels`` (n,), 1 = member."""
        if not self.attack_name:
            raise NotImplementedError("TrainedAttacker is a base class; use one of its "
                                      "subclasses (LogisticRegressionAttacker, …)")
        if sample_weight is not None:
            raise InputError("memberscope's attack models train without sample weights; "
                             "leave sample_weight out")
        features = np.asarray(input_features, dtype=np.float64)
        features = features.reshape(len(features), -1)
        self.model = fit_attack_model(self.attack_name, features,
                                      np.asarray(is_training_labels).astype(bool),
                                      seed=self.seed)

    def predict(self, input_features: Any) -> np.ndarray:
        """P(member) of each row of ``input_features`` (n, d)."""
        if self.model is None:
            raise AssertionError("the attacker is not trained yet; call train_model first")
        features = np.asarray(input_features, dtype=np.float64)
        return self.model(features.reshape(len(features), -1))


class LogisticRegressionAttacker(TrainedAttacker):
    """memberscope's ``lr`` model: L2-regularised logistic regression."""

    attack_name = "lr"


class MultilayerPerceptronAttacker(TrainedAttacker):
    """memberscope's ``mlp`` model: a small multi-layer perceptron."""

    attack_name = "mlp"


class RandomForestAttacker(TrainedAttacker):
    """memberscope's ``rf`` model: a random forest."""

    attack_name = "rf"


class KNearestNeighborsAttacker(TrainedAttacker):
    """memberscope's ``knn`` model: k nearest neighbours."""

    attack_name = "knn"


_ATTACKERS: dict[AttackType, type[TrainedAttacker]] = {
    AttackType.LOGISTIC_REGRESSION: LogisticRegressionAttacker,
    AttackType.MULTI_LAYERED_PERCEPTRON: MultilayerPerceptronAttacker,
    AttackType.RANDOM_FOREST: RandomForestAttacker,
    AttackType.K_NEAREST_NEIGHBORS: KNearestNeighborsAttacker,
}


def create_attacker(attack_type: AttackType, backend: str | None = None, *,
                    seed: int = 0) -> TrainedAttacker:
    """The attacker of a trained ``attack_type``."""
    try:
        return _ATTACKERS[attack_type](backend, seed=seed)
    except KeyError:
        raise InputError(f"{attack_type} is not a trained attack; those are "
                         f"{', '.join(t.name for t in _ATTACKERS)}") from None


__all__ = [
    "AttackerData",
    "KNearestNeighborsAttacker",
    "LogisticRegressionAttacker",
    "MultilayerPerceptronAttacker",
    "RandomForestAttacker",
    "TrainedAttacker",
    "create_attacker",
    "create_attacker_data",
]
