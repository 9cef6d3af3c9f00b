"""Process tuning at the edges: the allocator respects the user's settings, tune_process
sets the thread count and says what it did."""

from __future__ import annotations

import sys

import pytest

from memberscope import _runtime as allocator  # threads and allocator


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(allocator, "_applied", False)
    for name in (allocator.OPT_OUT_ENV, "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("variable, value", [
    (allocator.OPT_OUT_ENV, "0"), ("MALLOC_MMAP_THRESHOLD_", "131072"),
    ("MALLOC_TRIM_THRESHOLD_", "131072")])
def test_user_settings_win(fresh, monkeypatch: pytest.MonkeyPatch, variable: str,
                           value: str) -> None:
    monkeypatch.setenv(variable, value)
    assert allocator.keep_freed_memory() is False
    assert allocator._applied is False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_applied_once_on_glibc(fresh) -> None:
    assert allocator.keep_freed_memory() is True
    assert allocator._applied is True
    assert allocator.keep_freed_memory() is True


def test_tune_process_sets_threads_and_reports_the_previous_count(fresh) -> None:
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    try:
        tuning = allocator.tune_process(1)
        assert (tuning.threads, tuning.previous_threads) == (1, before)
        assert torch.get_num_threads() == 1
        assert tuning.keeps_freed_memory == sys.platform.startswith("linux")
    finally:
        allocator.apply_threads(before)
