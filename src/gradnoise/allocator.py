"""glibc malloc settings for loops that allocate and free the same large tensors over and over.

A forward/backward pass on the CPU allocates its activations (megabytes each) and frees them at the
end of the step. glibc serves an allocation above its mmap threshold with a fresh mmap, and gives the
free top of a heap back to the OS above its trim threshold: both start at 128 KiB, and the rule by
which glibc raises them (to the largest freed mmapped chunk, and twice that) still gives back a
step's memory whenever the step frees more than twice its largest tensor. Every step then faults
its pages in anew, in system time (measured in benchmarks/README.md). Within ``reused_step_memory``
the heaps keep that memory from one step to the next.
Without glibc (macOS, musl) it does nothing.
"""

from __future__ import annotations

import contextlib
import ctypes
from collections.abc import Iterator

M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's malloc.h
M_MMAP_THRESHOLD = -3
DEFAULT_THRESHOLD = 128 * 1024  # glibc's initial value of both
MMAP_CEILING = 32 * 2**20  # glibc's largest mmap threshold on 64-bit systems


def _libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt  # noqa: B018 - glibc only
        libc.malloc_trim  # noqa: B018
    except (OSError, AttributeError):
        return None
    return libc


@contextlib.contextmanager
def reused_step_memory(largest: int, keep: int) -> Iterator[None]:
    """Within: allocations of up to `largest` bytes come from the heaps, and each heap keeps up to
    `keep` bytes of free memory at its top (a step's working set). On exit: glibc's initial
    thresholds (fixed from then on) and every heap's free memory given back (malloc_trim), so that
    what follows, e.g. threads that allocate from heaps of their own, does not add its working set
    to what was kept. Also a decorator."""
    libc = _libc()
    if libc is None:
        yield
        return
    libc.mallopt(M_MMAP_THRESHOLD, min(largest, MMAP_CEILING))
    libc.mallopt(M_TRIM_THRESHOLD, keep)
    try:
        yield
    finally:
        libc.mallopt(M_MMAP_THRESHOLD, DEFAULT_THRESHOLD)
        libc.mallopt(M_TRIM_THRESHOLD, DEFAULT_THRESHOLD)
        libc.malloc_trim(0)


def training_step_memory() -> contextlib.AbstractContextManager[None]:
    """``reused_step_memory`` for a training loop: glibc's largest mmap threshold, and heaps that
    keep up to four times that, a step's working set (a training job reaches that peak anyway)."""
    return reused_step_memory(MMAP_CEILING, 4 * MMAP_CEILING)
