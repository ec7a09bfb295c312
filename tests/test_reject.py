"""'Not a digit': the threshold a checkpoint carries, its calibration, and the verdict the reader gives.

python -m pytest tests/test_reject.py
"""

from __future__ import annotations

import pytest
import torch

from mnist_demo.checkpoint import Checkpoint
from mnist_demo.data import Split
from mnist_demo.inference import NOT_A_DIGIT, NOT_A_NUMBER, read_drawing, read_with
from mnist_demo.models import build_model
from mnist_demo.reject import DECLINE_KEY, calibrate, decline_threshold, top_probability
from testkit.sketches import draw, sketchpad


class Peaked(torch.nn.Module):
    """Logits that give `digit` the probability `top` and share the rest equally, whatever the input."""

    def __init__(self, digit: int, top: float):
        super().__init__()
        p = torch.full((10,), (1 - top) / 9).index_fill(0, torch.tensor(digit), top)
        self.register_buffer("logits", p.log())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits.expand(len(x), 10)


@pytest.mark.parametrize(
    "value, expected",
    [(0.5, 0.5), (0.1, 0.1), (1, None), (0.05, None), (True, None), ("0.5", None), (None, None), (float("nan"), None)],
)
def test_threshold_from_metadata_is_checked(value, expected):
    assert decline_threshold({DECLINE_KEY: value}) == expected
    assert decline_threshold({}) is None


def test_calibration_declines_the_asked_share_of_digits():
    logits = torch.linspace(0, 5, 100)[:, None] * torch.eye(10)[0]  # the top probability grows with the row
    scores = top_probability(logits)
    assert torch.all(scores[1:] >= scores[:-1]) and 0.1 <= float(scores.min()) < float(scores.max()) < 1

    class Rows(torch.nn.Module):  # image i (its first pixel holds i) gets logits row i
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return logits[(x[:, 0, 0, 0] * 0.3081 + 0.1307).mul(255).round().long()]

    images = torch.zeros(100, 28, 28, dtype=torch.uint8)
    images[:, 0, 0] = torch.arange(100, dtype=torch.uint8)
    threshold = calibrate(Rows(), Split(images, torch.zeros(100, dtype=torch.long)), share=0.1)
    assert ((scores < threshold).float().mean() - 0.1).abs() <= 0.011


def test_a_confident_reading_is_not_declined():
    reading = read_drawing(Peaked(7, 0.9), sketchpad(draw("7")), decline_below=0.5)
    assert not reading.declined and reading.verdict() == "It's a 7 (90% sure)."


def test_a_doubtful_reading_below_the_threshold_is_declined():
    reading = read_drawing(Peaked(8, 0.4), sketchpad(draw("8")), decline_below=0.5)
    assert reading.declined and reading.digits[0].declined
    assert reading.verdict() == NOT_A_DIGIT == "That does not look like a digit."
    assert reading.text == "8"  # the reading is still there for whoever wants it


def test_without_a_threshold_nothing_is_declined():
    reading = read_drawing(Peaked(8, 0.4), sketchpad(draw("8")))
    assert not reading.declined and reading.verdict().startswith("Not sure: 8 or")


def test_a_number_with_a_declined_mark_is_declined_whole():
    reading = read_drawing(Peaked(1, 0.3), sketchpad(draw("12", height=0.3)), decline_below=0.5)
    assert len(reading.digits) == 2 and reading.declined and reading.verdict() == NOT_A_NUMBER


def test_read_with_takes_the_checkpoints_threshold():
    strict = Checkpoint(Peaked(3, 0.9), {DECLINE_KEY: 0.95})
    lenient = Checkpoint(Peaked(3, 0.9), {DECLINE_KEY: 0.5})
    silent = Checkpoint(Peaked(3, 0.9), {})
    value = sketchpad(draw("3"))
    assert read_with(strict, value).declined
    assert not read_with(lenient, value).declined and not read_with(silent, value).declined


def test_the_decision_is_the_softmax_the_page_shows():
    """The page mirrors the decision from the ten probabilities alone: no other output is involved."""
    model = build_model("cnn", 4).eval()
    x = torch.randn(5, 1, 28, 28)
    with torch.no_grad():
        assert torch.allclose(top_probability(model(x)), model(x).softmax(1).max(1).values)
