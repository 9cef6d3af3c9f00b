"""White-box gradient canaries on real DP training (issue 13): ε̂ beside the accountant's ε.

Run: ``PYTHONPATH=src .venv/bin/python benchmarks/one_run_canaries.py [--quick]``. Not part of
the test suite. Trains the codelab's small CNN (one conv layer) on scikit-learn's digits
(899 training images, batch 30: q = 0.033, 30 steps per epoch) with DP-SGD and m = 1,000
gradient canaries, and prints:

1. validity and power: for each target ε, seeded trainings with ε̂ (the assumption-free
   approx_dp and Steinke bounds, and the Gaussian-assumption gaussian_fdp and continuous-score
   gaussian_auc bounds, per score) — each must stay ≤ ε — beside the median
   ε̂ of idealised canaries (coordinates no real gradient touches: 1[sampled] + σ·z) with the
   same q, σ, steps and m;
2. bug detection: clipping disabled, and noise secretly divided by 10 while the accountant is
   told the original: ε̂ must exceed the claimed ε;
3. DP-Adam: the same audit scoring the released gradients vs the parameter updates;
4. cost: epoch time with canaries / without (same batches and noise), medians of interleaved
   epochs, wall and CPU time, on that model and on the codelab's 3-conv CNN at
   Fashion-MNIST's shape, and what each part of a step with canaries takes;
5. black-box canaries (mislabelled examples) under DP-SGD and without DP.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch

from memberscope import epsilon_one_run
from memberscope.data import load_digits
from memberscope.train.dp import direct_clipping
from memberscope.train.dp.canaries import SCORES, canary_scores, ideal_observations
from memberscope.train.dp.input_canaries import plan_input_canaries
from memberscope.train.models import small_cnn
from memberscope.train.settings import CanarySettings, DPSettings, TrainSettings
from memberscope.train.trainer import Trainer

DELTA = 1e-5
M = 1000
BATCH = 30
METHODS = ("approx_dp", "steinke", "gaussian_fdp", "gaussian_auc")


def make_trainer(epsilon: float, seed: int, *, epochs: int, optimizer: str = "sgd",
                 canaries: bool = True, mode: str = "auto") -> Trainer:
    data = load_digits()
    torch.manual_seed(seed)
    settings = TrainSettings(
        epochs=epochs, batch_size=BATCH, learning_rate=0.5 if optimizer == "sgd" else 2e-3,
        optimizer=optimizer, seed=seed,
        dp=DPSettings(target_epsilon=epsilon, delta=DELTA, accountant="rdp",
                      grad_sample_mode=mode,
                      canaries=CanarySettings(m=M, seed=seed) if canaries else None))
    return Trainer(small_cnn((8, 8, 1), 10, num_conv=1), data.x_train, data.y_train, settings,
                   device="cpu")


def bounds(scores: np.ndarray, included: np.ndarray) -> tuple[float, ...]:
    return tuple(epsilon_one_run(scores, included, delta=DELTA, method=method).epsilon
                 for method in METHODS)


def audit_observations(observations: np.ndarray, included: np.ndarray, q: float,
                       sigma: float) -> dict[str, tuple[float, ...]]:
    return {score: bounds(canary_scores(observations, score, sample_rate=q,
                                        noise_multiplier=sigma), included)
            for score in SCORES}


def ideal_median(included: np.ndarray, q: float, sigma: float, steps: int,
                 seeds: int) -> dict[str, tuple[float, ...]]:
    runs = [audit_observations(ideal_observations(M, included, sample_rate=q,
                                                  noise_multiplier=sigma, steps=steps,
                                                  seed=1000 + seed), included, q, sigma)
            for seed in range(seeds)]
    return {score: tuple(statistics.median(run[score][i] for run in runs)
                         for i in range(len(METHODS))) for score in SCORES}


def bench_validity_and_power(epsilons: list[float], trainings: int, epochs: int,
                             ideal_seeds: int) -> None:
    print(f"1. DP-SGD, small CNN on digits, m = {M}, {epochs} epochs; ε̂ ({' / '.join(METHODS)}) "
          "per score; ideal = median over "
          f"{ideal_seeds} simulated runs with the same q, σ, steps")
    for epsilon in epsilons:
        rows: dict[str, list[tuple[float, ...]]] = {score: [] for score in SCORES}
        ideal_rows: dict[str, list[tuple[float, ...]]] = {score: [] for score in SCORES}
        violations = 0
        for seed in range(trainings):
            trainer = make_trainer(epsilon, seed, epochs=epochs)
            trainer.fit()
            canaries = trainer.canaries
            gradients, _ = canaries.history()
            real = audit_observations(gradients, canaries.plan.included, canaries.sample_rate,
                                      canaries.noise_multiplier)
            ideal = ideal_median(canaries.plan.included, canaries.sample_rate,
                                 canaries.noise_multiplier, canaries.steps, ideal_seeds)
            for score in SCORES:
                rows[score].append(real[score])
                ideal_rows[score].append(ideal[score])
                violations += sum(value > trainer.epsilon() for value in real[score])
        print(f"  ε = {trainer.epsilon():.2f} (σ = {trainer.noise_multiplier:.3f}, "
              f"q = {trainer.sample_rate:.4f}, steps = {trainer.canaries.steps}); "
              f"ε̂ > ε in {violations} of {trainings * len(SCORES) * len(METHODS)} bounds")
        for score in SCORES:
            for i, method in enumerate(METHODS):
                real_values = [row[i] for row in rows[score]]
                ideal_values = [row[i] for row in ideal_rows[score]]
                real_median = statistics.median(real_values)
                ideal_med = statistics.median(ideal_values)
                ratio = real_median / ideal_med if ideal_med > 0 else float("nan")
                print(f"    {score:<25} {method:<12} real {_fmt(real_values)}  median "
                      f"{real_median:.3f} ({real_median / epsilon:.2f}×ε)  ideal median "
                      f"{ideal_med:.3f}  real/ideal {ratio:.2f}")


def _fmt(values: list[float]) -> str:
    return "[" + " ".join(f"{v:.2f}" for v in values) + "]"


def _slashed(values: tuple[float, ...]) -> str:
    return " / ".join(f"{v:.2f}" for v in values)


def _with_less_noise(trainer: Trainer) -> None:
    optimizer = trainer.optimizer
    honest = optimizer.add_noise

    def add_less_noise() -> None:
        claimed = optimizer.noise_multiplier
        optimizer.noise_multiplier = claimed / 10
        try:
            honest()
        finally:
            optimizer.noise_multiplier = claimed

    optimizer.add_noise = add_less_noise


def bench_bugs(epsilon: float, epochs: int) -> None:
    print(f"2. bug detection at claimed ε = {epsilon} (ε̂ must exceed it; "
          f"{' / '.join(METHODS)})")
    honest_factors = direct_clipping.clipping_factors
    cases: list[tuple[str, Callable[[Trainer], None]]] = [
        ("clipping disabled", lambda trainer: None),
        ("noise / 10, accountant told σ", _with_less_noise)]
    for name, sabotage in cases:
        if name == "clipping disabled":
            direct_clipping.clipping_factors = lambda norms, c: torch.ones_like(norms)
        try:
            trainer = make_trainer(epsilon, 0, epochs=epochs)
            sabotage(trainer)
            trainer.fit()
        finally:
            direct_clipping.clipping_factors = honest_factors
        canaries = trainer.canaries
        gradients, _ = canaries.history()
        real = audit_observations(gradients, canaries.plan.included, canaries.sample_rate,
                                  canaries.noise_multiplier)
        print(f"  {name:<30} accountant ε {trainer.epsilon():.2f}; " + "; ".join(
            f"{score} " + "/".join(f"{v:.2f}" for v in r) for score, r in real.items()))


def bench_adam(epsilon: float, epochs: int, trainings: int) -> None:
    print(f"3. DP-Adam at ε = {epsilon}: scoring released gradients vs parameter updates "
          f"({' / '.join(METHODS)})")
    for seed in range(trainings):
        trainer = make_trainer(epsilon, seed, epochs=epochs, optimizer="adam")
        trainer.fit()
        canaries = trainer.canaries
        _, updates = canaries.history()
        included = canaries.plan.included
        from_gradients = bounds(canaries.scores(), included)
        from_updates = bounds(-updates.sum(axis=0), included)
        print(f"  seed {seed}: gradients (centred LR) {_slashed(from_gradients)}   "
              f"updates (sum) {_slashed(from_updates)}")


def bench_black_box(epochs: int, m: int) -> None:
    print(f"5. black-box canaries: {m} mislabelled digits, scored by the log-probability of the "
          f"wrong label after {epochs} epochs ({' / '.join(METHODS)})")
    data = load_digits()
    for epsilon in (4.0, 8.0, None):
        plan = plan_input_canaries(data.y_train, data.num_classes, m, seed=0)
        x, y = plan.training_data(data.x_train, data.y_train)
        torch.manual_seed(0)
        dp = None if epsilon is None else DPSettings(target_epsilon=epsilon, delta=DELTA,
                                                     accountant="rdp")
        # Without DP: Adam for 3x the epochs, long enough to memorise mislabelled examples.
        settings = TrainSettings(epochs=epochs if dp else 3 * epochs, batch_size=BATCH,
                                 learning_rate=0.5 if dp else 2e-3,
                                 optimizer="sgd" if dp else "adam", dp=dp)
        trainer = Trainer(small_cnn((8, 8, 1), 10, num_conv=1), x, y, settings, device="cpu")
        trainer.fit()
        scores = plan.scores(trainer.predict(trainer.x, plan.index))
        found = bounds(scores, plan.included)
        label = f"no DP, Adam {3 * epochs} ep." if epsilon is None else \
            f"ε = {trainer.epsilon():.2f}"
        accuracy = float(np.mean(trainer.predict(trainer.x).argmax(1) == y))
        print(f"  {label:<18} black-box ε̂ {_slashed(found)}   (train accuracy "
              f"{accuracy:.3f}, canaries included)")


def codelab_trainer(epochs: int, canaries: bool, mode: str) -> Trainer:
    """The codelab's 3-conv CNN at Fashion-MNIST's shape, batch 250, on 5,000 random images."""
    rng = np.random.default_rng(0)
    x = rng.random((5000, 28, 28, 1), dtype=np.float32)
    torch.manual_seed(0)
    settings = TrainSettings(
        epochs=epochs, batch_size=250, optimizer="adam", seed=0,
        dp=DPSettings(noise_multiplier=1.0, grad_sample_mode=mode, accountant="rdp",
                      canaries=CanarySettings(m=M) if canaries else None))
    return Trainer(small_cnn((28, 28, 1), 10, num_conv=3), x, rng.integers(0, 10, 5000),
                   settings, device="cpu")


def bench_cost(epochs: int, mode: str, model: str) -> None:
    """Epoch time with canaries / without, interleaved epochs: medians of wall and of CPU
    time (CPU time is steadier on a machine shared with other jobs), and the spread of the
    per-pair ratios (25th-75th percentile)."""
    if model == "codelab":
        plain, audited = (codelab_trainer(epochs + 1, flag, mode) for flag in (False, True))
    else:
        plain, audited = (make_trainer(4.0, 0, epochs=epochs + 1, canaries=flag, mode=mode)
                          for flag in (False, True))
    for trainer in (plain, audited):  # warm-up: first-call costs are not per epoch
        trainer.train_epoch()
    wall: dict[str, list[float]] = {"plain": [], "canaries": []}
    cpu: dict[str, list[float]] = {"plain": [], "canaries": []}
    for _ in range(epochs):
        for name, trainer in (("plain", plain), ("canaries", audited)):
            started, started_cpu = time.perf_counter(), time.process_time()
            trainer.train_epoch()
            wall[name].append(time.perf_counter() - started)
            cpu[name].append(time.process_time() - started_cpu)
    print(f"4. cost, {model} model, {mode} mode, {plain.steps_per_epoch} steps/epoch, {epochs} "
          "interleaved epochs (target ≤ 1.15×):")
    for label, times in (("wall", wall), ("CPU", cpu)):
        plain_s, canary_s = (statistics.median(times[k]) for k in ("plain", "canaries"))
        pairs = np.array(times["canaries"]) / np.array(times["plain"])
        low, high = np.percentile(pairs, [25, 75])
        print(f"   {label:>4}: {plain_s:.3f} s vs {canary_s:.3f} s per epoch: "
              f"{canary_s / plain_s:.3f}× (per-epoch ratios {low:.2f}-{high:.2f})")


def bench_step_parts(epochs: int) -> None:
    """Median µs per call of what canaries add to a direct-mode step of the digits CNN:
    drawing them, clipping (``clip_and_sum`` with them minus without, from a trainer without
    canaries on the same batches) and reading the release at the m coordinates."""
    plain, audited = (make_trainer(4.0, 0, epochs=epochs + 1, canaries=flag, mode="direct")
                      for flag in (False, True))
    calls: dict[str, list[float]] = {}

    def timed(owner: object, name: str, label: str) -> None:
        method = getattr(owner, name)

        def wrapper(*args: object, **kwargs: object) -> object:
            started = time.perf_counter()
            result = method(*args, **kwargs)
            calls.setdefault(label, []).append(time.perf_counter() - started)
            return result

        setattr(owner, name, wrapper)

    for trainer in (plain, audited):
        trainer.train_epoch()
    timed(audited.canaries, "draw", "draw")
    timed(audited.canaries, "observe", "read")
    timed(audited.private.clipper, "clip_and_sum", "clip with canaries")
    timed(plain.private.clipper, "clip_and_sum", "clip without")
    for _ in range(epochs):
        for trainer in (plain, audited):
            trainer.train_epoch()
    medians = {label: 1e6 * statistics.median(times) for label, times in calls.items()}
    step = 1e6 * statistics.median(calls["clip without"])
    print(f"   per step, digits, direct mode, medians of {len(calls['draw'])} calls: draw "
          f"{medians['draw']:.1f} µs, clipping +"
          f"{medians['clip with canaries'] - medians['clip without']:.1f} µs "
          f"({step:.0f} µs without canaries), read {medians['read']:.1f} µs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--parts", default="power,bugs,adam,black,cost")
    args = parser.parse_args()
    torch.set_num_threads(1)
    trainings, epochs = (2, 5) if args.quick else (5, 10)
    parts = args.parts.split(",")
    if "power" in parts:
        bench_validity_and_power([1.0, 4.0, 8.0], trainings, epochs, ideal_seeds=5)
    if "bugs" in parts:
        bench_bugs(2.0, epochs)
    if "adam" in parts:
        bench_adam(4.0, epochs, min(trainings, 3))
    if "black" in parts:
        bench_black_box(epochs, 800)
    if "cost" in parts:
        for mode in ("direct", "hooks"):
            bench_cost(3 * epochs, mode, "digits")
        bench_step_parts(3 * epochs)
        bench_cost(3 if args.quick else 7, "direct", "codelab")


if __name__ == "__main__":
    main()
