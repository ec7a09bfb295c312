"""Repeated timings and their summary: median and p5-p95 of a list of samples.

python -c "from testkit.timing import repeat; print(repeat(lambda: sum(range(1000)), 100))"
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Stats:
    """Samples of one measurement (seconds, bytes, ...) and their median and spread."""

    samples: tuple[float, ...]

    @classmethod
    def of(cls, samples: Sequence[float]) -> Stats:
        if not samples:
            raise ValueError("no samples to summarise")
        return cls(tuple(float(s) for s in samples))

    @property
    def n(self) -> int:
        return len(self.samples)

    @property
    def median(self) -> float:
        return float(np.median(self.samples))

    @property
    def p5(self) -> float:
        return float(np.percentile(self.samples, 5))

    @property
    def p95(self) -> float:
        return float(np.percentile(self.samples, 95))

    def scaled(self, factor: float) -> Stats:
        """The same samples in other units (1e3 for seconds -> ms)."""
        return Stats(tuple(s * factor for s in self.samples))


def repeat(fn: Callable[[], object], n: int, warmup: int = 3) -> Stats:
    """Seconds per call of `fn`, over `n` calls after `warmup` untimed ones."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return Stats.of(samples)


def interleaved(fns: dict[str, Callable[[int], object]], n: int, warmup: int = 3) -> dict[str, Stats]:
    """Seconds per call of each `fn(i)`, taking turns call by call, so that a machine whose load changes
    during the run slows every variant alike and their ratios stay fair."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for i in range(-warmup, n):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn(i)
            if i >= 0:
                times[name].append(time.perf_counter() - start)
    return {name: Stats.of(t) for name, t in times.items()}


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """Run the block on one torch thread, as the app runs each request, then restore the thread count."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
