"""What the app lets one visitor run: the limits of a training run, the Train tab's defaults, and the check.

The sliders in the UI are a convenience; these limits are what the server enforces, whatever a script sends.

    python -c "from mnist_demo.limits import app_config; print(app_config())"
"""

from __future__ import annotations

import dataclasses

from mnist_demo import cost
from mnist_demo.data import MNIST_TRAIN_SIZE
from mnist_demo.models import LARGEST
from mnist_demo.train import TrainConfig

MAX_EPOCHS = 10
MAX_TRAIN_SIZE = MNIST_TRAIN_SIZE
MIN_TRAIN_SIZE = 100
MIN_BATCH_SIZE = 16
# The Train tab's batch sizes are the powers of two up to this (Gradio refuses any other value sent to
# its dropdown); larger batches only make each step, and so a Stop's wait, longer.
MAX_BATCH_SIZE = 512
BATCH_SIZES = [2**k for k in range(MIN_BATCH_SIZE.bit_length() - 1, MAX_BATCH_SIZE.bit_length())]
MODEL_WORDS = {"mlp": "an MLP with {} hidden units", "cnn": "a CNN with {} channels"}
MAX_SIZE = LARGEST  # hidden units / CNN width, trained or loaded: bounds memory and time per step

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
    if not problems and cost.step_seconds(config.model, config.size, config.batch_size) > cost.MAX_STEP_S:
        problems.append(step_too_long(config))
    if problems:
        raise ValueError("; ".join(problems))
    return config


def step_too_long(config: TrainConfig) -> str:
    """Why a run whose steps would be too slow is refused, and what would run."""
    seconds = cost.step_seconds(config.model, config.size, config.batch_size)
    batch = largest_batch_size(config.model, config.size)
    instead = f"a batch of at most {batch}" if batch else "a narrower model"
    return (
        f"one step of {MODEL_WORDS[config.model].format(config.size)} at batch {config.batch_size} would take about "
        f"{seconds:.1f} s on one core, and a step here may take at most {cost.MAX_STEP_S:g} s so that Stop "
        f"answers at once: use {instead}"
    )


def largest_batch_size(model: str, size: int) -> int | None:
    """The Train tab's largest batch size whose step fits the cap for this model, or None if none does."""
    return max([b for b in BATCH_SIZES if b <= cost.largest_batch(model, size)], default=None)
