"""The map while training: what recomputing it costs per epoch, and how much it slows a training run.

A training run (`runs.train_stream`) maps its network before the first step and after every epoch.
After an epoch the map digits' features come from the forward pass that measures the model on them
(the loop evaluates the other 8,000 test digits), so what the map adds is `Replay.record` with those
features: the LDA fit, the Procrustes turn, the first layer's weights. That is timed on the Train
tab's default model (and on the shipped CNN, which is wider) at one torch thread (as the app runs
each request) and at torch's default (one per core), in turns with the loop's evaluation of the
10,000 test digits; so is the recompute with its own forward pass, as it was before features came
from the evaluation. Then the Train tab's default run (`limits.APP_DEFAULTS`) streams with and
without the map, in alternating turns so load shifts hit both alike; the ratio of their wall-clock
times is the slowdown, and so, more steadily, is each mapped run's time over that time less the time
its frames say they took to record (`Frame.seconds`). The full run then repeats the training once
more to measure, per epoch, how well the map separates held-out test digits with LDA and with PCA
(the numbers `mnist_demo/projection.py` quotes).

    python -m bench --only atlas [--quick]     # --quick: the default model's recompute and one short run each
"""

from __future__ import annotations

import dataclasses
import time

import torch

from bench.report import Result
from mnist_demo import limits
from mnist_demo.atlas import map_digits
from mnist_demo.checkpoint import load_checkpoint
from mnist_demo.data import load_mnist
from mnist_demo.features import digit_features, features_and_predictions
from mnist_demo.metrics import accuracy
from mnist_demo.projection import centroid_accuracy, fit_lda, fit_pca
from mnist_demo.replay import Replay
from mnist_demo.runs import train_stream
from mnist_demo.train import CNN_MEMORY_FORMAT, TrainConfig, new_model, train
from testkit.server import ROOT
from testkit.timing import Stats, interleaved, one_torch_thread

NAME = "atlas"
CONFIG = limits.APP_DEFAULTS  # the run a visitor starts with the Train tab's defaults
RECORDS = {True: 2, False: 10}  # timed recomputes per model and thread count, quick / full
PAIRS = {True: 1, False: 2}  # training runs with and without the map, each
QUICK_CONFIG = dataclasses.replace(CONFIG, epochs=1, train_size=3_000)  # --quick: completes, target not checked
TARGET_SLOWDOWN = 1.10  # at most 10% slower with the map recomputed every epoch
TARGET_RECORD_S = 0.5  # per recompute of the default model's map, at torch's default threads


def run(quick: bool) -> list[Result]:
    """The rows of this benchmark."""
    load_mnist(train=True), map_digits()  # loaded once, outside every timing
    threads = torch.get_num_threads()
    rows = _record_rows(quick, threads)
    if not quick:  # the app's one thread, and the wider shipped CNN
        rows += _record_rows(quick, 1) + _record_rows(quick, 1, shipped=True)
    with one_torch_thread():
        rows += _slowdown_rows(QUICK_CONFIG if quick else CONFIG, PAIRS[quick], checked=not quick)
        if not quick:
            rows += _separation_rows()
    return rows


def _record_rows(quick: bool, threads: int, shipped: bool = False) -> list[Result]:
    """Seconds per recompute of the default run's untrained model's map (or of the shipped CNN's): with the
    features an evaluation pass gives (what a run does after each epoch), and with a forward pass of its
    own (the untrained network's frame; every frame, before), timed in turns with the evaluation the loop
    runs after every epoch, as the baseline."""
    model = load_checkpoint(ROOT / "weights" / "cnn.safetensors").model if shipped else new_model(CONFIG)
    if not shipped:
        model.to(memory_format=CNN_MEMORY_FORMAT)  # as `train` holds it
    replay, test, digits = Replay(), load_mnist(train=False), map_digits()
    feats, _ = features_and_predictions(model, digits.images)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        stats = interleaved(
            {
                "record": lambda i: replay.record(model, i, feats=feats),
                "own pass": lambda i: replay.record(model, i),
                "evaluate": lambda i: accuracy(model, test),
            },
            RECORDS[quick],
            warmup=1,
        )
    finally:
        torch.set_num_threads(before)
    record, own, evaluate = stats["record"], stats["own pass"], stats["evaluate"]
    what = "shipped CNN (width 32)" if shipped else f"default CNN (width {CONFIG.size})"
    where = f"{threads} thread{'s' * (threads > 1)}"
    checked = not shipped and threads == before
    note = f"in turns with the loop's evaluation on {len(test):,} test digits; ratio = recompute / evaluation"
    return [
        Result.timed(
            NAME,
            f"map recompute per epoch, {what}, {where}",
            record,
            unit="s",
            baseline=evaluate.median,
            baseline_label="evaluation",
            ratio=record.median / evaluate.median,
            target=f"< {TARGET_RECORD_S:g} s" if checked else "",
            passed=record.median < TARGET_RECORD_S if checked else None,
            note=f"Replay.record given the {len(digits.labels):,} map digits' features from the evaluation pass "
            f"(LDA fit, Procrustes turn, first layer), {note}",
        ),
        Result.timed(
            NAME,
            f"  with its own forward pass, {what}, {where}",
            own,
            unit="s",
            baseline=evaluate.median,
            baseline_label="evaluation",
            ratio=own.median / evaluate.median,
            note=f"Replay.record computing the features itself (the untrained network's frame), {note}",
        ),
    ]


