"""The downloader against a local HTTP server: verified, resumable, atomic, clean on failure."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
from tests.helpers.data import ServerBehaviour, local_server

from memberscope.data import Resource, cache_root, fetch
from memberscope.errors import ChecksumError, DownloadError, InputError

PAYLOAD = np.random.default_rng(7).integers(0, 256, size=300_000, dtype=np.uint8).tobytes()
SHA256 = hashlib.sha256(PAYLOAD).hexdigest()
MD5 = hashlib.md5(PAYLOAD).hexdigest()


def resource(
    base: str, *, sha256: str = SHA256, md5: str | None = MD5, path: str = "blob.bin"
) -> Resource:
    return Resource("blob.bin", (base + path,), sha256, md5)


def test_download_verifies_and_stores_only_the_final_file(tmp_path: Path) -> None:
    behaviour = ServerBehaviour(files={"blob.bin": PAYLOAD})
    with local_server(behaviour) as base:
        path = fetch(resource(base), tmp_path)
    assert path == tmp_path / "blob.bin"
    assert path.read_bytes() == PAYLOAD
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blob.bin"]
    assert behaviour.requests == [("/blob.bin", None)]


def test_a_verified_cached_file_is_not_downloaded_again(tmp_path: Path) -> None:
    behaviour = ServerBehaviour(files={"blob.bin": PAYLOAD})
    with local_server(behaviour) as base:
        fetch(resource(base), tmp_path)
        fetch(resource(base), tmp_path)
    assert len(behaviour.requests) == 1


def test_a_connection_cut_mid_transfer_is_resumed_with_a_range_request(tmp_path: Path) -> None:
    behaviour = ServerBehaviour(
        files={"blob.bin": PAYLOAD}, truncate_after=100_000, truncations_left=1
    )
    with local_server(behaviour) as base:
        path = fetch(resource(base), tmp_path)
    assert path.read_bytes() == PAYLOAD
    assert behaviour.requests == [("/blob.bin", None), ("/blob.bin", "bytes=100000-")]


def test_a_part_file_left_by_an_earlier_run_is_resumed(tmp_path: Path) -> None:
    (tmp_path / "blob.bin.part").write_bytes(PAYLOAD[:123_456])
    behaviour = ServerBehaviour(files={"blob.bin": PAYLOAD})
    with local_server(behaviour) as base:
        path = fetch(resource(base), tmp_path)
    assert path.read_bytes() == PAYLOAD
    assert behaviour.requests == [("/blob.bin", "bytes=123456-")]
    assert not (tmp_path / "blob.bin.part").exists()


def test_a_server_ignoring_range_restarts_the_file_from_zero(tmp_path: Path) -> None:
    (tmp_path / "blob.bin.part").write_bytes(PAYLOAD[:5000])
    behaviour = ServerBehaviour(files={"blob.bin": PAYLOAD}, honour_range=False)
    with local_server(behaviour) as base:
        path = fetch(resource(base), tmp_path)
    assert path.read_bytes() == PAYLOAD


def test_a_stale_part_from_another_file_is_discarded_and_downloaded_whole(
    tmp_path: Path,
) -> None:
    (tmp_path / "blob.bin.part").write_bytes(b"x" * 1000)  # right length prefix, wrong bytes
    behaviour = ServerBehaviour(files={"blob.bin": PAYLOAD})
    with local_server(behaviour) as base:
        path = fetch(resource(base), tmp_path)
    assert path.read_bytes() == PAYLOAD
    assert behaviour.requests == [("/blob.bin", "bytes=1000-"), ("/blob.bin", None)]


def test_a_part_longer_than_the_file_gets_416_and_is_replaced(tmp_path: Path) -> None:
    (tmp_path / "blob.bin.part").write_bytes(PAYLOAD + b"junk")
    behaviour = ServerBehaviour(files={"blob.bin": PAYLOAD})
    with local_server(behaviour) as base:
        path = fetch(resource(base), tmp_path)
    assert path.read_bytes() == PAYLOAD


def test_corrupted_download_raises_and_is_set_aside_not_deleted(tmp_path: Path) -> None:
    corrupted = bytearray(PAYLOAD)
    corrupted[200_000] ^= 0xFF
    behaviour = ServerBehaviour(files={"blob.bin": bytes(corrupted)})
    with local_server(behaviour) as base, pytest.raises(
            ChecksumError, match=r"SHA-256 is .*; it was kept as .*blob\.bin\.corrupt$"):
        fetch(resource(base), tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["blob.bin.corrupt"]
    assert (tmp_path / "blob.bin.corrupt").read_bytes() == bytes(corrupted)


def test_checksum_mismatch_names_both_digests_and_leaves_the_cache_clean(
    tmp_path: Path,
) -> None:
    wrong = "0" * 64
    behaviour = ServerBehaviour(files={"blob.bin": PAYLOAD})
    with local_server(behaviour) as base, pytest.raises(ChecksumError) as caught:
        fetch(resource(base, sha256=wrong), tmp_path)
    assert SHA256 in str(caught.value) and wrong in str(caught.value)
    assert isinstance(caught.value, OSError)
    assert [p.name for p in tmp_path.iterdir()] == ["blob.bin.corrupt"]


def test_md5_is_checked_in_addition_to_sha256(tmp_path: Path) -> None:
    behaviour = ServerBehaviour(files={"blob.bin": PAYLOAD})
    with local_server(behaviour) as base, pytest.raises(ChecksumError, match="MD5 is"):
        fetch(resource(base, md5="f" * 32), tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["blob.bin.corrupt"]


def test_http_404_is_a_clear_download_error_without_retries(tmp_path: Path) -> None:
    behaviour = ServerBehaviour(files={})
    with local_server(behaviour) as base, pytest.raises(DownloadError, match="404"):
        fetch(resource(base), tmp_path)
    assert len(behaviour.requests) == 1
    assert list(tmp_path.iterdir()) == []


def test_unreachable_server_is_a_download_error(tmp_path: Path) -> None:
    with local_server(ServerBehaviour()) as base:
        pass  # the port is closed again
    with pytest.raises(DownloadError, match=r"could not download blob\.bin"):
        fetch(resource(base), tmp_path, timeout=5)
    assert list(tmp_path.iterdir()) == []


def test_repeated_cuts_keep_the_part_and_the_next_call_resumes(tmp_path: Path) -> None:
    behaviour = ServerBehaviour(
        files={"blob.bin": PAYLOAD}, truncate_after=20_000, truncations_left=3
    )
    with local_server(behaviour) as base:
        with pytest.raises(DownloadError, match="60000 bytes kept"):
            fetch(resource(base), tmp_path)
        assert not (tmp_path / "blob.bin").exists()  # a partial file is never complete
        assert (tmp_path / "blob.bin.part").stat().st_size == 60_000
        path = fetch(resource(base), tmp_path)
    assert path.read_bytes() == PAYLOAD
    assert behaviour.requests[-1] == ("/blob.bin", "bytes=60000-")


def test_the_next_address_is_tried_when_one_fails(tmp_path: Path) -> None:
    behaviour = ServerBehaviour(files={"mirror/blob.bin": PAYLOAD})
    with local_server(behaviour) as base:
        both = Resource("blob.bin", (base + "gone/blob.bin", base + "mirror/blob.bin"), SHA256)
        path = fetch(both, tmp_path)
    assert path.read_bytes() == PAYLOAD


def test_a_cached_file_that_does_not_match_is_set_aside_and_downloaded_again(
    tmp_path: Path,
) -> None:
    (tmp_path / "blob.bin").write_bytes(b"bit rot")
    (tmp_path / "blob.bin.corrupt").write_bytes(b"an older one")
    behaviour = ServerBehaviour(files={"blob.bin": PAYLOAD})
    with local_server(behaviour) as base:
        path = fetch(resource(base), tmp_path)
    assert path.read_bytes() == PAYLOAD
    assert (tmp_path / "blob.bin.corrupt").read_bytes() == b"an older one"
    assert (tmp_path / "blob.bin.corrupt.1").read_bytes() == b"bit rot"


def test_a_failed_first_download_leaves_no_empty_folder(tmp_path: Path) -> None:
    with local_server(ServerBehaviour()) as base, pytest.raises(DownloadError, match="404"):
        fetch(resource(base), tmp_path / "cache" / "blobs")
    assert list(tmp_path.iterdir()) == []


def test_each_failing_address_is_named_once(tmp_path: Path) -> None:
    behaviour = ServerBehaviour(
        files={"blob.bin": PAYLOAD}, truncate_after=20_000, truncations_left=3
    )
    with local_server(behaviour) as base, pytest.raises(DownloadError) as caught:
        fetch(resource(base), tmp_path)
    message = str(caught.value)
    assert message.count(base + "blob.bin") == 1
    assert message.startswith(f"could not download blob.bin from {base}blob.bin: connection "
                              "closed after 20000 of ")
    assert "(3 attempts)" in message


def test_cache_root_prefers_argument_then_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEMBERSCOPE_DATA", str(tmp_path / "env"))
    assert cache_root(tmp_path / "arg") == tmp_path / "arg"
    assert cache_root() == tmp_path / "env"
    monkeypatch.delenv("MEMBERSCOPE_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "memberscope"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_root() == Path(os.path.expanduser("~")) / ".cache" / "memberscope"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"filename": "../x"}, "bare file name"),
        ({"urls": ()}, "at least one address"),
        ({"urls": ("file:///etc/passwd",)}, "must be http"),
        ({"sha256": "ABC"}, "64 lower-case hex"),
        ({"md5": "z" * 32}, "32 lower-case hex"),
    ],
)
def test_resource_rejects_bad_fields(kwargs: dict[str, object], message: str) -> None:
    fields: dict[str, object] = {
        "filename": "f.bin",
        "urls": ("https://example.org/f.bin",),
        "sha256": SHA256,
    }
    fields.update(kwargs)
    with pytest.raises(InputError, match=message):
        Resource(**fields)  # type: ignore[arg-type]
