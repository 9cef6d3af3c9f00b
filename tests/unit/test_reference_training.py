"""Reference training without torch: splits, seeds, caching, resuming, executors."""

from __future__ import annotations

import os

import numpy as np
import pytest
from tests.helpers.reference import FAIL_ENV, fake_trainer, pid_and_threads

from memberscope.errors import InputError, UnknownNameError
from memberscope.reference.executors import LocalExecutor, RayExecutor, get_executor
from memberscope.reference.recipe import TrainingRecipe
from memberscope.reference.training import (
    balanced_splits,
    cache_key,
    model_seed,
    train_models,
    train_reference_models,
)

RECIPE = TrainingRecipe(epochs=1, queries=("identity", "hflip"), seed=3)


def _population(n: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 2)), rng.integers(0, 3, n)


def test_balanced_splits_are_exact_halves_and_stable_in_the_count() -> None:
    splits = balanced_splits(6, 101, seed=4)
    assert splits.shape == (6, 101)
    assert (splits[0::2].sum(axis=1) == 50).all()
    np.testing.assert_array_equal(splits[1::2], ~splits[0::2])
    np.testing.assert_array_equal(splits.sum(axis=0), 3)  # every example in for half
    np.testing.assert_array_equal(balanced_splits(3, 101, seed=4), splits[:3])
    assert not np.array_equal(balanced_splits(2, 101, seed=5), splits[:2])
    with pytest.raises(InputError, match="n_models >= 1"):
        balanced_splits(0, 10)


def test_model_seeds_differ_and_are_stable() -> None:
    seeds = [model_seed(0, j) for j in range(50)]
    assert len(set(seeds)) == 50
    assert model_seed(0, 7) == seeds[7]
    assert model_seed(1, 7) != seeds[7]


def test_recipe_round_trip_digest_and_validation() -> None:
    recipe = TrainingRecipe(architecture_args={"num_conv": 2}, queries=("identity", "shift:1:0"))
    again = TrainingRecipe.from_dict(recipe.to_dict())
    assert again == recipe and again.digest() == recipe.digest()
    assert TrainingRecipe(epochs=2).digest() != TrainingRecipe(epochs=3).digest()
    with pytest.raises(InputError, match=r"TrainingRecipe.optimizer: unknown optimizer 'adagrad'"
                                         r".*\nTrainingRecipe.epochs: must be >= 1; got 0"):
        TrainingRecipe(optimizer="adagrad", epochs=0)
    with pytest.raises(InputError, match=r"TrainingRecipe\.queries: must start with 'identity'"):
        TrainingRecipe(queries=("hflip",))
    with pytest.raises(InputError, match=r"unknown key\(s\) \['epoch'\]"):
        TrainingRecipe.from_dict({"epoch": 3})


def test_cache_key_changes_with_every_ingredient() -> None:
    split = balanced_splits(1, 20)[0]
    base = cache_key(fake_trainer, RECIPE, "data", split, 1)
    assert base == cache_key(fake_trainer, RECIPE, "data", split.copy(), 1)
    assert len({base, cache_key(fake_trainer, TrainingRecipe(epochs=2), "data", split, 1),
                cache_key(fake_trainer, RECIPE, "other", split, 1),
                cache_key(fake_trainer, RECIPE, "data", ~split, 1),
                cache_key(fake_trainer, RECIPE, "data", split, 2),
                cache_key(pid_and_threads, RECIPE, "data", split, 1)}) == 6


def test_reference_models_are_leaky_and_balanced() -> None:
    x, y = _population()
    ref = train_reference_models(RECIPE, x, y, n_models=4, trainer=fake_trainer)
    assert ref.signal.shape == (4, 40, 2)
    np.testing.assert_array_equal(ref.membership.sum(axis=0), 2)
    np.testing.assert_array_equal(ref.labels, y)
    inside = ref.signal[ref.membership].mean()
    outside = ref.signal[~ref.membership].mean()
    assert inside > outside + 1.0


def test_cache_reuses_finished_models_and_more_models_extend_it(tmp_path) -> None:
    x, y = _population()
    events: list[tuple[int, bool]] = []
    first = train_reference_models(RECIPE, x, y, n_models=4, trainer=fake_trainer,
                                   cache_dir=tmp_path, on_model_done=lambda i, c: events.append(
                                       (i, c)))
    assert sorted(events) == [(0, False), (1, False), (2, False), (3, False)]
    assert len(list(tmp_path.glob("*.npz"))) == 4
    events.clear()
    more = train_reference_models(RECIPE, x, y, n_models=6, trainer=fake_trainer,
                                  cache_dir=tmp_path, on_model_done=lambda i, c: events.append(
                                      (i, c)))
    assert sorted(events) == [(0, True), (1, True), (2, True), (3, True), (4, False),
                              (5, False)]
    np.testing.assert_array_equal(more.signal[:4], first.signal)
    np.testing.assert_array_equal(more.true_class_prob[:4], first.true_class_prob)


