"""Training speed, from bench/train_speed.py: the guide's loop against ours, and the CNN's time to 99%.

The four runs of `train_speed.run` in one process, in order: the guide's loop (DataLoader + ToTensor,
minimally fixed), our loop with the guide's exact settings, our loop tuned, and the CNN's one-cycle run
sized to reach 99% test accuracy; then that CNN run with SGD on whole images, as its baseline. Training
time excludes evaluation for every row alike. Torch keeps its default threads (one per core), as
`python -m mnist_demo.train` does. A last row measures what the channels-last memory format gains the
CNN: the same short run with `train.CNN_MEMORY_FORMAT` set to each layout in turn, twice.

    python -m bench --only training [--quick]     # --quick: 1 epoch for the MLP rows instead of 5
"""

from __future__ import annotations

import dataclasses

import torch

from bench import train_speed
from bench.report import Result
from mnist_demo import train
from mnist_demo.data import IMAGE_SIZE, load_mnist

NAME = "training"
EPOCHS = {True: 1, False: 5}  # MLP rows, quick / full (the guide used 5)
TARGET_SPEEDUP = 5.0  # ours vs the guide's loop, with equal or better accuracy
TARGET_CNN_S = 10.0
TARGET_CNN_ACCURACY = 0.99
LAYOUT_STEPS = {True: 100, False: 300}  # steps of the FAST_CNN run per layout measurement


def run(quick: bool) -> list[Result]:
    """The rows of this benchmark, from `train_speed.run`."""
    epochs = EPOCHS[quick]
    guide, *ours, cnn = train_speed.run(epochs)
    fast = train_speed.FAST_CNN
    threads = f"{torch.get_num_threads()} torch threads"
    rows = [
        Result(
            NAME,
            f"guide's loop, {epochs} epoch(s)",
            guide.images_per_s,
            "images/s",
            note=f"{guide.train_seconds:.1f} s, test accuracy {guide.test_accuracy:.2%}, {threads}",
        )
    ]
    tuned = ours[-1]  # the guide's network and epochs with our settings
    for r in ours:
        speedup = guide.train_seconds / r.train_seconds
        gap = 100 * (r.test_accuracy - guide.test_accuracy)
        # The guide's own settings (Adam at 0.01, batch 64) make the accuracy swing by about a point from
        # seed to seed, so that row is held to speed only; the tuned row, same network and epochs, must
        # also match the guide's accuracy.
        needs_accuracy = r is tuned
        rows.append(
            Result(
                NAME,
                r.name,
                r.images_per_s,
                "images/s",
                baseline=guide.images_per_s,
                baseline_label="guide's loop",
                ratio=speedup,
                target=f">= {TARGET_SPEEDUP:g}x" + (", accuracy >= guide's" if needs_accuracy else ""),
                passed=speedup >= TARGET_SPEEDUP and (r.test_accuracy >= guide.test_accuracy or not needs_accuracy),
                note=f"{r.train_seconds:.1f} s, test accuracy {r.test_accuracy:.2%} ({gap:+.2f} pp vs "
                f"the guide's loop); ratio = guide's training time / ours",
            )
        )
    # The same run with SGD on the whole 28x28 image, as the baseline for what Muon and the crop buy.
    plain = train_speed.our_loop("CNN, SGD, 28x28", train_speed.PLAIN_CNN)
    side = IMAGE_SIZE - 2 * fast.crop
    rows.append(
        Result(
            NAME,
            f"CNN to {TARGET_CNN_ACCURACY:.0%} test accuracy",
            cnn.train_seconds,
            "s",
            baseline=plain.train_seconds,
            baseline_label="SGD, 28x28",
            ratio=plain.train_seconds / cnn.train_seconds,
            target=f"< {TARGET_CNN_S:g} s, >= {TARGET_CNN_ACCURACY:.1%}",
            passed=cnn.train_seconds < TARGET_CNN_S and cnn.test_accuracy >= TARGET_CNN_ACCURACY,
            note=f"reached {cnn.test_accuracy:.2%} at {cnn.images_per_s:,.0f} images/s; width {fast.size}, "
            f"{fast.optimizer}, central {side}x{side} pixels, {fast.epochs} epoch(s) of "
            f"{fast.train_size:,} images, {threads}; the baseline is the same run with SGD on "
            f"28x28 ({plain.test_accuracy:.2%}); ratio = baseline time / ours",
        )
    )
    rows.append(_layout_row(LAYOUT_STEPS[quick]))
    return rows


def _images_per_s(memory_format: torch.memory_format, steps: int) -> float:
    """Training throughput of the first `steps` steps of FAST_CNN with the CNN in `memory_format`."""
    config = dataclasses.replace(train_speed.FAST_CNN, max_steps=steps)
    default, train.CNN_MEMORY_FORMAT = train.CNN_MEMORY_FORMAT, memory_format
    try:
        *_, last = train.train(
            config, train.new_model(config), load_mnist(train=True), load_mnist(train=False), device=torch.device("cpu")
        )
    finally:
        train.CNN_MEMORY_FORMAT = default
    return last.samples_per_s


def _layout_row(steps: int) -> Result:
    """Channels-last against contiguous, alternated twice so that load shifts hit both alike; the better of each."""
    speeds = {torch.channels_last: [], torch.contiguous_format: []}
    for _ in range(2):
        for memory_format, seen in speeds.items():
            seen.append(_images_per_s(memory_format, steps))
    fast, plain = max(speeds[torch.channels_last]), max(speeds[torch.contiguous_format])
    return Result(
        NAME,
        "CNN training, channels-last",
        fast,
        "images/s",
        baseline=plain,
        baseline_label="contiguous",
        ratio=fast / plain,
        note=f"the CNN-to-99% settings, first {steps} steps, best of 2 per layout; ratio = channels-last / contiguous",
    )
