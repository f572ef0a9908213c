"""curation.memory: glibc's mmap threshold is fixed once per process, unless the user set it."""

from __future__ import annotations

import ctypes.util

import pytest

from curation import memory


@pytest.fixture(autouse=True)
def fresh():
    memory.bound_heap.cache_clear()
    yield
    memory.bound_heap.cache_clear()


def test_the_users_own_setting_stands(monkeypatch):
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "65536")
    assert memory.bound_heap() is False


@pytest.mark.skipif(ctypes.util.find_library("c") is None, reason="no C library found")
def test_glibc_takes_the_fixed_threshold(monkeypatch):
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    if not hasattr(libc, "mallopt"):
        pytest.skip("not glibc")
    assert memory.bound_heap() is True
    assert memory.bound_heap() is True  # once: cached
