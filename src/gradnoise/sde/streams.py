"""The random streams of configurations simulated together: one generator per configuration, each
drawn from in the order and with the sizes a run of that configuration alone would use, so that
simulating them together changes no number of any of them.

The rows of every array are paths grouped by configuration, in configuration order. Elementwise
operations and reductions within a row round the same whatever the length of the array they run
on; powers and matrix products do not (torch evaluates a tensor's last few elements by a scalar
routine), so transforms of draws that use them run per configuration (``each``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from gradnoise.levy import into_open_interval


@dataclass(frozen=True)
class Streams:
    generators: Sequence[torch.Generator]
    sizes: Sequence[int]  # rows of each configuration
    device: torch.device

    def uniform(self, cols: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        """Open U(0, 1) (``levy.open_uniform``) of shape (size, *cols) from each configuration's
        generator, stacked."""
        u = self.each(
            lambda _, g, n: torch.rand((n, *cols), generator=g, device=self.device, dtype=dtype)
        )
        return into_open_interval(u)

    def normal(self, cols: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        """N(0, 1) of shape (size, *cols) from each configuration's generator, stacked."""
        return self.each(
            lambda _, g, n: torch.randn((n, *cols), generator=g, device=self.device, dtype=dtype)
        )

    def each(self, draw: Callable[[int, torch.Generator, int], torch.Tensor]) -> torch.Tensor:
        """``draw(k, generator, size)`` for each configuration k with rows, stacked (a draw of no
        rows consumes nothing from a generator, so it is skipped)."""
        parts = [
            draw(k, g, n)
            for k, (g, n) in enumerate(zip(self.generators, self.sizes, strict=True))
            if n
        ]
        if len(parts) == 1:
            return parts[0]
        return torch.cat(parts) if parts else draw(0, self.generators[0], 0)

    @staticmethod
    def of(generators: Sequence[torch.Generator], config: torch.Tensor) -> Streams:
        """The streams of rows whose configurations are `config` (grouped, in order)."""
        sizes = torch.bincount(config, minlength=len(generators)).tolist()
        return Streams(generators, sizes, config.device)

    def rows(self, config: torch.Tensor) -> Streams:
        """The streams of a subset of the rows, given the configuration of each (in order)."""
        return Streams.of(self.generators, config)
