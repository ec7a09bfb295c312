"""Training on a Hugging Face ZeroGPU Space: a GPU only inside decorated functions, asked for by duration.

On ZeroGPU hardware the Space sets SPACES_ZERO_GPU=true and `spaces.GPU(duration=...)` runs the decorated
function with a GPU attached for at most `duration` seconds; everywhere else `spaces.GPU` hands the
function back unchanged (and without the `spaces` package, `gpu` does the same). What the `spaces`
package (0.51) does there, and what follows for callers:

- The function runs in a forked worker process. Its arguments are pickled into it, and only what it
  returns or yields is pickled back: changes it makes to its arguments (a visitor's state) are lost.
  So it yields the models it makes, on the CPU, and the caller stores them. A GPU tensor must never
  travel back (the web process has no GPU) nor be kept in `gr.State`.
- A generator works: each value is sent as it is yielded; when the caller stops (Gradio's Stop) the
  worker closes the generator at its next yield. Exceptions other than `gr.Error` reach the visitor as
  a bare "ZeroGPU worker error", so the function raises `gr.Error` for what it wants them to read.
- Outside decorated functions `import spaces` makes `torch.cuda.is_available()` return True although no
  GPU is attached: the device is chosen (`train.pick_device()`) inside the function only, and everything
  else, reading drawings included, stays explicitly on the CPU.
- `duration` is checked against the visitor's remaining daily quota before the call (the quota is
  charged with the time actually used), so it is an estimate from the settings, not a flat maximum,
  and capped (`MAX_DURATION_S`). A run still going at its duration may be aborted; `stop_after` with
  `run_limit` ends one cleanly a little before, keeping what its finished epochs handed out.

    python -c "from mnist_demo import zerogpu, limits; print(zerogpu.train_seconds(limits.APP_DEFAULTS))"
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, TypeVar

from mnist_demo.data import IMAGE_SIZE, MNIST_TRAIN_SIZE, NUM_CLASSES
from mnist_demo.models import CNN_WIDTH, GUIDE_HIDDEN

if TYPE_CHECKING:
    from mnist_demo.finetune import FinetuneConfig
    from mnist_demo.train import TrainConfig

F = TypeVar("F", bound=Callable)
T = TypeVar("T")

ZERO_GPU_ENV = "SPACES_ZERO_GPU"  # set to "true" by Hugging Face on ZeroGPU hardware (spaces/config.py)
# The longest a run may ask for: the `spaces` package's own default, which any visitor may request. The
# package multiplies it by 1.5 on the RTX Pro 6000 GPUs (its `duration_factor`), so 90 s are asked of the
# quota there: still inside an anonymous visitor's 2 minutes a day.
MAX_DURATION_S = 60
MIN_DURATION_S = 15  # below this the start-up alone may not fit
# GPU-time model, generous on purpose (to be checked against `bench/gpu_training.py` on a GPU; no ZeroGPU
# measurement exists yet): a fresh worker forks, starts CUDA and copies MNIST to the GPU; these models
# are so small that each optimizer step costs kernel launches more than arithmetic.
START_S = 8.0
STEP_S = 0.008  # one optimizer step of the MLP or CNN, whatever the batch (a few ms on a data-centre GPU)
FLOP_PER_S = 2e12  # what these small convolutions reach, far below the GPU's peak
TRAIN_FLOP_FACTOR = 3  # forward, and backward at about twice the forward's cost
EVAL_IMAGES = 10_000  # the MNIST test set, measured after every epoch
FINISH_S = 3.0  # the confusion matrix and the mistakes gallery after the run


def on_zerogpu() -> bool:
    """True on a ZeroGPU Space (the same test as the `spaces` package's)."""
    return os.environ.get(ZERO_GPU_ENV, "").lower() in ("1", "t", "true")


def forward_flop(model: str, size: int = 0, crop: int = 0) -> float:
    """Floating-point operations of one image's forward pass (multiply-adds count two)."""
    if model == "mlp":
        hidden = size or GUIDE_HIDDEN
        return 2.0 * (IMAGE_SIZE * IMAGE_SIZE * hidden + hidden * NUM_CLASSES)
    width, side = size or CNN_WIDTH, IMAGE_SIZE - 2 * crop
    macs, c_in = 0, 1
    for c_out in (width, 2 * width, 4 * width):  # models.SmallCNN's three 3x3 conv blocks
        macs += side * side * 9 * c_in * c_out
        c_in, side = c_out, side // 2
    return 2.0 * (macs + c_in * side * side * NUM_CLASSES)


def train_seconds(config: TrainConfig) -> float:
    """GPU seconds a training run of `config` takes at most, start-up and evaluations included."""
    images = min(config.train_size, MNIST_TRAIN_SIZE) * config.epochs
    steps = config.total_steps()
    flop = forward_flop(config.model, config.size, config.crop)
    compute = (TRAIN_FLOP_FACTOR * images + EVAL_IMAGES * config.epochs) * flop / FLOP_PER_S
    return START_S + steps * STEP_S + compute + FINISH_S


def finetune_seconds(config: FinetuneConfig, model: str = "cnn", size: int = 0, crop: int = 0) -> float:
    """GPU seconds a fine-tuning run of `config` on that model (`checkpoint.model_spec`) takes at most."""
    flop = forward_flop(model, size, crop)
    images = config.max_steps * config.batch_size
    compute = (TRAIN_FLOP_FACTOR * images + 2 * config.mnist_eval_size) * flop / FLOP_PER_S  # measured before and after
    return START_S + config.max_steps * STEP_S + compute


def request_seconds(seconds: float) -> int:
    """The `duration` to ask for: `seconds` rounded up, within MIN_DURATION_S..MAX_DURATION_S."""
    if not math.isfinite(seconds):
        return MAX_DURATION_S
    return int(min(MAX_DURATION_S, max(MIN_DURATION_S, math.ceil(seconds))))


def run_limit(seconds: float) -> float:
    """How long a function that asked for `request_seconds(seconds)` may train before `stop_after` ends it:
    the request less the worker's start-up, which ZeroGPU counts too."""
    return request_seconds(seconds) - START_S


def gpu(estimate: Callable[..., float]) -> Callable[[F], F]:
    """Decorate a function or generator function that trains: on ZeroGPU it gets a GPU for
    `request_seconds(estimate(*args, **kwargs))` seconds; elsewhere it is returned unchanged.

    Decorate at import time (a ZeroGPU Space looks for decorated functions when it starts), a module-level
    function whose arguments pickle (a config, an image: not a handler object holding locks).
    """
    try:
        import spaces  # imports neither torch nor gradio; on ZeroGPU it must come before CUDA starts
    except ImportError:  # a plain install without the Space's requirements: nothing to do
        return lambda function: function

    def duration(*args, **kwargs) -> int:
        try:
            return request_seconds(estimate(*args, **kwargs))
        except (ValueError, TypeError, OverflowError):  # bad settings: the function refuses them itself
            return MIN_DURATION_S

    return spaces.GPU(duration=duration)


def within_request(seconds: float, events: Iterator[T]) -> Iterator[T]:
    """`events`, ended cleanly before the GPU time asked for `seconds` of work runs out on ZeroGPU; elsewhere
    (a CPU Space, a laptop) they run to the end."""
    return stop_after(run_limit(seconds), events) if on_zerogpu() else events


def stop_after(seconds: float, events: Iterator[T]) -> Iterator[T]:
    """`events` until `seconds` have passed, then the generator is closed (training stops between two
    steps, keeping what its last finished epoch handed out): a clean end before ZeroGPU's abort."""
    deadline = time.monotonic() + seconds
    try:
        for event in events:
            yield event
            if time.monotonic() >= deadline:
                return
    finally:
        close = getattr(events, "close", None)
        if close is not None:
            close()
