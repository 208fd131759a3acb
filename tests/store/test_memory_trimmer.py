"""store.base's memory trimmer (issue 25 item 5): freed heap memory goes back to the system after offloaded work,
and an idle process has nothing that wakes it. Real glibc, real threads: no fakes."""

from __future__ import annotations

import ctypes.util
import threading
import time
from pathlib import Path

import anyio
import pytest

import store.base as base

pytestmark = pytest.mark.skipif(not ctypes.util.find_library("c"), reason="needs a C library with malloc_trim")


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def trimmers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "bangui-malloc-trim"]


def fragment_a_heap() -> list[bytes]:
    """Free ~150 MB in a thread's heap while every 50th block stays alive: the heap cannot shrink from its top,
    so only malloc_trim gives the free pages back."""
    kept: list[bytes] = []

    def work() -> None:
        blocks = [bytes(3000) for _ in range(50_000)]
        kept.extend(blocks[::50])

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    return kept


@pytest.mark.anyio
async def test_freed_memory_is_returned_after_offloaded_work(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(base, "TRIM_DELAY_S", 0.05)
    base.configure_threads()
    base.configure_threads()  # once per process, however often the lifespan runs
    assert len(trimmers()) == 1
    before = rss_mb()
    kept = fragment_a_heap()
    held = rss_mb()
    assert held - before > 60, "the freed blocks were not kept by the allocator: nothing to measure"
    await base.offload(lambda: None)  # offloaded work: the trimmer runs TRIM_DELAY_S later

    def returned() -> bool:  # polls the RSS until half the freed memory is back, 10 s at most
        deadline = time.monotonic() + 10
        while rss_mb() > before + (held - before) / 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        return rss_mb() <= before + (held - before) / 2

    assert await anyio.to_thread.run_sync(returned)
    assert len(kept) == 1000


@pytest.mark.anyio
async def test_an_idle_process_is_not_woken_by_the_trimmer() -> None:
    base.configure_threads()
    base._trimmer.busy.clear()
    await anyio.sleep(0.2)
    assert not base._trimmer.busy.is_set()  # the thread waits on this event: no timer, no wake-ups
    assert all(t.daemon for t in trimmers())
