"""The Lightning callback's inference batch size: images/s of its forward passes per batch size.

    PYTHONPATH=src python benchmarks/monitor_inference_batch.py [--images 6000] [--repeats 5]

Times ``PrivacyMonitorCallback``'s own inference (members and non-members from (x, y) tensor
pairs, module in eval mode under ``torch.inference_mode()``, one forward per batch, as a user's
LightningModule is called) on the codelab CNNs with 2 and 3 conv layers, at 28x28x1
(Fashion-MNIST) and 32x32x3 (CIFAR-10), plain NCHW tensors as Lightning users hold them.
Every repeat runs each batch size once, in a rotated order, so a busy machine slows all of
them alike; the figures are medians, and each batch size's ratio to the default.
With one thread (the default here: the machine is shared) the clock is this process's CPU
time.

Measured on the 2-core build machine (load average 8), 3,000 images, medians of 5, images/s
(ratio to 128):

    28x28x1 2 conv   64: 3,984 (0.98)  128: 4,062  256: 3,691 (0.91)  512: 2,997 (0.74)
    28x28x1 3 conv   64: 3,300 (0.99)  128: 3,319  256: 2,836 (0.85)  512: 2,867 (0.86)
    32x32x3 2 conv   64: 3,244 (0.99)  128: 3,280  256: 2,645 (0.81)  512: 2,607 (0.79)
    32x32x3 3 conv   64: 2,978 (0.98)  128: 3,052  256: 2,356 (0.77)  512: 1,912 (0.63)

An earlier run (load 10, 4,000 images, medians of 3, sizes 32-1024) had 128 within 6% of the
best everywhere and 512-1024 at 0.67-0.86. So the callback's default is 128, as the trainer's
(the previous 256 was 9-23% slower here). With 2 threads on this loaded machine wall-clock
figures were meaningless (thread contention), so none are given for them.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings

import numpy as np
import torch
from memberscope.train.threads import apply_threads, choose_threads

from memberscope.monitor.lightning import INFERENCE_BATCH_SIZE, PrivacyMonitorCallback
from memberscope.train.models import small_cnn

BATCH_SIZES = (32, 64, 128, 256, 512, 1024)


class Wrapped(torch.nn.Module):
    """Stands in for a LightningModule: the callback only needs forward, device, eval/train."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net
        self.device = torch.device("cpu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=6000, help="members + non-members")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-sizes", default=",".join(map(str, BATCH_SIZES)))
    args = parser.parse_args()
    sizes = tuple(int(size) for size in args.batch_sizes.split(","))
    if INFERENCE_BATCH_SIZE not in sizes:
        sizes = (*sizes, INFERENCE_BATCH_SIZE)
    warnings.simplefilter("ignore")
    threads = choose_threads(args.threads)
    apply_threads(threads)
    clock = time.process_time if threads == 1 else time.perf_counter
    print(f"{threads} thread(s), {'CPU' if threads == 1 else 'wall'} time, load average "
          f"{os.getloadavg()[0]:.1f}; {args.images} images per pass; medians of "
          f"{args.repeats}; ratio = images/s over images/s at the default "
          f"{INFERENCE_BATCH_SIZE}")
    rng = np.random.default_rng(0)
    half = args.images // 2
    for shape in ((28, 28, 1), (32, 32, 3)):
        x = torch.as_tensor(rng.random((args.images, shape[2], *shape[:2]), np.float32))
        y = torch.as_tensor(rng.integers(0, 10, args.images))
        for num_conv in (2, 3):
            torch.manual_seed(0)
            module = Wrapped(small_cnn(shape, 10, num_conv))
            callbacks = {size: PrivacyMonitorCallback(
                (x[:half], y[:half]), (x[half:], y[half:]), batch_size=size,
                attacks=["threshold"], slices=["entire"], verbose=False)
                for size in sizes}
            rates: dict[int, list[float]] = {size: [] for size in sizes}
            for repeat in range(args.repeats):
                order = sizes[repeat % len(sizes):] + sizes[:repeat % len(sizes)]
                for size in order:
                    callback = callbacks[size]
                    started = clock()
                    callback._logits(module, callback.monitor)
                    rates[size].append(args.images / (clock() - started))
            best = {size: statistics.median(r) for size, r in rates.items()}
            base = best[INFERENCE_BATCH_SIZE]
            cells = "  ".join(f"{size}: {best[size]:6,.0f} ({best[size] / base:.2f})"
                              for size in sizes)
            print(f"{'x'.join(map(str, shape)):>8} {num_conv} conv  {cells}")


if __name__ == "__main__":
    main()
