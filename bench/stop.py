"""How long a Stop takes on the largest training run the app accepts: as the visitor sees it, and until the run ends.

End to end, against `python app.py` in its own process: a client starts the largest legal run (the widest
CNN at the largest batch the step cap allows, 10 epochs of 60,000 images), waits for it to be stepping,
then Stops it as the page does (the event's cancel, then the Stop button's `stopped` event in the same
session) at a random moment of a step. Timed: from the Stop to the "stopped" message (the target: under a
second), and to the first update of a small run started right after (the training slot freed).

In this process, on one thread: what bounds the run's own end after a Stop, i.e. one step of that run and
one evaluation chunk (mnist_demo/cost.py caps both), and the cost estimate against a step's measured CPU time.

`measure(root, batch)` runs the end-to-end part against another checkout (an older commit, with the batch
its largest legal run used), for a before/after.

    python -m bench --only stop [--quick]      # --quick: one Stop, one step per setting
    python -c "from bench.stop import measure; print(measure('/path/to/old/checkout', 512))"
"""

from __future__ import annotations

import dataclasses
import json
import random
import secrets
import sys
import threading
import time
from pathlib import Path

import httpx

from bench.report import Result
from mnist_demo import cost, limits
from mnist_demo.data import Split, load_mnist
from mnist_demo.metrics import predict_split
from mnist_demo.train import CNN_MEMORY_FORMAT, TrainConfig, new_model, train
from testkit.server import CALL_TIMEOUT_S, launched, train_args
from testkit.timing import Stats, one_torch_thread

NAME = "stop"
TARGET_S = 1.0  # a Stop should be done within a second
STOPS = {True: 1, False: 3}  # Stops timed end to end
STEPS = {True: 1, False: 4}  # optimizer steps timed per setting, after one untimed
SMALL_RUN = dataclasses.replace(limits.APP_DEFAULTS, size=4, epochs=1, train_size=limits.MIN_TRAIN_SIZE)
SEED = 0


def largest(model: str, batch: int | None = None) -> TrainConfig:
    """The largest run of `model` the app accepts (at `batch`, default the largest its step cap allows)."""
    size = limits.MAX_SIZE[model]
    return TrainConfig(
        **{
            **dataclasses.asdict(limits.APP_DEFAULTS),
            "model": model,
            "size": size,
            "batch_size": batch or limits.largest_batch_size(model, size),
            "train_size": limits.MAX_TRAIN_SIZE,
            "epochs": limits.MAX_EPOCHS,
        }
    )


def step_seconds(config: TrainConfig, steps: int) -> tuple[Stats, Stats]:
    """(wall, thread CPU) seconds of each of `steps` optimizer steps, after one untimed."""
    config = dataclasses.replace(config, max_steps=steps + 2, log_every=1)
    wall, cpu, last = [], [], None
    test = load_mnist(train=False).subset(0)  # no evaluation: timed on its own
    for _ in train(config, new_model(config), load_mnist(train=True), test):
        now = (time.perf_counter(), time.thread_time())
        if last is not None and len(wall) < steps:
            wall.append(now[0] - last[0])
            cpu.append(now[1] - last[1])
        last = now
    return Stats.of(wall), Stats.of(cpu)


def chunk_seconds(config: TrainConfig, chunks: int) -> tuple[Stats, Stats]:
    """(wall, thread CPU) seconds of `chunks` evaluation chunks, as runs.train_stream reads the test set (the
    model in the layout training left it in)."""
    test, net = load_mnist(train=False), new_model(config)
    if config.model == "cnn":
        net.to(memory_format=CNN_MEMORY_FORMAT)
    size = cost.eval_chunk(config.model, config.size, config.crop)
    wall, cpu = [], []
    for start in range(0, size * (chunks + 1), size):
        begin = (time.perf_counter(), time.thread_time())
        predict_split(net, Split(test.images[start : start + size], test.labels[start : start + size]))
        if start:  # the first is untimed
            wall.append(time.perf_counter() - begin[0])
            cpu.append(time.thread_time() - begin[1])
    return Stats.of(wall), Stats.of(cpu)


def event_ids(config: dict) -> tuple[int, int]:
    """The fn_index of /train, and of the Stop button's `stopped` event (the one that writes the status and
    the download)."""
    ids = {c.get("props", {}).get("elem_id"): c["id"] for c in config["components"]}
    train = next(d["id"] for d in config["dependencies"] if d.get("api_name") == "train")
    stopped = next(
        d["id"] for d in config["dependencies"] if sorted(d["outputs"]) == sorted([ids["status"], ids["download"]])
    )
    return train, stopped


