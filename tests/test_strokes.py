"""mnist_demo.strokes: the stroke pad's format is checked, strokes become the Sketch the raster path makes of
a picture of them, and several digits are split as segment.split_digits splits them.

The agreement tests compare `strokes_to_sketch` with "PIL draws the same strokes 20 px wide on 280 x 280,
then sketch_to_tensor" on the 28 x 28 uint8 images; `-s` prints the measured differences.

    python -m pytest tests/test_strokes.py [-s]
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from mnist_demo.checkpoint import load_checkpoint
from mnist_demo.data import IMAGE_SIZE, normalize
from mnist_demo.preprocess import sketch_to_tensor
from mnist_demo.segment import split_digits
from mnist_demo.strokes import (
    BRUSH,
    MAX_COORD,
    MAX_POINTS,
    MAX_STROKES,
    PAGE_CONSTANTS,
    _pieces,
    check_strokes,
    split_strokes,
    strokes_from_quickdraw,
    strokes_to_sketch,
)
from testkit.browser import place, smooth
from testkit.sketches import SPLIT_FOUR, STROKES, draw, layout, rasterise

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "weights" / "cnn.safetensors"
RECORDED = [json.loads(line) for line in (ROOT / "tests" / "drawings" / "strokes.ndjson").read_text().splitlines()]
SEVEN = [[[60, 50], [220, 50], [120, 230]]]  # canvas pixels
# testkit's digits at three heights on the pad (from thinned to thickened strokes), as a hand rounds them.
SYNTHETIC = {
    f"{d}-{h}": [smooth(line) for line in place(STROKES[d], height=h)] for d in STROKES for h in (95, 140, 190)
}

# Measured (python -m pytest tests/test_strokes.py -k agree -s, 2026-12-01): over the 34 recorded drawings a
# mean absolute difference of 2.66 per pixel (the worst drawing 4.25) and a largest single pixel of 158;
# over the 30 synthetic digits 3.09 (worst 8.10, the smallest 0) and 157. The bounds sit just above.
MEAN_BOUND = {"recorded": 3.0, "synthetic": 3.5}
WORST_MEAN_BOUND = {"recorded": 5.0, "synthetic": 9.0}
PIXEL_BOUND = 170  # an edge half a pixel off; a whole stroke misplaced would differ by 255 over many pixels


@pytest.fixture(scope="module")
def cnn():
    assert WEIGHTS.is_file(), f"the shipped weights are missing: {WEIGHTS}"
    return load_checkpoint(WEIGHTS).model


def read(sketches, model) -> str:
    with torch.no_grad():
        return "".join(str(d) for d in model(torch.cat([s.tensor for s in sketches])).argmax(1).tolist())


# --------------------------------------------------------------------------------------------------
# The format


@pytest.mark.parametrize(
    "value, message",
    [
        ([], "empty"),
        (None, "list of strokes"),
        ("[[[1, 2]]]", "list of strokes"),
        ({"strokes": [[[1, 2]]]}, "list of strokes"),
        ([[]], "stroke 0 must be a non-empty list"),
        ([[1, 2]], r"stroke 0, point 0: expected \[x, y\]"),
        ([[[1, 2, 3, 4]]], r"stroke 0, point 0: expected \[x, y\]"),
        ([[[1, 2], [1, 2, 3]]], r"stroke 0, point 1: expected"),
        ([[[1, 2]], [[1, "2"]]], "stroke 1: every coordinate must be a number"),
        ([[[1, None]]], "must be a number"),
        ([[[True, False]]], "must be a number"),
        ([[[1, [2]]]], "must be a number"),
        ([[[1, 2], [3, float("nan")]]], "stroke 0, point 1: coordinate nan is not a finite number"),
        ([[[float("inf"), 2]]], "not a finite number"),
        ([[[1, 2e9]]], "not a finite number within"),
        ([[[10**400, 2]]], "must be a number"),
        ([[[1, 2]]] * (MAX_STROKES + 1), f"at most {MAX_STROKES}"),
    ],
)
def test_bad_strokes_are_refused_with_a_clear_message(value, message):
    with pytest.raises(ValueError, match=message):
        check_strokes(value)
    with pytest.raises(ValueError, match=message):
        strokes_to_sketch(value)
    with pytest.raises(ValueError, match=message):
        split_strokes(value)


def test_counts_are_checked_before_any_point_is_read():
    bad = ["not", "a", "point"]  # would be refused as a point, but the count comes first
    with pytest.raises(ValueError, match=f"more than {MAX_POINTS} points"):
        check_strokes([[bad] * (MAX_POINTS // 2), [bad] * (MAX_POINTS // 2 + 1)])
    with pytest.raises(ValueError, match=f"at most {MAX_STROKES}"):
        check_strokes([[bad]] * (MAX_STROKES + 1))
    assert len(check_strokes([[[1.0, 2.0]] * (MAX_POINTS // 2)] * 2)) == 2  # the caps themselves are allowed


def test_checked_strokes_are_floats_and_keep_their_times():
    value = [[(1, 2, 0), (3, 4, 16)], [[5, 6], [np.float32(7.5), np.int64(8)]]]
    assert check_strokes(value) == [[[1.0, 2.0, 0.0], [3.0, 4.0, 16.0]], [[5.0, 6.0], [7.5, 8.0]]]
    assert all(type(v) is float for stroke in check_strokes(value) for point in stroke for v in point)
    assert check_strokes([[[-MAX_COORD, MAX_COORD]]]) == [[[-MAX_COORD, MAX_COORD]]]


def test_quickdraw_strokes_are_point_lists_in_another_order():
    points = [[[10, 20], [30, 40], [50, 60], [70, 80]], [[0, 5]]]
    quickdraw = [[[10, 30, 50, 70], [20, 40, 60, 80]], [[0], [5]]]
    assert strokes_from_quickdraw(quickdraw) == check_strokes(points)
    assert strokes_from_quickdraw(points) == check_strokes(points)  # point lists pass through
    timed = [[[10, 30], [20, 40], [0, 17]]]  # x, y and t
    assert strokes_from_quickdraw(timed) == [[[10.0, 20.0, 0.0], [30.0, 40.0, 17.0]]]
    # Strokes of two points could be either: Quick, Draw!'s reading wins.
    assert strokes_from_quickdraw([[[1, 2], [3, 4]]]) == [[[1.0, 3.0], [2.0, 4.0]]]
    with pytest.raises(ValueError, match="more than"):
        strokes_from_quickdraw([[[0] * MAX_POINTS, [0] * MAX_POINTS], [[0], [0]]])
    with pytest.raises(ValueError, match="empty"):
        strokes_from_quickdraw([])


def test_page_constants_are_plain_json():
    assert json.loads(json.dumps(PAGE_CONSTANTS)) == PAGE_CONSTANTS
    assert PAGE_CONSTANTS["brush"] == BRUSH and PAGE_CONSTANTS["pad_side"] == 280


# --------------------------------------------------------------------------------------------------
# One digit by MNIST's rules


def test_a_dot_is_no_digit_and_never_an_error():
    assert strokes_to_sketch([[[100, 100]]]) is None
    assert strokes_to_sketch([[[100, 100, 0], [100, 100, 5]]]) is None
    assert strokes_to_sketch([[[100, 100]]], brush=None) is None
    assert split_strokes([[[100, 100]]]) == []
    # Dots are drawn as dots: two far apart are a (strange) drawing, a dot beside a 7 is part of it.
    two = strokes_to_sketch([[[140, 40]], [[140, 240]]])
    assert two is not None and (two.image > 0).any()
    dotted = strokes_to_sketch(SEVEN + [[[200, 200]]])
    assert (dotted.image != strokes_to_sketch(SEVEN).image).any()


def test_a_blob_is_no_digit():
    assert strokes_to_sketch(SEVEN, brush=400) is None  # the pen is wider than half the drawing


def test_mnist_rules_box_centre_of_mass_and_normalisation():
    for name, strokes in SYNTHETIC.items():
        sketch = strokes_to_sketch(strokes)
        image = sketch.image.astype(float)
        solid = sketch.image >= 128
        rows, cols = np.flatnonzero(solid.any(1)), np.flatnonzero(solid.any(0))
        longest = max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1
        assert 19 <= longest <= 21, name  # the ink's box fits 20 x 20
        index = np.arange(IMAGE_SIZE)
        com = (image.sum(1) @ index / image.sum(), image.sum(0) @ index / image.sum())
        assert np.allclose(com, 14.0, atol=0.1), (name, com)
        torch.testing.assert_close(sketch.tensor, normalize(torch.from_numpy(sketch.image)[None]))


def test_place_size_and_units_do_not_matter():
    seven = np.array(SEVEN[0], float)
    base = strokes_to_sketch(SEVEN).image.astype(int)
    for scale, shift in ((1.0, (-300.0, 1000.0)), (3.0, (0.0, 0.0)), (0.01, (-5.0, -5.0))):
        moved = [(seven * scale + shift).tolist()]
        other = strokes_to_sketch(moved, brush=BRUSH * scale).image.astype(int)
        assert np.abs(other - base).max() <= 1, (scale, shift)


def test_pen_width_is_brought_into_mnists_range():
    thin, thinner = strokes_to_sketch(SEVEN, brush=6), strokes_to_sketch(SEVEN, brush=3)
    assert np.array_equal(thin.image, thinner.image)  # both too thin for MNIST: redrawn at its lower bound
    fat, fatter = strokes_to_sketch(SEVEN, brush=50), strokes_to_sketch(SEVEN, brush=70)
    assert np.array_equal(fat.image, fatter.image)
    unknown = strokes_to_sketch(SEVEN, brush=None)  # MNIST's typical width, between the two
    assert thin.image.sum() < unknown.image.sum() < fat.image.sum()
    within = [strokes_to_sketch(SEVEN, brush=b).image.sum() for b in (24, 27)]  # inside the range: as drawn
    assert thin.image.sum() < within[0] < within[1] < fat.image.sum()


def test_garbage_pen_widths_are_refused():
    for brush in (0, -3, float("nan"), "20", 1e9):
        with pytest.raises(ValueError, match="pen width"):
            strokes_to_sketch(SEVEN, brush=brush)
    with pytest.raises(ValueError, match="pen's width"):
        split_strokes(SEVEN, brush=None)


# --------------------------------------------------------------------------------------------------
# Agreement with the raster path


def test_the_recorded_strokes_are_the_drawings_they_were_recorded_from():
    from PIL import Image

    assert len(RECORDED) == len(list((ROOT / "tests" / "drawings").glob("[0-9]/*.png")))
    for row in RECORDED:
        with Image.open(ROOT / row["source"]) as png:
            recorded = np.asarray(png.convert("L")) < 128
        redrawn = np.asarray(rasterise(row["strokes"], brush=row["brush"]).convert("L")) < 128
        overlap = (recorded & redrawn).sum() / (recorded | redrawn).sum()
        assert overlap > 0.9, f"{row['source']}: only {overlap:.0%} of the ink is where the strokes say"


def test_same_label_as_the_raster_path_on_every_recorded_drawing(cnn):
    from PIL import Image

    for row in RECORDED:
        with Image.open(ROOT / row["source"]) as png:
            raster = read([sketch_to_tensor(png)], cnn)
        strokes = read([strokes_to_sketch(row["strokes"], brush=row["brush"])], cnn)
        assert strokes == raster == row["label"], row["source"]


@pytest.mark.parametrize("kind", ["recorded", "synthetic"])
def test_pixels_agree_with_the_raster_path(kind):
    drawings = {r["source"]: r["strokes"] for r in RECORDED} if kind == "recorded" else SYNTHETIC
    means, largest = [], 0
    for strokes in drawings.values():
        raster = sketch_to_tensor(rasterise(strokes, brush=BRUSH)).image.astype(int)
        ours = strokes_to_sketch(strokes).image.astype(int)
        difference = np.abs(raster - ours)
        means.append(difference.mean())
        largest = max(largest, int(difference.max()))
    print(
        f"\n{kind}: {len(means)} drawings, mean |difference| {np.mean(means):.2f} per pixel, worst drawing "
        f"{max(means):.2f}, largest pixel {largest}"
    )
    assert np.mean(means) <= MEAN_BOUND[kind]
    assert max(means) <= WORST_MEAN_BOUND[kind]
    assert largest <= PIXEL_BOUND


# --------------------------------------------------------------------------------------------------
# Several digits

LOOSE = {**STROKES, "4": SPLIT_FOUR, "5": [[(0.26, 0.2), *STROKES["5"][0][1:]], [(0.4, 0.04), (0.88, 0.04)]]}


def wide(text: str, per_digit: int = 170) -> tuple[int, int]:
    """A canvas for a short number, as tests/test_segment.py sizes it."""
    return max(300, per_digit * len(text)), 300


def number(text: str, strokes=None, per_digit: int = 170) -> list:
    """`text` as strokes laid out as test_segment draws it (a 16-px pen, 0.6 of the canvas tall)."""
    return [[list(p) for p in line] for line in layout(text, size=wide(text, per_digit), height=0.6, strokes=strokes)]


@pytest.mark.parametrize("text", ["2024", "14", "7", "1111", "0123456789"])
def test_numbers_read_as_the_raster_path_reads_them(text, cnn):
    sketches = split_strokes(number(text), brush=16)
    assert read(sketches, cnn) == text
    raster = split_digits(np.asarray(draw(text, size=wide(text), height=0.6, brush=16)))
    assert read(raster, cnn) == text
    for ours, theirs in zip(sketches, raster, strict=True):  # the same digits, in the same order
        width, height = wide(text)
        inside = np.clip(ours.box, 0, (width, height, width, height))  # a canvas cuts off ink beyond its edge
        assert np.abs(inside - theirs.box).max() <= 3, (ours.box, theirs.box)


@pytest.mark.parametrize("text", ["4", "5", "45", "1454"])
def test_strokes_drawn_apart_stay_one_digit(text, cnn):
    assert read(split_strokes(number(text, LOOSE, per_digit=200), brush=16), cnn) == text


def test_each_digit_is_drawn_as_if_alone():
    together = split_strokes(number("38"), brush=16)
    alone = [
        strokes_to_sketch(number("38", {"3": STROKES["3"], "8": []}), brush=16),
        strokes_to_sketch(number("38", {"3": [], "8": STROKES["8"]}), brush=16),
    ]
    for a, b in zip(together, alone, strict=True):
        assert np.array_equal(a.image, b.image) and a.box == b.box


def test_order_is_left_to_right_not_top_to_bottom():
    low_one = [[[100, 200], [95, 280]]]
    high_seven = [[[300, 20], [380, 20], [330, 120]]]
    sketches = split_strokes(high_seven + low_one)
    assert len(sketches) == 2 and sketches[0].box[0] < sketches[1].box[0]


def test_crossing_strokes_are_one_piece():
    plus = [np.array([[0.0, 100.0], [200.0, 100.0]]), np.array([[100.0, 0.0], [100.0, 200.0]])]
    assert _pieces(plus, reach=1.0) == [[0, 1]]  # no point of either lies near the other: they cross
    apart = [plus[0], plus[1] + [0.0, 150.0]]
    assert _pieces(apart, reach=10.0) == [[0], [1]]
    near = [plus[0], np.array([[100.0, 110.0], [100.0, 300.0]])]
    assert _pieces(near, reach=10.0) == [[0, 1]]  # a stroke ending 10 px short of another touches it


def test_limit_draws_only_the_first_digits():
    strokes = number("0123456789")
    assert len(split_strokes(strokes, brush=16, limit=3)) == 3
    assert [s.box for s in split_strokes(strokes, brush=16, limit=3)] == [
        s.box for s in split_strokes(strokes, brush=16)[:3]
    ]


def test_a_long_scribble_costs_bounded_work():
    rng = np.random.default_rng(0)
    scribble = [rng.uniform(0, 280, (MAX_POINTS // 4, 2)).tolist() for _ in range(4)]
    assert len(split_strokes(scribble)) <= 1  # one big piece of ink: a blob or one strange digit
    assert math.isfinite(strokes_to_sketch(scribble).tensor.sum().item())
