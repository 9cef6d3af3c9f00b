"""The split guard on real models: the quickstart's recipe on a same-distribution split and on
two shifted ones (issue 16's end-to-end check and the README's figures).

Run: ``nice -n 10 .venv/bin/python benchmarks/split_guard_models.py [--seeds 3]
[--epochs 18] --out benchmarks/results/split_guard_models.jsonl`` (``--summarize FILE``
prints the table). Needs the torch extra and Fashion-MNIST (Debian's dataset-fashion-mnist).

For each seed, disjoint seeded sets of 5,000 of Fashion-MNIST's training images (padded to
32×32, as the quickstart): members M, a third set T, a control set C, held-out H. Three small
CNNs of the quickstart's recipe (2 conv layers, Adam at 0.003, batch 50): the *leaking* model
trained on M, the *third-set* model trained on T (it never saw M: it can leak nothing about
M), the control trained on C. Each of the two is audited as the quickstart audits (threshold
+ lr on the entire dataset and each class, all 5,000 members against 5,000 non-members),
with the inputs and the control model, on three splits: non-members H (same distribution:
the quickstart's split), 5,000 images of the test split (the split the quickstart avoids),
H brightened by ``--brightness`` grey levels (a shifted copy: Fashion-MNIST's black background
turns grey, which a pixel summary sees at once), and H with its contrast raised by
``--contrast`` (the background stays black: a subtler copy).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

import memberscope as ms
from memberscope.data import load_dataset
from memberscope.metrics import LowResolutionWarning
from memberscope.results import leakage_rows
from memberscope.summary import summarize as summarize_result

N = 5000


def train(x: np.ndarray, y: np.ndarray, *, seed: int, epochs: int) -> Any:
    from memberscope.train.models import build_model
    from memberscope.train.settings import TrainSettings
    from memberscope.train.trainer import Trainer

    model = build_model("small_cnn", x.shape[1:], 10, num_conv=2, seed=seed)
    trainer = Trainer(model, x, y, TrainSettings(epochs=epochs, batch_size=50,
                                                 learning_rate=0.003, seed=seed))
    for _ in range(epochs):
        trainer.train_epoch()
    return trainer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=18)
    parser.add_argument("--brightness", type=int, default=12)
    parser.add_argument("--contrast", type=float, default=1.05)
    parser.add_argument("--out", type=Path,
                        default=Path("benchmarks/results/split_guard_models.jsonl"))
    parser.add_argument("--summarize", type=Path, default=None)
    args = parser.parse_args()
    if args.summarize is not None:
        summarize(args.summarize)
        return
    import torch

    torch.set_num_threads(1)
    warnings.simplefilter("ignore", LowResolutionWarning)
    data = load_dataset("fashion_mnist")
    pad = ((0, 0), (2, 2), (2, 2), (0, 0))
    x_train, x_test = np.pad(data.x_train, pad), np.pad(data.x_test, pad)
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        rng = np.random.default_rng([16, seed])
        order = rng.permutation(len(x_train))
        members, third, control_set, held_out = (order[i * N:(i + 1) * N] for i in range(4))
        test = rng.choice(len(x_test), N, replace=False)
        started = time.perf_counter()
        trainers = {name: train(x_train[rows], data.y_train[rows], seed=seed * 10 + k,
                                epochs=args.epochs)
                    for k, (name, rows) in enumerate((("leaking", members),
                                                       ("third set", third),
                                                       ("control", control_set)))}
        trained = time.perf_counter() - started
        brightened = np.clip(x_train[held_out] + args.brightness / 255, 0.0, 1.0)
        splits = {"same distribution (held-out training images)":
                  (x_train[held_out], data.y_train[held_out]),
                  "test split": (x_test[test], data.y_test[test]),
                  f"held-out images +{args.brightness} grey levels":
                  (brightened, data.y_train[held_out]),
                  f"held-out images, contrast x{args.contrast:g}":
                  (np.clip(x_train[held_out] * args.contrast, 0.0, 1.0),
                   data.y_train[held_out])}
        for split, (x_out, y_out) in splits.items():
            x_in, y_in = x_train[members], data.y_train[members]
            control = outputs_of(trainers["control"], x_in, y_in, x_out, y_out)
            for model in ("leaking", "third set"):
                outputs = outputs_of(trainers[model], x_in, y_in, x_out, y_out, inputs=True)
                record = audit_record(outputs, control, seed)
                record.update(seed=seed, split=split, model=model, train_seconds=trained)
                with args.out.open("a") as handle:
                    handle.write(json.dumps(record) + "\n")
                print(json.dumps(record), flush=True)
    summarize(args.out)


def outputs_of(trainer: Any, x_in: np.ndarray, y_in: np.ndarray, x_out: np.ndarray,
               y_out: np.ndarray, *, inputs: bool = False) -> ms.ModelOutputs:
    from memberscope.train.trainer import as_model_input

    def logits(x: np.ndarray) -> np.ndarray:
        import torch

        return trainer.predict(as_model_input(torch.as_tensor(x), trainer.device)).astype(
            np.float64)

    return ms.ModelOutputs.from_train_test(
        logits_train=logits(x_in), logits_test=logits(x_out), labels_train=y_in,
        labels_test=y_out, inputs_train=x_in if inputs else None,
        inputs_test=x_out if inputs else None)


def audit_record(outputs: ms.ModelOutputs, control: ms.ModelOutputs,
                 seed: int) -> dict[str, Any]:
    records = {}
    for guard, given in (("blind", None), ("blind + control", control)):
        result = ms.audit(outputs, attacks=["threshold", "lr"], slices=["entire", "class"],
                          seed=seed, control=given)
        split_guard = result.split_guard
        assert split_guard is not None
        attack_rows = [r for r in result.rows if not r.measures_split]
        records[guard] = {
            "verdict": split_guard.verdict, "blind_auc": split_guard.blind_auc,
            "blind_p_value": split_guard.blind_p_value,
            "control_auc": split_guard.control_auc,
            "control_p_value": split_guard.control_p_value,
            "any_significant": any(r.significant for r in attack_rows),
            "any_beyond_split": any(bool(r.beyond_split_significant) for r in attack_rows),
            "headline_calls_leaky": bool(leakage_rows(result.rows, split_guard)),
            "headline": summarize_result(result).headline_text}
    entire = result.row("entire_dataset", "threshold")
    return {"threshold_auc": entire.auc, "lr_auc": result.row("entire_dataset", "lr").auc,
            "test_accuracy": float(np.mean(outputs.is_correct[~outputs.membership])),
            **{f"{guard}: {k}": v for guard, fields in records.items()
               for k, v in fields.items()}}


def summarize(path: Path) -> None:
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for record in records:
        groups.setdefault((record["split"], record["model"]), []).append(record)
    for (split, model), group in groups.items():
        def spread(key: str, group: list[dict[str, Any]] = group) -> str:
            values = [r[key] for r in group if r[key] is not None]
            return (f"{min(values):.3f}-{max(values):.3f}" if values else "-")

        print(f"{split} / {model} model ({len(group)} seeds): threshold AUC "
              f"{spread('threshold_auc')}, blind AUC {spread('blind: blind_auc')}, control "
              f"AUC {spread('blind + control: control_auc')}, test accuracy "
              f"{spread('test_accuracy')}")
        for guard in ("blind", "blind + control"):
            verdicts = [r[f"{guard}: verdict"] for r in group]
            leaky = sum(r[f"{guard}: headline_calls_leaky"] for r in group)
            beyond = sum(r[f"{guard}: any_beyond_split"] for r in group)
            print(f"    guard {guard:16s}: verdicts {verdicts}, headline calls the model "
                  f"leaky in {leaky}/{len(group)}, any row beyond the split in "
                  f"{beyond}/{len(group)}")
        print(f"    e.g. {group[0]['blind + control: headline']}")


if __name__ == "__main__":
    sys.exit(main())
