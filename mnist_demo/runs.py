"""Training and fine-tuning as the app shows them: streams of updates with plot frames, a status line and models.

`train_stream` and `finetune_stream` wrap the loop (`train.train`) and `finetune.finetune`, and yield
`RunUpdate`s at most every `UPDATE_EVERY_S`: the loss (and accuracy) frames for the plots, one line of
status, and, whenever a newly evaluated model is ready, that model as a frozen CPU `Checkpoint` with a
sentence saying what made it. A training run also maps its network before the first step and after
every epoch (`replay.Frame`: the map of digits and the first layer), computed here so that a run in
another process brings its frames along. They change nothing outside themselves: the caller adopts
the models it is handed (`session.Visitor.adopt`), so a run can live in another thread or process
(ZeroGPU runs it in a fork) and a stopped run leaves the last epoch's model. Stopping a run is closing
its stream: a training stream yields often enough (every step and every evaluation chunk may end in a
yield, and the app bounds their cost, `mnist_demo.cost`) that a close takes effect within a second, with
no flag shared with the caller. A model whose outputs are not finite is never handed over (`RunError`
says why). Nothing here imports Gradio.

    python -m pytest tests/test_runs.py
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from mnist_demo import cost
from mnist_demo.atlas import map_digits, unmapped_test_digits
from mnist_demo.checkpoint import Checkpoint, CheckpointError, check_outputs, checkpoint_metadata
from mnist_demo.data import Split, load_mnist, normalize
from mnist_demo.features import features_and_predictions
from mnist_demo.finetune import FinetuneConfig, FinetuneResult, finetune
from mnist_demo.inference import prepare
from mnist_demo.metrics import confusion_matrix, predict_split
from mnist_demo.models import CNN_WIDTH, GUIDE_HIDDEN
from mnist_demo.personal import PersonalSet
from mnist_demo.replay import Frame, Replay
from mnist_demo.train import Progress, TrainConfig, new_model, train

UPDATE_EVERY_S = 0.3  # at most this often a new loss point reaches the browser, however fast the steps
GALLERY_SIZE = 24  # misclassified test digits shown after a run
ACCURACY_MARGIN = 1.0  # percentage points of room below the lowest accuracy on the plot's y axis
MODEL_NAMES = {"cnn": "CNN", "mlp": "MLP"}
SIZE_WORDS = {"cnn": "channels", "mlp": "hidden units"}
NO_DRAWINGS = "add some drawings of your own first (Draw tab: choose the digit, then Add)"


class RunCounter:
    """How many training and fine-tuning runs are in progress in this process: a closed or abandoned run
    leaves the count."""

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


RUNS = RunCounter()  # shared by the whole app, like the queue it mirrors; counted where the app serves


@dataclass(frozen=True)
class Results:
    """What a finished training run shows: where the model goes wrong."""

    confusion: np.ndarray  # (10, 10) counts, rows are the true digit
    mistakes: list[tuple[np.ndarray, str]]  # (28x28 uint8 image, "4 → 9": true digit, prediction) for a gallery
    predictions: np.ndarray | None = None  # (10000,) uint8: the digit read for each test digit, in test order


@dataclass(frozen=True)
class RunUpdate:
    """One refresh of a run's view."""

    losses: pd.DataFrame  # columns step (int), loss (float)
    status: str
    accuracies: pd.DataFrame | None = None  # columns epoch (str: whole epochs only), accuracy (percent)
    checkpoint: Checkpoint | None = None  # a newly evaluated model for the visitor to adopt
    origin: str = ""  # what made `checkpoint`, in a few words
    results: Results | None = None  # set once, when a training run ends
    probe: dict[str, float] | None = None  # what the model in training reads the watched drawing as
    finetuned: FinetuneResult | None = None  # set once, when a fine-tuning run ends
    frame: Frame | None = None  # the map and the first layer: before training, then with each epoch's model


def loss_table(rows: list[tuple[int, float]]) -> pd.DataFrame:
    """Loss points as a typed frame: an empty frame would be untyped, and the browser's plot would then
    treat the axis as categories for the rest of the run."""
    return pd.DataFrame(rows, columns=["step", "loss"]).astype({"step": "int64", "loss": "float64"})


def accuracy_table(rows: list[tuple[int, float]]) -> pd.DataFrame:
    """Test accuracy per epoch; the epoch is a category, so the axis shows whole epochs (1, 2, ...), never 1.2."""
    return pd.DataFrame([(str(e), a) for e, a in rows], columns=["epoch", "accuracy"]).astype({"accuracy": "float64"})