def _train(config: TrainConfig, with_map: bool) -> tuple[float, float]:
    """(wall-clock seconds of one streamed training run, evaluation and final results included; seconds of it
    its frames took to record)."""
    start = time.perf_counter()
    frames = [u.frame for u in train_stream(config, watch=with_map) if u.frame is not None]
    return time.perf_counter() - start, sum(f.seconds for f in frames)


def _slowdown_rows(config: TrainConfig, pairs: int, checked: bool) -> list[Result]:
    """A run with and without the map, alternating: the ratio of their times, and the map's share of its run.

    The two runs do the same seeded work but for the map, whose frames time themselves: the extra work
    timed inside the run that has it is free of the load changes between two runs that blur their
    ratio. (The map digits' forward pass after each epoch is not counted: it replaces the loop's.)
    """
    plain, mapped, shares = [], [], []
    for _ in range(pairs):
        plain.append(_train(config, with_map=False)[0])
        total, recording = _train(config, with_map=True)
        mapped.append(total)
        shares.append(total / (total - recording))
    base, ours, share = Stats.of(plain), Stats.of(mapped), Stats.of(shares)
    frames = config.epochs + 1
    what = "the Train tab's defaults" if checked else "quick: a shorter run than the defaults, no target"
    run = (
        f"{what} ({config.model} width {config.size}, {config.train_size:,} images, {config.epochs} epoch(s), "
        f"batch {config.batch_size}), 1 thread, {pairs} run(s) each in turns, wall clock with evaluation, "
        f"{frames} frames (untrained + each epoch)"
    )
    return [
        Result.timed(
            NAME,
            f"training with the map, {config.epochs} epoch{'s' * (config.epochs > 1)}",
            ours,
            unit="s",
            baseline=base.median,
            baseline_label="without",
            ratio=ours.median / base.median,
            note=f"{run}; ratio = with / without (two runs: load changes between them blur it)",
        ),
        Result.timed(
            NAME,
            "  slowdown from the map, within the run",
            share,
            unit="x",
            target=f"<= {TARGET_SLOWDOWN:.2f}x" if checked else "",
            passed=share.median <= TARGET_SLOWDOWN if checked else None,
            note=f"{run}; run time / (run time - time its frames took to record), in the runs with the map",
        ),
    ]


def _separation_rows() -> list[Result]:
    """Held-out nearest-centroid accuracy of LDA (the map's) against PCA, untrained and after each epoch."""
    fit, held = map_digits(), map_digits(held_out=True)
    labels, held_labels = fit.labels.numpy(), held.labels.numpy()

    def row(model: torch.nn.Module, epoch: int) -> Result:
        fit_feats, held_feats = digit_features(model, fit.images), digit_features(model, held.images)
        lda, pca = fit_lda(fit_feats, fit.labels), fit_pca(fit_feats)
        on_map = centroid_accuracy(lda(fit_feats), labels, lda(fit_feats), labels)
        ours, theirs = (centroid_accuracy(p(fit_feats), labels, p(held_feats), held_labels) for p in (lda, pca))
        return Result(
            NAME,
            f"  held-out separation, epoch {epoch}",
            100 * ours,
            "%",
            baseline=100 * theirs,
            baseline_label="PCA",
            ratio=ours / theirs,
            note=f"share of {len(held_labels):,} held-out test digits nearest their own digit's centre on the map "
            f"(LDA, shrinkage 0.5) against PCA, the default run; chance 10%; on the map digits themselves {on_map:.1%}",
        )

    model = new_model(CONFIG)
    rows = [row(model, 0)]
    for event in train(CONFIG, model, device=torch.device("cpu")):
        if event.test_accuracy is not None:
            rows.append(row(model, event.epoch))
    return rows
