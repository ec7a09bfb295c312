"""The Draw tab's own bound on work, for events that skip Gradio's queue to answer a stroke sooner.

Through the queue a stroke's answer took a join request and an event stream; outside it, one POST
(`python -m bench --only pen_latency` measures the difference). Gradio's concurrency_limit only holds in
the queue, so these events pass through a `Gate` instead: at most `running` handlers at once, all visitors
together, in worker threads (the rest of Gradio's threads stay free for training and uploads); at most
`waiting` more waiting for a turn, first come first served, and at most `per_visitor` running or waiting
for any one browser tab, so that no visitor can take every turn. Past either bound a request is refused at
once with `Busy`, which the caller turns into a message.

    python -m pytest tests/test_gate.py
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Callable
from typing import TypeVar

import anyio
import anyio.to_thread

T = TypeVar("T")


class Busy(Exception):
    """The gate is full, for everyone or for this visitor."""


class Gate:
    """Runs sync functions in worker threads, a bounded number at once (see the module docstring)."""

    def __init__(self, running: int, waiting: int, per_visitor: int):
        self.running, self.waiting, self.per_visitor = running, waiting, per_visitor
        self._limiters: dict[int, anyio.CapacityLimiter] = {}  # one per event loop (a relaunched app has a new one)
        self._lock = threading.Lock()
        self._inside = 0  # calls running or waiting, all visitors
        self._by_visitor: Counter[str] = Counter()

    def _limiter(self) -> anyio.CapacityLimiter:
        loop = id(asyncio.get_running_loop())
        if loop not in self._limiters:
            self._limiters[loop] = anyio.CapacityLimiter(self.running)
        return self._limiters[loop]

    async def run(self, visitor: str | None, fn: Callable[..., T], *args) -> T:
        """`fn(*args)` in a worker thread when a turn comes; Busy at once when there is no room to wait."""
        key = visitor or ""
        with self._lock:
            if self._inside >= self.running + self.waiting:
                raise Busy("the server is busy")
            if self._by_visitor[key] >= self.per_visitor:
                raise Busy("this page already has drawings being read")
            self._inside += 1
            self._by_visitor[key] += 1
        try:
            return await anyio.to_thread.run_sync(fn, *args, limiter=self._limiter())
        finally:
            with self._lock:
                self._inside -= 1
                self._by_visitor[key] -= 1
                if not self._by_visitor[key]:
                    del self._by_visitor[key]
