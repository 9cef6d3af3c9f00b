"""Fashion-MNIST: strict IDX parsing, the Debian package's files, and a verified download."""

from __future__ import annotations

import gzip
import hashlib
import struct
from pathlib import Path

import numpy as np
import pytest
from tests.helpers.data import ServerBehaviour, idx_gz, local_server

from memberscope.data import FASHION_MNIST_RESOURCES, Resource, load_fashion_mnist
from memberscope.data._fashion_mnist import DEBIAN_DIR
from memberscope.data._idx import read_idx_gz
from memberscope.errors import ChecksumError, InputError

FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}


def test_idx_round_trip(tmp_path: Path) -> None:
    images = np.random.default_rng(0).integers(0, 256, size=(3, 28, 28), dtype=np.uint8)
    (tmp_path / "i.gz").write_bytes(idx_gz(images))
    np.testing.assert_array_equal(read_idx_gz(tmp_path / "i.gz", ndim=3), images)


def _raw_idx(tmp_path: Path, raw: bytes) -> Path:
    path = tmp_path / "f.gz"
    path.write_bytes(gzip.compress(raw))
    return path


@pytest.mark.parametrize(
    ("raw", "ndim", "message"),
    [
        (b"\x01\x00\x08\x01" + struct.pack(">I", 2) + b"\x00\x01", 1, "not an IDX file"),
        (b"\x00\x00\x0d\x01" + struct.pack(">I", 1) + b"\x00" * 4, 1, r"0x0D \(float32\)"),
        (b"\x00\x00\x08\x01" + struct.pack(">I", 2) + b"\x00\x01", 3, "1 dimension"),
        (b"\x00\x00\x08\x03" + struct.pack(">II", 2, 28), 3, "header ends after 8 of 12"),
        (b"\x00\x00\x08\x01" + struct.pack(">I", 5) + b"\x00\x01", 1, "only 2 data bytes"),
        (b"\x00\x00\x08\x01" + struct.pack(">I", 2) + b"\x00\x01\x02", 1, "continues past"),
        (b"\x00\x00", 1, "magic number 0000"),
        (b"", 1, "magic number missing"),
    ],
)
def test_idx_errors_name_the_file_and_the_problem(
    tmp_path: Path, raw: bytes, ndim: int, message: str
) -> None:
    path = _raw_idx(tmp_path, raw)
    with pytest.raises(InputError, match=message) as caught:
        read_idx_gz(path, ndim=ndim)
    assert str(path) in str(caught.value)


def test_a_file_that_is_not_gzip_is_an_input_error(tmp_path: Path) -> None:
    (tmp_path / "f.gz").write_bytes(b"\x00\x00\x08\x01plain")
    with pytest.raises(InputError, match="not a readable gzip file"):
        read_idx_gz(tmp_path / "f.gz", ndim=1)


def _synthetic_files(n_train: int = 6, n_test: int = 4) -> tuple[dict[str, bytes], dict]:
    rng = np.random.default_rng(1)
    arrays = {
        "train_images": rng.integers(0, 256, size=(n_train, 28, 28), dtype=np.uint8),
        "train_labels": rng.integers(0, 10, size=n_train, dtype=np.uint8),
        "test_images": rng.integers(0, 256, size=(n_test, 28, 28), dtype=np.uint8),
        "test_labels": rng.integers(0, 10, size=n_test, dtype=np.uint8),
    }
    return {FILES[key]: idx_gz(value) for key, value in arrays.items()}, arrays


def _resources(base: str, files: dict[str, bytes]) -> dict[str, Resource]:
    return {
        key: Resource(name, (base + name,), hashlib.sha256(files[name]).hexdigest())
        for key, name in FILES.items()
    }