class Page:
    """One browser tab's session as the page drives it: events joined to the queue, one stream of messages."""

    def __init__(self, url: str):
        self.http = httpx.Client(base_url=url, timeout=CALL_TIMEOUT_S * 5)
        self.session = secrets.token_hex(8)
        self.messages: list[dict] = []
        self.changed = threading.Condition()
        self.reader: threading.Thread | None = None
        self.pending: set[str] = set()  # events joined and not completed

    def join(self, fn_index: int, data: list) -> str:
        body = {"data": data, "fn_index": fn_index, "session_hash": self.session, "trigger_id": None}
        event = self.http.post("gradio_api/queue/join", json=body).raise_for_status().json()["event_id"]
        with self.changed:
            self.pending.add(event)
            if self.reader is None or not self.reader.is_alive():  # the page opens the stream when it has events
                self.reader = threading.Thread(target=self._read, daemon=True)
                self.reader.start()
        return event

    def _read(self) -> None:
        """Read the session's stream, opened again while an event has not completed (Gradio closes it when
        it has nothing pending)."""
        while True:
            try:
                with self.http.stream("GET", "gradio_api/queue/data", params={"session_hash": self.session}) as stream:
                    for line in stream.iter_lines():
                        if line.startswith("data:"):
                            self._received(json.loads(line[5:]))
            except httpx.HTTPError:  # the app stopped: the waits time out and say what was missing
                return
            with self.changed:
                if not self.pending:
                    self.reader = None
                    return

    def _received(self, message: dict) -> None:
        with self.changed:
            self.messages.append(message)
            if message.get("msg") == "process_completed":
                self.pending.discard(message.get("event_id"))
            self.changed.notify_all()

    def wait(self, event: str, kind: str) -> dict:
        """The first message `kind` (process_generating, process_completed) of `event`."""

        def found():
            return next((m for m in self.messages if m.get("event_id") == event and m.get("msg") == kind), None)

        with self.changed:
            if not self.changed.wait_for(found, timeout=CALL_TIMEOUT_S * 5):
                raise TimeoutError(f"no {kind} for event {event}")
            return found()

    def cancel(self, fn_index: int, event: str) -> None:
        """What the page sends for an event that a Stop button `cancels`."""
        body = {"session_hash": self.session, "fn_index": fn_index, "event_id": event}
        self.http.post("gradio_api/cancel", json=body).raise_for_status()


def train_data(config: TrainConfig) -> list:
    """The /train event's inputs as the page sends them (the visitor's state last)."""
    return [*train_args(config).values(), -1, None]


def stops(command: list[str] | None, config: TrainConfig, n: int) -> tuple[Stats, Stats, list[str]]:
    """(seconds from a Stop to its message, seconds to a new run's first update, the messages), n Stops."""
    shown, freed, messages = [], [], []
    rng = random.Random(SEED)
    with launched(command) as app:
        train, stopped = event_ids(httpx.get(app.url + "config").json())
        for i in range(n):
            visitor, other = Page(app.url), Page(app.url)
            run = visitor.join(train, train_data(dataclasses.replace(config, seed=i)))
            visitor.wait(run, "process_generating")  # the run is stepping
            time.sleep(rng.uniform(0.0, 1.0))  # somewhere in a step
            start = time.perf_counter()
            visitor.cancel(train, run)  # the Stop button: cancels=[run], then its stopped event
            message = visitor.wait(visitor.join(stopped, [None]), "process_completed")
            shown.append(time.perf_counter() - start)
            messages.append(str(message["output"]["data"][0])[:80])
            small = other.join(train, train_data(SMALL_RUN))
            other.wait(small, "process_generating")
            freed.append(time.perf_counter() - start)
            other.wait(small, "process_completed")
    return Stats.of(shown), Stats.of(freed), messages


def measure(root: str | Path, batch: int | None = None, n: int = STOPS[False]) -> dict:
    """The end-to-end Stop against the app in another checkout (its largest run at `batch`)."""
    command = [sys.executable, str(Path(root) / "app.py")]
    shown, freed, messages = stops(command, largest("cnn", batch), n)
    return {"stop_s": shown.samples, "new_run_s": freed.samples, "messages": messages}


def run(quick: bool) -> list[Result]:
    rows = []
    config = largest("cnn")
    shown, freed, messages = stops(None, config, STOPS[quick])
    setting = f"CNN {config.size} wide, batch {config.batch_size}, {config.epochs} epochs of {config.train_size:,}"
    rows.append(
        Result.timed(
            NAME,
            "Stop to its message, largest legal run",
            shown,
            "s",
            target=f"< {TARGET_S:g} s",
            passed=shown.p95 < TARGET_S,
            note=f"{setting}; python app.py, Stop at a random moment of a step (cancel, then the stopped event); "
            f"messages: {sorted(set(messages))}",
        )
    )
    rows.append(
        Result.timed(
            NAME,
            "&emsp;Stop to a new run's first update",
            freed,
            "s",
            note=f"a run of {SMALL_RUN.train_size} images started right after the Stop, by another visitor: "
            "the training slot is free once the stopped run's thread has finished its step",
        )
    )
    load_mnist(train=True)  # loaded once, before anything is timed in this process
    with one_torch_thread():
        for model in ("cnn", "mlp"):
            config = largest(model)
            wall, cpu = step_seconds(config, STEPS[quick])
            estimate = cost.step_seconds(config.model, config.size, config.batch_size)
            rows.append(
                Result(
                    NAME,
                    f"one step, {model} {config.size} wide, batch {config.batch_size} (CPU time)",
                    cpu.median,
                    "s",
                    n=cpu.n,
                    baseline=estimate,
                    baseline_label="estimated",
                    ratio=cpu.median / estimate,
                    target=f"< {TARGET_S:g} s",
                    passed=cpu.median < TARGET_S,
                    note=f"how long a stopped run's thread may go on; one thread, wall {wall.median:.2f} s on the "
                    f"shared cores; ratio = CPU time / mnist_demo.cost's estimate ({cost.MACS_PER_S / 1e9:g} GMAC/s), "
                    f"and the app refuses runs estimated over {cost.MAX_STEP_S:g} s a step",
                )
            )
            wall, cpu = chunk_seconds(config, STEPS[quick])
            rows.append(
                Result(
                    NAME,
                    f"one evaluation chunk, {model} {config.size} wide (CPU time)",
                    cpu.median,
                    "s",
                    n=cpu.n,
                    target=f"< {TARGET_S:g} s",
                    passed=cpu.median < TARGET_S,
                    note=f"{cost.eval_chunk(config.model, config.size)} test digits per chunk, the stream can be "
                    f"stopped between any two; wall {wall.median:.2f} s on the shared cores",
                )
            )
    return rows