def accuracy_range(accuracies: pd.DataFrame) -> list[float]:
    """The accuracy plot's y limits: room below the lowest point, 100 at the top, so one point is a point."""
    low = float(accuracies["accuracy"].min()) if len(accuracies) else 90.0
    return [max(0.0, float(np.floor(low - ACCURACY_MARGIN))), 100.0]


def describe(config: TrainConfig) -> str:
    """A training run's settings in a few words, e.g. 'CNN, 16 channels, 2 epochs of 12,000 images'."""
    size = config.size or {"cnn": CNN_WIDTH, "mlp": GUIDE_HIDDEN}[config.model]
    return (
        f"{MODEL_NAMES[config.model]}, {size} {SIZE_WORDS[config.model]}, "
        f"{config.epochs} epoch{'s' * (config.epochs != 1)} of {config.train_size:,} images"
    )


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


class RunError(ValueError):
    """A run that cannot go on, said for the visitor (a diverged loss, a model whose outputs are not finite)."""


def results_of(predictions: torch.Tensor, test: Split, limit: int = GALLERY_SIZE) -> Results:
    """Confusion matrix and the first `limit` misclassified digits, from predictions (N,) on the test split."""
    wrong = torch.nonzero(predictions != test.labels).flatten()[:limit].tolist()
    gallery = [(test.images[i].numpy(), f"{int(test.labels[i])} → {int(predictions[i])}") for i in wrong]
    return Results(confusion_matrix(test.labels, predictions).numpy(), gallery, predictions.numpy().astype(np.uint8))


def mistakes(model: nn.Module, device: torch.device | str = "cpu", limit: int = GALLERY_SIZE) -> Results:
    """Confusion matrix on the MNIST test set and the first `limit` misclassified digits."""
    test = load_mnist(train=False)
    return results_of(predict_split(model, test, device), test, limit)


def checked(checkpoint: Checkpoint, what: str) -> Checkpoint:
    """`checkpoint`, unless its outputs are NaN or infinite: then RunError saying that `what` made it so."""
    try:
        check_outputs(checkpoint.model)
    except CheckpointError:
        raise RunError(f"{what} gives NaN or infinite outputs, so it is not kept: try a lower learning rate") from None
    return checkpoint


@torch.no_grad()
def read_probe(model: nn.Module, image: np.ndarray) -> dict[str, float]:
    """{digit: probability} for one (28, 28) uint8 drawing, from a model in the middle of training."""
    training = model.training
    model.eval()  # batch norm must use its running statistics for a single image
    x = normalize(torch.from_numpy(image)[None]).to(next(model.parameters()).device)  # (1, 1, 28, 28)
    probabilities = model(x).softmax(dim=1)[0].cpu()  # (10,)
    model.train(training)
    return {str(d): float(p) for d, p in enumerate(probabilities)}