def test_a_killed_run_resumes_from_the_cache(tmp_path, monkeypatch) -> None:
    x, y = _population()
    splits = balanced_splits(4, 40)
    done: list[int] = []
    monkeypatch.setenv(FAIL_ENV, str(model_seed(RECIPE.seed, 2)))
    with pytest.raises(RuntimeError, match="simulated crash"):
        train_models(RECIPE, x, y, splits, trainer=fake_trainer, cache_dir=tmp_path,
                     on_model_done=lambda i, c: done.append(i))
    assert done == [0, 1] and len(list(tmp_path.glob("*.npz"))) == 2
    monkeypatch.delenv(FAIL_ENV)
    events: list[tuple[int, bool]] = []
    signal, _ = train_models(RECIPE, x, y, splits, trainer=fake_trainer, cache_dir=tmp_path,
                             on_model_done=lambda i, c: events.append((i, c)))
    assert events == [(0, True), (1, True), (2, False), (3, False)]
    fresh, _ = train_models(RECIPE, x, y, splits, trainer=fake_trainer)
    np.testing.assert_array_equal(signal, fresh)


def test_a_corrupt_cache_file_is_retrained(tmp_path) -> None:
    x, y = _population()
    splits = balanced_splits(2, 40)
    expected, _ = train_models(RECIPE, x, y, splits, trainer=fake_trainer, cache_dir=tmp_path)
    victim = sorted(tmp_path.glob("*.npz"))[0]
    victim.write_bytes(b"garbage")
    events: list[tuple[int, bool]] = []
    signal, _ = train_models(RECIPE, x, y, splits, trainer=fake_trainer, cache_dir=tmp_path,
                             on_model_done=lambda i, c: events.append((i, c)))
    assert sorted(c for _, c in events) == [False, True]
    np.testing.assert_array_equal(signal, expected)
    with np.load(victim, allow_pickle=False) as archive:  # rewritten, valid again
        assert archive["signal"].shape == (40, 2)


def test_local_pool_matches_in_process_and_uses_separate_single_threaded_workers() -> None:
    x, y = _population()
    splits = balanced_splits(4, 40)
    serial, _ = train_models(RECIPE, x, y, splits, trainer=fake_trainer, jobs=1)
    pooled, _ = train_models(RECIPE, x, y, splits, trainer=fake_trainer, jobs=2)
    np.testing.assert_array_equal(pooled, serial)
    results = dict(LocalExecutor(2).map_unordered(pid_and_threads, [0.3] * 4, ()))
    assert sorted(results) == [0, 1, 2, 3]
    pids = {pid for pid, _ in results.values()}
    assert len(pids) == 2 and os.getpid() not in pids
    assert {threads for _, threads in results.values()} == {"1"}


def test_in_process_job_runs_single_threaded_and_restores_threads() -> None:
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    saved_env = os.environ.get("OMP_NUM_THREADS")
    results = dict(LocalExecutor(1).map_unordered(pid_and_threads, [0.0, 0.0], ()))
    assert {pid for pid, _ in results.values()} == {os.getpid()}
    assert {threads for _, threads in results.values()} == {"1"}
    inside = dict(LocalExecutor(1).map_unordered(lambda _: torch.get_num_threads(), [0], ()))
    assert inside == {0: 1}
    assert torch.get_num_threads() == before
    assert os.environ.get("OMP_NUM_THREADS") == saved_env
    two = dict(LocalExecutor(1, threads_per_job=2).map_unordered(pid_and_threads, [0.0], ()))
    assert two[0][1] == "2"
    with pytest.raises(InputError, match="threads_per_job must be >= 1"):
        LocalExecutor(2, threads_per_job=0)


def test_executor_names() -> None:
    assert isinstance(get_executor("local", jobs=3), LocalExecutor)
    assert isinstance(get_executor("local", ray_address="127.0.0.1:1"), RayExecutor)
    with pytest.raises(UnknownNameError, match="did you mean 'ray'"):
        get_executor("rayy")
    with pytest.raises(InputError, match="jobs must be >= 1"):
        LocalExecutor(0)


def test_train_models_checks_shapes_and_trainer_output() -> None:
    x, y = _population()
    with pytest.raises(InputError, match=r"splits must be \(k, N\)"):
        train_models(RECIPE, x, y, np.ones((2, 39), bool), trainer=fake_trainer)

    def bad_trainer(*args: object) -> np.ndarray:
        return np.zeros((1, 40, 3))

    with pytest.raises(InputError, match=r"trainer returned logits of shape \(1, 40, 3\)"):
        train_models(RECIPE, x, y, balanced_splits(1, 40), trainer=bad_trainer)


def test_query_views() -> None:
    from memberscope.reference.queries import query_view

    images = np.arange(2 * 3 * 4).reshape(2, 3, 4, 1).astype(np.float32)
    np.testing.assert_array_equal(query_view(images, "identity"), images)
    np.testing.assert_array_equal(query_view(images, "hflip")[0, :, :, 0],
                                  images[0, :, ::-1, 0])
    right_down = query_view(images, "shift:1:2")[0, :, :, 0]
    np.testing.assert_array_equal(right_down[2, 1:], images[0, 0, :3, 0])
    assert (right_down[:2] == 0).all() and (right_down[:, 0] == 0).all()
    left_up = query_view(images, "shift:-1:-1")[1, :, :, 0]
    np.testing.assert_array_equal(left_up[:2, :3], images[1, 1:, 1:, 0])
    assert (query_view(images, "shift:9:0") == 0).all()
    with pytest.raises(InputError, match="unknown query 'rotate'"):
        query_view(images, "rotate")
