"""The column pass's threads: chunks of columns on one queue, scanned side by side by
single-threaded workers, the main thread one of them."""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np
import torch

from gradnoise.noise.layers import Layer

if TYPE_CHECKING:
    from gradnoise.noise.column_pass import _Scanner


CHUNKS_PER_WORKER = 4  # column chunks per worker and layer


@contextlib.contextmanager
def _one_torch_thread() -> Iterator[None]:
    """The calling thread's torch operations on one thread, restored on exit."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


class _ChunkQueue:
    """The column pass's work: chunks of columns on one queue, scanned by one thread per scanner but
    the first, and by the main thread with the first scanner while it waits for a layer. (The main
    thread works rather than waits: it reuses the memory the gradient pass freed, where another
    thread would grow an arena of its own; glibc keeps one per thread.) A context manager: on exit,
    ``close``."""

    def __init__(self, scanners: list[_Scanner]) -> None:
        self.tasks: queue.SimpleQueue = queue.SimpleQueue()
        self.left: dict[str, int] = {}
        self.done: dict[str, threading.Event] = {}
        self.lock = threading.Lock()
        self.error: BaseException | None = None
        self.main = scanners[0]
        self.threads = [threading.Thread(target=self._work, args=(sc,)) for sc in scanners[1:]]
        for t in self.threads:
            t.start()

    def __enter__(self) -> _ChunkQueue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def submit(self, layer: Layer, chunks: list[tuple[int, int]]) -> None:
        self.left[layer.name] = len(chunks)
        self.done[layer.name] = threading.Event()
        for a, b in chunks:
            self.tasks.put((layer, a, b))

    def wait(self, layer: Layer) -> None:
        """Until every chunk of `layer` is scanned, scanning queued chunks (of any layer) meanwhile;
        a worker's error is raised here."""
        done = self.done[layer.name]
        while not done.is_set() and self.error is None:
            try:
                task = self.tasks.get_nowait()
            except queue.Empty:
                done.wait()
                break
            self._run(self.main, task)
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        """Drop the chunks not started (after an error) and end the worker threads."""
        with contextlib.suppress(queue.Empty):
            while True:
                self.tasks.get_nowait()
        for _ in self.threads:
            self.tasks.put(None)
        for t in self.threads:
            t.join()

    def _work(self, scanner: _Scanner) -> None:
        torch.set_num_threads(1)
        while (task := self.tasks.get()) is not None:
            self._run(scanner, task)

    def _run(self, scanner: _Scanner, task: tuple[Layer, int, int]) -> None:
        layer, a, b = task
        try:
            scanner.scan(layer, a, b)
        except BaseException as err:  # handed to the main thread, which raises it
            self.error = self.error or err
            for event in list(self.done.values()):
                event.set()
            return
        with self.lock:
            self.left[layer.name] -= 1
            if self.left[layer.name] == 0:
                self.done[layer.name].set()


def _chunks(layer: Layer, workers: int, slab: int) -> list[tuple[int, int]]:
    """A layer's columns in CHUNKS_PER_WORKER pieces per worker, none narrower than a slab, so that
    the workers' loads even out."""
    n = max(1, min(CHUNKS_PER_WORKER * workers, layer.numel // slab))
    bounds = np.linspace(layer.start, layer.stop, n + 1).astype(int).tolist()
    return list(zip(bounds[:-1], bounds[1:], strict=True))
