"""CIFAR-10 end to end on a synthetic tarball in the official format, and the safe unpickler."""

from __future__ import annotations

import io
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
from tests.helpers.data import (
    ServerBehaviour,
    cifar_batch,
    cifar_members,
    local_server,
    py2_pickle,
    synthetic_cifar,
    tar_bytes,
)

from memberscope.data import CIFAR10_RESOURCE, Resource, load_cifar10, parse_cifar10_tarball
from memberscope.data._pickle import restricted_loads
from memberscope.errors import ChecksumError, DownloadError, InputError

BATCH = "cifar-10-batches-py/data_batch_1"


def test_download_verify_and_parse_end_to_end(tmp_path: Path) -> None:
    data = synthetic_cifar(per_batch=4, n_test=5)
    behaviour = ServerBehaviour(files={"cifar-10-python.tar.gz": data.tarball})
    with local_server(behaviour) as base:
        resource = Resource(
            "cifar-10-python.tar.gz", (base + "cifar-10-python.tar.gz",), data.sha256
        )
        dataset = load_cifar10(cache_dir=tmp_path, resource=resource)
    assert (tmp_path / "cifar10" / "cifar-10-python.tar.gz").read_bytes() == data.tarball
    assert dataset.name == "cifar10" and dataset.num_classes == 10
    assert dataset.input_shape == (32, 32, 3)
    assert dataset.x_train.shape == (20, 32, 32, 3) and dataset.x_test.shape == (5, 32, 32, 3)
    assert dataset.x_train.dtype == np.float32
    np.testing.assert_array_equal(dataset.y_train, data.y_train)
    np.testing.assert_array_equal(dataset.y_test, data.y_test)
    # Oracle from the documented layout: value k of a row is channel k // 1024, pixel k % 1024
    # in row-major order; scaled like the codelab, pixels / 255 in float32.
    for split, raw in (("train", data.x_train), ("test", data.x_test)):
        images = getattr(dataset, f"x_{split}")
        for n, k in [(0, 0), (1, 1023), (2, 1024), (3, 2047 + 33), (4, 3071)]:
            channel, pixel = divmod(k, 1024)
            row, col = divmod(pixel, 32)
            assert images[n, row, col, channel] == np.float32(raw[n, k]) / np.float32(255)
    assert dataset.class_names[0] == "airplane" and dataset.class_names[9] == "truck"


def test_official_resource_pins_the_published_digests() -> None:
    assert CIFAR10_RESOURCE.urls == ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",)
    assert CIFAR10_RESOURCE.md5 == "c58f30108f718f92721af3b95e74349a"
    assert CIFAR10_RESOURCE.sha256 == (
        "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"
    )


