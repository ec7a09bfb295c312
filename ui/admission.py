"""Admission to training, apart from drawing: a short waiting line, and a fast, clear refusal beyond it.

Gradio has one queue for every event and `max_size` counts them all, so 64 /train requests from fresh
sessions filled it and every stroke got "Queue is full" until they drained. Here a training or
fine-tuning run is refused before it reaches that queue: `AdmissionMiddleware` looks at each request that
starts an event (the page's and gradio_client's /queue/join, curl's /call/<api_name>), and when it is
for a training event (`concurrency_id="train"`) while `max_waiting` runs already wait, answers HTTP 400
at once: "The training queue is full (4 runs waiting); try again in about 60 s. Drawing works
meanwhile." (the page shows the `detail`). Gradio's `max_size` is then drawing's alone.

Not a Gradio `validator`: Gradio runs a validator after preprocessing the event's inputs, so a bad value
(a batch size not offered) became a bare HTTP 400 for gradio_client instead of the event's clear error.

    admission = TrainingAdmission(lambda: waiting_in(demo, "train"))
    demo.launch(..., app_kwargs=admission.app_kwargs(demo))
    with admission.run(): ...   # around each run, in its handler: the estimate follows real runs

    python -m pytest tests/test_admission.py
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Callable, Iterator

import gradio as gr
from starlette.middleware import Middleware

from ui.asgi import JOIN_PATH, answer_json, api_name_of, is_post, read_json

MAX_WAITING = 4  # training runs waiting for the trainer; more are refused, not queued
REFUSED = 400  # the status Gradio gives a join it refuses with a reason (the page shows the reason)
TRAINING = "train"  # the concurrency id of the events that run training or fine-tuning
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

    def refusal(self) -> str | None:
        """Why a training run asked for now is refused, or None when it may wait its turn."""
        waiting = self.waiting()
        if waiting < self.max_waiting:
            return None
        return (
            f"The training queue is full ({waiting} runs waiting); try again in about {self.wait_s(waiting)} s. "
            "Drawing works meanwhile."
        )

    def app_kwargs(self, demo: gr.Blocks, concurrency_id: str = TRAINING) -> dict:
        """launch's `app_kwargs` that put this admission in front of `demo`'s events of `concurrency_id`."""
        fns = [fn for fn in demo.fns.values() if fn.concurrency_id == concurrency_id]
        events = {fn._id for fn in fns}, {fn.api_name for fn in fns if isinstance(fn.api_name, str)}
        return {"middleware": [Middleware(AdmissionMiddleware, admission=self, events=events)]}

    @contextlib.contextmanager
    def run(self) -> Iterator[None]:
        """Around a training run in the handler: its duration feeds the estimate (a stopped run's too)."""
        start = self._clock()
        try:
            yield
        finally:
            with self._lock:
                self.run_s += SMOOTHING * (self._clock() - start - self.run_s)


class AdmissionMiddleware:
    """ASGI middleware: a request starting a training event is refused (HTTP 400, with the reason) when the
    training line is full; everything else passes untouched."""

    def __init__(self, app, admission: TrainingAdmission, events: tuple[set[int], set[str]]):
        self.app, self.admission = app, admission
        self.fn_indices, self.api_names = events

    async def __call__(self, scope, receive, send):
        training = False
        if is_post(scope, JOIN_PATH):
            body, receive = await read_json(receive)
            training = body.get("fn_index") in self.fn_indices
        elif is_post(scope, "/call/"):
            training = api_name_of(scope) in self.api_names
        reason = self.admission.refusal() if training else None
        if reason:
            await answer_json(send, REFUSED, {"detail": reason})
            return
        await self.app(scope, receive, send)
