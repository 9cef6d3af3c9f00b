"""Privacy-monitoring overhead at the codelab's cadence on Fashion-MNIST.

    PYTHONPATH=src python benchmarks/monitor_overhead.py [--train-examples 12000] [--repeats 3]

A report (every 2 epochs): logits of the audited members and the 10,000 non-members under
``torch.inference_mode()`` plus ``audit`` with the threshold and LR attacks on the entire
dataset and every class. Overhead = report time / time of the 2 training epochs it covers,
for a balanced sample of 10,000 members (target <= 5%) and for all 60,000 (target <= 15%).
The training epoch is timed on ``--train-examples`` images and scaled to 60,000. Medians of
``--repeats``; with one thread the clock is this process's CPU time (the machine is shared).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings

import torch

from memberscope._runtime import tune_process
from memberscope.data import load_dataset
from memberscope.monitor.torch import TorchMonitorHook
from memberscope.train.models import small_cnn
from memberscope.train.settings import TrainSettings
from memberscope.train.trainer import Trainer, predict_logits


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--train-examples", type=int, default=12000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    threads = tune_process(args.threads).threads
    clock = time.process_time if threads == 1 else time.perf_counter
    print(f"{threads} thread(s), {'CPU' if threads == 1 else 'wall'} time, load average "
          f"{os.getloadavg()[0]:.1f}; medians of {args.repeats}")
    data = load_dataset("fashion_mnist")
    n = args.train_examples
    for num_conv in (2, 3):
        torch.manual_seed(0)
        trainer = Trainer(small_cnn(data.input_shape, 10, num_conv), data.x_train[:n],
                          data.y_train[:n], TrainSettings(epochs=args.repeats), device="cpu")
        epoch_times = []
        for _ in range(args.repeats):
            started = clock()
            trainer.train_epoch()
            epoch_times.append((clock() - started) * data.n_train / n)
        epoch = statistics.median(epoch_times)
        print(f"\n{num_conv} conv: training epoch (60,000 images, batch 50) {epoch:.1f} s")
        for label, sample in (("balanced 10,000 members", 10000), ("all 60,000 members", None)):
            hook = TorchMonitorHook(trainer.model, members=(data.x_train, data.y_train),
                                    nonmembers=(data.x_test, data.y_test),
                                    epochs_per_report=2,
                                    attacks=["threshold", "lr"], slices=["entire", "class"],
                                    member_sample=sample, model_label=f"{num_conv} conv")
            reports, inference, audits = [], [], []
            for repeat in range(args.repeats):
                started = clock()
                members = predict_logits(trainer.model, hook.x_members, hook.member_index)
                nonmembers = predict_logits(trainer.model, hook.x_nonmembers)
                predicted = clock()
                hook.monitor.audit_logits(members.astype("float64"),
                                          nonmembers.astype("float64"), epoch=2 * repeat + 2)
                inference.append(predicted - started)
                audits.append(clock() - predicted)
                reports.append(clock() - started)
            report = statistics.median(reports)
            overhead = report / (2 * epoch)
            target = 0.05 if sample else 0.15
            print(f"  report, {label:24s} {report:5.1f} s (inference "
                  f"{statistics.median(inference):.1f} s, audit {statistics.median(audits):.1f} s)"
                  f"  overhead {100 * overhead:4.1f}%  (target <= {100 * target:.0f}%)")


if __name__ == "__main__":
    main()