def test_resume_after_partial_tarball_download(tmp_path: Path) -> None:
    data = synthetic_cifar()
    folder = tmp_path / "cifar10"
    folder.mkdir()
    (folder / "cifar-10-python.tar.gz.part").write_bytes(data.tarball[: len(data.tarball) // 2])
    behaviour = ServerBehaviour(files={"c.tgz": data.tarball})
    with local_server(behaviour) as base:
        resource = Resource("cifar-10-python.tar.gz", (base + "c.tgz",), data.sha256)
        dataset = load_cifar10(cache_dir=tmp_path, resource=resource)
    assert behaviour.requests == [("/c.tgz", f"bytes={len(data.tarball) // 2}-")]
    assert dataset.x_train.shape[0] == 20


def test_corrupted_tarball_download_is_refused_and_set_aside(tmp_path: Path) -> None:
    data = synthetic_cifar()
    corrupted = data.tarball[:-10] + bytes(10)
    behaviour = ServerBehaviour(files={"c.tgz": corrupted})
    with local_server(behaviour) as base, pytest.raises(ChecksumError, match="corrupt"):
        resource = Resource("cifar-10-python.tar.gz", (base + "c.tgz",), data.sha256)
        load_cifar10(cache_dir=tmp_path, resource=resource)
    assert [p.name for p in (tmp_path / "cifar10").iterdir()] == [
        "cifar-10-python.tar.gz.corrupt"]


def _tarball_with(path: Path, member: str, data: bytes) -> Path:
    members = cifar_members()[0]
    members[member] = data
    path.write_bytes(tar_bytes(members))
    return path


def test_a_malicious_pickle_is_refused_without_running_it(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    payload = b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR."
    archive = _tarball_with(tmp_path / "evil.tgz", BATCH, payload)
    with pytest.raises(InputError, match=r"refusing to load global os\.system"):
        parse_cifar10_tarball(archive)
    assert not marker.exists()


class _Exploit:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (eval, ("1 + 1",))


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (pickle.dumps(_Exploit(), protocol=2), r"__builtin__\.eval"),
        (pickle.dumps(_Exploit(), protocol=4), r"refusing to load global builtins\.eval"),
        (pickle.dumps({b"data": np.zeros(3, np.uint8)}, protocol=5), r"numpy\._core"),
        (b"\x80\x02cnumpy\nload\nq\x00.", r"numpy\.load"),
        (b"\x80\x02csubprocess\nPopen\n.", r"subprocess\.Popen"),
        (b"\x80\x02X\x01\x00\x00\x00x\x94Q.", "persistent"),
    ],
)
def test_restricted_unpickler_refuses_everything_but_plain_data(
    payload: bytes, message: str
) -> None:
    with pytest.raises(InputError, match=message):
        restricted_loads(payload, source="t")


def test_array_reconstruction_is_limited_to_plain_uint8_arrays() -> None:
    official = py2_pickle(np.arange(6, dtype=np.uint8).reshape(2, 3))
    np.testing.assert_array_equal(restricted_loads(official, source="t"), [[0, 1, 2], [3, 4, 5]])
    object_dtype = official.replace(b"U\x02u1K\x00K\x01", b"U\x02O8K\x00K\x01")
    with pytest.raises(InputError, match=r"dtype .* refused"):
        restricted_loads(object_dtype, source="t")
    matrix = official.replace(b"cnumpy\nndarray\n", b"cnumpy\nmatrix\n")
    with pytest.raises(InputError, match=r"numpy\.matrix"):
        restricted_loads(matrix, source="t")
    huge = official.replace(b"K\x00\x85U\x01b", b"J\xff\xff\xff\x7f\x85U\x01b")
    with pytest.raises(InputError, match="shape"):
        restricted_loads(huge, source="t")


def test_truncated_or_garbage_pickles_are_input_errors() -> None:
    official = py2_pickle(cifar_batch(np.zeros((1, 3072), np.uint8), [0], b"x"))
    with pytest.raises(InputError, match="not a valid pickle"):
        restricted_loads(official[:200], source="batch")
    with pytest.raises(InputError, match="not a valid pickle"):
        restricted_loads(b"not a pickle at all", source="batch")


def test_python3_plain_containers_and_cycles_are_admitted() -> None:
    looped: list[object] = [1, b"x"]
    looped.append(looped)
    loaded = restricted_loads(pickle.dumps({"k": looped, "n": None}), source="t")
    assert loaded["k"][2] is loaded["k"]


@pytest.mark.parametrize(
    ("member", "payload", "message"),
    [
        (BATCH, py2_pickle([1, 2]), "must hold a dict"),
        (BATCH, py2_pickle({b"labels": [1]}), "lacks the key b'data'"),
        (
            BATCH,
            py2_pickle(cifar_batch(np.zeros((2, 100), np.uint8), [0, 1], b"x")),
            r"shape \(n, 3072\)",
        ),
        (
            BATCH,
            py2_pickle(cifar_batch(np.zeros((2, 3072), np.uint8), [0], b"x")),
            "2 images but 1 labels",
        ),
        (
            BATCH,
            py2_pickle(cifar_batch(np.zeros((1, 3072), np.uint8), [10], b"x")),
            r"labels must be in \[0, 10\)",
        ),
        ("cifar-10-batches-py/batches.meta", py2_pickle({b"label_names": [b"a"]}), "label_names"),
    ],
)
def test_malformed_batches_name_the_member_and_the_problem(
    tmp_path: Path, member: str, payload: bytes, message: str
) -> None:
    archive = _tarball_with(tmp_path / "bad.tgz", member, payload)
    with pytest.raises(InputError, match=message):
        parse_cifar10_tarball(archive)


def test_missing_members_are_listed(tmp_path: Path) -> None:
    members = cifar_members()[0]
    del members["cifar-10-batches-py/test_batch"]
    (tmp_path / "a.tgz").write_bytes(tar_bytes(members))
    with pytest.raises(InputError, match=r"lacks the member.*test_batch"):
        parse_cifar10_tarball(tmp_path / "a.tgz")


def test_links_and_duplicates_among_wanted_members_are_refused(tmp_path: Path) -> None:
    members = cifar_members()[0]
    link_data = dict(members)
    del link_data[BATCH]
    link = tarfile.TarInfo(BATCH)
    link.type = tarfile.SYMTYPE
    link.linkname = "../../../etc/passwd"
    (tmp_path / "link.tgz").write_bytes(tar_bytes(link_data, extra=[link]))
    with pytest.raises(InputError, match="not a regular file"):
        parse_cifar10_tarball(tmp_path / "link.tgz")

    duplicate = tarfile.TarInfo(BATCH)
    duplicate.size = 0
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        archive.addfile(duplicate, io.BytesIO(b""))
    (tmp_path / "dup.tgz").write_bytes(buffer.getvalue())
    with pytest.raises(InputError, match="twice"):
        parse_cifar10_tarball(tmp_path / "dup.tgz")


def test_path_traversal_members_are_ignored_and_nothing_is_extracted(tmp_path: Path) -> None:
    members = cifar_members()[0]
    members["../escaped"] = b"should never be written"
    work = tmp_path / "work"
    work.mkdir()
    (work / "t.tgz").write_bytes(tar_bytes(members))
    dataset = parse_cifar10_tarball(work / "t.tgz")
    assert dataset.n_train == 20
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["t.tgz", "work"]


def test_a_file_that_is_not_a_tarball_is_an_input_error(tmp_path: Path) -> None:
    (tmp_path / "x.tgz").write_bytes(b"\x1f\x8b garbage")
    with pytest.raises(InputError, match="not a readable tar archive"):
        parse_cifar10_tarball(tmp_path / "x.tgz")


# --- where the tarball comes from: a local path, a mirror, and the one failure message --------


def test_a_local_tarball_is_read_in_place_when_its_digest_matches(tmp_path: Path) -> None:
    data = synthetic_cifar()
    local = tmp_path / "mine.tar.gz"
    local.write_bytes(data.tarball)
    dataset = load_cifar10(cache_dir=tmp_path / "cache", path=local, sha256=data.sha256.upper())
    np.testing.assert_array_equal(dataset.y_test, data.y_test)
    assert not (tmp_path / "cache").exists()
    with pytest.raises(ChecksumError, match=r"is not the expected CIFAR-10 tarball: SHA-256 is "
                                            r".*; the file was left as it is \(if you trust "
                                            r"this file, give its sha256 too\)"):
        load_cifar10(path=local)  # checked against the official digests
    assert local.read_bytes() == data.tarball
    with pytest.raises(InputError, match=r"path '.*nothing.tgz': no such file"):
        load_cifar10(path=tmp_path / "nothing.tgz")


def test_a_mirror_with_its_own_digest_gets_its_own_cache_name(tmp_path: Path) -> None:
    data = synthetic_cifar()
    behaviour = ServerBehaviour(files={"mirror/c.tgz": data.tarball})
    with local_server(behaviour) as base:
        dataset = load_cifar10(cache_dir=tmp_path, url=base + "mirror/c.tgz",
                               sha256=data.sha256)
    assert dataset.n_train == 20
    assert [p.name for p in (tmp_path / "cifar10").iterdir()] == [
        f"cifar-10-python-{data.sha256[:12]}.tar.gz"]
    with pytest.raises(InputError, match=r"sha256 checks the file given by path or url"):
        load_cifar10(cache_dir=tmp_path, sha256=data.sha256)


def test_a_failed_download_says_once_where_to_put_the_file(tmp_path: Path, monkeypatch) -> None:
    with local_server(ServerBehaviour()) as base:
        pass  # the port is closed again
    official = Resource(CIFAR10_RESOURCE.filename, (base + "cifar-10-python.tar.gz",),
                        CIFAR10_RESOURCE.sha256, CIFAR10_RESOURCE.md5)
    monkeypatch.setattr("memberscope.data._download.ATTEMPTS", 2)
    with pytest.raises(DownloadError) as caught:
        load_cifar10(cache_dir=tmp_path / "cache", resource=official)
    message = str(caught.value)
    assert "\n" not in message
    assert message.count(official.urls[0]) == 1
    assert message.startswith("could not download cifar-10-python.tar.gz from ")
    for hint in (str(tmp_path / "cache" / "cifar10" / "cifar-10-python.tar.gz"),
                 'path = "/where/it/is/cifar-10-python.tar.gz"', 'url = "https://..."',
                 'sha256 = "..."', "MEMBERSCOPE_DATA sets the cache folder"):
        assert hint in message, hint
    assert list(tmp_path.iterdir()) == []  # no empty cache folder left behind


def test_a_non_official_tarball_in_the_cache_is_set_aside_never_deleted(tmp_path: Path) -> None:
    data = synthetic_cifar()
    folder = tmp_path / "cifar10"
    folder.mkdir()
    (folder / "cifar-10-python.tar.gz").write_bytes(data.tarball)
    with local_server(ServerBehaviour()) as base:
        official = Resource(CIFAR10_RESOURCE.filename, (base + "c.tgz",),
                            CIFAR10_RESOURCE.sha256, CIFAR10_RESOURCE.md5)
        with pytest.raises(DownloadError, match="404"):
            load_cifar10(cache_dir=tmp_path, resource=official)
    assert [p.name for p in folder.iterdir()] == ["cifar-10-python.tar.gz.corrupt"]
    assert (folder / "cifar-10-python.tar.gz.corrupt").read_bytes() == data.tarball


def test_only_cifar10_takes_a_path_url_or_sha256() -> None:
    from memberscope.data import load_dataset

    with pytest.raises(InputError, match=r"^url: only the cifar10 dataset takes these options; "
                                         r"got dataset 'digits'$"):
        load_dataset("digits", url="https://example.org/d.npz")
