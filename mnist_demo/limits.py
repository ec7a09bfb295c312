"""What the app lets one visitor run: the limits of a training run, the Train tab's defaults, and the check.

The sliders in the UI are a convenience; these limits are what the server enforces, whatever a script sends.

    python -c "from mnist_demo.limits import app_config; print(app_config())"
"""

from __future__ import annotations

import dataclasses

from mnist_demo.data import MNIST_TRAIN_SIZE
from mnist_demo.train import TrainConfig

MAX_EPOCHS = 10
MAX_TRAIN_SIZE = MNIST_TRAIN_SIZE
MIN_TRAIN_SIZE = 100
MAX_BATCH_SIZE = 1024
MAX_SIZE = {"mlp": 1024, "cnn": 64}  # hidden units / CNN width: bounds memory and time per step

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
