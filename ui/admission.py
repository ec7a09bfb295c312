"""Admission to training, apart from drawing: a short waiting line, and a fast, clear refusal beyond it.

Gradio has one queue for every event and `max_size` counts them all, so 64 /train requests from fresh
sessions filled it and every stroke got "Queue is full" until they drained. Here training is refused
before it takes a place in that queue: `TrainingAdmission.check` is the train event's `validator`, which
Gradio runs when a request joins the queue (queueing.Queue.push, after the `max_size` check and before
the event is queued). Beyond `max_waiting` runs already waiting it refuses at once: "The training queue
is full (4 runs waiting); try again in about 60 s", and the request never enters the queue. Gradio's
`max_size` can then be set for drawing alone.

    train_btn.click(h.train, ..., concurrency_id="train", validator=admission.check)
    admission = TrainingAdmission(lambda: waiting_in(demo, "train"))

    python -m pytest tests/test_admission.py
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Callable, Iterator

import gradio as gr

MAX_WAITING = 4  # training runs waiting for the trainer; more are refused, not queued
TYPICAL_RUN_S = 15.0  # the Train tab's default run on one thread (python -m bench), until runs are measured
SMOOTHING = 0.3  # weight of the newest run in the average run time


def waiting_in(demo: gr.Blocks, concurrency_id: str) -> int:
    """Events of `concurrency_id` waiting in `demo`'s queue (Gradio keeps one line per concurrency id)."""
    line = demo._queue.event_queue_per_concurrency_id.get(concurrency_id)  # no public accessor in 6.31
    return len(line.queue) if line is not None else 0


class TrainingAdmission:
    """Counts the runs waiting (from Gradio's queue) and times the runs that finish, to refuse with an estimate."""

    def __init__(
        self,
        waiting: Callable[[], int],
        max_waiting: int = MAX_WAITING,
        slots: int = 1,
        typical_run_s: float = TYPICAL_RUN_S,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.waiting, self.max_waiting, self.slots = waiting, max_waiting, slots
        self.run_s = typical_run_s  # the average run, updated as runs end
        self._clock = clock
        self._lock = threading.Lock()

    def wait_s(self, waiting: int) -> int:
        """About how long until a run asked for now would start, with `waiting` runs ahead of it."""
        return max(1, math.ceil(self.run_s * (waiting + self.slots) / self.slots))

    def check(self, *inputs, **named) -> dict:
        """The train event's validator (it gets the event's inputs, and needs none of them): Gradio's "skip"
        says every input is valid; beyond the line it raises, and Gradio answers the join with its text."""
        waiting = self.waiting()
        if waiting >= self.max_waiting:
            # A plain exception: Gradio sends str(exception) to the page, and a gr.Error's is quoted.
            raise RuntimeError(
                f"The training queue is full ({waiting} runs waiting); try again in about {self.wait_s(waiting)} s. "
                "Drawing works meanwhile."
            )
        return gr.skip()

    @contextlib.contextmanager
    def run(self) -> Iterator[None]:
        """Around a training run in the handler: its duration feeds the estimate (a stopped run's too)."""
        start = self._clock()
        try:
            yield
        finally:
            with self._lock:
                self.run_s += SMOOTHING * (self._clock() - start - self.run_s)
