"""What recording loss traces costs: training time and disk.

    PYTHONPATH=src python benchmarks/trace_recording.py cost [--n 5000] [--repeats 7] [--threads 2]
    PYTHONPATH=src python benchmarks/trace_recording.py size [--members 50000] [--epochs 36]

``cost``: the codelab's 3-conv CNN on CIFAR-shaped images (32x32x3, random pixels), batch 50,
Adam, one epoch of ``--n`` images with the trainer's loss recording on and off, interleaved
``--repeats`` times (the machine is shared: the ratio of medians is reported). Recording's
cost per step does not depend on ``--n``. Then the per-epoch rewrite of the traces file: the
time to write a (50,000, e) trace through ``rundir.write_traces`` for e = 1..36, averaged over
the epochs, against a 50,000-image training epoch at the measured speed. Target: recording +
writing <= 2% of training time.

``size``: trains the quickstart's 2-conv CNN (Adam, lr 0.003, batch 50) on ``--members``
padded Fashion-MNIST images for ``--epochs`` epochs with the real trainer, rewriting the
traces file after each epoch as the runner does, and prints its size per epoch (one thread,
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


def cost(args: argparse.Namespace) -> dict[str, object]:
    threads = tune_process(args.threads).threads
    rng = np.random.default_rng(0)
    x = rng.random((args.n, *SHAPE), dtype=np.float32)
    y = rng.integers(0, 10, args.n)
    trainers = {"recording": _trainer(x, y, True), "not recording": _trainer(x, y, False)}
    for trainer in trainers.values():  # warm up: one-off kernel and allocator costs
        trainer.train_epoch()
    # Wall time and this process's CPU time (which other processes on a shared machine
    # disturb less), both per epoch.
    seconds: dict[str, list[float]] = {name: [] for name in trainers}
    cpu: dict[str, list[float]] = {name: [] for name in trainers}
    for _ in range(args.repeats):
        for name, trainer in trainers.items():
            started = time.process_time()
            seconds[name].append(trainer.train_epoch().seconds)
            cpu[name].append(time.process_time() - started)
    median = {name: statistics.median(values) for name, values in seconds.items()}
    paired = [on / off for on, off in zip(seconds["recording"], seconds["not recording"],
                                          strict=True)]
    paired_cpu = [on / off for on, off in zip(cpu["recording"], cpu["not recording"],
                                              strict=True)]
    epoch_50k = median["not recording"] * MEMBERS / args.n

    # The recording work alone, timed in a loop of its own (robust where epoch times are
    # noisy): one step's per-example losses and indexed adds, against one training step.
    from memberscope.train.trainer import _EpochLosses

    losses = _EpochLosses(args.n, "cpu")
    logits = torch.randn(50, 10)
    targets = torch.randint(0, 10, (50,))
    index = torch.randperm(args.n)[:50]
    calls = 2000
    started = time.process_time()
    for _ in range(calls):
        losses.add(index, logits, targets)
    column_started = time.process_time()
    losses.column()
    add_seconds = (column_started - started) / calls
    column_seconds = time.process_time() - column_started
    step_cpu = statistics.median(cpu["not recording"]) / -(-args.n // 50)

    # What the runner adds after each epoch: the LossTraces of the members (checked on
    # construction) and the atomic rewrite of traces/LABEL.npz; at audit epochs the risk
    # summary in the rows' metadata.
    trace = _realistic_trace(MEMBERS, EPOCHS)
    labels = rng.integers(0, 10, MEMBERS)
    writes, summaries = [], []
    with tempfile.TemporaryDirectory() as folder:
        for epochs in range(1, EPOCHS + 1):
            started = time.perf_counter()
            traces = LossTraces(losses=trace[:, :epochs], epochs=np.arange(1, epochs + 1),
                                labels=labels, model="m")
            rundir.write_traces(folder, traces)
            writes.append(time.perf_counter() - started)
            started = time.perf_counter()
            risk_summary(traces.risk())
            summaries.append(time.perf_counter() - started)
    write_per_epoch = statistics.mean(writes)
    loop_ratio = statistics.median(paired)
    report = {
        "threads": threads, "n": args.n, "repeats": args.repeats,
        "load_average": os.getloadavg()[0],
        "epoch_seconds": {name: values for name, values in seconds.items()},
        "median_epoch_seconds": median,
        "epoch_cpu_seconds": cpu,
        "median_paired_ratio": loop_ratio,
        "median_paired_cpu_ratio": statistics.median(paired_cpu),
        "ratio_of_medians": median["recording"] / median["not recording"],
        "epoch_seconds_50k": epoch_50k,
        "write_seconds_mean_over_36_epochs": write_per_epoch,
        "write_seconds_at_36_epochs": writes[-1],
        "write_fraction_of_epoch": write_per_epoch / epoch_50k,
        "risk_summary_seconds_at_36_epochs": summaries[-1],
        "recording_cpu_seconds_per_step": add_seconds,
        "training_cpu_seconds_per_step": step_cpu,
        "recording_fraction_of_step": add_seconds / step_cpu,
        "column_cpu_seconds": column_seconds,
        "total_overhead": loop_ratio - 1 + write_per_epoch / epoch_50k,
    }
    print(f"{threads} thread(s), wall time, load average {report['load_average']:.1f}; "
          f"{args.n} CIFAR-shaped images per epoch, {args.repeats} interleaved repeats")
    for name, value in median.items():
        print(f"  epoch, {name:14s} {value:7.2f} s (median)")
    print(f"  recording / not recording: {loop_ratio:.4f} (median of paired ratios), "
          f"{report['ratio_of_medians']:.4f} (ratio of medians); CPU time: "
          f"{report['median_paired_cpu_ratio']:.4f} (median of paired ratios)")
    print(f"  recording alone: {1e6 * add_seconds:.0f} us CPU per step of 50 "
          f"({100 * add_seconds / step_cpu:.3f}% of a training step's "
          f"{1e3 * step_cpu:.1f} ms CPU)")
    print(f"  traces built + file rewritten (50,000 members): {write_per_epoch:.3f} s per epoch on "
          f"average over {EPOCHS} epochs ({writes[-1]:.3f} s at epoch {EPOCHS}); a 50,000-image "
          f"epoch takes {epoch_50k:.1f} s here: {100 * report['write_fraction_of_epoch']:.2f}%")
    print(f"  total: {100 * report['total_overhead']:.2f}% of training time (target <= 2%)")
    print(f"  risk summary of an audit row at epoch {EPOCHS}: {summaries[-1]:.3f} s "
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
    for _ in range(args.epochs):
        stats = trainer.train_epoch()
        path = rundir.write_traces(out, LossTraces(
            losses=trainer.loss_trace, epochs=np.arange(1, trainer.epoch + 1), labels=y,
            model="fashion_mnist_2conv"))
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
