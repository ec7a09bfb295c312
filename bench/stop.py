"""Where a Stop waits on the largest training run the app allows, measured in this process on one thread.

Gradio cancels a run by closing its generator at its next `yield`, and the worker thread cannot be
interrupted: the step in progress, and everything before the next yield, finishes first. train() yields
every `log_every` optimizer steps and after each epoch's evaluation on the 10,000 test digits; a run's end
adds the confusion matrix and mistakes (the test set again). Each cost is timed for the widest CNN and
MLP the app trains, at the Train tab's largest batch and at the server's limit. A Stop within a second
needs every one of them under a second, or a run that does not make the Stop wait for them.

    python -m bench --only stop [--quick]      # --quick: one step per setting, evaluation on 1,000 digits
"""

from __future__ import annotations

import dataclasses
import time

from bench.report import Result
from mnist_demo import limits, runs
from mnist_demo.data import load_mnist
from mnist_demo.metrics import accuracy
from mnist_demo.train import Progress, TrainConfig, new_model, train
from testkit.timing import Stats, one_torch_thread

NAME = "stop"
TARGET_S = 1.0  # a Stop should be done within a second
UI_BATCH = 512  # the Train tab's largest batch (its dropdown); limits.MAX_BATCH_SIZE is the server's
BATCHES = {True: (UI_BATCH,), False: (UI_BATCH, limits.MAX_BATCH_SIZE)}
STEPS = {True: 1, False: 4}  # optimizer steps timed per setting, after one untimed
EVAL_IMAGES = {True: 1_000, False: 10_000}  # test digits evaluated; a quick run scales its time to 10,000
EPOCH_END = Progress(1, 1, 1, 0.0, 0.0, 0.0, 0.0, 0.5)  # a stand-in event, for timing the visitor's snapshot


def largest(model: str, batch: int) -> TrainConfig:
    """The largest legal run of `model` at `batch`, as the app would accept it."""
    return limits.app_config(
        model=model,
        size=limits.MAX_SIZE[model],
        batch_size=batch,
        train_size=limits.MAX_TRAIN_SIZE,
        epochs=limits.MAX_EPOCHS,
    )


def step_seconds(config: TrainConfig, steps: int) -> Stats:
    """Seconds of each of `steps` optimizer steps (train() yielding after every one), after one untimed."""
    config = dataclasses.replace(config, max_steps=steps + 2, log_every=1)
    times, last = [], None
    for event in train(config, new_model(config)):
        now = time.perf_counter()
        if last is not None and event.test_accuracy is None and len(times) < steps:
            times.append(now - last)
        last = now
        if len(times) == steps:
            break  # the rest (the run's final evaluation) is timed on its own below
    return Stats.of(times)


def run(quick: bool) -> list[Result]:
    rows = []
    test = load_mnist(train=False)
    load_mnist(train=True)  # loaded once, before anything is timed
    sample = test.subset(EVAL_IMAGES[quick])
    scale = len(test) / len(sample)
    with one_torch_thread():
        for model in ("cnn", "mlp"):
            for batch in BATCHES[quick]:
                config = largest(model, batch)
                per_step = step_seconds(config, STEPS[quick])
                wait = per_step.median * config.log_every
                rows.append(
                    Result(
                        NAME,
                        f"wait at a step, {model} {config.size} wide, batch {batch}",
                        wait,
                        "s",
                        n=per_step.n,
                        target=f"< {TARGET_S:g} s",
                        passed=wait < TARGET_S,
                        note=f"{per_step.median:.2f} s per step (median of {per_step.n}) x {config.log_every} "
                        "steps between progress events: at worst a Stop waits for all of them",
                    )
                )
            net = new_model(config).eval()
            start = time.perf_counter()
            accuracy(net, sample)
            evaluation = (time.perf_counter() - start) * scale
            ending = ""
            if not quick:
                start = time.perf_counter()
                runs.snapshot(net, config, EPOCH_END)
                runs.mistakes(net)
                ending = f"; a run's end adds {time.perf_counter() - start:.2f} s (snapshot, confusion and mistakes)"
            rows.append(
                Result(
                    NAME,
                    f"wait at an epoch end, {model} {config.size} wide",
                    evaluation,
                    "s",
                    target=f"< {TARGET_S:g} s",
                    passed=evaluation < TARGET_S,
                    note=f"test accuracy on {len(test):,} digits"
                    + (f" (timed on {len(sample):,}, scaled)" if scale != 1 else "")
                    + ending,
                )
            )
    return rows
