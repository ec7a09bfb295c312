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
import sys
import time
from pathlib import Path

import httpx

from bench.report import Result
from mnist_demo import cost, limits
from mnist_demo.data import Split, load_mnist
from mnist_demo.metrics import predict_split
from mnist_demo.train import TrainConfig, new_model, train
from testkit.server import CALL_TIMEOUT_S, connect, launched, train_args
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


def chunk_seconds(config: TrainConfig, chunks: int) -> Stats:
    """Seconds of `chunks` evaluation chunks as runs.train_stream reads the test set."""
    test, net = load_mnist(train=False), new_model(config)
    size = cost.eval_chunk(config.model, config.size, config.crop)
    times = []
    for start in range(0, size * chunks, size):
        begin = time.perf_counter()
        predict_split(net, Split(test.images[start : start + size], test.labels[start : start + size]))
        times.append(time.perf_counter() - begin)
    return Stats.of(times)


def stopped_event(config: dict) -> int:
    """The fn_index of the Stop button's `stopped` event: the one that writes the status and the download."""
    ids = {c.get("props", {}).get("elem_id"): c["id"] for c in config["components"]}
    return next(
        d["id"] for d in config["dependencies"] if sorted(d["outputs"]) == sorted([ids["status"], ids["download"]])
    )


def run_event(http: httpx.Client, fn_index: int, session: str, data: list) -> dict:
    """An event through the queue in `session`, as the page sends it: its last message."""
    body = {"data": data, "fn_index": fn_index, "session_hash": session, "event_data": None, "trigger_id": None}
    http.post("gradio_api/queue/join", json=body).raise_for_status()
    with http.stream("GET", "gradio_api/queue/data", params={"session_hash": session}) as stream:
        for line in stream.iter_lines():
            if line.startswith("data:") and json.loads(line[5:]).get("msg") == "process_completed":
                return json.loads(line[5:])
    raise RuntimeError("the event never completed")


def wait_for_step(job, deadline_s: float = CALL_TIMEOUT_S * 5) -> None:
    """Until the job has streamed an update from a training step."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if any("step" in str(out[2]) for out in job.outputs()):
            return
        time.sleep(0.05)
    raise TimeoutError("the run never reported a step")


def stops(command: list[str] | None, config: TrainConfig, n: int) -> tuple[Stats, Stats, list[str]]:
    """(seconds from a Stop to its message, seconds to a new run's first update, the messages), n Stops."""
    shown, freed, messages = [], [], []
    rng = random.Random(SEED)
    with launched(command) as app, httpx.Client(base_url=app.url, timeout=CALL_TIMEOUT_S * 5) as http:
        stopped = stopped_event(http.get("config").json())
        for i in range(n):
            visitor, other = connect(app.url), connect(app.url)
            job = visitor.submit(**train_args(dataclasses.replace(config, seed=i)), api_name="/train")
            wait_for_step(job)
            time.sleep(rng.uniform(0.0, 1.0))  # somewhere in a step
            start = time.perf_counter()
            job.cancel()  # what the Stop button's cancels=[run] sends
            message = run_event(http, stopped, visitor.session_hash, [None])
            shown.append(time.perf_counter() - start)
            messages.append(str((message.get("output") or {}).get("data", ["?"])[0])[:80])
            small = other.submit(**train_args(SMALL_RUN), api_name="/train")
            wait_for_step(small)
            freed.append(time.perf_counter() - start)
            small.result(timeout=CALL_TIMEOUT_S * 5)
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
                    f"one step, {model} {config.size} wide, batch {config.batch_size} (a run's end after Stop)",
                    wall.median,
                    "s",
                    n=wall.n,
                    baseline=estimate,
                    baseline_label="estimated",
                    ratio=cpu.median / estimate,
                    target=f"< {TARGET_S:g} s",
                    passed=wall.median < TARGET_S,
                    note=f"wall time, one thread (CPU {cpu.median:.2f} s); ratio = CPU time / mnist_demo.cost's "
                    f"estimate ({cost.MACS_PER_S / 1e9:g} GMAC/s); the app refuses runs estimated over "
                    f"{cost.MAX_STEP_S:g} s a step",
                )
            )
            chunks = chunk_seconds(config, STEPS[quick])
            rows.append(
                Result(
                    NAME,
                    f"one evaluation chunk, {model} {config.size} wide",
                    chunks.median,
                    "s",
                    n=chunks.n,
                    target=f"< {TARGET_S:g} s",
                    passed=chunks.median < TARGET_S,
                    note=f"{cost.eval_chunk(config.model, config.size)} test digits per chunk; the stream can "
                    "be stopped between any two",
                )
            )
    return rows
