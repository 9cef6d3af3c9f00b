"""Headline: LiRA and RMIA vs the loss-threshold attack on a Fashion-MNIST small CNN.

A population of 20,000 Fashion-MNIST training images; the target model trains on a random half
of it; 16 reference models of the same recipe train on balanced halves (each example is "in"
for 8 of them). Every population example is audited (10,000 members, 10,000 non-members).
The models train without augmentation, so the headline rows score the identity query only;
the same attacks are also scored averaged over every trained query view (flip, shifts), which
shows what test-time augmentation does to a model that never saw augmented images.
Prints and writes ``benchmarks/results/reference_headline.json`` with AUC, TPR@1% and TPR@0.1%
per attack, and a log-log ROC plot ``reference_headline_roc.png`` (identity rows). Finished
models are cached in ``benchmarks/results/cache/``, so an interrupted run resumes.

Usage: python benchmarks/reference_headline.py [--epochs 30] [--batch-size 64] [--num-conv 1]
       [--jobs 2] [--models 16] [--queries identity,hflip,shift:1:0,shift:0:1] [--tag SUFFIX]
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np

from memberscope import ModelOutputs, audit
from memberscope.data import load_dataset
from memberscope.metrics import roc_curve
from memberscope.outputs import ReferenceOutputs
from memberscope.reference.recipe import TrainingRecipe
from memberscope.reference.training import balanced_splits, train_models
from memberscope.store import atomic_write_json

RESULTS = Path(__file__).parent / "results"
ATTACKS = {  # label -> (registered attack, options)
    "loss threshold": ("threshold", {}),
    "LiRA online": ("lira", {"online": True, "variance": "per_example"}),
    "LiRA online, global variance": ("lira", {"online": True, "variance": "global"}),
    "LiRA offline": ("lira", {"online": False, "variance": "global"}),
    "RMIA online": ("rmia", {"online": True}),
    "RMIA offline, tuned a": ("rmia", {"online": False, "a": "tune"}),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--population", type=int, default=20_000)
    parser.add_argument("--models", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--num-conv", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--tag", default="", help="suffix of the result file names")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--queries", default="identity,hflip,shift:1:0,shift:0:1")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    data = load_dataset("fashion_mnist")
    pick = np.random.default_rng(args.seed).choice(data.n_train, args.population, replace=False)
    x, y = data.x_train[pick], data.y_train[pick]
    recipe = TrainingRecipe(architecture="small_cnn",
                            architecture_args={"num_conv": args.num_conv, "activation": "relu"},
                            optimizer="adam", learning_rate=1e-3, epochs=args.epochs,
                            batch_size=args.batch_size, seed=args.seed,
                            queries=tuple(args.queries.split(",")))
    target_split = balanced_splits(1, args.population, seed=args.seed + 10_000)
    splits = np.vstack([target_split, balanced_splits(args.models, args.population, args.seed)])
    start = time.perf_counter()
    signal, prob = train_models(
        recipe, x, y, splits, cache_dir=RESULTS / "cache", jobs=args.jobs,
        on_model_done=lambda i, cached: logging.info("model %d done%s", i,
                                                     " (cached)" if cached else ""))
    train_seconds = time.perf_counter() - start

    membership = splits[0]
    target = ModelOutputs(membership=membership, labels=y, loss=-np.log(np.maximum(
        prob[0, :, 0], np.finfo(np.float64).tiny)))
    rows, curves = [], {}
    query_sets = {"identity": [0], "all views": list(range(len(recipe.queries)))}
    for views, chosen in query_sets.items():
        reference = ReferenceOutputs(
            signal=signal[1:, :, chosen], true_class_prob=prob[1:, :, chosen],
            membership=splits[1:], labels=y, target_signal=signal[0][:, chosen],
            target_true_class_prob=prob[0][:, chosen])
        for label, (name, options) in ATTACKS.items():
            if name == "threshold" and views != "identity":
                continue  # the loss is of the identity view only
            result = audit(target, attacks=[name], slices=["entire"], reference=reference,
                           attack_options={name: options} if options else None,
                           fpr_targets=(0.001, 0.01, 0.1))
            row = result.row("entire_dataset", name)
            rows.append({"attack": label, "queries": views, "auc": row.auc,
                         "tpr_at_1pct_fpr": row.tpr_at_fpr[0.01],
                         "tpr_at_0.1pct_fpr": row.tpr_at_fpr[0.001],
                         "tpr_at_10pct_fpr": row.tpr_at_fpr[0.1]})
            if views == "identity":
                curves[label] = roc_curve(result.scores[name], membership)
    baseline = rows[0]["tpr_at_1pct_fpr"]
    for row in rows:
        row["tpr_at_1pct_vs_loss"] = row["tpr_at_1pct_fpr"] / baseline if baseline else None
    train_accuracy = float(np.mean(prob[0, membership, 0] > 0.5))
    test_accuracy = float(np.mean(prob[0, ~membership, 0] > 0.5))
    document = {
        "schema_version": 1,
        "setup": {"dataset": "fashion_mnist", "population": args.population,
                  "reference_models": args.models, "recipe": recipe.to_dict(),
                  "jobs": args.jobs, "train_seconds_this_run": round(train_seconds, 1),
                  "target_members": int(membership.sum()),
                  "target_p_true_gt_half_members": train_accuracy,
                  "target_p_true_gt_half_nonmembers": test_accuracy},
        "rows": rows,
    }
    atomic_write_json(RESULTS / f"reference_headline{args.tag}.json", document)
    print(f"{'attack':32s} {'queries':9s} {'AUC':>6s} {'TPR@1%':>7s} {'TPR@0.1%':>8s} "
          f"{'x loss':>6s}")
    for row in rows:
        ratio = row["tpr_at_1pct_vs_loss"]
        shown = "-" if ratio is None else f"{ratio:.1f}"
        print(f"{row['attack']:32s} {row['queries']:9s} {row['auc']:6.3f} "
              f"{row['tpr_at_1pct_fpr']:7.4f} {row['tpr_at_0.1pct_fpr']:8.4f} {shown:>6s}")
    print(f"training took {train_seconds:.0f} s (jobs={args.jobs})")
    _plot(curves, RESULTS / f"reference_headline{args.tag}_roc.png")


def _plot(curves: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5))
    for label, roc in curves.items():
        ax.loglog(np.maximum(roc.fpr, 1e-5), np.maximum(roc.tpr, 1e-5), label=label)
    ax.plot([1e-5, 1], [1e-5, 1], "k:", lw=0.8)
    ax.set(xlim=(1e-4, 1), ylim=(1e-4, 1), xlabel="false positive rate",
           ylabel="true positive rate", title="Fashion-MNIST small CNN, 16 reference models")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
