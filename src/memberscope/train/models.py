"""Model builders: the codelab's small CNN for images and an MLP for tabular data.

Both return a plain ``torch.nn.Sequential`` so Opacus can compute per-example gradients for
every layer. torch is imported inside the functions: importing this module needs no torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from memberscope._validation import layer_sizes
from memberscope.errors import InputError, UnknownNameError

if TYPE_CHECKING:
    import torch

ACTIVATIONS = ("relu", "tanh", "elu", "gelu", "sigmoid")
POOL_COMMUTES = ("relu", "tanh", "elu", "sigmoid")
"""Non-decreasing activations, which commute with max-pooling (GELU dips below zero)."""
CONV_FILTERS = 32
CONV_KERNEL = 3
POOL = 2
DENSE_UNITS = 64


def _activation(name: str) -> torch.nn.Module:
    from torch import nn

    layers = {"relu": nn.ReLU, "tanh": nn.Tanh, "elu": nn.ELU, "gelu": nn.GELU,
              "sigmoid": nn.Sigmoid}
    if name not in layers:
        raise UnknownNameError("activation", name, ACTIVATIONS)
    return layers[name]()


def conv_output_side(side: int, num_conv: int) -> int:
    """Spatial side after ``num_conv`` rounds of a valid 3×3 conv and a 2×2 max-pool (floor),
    as Keras' ``Conv2D(32, (3, 3))`` + ``MaxPooling2D()`` compute it."""
    for _ in range(num_conv):
        if side < CONV_KERNEL:
            return 0
        side = (side - (CONV_KERNEL - 1)) // POOL
    return side


def small_cnn(input_shape: Sequence[int], num_classes: int, num_conv: int,
              activation: str = "relu") -> torch.nn.Sequential:
    """The TF Privacy codelab's CNN: ``num_conv`` × (Conv 32 3×3 valid + activation +
    MaxPool 2×2), Flatten, Dense 64, Dense ``num_classes`` (logits).

    For non-decreasing activations the pool runs before the activation: the same function,
    cheaper. Parameter names (``0.weight``, ``3.weight``, ...) do not depend on the order.

    Parameters
    ----------
    input_shape : (H, W, C)
        Image shape in the datasets' NHWC layout; the model itself takes NCHW tensors
        (``x.permute(0, 3, 1, 2)``, ideally in ``torch.channels_last`` memory format).
    num_classes : int
        Number of output logits, >= 2.
    num_conv : int
        Number of conv + pool blocks, >= 1; the image must stay at least 1×1 after them.
    activation : str
        One of relu, tanh, elu, gelu, sigmoid.

    Returns
    -------
    torch.nn.Sequential
        Maps (N, C, H, W) float32 to (N, num_classes) logits.

    Examples
    --------
    >>> model = small_cnn((32, 32, 3), 10, num_conv=3)  # doctest: +SKIP
    >>> sum(p.numel() for p in model.parameters())       # doctest: +SKIP
    """
    from torch import nn

    if len(input_shape) != 3:
        raise InputError(f"input_shape must be (height, width, channels); got {tuple(input_shape)}")
    height, width, channels = (int(v) for v in input_shape)
    if min(height, width, channels) < 1:
        raise InputError(f"input_shape must be positive; got {tuple(input_shape)}")
    if num_conv < 1:
        raise InputError(f"num_conv must be >= 1; got {num_conv}")
    if num_classes < 2:
        raise InputError(f"num_classes must be >= 2; got {num_classes}")
    out_h, out_w = conv_output_side(height, num_conv), conv_output_side(width, num_conv)
    if min(out_h, out_w) < 1:
        raise InputError(
            f"input_shape {tuple(input_shape)} is too small for {num_conv} conv layers: each "
            f"3x3 conv + 2x2 pool shrinks a side s to (s-2)//2, leaving {out_h}x{out_w}")
    layers: list[nn.Module] = []
    in_channels = channels
    for _ in range(num_conv):
        block = [_activation(activation), nn.MaxPool2d(POOL)]
        if activation in POOL_COMMUTES:
            # max(f(a), f(b)) = f(max(a, b)) for a non-decreasing f: pooling first is the
            # same function (and gradient), with the activation on a quarter of the values.
            block.reverse()
        layers += [nn.Conv2d(in_channels, CONV_FILTERS, CONV_KERNEL), *block]
        in_channels = CONV_FILTERS
    layers += [nn.Flatten(), nn.Linear(CONV_FILTERS * out_h * out_w, DENSE_UNITS),
               _activation(activation), nn.Linear(DENSE_UNITS, num_classes)]
    return nn.Sequential(*layers)


def mlp(input_dim: int, num_classes: int, hidden: Sequence[int] = (128,),
        activation: str = "relu") -> torch.nn.Sequential:
    """A multi-layer perceptron for tabular data: (N, input_dim) -> (N, num_classes) logits.

    Parameters
    ----------
    input_dim : int
        Number of features; images are flattened by the trainer.
    hidden : sizes of the hidden layers (may be empty: multinomial logistic regression).
    """
    from torch import nn

    if input_dim < 1:
        raise InputError(f"input_dim must be >= 1; got {input_dim}")
    if num_classes < 2:
        raise InputError(f"num_classes must be >= 2; got {num_classes}")
    sizes = layer_sizes("mlp", hidden)
    layers: list[nn.Module] = [nn.Flatten()]
    width = input_dim
    for size in sizes:
        layers += [nn.Linear(width, size), _activation(activation)]
        width = size
    layers.append(nn.Linear(width, num_classes))
    return nn.Sequential(*layers)


MODELS = ("small_cnn", "mlp")
"""Model kinds :func:`build_model` builds, by name (experiment variants and reference models)."""


def build_model(kind: str, input_shape: Sequence[int], num_classes: int, *, num_conv: int = 3,
                activation: str = "relu", hidden: Sequence[int] = (128,),
                seed: int | None = None) -> torch.nn.Sequential:
    """A model by kind name: :func:`small_cnn` (``num_conv``, ``activation``) for (H, W, C)
    images, or :func:`mlp` (``hidden``, ``activation``) on the flattened example.

    Parameters
    ----------
    kind : "small_cnn" | "mlp"
    input_shape : shape of one example, (H, W, C) for images
    num_classes : int
    seed : int, optional
        Seeds the initial weights without touching torch's global random state; None draws
        them from torch's global generator.
    """
    import torch

    if kind not in MODELS:
        raise UnknownNameError("model", kind, MODELS)
    shape = tuple(int(v) for v in input_shape)
    if kind == "small_cnn" and len(shape) != 3:
        raise InputError(f"model small_cnn needs images (height, width, channels); the "
                         f"examples have shape {shape}: use model = \"mlp\"")

    def build() -> torch.nn.Sequential:
        if kind == "small_cnn":
            return small_cnn(shape, num_classes, num_conv, activation)
        return mlp(int(np.prod(shape)), num_classes, hidden, activation)

    if seed is None:
        return build()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()
