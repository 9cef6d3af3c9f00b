"""The layout-safe Conv2d per-example gradients, the detached-weight DP forward pass, and DP
steps of every grad-sample mode against Opacus' functorch route."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("opacus")

from memberscope.train.dp.grad_samplers import (  # noqa: E402
    conv2d_grad_sample,
    conv_weights_detached,
)
from memberscope.train.models import small_cnn  # noqa: E402
from memberscope.train.settings import DPSettings, TrainSettings  # noqa: E402
from memberscope.train.trainer import Trainer  # noqa: E402

pytestmark = pytest.mark.torch

LAYOUTS = [torch.contiguous_format, torch.channels_last]


def _per_example_oracle(conv: torch.nn.Conv2d, x: torch.Tensor, output_grad: torch.Tensor
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """One backward pass per example: slow and obviously right."""
    weights, biases = [], []
    for i in range(len(x)):
        conv.zero_grad()
        conv(x[i:i + 1].contiguous()).backward(output_grad[i:i + 1].contiguous())
        weights.append(conv.weight.grad.clone())
        biases.append(conv.bias.grad.clone())
    return torch.stack(weights), torch.stack(biases)


@pytest.mark.parametrize("layout", LAYOUTS, ids=["nchw", "channels_last"])
@pytest.mark.parametrize("options", [
    {"kernel_size": 3},
    {"kernel_size": 3, "padding": 1},
    {"kernel_size": 3, "stride": 2},
    {"kernel_size": 3, "dilation": 2, "padding": "same"},
    {"kernel_size": (2, 3), "padding": (1, 2), "stride": (2, 1)},
    {"kernel_size": 3, "groups": 3},
], ids=["plain", "padded", "strided", "dilated-same", "rectangular", "grouped"])
@pytest.mark.parametrize("channels", [3, 18], ids=["3-channels", "18-channels"])
def test_conv_per_example_gradients_equal_one_backward_per_example(layout, options,
                                                                   channels) -> None:
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(channels, 6, **options)
    x = torch.randn(5, channels, 11, 9).contiguous(memory_format=layout)
    output = conv(x)
    output_grad = torch.randn_like(output).contiguous(memory_format=layout)
    result = conv2d_grad_sample(conv, [x], output_grad)
    weights, biases = _per_example_oracle(conv, x, output_grad)
    torch.testing.assert_close(result[conv.weight], weights, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(result[conv.bias], biases, rtol=1e-4, atol=1e-5)


def test_detached_weights_skip_the_weight_gradient_only_inside_the_block() -> None:
    torch.manual_seed(0)
    model = small_cnn((12, 12, 3), 4, 2)
    x = torch.randn(4, 3, 12, 12)
    with conv_weights_detached(model):
        inside = model(x)
    inside.sum().backward()
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert all(conv.weight.grad is None and conv.bias.grad is not None for conv in convs)
    assert all("forward" not in vars(conv) for conv in convs)
    model.zero_grad()
    outside = model(x)
    torch.testing.assert_close(outside, inside)
    outside.sum().backward()
    assert all(conv.weight.grad is not None for conv in convs)


@pytest.mark.parametrize("channels", [1, 3])
def test_direct_and_hooks_modes_take_the_same_dp_step_as_functorch(channels: int) -> None:
    # With no noise a DP step is deterministic: both routes must clip and sum the same
    # per-example gradients, so the weights after a few steps agree.
    rng = np.random.default_rng(0)
    x = rng.random((64, 14, 14, channels), dtype=np.float32)
    y = rng.integers(0, 5, 64)
    weights = {}
    for mode in ("direct", "hooks", "functorch", "ew"):
        torch.manual_seed(0)
        trainer = Trainer(small_cnn((14, 14, channels), 5, 2), x, y, TrainSettings(
            epochs=1, batch_size=16, seed=3,
            dp=DPSettings(noise_multiplier=0.0, max_grad_norm=0.5, grad_sample_mode=mode,
                          poisson_sampling=False)), device="cpu")
        assert trainer.channels_last == (mode != "ew")
        trainer.train_epoch()
        weights[mode] = [p.detach().clone() for p in trainer.model.parameters()]
    for ours in ("direct", "hooks", "ew"):
        for mine, theirs in zip(weights[ours], weights["functorch"], strict=True):
            torch.testing.assert_close(mine, theirs, rtol=1e-4, atol=1e-5)
