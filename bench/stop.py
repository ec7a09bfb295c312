"""Where a Stop waits on the largest training run the app allows, measured in this process on one thread.

Gradio cancels a run by closing its generator at the next `yield`; the step in progress, and whatever
runs before the next yield, finishes first. So a Stop waits for: the rest of `log_every` optimizer steps
(train() yields every `log_every` steps), or the epoch-end evaluation on the 10,000 test digits, or the
confusion matrix and mistakes at the end of a run. Each is timed for the widest CNN and MLP the app
trains, at the largest batch the server takes and at the largest the Train tab offers.

    python -m bench --only stop [--quick]
"""

from __future__ import annotations

import dataclasses
import time

from bench.report import Result
from mnist_demo import live
from mnist_demo.data import load_mnist
from mnist_demo.metrics import accuracy
from mnist_demo.train import Progress, TrainConfig, new_model, train
from testkit.timing import Stats, one_torch_thread

NAME = "stop"
TARGET_S = 1.0  # a Stop should be done within a second
BATCHES = (512, live.MAX_BATCH_SIZE)  # the Train tab's largest batch, and the server's limit
EVENTS = {True: 2, False: 5}  # progress events timed per setting (each `log_every` steps)
EPOCH_END = Progress(1, 1, 1, 0.0, 0.0, 0.0, 0.0, 0.5)  # a stand-in event, for timing the visitor's snapshot


def largest(model: str, batch: int) -> TrainConfig:
    """The largest legal run of `model` at `batch`, as the app would accept it."""
    return live.app_config(
        model=model,
        size=live.MAX_SIZE[model],
        batch_size=batch,
        train_size=live.MAX_TRAIN_SIZE,
        epochs=live.MAX_EPOCHS,
    )


def gaps(config: TrainConfig, events: int) -> tuple[Stats, float]:
    """(seconds between consecutive progress events, seconds of one optimizer step on average)."""
    config = dataclasses.replace(config, max_steps=config.log_every * (events + 1))
    times, last = [], None
    for event in train(config, new_model(config)):
        now = time.perf_counter()
        if last is not None and event.test_accuracy is None:
            times.append(now - last)
        last = now
    stats = Stats.of(times)
    return stats, stats.median / config.log_every


def run(quick: bool) -> list[Result]:
    rows = []
    test = load_mnist(train=False)
    load_mnist(train=True)  # loaded once, before anything is timed
    with one_torch_thread():
        for model in ("cnn", "mlp"):
            for batch in BATCHES:
                config = largest(model, batch)
                between, per_step = gaps(config, EVENTS[quick])
                rows.append(
                    Result.timed(
                        NAME,
                        f"wait at a step, {model} {config.size} wide, batch {batch}",
                        between,
                        unit="s",
                        target=f"< {TARGET_S:g} s",
                        passed=between.p95 < TARGET_S,
                        note=f"time between progress events ({config.log_every} steps; a Stop waits for the rest "
                        f"of them): {per_step:.2f} s per step",
                    )
                )
            net = new_model(largest(model, BATCHES[0])).eval()
            start = time.perf_counter()
            accuracy(net, test)
            evaluation = time.perf_counter() - start
            start = time.perf_counter()
            live.snapshot(net, config, EPOCH_END)
            live.mistakes(net)
            ending = time.perf_counter() - start
            rows.append(
                Result(
                    NAME,
                    f"wait at an epoch end, {model} {config.size} wide",
                    evaluation,
                    "s",
                    target=f"< {TARGET_S:g} s",
                    passed=evaluation < TARGET_S,
                    note=f"test accuracy on {len(test):,} digits; the end of a run adds {ending:.2f} s "
                    "(the visitor's snapshot, then the confusion matrix and mistakes on the test set again)",
                )
            )
    return rows
