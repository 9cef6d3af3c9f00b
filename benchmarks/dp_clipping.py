"""Per-example clipping routes of one DP step, timed and checked for equal results in one run.

    PYTHONPATH=src python benchmarks/dp_clipping.py [--batch 50] [--steps 10] [--repeats 5]

On the TF Privacy codelab's CNNs (``small_cnn`` with 2 and 3 conv layers) with CIFAR-shaped
(32x32x3) and 1-channel (32x32x1) inputs, one DP-Adam step (zero_grad, forward, backward,
clipping, noise σ = 1, Adam) of a fixed batch, by route:

* ``direct``: memberscope's own clipping (train/dp/direct_clipping.py, what "auto" picks);
* ``hooks``: Opacus' ``GradSampleModule`` + ``DPOptimizer`` as memberscope's hooks mode runs
  it (channels_last, our layout-safe conv sampler, convolutions on a detached weight);
* ``opacus hooks``: the same, as Opacus ships it (NCHW, its own samplers);
* ``opacus ghost``: Opacus' fast gradient clipping (``grad_sample_mode="ghost"``:
  ``GradSampleModuleFastGradientClipping``, ``DPLossFastGradientClipping``, two backward
  passes), NCHW as Opacus ships it;
* ``ghost + our sampler``: the same on channels_last with our layout-safe conv sampler;
* ``Adam``: the non-DP step, for scale.

"Equal results": each route's noiseless SGD step at learning rate 1 times the batch size is
its sum of clipped per-example gradients; the table gives its largest deviation from a
float64 per-example oracle, relative to the largest entry (float32 rounding is ~1e-6).

Timing: medians over ``--repeats`` interleaved blocks of ``--steps`` steps after warm-up, in
this process's CPU time with one torch thread (other processes on a shared machine disturb
it far less than wall time); ratios are within this run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings
from collections.abc import Callable

import numpy as np
import torch
from opacus.grad_sample import GradSampleModule, GradSampleModuleFastGradientClipping
from opacus.optimizers import DPOptimizer, DPOptimizerFastGradientClipping
from opacus.utils.fast_gradient_clipping_utils import DPLossFastGradientClipping

from memberscope._runtime import tune_process
from memberscope.train.dp.engine import make_private
from memberscope.train.dp.grad_samplers import use_layout_safe_samplers
from memberscope.train.dp.settings import DPSettings
from memberscope.train.models import small_cnn
from memberscope.train.trainer import as_model_input

CLIP = 1.0
NUM_CLASSES = 10
Step = Callable[[], None]


def _optimizer(model: torch.nn.Module, sgd: bool) -> torch.optim.Optimizer:
    if sgd:
        return torch.optim.SGD(model.parameters(), lr=1.0)
    return torch.optim.Adam(model.parameters(), lr=1e-3)


def _nchw(x: np.ndarray) -> torch.Tensor:
    """Plain NCHW strides, which Opacus' conv samplers assume. For one channel, permuting an
    NHWC array gives strides that are both NCHW- and channels_last-contiguous, convolutions
    then return channels_last outputs, and Opacus' samplers go wrong on the next layer."""
    return torch.as_tensor(x).permute(0, 3, 1, 2).clone(memory_format=torch.contiguous_format)


def _model(shape: tuple[int, int, int], num_conv: int, channels_last: bool) -> torch.nn.Module:
    torch.manual_seed(0)
    model = small_cnn(shape, NUM_CLASSES, num_conv)
    return model.to(memory_format=torch.channels_last) if channels_last else model


def engine_route(mode: str) -> Callable[..., tuple[torch.nn.Module, Step]]:
    """A route through memberscope's engine (direct, or hooks as the trainer runs it)."""

    def build(shape: tuple[int, int, int], num_conv: int, x: np.ndarray, y: torch.Tensor,
              noise: float, sgd: bool) -> tuple[torch.nn.Module, Step]:
        model = _model(shape, num_conv, channels_last=True)
        private = make_private(model, _optimizer(model, sgd), DPSettings(
            noise_multiplier=noise, max_grad_norm=CLIP, grad_sample_mode=mode),
            sample_rate=0.01, expected_batch_size=len(y), steps=100,
            generator=torch.Generator().manual_seed(1))
        loss_fn = torch.nn.CrossEntropyLoss(reduction=private.loss_reduction)
        inputs = as_model_input(x)

        def step() -> None:
            private.optimizer.zero_grad(set_to_none=True)
            with private.forward_context():
                logits = private.module(inputs)
            loss_fn(logits, y).backward()
            private.clip()
            private.optimizer.step()

        return model, step

    return build


def opacus_hooks(shape: tuple[int, int, int], num_conv: int, x: np.ndarray, y: torch.Tensor,
                 noise: float, sgd: bool) -> tuple[torch.nn.Module, Step]:
    model = _model(shape, num_conv, channels_last=False)
    module = GradSampleModule(model, batch_first=True, loss_reduction="mean")
    optimizer = DPOptimizer(_optimizer(model, sgd), noise_multiplier=noise,
                            max_grad_norm=CLIP, expected_batch_size=len(y),
                            generator=torch.Generator().manual_seed(1))
    inputs = _nchw(x)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(module(inputs), y).backward()
        optimizer.step()

    return model, step


