"""``memberscope reference train``: train reference models for LiRA/RMIA and save their outputs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from memberscope.train.settings import OPTIMIZERS

TARGET_STREAM = 1_000_000


def register(subparsers: Any) -> None:
    """Add the ``reference`` subcommand (``reference train``)."""
    parser = subparsers.add_parser(
        "reference", help="train reference (shadow) models for lira and rmia",
        description="Reference models for the lira and rmia attacks.")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    train = actions.add_parser(
        "train", help="train reference models on balanced halves of a population",
        description="Train --models reference models, each on a random half of a population "
                    "drawn from --data (every example is in about half of them), and save their "
                    "per-example signals to --out for `memberscope audit --reference`. "
                    "Finished models are cached in --cache, so a killed run resumes and a "
                    "re-run with more models reuses the first ones.")
    train.add_argument("--data", required=True,
                       help="dataset name (fashion_mnist, cifar10, digits) or a path to an .npz")
    train.add_argument("--population", type=int, default=None,
                       help="population size drawn from the training split (default: all)")
    train.add_argument("--models", type=int, default=16, help="number of reference models")
    train.add_argument("--epochs", type=int, default=10)
    train.add_argument("--batch-size", type=int, default=128)
    train.add_argument("--learning-rate", type=float, default=1e-3)
    train.add_argument("--optimizer", default="adam", choices=OPTIMIZERS)
    train.add_argument("--num-conv", type=int, default=3, help="conv blocks of the small CNN")
    train.add_argument("--queries", default="identity",
                       help="comma-separated query views: identity, hflip, shift:DX:DY")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--jobs", type=int, default=None,
                       help="local single-threaded worker processes (default: one per core)")
    train.add_argument("--executor", default="local", choices=("local", "ray"))
    train.add_argument("--ray-address", default=None, help="Ray cluster address (implies ray)")
    train.add_argument("--cache", type=Path, default=Path(".memberscope-cache/reference"),
                       help="cache folder of finished models")
    train.add_argument("--out", type=Path, required=True, help="ReferenceOutputs .npz to write")
    train.add_argument("--target-out", type=Path, default=None,
                       help="also train a target on another random half with the same recipe "
                            "and write its outputs (.npz for `memberscope audit`)")
    train.set_defaults(handler=handle_train)


def _progress(total: int) -> Any:
    def report(index: int, cached: bool) -> None:
        report.done += 1  # type: ignore[attr-defined]
        source = "from cache" if cached else "trained"
        print(f"model {index} {source} ({report.done}/{total})",  # type: ignore[attr-defined]
              file=sys.stderr)

    report.done = 0  # type: ignore[attr-defined]
    return report


def handle_train(args: argparse.Namespace) -> int:
    """Load the data, train (or reuse) the models, write the file(s)."""
    import numpy as np

    from memberscope._io import atomic_write_npz
    from memberscope._runtime import keep_freed_memory
    from memberscope.data import load_dataset
    from memberscope.errors import InputError
    from memberscope.outputs import ReferenceOutputs
    from memberscope.reference.executors import default_jobs
    from memberscope.reference.recipe import TrainingRecipe
    from memberscope.reference.training import balanced_splits, train_models

    keep_freed_memory()  # this command is an edge; worker processes do the same
    data = load_dataset(args.data)
    size = data.n_train if args.population is None else args.population
    if not 2 <= size <= data.n_train:
        raise InputError(f"--population must be in [2, {data.n_train}]; got {size}")
    pick = np.sort(np.random.default_rng(args.seed).choice(data.n_train, size, replace=False))
    x, y = data.x_train[pick], data.y_train[pick]
    recipe = TrainingRecipe(
        architecture="small_cnn", architecture_args={"num_conv": args.num_conv},
        optimizer=args.optimizer, learning_rate=args.learning_rate, epochs=args.epochs,
        batch_size=args.batch_size, seed=args.seed,
        queries=tuple(q.strip() for q in args.queries.split(",")))
    splits = balanced_splits(args.models, size, args.seed)
    seed_indices = list(range(args.models))
    if args.target_out is not None:  # its own split and seed, whatever the number of models
        splits = np.vstack([splits, balanced_splits(1, size, seed=args.seed + TARGET_STREAM)])
        seed_indices.append(TARGET_STREAM)
    signal, prob = train_models(recipe, x, y, splits, cache_dir=args.cache,
                                seed_indices=seed_indices,
                                executor=args.executor,
                                jobs=default_jobs() if args.jobs is None else args.jobs,
                                ray_address=args.ray_address, on_model_done=_progress(len(splits)))
    m = args.models
    target = {} if args.target_out is None else {
        "target_signal": signal[m], "target_true_class_prob": prob[m]}
    reference = ReferenceOutputs(signal=signal[:m], true_class_prob=prob[:m],
                                 membership=splits[:m], labels=y, **target)
    reference.save_npz(args.out)
    written = [str(args.out)]
    if args.target_out is not None:
        loss = -np.log(np.maximum(prob[m, :, 0], np.finfo(np.float64).tiny))
        atomic_write_npz(args.target_out, {"membership": splits[m], "labels": y, "loss": loss})
        written.append(str(args.target_out))
    print(f"{m} reference models on {size} examples ({len(recipe.queries)} queries each); "
          f"wrote {', '.join(written)}")
    return 0
