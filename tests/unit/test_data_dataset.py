"""Dataset validation, seeded splits and samples, digits, .npz files and load_dataset."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import memberscope.data as data_api
from memberscope.data import (
    Dataset,
    balanced_member_sample,
    load_dataset,
    load_npz_dataset,
    stratified_split,
)
from memberscope.errors import InputError, UnknownNameError


def _fields(**changes: Any) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    fields: dict[str, Any] = {
        "x_train": rng.random((6, 4, 4, 1), dtype=np.float32),
        "y_train": np.array([0, 1, 2, 0, 1, 2]),
        "x_test": rng.random((3, 4, 4, 1), dtype=np.float32),
        "y_test": np.array([2, 1, 0]),
        "name": "toy",
        "num_classes": 3,
        "input_shape": (4, 4, 1),
    }
    fields.update(changes)
    return fields


def test_public_api_is_exactly_this() -> None:
    assert set(data_api.__all__) == {
        "CACHE_ENV",
        "CIFAR10_RESOURCE",
        "DATASET_NAMES",
        "FASHION_MNIST_RESOURCES",
        "Dataset",
        "Resource",
        "balanced_member_sample",
        "cache_root",
        "fetch",
        "load_cifar10",
        "load_dataset",
        "load_digits",
        "load_fashion_mnist",
        "load_npz_dataset",
        "parse_cifar10_tarball",
        "stratified_split",
    }


def test_importing_the_data_package_imports_no_framework() -> None:
    code = (
        "import sys, memberscope.data; "
        "print(sorted(m for m in ('torch', 'keras', 'tensorflow', 'matplotlib', 'pandas', "
        "'ray') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_valid_dataset_is_normalised_to_float32_and_int64() -> None:
    dataset = Dataset(**_fields(x_train=np.zeros((6, 4, 4, 1)), y_train=np.arange(6) % 3.0))
    assert dataset.x_train.dtype == np.float32 and dataset.y_train.dtype == np.int64
    assert (dataset.n_train, dataset.n_test) == (6, 3)
    assert repr(dataset) == (
        "Dataset(name='toy', x_train=(6, 4, 4, 1), x_test=(3, 4, 4, 1), num_classes=3)"
    )
    with pytest.raises(AttributeError):
        dataset.name = "other"  # type: ignore[misc]


def test_tabular_dataset() -> None:
    dataset = Dataset(**_fields(x_train=np.ones((6, 5)), x_test=np.ones((3, 5)), input_shape=(5,)))
    assert dataset.input_shape == (5,)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"x_train": np.zeros((6, 4, 4, 1), np.uint8)}, "floating point"),
        ({"x_train": [[0.0]]}, "must be a numpy array"),
        ({"x_test": np.zeros((3, 4, 4, 3), np.float32)}, r"x_test must have shape \(n, 4, 4, 1\)"),
        ({"y_train": np.array([0, 1, 2])}, "x_train has 6 rows but y_train has 3"),
        ({"y_test": np.array([0, 1, 3])}, "y_test must be < 3"),
        ({"y_test": np.array([0, -1, 1])}, "y_test must be >= 0"),
        ({"num_classes": 1}, "at least 2"),
        ({"num_classes": 2.0}, "num_classes must be an integer"),
        ({"input_shape": (4, 4)}, "input_shape must be"),
        ({"name": ""}, "name must be"),
        ({"class_names": ("a", "b")}, "class_names must be empty or 3"),
        ({"x_test": np.zeros((0, 4, 4, 1), np.float32), "y_test": np.zeros(0, int)}, "empty"),
    ],
)
def test_invalid_datasets_cannot_exist(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(InputError, match=message):
        Dataset(**_fields(**changes))


def test_nan_is_reported_with_its_row() -> None:
    x = np.zeros((6, 4, 4, 1), np.float32)
    x[4, 1, 2, 0] = np.nan
    with pytest.raises(InputError, match=r"x_train contains 1 NaN value\(s\) \(first at row 4"):
        Dataset(**_fields(x_train=x))


def test_huge_finite_values_that_overflow_a_sum_are_accepted() -> None:
    x = np.full((6, 4, 4, 1), 3e38, np.float32)
    assert Dataset(**_fields(x_train=x)).x_train.max() == np.float32(3e38)


@settings(max_examples=40, deadline=None)
@given(
    labels=st.lists(st.integers(0, 4), min_size=2, max_size=60),
    fraction=st.floats(0.05, 0.95),
    seed=st.integers(0, 2**32 - 1),
)
def test_stratified_split_partitions_every_class(
    labels: list[int], fraction: float, seed: int
) -> None:
    y = np.array(labels)
    try:
        train, test = stratified_split(y, fraction, seed)
    except InputError as exc:
        assert "both need at least one" in str(exc)
        return
    assert np.array_equal(np.sort(np.r_[train, test]), np.arange(len(y)))
    for label in np.unique(y):
        count = int((y == label).sum())
        assert int((y[test] == label).sum()) == round(fraction * count)
    again = stratified_split(y, fraction, seed)
    assert np.array_equal(again[0], train) and np.array_equal(again[1], test)


@settings(max_examples=40, deadline=None)
@given(n_members=st.integers(1, 500), n_nonmembers=st.integers(1, 500), seed=st.integers(0, 99))
def test_balanced_member_sample(n_members: int, n_nonmembers: int, seed: int) -> None:
    index = balanced_member_sample(n_members, n_nonmembers, seed)
    assert len(index) == min(n_members, n_nonmembers)
    assert len(np.unique(index)) == len(index) and np.all(np.diff(index) > 0)
    assert index.min() >= 0 and index.max() < n_members
    assert np.array_equal(index, balanced_member_sample(n_members, n_nonmembers, seed))


def test_balanced_member_sample_is_random_not_a_prefix() -> None:
    index = balanced_member_sample(60_000, 10_000, seed=0)
    assert index.max() > 50_000 and not np.array_equal(index, np.arange(10_000))
    assert not np.array_equal(index, balanced_member_sample(60_000, 10_000, seed=1))
    with pytest.raises(InputError, match="n_members must be a positive integer"):
        balanced_member_sample(0, 5)


def test_digits_split_is_fixed_stratified_and_scaled() -> None:
    digits = load_dataset("digits")
    assert (digits.n_train, digits.n_test) == (899, 898)
    assert digits.input_shape == (8, 8, 1)
    assert digits.x_train.min() == 0.0 and digits.x_train.max() == 1.0
    counts = np.bincount(digits.y_train, minlength=10) - np.bincount(digits.y_test, minlength=10)
    assert np.abs(counts).max() <= 1
    np.testing.assert_array_equal(load_dataset("digits").x_test, digits.x_test)
    other = load_dataset("digits", split_seed=1)
    assert not np.array_equal(other.y_test, digits.y_test)


def test_npz_with_official_split(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    arrays: dict[str, Any] = {
        "x_train": rng.integers(0, 256, (8, 5, 5), dtype=np.uint8),
        "y_train": np.arange(8) % 4,
        "x_test": rng.integers(0, 256, (4, 5, 5), dtype=np.uint8),
        "y_test": np.arange(4),
    }
    np.savez(tmp_path / "mine.npz", **arrays)
    dataset = load_dataset(tmp_path / "mine.npz")
    assert dataset.name == "mine" and dataset.num_classes == 4
    assert dataset.input_shape == (5, 5, 1)
    np.testing.assert_allclose(dataset.x_train[..., 0], arrays["x_train"] / 255, rtol=1e-6)


def test_npz_with_x_and_y_is_split_with_a_seed(tmp_path: Path) -> None:
    x = np.random.default_rng(0).normal(size=(50, 3))
    y = np.arange(50) % 2
    np.savez(tmp_path / "tab.npz", x=x, y=y)
    dataset = load_dataset(str(tmp_path / "tab.npz"))
    assert (dataset.n_train, dataset.n_test, dataset.input_shape) == (40, 10, (3,))
    np.testing.assert_allclose(
        np.sort(np.r_[dataset.x_train, dataset.x_test], axis=0),
        np.sort(x.astype(np.float32), axis=0),
    )


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"x": np.zeros((4, 2))}, "must hold arrays x_train, .* or x and y; it holds x"),
        ({"x": np.zeros((4, 2)), "y": np.zeros(3, int)}, "x has 4 rows but y has 3"),
        ({"x": np.zeros(4), "y": np.zeros(4, int)}, r"x must be \(n, d\)"),
        ({"x": np.zeros((4, 2)), "y": np.zeros(4)}, "y must hold integer class labels"),
        ({"x": np.zeros((4, 2)), "y": np.zeros((4, 1), int)}, "y must be 1-dimensional"),
        ({"x": np.array(["a"] * 4), "y": np.zeros(4, int)}, "x must hold numbers"),
        (
            {
                "x_train": np.zeros((4, 2)),
                "y_train": np.arange(4) % 2,
                "x_test": np.zeros((2, 3)),
                "y_test": np.arange(2),
            },
            "x_test rows have",
        ),
    ],
)
def test_bad_npz_files_name_the_array(tmp_path: Path, arrays: dict[str, Any], message: str) -> None:
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(InputError, match=message):
        load_npz_dataset(tmp_path / "bad.npz")


def test_npz_object_arrays_are_never_unpickled(tmp_path: Path) -> None:
    np.savez(tmp_path / "obj.npz", x=np.array([{"a": 1}], dtype=object), y=np.zeros(1, int))
    with pytest.raises(InputError, match="object arrays"):
        load_npz_dataset(tmp_path / "obj.npz")


def test_missing_or_garbage_npz_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        load_dataset(tmp_path / "absent.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(InputError, match=r"not a readable \.npz"):
        load_dataset(tmp_path / "junk.npz")


def test_unknown_dataset_name_suggests_the_closest() -> None:
    with pytest.raises(UnknownNameError, match="did you mean 'fashion_mnist'"):
        load_dataset("fashion-mnist")
