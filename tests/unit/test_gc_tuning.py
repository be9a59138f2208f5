"""The operator's memory housekeeping: freed memory handed back where the C library can."""

import ctypes.util
import threading

import pytest

from modelloop import gc_tuning


def test_glibc_trims_and_a_daemon_thread_keeps_trimming() -> None:
    trim = gc_tuning.malloc_trim()
    assert trim is not None  # the machines this runs on have glibc
    assert trim() in (0, 1)  # 1: memory was handed back
    thread = gc_tuning.trim_periodically(seconds=3600)  # asleep for the rest of the run
    assert thread is not None
    assert thread.daemon
    assert thread in threading.enumerate()


def test_without_malloc_trim_nothing_is_started(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)
    assert gc_tuning.malloc_trim() is None
    assert gc_tuning.trim_periodically(seconds=0.01) is None
