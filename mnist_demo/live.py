"""Training in the app: per-run limits, a visitor's own model, and the loop's events turned into updates.

Nothing here imports Gradio: `train_live` yields `LiveUpdate`s (tables, a status line, results) and the
app decides how to show them. The visitor's model is replaced at each epoch end by an evaluated copy,
so stopping a run keeps the last epoch's model and never leaves a half-updated one.

    python -c "from mnist_demo.live import app_config; print(app_config())"
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from torch import nn

from mnist_demo.checkpoint import Checkpoint, checkpoint_metadata
from mnist_demo.data import MNIST_TRAIN_SIZE, load_mnist, normalize
from mnist_demo.inference import prepare
from mnist_demo.metrics import confusion_matrix, predict_split
from mnist_demo.personal import PersonalSet
from mnist_demo.train import Progress, TrainConfig, new_model, train

# Limits per training run in the app, checked on the server (the sliders are only a convenience).
MAX_EPOCHS = 10
MAX_TRAIN_SIZE = MNIST_TRAIN_SIZE
MIN_TRAIN_SIZE = 100
MAX_BATCH_SIZE = 1024
MAX_SIZE = {"mlp": 1024, "cnn": 64}  # hidden units / CNN width: bounds memory and time per step
UPDATE_EVERY_S = 0.3  # at most this often a new loss point reaches the browser, however fast the steps
GALLERY_SIZE = 24  # misclassified test digits shown after a run

# What the Train tab starts with: a CNN that finishes in about 15 s on one CPU thread (measured by
# `python -m bench`), and the guide's MLP at its own settings for comparison.
APP_DEFAULTS = TrainConfig(
    model="cnn",
    size=16,
    epochs=2,
    batch_size=128,
    lr=0.01,
    optimizer="adam",
    schedule="onecycle",
    train_size=12_000,
    augment=False,
    seed=0,
    log_every=5,
)


def app_config(**controls) -> TrainConfig:
    """A `TrainConfig` from the Train tab's controls, refusing what this app will not run."""
    config = dataclasses.replace(APP_DEFAULTS, **controls)  # TrainConfig checks types and ranges itself
    problems = []
    if config.epochs > MAX_EPOCHS:
        problems.append(f"at most {MAX_EPOCHS} epochs per run here (asked for {config.epochs})")
    if not MIN_TRAIN_SIZE <= config.train_size <= MAX_TRAIN_SIZE:
        problems.append(
            f"training-set size must be {MIN_TRAIN_SIZE:,} to {MAX_TRAIN_SIZE:,} (asked for {config.train_size:,})"
        )
    if config.batch_size > MAX_BATCH_SIZE:
        problems.append(f"batch size at most {MAX_BATCH_SIZE} here (asked for {config.batch_size})")
    if config.size > MAX_SIZE[config.model]:
        problems.append(f"{config.model} size at most {MAX_SIZE[config.model]} here (asked for {config.size})")
    if problems:
        raise ValueError("; ".join(problems))
    return config


class RunCounter:
    """How many training runs are in progress in this process: a closed or abandoned run leaves the count."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count = 0

    @contextlib.contextmanager
    def track(self) -> Iterator[None]:
        with self._lock:
            self._count += 1
        try:
            yield
        finally:  # also on GeneratorExit, when Stop or a vanished client closes the run
            with self._lock:
                self._count -= 1

    def count(self) -> int:
        return self._count


RUNS = RunCounter()  # shared by the whole app, like the queue it mirrors


@dataclass
class Visitor:
    """One visitor's own things, kept in `gr.State`: nobody else sees or replaces them."""

    model: Checkpoint | None = None  # their latest evaluated model, ready for inference
    previous: Checkpoint | None = None  # what `model` replaced, so it can be restored
    drawings: PersonalSet = field(default_factory=PersonalSet)  # the digits they drew and labelled


@dataclass(frozen=True)
class Results:
    """What a finished run shows: where the model goes wrong."""

    confusion: np.ndarray  # (10, 10) counts, rows are the true digit
    mistakes: list[tuple[np.ndarray, str]]  # (28x28 uint8 image, "4 → 9": true digit, prediction) for a gallery


@dataclass(frozen=True)
class LiveUpdate:
    """One refresh of the Train tab."""

    losses: pd.DataFrame  # columns step, loss
    accuracies: pd.DataFrame  # columns epoch, accuracy (percent)
    status: str
    model_changed: bool = False  # the visitor's model was replaced by a newly evaluated one
    results: Results | None = None  # set once, when the run ends
    probe: dict[str, float] | None = None  # what the model in training reads the watched drawing as


