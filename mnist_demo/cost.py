"""What a training step costs, estimated from the model's size and the batch before anything is built.

A Stop (and a vanished visitor) ends a run between two steps, or between two batches of an evaluation,
so the longest of those is how long a Stop can wait. The app refuses a run whose single step would take
more than `MAX_STEP_S` on one core (`mnist_demo.limits.app_config`), and evaluates in chunks of at most
that cost (`mnist_demo.runs`). The estimate counts multiply-accumulates (MACs): a training step does
about three forward passes' worth (the forward, and the backward's two products per layer).

    python -m bench --only stop      # the estimate against the measured CPU time of a step
"""

from __future__ import annotations

import math

from mnist_demo.data import IMAGE_SIZE, NUM_CLASSES
from mnist_demo.models import CNN_WIDTH, GUIDE_HIDDEN, pooled_side

MAX_STEP_S = 0.5  # one step (or evaluation chunk) at most this long on one core: a Stop waits for it
# One core's training throughput. Measured by `python -m bench --only stop` on this machine's AMD EPYC
# cores (thread CPU time, one torch thread): 12-15 GMAC/s for the wide models where the cap matters,
# less for small ones whose steps are mostly overhead. A Space's shared vCPU is assumed no faster.
MACS_PER_S = 10e9
TRAINING_PASSES = 3  # a step's forward + backward, in forward passes' worth of MACs
KERNEL = 3 * 3  # the CNN's 3 x 3 convolutions
# Small models' evaluation is bound by memory traffic, not MACs (the estimate would give the CNN 8 wide all
# 10,000 test digits in one chunk, measured at seconds): no chunk is larger than this.
MAX_EVAL_CHUNK = 1_000


def forward_macs(model: str, size: int, crop: int = 0) -> int:
    """Multiply-accumulates of one image's forward pass through `build_model(model, size, crop)`."""
    if model == "mlp":
        hidden = size or GUIDE_HIDDEN
        return IMAGE_SIZE * IMAGE_SIZE * hidden + hidden * NUM_CLASSES
    width = size or CNN_WIDTH
    side = IMAGE_SIZE - 2 * crop
    macs, channels = 0, [1, width, 2 * width, 4 * width]
    for c_in, c_out in zip(channels, channels[1:]):  # each conv runs at full resolution, then pools by 2
        macs += side * side * c_in * c_out * KERNEL
        side //= 2
    return macs + channels[-1] * pooled_side(crop) ** 2 * NUM_CLASSES


def step_seconds(model: str, size: int, batch_size: int, crop: int = 0) -> float:
    """Estimated seconds of one training step on one core."""
    return TRAINING_PASSES * forward_macs(model, size, crop) * batch_size / MACS_PER_S


def largest_batch(model: str, size: int, crop: int = 0, limit_s: float = MAX_STEP_S) -> int:
    """The largest batch whose training step fits in `limit_s` (at least 1)."""
    return max(1, math.floor(limit_s * MACS_PER_S / (TRAINING_PASSES * forward_macs(model, size, crop))))


def eval_chunk(model: str, size: int, crop: int = 0, limit_s: float = MAX_STEP_S) -> int:
    """Images per evaluation chunk whose forward pass fits in `limit_s` (at least 1, at most MAX_EVAL_CHUNK)."""
    return max(1, min(MAX_EVAL_CHUNK, math.floor(limit_s * MACS_PER_S / forward_macs(model, size, crop))))
