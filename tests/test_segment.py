"""split_digits: several digits on one canvas come out as separate MNIST-style digits, left to right, and
the strokes of one digit stay together."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mnist_demo.checkpoint import load_checkpoint
from mnist_demo.preprocess import sketch_to_tensor
from mnist_demo.segment import Group, group_pieces, one_digit, split_digits
from testkit.sketches import BLACK, SPLIT_FOUR, STROKES, WHITE, draw, sketchpad

WEIGHTS = Path(__file__).resolve().parents[1] / "weights" / "cnn.safetensors"
WIDE = (900, 300)  # a canvas for a short number
# A 5 whose top bar was drawn apart from its body, and a 4 whose two strokes do not touch.
LOOSE = {**STROKES, "4": SPLIT_FOUR, "5": [[(0.26, 0.2), *STROKES["5"][0][1:]], [(0.4, 0.04), (0.88, 0.04)]]}


def number(text: str, size=WIDE, strokes=None, **kw) -> np.ndarray:
    return np.asarray(draw(text, size=size, height=0.6, brush=16, strokes=strokes, **kw))


def read(sketches, model) -> str:
    with torch.no_grad():
        return "".join(str(d) for d in model(torch.cat([s.tensor for s in sketches])).argmax(1).tolist())


@pytest.fixture(scope="module")
def cnn():
    assert WEIGHTS.is_file(), f"the shipped weights are missing: {WEIGHTS}"
    return load_checkpoint(WEIGHTS).model


@pytest.mark.parametrize("text", ["2024", "14", "7", "1111", "0123456789"])
def test_digits_are_found_in_order(text):
    size = (max(300, 170 * len(text)), 300)
    sketches = split_digits(number(text, size=size))
    assert len(sketches) == len(text)
    lefts = [s.box[0] for s in sketches]
    assert lefts == sorted(lefts)


@pytest.mark.parametrize("text", ["2024", "14", "369", "0123456789"])
def test_the_model_reads_the_number(text, cnn):
    size = (max(300, 170 * len(text)), 300)
    assert read(split_digits(sketchpad(draw(text, size=size, height=0.6, brush=16))), cnn) == text


@pytest.mark.parametrize("text", ["4", "5", "45", "1454"])
def test_strokes_drawn_apart_stay_one_digit(text, cnn):
    sketches = split_digits(number(text, strokes=LOOSE, size=(max(300, 200 * len(text)), 300)))
    assert len(sketches) == len(text)
    assert read(sketches, cnn) == text


def test_order_is_left_to_right_not_top_to_bottom():
    low_one = number("1", at=(0.25, 0.62))
    high_seven = number("7", at=(0.75, 0.38))
    sketches = split_digits(np.minimum(low_one, high_seven))  # black ink on white: darker wins
    assert len(sketches) == 2
    assert sketches[0].box[0] < sketches[1].box[0]
    assert sketches[0].box[1] > sketches[1].box[1]  # the 1, lower down, comes first


def test_each_digit_is_preprocessed_as_if_alone():
    together = split_digits(number("38"))
    alone = [
        sketch_to_tensor(number("38", strokes={"3": STROKES["3"], "8": []})),
        sketch_to_tensor(number("38", strokes={"3": [], "8": STROKES["8"]})),
    ]
    for a, b in zip(together, alone, strict=True):
        assert np.abs(a.image.astype(int) - b.image.astype(int)).max() <= 1
        torch.testing.assert_close(a.tensor, b.tensor, atol=0.02, rtol=0)


def test_one_digit_gives_what_sketch_to_tensor_gives():
    canvas = number("6", size=(280, 280))
    (sketch,) = split_digits(canvas)
    torch.testing.assert_close(sketch.tensor, sketch_to_tensor(canvas).tensor)


def test_specks_are_not_digits():
    canvas = number("2024").copy()
    canvas[10:14, 450:454] = BLACK
    canvas[280:283, 20:23] = BLACK
    assert len(split_digits(canvas)) == 4


def test_light_ink_on_a_transparent_layer():
    layer = number("14", ink=WHITE, paper=(0, 0, 0, 0))
    assert len(split_digits({"background": None, "layers": [layer], "composite": None})) == 2


@pytest.mark.parametrize(
    "value", [None, {"background": None, "layers": [], "composite": None}, np.full((300, 900), 255, np.uint8)]
)
def test_empty_canvas_gives_no_digits(value):
    assert split_digits(value) == []


def test_garbage_is_refused():
    with pytest.raises(ValueError):
        split_digits(np.full((300, 900), np.nan))
    with pytest.raises(ValueError):
        split_digits("2024")


def _group_pieces_reference(pieces):
    """The plain form of group_pieces: rebuild every pair after each join (n^3 pair tests)."""
    groups = [Group((i + 1,), rows.start, cols.start, rows.stop, cols.stop) for i, (rows, cols) in enumerate(pieces)]
    while True:
        pairs = [
            (groups[i].gap(groups[j]), i, j)
            for i in range(len(groups))
            for j in range(i + 1, len(groups))
            if one_digit(groups[i], groups[j])
        ]
        if not pairs:
            break
        _, i, j = min(pairs)
        groups[i] = groups[i].join(groups.pop(j))
    groups.sort(key=lambda g: g.left + g.right)
    return [g.labels for g in groups]


def _random_pieces(rng, n):
    boxes = []
    for _ in range(n):
        top, left = rng.integers(0, 150, 2)
        height, width = rng.integers(2, 40, 2)
        boxes.append((slice(int(top), int(top + height)), slice(int(left), int(left + width))))
    return boxes


@pytest.mark.parametrize("seed", range(30))
def test_grouping_joins_the_same_pieces_as_rebuilding_every_pair(seed):
    pieces = _random_pieces(np.random.default_rng(seed), n=2 + seed % 12)
    assert group_pieces(pieces) == _group_pieces_reference(pieces)


def test_grouping_many_pieces_tests_each_pair_about_once(monkeypatch):
    """A scribble of hundreds of dots must not cost n^3 pair tests on the per-stroke path."""
    calls = []
    monkeypatch.setattr("mnist_demo.segment.one_digit", lambda a, b: calls.append(1) or one_digit(a, b))
    pieces = [(slice(r * 10, r * 10 + 6), slice(c * 10, c * 10 + 6)) for r in range(16) for c in range(16)]
    group_pieces(pieces)
    n = len(pieces)
    assert len(calls) <= 2 * n * n, f"{len(calls)} pair tests for {n} pieces"