def train_stream(
    config: TrainConfig,
    probe: np.ndarray | None = None,
    device: torch.device | str = "cpu",
    mine: tuple[np.ndarray, np.ndarray] | None = None,
    watch: bool = True,
) -> Iterator[RunUpdate]:
    """Train a new model with `config` on `device`, yielding updates; each epoch's end brings the evaluated
    model, on the CPU. `probe`, a (28, 28) uint8 drawing, is read by the model in training at every update.

    `watch`: map the network before the first step and after each epoch (`RunUpdate.frame`), with the
    visitor's labelled drawings, `mine` = (images (M, 28, 28) uint8, labels (M,)), placed on each map.

    An update comes at most every `UPDATE_EVERY_S`, and at least that often plus one step or one evaluation
    chunk (each at most `cost.MAX_STEP_S` for what the app accepts): closing the generator then stops the
    run within that time, here or in another process that only hands the updates back. Raises RunError
    when the loss or the model's outputs stop being finite.
    """
    device = torch.device(device)
    model, origin = new_model(config), f"trained: {describe(config)}"
    train_data, whole_test = load_mnist(train=True), load_mnist(train=False)
    per_epoch = config.steps_per_epoch(len(train_data))
    chunk = cost.eval_chunk(config.model, config.size, config.crop)
    losses: list[tuple[int, float]] = []
    accuracies: list[tuple[int, float]] = []
    pending: list[float] = []  # the losses of the steps since the plot's last point
    last_sent, event, latest, predictions = 0.0, None, None, None

    def due() -> bool:
        return time.monotonic() - last_sent >= UPDATE_EVERY_S

    def update(status: str, **extra) -> RunUpdate:
        nonlocal last_sent
        last_sent = time.monotonic()
        read = None if probe is None else read_probe(model, probe)
        return RunUpdate(loss_table(losses), status, accuracy_table(accuracies), probe=read, **extra)

    def predicted(split: Split, doing: str) -> Iterator[RunUpdate]:
        """Predictions on `split`, chunk by chunk, with an update between chunks when one is due; the
        generator's return value is the (N,) predictions."""
        parts = []
        for start in range(0, len(split), chunk):
            if due():
                yield update(f"{doing}: {start:,} of {len(split):,}")
            part = Split(split.images[start : start + chunk], split.labels[start : start + chunk])
            parts.append(predict_split(model, part, device))
        return torch.cat(parts)

    replay, test = None, whole_test
    if watch:
        replay = Replay(*mine) if mine is not None and len(mine[0]) else Replay()
        test = unmapped_test_digits()  # measured here; the map digits are measured while mapped
        yield update("mapping the untrained network...", frame=replay.record(model, 0))
    # Every step comes back here (log_every=1), so that the run can be stopped between any two; the plot
    # still gets a point every `config.log_every` steps. The loop tests nothing: the test digits are read
    # below in chunks, for the same reason.
    for event in train(dataclasses.replace(config, log_every=1), model, train_data, test.subset(0), device):
        if not math.isfinite(event.loss):
            raise RunError(
                f"training diverged at step {event.step}: the loss became {event.loss}; try a lower learning rate"
            )
        pending.append(event.loss)
        epoch_end = event.step % per_epoch == 0 or event.step == event.total_steps
        # A point every log_every steps and at each epoch's end; the first as soon as an update goes out,
        # so that no update shows an empty plot.
        if len(pending) == config.log_every or epoch_end or (not losses and due()):
            losses.append((event.step, sum(pending) / len(pending)))
            pending.clear()
        if not epoch_end:
            if due():
                yield update(status_line(event, config, accuracies[-1][1] / 100 if accuracies else None))
            continue
        predictions = yield from predicted(test, f"epoch {event.epoch}/{config.epochs} · testing")
        event = dataclasses.replace(event, test_accuracy=(predictions == test.labels).float().mean().item())
        frame = None
        if replay is not None:
            event, frame = map_epoch(replay, model, event, test)
        accuracies.append((event.epoch, 100 * event.test_accuracy))
        latest = checked(snapshot(model, config, event), f"the model after epoch {event.epoch}")
        yield update(status_line(event, config, event.test_accuracy), checkpoint=latest, origin=origin, frame=frame)

    if test is not whole_test:  # the last epoch measured the digits off the map only: the gallery needs all
        predictions = yield from predicted(whole_test, "the confusion matrix and the mistakes")
    done = f"done: {status_line(event, config, event.test_accuracy)} · your model is now selected in the Draw tab"
    yield update(done, results=results_of(predictions, whole_test))


def map_epoch(replay: Replay, model: nn.Module, event: Progress, measured: Split) -> tuple[Progress, Frame]:
    """The frame after an epoch, and the event with its accuracy on all 10,000 test digits: the loop
    measured `measured`, and the map digits are measured by the same forward pass that maps them."""
    digits = map_digits()
    feats, preds = features_and_predictions(model, digits.images)
    right = round(event.test_accuracy * len(measured)) + int((preds == digits.labels).sum())
    event = dataclasses.replace(event, test_accuracy=right / (len(measured) + len(digits.labels)))
    return event, replay.record(model, event.epoch, event.test_accuracy, feats=feats)


def finetune_stream(
    source: Checkpoint,
    drawings: PersonalSet,
    source_name: str,
    config: FinetuneConfig | None = None,
    device: torch.device | str = "cpu",
) -> Iterator[RunUpdate]:
    """Fine-tune a copy of `source` on the visitor's `drawings` on `device` (with `config`, by default the
    settings that suit the model: `finetune.config_for`); the last update brings the new model, on the CPU.
    Raises ValueError before the first update when there is nothing to fine-tune on.
    """
    if not len(drawings):
        raise ValueError(NO_DRAWINGS)
    losses: list[tuple[int, float]] = []
    origin = f"fine-tuned: {source_name} on {len(drawings)} of your drawings"
    yield RunUpdate(loss_table(losses), "measuring the model on your drawings and on MNIST...")
    for event in finetune(source, drawings, config, device=device):
        if isinstance(event, Progress):
            if not math.isfinite(event.loss):
                raise RunError(f"fine-tuning diverged at step {event.step}: the loss became {event.loss}")
            losses.append((event.step, event.loss))
            status = f"fine-tuning: step {event.step}/{event.total_steps} · loss {event.loss:.3f}"
            yield RunUpdate(loss_table(losses), status)
        else:
            model = checked(event.checkpoint, "the fine-tuned model")
            done = f"done: {event.summary()}"
            yield RunUpdate(loss_table(losses), done, checkpoint=model, origin=origin, finetuned=event)
