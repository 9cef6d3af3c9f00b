"""Direct per-example clipping against one backward pass per example, and its place in DP."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("opacus")

from memberscope.errors import InputError  # noqa: E402
from memberscope.train.dp.direct_clipping import (  # noqa: E402
    ClippedGradients,
    unsupported_parameters,
)
from memberscope.train.models import small_cnn  # noqa: E402
from memberscope.train.settings import DPSettings, TrainSettings  # noqa: E402
from memberscope.train.trainer import Trainer  # noqa: E402

pytestmark = pytest.mark.torch


class _Tokens(torch.nn.Module):
    """A Linear layer on (N, T, D) inputs, which direct clipping materialises."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = torch.nn.Linear(7, 4)
        self.head = torch.nn.Linear(20, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.embed(x)).flatten(1))


def _convnet() -> torch.nn.Module:
    # The first layer has no bias and a padded, strided kernel.
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 18, 3, padding=1, stride=2, bias=False), torch.nn.ReLU(),
        torch.nn.Conv2d(18, 4, 3), torch.nn.Tanh(), torch.nn.Flatten(),
        torch.nn.Linear(4 * 4 * 4, 3))


def _clipped_sum_oracle(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
                        max_grad_norm: float) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Clip each example's own gradient, computed alone, and add them up."""
    params = [p for p in model.parameters() if p.requires_grad]
    total = [torch.zeros_like(p) for p in params]
    norms = []
    for i in range(len(x)):
        grads = torch.autograd.grad(
            torch.nn.functional.cross_entropy(model(x[i:i + 1]), y[i:i + 1]), params)
        norm = torch.sqrt(sum((g ** 2).sum() for g in grads))
        norms.append(norm)
        factor = min(1.0, max_grad_norm / (float(norm) + 1e-6))
        total = [t + factor * g for t, g in zip(total, grads, strict=True)]
    return total, torch.stack(norms)


@pytest.mark.parametrize("make, shape", [(_convnet, (6, 3, 11, 11)), (_Tokens, (6, 5, 7))],
                         ids=["convnet", "linear-on-sequences"])
@pytest.mark.parametrize("max_grad_norm", [0.05, 100.0], ids=["clipping", "no-clipping"])
def test_clipped_sums_equal_one_backward_per_example(make, shape, max_grad_norm) -> None:
    # In float64, so that the tolerance does not depend on the CPU's float32 kernels.
    torch.manual_seed(0)
    model = make().double()
    x, y = torch.randn(*shape, dtype=torch.float64), torch.randint(0, 3, (shape[0],))
    expected, expected_norms = _clipped_sum_oracle(model, x, y, max_grad_norm)
    clipper = ClippedGradients(model)
    with clipper.recording():
        loss = torch.nn.functional.cross_entropy(model(x), y, reduction="sum")
    loss.backward()
    assert all(p.grad is None for p in model.parameters())  # no batch gradient computed
    norms = clipper.clip_and_sum(max_grad_norm)
    torch.testing.assert_close(norms, expected_norms, rtol=1e-10, atol=1e-12)
    for param, want in zip(model.parameters(), expected, strict=True):
        torch.testing.assert_close(param.grad, want, rtol=1e-10, atol=1e-12)


def test_frozen_layers_take_no_part_and_the_block_restores_the_model() -> None:
    torch.manual_seed(0)
    model = _convnet().double()
    model[0].weight.requires_grad_(False)  # a frozen layer
    model[2].weight.requires_grad_(False)  # a layer whose bias alone trains
    x, y = torch.randn(4, 3, 11, 11, dtype=torch.float64), torch.randint(0, 3, (4,))
    expected, _ = _clipped_sum_oracle(model, x, y, 0.1)
    clipper = ClippedGradients(model)
    with clipper.recording():
        loss = torch.nn.functional.cross_entropy(model(x), y, reduction="sum")
    assert all("forward" not in vars(layer) for layer in model)
    loss.backward()
    clipper.clip_and_sum(0.1)
    assert model[0].weight.grad is None and model[2].weight.grad is None
    trainable = [p for p in model.parameters() if p.requires_grad]
    for param, want in zip(trainable, expected, strict=True):
        torch.testing.assert_close(param.grad, want, rtol=1e-10, atol=1e-12)
    with pytest.raises(RuntimeError, match="no backward pass was recorded"):
        clipper.clip_and_sum(0.1)


def test_models_with_other_parameterised_layers_are_named_and_auto_falls_back_to_hooks() -> None:
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.GroupNorm(2, 4),
                                torch.nn.Flatten(), torch.nn.Linear(4 * 6 * 6, 3))
    assert unsupported_parameters(model) == ["1.weight", "1.bias"]
    assert unsupported_parameters(small_cnn((12, 12, 1), 4, 2)) == []
    x = np.zeros((8, 8, 8, 1), dtype=np.float32)
    y = np.zeros(8, dtype=np.int64)

    def trainer(mode: str) -> Trainer:
        return Trainer(model, x, y, TrainSettings(
            epochs=1, batch_size=4, dp=DPSettings(noise_multiplier=1.0, grad_sample_mode=mode)),
            device="cpu")

    with pytest.raises(InputError, match=r"'direct'.*1\.weight"):
        trainer("direct")
    assert trainer("auto").grad_sample_mode == "hooks"
