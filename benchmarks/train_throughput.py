"""Training, inference and DP throughput of the trainer, measured against a bare loop.

    PYTHONPATH=src python benchmarks/train_throughput.py [--n 2000] [--repeats 3] [--threads N]

Prints absolute images/s and the ratios the training issue targets:
  * Trainer vs a bare hand-written loop of the same model (small_cnn, 3 conv, CIFAR-shaped,
    batch 50): target >= 0.95x;
  * monitor inference (inference_mode, channels_last, batch 128) vs training: target >= 4x;
  * DP-Adam epoch time vs non-DP for the 2- and 3-conv models, per grad-sample mode ("direct"
    is memberscope's own per-example clipping, the default for these models; the others are
    Opacus'): target <= 1.4x.
The machine is shared, so each measurement is repeated with the contenders interleaved and
the median is reported; ratios are taken within one run. With one thread (what the trainer
picks on a busy machine) the clock is this process's CPU time, which other processes disturb
far less than wall time; with more threads it is wall time.
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

from memberscope._runtime import tune_process
from memberscope.train.models import small_cnn
from memberscope.train.settings import DPSettings, TrainSettings
from memberscope.train.trainer import Trainer, as_model_input, predict_logits

SHAPE = (32, 32, 3)
CLOCK = time.perf_counter  # set in main(): process_time with 1 thread


def cifar_like(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.random((n, *SHAPE), dtype=np.float32), rng.integers(0, 10, n)


def bare_loop_epoch(x: np.ndarray, y: np.ndarray, channels_last: bool) -> float:
    """What a user would write by hand: tensors, a permutation, Adam, cross-entropy."""
    torch.manual_seed(0)
    model = small_cnn(SHAPE, 10, 3)
    inputs = torch.from_numpy(x).permute(0, 3, 1, 2)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        inputs = inputs.contiguous(memory_format=torch.channels_last)
    else:
        inputs = inputs.contiguous()
    targets = torch.from_numpy(y)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    order = torch.randperm(len(y))
    started = CLOCK()
    for index in order.split(50):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(inputs[index]), targets[index])
        loss.backward()
        optimizer.step()
    return len(y) / (CLOCK() - started)


def trainer_epoch(x: np.ndarray, y: np.ndarray, num_conv: int = 3,
                  dp: DPSettings | None = None, warm_up: bool = False) -> float:
    """Images/s of one epoch of a fresh Trainer; with ``warm_up``, of its second epoch (the
    first pays one-off costs, such as oneDNN kernels for each new Poisson batch size)."""
    torch.manual_seed(0)
    trainer = Trainer(small_cnn(SHAPE, 10, num_conv), x, y,
                      TrainSettings(epochs=2, batch_size=50, dp=dp), device="cpu")
    if warm_up:
        trainer.train_epoch()
    started = CLOCK()
    stats = trainer.train_epoch()
    return stats.examples / (CLOCK() - started)


def inference(x: np.ndarray, *, channels_last: bool, batch_size: int) -> float:
    model = small_cnn(SHAPE, 10, 3)
    inputs = as_model_input(x, channels_last=channels_last)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    started = CLOCK()
    predict_logits(model, inputs, batch_size=batch_size)
    return len(x) / (CLOCK() - started)


def medians(contenders: dict[str, Callable[[], float]], repeats: int) -> dict[str, float]:
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, run in contenders.items():
            samples[name].append(run())
    return {name: statistics.median(values) for name, values in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000, help="training images per epoch")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--skip-dp", action="store_true")
    parser.add_argument("--dp-modes", default="direct,hooks,ew,functorch",
                        help="comma-separated grad_sample_mode values to compare")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    global CLOCK
    threads = tune_process(args.threads).threads
    CLOCK = time.process_time if threads == 1 else time.perf_counter
    clock = "CPU time" if threads == 1 else "wall time"
    print(f"torch {torch.__version__}, {threads} thread(s), {clock}, load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; medians of {args.repeats}")
    x, y = cifar_like(args.n)

    train = medians({
        "bare loop (NCHW contiguous)": lambda: bare_loop_epoch(x, y, channels_last=False),
        "bare loop (channels_last)": lambda: bare_loop_epoch(x, y, channels_last=True),
        "Trainer": lambda: trainer_epoch(x, y),
    }, args.repeats)
    print("\ntraining, small_cnn(3 conv), CIFAR-shaped, batch 50:")
    for name, rate in train.items():
        print(f"  {name:30s} {rate:8.0f} img/s")
    best_bare = max(train["bare loop (NCHW contiguous)"], train["bare loop (channels_last)"])
    nchw = train["bare loop (NCHW contiguous)"]
    print(f"  Trainer / bare NCHW loop      {train['Trainer'] / nchw:.2f}x")
    print(f"  Trainer / best bare loop      {train['Trainer'] / best_bare:.2f}x  (target >= 0.95)")

    x_eval, _ = cifar_like(max(args.n, 5000), seed=1)
    infer = medians({
        "channels_last, batch 128": lambda: inference(x_eval, channels_last=True,
                                                      batch_size=128),
        "channels_last, batch 250": lambda: inference(x_eval, channels_last=True,
                                                      batch_size=250),
        "NCHW contiguous, batch 1000": lambda: inference(x_eval, channels_last=False,
                                                         batch_size=1000),
    }, args.repeats)
    print("\ninference (inference_mode), small_cnn(3 conv), CIFAR-shaped:")
    for name, rate in infer.items():
        print(f"  {name:30s} {rate:8.0f} img/s")
    ratio = infer["channels_last, batch 128"] / train["Trainer"]
    print(f"  monitor inference / training  {ratio:.1f}x  (target >= 4)")

    if args.skip_dp:
        return
    n_dp = max(500, args.n // 2)
    x_dp, y_dp = x[:n_dp], y[:n_dp]
    print(f"\nDP-Adam (noise 1.0, clip 1.0, Poisson) vs Adam, {n_dp} CIFAR-shaped images, "
          "batch 50, second-epoch time ratio:")
    for num_conv in (2, 3):
        contenders: dict[str, Callable[[], float]] = {
            "Adam": lambda c=num_conv: trainer_epoch(x_dp, y_dp, c, warm_up=True)}
        for mode in args.dp_modes.split(","):
            dp = DPSettings(noise_multiplier=1.0, grad_sample_mode=mode)
            contenders[f"DP-Adam {mode}"] = lambda c=num_conv, d=dp: trainer_epoch(
                x_dp, y_dp, c, d, warm_up=True)
        rates = medians(contenders, args.repeats)
        for name, rate in rates.items():
            ratio = rates["Adam"] / rate
            print(f"  {num_conv} conv  {name:18s} {rate:8.0f} img/s  {ratio:.2f}x epoch time")


if __name__ == "__main__":
    main()
