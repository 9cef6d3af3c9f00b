"""The split guard's targets on synthetic feature/loss models (issue 16), many audits each.

Run: ``nice -n 10 .venv/bin/python benchmarks/split_guard_validity.py [--audits 200]
[--only NAME] [--seed 0] --out benchmarks/results/split_guard_validity.jsonl`` (one JSON line
per audit, appended as they finish; ``--summarize FILE`` prints the rates). Not part of the
test suite; ``tests/unit/test_split_guard.py`` runs a few audits of the same generator.

The synthetic world. Each example has inputs (8×8×3 images: pixel noise around the example's
``brightness``), a label (10 classes) and a latent ``difficulty``. A model's true-class
logit margin is ``3.3 − difficulty − k·(brightness² − 1) + leak·member + ε``: ``k`` is how
strongly the model's fit degrades away from the training brightness (drawn per model, so two
models of one recipe respond differently), ``ε`` (sd 0.7) the per-example disagreement
between models, ``leak`` the memorisation of members (0 for a model that never saw them).
The other nine logits are standard normal, so a model classifies 86% of examples correctly
(the quickstart's CNNs: 85-87% on non-members). A control model is another draw with leak 0.

Shifts: ``input_shift`` moves the non-members' brightness (what the blind check sees);
``hardness`` raises their difficulty (only a model sees it: identical input statistics).
Every audit: threshold + lr on the entire dataset and each class (22 rows, as the codelab),
α = 0.05, Holm; a fresh seed per audit.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import memberscope as ms
from memberscope.metrics import LowResolutionWarning
from memberscope.results import leakage_rows

NUM_CLASSES = 10
BASE_MARGIN = 3.3
MODEL_NOISE = 0.7
RESPONSE_SPREAD = 0.25  # sd of log k across models of one recipe


@dataclass(frozen=True)
class World:
    """One synthetic split: who is a member, labels, inputs, and the latent variables."""

    membership: np.ndarray
    labels: np.ndarray
    brightness: np.ndarray
    difficulty: np.ndarray
    inputs: np.ndarray


def make_world(rng: np.random.Generator, n_per_side: int, *, input_shift: float = 0.0,
               hardness: float = 0.0) -> World:
    n = 2 * n_per_side
    membership = np.arange(n) < n_per_side
    brightness = rng.normal(0.0, 1.0, n) + input_shift * ~membership
    difficulty = rng.normal(0.0, 1.0, n) + hardness * ~membership
    inputs = (rng.normal(0.0, 1.0, (n, 8, 8, 3)) + brightness[:, None, None, None])
    return World(membership, rng.integers(0, NUM_CLASSES, n), brightness, difficulty,
                 inputs.astype(np.float32))


def model_logits(rng: np.random.Generator, world: World, *, leak: float,
                 response: float) -> np.ndarray:
    """(n, 10) logits of one model of the recipe; ``leak`` > 0: it memorised the members."""
    n = len(world.labels)
    k = response * float(np.exp(RESPONSE_SPREAD * rng.normal()))
    margin = (BASE_MARGIN - world.difficulty - k * (world.brightness ** 2 - 1.0)
              + leak * world.membership + rng.normal(0.0, MODEL_NOISE, n))
    logits = rng.normal(0.0, 1.0, (n, NUM_CLASSES))
    logits[np.arange(n), world.labels] += margin
    return logits


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(logits.argmax(axis=1) == labels))


@dataclass(frozen=True)
class Scenario:
    """One target of the issue: how the split and the models are drawn, what is given."""

    name: str
    n_per_side: int
    input_shift: float = 0.0
    hardness: float = 0.0
    leak: float | Callable[[int], float] = 0.0
    response: float = 0.1
    inputs: bool = True
    control: bool = False


def run_audit(scenario: Scenario, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng([16, seed])
    world = make_world(rng, scenario.n_per_side, input_shift=scenario.input_shift,
                       hardness=scenario.hardness)
    leak = scenario.leak(seed) if callable(scenario.leak) else scenario.leak
    target = model_logits(rng, world, leak=leak, response=scenario.response)
    outputs = ms.ModelOutputs(membership=world.membership, labels=world.labels,
                              logits=target,
                              inputs=world.inputs if scenario.inputs else None)
    control = None
    if scenario.control:
        control = ms.ModelOutputs(membership=world.membership, labels=world.labels,
                                  logits=model_logits(rng, world, leak=0.0,
                                                      response=scenario.response))
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LowResolutionWarning)
        result = ms.audit(outputs, attacks=["threshold", "lr"], slices=["entire", "class"],
                          seed=seed, control=control)
    seconds = time.perf_counter() - started
    guard = result.split_guard
    assert guard is not None
    attack_rows = [r for r in result.rows if not r.measures_split]
    entire = result.row("entire_dataset", "threshold")
    return {
        "scenario": scenario.name, "seed": seed, "leak": leak, "seconds": seconds,
        "verdict": guard.verdict, "blind_auc": guard.blind_auc,
        "blind_p_value": guard.blind_p_value, "control_auc": guard.control_auc,
        "control_p_value": guard.control_p_value,
        "threshold_auc": entire.auc, "lr_auc": result.row("entire_dataset", "lr").auc,
        "any_significant": any(r.significant for r in attack_rows),
        "any_beyond_split": any(bool(r.beyond_split_significant) for r in attack_rows),
        "headline_calls_leaky": bool(leakage_rows(result.rows, guard)),
        "target_accuracy_members": accuracy(target[world.membership],
                                            world.labels[world.membership]),
        "target_accuracy_nonmembers": accuracy(target[~world.membership],
                                               world.labels[~world.membership]),
        "control_accuracy": (None if control is None else
                             [accuracy(control.logits[side], world.labels[side])
                              for side in (world.membership, ~world.membership)]),
    }


def hardness_for_accuracy_drop(drop: float, response: float = 0.1) -> float:
    """The ``hardness`` whose non-members a control model classifies ``drop`` less often
    (bisection on 200,000 simulated examples per side; deterministic)."""

    def control_accuracy(hardness: float) -> float:
        rng = np.random.default_rng(0)
        world = make_world(rng, 100_000, hardness=hardness)
        logits = model_logits(rng, world, leak=0.0, response=response)
        return accuracy(logits[~world.membership], world.labels[~world.membership])

    baseline = control_accuracy(0.0)
    low, high = 0.0, 1.0
    for _ in range(25):
        middle = (low + high) / 2
        low, high = (middle, high) if baseline - control_accuracy(middle) < drop else (low,
                                                                                        middle)
    return (low + high) / 2


INPUT_SHIFT = 0.42  # blind AUC about 0.60 at 2,000 per side (measured: see --summarize)
LEAK = 0.95  # the threshold attack's AUC about 0.66 on a split of blind AUC 0.60


def scenarios() -> list[Scenario]:
    hardness = hardness_for_accuracy_drop(0.03)
    return [
        Scenario("validity_same_distribution", 1000, leak=lambda seed: 1.0 * (seed % 2),
                 control=True),
        Scenario("power_inputs", 2000, input_shift=INPUT_SHIFT),
        Scenario("power_model_only", 2000, hardness=hardness, control=True),
        Scenario("no_false_leak_inputs_blind", 2000, input_shift=INPUT_SHIFT),
        Scenario("no_false_leak_inputs_control", 2000, input_shift=INPUT_SHIFT, control=True),
        Scenario("no_false_leak_model_only_control", 2000, hardness=hardness, control=True),
        Scenario("leak_beyond_inputs_blind", 2000, input_shift=INPUT_SHIFT, leak=LEAK),
        Scenario("leak_beyond_inputs_control", 2000, input_shift=INPUT_SHIFT, leak=LEAK,
                 control=True),
        Scenario("leak_beyond_model_only_control", 2000, hardness=hardness, leak=LEAK,
                 control=True),
        # Limits, stated in the docs: a split the model feels more than the blind featurizer
        # sees (inputs shifted a little, non-members also harder), with no control; and a
        # model-only shift with no control.
        Scenario("limit_model_feels_more_blind_only", 2000, input_shift=INPUT_SHIFT,
                 hardness=0.6),
        Scenario("limit_model_only_no_control", 2000, hardness=hardness),
    ]


def summarize(path: Path) -> None:
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    by_scenario: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_scenario.setdefault(record["scenario"], []).append(record)
    print(f"{'scenario':36s} {'audits':>6s} {'shifted':>8s} {'signif.':>8s} {'beyond':>7s} "
          f"{'leaky':>6s} {'blind AUC':>10s} {'control':>8s} {'thr AUC':>8s} {'lr AUC':>7s} "
          f"{'s/audit':>7s}")
    for name, group in by_scenario.items():
        def rate(key: str, group: list[dict[str, Any]] = group) -> str:
            return f"{sum(bool(r[key]) for r in group) / len(group):.3f}"

        def mean(key: str, group: list[dict[str, Any]] = group) -> str:
            values = [r[key] for r in group if r[key] is not None]
            return f"{np.mean(values):.3f}" if values else "-"

        shifted = sum(r["verdict"] == "shifted" for r in group) / len(group)
        print(f"{name:36s} {len(group):6d} {shifted:8.3f} {rate('any_significant'):>8s} "
              f"{rate('any_beyond_split'):>7s} {rate('headline_calls_leaky'):>6s} "
              f"{mean('blind_auc'):>10s} {mean('control_auc'):>8s} {mean('threshold_auc'):>8s} "
              f"{mean('lr_auc'):>7s} {np.median([r['seconds'] for r in group]):7.2f}")
        controls = [r["control_accuracy"] for r in group if r["control_accuracy"]]
        if controls:
            members, nonmembers = np.mean(controls, axis=0)
            print(f"{'':36s} control accuracy: members {members:.3f}, non-members "
                  f"{nonmembers:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--audits", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0, help="first audit seed")
    parser.add_argument("--only", default=None, help="comma-separated scenario names")
    parser.add_argument("--out", type=Path,
                        default=Path("benchmarks/results/split_guard_validity.jsonl"))
    parser.add_argument("--summarize", type=Path, default=None)
    args = parser.parse_args()
    if args.summarize is not None:
        summarize(args.summarize)
        return
    chosen = None if args.only is None else set(args.only.split(","))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for scenario in scenarios():
        if chosen is not None and scenario.name not in chosen:
            continue
        for seed in range(args.seed, args.seed + args.audits):
            record = run_audit(scenario, seed)
            with args.out.open("a") as handle:
                handle.write(json.dumps(record) + "\n")
        print(f"{scenario.name}: done", file=sys.stderr, flush=True)
    summarize(args.out)


if __name__ == "__main__":
    main()
