"""ui/runner.py: a run's stream in a thread of its own, at a lower priority; a Stop answered at once.

The streams here are generators that sleep: what is checked is when things happen relative to one another
(a cancel returns while the handler is still blocked; the stream is closed after its item in progress),
with bounds far above the sleeps, not how fast a CPU is.

    python -m pytest tests/test_runner.py
"""

from __future__ import annotations

import asyncio
import inspect
import os
import threading
import time

import pytest

from ui import runner
from ui.runner import Background, in_background, streamed

SLOW_S = 3.0  # a "step" far longer than a tick
BOUND_S = 1.5  # what "at once" must beat here: half a slow step, many ticks


def counting(n: int, pause_s: float = 0.0, log: list | None = None):
    """Yields 0..n-1, sleeping `pause_s` before each; records 'closed' when closed early, 'done' at the end."""
    log = [] if log is None else log
    try:
        for i in range(n):
            time.sleep(pause_s)
            log.append(("priority", os.getpriority(os.PRIO_PROCESS, threading.get_native_id())))
            yield i
        log.append("done")
    except GeneratorExit:
        log.append("closed")
        raise


def test_items_pass_through_in_order_with_ticks_while_nothing_comes():
    log: list = []
    with in_background(counting(3, pause_s=0.5, log=log), tick_s=0.05) as updates:
        seen = list(updates)
    assert [u for u in seen if u is not None] == [0, 1, 2]
    assert None in seen  # the handler could have been stopped between items
    assert log[-1] == "done"


def test_the_stream_can_run_at_a_lower_priority():
    if not hasattr(os, "getpriority"):
        pytest.skip("no thread priorities here")
    log: list = []
    list(Background(counting(1, log=log), nice=5))
    base = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    assert log[0] == ("priority", max(base, 5)) and base < 5  # the run's thread only


def test_an_error_in_the_stream_reaches_the_handler():
    def failing():
        yield 1
        raise ValueError("diverged")

    with pytest.raises(ValueError, match="diverged"), in_background(failing()) as updates:
        list(updates)
    assert runner.SLOTS.acquire(timeout=1)  # the slot came back
    runner.SLOTS.release()


def test_a_stopped_stream_is_closed_after_its_item_in_progress_and_frees_its_slot():
    log: list = []
    background = Background(counting(100, pause_s=0.3, log=log), tick_s=0.05)
    first = next(u for u in background if u is not None)
    background.stop()
    background.thread.join(timeout=5)
    assert first == 0 and not background.thread.is_alive()
    assert log[-1] == "closed" and len([e for e in log if e != "closed"]) <= 2  # at most one more item
    assert runner.SLOTS.acquire(timeout=1)
    runner.SLOTS.release()


def test_a_run_waits_for_a_stopped_run_to_let_go_of_its_slot():
    started = []

    def marking(name: str, pause_s: float):
        started.append(name)
        time.sleep(pause_s)
        yield name

    first = Background(marking("first", 1.0))
    time.sleep(0.2)  # the first holds the one slot, in the middle of its step
    first.stop()
    second = Background(marking("second", 0.0))
    time.sleep(0.3)
    assert started == ["first"]  # the second waits while the first finishes its step
    assert [u for u in second if u is not None] == ["second"]


def handler(log: list):
    """A handler as the app's: ticks (None) while its step runs, then an update; never ends by itself."""
    try:
        while True:
            log.append("step")
            time.sleep(SLOW_S)  # a next() that a cancel cannot interrupt
            yield "update"
    finally:
        log.append("closed")


def test_streamed_drops_ticks_and_keeps_the_handlers_signature():
    def ticking(a, b=2):
        yield None
        yield a + b
        yield None

    async def collect():
        return [u async for u in streamed(ticking)(1)]

    assert asyncio.run(collect()) == [3]
    assert list(inspect.signature(streamed(ticking)).parameters) == ["a", "b"]


def test_a_cancel_returns_at_once_and_the_handler_is_closed_after_its_step():
    log: list = []

    async def cancel_mid_step() -> float:
        updates = streamed(handler)(log)
        task = asyncio.ensure_future(updates.__anext__())
        await asyncio.sleep(0.3)  # the handler is in its step
        start = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return time.monotonic() - start

    assert asyncio.run(cancel_mid_step()) < BOUND_S  # the step itself takes SLOW_S
    deadline = time.monotonic() + 2 * SLOW_S
    while "closed" not in log and time.monotonic() < deadline:
        time.sleep(0.05)
    assert log == ["step", "closed"]  # closed once its step returned, never asked for another