def snapshot(model: nn.Module, config: TrainConfig, event: Progress) -> Checkpoint:
    """An evaluated, frozen CPU copy of `model` for the visitor to draw against."""
    copy_ = prepare(copy.deepcopy(model).to("cpu"))
    meta = checkpoint_metadata(
        copy_,
        config=dataclasses.asdict(config),
        test_accuracy=event.test_accuracy,
        seed=config.seed,
        steps=event.step,
        command="trained in the mnist-demo app",
    )
    return Checkpoint(copy_, meta)


def status_line(event: Progress, config: TrainConfig, accuracy: float | None) -> str:
    parts = [
        f"epoch {event.epoch}/{config.epochs}",
        f"step {event.step}/{event.total_steps}",
        f"loss {event.loss:.3f}",
        f"{event.samples_per_s:,.0f} images/s",
    ]
    if event.step < event.total_steps:
        parts.append(f"about {event.seconds_left:.0f} s left")
    if accuracy is not None:
        parts.append(f"test accuracy {accuracy:.2%}")
    return " · ".join(parts)


def mistakes(model: nn.Module, limit: int = GALLERY_SIZE) -> tuple[np.ndarray, list[tuple[np.ndarray, str]]]:
    """Confusion matrix on the MNIST test set and the first `limit` misclassified digits."""
    test = load_mnist(train=False)
    preds = predict_split(model, test)
    wrong = torch.nonzero(preds != test.labels).flatten()[:limit].tolist()
    gallery = [(test.images[i].numpy(), f"{int(test.labels[i])} → {int(preds[i])}") for i in wrong]
    return confusion_matrix(test.labels, preds).numpy(), gallery


def table(rows: list[tuple[int, float]], x: str, y: str) -> pd.DataFrame:
    """Plot points as a typed frame: an empty frame would be untyped, and the browser's plot would then
    treat the axis as categories for the rest of the run."""
    return pd.DataFrame(rows, columns=[x, y]).astype({x: "int64", y: "float64"})


@torch.no_grad()
def read_probe(model: nn.Module, image: np.ndarray) -> dict[str, float]:
    """{digit: probability} for one (28, 28) uint8 drawing, from a model in the middle of training."""
    training = model.training
    model.eval()  # batch norm must use its running statistics for a single image
    probabilities = model(normalize(torch.from_numpy(image)[None])).softmax(dim=1)[0]  # (10,)
    model.train(training)
    return {str(d): float(p) for d, p in enumerate(probabilities)}


def train_live(config: TrainConfig, visitor: Visitor, probe: np.ndarray | None = None) -> Iterator[LiveUpdate]:
    """Run `config` for `visitor`, yielding Train-tab updates at most every `UPDATE_EVERY_S`.

    `probe`, a (28, 28) uint8 drawing, is read by the model in training at every update.
    """
    model, before = new_model(config), visitor.model
    losses: list[tuple[int, float]] = []
    accuracies: list[tuple[int, float]] = []
    last_sent, event = 0.0, None

    def update(status: str, **extra) -> LiveUpdate:
        return LiveUpdate(
            table(losses, "step", "loss"),
            table(accuracies, "epoch", "accuracy"),
            status,
            probe=None if probe is None else read_probe(model, probe),
            **extra,
        )

    with RUNS.track():  # until the run ends, is stopped, or its visitor goes away
        for event in train(config, model, device=torch.device("cpu")):
            losses.append((event.step, event.loss))
            if event.test_accuracy is not None:
                accuracies.append((event.epoch, 100 * event.test_accuracy))
                visitor.previous = before if before is not None else visitor.previous
                visitor.model = snapshot(model, config, event)
                yield update(status_line(event, config, event.test_accuracy), model_changed=True)
                last_sent = time.monotonic()
            elif time.monotonic() - last_sent >= UPDATE_EVERY_S:
                yield update(status_line(event, config, accuracies[-1][1] / 100 if accuracies else None))
                last_sent = time.monotonic()

        confusion, gallery = mistakes(visitor.model.model)
        done = f"done: {status_line(event, config, event.test_accuracy)} · your model is now selected in the Draw tab"
        yield update(done, results=Results(confusion, gallery))
