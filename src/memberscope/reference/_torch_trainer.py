"""A minimal PyTorch trainer for recipes: the default ``train_and_score`` of reference models.

Imports torch lazily (this module is only loaded by workers that train).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from memberscope.errors import InputError, require
from memberscope.reference.queries import query_view
from memberscope.reference.recipe import TrainingRecipe

INFERENCE_BATCH = 1024


def _nhwc(x: np.ndarray) -> np.ndarray:
    array = np.asarray(x, dtype=np.float32)
    if array.ndim == 3:
        array = array[..., None]
    if array.ndim != 4:
        raise InputError(f"images must be (N, H, W) or (N, H, W, C); got shape {array.shape}")
    return array


def build_model(recipe: TrainingRecipe, input_shape: tuple[int, ...], num_classes: int) -> Any:
    """The recipe's model; ``small_cnn`` follows the TF Privacy codelab: ``num_conv`` blocks of
    Conv(32, 3×3) + activation + MaxPool(2), then Dense(64) + activation, Dense(classes)."""
    from torch import nn

    if recipe.architecture != "small_cnn":
        raise InputError(f"unknown architecture {recipe.architecture!r}; valid: small_cnn")
    args = {"num_conv": 3, "activation": "relu", **recipe.architecture_args}
    activation = {"relu": nn.ReLU, "tanh": nn.Tanh}[str(args["activation"])]
    height, width, channels = input_shape
    layers: list[Any] = []
    for _ in range(int(args["num_conv"])):
        layers += [nn.Conv2d(channels, 32, 3), activation(), nn.MaxPool2d(2)]
        channels, height, width = 32, (height - 2) // 2, (width - 2) // 2
    layers += [nn.Flatten(), nn.Linear(channels * height * width, 64), activation(),
               nn.Linear(64, num_classes)]
    return nn.Sequential(*layers)


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

    Returns
    -------
    (q, n, C) float32
        Logits of each of the recipe's queries of each example.
    """
    torch: Any = require("torch", "torch", "training reference models")
    from torch import nn

    torch.manual_seed(seed)
    images = _nhwc(x)
    num_classes = int(max(np.max(y), np.max(query_y))) + 1
    model = build_model(recipe, images.shape[1:], num_classes)
    optimizer_class = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD}[recipe.optimizer]
    optimizer = optimizer_class(model.parameters(), lr=recipe.learning_rate)
    train_x = torch.from_numpy(np.ascontiguousarray(images[member_index].transpose(0, 3, 1, 2)))
    train_y = torch.from_numpy(np.asarray(y)[member_index].astype(np.int64))
    generator = torch.Generator().manual_seed(seed)
    loss_function = nn.CrossEntropyLoss()
    model.train()
    for _ in range(recipe.epochs):
        order = torch.randperm(len(train_y), generator=generator)
        for start in range(0, len(order), recipe.batch_size):
            batch = order[start:start + recipe.batch_size]
            optimizer.zero_grad(set_to_none=True)
            loss_function(model(train_x[batch]), train_y[batch]).backward()
            optimizer.step()
    model.eval()
    queries = _nhwc(query_x)
    logits = np.empty((len(recipe.queries), len(queries), num_classes), dtype=np.float32)
    with torch.inference_mode():
        for q, name in enumerate(recipe.queries):
            view = query_view(queries, name)
            for start in range(0, len(view), INFERENCE_BATCH):
                chunk = np.ascontiguousarray(
                    view[start:start + INFERENCE_BATCH].transpose(0, 3, 1, 2))
                logits[q, start:start + INFERENCE_BATCH] = model(torch.from_numpy(chunk)).numpy()
    return logits
