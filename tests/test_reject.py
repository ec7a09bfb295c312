"""'Not a digit': the rule a checkpoint carries (a score and its threshold), its calibration, the verdict.

python -m pytest tests/test_reject.py
"""

from __future__ import annotations

import pytest
import torch

from mnist_demo.checkpoint import Checkpoint, checkpoint_metadata
from mnist_demo.data import Split, normalize
from mnist_demo.features import digit_logits_and_features
from mnist_demo.inference import NOT_A_DIGIT, NOT_A_NUMBER, read_drawing, read_with
from mnist_demo.models import build_model
from mnist_demo.reject import (
    DECLINE_KEY,
    RESIDUAL,
    SCORE_KEY,
    SUBSPACE_KEY,
    WEIGHT_KEY,
    Decline,
    calibrate,
    decline_threshold,
    declines_of,
    energy,
    fit_subspace,
    read_for,
    scores_of,
    top_probability,
    with_rule,
)
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
    rule = decline_threshold({DECLINE_KEY: value})
    assert rule == (None if expected is None else Decline(expected, "probability"))
    assert decline_threshold({}) is None


@pytest.mark.parametrize(
    "value, score, expected",
    [
        (2.5, "energy", Decline(2.5, "energy")),
        (-3, "energy", Decline(-3.0, "energy")),  # any finite energy will do
        (7.0, "energy", Decline(7.0, "energy")),
        (0.5, "probability", Decline(0.5, "probability")),
        (2.5, "probability", None),  # no probability reaches 2.5
        (float("inf"), "energy", None),
        (2.5, "entropy", None),  # a score this code does not know
        (2.5, None, None),
    ],
)
def test_the_score_comes_from_metadata_too(value, score, expected):
    assert decline_threshold({DECLINE_KEY: value, SCORE_KEY: score}) == expected


def test_energy_is_the_log_sum_exp_of_the_logits():
    logits = torch.tensor([[0.0] * 10, [5.0] + [0.0] * 9, [-20.0] * 10])
    e = torch.tensor(1.0).exp()
    expected = torch.stack([torch.tensor(10.0).log(), (e**5 + 9).log(), torch.tensor(10.0).log() - 20])
    assert torch.allclose(energy(logits), expected, atol=1e-5)
    # What the softmax cannot tell apart, energy can: the same top probability from small or large logits.
    small, large = torch.tensor([[1.0] + [0.0] * 9]), torch.tensor([[11.0] + [10.0] * 9])
    assert torch.allclose(top_probability(small), top_probability(large))
    assert energy(large) - energy(small) > 9.9
    rule = Decline(5.0, "energy")
    assert rule.declines(torch.cat([small, large])).tolist() == [True, False]


def test_calibration_declines_the_asked_share_of_digits():
    logits = torch.linspace(0, 5, 100)[:, None] * torch.eye(10)[0]  # the top probability grows with the row
    scores = top_probability(logits)
    assert torch.all(scores[1:] >= scores[:-1]) and 0.1 <= float(scores.min()) < float(scores.max()) < 1

    class Rows(torch.nn.Module):  # image i (its first pixel holds i) gets logits row i
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return logits[(x[:, 0, 0, 0] * 0.3081 + 0.1307).mul(255).round().long()]

    images = torch.zeros(100, 28, 28, dtype=torch.uint8)
    images[:, 0, 0] = torch.arange(100, dtype=torch.uint8)
    digits = Split(images, torch.zeros(100, dtype=torch.long))
    rule = calibrate(Rows(), digits, share=0.1)
    assert rule.score == "probability" and ((scores < rule.below).float().mean() - 0.1).abs() <= 0.011
    rule = calibrate(Rows(), digits, share=0.2, score="energy")
    assert rule.score == "energy" and ((energy(logits) < rule.below).float().mean() - 0.2).abs() <= 0.011


def test_a_confident_reading_is_not_declined():
    reading = read_drawing(Peaked(7, 0.9), sketchpad(draw("7")), Decline(0.5))
    assert not reading.declined and reading.verdict() == "It's a 7 (90% sure)."


def test_a_doubtful_reading_below_the_threshold_is_declined():
    reading = read_drawing(Peaked(8, 0.4), sketchpad(draw("8")), Decline(0.5))
    assert reading.declined and reading.digits[0].declined
    assert reading.verdict() == NOT_A_DIGIT == "That does not look like a digit."
    assert reading.text == "8"  # the reading is still there for whoever wants it


