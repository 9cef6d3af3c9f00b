"""The default ``train_and_score`` of reference models: the project's PyTorch trainer
(:mod:`memberscope.train`) on the recipe's model, then logits of every query view.

torch is imported lazily (this module is only loaded by workers that train).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from memberscope.errors import InputError, require
from memberscope.reference.queries import query_view
from memberscope.reference.recipe import TrainingRecipe

CACHE_TAG = "memberscope.train-2"
"""Part of every cache key of this trainer; bump it when what it computes changes."""


def _nhwc(x: np.ndarray) -> np.ndarray:
    array = np.asarray(x, dtype=np.float32)
    if array.ndim == 3:
        array = array[..., None]
    if array.ndim != 4:
        raise InputError(f"images must be (N, H, W) or (N, H, W, C); got shape {array.shape}")
    return array


def recipe_model(recipe: TrainingRecipe, input_shape: tuple[int, ...], num_classes: int,
                 seed: int) -> Any:
    """The recipe's model (:func:`memberscope.train.models.build_model` with the recipe's
    ``architecture`` and ``architecture_args``; ``num_conv`` defaults to 3), seeded by
    ``seed``."""
    from memberscope.train.models import build_model

    args = dict(recipe.architecture_args)
    allowed = {"num_conv", "activation", "hidden"}
    unknown = sorted(set(args) - allowed)
    if unknown:
        raise InputError(f"architecture_args: unknown key(s) {unknown}; valid: {sorted(allowed)}")
    return build_model(recipe.architecture, input_shape, num_classes, seed=seed, **args)


def train_and_score(recipe: TrainingRecipe, x: np.ndarray, y: np.ndarray,
                    member_index: np.ndarray, query_x: np.ndarray, query_y: np.ndarray,
                    seed: int) -> np.ndarray:
    """Train on ``x[member_index]`` and return logits of every query of ``query_x``.

    Parameters
    ----------
    x : (N, H, W[, C]) float
        Population images, NHWC.
    y : (N,) int
    member_index : (k,) int
        The training examples.
    query_x, query_y : (n, H, W[, C]), (n,)
        Examples to score.
    seed : int
        Seeds the initial weights and the batch order.

    Returns
    -------
    (q, n, C) float32
        Logits of each of the recipe's queries of each example.
    """
    require("torch", "torch", "training reference models")
    from memberscope.train.settings import TrainSettings
    from memberscope.train.trainer import Trainer, as_model_input, predict_logits

    images = _nhwc(x)
    num_classes = int(max(np.max(y), np.max(query_y))) + 1
    model = recipe_model(recipe, images.shape[1:], num_classes, seed)
    settings = TrainSettings(epochs=recipe.epochs, batch_size=recipe.batch_size,
                             learning_rate=recipe.learning_rate, optimizer=recipe.optimizer,
                             seed=seed % 2**31)
    trainer = Trainer(model, images[member_index], np.asarray(y)[member_index], settings)
    trainer.fit()
    queries = _nhwc(query_x)
    views = [predict_logits(trainer.model, as_model_input(
        np.ascontiguousarray(query_view(queries, name)), trainer.device))
        for name in recipe.queries]
    return np.stack(views)


train_and_score.cache_tag = CACHE_TAG  # type: ignore[attr-defined]
