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
    # float64: the oracle and the sampler sum in different orders, exactly enough there.
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(channels, 6, **options).double()
    x = torch.randn(5, channels, 11, 9, dtype=torch.float64).contiguous(memory_format=layout)
    output = conv(x)
    output_grad = torch.randn_like(output).contiguous(memory_format=layout)
    result = conv2d_grad_sample(conv, [x], output_grad)
    weights, biases = _per_example_oracle(conv, x, output_grad)
    torch.testing.assert_close(result[conv.weight], weights, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(result[conv.bias], biases, rtol=1e-10, atol=1e-12)


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


def _clipped_sum_float64(model: torch.nn.Module, x: np.ndarray, y: np.ndarray,
                         max_grad_norm: float) -> list[torch.Tensor]:
    """The sum over examples of each one's own gradient, clipped to norm C, in float64: what
    one DP step adds up before the noise (Opacus' factor min(1, C / (norm + 1e-6)))."""
    model = model.double()
    inputs = torch.as_tensor(x, dtype=torch.float64).permute(0, 3, 1, 2).contiguous()
    labels = torch.as_tensor(y)
    params = list(model.parameters())
    total = [torch.zeros_like(p) for p in params]
    for i in range(len(x)):
        loss = torch.nn.functional.cross_entropy(model(inputs[i:i + 1]), labels[i:i + 1])
        grads = torch.autograd.grad(loss, params)
        norm = float(torch.sqrt(sum((g ** 2).sum() for g in grads)))
        factor = min(1.0, max_grad_norm / (norm + 1e-6))
        total = [t + factor * g for t, g in zip(total, grads, strict=True)]
    return total


@pytest.mark.parametrize("mode", ["direct", "hooks", "ew", "functorch"])
@pytest.mark.parametrize("channels", [1, 3])
def test_every_mode_takes_the_dp_step_of_clipped_per_example_gradients(channels: int,
                                                                       mode: str) -> None:
    # What DP defines for one step: the sum of the clipped per-example gradients (plus noise,
    # here 0). With SGD at learning rate 1 and one batch of B examples the step is that sum
    # divided by B. Compared with a float64 oracle, not between routes after several Adam
    # steps, whose float32 rounding differs with the CPU's kernels.
    rng = np.random.default_rng(0)
    n, max_grad_norm = 16, 0.5
    x = rng.random((n, 14, 14, channels), dtype=np.float32)
    y = rng.integers(0, 5, n)
    torch.manual_seed(0)
    model = small_cnn((14, 14, channels), 5, 2)
    oracle = small_cnn((14, 14, channels), 5, 2)
    oracle.load_state_dict(model.state_dict())
    expected = _clipped_sum_float64(oracle, x, y, max_grad_norm)
    before = [p.detach().double().clone() for p in model.parameters()]
    trainer = Trainer(model, x, y, TrainSettings(
        epochs=1, batch_size=n, optimizer="sgd", learning_rate=1.0, seed=3,
        dp=DPSettings(noise_multiplier=0.0, max_grad_norm=max_grad_norm, grad_sample_mode=mode,
                      poisson_sampling=False)), device="cpu")
    assert trainer.channels_last == (mode != "ew")
    assert trainer.train_epoch().examples == n  # one step
    scale = max(float(e.abs().max()) for e in expected)
    for start, param, want in zip(before, trainer.model.parameters(), expected, strict=True):
        step_sum = (start - param.detach().double()) * n
        # float32 arithmetic against float64: relative 1e-4 of the largest entry.
        torch.testing.assert_close(step_sum, want, rtol=1e-4, atol=1e-4 * scale)


@pytest.mark.filterwarnings("ignore:Full backward hook is firing")
@pytest.mark.parametrize("mode", ["direct", "hooks", "functorch"])
def test_extra_examples_are_clipped_and_summed_like_the_batch(mode: str) -> None:
    # The way in for white-box canaries: gradients added before clipping, on every route.
    from memberscope.train.dp.engine import make_private
    from memberscope.train.trainer import as_model_input

    rng = np.random.default_rng(1)
    n, max_grad_norm = 8, 0.5
    x = rng.random((n, 10, 10, 3), dtype=np.float32)
    y = rng.integers(0, 5, n)
    torch.manual_seed(0)
    model = small_cnn((10, 10, 3), 5, 1)
    oracle = small_cnn((10, 10, 3), 5, 1)
    oracle.load_state_dict(model.state_dict())
    params = list(model.parameters())
    canaries = {p: torch.randn(2, *p.shape) * 10 for p in params[:2]}  # norms >> C
    expected = _clipped_sum_float64(oracle, x, y, max_grad_norm)
    canary_norms = torch.sqrt(sum((g.double() ** 2).flatten(1).sum(1) for g in canaries.values()))
    factors = (max_grad_norm / (canary_norms + 1e-6)).clamp(max=1.0)
    for index, param in enumerate(params[:2]):
        expected[index] += torch.einsum("k,k...->...", factors, canaries[param].double())
    model = model.to(memory_format=torch.channels_last)
    private = make_private(model, torch.optim.SGD(model.parameters(), lr=1.0), DPSettings(
        noise_multiplier=0.0, max_grad_norm=max_grad_norm, grad_sample_mode=mode),
        sample_rate=0.5, expected_batch_size=n, steps=1)
    before = [p.detach().double().clone() for p in params]
    with private.forward_context():
        logits = private.module(as_model_input(x))
    loss_fn = torch.nn.CrossEntropyLoss(reduction=private.loss_reduction)
    loss_fn(logits, torch.as_tensor(y)).backward()
    private.clip(extra_examples=canaries)
    private.optimizer.step()
    scale = max(float(e.abs().max()) for e in expected)
    for start, param, want in zip(before, params, expected, strict=True):
        torch.testing.assert_close((start - param.detach().double()) * n, want, rtol=1e-4,
                                   atol=1e-4 * scale)