def opacus_ghost(channels_last: bool) -> Callable[..., tuple[torch.nn.Module, Step]]:
    def build(shape: tuple[int, int, int], num_conv: int, x: np.ndarray, y: torch.Tensor,
              noise: float, sgd: bool) -> tuple[torch.nn.Module, Step]:
        model = _model(shape, num_conv, channels_last=channels_last)
        module = GradSampleModuleFastGradientClipping(
            model, batch_first=True, loss_reduction="mean", max_grad_norm=CLIP,
            use_ghost_clipping=True)
        if channels_last:  # Opacus' own conv sampler is wrong on channels_last
            use_layout_safe_samplers(module)
        optimizer = DPOptimizerFastGradientClipping(
            _optimizer(model, sgd), noise_multiplier=noise, max_grad_norm=CLIP,
            expected_batch_size=len(y), loss_reduction="mean",
            generator=torch.Generator().manual_seed(1))
        criterion = DPLossFastGradientClipping(
            module, optimizer, torch.nn.CrossEntropyLoss(reduction="mean"), "mean")
        inputs = as_model_input(x) if channels_last else _nchw(x)

        def step() -> None:
            optimizer.zero_grad(set_to_none=True)
            criterion(module(inputs), y).backward()
            optimizer.step()

        return model, step

    return build


def non_dp(shape: tuple[int, int, int], num_conv: int, x: np.ndarray, y: torch.Tensor,
           noise: float, sgd: bool) -> tuple[torch.nn.Module, Step]:
    model = _model(shape, num_conv, channels_last=True)
    optimizer = _optimizer(model, sgd)
    inputs = as_model_input(x)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(inputs), y).backward()
        optimizer.step()

    return model, step


ROUTES: dict[str, Callable[..., tuple[torch.nn.Module, Step]]] = {
    "direct": engine_route("direct"),
    "hooks": engine_route("hooks"),
    "opacus hooks": opacus_hooks,
    "opacus ghost": opacus_ghost(channels_last=False),
    "ghost + our sampler": opacus_ghost(channels_last=True),
}


def clipped_sum_float64(shape: tuple[int, int, int], num_conv: int, x: np.ndarray,
                        y: torch.Tensor) -> list[torch.Tensor]:
    """Σ_i min(1, C / (|g_i| + 1e-6)) g_i, one float64 backward pass per example."""
    model = _model(shape, num_conv, channels_last=False).double()
    inputs = _nchw(x).double()
    params = list(model.parameters())
    total = [torch.zeros_like(p) for p in params]
    for i in range(len(y)):
        loss = torch.nn.functional.cross_entropy(model(inputs[i:i + 1]), y[i:i + 1])
        grads = torch.autograd.grad(loss, params)
        norm = float(torch.sqrt(sum((g ** 2).sum() for g in grads)))
        factor = min(1.0, CLIP / (norm + 1e-6))
        total = [t + factor * g for t, g in zip(total, grads, strict=True)]
    return total


def deviation(build: Callable[..., tuple[torch.nn.Module, Step]], shape: tuple[int, int, int],
              num_conv: int, x: np.ndarray, y: torch.Tensor,
              expected: list[torch.Tensor]) -> float:
    """Largest |batch · (noiseless SGD step) − oracle| over the largest oracle entry."""
    model, step = build(shape, num_conv, x, y, 0.0, True)
    before = [p.detach().double().clone() for p in model.parameters()]
    step()
    scale = max(float(e.abs().max()) for e in expected)
    return max(float(((b - p.detach().double()) * len(y) - e).abs().max())
               for b, p, e in zip(before, model.parameters(), expected, strict=True)) / scale


def step_times(builds: dict[str, Callable[..., tuple[torch.nn.Module, Step]]],
               shape: tuple[int, int, int], num_conv: int, x: np.ndarray, y: torch.Tensor,
               steps: int, repeats: int) -> dict[str, float]:
    """Median CPU milliseconds per step of each route, blocks interleaved."""
    runners = {}
    for name, build in builds.items():
        _, step = build(shape, num_conv, x, y, 1.0, False)
        for _ in range(3):
            step()
        runners[name] = step
    samples: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(repeats):
        for name, step in runners.items():
            started = time.process_time()
            for _ in range(steps):
                step()
            samples[name].append((time.process_time() - started) / steps * 1000)
    return {name: statistics.median(values) for name, values in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    tune_process(1)
    print(f"torch {torch.__version__}, 1 thread, CPU time, load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; batch {args.batch}, medians "
          f"of {args.repeats} blocks of {args.steps} DP-Adam steps")
    rng = np.random.default_rng(0)
    y = torch.as_tensor(rng.integers(0, NUM_CLASSES, args.batch))
    print("\n| input | conv | route | ms / step | × Adam step | direct is faster by | "
          "deviation from float64 oracle |")
    print("|---|---|---|---:|---:|---:|---:|")
    for shape in ((32, 32, 3), (32, 32, 1)):
        x = rng.random((args.batch, *shape), dtype=np.float32)
        for num_conv in (2, 3):
            expected = clipped_sum_float64(shape, num_conv, x, y)
            errors = {name: deviation(build, shape, num_conv, x, y, expected)
                      for name, build in ROUTES.items()}
            times = step_times({**ROUTES, "Adam (no DP)": non_dp}, shape, num_conv, x, y,
                               args.steps, args.repeats)
            label = "x".join(str(v) for v in shape)
            for name, ms in times.items():
                speedup = "" if name in ("direct", "Adam (no DP)") else \
                    f"{ms / times['direct'] - 1:+.0%}"
                error = f"{errors[name]:.1e}" if name in errors else ""
                print(f"| {label} | {num_conv} | {name} | {ms:.1f} | "
                      f"{ms / times['Adam (no DP)']:.2f} | {speedup} | {error} |", flush=True)


if __name__ == "__main__":
    main()
