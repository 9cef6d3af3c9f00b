"""Training reference models on balanced random halves of a population, with a disk cache.

Reference model j trains on the examples where ``splits[j]`` is True. Splits come in
complementary pairs (model 2k trains on a random half, model 2k+1 on the other half), so with
an even number of models every example is "in" for exactly half of them, and the first models'
splits do not depend on how many models are asked for: a re-run with more models reuses the
finished ones. Each finished model's signals are cached in ``cache_dir`` under a content hash
of (trainer, recipe, data, split, seed), written atomically as ``.npz``; a killed run resumes.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from memberscope._seeding import stream_rng, stream_seed
from memberscope.errors import InputError
from memberscope.outputs import ReferenceOutputs, true_class_signals
from memberscope.reference.executors import Executor, get_executor
from memberscope.reference.recipe import TrainingRecipe

logger = logging.getLogger(__name__)

CACHE_SCHEMA_VERSION = 1
Trainer = Callable[..., np.ndarray]
"""``trainer(recipe, x, y, member_index, query_x, query_y, seed) -> (q, n, C) logits``; its
module, name and ``cache_tag`` attribute (a version string, optional) enter the cache key."""


def balanced_splits(n_models: int, n: int, seed: int = 0) -> np.ndarray:
    """(n_models, n) bool: complementary pairs of seeded random halves.

    Row 2k holds a random half of the n examples (n // 2 of them), row 2k + 1 the rest. Row j
    depends only on (seed, j // 2), never on ``n_models``.
    """
    if n_models < 1 or n < 2:
        raise InputError(f"balanced_splits needs n_models >= 1 and n >= 2; got {n_models}, {n}")
    rows = np.empty((n_models, n), dtype=bool)
    for pair in range((n_models + 1) // 2):
        half = np.zeros(n, dtype=bool)
        half[stream_rng(seed, pair).permutation(n)[: n // 2]] = True
        rows[2 * pair] = half
        if 2 * pair + 1 < n_models:
            rows[2 * pair + 1] = ~half
    return rows


def model_seed(base_seed: int, index: int) -> int:
    """The training seed of model ``index``: the stream ``(index,)`` of the base seed
    (:mod:`memberscope._seeding`), stable everywhere."""
    return stream_seed(base_seed, index)


def data_digest(*arrays: np.ndarray) -> str:
    """SHA-256 over the dtype, shape and bytes of each array."""
    digest = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def _trainer_name(trainer: Trainer) -> str:
    """Module, name and optional ``cache_tag`` attribute of the trainer (its code version)."""
    name = f"{getattr(trainer, '__module__', '?')}.{getattr(trainer, '__qualname__', '?')}"
    return f"{name}#{getattr(trainer, 'cache_tag', '')}"


def cache_key(trainer: Trainer, recipe: TrainingRecipe, data: str, split: np.ndarray,
              seed: int) -> str:
    """Content hash of one model: the trainer, recipe, data digest, split and seed."""
    digest = hashlib.sha256()
    for part in (f"memberscope-reference-cache-{CACHE_SCHEMA_VERSION}", _trainer_name(trainer),
                 recipe.digest(), data, str(seed)):
        digest.update(part.encode())
        digest.update(b"\0")
    digest.update(np.packbits(split).tobytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class ModelTask:
    """One model to train: its position, training examples and seed."""

    index: int
    member_index: np.ndarray
    seed: int


def train_one(task: ModelTask, recipe: TrainingRecipe, trainer: Trainer, x: np.ndarray,
              y: np.ndarray, query_x: np.ndarray, query_y: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray]:
    """Train one model and return its (signal, true_class_prob), each (n, q)."""
    logits = trainer(recipe, x, y, task.member_index, query_x, query_y, task.seed)
    logits = np.asarray(logits)
    expected = (len(recipe.queries), len(query_y))
    if logits.ndim != 3 or logits.shape[:2] != expected:
        raise InputError(f"trainer returned logits of shape {logits.shape}; expected "
                         f"(q, n, C) with (q, n) = {expected}")
    signal, prob = true_class_signals(logits, query_y)
    return signal.T.copy(), prob.T.copy()


def _load_cached(path: Path, key: str, shape: tuple[int, int]
                 ) -> tuple[np.ndarray, np.ndarray] | None:
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as archive:
            ok = (int(archive["schema_version"]) == CACHE_SCHEMA_VERSION
                  and str(archive["key"]) == key and archive["signal"].shape == shape)
            if ok:
                return archive["signal"], archive["true_class_prob"]
    except (OSError, KeyError, ValueError) as exc:
        logger.warning("ignoring unreadable cache file %s: %s", path, exc)
        return None
    logger.warning("ignoring cache file %s: it does not match its key", path)
    return None


def train_models(recipe: TrainingRecipe, x: np.ndarray, y: np.ndarray, splits: np.ndarray, *,
                 query_x: np.ndarray | None = None, query_y: np.ndarray | None = None,
                 cache_dir: str | Path | None = None, executor: str | Executor = "local",
                 jobs: int = 1, ray_address: str | None = None, trainer: Trainer | None = None,
                 seed_indices: Sequence[int] | None = None,
                 on_model_done: Callable[[int, bool], None] | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Train one model per row of ``splits`` and score the queries of every example.

    Parameters
    ----------
    recipe : TrainingRecipe
    x : (N, ...) float
        Population features (images NHWC for the built-in trainer).
    y : (N,) int
    splits : (k, N) bool
        Row j: the training examples of model j.
    query_x, query_y : (n, ...), (n,), optional
        Examples to score (default: the population itself).
    cache_dir : path, optional
        Cache of finished models; without it nothing is cached.
    executor : "local", "ray" or an Executor
    jobs : int
        Single-threaded workers of the local executor (cores used); 1 trains in this
        process with one thread.
    ray_address : str, optional
        Address of a Ray cluster (implies the Ray executor).
    trainer : callable, optional
        ``trainer(recipe, x, y, member_index, query_x, query_y, seed) -> (q, n, C) logits``;
        default: the built-in PyTorch trainer.
    seed_indices : (k,) int, optional
        Model j is trained with ``model_seed(recipe.seed, seed_indices[j])`` (default j), so a
        model keeps its seed (and cache entry) when rows are added around it.
    on_model_done : callable(index, from_cache), optional
        Called as each model finishes (progress reporting).

    Returns
    -------
    signal, true_class_prob : (k, n, q) float64
    """
    if trainer is None:
        from memberscope.reference._torch_trainer import train_and_score

        trainer = train_and_score
    y = np.asarray(y)
    splits = np.asarray(splits, dtype=bool)
    if splits.ndim != 2 or splits.shape[1] != len(y) or len(x) != len(y):
        raise InputError(f"splits must be (k, N) with N = len(x) = len(y) = {len(y)}; got "
                         f"splits {splits.shape}, x {len(x)} rows")
    query_x = x if query_x is None else query_x
    query_y = y if query_y is None else np.asarray(query_y)
    n_queries, n = len(recipe.queries), len(query_y)
    signal = np.empty((len(splits), n, n_queries))
    prob = np.empty_like(signal)
    digest = data_digest(np.asarray(x), y, np.asarray(query_x), query_y)
    tasks, paths = [], []
    cache = None if cache_dir is None else Path(cache_dir)
    if seed_indices is None:
        seed_indices = range(len(splits))
    if len(seed_indices) != len(splits):
        raise InputError(f"seed_indices must have one entry per split ({len(splits)}); got "
                         f"{len(seed_indices)}")
    for index, split in enumerate(splits):
        seed = model_seed(recipe.seed, int(seed_indices[index]))
        key = cache_key(trainer, recipe, digest, split, seed)
        path = None if cache is None else cache / f"{key}.npz"
        cached = None if path is None else _load_cached(path, key, (n, n_queries))
        if cached is not None:
            signal[index], prob[index] = cached
            if on_model_done is not None:
                on_model_done(index, True)
            continue
        tasks.append(ModelTask(index, np.flatnonzero(split), seed))
        paths.append((path, key))
    logger.info("training %d model(s), %d from cache", len(tasks), len(splits) - len(tasks))
    runner = executor if not isinstance(executor, str) else get_executor(
        executor, jobs=jobs, ray_address=ray_address)
    shared = (recipe, trainer, x, y, query_x, query_y)
    for position, (model_signal, model_prob) in runner.map_unordered(train_one, tasks, shared):
        index = tasks[position].index
        signal[index], prob[index] = model_signal, model_prob
        path, key = paths[position]
        if path is not None:
            from memberscope._io import atomic_write_npz

            atomic_write_npz(path, {"schema_version": np.asarray(CACHE_SCHEMA_VERSION),
                                    "key": np.asarray(key), "signal": model_signal,
                                    "true_class_prob": model_prob})
        if on_model_done is not None:
            on_model_done(index, False)
    return signal, prob


def train_reference_models(recipe: TrainingRecipe, x: np.ndarray, y: np.ndarray, *,
                           n_models: int, split_seed: int = 0, **options: Any
                           ) -> ReferenceOutputs:
    """Train ``n_models`` reference models on balanced halves of the population (x, y).

    The audited examples are the population itself unless ``query_x``/``query_y`` are given
    (then ``splits`` still index the population). Other keyword options are those of
    :func:`train_models`.

    Returns
    -------
    ReferenceOutputs
        Signals (n_models, n, q), membership (n_models, n) when the queries are the
        population; labels are the queried examples' labels.
    """
    if "query_x" in options and options["query_x"] is not None:
        raise InputError("train_reference_models audits the population itself; for other "
                         "query examples use train_models and build ReferenceOutputs")
    splits = balanced_splits(n_models, len(y), split_seed)
    signal, prob = train_models(recipe, x, y, splits, **options)
    return ReferenceOutputs(signal=signal, true_class_prob=prob, membership=splits,
                            labels=np.asarray(y))
