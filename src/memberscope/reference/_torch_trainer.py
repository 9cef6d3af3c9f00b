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

CACHE_TAG = "memberscope.train-1"
"""Part of every cache key of this trainer; bump it when what it computes changes."""


def _nhwc(x: np.ndarray) -> np.ndarray:
    array = np.asarray(x, dtype=np.float32)
    if array.ndim == 3:
        array = array[..., None]
    if array.ndim != 4:
        raise InputError(f"images must be (N, H, W) or (N, H, W, C); got shape {array.shape}")
    return array


def build_model(recipe: TrainingRecipe, input_shape: tuple[int, ...], num_classes: int) -> Any:
    """The recipe's model: ``small_cnn`` (the TF Privacy codelab's CNN) with the recipe's
    ``architecture_args`` (``num_conv``, default 3, and ``activation``, default relu)."""
    from memberscope.train.models import small_cnn

    if recipe.architecture != "small_cnn":
        raise InputError(f"unknown architecture {recipe.architecture!r}; valid: small_cnn")
    args = {"num_conv": 3, "activation": "relu", **recipe.architecture_args}
    return small_cnn(input_shape, num_classes, num_conv=int(args["num_conv"]),
                     activation=str(args["activation"]))


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
    torch: Any = require("torch", "torch", "training reference models")
    from memberscope.train.settings import TrainSettings
    from memberscope.train.trainer import Trainer, as_model_input, predict_logits

    images = _nhwc(x)
    num_classes = int(max(np.max(y), np.max(query_y))) + 1
    torch.manual_seed(seed)
    model = build_model(recipe, images.shape[1:], num_classes)
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
