"""Atomic writes honour the umask, as any open(path, "w") does."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from memberscope import _io
from memberscope.results import AuditResult
from memberscope.store import append_jsonl, save_result


@pytest.fixture(params=[0o022, 0o077, 0o002])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    previous = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_every_writer_creates_files_with_0666_less_the_umask(tmp_path: Path, umask: int) -> None:
    _io.atomic_write_text(tmp_path / "a.txt", "x")
    _io.atomic_write_json(tmp_path / "a.json", {"x": 1})
    _io.atomic_write_npz(tmp_path / "a.npz", {"x": np.arange(3)})
    append_jsonl(tmp_path / "a.jsonl", [{"x": 1}])
    save_result(AuditResult(rows=()), tmp_path / "audit")
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(files) == 6
    assert {p.name: _mode(p) for p in files} == {p.name: 0o666 & ~umask for p in files}
    if umask == 0o022:
        assert _mode(tmp_path / "a.txt") == 0o644


def test_replacing_a_file_leaves_no_temp_file_and_the_new_mode(tmp_path: Path) -> None:
    target = tmp_path / "f.txt"
    target.write_text("old")
    target.chmod(0o600)
    previous = os.umask(0o022)
    try:
        _io.atomic_write_text(target, "new")
    finally:
        os.umask(previous)
    assert target.read_text() == "new" and _mode(target) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_json_value_converts_numpy_and_refuses_unknown_objects() -> None:
    value = {1: np.float32(0.5), "a": (np.int64(2), float("nan")), "b": np.arange(2)}
    assert _io.json_value(value) == {"1": 0.5, "a": [2, None], "b": [0, 1]}
    with pytest.raises(TypeError, match="type object"):
        _io.json_value(object())
    assert _io.json_value({"o": object}, other=lambda v: "obj") == {"o": "obj"}


def test_appending_to_an_npz_keeps_its_arrays_bit_for_bit(tmp_path: Path) -> None:
    path = tmp_path / "a.npz"
    first = {"x": np.random.default_rng(0).random(1000).astype(np.float32), "s": np.asarray("m")}
    _io.atomic_write_npz(path, first)
    _io.atomic_append_npz(path, {"y": np.arange(5), "z": np.full(3, np.nan)})
    loaded = _io.load_npz(path)
    assert sorted(loaded) == ["s", "x", "y", "z"]
    np.testing.assert_array_equal(loaded["x"], first["x"])
    np.testing.assert_array_equal(loaded["z"], np.full(3, np.nan))
    assert [p.name for p in tmp_path.iterdir()] == ["a.npz"]  # no temp file left
    with pytest.raises(TypeError, match="dtype object"):
        _io.atomic_append_npz(path, {"w": np.array([object()])})
    assert sorted(_io.load_npz(path)) == ["s", "x", "y", "z"]