def test_download_and_parse_synthetic_files(tmp_path: Path) -> None:
    files, arrays = _synthetic_files()
    behaviour = ServerBehaviour(files=files)
    with local_server(behaviour) as base:
        dataset = load_fashion_mnist(
            cache_dir=tmp_path, system_dir=None, resources=_resources(base, files)
        )
        again = load_fashion_mnist(
            cache_dir=tmp_path, system_dir=None, resources=_resources(base, files)
        )
    assert len(behaviour.requests) == 4  # the second load used the verified cache
    assert dataset.input_shape == (28, 28, 1)
    np.testing.assert_array_equal(dataset.x_train[..., 0] * 255, arrays["train_images"])
    np.testing.assert_array_equal(dataset.y_test, arrays["test_labels"])
    np.testing.assert_array_equal(again.x_test, dataset.x_test)
    assert sorted(p.name for p in (tmp_path / "fashion-mnist").iterdir()) == sorted(files)


def test_system_folder_is_used_before_any_download(tmp_path: Path) -> None:
    files, arrays = _synthetic_files()
    system = tmp_path / "system"
    system.mkdir()
    for name, data in files.items():
        (system / name).write_bytes(data)
    with local_server(ServerBehaviour()) as base:  # serves nothing: a download would fail
        dataset = load_fashion_mnist(
            cache_dir=tmp_path / "cache", system_dir=system, resources=_resources(base, files)
        )
    np.testing.assert_array_equal(dataset.y_train, arrays["train_labels"])
    assert not (tmp_path / "cache").exists()


def test_corrupted_download_is_refused_and_the_cache_left_clean(tmp_path: Path) -> None:
    files, _ = _synthetic_files()
    resources = {}
    with local_server(ServerBehaviour(files=dict(files))) as base:
        resources = _resources(base, files)
        resources["test_labels"] = Resource(
            FILES["test_labels"], resources["test_labels"].urls, "1" * 64
        )
        with pytest.raises(ChecksumError, match="t10k-labels"):
            load_fashion_mnist(cache_dir=tmp_path, system_dir=None, resources=resources)
    assert "t10k-labels-idx1-ubyte.gz" not in {p.name for p in tmp_path.rglob("*")}
    assert not list(tmp_path.rglob("*.part"))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"train_labels": np.zeros(5, np.uint8)}, "6 images but .* 5 labels"),
        ({"test_images": np.zeros((4, 32, 32), np.uint8)}, "32×32; expected 28×28"),
        ({"test_labels": np.full(4, 10, np.uint8)}, "labels must be < 10"),
    ],
)
def test_inconsistent_files_are_input_errors(
    tmp_path: Path, change: dict[str, np.ndarray], message: str
) -> None:
    _, arrays = _synthetic_files()
    arrays.update(change)
    for key, value in arrays.items():
        (tmp_path / FILES[key]).write_bytes(idx_gz(value))
    with pytest.raises(InputError, match=message):
        load_fashion_mnist(cache_dir=tmp_path / "cache", system_dir=tmp_path)


def test_official_resources_pin_the_published_md5s() -> None:
    md5 = {key: resource.md5 for key, resource in FASHION_MNIST_RESOURCES.items()}
    assert md5 == {  # from the project README (also in /usr/share/doc/dataset-fashion-mnist)
        "train_images": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train_labels": "25c81989df183df01b3e8a0aad5dffbe",
        "test_images": "bef4ecab320f06d8554ea6380940ec79",
        "test_labels": "bb300cfdad3c16e7a12a480ee83cd310",
    }


@pytest.mark.skipif(
    not all((DEBIAN_DIR / name).is_file() for name in FILES.values()),
    reason=f"Debian package dataset-fashion-mnist is not installed ({DEBIAN_DIR} missing); "
    "apt-get install dataset-fashion-mnist",
)
def test_real_debian_files(tmp_path: Path) -> None:
    dataset = load_fashion_mnist(cache_dir=tmp_path)  # must not touch the network or cache
    assert not tmp_path.joinpath("fashion-mnist").exists()
    assert dataset.x_train.shape == (60_000, 28, 28, 1)
    assert dataset.x_test.shape == (10_000, 28, 28, 1)
    assert np.bincount(dataset.y_train).tolist() == [6000] * 10
    assert np.bincount(dataset.y_test).tolist() == [1000] * 10
    assert dataset.x_train.min() == 0.0 and dataset.x_train.max() == 1.0
    assert dataset.y_train[:5].tolist() == [9, 0, 0, 3, 0]  # the published first labels
    assert dataset.class_names[9] == "Ankle boot"