def test_without_a_threshold_nothing_is_declined():
    reading = read_drawing(Peaked(8, 0.4), sketchpad(draw("8")))
    assert not reading.declined and reading.verdict().startswith("Not sure: 8 or")


def test_a_number_with_a_declined_mark_is_declined_whole():
    reading = read_drawing(Peaked(1, 0.3), sketchpad(draw("12", height=0.3)), Decline(0.5))
    assert len(reading.digits) == 2 and reading.declined and reading.verdict() == NOT_A_NUMBER


def test_read_with_takes_the_checkpoints_rule():
    strict = Checkpoint(Peaked(3, 0.9), {DECLINE_KEY: 0.95})
    lenient = Checkpoint(Peaked(3, 0.9), {DECLINE_KEY: 0.5})
    silent = Checkpoint(Peaked(3, 0.9), {})
    value = sketchpad(draw("3"))
    assert read_with(strict, value).declined
    assert not read_with(lenient, value).declined and not read_with(silent, value).declined
    # Peaked's logits are log-probabilities: their log-sum-exp is 0, whatever the top probability.
    assert read_with(Checkpoint(Peaked(3, 0.9), {DECLINE_KEY: 0.1, SCORE_KEY: "energy"}), value).declined
    assert not read_with(Checkpoint(Peaked(3, 0.9), {DECLINE_KEY: -0.1, SCORE_KEY: "energy"}), value).declined


def test_the_probability_score_is_the_softmax_the_page_shows():
    """By top probability, the decision is the number the panel shows: no other output is involved."""
    model = build_model("cnn", 4).eval()
    x = torch.randn(5, 1, 28, 28)
    with torch.no_grad():
        assert torch.allclose(top_probability(model(x)), model(x).softmax(1).max(1).values)


def _residual_rule(model: torch.nn.Module, below: float = 0.0) -> Decline:
    """A residual rule for `model`, its subspace fitted on random images."""
    images = torch.randint(0, 256, (300, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    return Decline(below, RESIDUAL, fit_subspace(model, images))


def test_the_residual_score_is_the_energy_less_the_weighted_residual():
    model = build_model("cnn", 4).eval()
    rule = _residual_rule(model)
    images = torch.randint(0, 256, (20, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    logits, features = digit_logits_and_features(model, images)
    with torch.no_grad():
        assert torch.allclose(logits, model(normalize(images)), atol=1e-5)  # one pass gives both
    expected = energy(logits).double() - rule.subspace.weight * rule.subspace.residual(features)
    assert torch.equal(rule.scores(logits, features), expected) and torch.equal(
        scores_of(model, images, rule), expected
    )
    assert rule.subspace.weight > 0
    with pytest.raises(ValueError, match="features"):
        rule.declines(logits)  # the residual cannot be had from the logits alone


def test_a_residual_rule_travels_in_the_metadata_and_reads_the_same():
    model = build_model("cnn", 4).eval()
    rule = _residual_rule(model)
    digits = Split(
        torch.randint(0, 256, (200, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(2)),
        torch.zeros(200),
    )
    rule = calibrate(model, digits, 0.1, RESIDUAL, rule.subspace)
    rule = Decline(round(rule.below, 6), RESIDUAL, rule.subspace)  # as the metadata holds it
    meta = checkpoint_metadata(model, **with_rule({}, rule, 0.1, "test"))
    back = decline_threshold(meta)
    assert back == rule and back.subspace is not None
    assert torch.equal(declines_of(model, digits.images, back), declines_of(model, digits.images, rule))
    assert abs(declines_of(model, digits.images, back).float().mean().item() - 0.1) <= 0.011
    # read_with applies it to a drawing, features and all
    value = sketchpad(draw("3"))
    reading = read_with(Checkpoint(model, meta), value)
    sketch_logits, sketch_features = read_for(model, reading.digits[0].sketch.tensor, back)
    assert reading.declined == bool(back.declines(sketch_logits, sketch_features)[0])
    # Without its subspace, or with one for other features, the rule is refused (never declines)
    assert decline_threshold({k: v for k, v in meta.items() if k != SUBSPACE_KEY}) is None
    wider = checkpoint_metadata(build_model("cnn", 8), **with_rule({}, rule, 0.1, "test"))
    assert decline_threshold(wider) is None
    assert rule.page()[WEIGHT_KEY] == rule.subspace.weight and Decline(2.0, "energy").page()[WEIGHT_KEY] is None
