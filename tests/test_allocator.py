"""Within reused_step_memory the heaps keep a step's memory; after it, glibc's initial behaviour."""

from __future__ import annotations

import resource
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

from gradnoise.allocator import _libc, reused_step_memory

pytestmark = pytest.mark.skipif(_libc() is None, reason="glibc's malloc only")

STEP = 4 * 2**20  # bytes of the one tensor a step allocates, touches and frees


def _faults_per_step(steps: int = 20) -> float:
    """Page faults per step, in a thread of its own (a heap of its own, like the gradient pass's
    workers: the main thread's heap holds whatever the test session left there)."""

    def step() -> None:
        torch.empty(STEP // 4).fill_(1.0)  # allocate, touch every page, free

    def run() -> float:
        for _ in range(steps):  # until the heap has grown to its steady state (a few steps)
            step()
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(steps):
            step()
        return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / steps

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(run).result()


def test_heaps_keep_a_steps_memory_within_and_give_it_back_after() -> None:
    with reused_step_memory(2 * STEP, 2 * STEP):
        pass  # from here on glibc's initial thresholds, fixed: none raised by earlier steps
    before = _faults_per_step()
    with reused_step_memory(2 * STEP, 2 * STEP):
        within = _faults_per_step()
    after = _faults_per_step()
    # outside, every step maps its tensor afresh and faults its pages in (a page or a huge page at a
    # time); within, it is served from memory the heap kept, so next to no page is touched anew
    assert before >= 1 and after >= 1
    assert within <= 0.1 * min(before, after), (before, within, after)
