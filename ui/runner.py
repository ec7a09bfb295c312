"""Training and fine-tuning in a thread of their own; Stop answered at once.

Gradio runs a generator handler's `next()` in one of its worker threads and cancels the event (Stop, or
a visitor who goes away) only once that `next()` returns: the Stop's message waited for everything up to
the run's next update, up to a minute for a wide model. Here:

- `in_background(stream)` iterates the run's stream (`mnist_demo.runs.train_stream`, `finetune_stream`)
  in a thread of its own (at niceness `TRAINING_NICE`), and hands its updates to the handler, or `None`
  when none came within `TICK_S`. It holds none of Gradio's worker threads while it computes. Once the
  handler is closed, the thread closes the stream after the update in progress (at most one step or one
  evaluation chunk, `mnist_demo.cost`), and only then lets the next run start (`SLOTS`).
- `streamed(handler)` is what Gradio calls: an async generator that awaits each of the handler's updates
  without holding the cancel (`abandon_on_cancel`), drops the ticks (`None`), and closes the handler as
  soon as its current `next()` returns, within a tick. So a Stop is answered at once, and the run ends
  within a tick and a step. The handler itself stays a plain generator, which tests call directly.

(With ZeroGPU the stream runs in another process, which hands back the same updates; closing it there
ends the run just as soon, since it yields at least every step.)

    train.click(streamed(handlers.train), ...)       # the handler: for u in in_background(stream): ...

    python -m pytest tests/test_runner.py
"""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import functools
import os
import queue
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Generic, TypeVar

import anyio

from ui.common import TRAIN_CONCURRENCY

T = TypeVar("T")
TICK_S = 0.2  # the longest a handler waits for an update before it may return (and be stopped)
# Linux niceness of a run's thread. 0: measured with 20 drawers and 2 trainers (docs/public-space.md,
# Load), nice 10 did not make strokes faster (their median rose 33-47% with trainers, against 1% at 0)
# and starved training on shared cores: the thread shares the GIL, and a descheduled low-priority thread
# holding it makes the drawers wait. bench/load.py's VARIANTS runs the app with 10 for comparison.
TRAINING_NICE = 0
SLOT_POLL_S = 0.05  # while waiting for a stopped run to let go of its slot, how often a stop is checked
SLOTS = threading.BoundedSemaphore(TRAIN_CONCURRENCY)  # runs computing at once, stopped ones until they end
CLOSE_POLL_S = 0.02  # while a handler abandoned by a Stop finishes its `next()`, how often to try closing it
EXIT_WAIT_S = 10.0  # at exit, how long the runs still computing get to finish their step
CLOSE_TIMEOUT_S = 120.0  # after this, an abandoned handler that never returned is left to the garbage collector
_ITEM, _ERROR, _END = "item", "error", "end"
_DONE = object()


def lower_priority(nice: int = TRAINING_NICE) -> None:
    """Lower the calling thread's CPU priority (Linux: niceness is per thread); a no-op where it cannot be."""
    with contextlib.suppress(AttributeError, OSError):  # not Linux, or not permitted
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, max(nice, os.getpriority(os.PRIO_PROCESS, tid)))


class Background(Generic[T]):
    """A stream iterated by a thread of its own; iterate this for its items, or None after each quiet tick."""

    def __init__(self, stream: Iterator[T], tick_s: float = TICK_S, nice: int | None = None):
        self.tick_s, self.nice = tick_s, TRAINING_NICE if nice is None else nice  # read now: bench/load varies it
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._stop = threading.Event()
        # The handler's context goes with the stream (Gradio's request, which ZeroGPU's wrapper reads).
        context = contextvars.copy_context()
        self.thread = threading.Thread(
            target=context.run, args=(self._pump, stream), name="mnist-demo-run", daemon=True
        )
        _LIVE.add(self)
        self.thread.start()

    def _pump(self, stream: Iterator[T]) -> None:
        lower_priority(self.nice)
        try:
            while not SLOTS.acquire(timeout=SLOT_POLL_S):  # a stopped run may still finish its step
                if self._stop.is_set():
                    return
            try:
                for item in stream:
                    if self._stop.is_set():
                        break
                    self._queue.put((_ITEM, item))
            finally:
                SLOTS.release()
        except BaseException as err:  # handed to the handler, which raises it where Gradio reports it
            self._queue.put((_ERROR, err))
        finally:
            with contextlib.suppress(Exception):
                stream.close()  # a stopped stream ends here: its GeneratorExit, its clean-up
            self._queue.put((_END, None))
            _LIVE.discard(self)

    def __iter__(self) -> Iterator[T | None]:
        while True:
            try:
                kind, value = self._queue.get(timeout=self.tick_s)
            except queue.Empty:
                yield None
                continue
            if kind == _END:
                return
            if kind == _ERROR:
                raise value
            yield value

    def stop(self) -> None:
        """Ask the thread to close the stream after the update in progress; returns at once."""
        self._stop.set()

    def __enter__(self) -> Background[T]:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


_LIVE: set[Background] = set()  # runs whose thread has not ended


@atexit.register
def _stop_all(wait_s: float = EXIT_WAIT_S) -> None:
    """At exit, stop every run and give it its step to finish: a thread killed inside torch aborts the process."""
    live = list(_LIVE)
    for background in live:
        background.stop()
    deadline = time.monotonic() + wait_s
    for background in live:
        background.thread.join(max(0.0, deadline - time.monotonic()))


def in_background(stream: Iterator[T], tick_s: float = TICK_S) -> Background[T]:
    """Iterate `stream` in a thread of its own (see the module's docstring); use it in a `with` block."""
    return Background(stream, tick_s)


def streamed(handler: Callable[..., Iterator]) -> Callable[..., AsyncIterator]:
    """`handler`, a generator function that yields None while nothing is new, as Gradio's async generator
    (same signature, so Gradio passes the same inputs and `gr.Request`): see the module's docstring."""

    @functools.wraps(handler)
    async def run(*args, **kwargs):
        updates = handler(*args, **kwargs)
        try:
            while True:
                update = await anyio.to_thread.run_sync(next, updates, _DONE, abandon_on_cancel=True)
                if update is _DONE:
                    return
                if update is not None:
                    yield update
        finally:  # finished, failed, or cancelled while the handler's `next()` still runs in its thread
            threading.Thread(target=close_when_idle, args=(updates,), daemon=True).start()

    return run


def close_when_idle(generator: Iterator, timeout_s: float = CLOSE_TIMEOUT_S) -> None:
    """Close `generator`, waiting for a `next()` running in another thread to return first."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            generator.close()
            return
        except ValueError:  # "generator already executing"
            if time.monotonic() > deadline:
                return
            time.sleep(CLOSE_POLL_S)
        except Exception:  # the handler's own clean-up failed: nobody is left to tell
            return
