"""What recording loss traces costs: training time and disk.

    PYTHONPATH=src python benchmarks/trace_recording.py cost [--n 5000] [--repeats 7] [--threads 2]
    PYTHONPATH=src python benchmarks/trace_recording.py size [--members 50000] [--epochs 36]

``cost``: the codelab's 3-conv CNN on CIFAR-shaped images (32x32x3, random pixels), batch 50,
Adam, epochs of ``--n`` images with the trainer's loss recording on and off, interleaved
``--repeats`` times in ABBA order. The share of a recording epoch's wall time spent inside the
recording is timed in the training loop itself (robust on a shared machine, where whole epochs
vary by far more than the recording costs; the paired epoch ratios are printed with their
spread). Recording's cost per step does not depend on ``--n``. Then the per-epoch rewrite of
the traces file: the time to write it (epoch 1, ``rundir.write_traces``) or append an epoch
to it (``rundir.append_traces``), 50,000 members, averaged over 36 epochs, against a
50,000-image training epoch at the measured speed. Target: recording +
writing <= 2% of training time.

``size``: trains the quickstart's 2-conv CNN (Adam, lr 0.003, batch 50) on ``--members``
padded Fashion-MNIST images for ``--epochs`` epochs with the real trainer, writing the traces
file after each epoch as the runner does, and prints its size per epoch (one thread,
niced: it takes about 25 minutes on 2 shared cores). Target: 50,000 x 36 <= 8 MB.

Both write ``benchmarks/results/trace_recording_<mode>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from memberscope import rundir
from memberscope._runtime import tune_process
from memberscope.risk import LossTraces, risk_summary
from memberscope.train.models import small_cnn
from memberscope.train.settings import TrainSettings
from memberscope.train.trainer import Trainer

RESULTS = Path(__file__).parent / "results"
SHAPE = (32, 32, 3)
MEMBERS, EPOCHS = 50_000, 36  # the size and cost point (the quickstart's 36 epochs)


def _trainer(x: np.ndarray, y: np.ndarray, record: bool) -> Trainer:
    torch.manual_seed(0)
    return Trainer(small_cnn(SHAPE, 10, 3), x, y, TrainSettings(epochs=10**6, batch_size=50),
                   device="cpu", record_losses=record)


def _realistic_trace(members: int, epochs: int) -> np.ndarray:
    """Losses that fall over training at per-example speeds, with epoch-to-epoch noise (only
    the write time is measured with these; ``size`` measures real traces)."""
    rng = np.random.default_rng(0)
    start = rng.gamma(2.0, 1.2, (members, 1))
    speed = rng.gamma(2.0, 0.1, (members, 1))
    noise = rng.lognormal(0.0, 0.4, (members, epochs))
    return (start * np.exp(-speed * np.arange(epochs)) * noise).astype(np.float32)


class _Stopwatch:
    """Accumulates the wall time spent inside the trainer's recording (``_EpochLosses.add``
    at each step, ``column`` at the end of the epoch), measured in the real training loop."""

    def __init__(self) -> None:
        from memberscope.train import trainer as trainer_module

        self.seconds = 0.0
        cls = trainer_module._EpochLosses
        for name in ("add", "column"):
            setattr(cls, name, self._timed(getattr(cls, name)))

    def _timed(self, method: Callable[..., object]) -> Callable[..., object]:
        def timed(*args: object) -> object:
            started = time.perf_counter()
            try:
                return method(*args)
            finally:
                self.seconds += time.perf_counter() - started

        return timed

    def lap(self) -> float:
        seconds, self.seconds = self.seconds, 0.0
        return seconds


def cost(args: argparse.Namespace) -> dict[str, object]:
    threads = tune_process(args.threads).threads
    rng = np.random.default_rng(0)
    x = rng.random((args.n, *SHAPE), dtype=np.float32)
    y = rng.integers(0, 10, args.n)
    stopwatch = _Stopwatch()
    trainers = {"recording": _trainer(x, y, True), "not recording": _trainer(x, y, False)}
    for trainer in trainers.values():  # warm up: one-off kernel and allocator costs
        trainer.train_epoch()
    stopwatch.lap()
    # Two measures. (1) In the loop: the share of each recording epoch's wall time spent in
    # the recording itself, both timed in the same epoch, so the load of the (shared) machine
    # weighs on both alike. (2) Whole epochs with and without recording, interleaved in ABBA
    # order: the direct comparison, but epoch times on a loaded machine vary by far more than
    # the recording costs.
    seconds: dict[str, list[float]] = {name: [] for name in trainers}
    share: list[float] = []
    for repeat in range(args.repeats):
        order = list(trainers.items())
        for name, trainer in order if repeat % 2 == 0 else order[::-1]:
            epoch = trainer.train_epoch().seconds
            seconds[name].append(epoch)
            recorded = stopwatch.lap()
            if name == "recording":
                share.append(recorded / epoch)
    median = {name: statistics.median(values) for name, values in seconds.items()}
    paired = [on / off for on, off in zip(seconds["recording"], seconds["not recording"],
                                          strict=True)]
    epoch_50k = median["not recording"] * MEMBERS / args.n

    # What the runner adds after each epoch: traces/LABEL.npz written (epoch 1) or the
    # epoch's losses appended to it (atomically); at audit epochs the members' LossTraces
    # and the risk summary in the rows' metadata.
    trace = _realistic_trace(MEMBERS, EPOCHS)
    labels = rng.integers(0, 10, MEMBERS)
    writes, writes_cpu, summaries = [], [], []
    with tempfile.TemporaryDirectory() as folder:
        for epochs in range(1, EPOCHS + 1):
            started, started_cpu = time.perf_counter(), time.process_time()
            if epochs == 1:
                rundir.write_traces(folder, LossTraces(losses=trace[:, :1], epochs=[1],
                                                       labels=labels, model="m"))
            else:
                rundir.append_traces(folder, "m", epochs, trace[:, epochs - 1])
            writes.append(time.perf_counter() - started)
            writes_cpu.append(time.process_time() - started_cpu)
            started = time.perf_counter()
            traces = LossTraces(losses=trace[:, :epochs], epochs=np.arange(1, epochs + 1),
                                labels=labels, model="m")
            risk_summary(traces.risk())
            summaries.append(time.perf_counter() - started)
    write_per_epoch = statistics.mean(writes)
    in_loop = statistics.median(share)
    report = {
        "threads": threads, "n": args.n, "repeats": args.repeats,
        "load_average": os.getloadavg()[0],
        "epoch_seconds": seconds, "median_epoch_seconds": median,
        "recording_share_of_epoch": share,
        "median_recording_share_of_epoch": in_loop,
        "paired_epoch_ratios": paired,
        "median_paired_epoch_ratio": statistics.median(paired),
        "epoch_seconds_50k": epoch_50k,
        "write_seconds_mean_over_36_epochs": write_per_epoch,
        "write_seconds_at_36_epochs": writes[-1],
        "write_cpu_seconds_mean_over_36_epochs": statistics.mean(writes_cpu),
        "write_fraction_of_epoch": write_per_epoch / epoch_50k,
        "risk_summary_seconds_at_36_epochs": summaries[-1],
        "total_overhead": in_loop + write_per_epoch / epoch_50k,
    }
    print(f"{threads} thread(s), wall time, load average {report['load_average']:.1f}; "
          f"{args.n} CIFAR-shaped images per epoch, {args.repeats} repeats")
    print(f"  recording in the training loop: {100 * in_loop:.3f}% of the epoch (median; "
          f"{100 * min(share):.3f}-{100 * max(share):.3f}%)")
    print(f"  epoch with / without recording: {statistics.median(paired):.3f} (median of "
          f"paired ratios, {min(paired):.2f}-{max(paired):.2f}: the machine's noise); epochs "
          f"{median['recording']:.1f} s / {median['not recording']:.1f} s (medians)")
    print(f"  traces file written or appended to (50,000 members): {write_per_epoch:.3f} s per "
          f"epoch on average over {EPOCHS} epochs ({writes[-1]:.3f} s at epoch {EPOCHS}); a "
          f"50,000-image epoch takes {epoch_50k:.1f} s here: "
          f"{100 * report['write_fraction_of_epoch']:.2f}%; CPU time "
          f"{statistics.mean(writes_cpu):.3f} s per epoch on average")
    print(f"  total: {100 * report['total_overhead']:.2f}% of training time (target <= 2%)")
    print(f"  traces and risk summary of an audit row at epoch {EPOCHS}: {summaries[-1]:.3f} s "
          f"({100 * summaries[-1] / epoch_50k:.2f}% of an epoch, at audit epochs only)")
    return report


def size(args: argparse.Namespace) -> dict[str, object]:
    from memberscope.data import load_dataset

    tune_process(1)
    data = load_dataset("fashion_mnist")
    x = np.pad(data.x_train[:args.members], ((0, 0), (2, 2), (2, 2), (0, 0)))
    y = data.y_train[:args.members]
    torch.manual_seed(0)
    trainer = Trainer(small_cnn(x.shape[1:], 10, 2), x, y,
                      TrainSettings(epochs=args.epochs, batch_size=50, learning_rate=0.003),
                      device="cpu")
    out = Path(args.out)
    sizes = []
    label = "fashion_mnist_2conv"
    for _ in range(args.epochs):
        stats = trainer.train_epoch()
        if trainer.epoch == 1:  # as the runner does: write, then append each epoch
            path = rundir.write_traces(out, LossTraces(
                losses=trainer.loss_trace, epochs=[1], labels=y, model=label))
        else:
            path = rundir.append_traces(out, label, trainer.epoch, trainer.loss_trace[:, -1])
        sizes.append(path.stat().st_size)
        print(f"epoch {stats.epoch}: loss {stats.loss:.4f}, accuracy {stats.accuracy:.4f}, "
              f"{stats.seconds:.0f} s, traces file {sizes[-1] / 1e6:.3f} MB", flush=True)
    raw = args.members * args.epochs * 4
    print(f"{args.members} members x {args.epochs} epochs: {sizes[-1] / 1e6:.3f} MB on disk "
          f"(raw float32 {raw / 1e6:.3f} MB; target <= 8 MB)")
    return {"members": args.members, "epochs": args.epochs, "bytes_per_epoch": sizes,
            "bytes": sizes[-1], "raw_float32_bytes": raw}


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="mode", required=True)
    cost_parser = sub.add_parser("cost")
    cost_parser.add_argument("--n", type=int, default=5000)
    cost_parser.add_argument("--repeats", type=int, default=7)
    cost_parser.add_argument("--threads", type=int, default=2)
    size_parser = sub.add_parser("size")
    size_parser.add_argument("--members", type=int, default=MEMBERS)
    size_parser.add_argument("--epochs", type=int, default=EPOCHS)
    size_parser.add_argument("--out", default=tempfile.mkdtemp(prefix="traces-"))
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    report = cost(args) if args.mode == "cost" else size(args)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"trace_recording_{args.mode}.json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
