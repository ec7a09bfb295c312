"""Reading a drawing: probabilities per digit, the number they spell, honest doubt, and why (saliency).

python -c "from mnist_demo.inference import SharedModels; print(SharedModels.from_folder('weights').names())"
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from mnist_demo.checkpoint import Checkpoint, load_checkpoint
from mnist_demo.data import MNIST_MEAN, MNIST_STD
from mnist_demo.preprocess import Sketch
from mnist_demo.reject import Decline, decline_threshold, read_for
from mnist_demo.segment import split_digits
from mnist_demo.strokes import split_strokes

UNSURE_BELOW = 0.6  # below this top probability we say "not sure: 4 or 9?" instead of a verdict
MAX_DIGITS = 12  # a canvas holding more separate marks than this is scribble, not a number
NUMBER_ALTERNATIVES = 4  # readings of a multi-digit number shown beside the best one
NOT_A_DIGIT = "That does not look like a digit."
NOT_A_NUMBER = "That does not look like a number: some of it is no digit."


def with_article(digit: int) -> str:
    """'a 7', 'an 8': a digit as a sentence says it."""
    return f"{'an' if digit == 8 else 'a'} {digit}"


@dataclass(frozen=True)
class DigitGuess:
    """The model's answer for one digit of a drawing."""

    sketch: Sketch  # what the network saw
    probabilities: np.ndarray  # (10,) softmax of the logits
    declined: bool = False  # below the model's "not a digit" rule (mnist_demo.reject): not a digit, it says

    @property
    def digit(self) -> int:
        return int(self.probabilities.argmax())

    @property
    def confidence(self) -> float:
        return float(self.probabilities.max())

    @property
    def runner_up(self) -> int:
        return int(np.argsort(self.probabilities)[-2])


@dataclass(frozen=True)
class Reading:
    """All digits found on a canvas, left to right."""

    digits: list[DigitGuess]

    @property
    def text(self) -> str:
        return "".join(str(d.digit) for d in self.digits)

    @property
    def confidence(self) -> float:
        """Probability of the whole reading: the product over its digits."""
        return float(np.prod([d.confidence for d in self.digits]))

    @property
    def declined(self) -> bool:
        """True when some mark on the canvas does not look like a digit to the model."""
        return any(d.declined for d in self.digits)

    def label(self) -> dict[str, float]:
        """A `gr.Label`-style {class: confidence}: all ten digits for one digit, else the likeliest numbers."""
        if len(self.digits) == 1:
            return {str(i): float(p) for i, p in enumerate(self.digits[0].probabilities)}
        readings = {self.text: self.confidence}
        # The next likeliest numbers differ from the best one in one digit, swapped for its runner-up.
        for i, guess in enumerate(self.digits):
            other = self.text[:i] + str(guess.runner_up) + self.text[i + 1 :]
            readings[other] = self.confidence / guess.confidence * float(guess.probabilities[guess.runner_up])
        best = sorted(readings.items(), key=lambda kv: -kv[1])[: NUMBER_ALTERNATIVES + 1]
        return dict(best)

    def verdict(self) -> str:
        """One honest sentence about what the model thinks."""
        if self.declined:
            return NOT_A_DIGIT if len(self.digits) == 1 else NOT_A_NUMBER
        doubtful = [d for d in self.digits if d.confidence < UNSURE_BELOW]
        if len(self.digits) == 1:
            d = self.digits[0]
            if doubtful:
                return f"Not sure: {d.digit} or {d.runner_up}?"
            return f"It's {with_article(d.digit)} ({d.confidence:.0%} sure)."
        if doubtful:
            alternatives = ", ".join(f"{d.digit} or {d.runner_up}" for d in doubtful)
            return f"Reads {self.text}, but not sure about some digits ({alternatives}?)"
        return f"Reads {self.text} ({self.confidence:.0%} sure)."


def prepare(model: nn.Module) -> nn.Module:
    """An inference copy's setup: eval mode, no parameter gradients (safe to share between threads), and
    channels-last weights: oneDNN's batch-1 convolutions run faster in that layout when called back to
    back, though within the whole predict path the gain is lost in the noise (`python -m bench --only
    predict`, the forward row, measures it against contiguous weights)."""
    model.eval().to(memory_format=torch.channels_last)
    for p in model.parameters():
        p.requires_grad_(False)
    return model


@torch.inference_mode()
def read_sketches(model: nn.Module, sketches: list[Sketch], decline: Decline | None = None) -> Reading | None:
    """Classify the digits of a drawing in one batch; None when there are none.

    A digit that the rule `decline` (a checkpoint's, `mnist_demo.reject.decline_threshold`) declines is
    marked so: the model says it does not look like a digit. None: nothing is declined.
    """
    if not sketches:
        return None
    x = torch.cat([s.tensor for s in sketches])  # (D, 1, 28, 28)
    logits, features = read_for(model, x, decline)
    probabilities = logits.softmax(dim=1).numpy()
    declined = decline.declines(logits, features).tolist() if decline is not None else [False] * len(sketches)
    return Reading([DigitGuess(s, p, low) for s, p, low in zip(sketches, probabilities, declined, strict=True)])


def read_drawing(model: nn.Module, value: object, decline: Decline | None = None) -> Reading | None:
    """Split a drawing into digits and classify them in one batch; None when there is nothing to read."""
    return read_sketches(model, split_digits(value, limit=MAX_DIGITS), decline)


def read_strokes(model: nn.Module, strokes: object, decline: Decline | None = None) -> Reading | None:
    """`read_drawing` for strokes drawn on the stroke pad (its pen, its canvas pixels); [] reads as None."""
    return read_sketches(model, split_strokes(strokes, limit=MAX_DIGITS) if strokes else [], decline)


def read_with(checkpoint: Checkpoint, value: object) -> Reading | None:
    """`read_drawing` with the checkpoint's own model and "not a digit" rule (none: never declines)."""
    return read_drawing(checkpoint.model, value, decline_threshold(checkpoint.metadata))


def saliency(model: nn.Module, sketch: Sketch, digit: int) -> np.ndarray:
    """(28, 28) signed attribution: how much each pixel's ink pushed the logit of `digit` up (+) or down (-).

    Gradient times input against a blank canvas, so only pixels with ink get credit, and the credit adds
    up (to first order) to the logit's change from the empty canvas.
    """
    blank = -MNIST_MEAN / MNIST_STD  # the normalised value of a pixel without ink
    x = sketch.tensor.clone().requires_grad_(True)  # (1, 1, 28, 28)
    with torch.enable_grad():
        (grad,) = torch.autograd.grad(model(x)[0, digit], x)
    return ((x.detach() - blank) * grad)[0, 0].numpy()


class SharedModels:
    """The shipped models, loaded once at start-up and then only read, by every visitor at once.

    Nothing here changes after construction, so no lock is needed: eval-mode forward passes with frozen
    parameters do not write to the model.
    """

    def __init__(self, checkpoints: dict[str, Checkpoint]):
        self._checkpoints = dict(checkpoints)
        for c in self._checkpoints.values():
            prepare(c.model)

    @classmethod
    def from_folder(cls, folder: Path | str, names: tuple[str, ...] = ("cnn", "mlp")) -> SharedModels:
        return cls({name: load_checkpoint(Path(folder) / f"{name}.safetensors") for name in names})

    def names(self) -> list[str]:
        return list(self._checkpoints)

    def get(self, name: str) -> Checkpoint:
        if name not in self._checkpoints:
            raise KeyError(f"unknown model {name!r}: choose one of {', '.join(self._checkpoints)}")
        return self._checkpoints[name]
