"""Strokes -> MNIST-style input, drawn straight at 28 x 28: the stroke pad's format, its checks, and the split.

A drawing is a list of strokes, each a list of [x, y] or [x, y, t] points: canvas pixels, y down, t in ms
(kept by `check_strokes`, unused here). A stroke is the path of a round pen `brush` wide: a one-point
stroke is a dot. This module makes from strokes the same `Sketch` that `mnist_demo.preprocess` makes from
a picture of them, by MNIST's rules, without ever drawing the canvas:

1. the ink's box is the box of the stroke centrelines grown by half the pen width on every side;
2. the pen width over the box's longest side is brought into MNIST's range (preprocess.STROKE_RANGE):
   outside it, the strokes are redrawn at the nearest bound, as `preprocess.restroke` does;
3. the box's longest side is scaled to DIGIT_BOX output pixels;
4. each output pixel is inked by its distance d to the nearest centreline: clip(R + 1/2 - d, 0, 1) for a
   pen R output pixels in radius, a one-pixel anti-aliased edge with round caps and joins;
5. drawn once with the box in the middle of 28 x 28, the digit's centre of mass is measured there, and it
   is drawn again with that centre at MNIST's (preprocess.TARGET_COM), the box kept inside the field.

Several digits: strokes whose ink touches are one piece, and pieces are joined into digits by
`segment.group_boxes`, the rules the raster path applies to pieces of ink, then read left to right.

Agreement with the raster path (PIL draws the same strokes 20 px wide on 280 x 280, then
`sketch_to_tensor`) on the 28 x 28 uint8 images, measured by `python -m pytest tests/test_strokes.py -k agree
-s`: a mean absolute difference of 2.66 per pixel over the 34 drawings of tests/drawings re-recorded as
strokes (the worst drawing 4.25), 3.09 over testkit's digits at three sizes (the worst 8.10: a small 0,
whose strokes the raster path's thinning leaves thicker), and 158 at most at any one pixel (an edge half a pixel
apart); the CNN reads every drawing the same both ways.

The page will run a copy of this module (issue 14): every constant it needs is in PAGE_CONSTANTS, and
each step is plain arithmetic on arrays, no library beyond numpy.

    python -m pytest tests/test_strokes.py
"""

from __future__ import annotations

import functools
import math
import numbers

import numpy as np
import torch

from mnist_demo.data import DIGIT_BOX, IMAGE_SIZE, MNIST_MEAN, MNIST_STD, normalize
from mnist_demo.preprocess import MAX_STROKE_RATIO, STROKE_RANGE, TARGET_COM, Sketch
from mnist_demo.segment import MAX_ASPECT, NEAR, SAME_COLUMN, SHORT_PIECE, group_boxes

PAD_SIDE = 280  # the stroke pad's canvas, in its own pixels (the Sketchpad the Draw tab had was 280 x 280 too)
BRUSH = 20  # the pad's pen width in canvas pixels: MNIST-like strokes at 28 x 28 (the Sketchpad's brush radius 10)
MAX_STROKES = 200  # a 12-digit number is about 30 strokes; more is a scribble or an attack
MAX_POINTS = 8000  # all strokes together; a pointer sends ~60-240 points a second, a digit takes ~2 s
MAX_COORD = 1e6  # |x|, |y| and |t| above this are nonsense in any unit
MID_RATIO = sum(STROKE_RANGE) / 2  # pen width over the digit's side when the pen's own width is unknown
STEP = 0.25  # output pixels: dropping a point this near the last one kept moves no ink further than this
TOUCH = 1.1  # strokes whose centrelines come within this many pen widths are one piece of ink...
# ...as on the raster path's coarse map, whose pixels (2 canvas px at 280) join ink a pixel apart.
CHUNK = 256  # segments measured at once: the (points, segments) arrays stay under a few MB

# What the page needs to read strokes as this module does (sent with the pad; see ui/pad.py).
PAGE_CONSTANTS = {
    "pad_side": PAD_SIDE,
    "brush": BRUSH,
    "max_strokes": MAX_STROKES,
    "max_points": MAX_POINTS,
    "max_coord": MAX_COORD,
    "image_size": IMAGE_SIZE,
    "digit_box": DIGIT_BOX,
    "target_com": TARGET_COM,
    "stroke_range": list(STROKE_RANGE),
    "max_stroke_ratio": MAX_STROKE_RATIO,
    "mid_ratio": MID_RATIO,
    "step": STEP,
    "touch": TOUCH,
    "mnist_mean": MNIST_MEAN,
    "mnist_std": MNIST_STD,
    "same_column": SAME_COLUMN,
    "short_piece": SHORT_PIECE,
    "near": NEAR,
    "max_aspect": MAX_ASPECT,
}

Strokes = list[list[list[float]]]


# --------------------------------------------------------------------------------------------------
# The format and its checks


def _arrays(value: object) -> list[np.ndarray]:
    """Validate a drawing as strokes: one (n, 2) or (n, 3) float64 array per stroke, or a ValueError.

    Counts and shapes are checked before any number is converted, so a huge value is refused unread.
    """
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"strokes must be a list of strokes, each a list of [x, y] points; got {type(value).__name__}")
    if not value:
        raise ValueError("no strokes: the drawing is empty")
    if len(value) > MAX_STROKES:
        raise ValueError(f"{len(value)} strokes; a drawing here has at most {MAX_STROKES}")
    total = 0
    for i, stroke in enumerate(value):
        if not isinstance(stroke, (list, tuple)) or not stroke:
            raise ValueError(f"stroke {i} must be a non-empty list of [x, y] points, got {_describe(stroke)}")
        total += len(stroke)
        if total > MAX_POINTS:
            raise ValueError(f"more than {MAX_POINTS} points in all; a drawing here has at most {MAX_POINTS}")
    arrays = []
    for i, stroke in enumerate(value):
        size = len(stroke[0]) if isinstance(stroke[0], (list, tuple)) else 0
        for j, point in enumerate(stroke):
            if not isinstance(point, (list, tuple)) or len(point) not in (2, 3) or len(point) != size:
                raise ValueError(
                    f"stroke {i}, point {j}: expected [x, y] or [x, y, t] like the stroke's first point, "
                    f"got {_describe(point)}"
                )
        try:
            array = np.array(stroke)  # no dtype: its kind tells numbers from anything else
        except (ValueError, TypeError, OverflowError):  # nested deeper, or numbers too large for any dtype
            array = None
        if array is None or array.dtype.kind not in "iuf" or array.shape != (len(stroke), size):
            raise ValueError(f"stroke {i}: every coordinate must be a number (not text, null or a list)")
        array = array.astype(np.float64)
        bad = ~np.isfinite(array) | (np.abs(array) > MAX_COORD)  # (n, 2 | 3)
        if bad.any():
            j, k = np.argwhere(bad)[0]
            raise ValueError(
                f"stroke {i}, point {j}: coordinate {array[j, k]:g} is not a finite number within +-{MAX_COORD:g}"
            )
        arrays.append(array)
    return arrays


def check_strokes(value: object) -> Strokes:
    """Validate a drawing as strokes: a clean copy (floats, t kept), or a ValueError that says what is wrong."""
    return [array.tolist() for array in _arrays(value)]


def _describe(value: object) -> str:
    """A short description of a bad item for an error message (never its whole content)."""
    if isinstance(value, (list, tuple)):
        return f"a list of {len(value)} items" if value else "an empty list"
    return type(value).__name__


def _is_coordinate_lists(stroke: object) -> bool:
    """Is `stroke` in Quick, Draw!'s form: 2 or 3 lists of numbers (x, y and maybe t) of one length?"""
    return (
        isinstance(stroke, (list, tuple))
        and len(stroke) in (2, 3)
        and all(isinstance(axis, (list, tuple)) for axis in stroke)
        and len({len(axis) for axis in stroke}) == 1
        and all(isinstance(v, numbers.Real) for axis in stroke for v in axis[:1])
    )


def strokes_from_quickdraw(drawing: object) -> Strokes:
    """Quick, Draw!'s strokes ([[x0, x1, ...], [y0, y1, ...]] each, t optional) -> checked point lists.

    Point lists pass through. A drawing is read in Quick, Draw!'s form when every stroke fits it; one of
    strokes of at most three points could be either, and is read as Quick, Draw!'s.
    """
    if not isinstance(drawing, (list, tuple)) or not drawing:
        return check_strokes(drawing)  # the error says what a drawing should be
    if len(drawing) > MAX_STROKES or not all(_is_coordinate_lists(s) for s in drawing):
        return check_strokes(drawing)
    if sum(len(s[0]) for s in drawing) > MAX_POINTS:  # before any list is built
        raise ValueError(f"more than {MAX_POINTS} points in all; a drawing here has at most {MAX_POINTS}")
    return check_strokes([[list(p) for p in zip(*axes)] for axes in drawing])


# --------------------------------------------------------------------------------------------------
# One digit


def _centrelines(strokes: object) -> list[np.ndarray]:
    """Strokes, checked -> (n, 2) float64 arrays of (x, y), one per stroke (t dropped)."""
    return [array[:, :2] for array in _arrays(strokes)]


def _thin(line: np.ndarray, step: float) -> np.ndarray:
    """Drop points nearer than `step` to the last point kept (the last point always stays)."""
    points = line.tolist()  # Python floats: a loop over numpy scalars costs several times more
    kept = [points[0]]
    for x, y in points[1:-1]:
        dx, dy = x - kept[-1][0], y - kept[-1][1]
        if dx * dx + dy * dy >= step * step:
            kept.append([x, y])
    if len(points) > 1:
        kept.append(points[-1])
    return np.array(kept)


def _segments(lines: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Polylines -> (starts, ends), each (m, 2); a one-point stroke is a segment of length 0 (a dot)."""
    starts = [line[:-1] if len(line) > 1 else line for line in lines]
    ends = [line[1:] if len(line) > 1 else line for line in lines]
    return np.concatenate(starts), np.concatenate(ends)


def _distances(px: np.ndarray, py: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """(k,) points -> (k,) distance from each to the nearest of the segments, CHUNK segments at a time."""
    nearest = np.full(px.shape, np.inf)
    for c in range(0, len(starts), CHUNK):
        a, b = starts[c : c + CHUNK], ends[c : c + CHUNK]
        ax, ay = a[:, 0], a[:, 1]
        dx, dy = b[:, 0] - ax, b[:, 1] - ay
        length2 = dx * dx + dy * dy
        length2[length2 == 0] = 1.0  # a dot: t is 0 whatever the divisor
        ux, uy = px[:, None] - ax, py[:, None] - ay  # (k, m): from each segment's start to each point
        t = np.clip((ux * dx + uy * dy) / length2, 0.0, 1.0)  # where along the segment the nearest point is
        ex, ey = ux - t * dx, uy - t * dy
        np.minimum(nearest, (ex * ex + ey * ey).min(axis=1), out=nearest)
    return np.sqrt(nearest)


def _draw(starts: np.ndarray, ends: np.ndarray, radius: float, box: np.ndarray) -> np.ndarray:
    """Step 4: (28, 28) float ink in [0, 1] of segments in output pixels, a pen `radius` px.

    Only pixels within the ink's box (x0, y0, x1, y1), grown by a pixel, can hold ink: the rest stay 0.
    """
    ink = np.zeros((IMAGE_SIZE, IMAGE_SIZE))
    x0, y0 = (max(0, math.floor(v - 1)) for v in box[:2])
    x1, y1 = (min(IMAGE_SIZE, math.ceil(v + 1)) for v in box[2:])
    if x0 >= x1 or y0 >= y1:
        return ink
    xs, ys = np.arange(x0, x1) + 0.5, np.arange(y0, y1) + 0.5  # pixel centres
    d = _distances(np.tile(xs, len(ys)), np.repeat(ys, len(xs)), starts, ends)  # row by row
    ink[y0:y1, x0:x1] = np.clip(radius + 0.5 - d, 0.0, 1.0).reshape(len(ys), len(xs))
    return ink


@functools.cache
def _normalized() -> np.ndarray:
    """(256,) float32: what `normalize` makes of each uint8 value, to look pixels up rather than compute them."""
    return normalize(torch.arange(256, dtype=torch.uint8)[None]).reshape(256).numpy()


def _centre_of_mass(ink: np.ndarray) -> tuple[float, float]:
    """(x, y) of the ink's centre of mass, pixel edges at whole numbers (a pixel's centre at i + 1/2)."""
    centres = np.arange(IMAGE_SIZE) + 0.5
    mass = ink.sum()
    return float(ink.sum(axis=0) @ centres / mass), float(ink.sum(axis=1) @ centres / mass)


def _sketch(lines: list[np.ndarray], brush: float | None) -> Sketch | None:
    """One digit's centrelines (canvas units) -> its Sketch; None for a dot or a blob (as the raster path)."""
    points = np.concatenate(lines)
    low, high = points.min(axis=0), points.max(axis=0)  # the centrelines' box, (x, y) each
    extent = float((high - low).max())
    if extent == 0:  # a dot alone: no digit, and no size to draw one at
        return None
    # Step 2: the pen width over the ink box's longest side, brought within MNIST's range.
    if brush is None:  # a pen of unknown width (pen data from elsewhere): MNIST's typical one
        ratio = MID_RATIO
        width = ratio * extent / (1 - ratio)
    else:
        drawn = brush / (extent + brush)
        if drawn > MAX_STROKE_RATIO:  # a dab or a blob, not a digit
            return None
        ratio = min(max(drawn, STROKE_RANGE[0]), STROKE_RANGE[1])
        # The ratio counts the pen in the box too: width / (extent + width) = ratio.
        width = brush if ratio == drawn else ratio * extent / (1 - ratio)
    # Step 1 and 3: the ink box (centrelines +- width / 2) fits DIGIT_BOX output pixels.
    fit = DIGIT_BOX / (extent + width)  # output pixels per canvas unit
    radius = width * fit / 2
    ink_low, ink_high = low - width / 2, high + width / 2
    lines = [_thin(line, STEP / fit) for line in lines]
    starts, ends = _segments(lines)

    def draw(corner: np.ndarray) -> np.ndarray:  # corner: canvas (x, y) of the output's top-left
        box = np.concatenate([(ink_low - corner) * fit, (ink_high - corner) * fit])
        return _draw((starts - corner) * fit, (ends - corner) * fit, radius, box)

    # Step 5: draw with the box centred, find the centre of mass, and draw again with it at MNIST's.
    view = IMAGE_SIZE / fit  # canvas units across the output
    first = (ink_low + ink_high) / 2 - view / 2
    com = first + np.array(_centre_of_mass(draw(first))) / fit
    corner = com - (TARGET_COM + 0.5) / fit
    corner = np.minimum(np.maximum(corner, ink_high - view), ink_low)  # the box stays inside 28 x 28
    image = (draw(corner) * 255).round().astype(np.uint8)  # (28, 28)
    pen = brush if brush is not None else width  # the box of the ink as drawn, in canvas units
    box = (
        math.floor(low[0] - pen / 2),
        math.floor(low[1] - pen / 2),
        math.ceil(high[0] + pen / 2),
        math.ceil(high[1] + pen / 2),
    )
    tensor = torch.from_numpy(_normalized()[image])[None, None]  # (1, 1, 28, 28)
    return Sketch(tensor=tensor, image=image, box=box)


def strokes_to_sketch(strokes: object, brush: float | None = BRUSH) -> Sketch | None:
    """All strokes as one digit -> its MNIST-style Sketch; None for a dot or a blob; ValueError for garbage.

    `brush` is the pen's width in the strokes' units (the pad's by default); None when it is unknown.
    """
    _check_brush(brush)
    return _sketch(_centrelines(strokes), brush)


def _check_brush(brush: float | None) -> None:
    if brush is not None and not (isinstance(brush, numbers.Real) and 0 < brush <= MAX_COORD):
        raise ValueError(f"the pen width must be a positive number up to {MAX_COORD:g}, got {brush!r}")


# --------------------------------------------------------------------------------------------------
# Several digits


def _crossing(a0, a1, b0, b1) -> np.ndarray:
    """Do segments a (k, 2) and b (m, 2) properly cross? (k, m) bool, by the signs of cross products."""

    def side(p, q, r):  # which side of the line p -> q each r lies on: (k, m)
        return (q[..., 0] - p[..., 0]) * (r[..., 1] - p[..., 1]) - (q[..., 1] - p[..., 1]) * (r[..., 0] - p[..., 0])

    a0, a1, b0, b1 = a0[:, None], a1[:, None], b0[None], b1[None]
    return (side(a0, a1, b0) * side(a0, a1, b1) < 0) & (side(b0, b1, a0) * side(b0, b1, a1) < 0)


def _near(p0: np.ndarray, p1: np.ndarray, q0: np.ndarray, q1: np.ndarray, reach: float) -> bool:
    """Does a segment p0 -> p1 come within `reach` of a segment q0 -> q1 (each (m, 2), m <= CHUNK)?

    Two segments are that near when an end of one is near the other, or when they cross.
    """
    ends_p, ends_q = np.concatenate([p0, p1]), np.concatenate([q0, q1])
    return bool(
        _distances(ends_p[:, 0], ends_p[:, 1], q0, q1).min() <= reach
        or _distances(ends_q[:, 0], ends_q[:, 1], p0, p1).min() <= reach
        or _crossing(p0, p1, q0, q1).any()
    )


def _touch(a: np.ndarray, b: np.ndarray, reach: float) -> bool:
    """Do polylines a and b come within `reach` of each other? Compared CHUNK segments by CHUNK."""
    a0, a1 = _segments([a])
    b0, b1 = _segments([b])
    return any(
        _near(a0[i : i + CHUNK], a1[i : i + CHUNK], b0[j : j + CHUNK], b1[j : j + CHUNK], reach)
        for i in range(0, len(a0), CHUNK)
        for j in range(0, len(b0), CHUNK)
    )


def _pieces(lines: list[np.ndarray], reach: float) -> list[list[int]]:
    """Strokes whose centrelines come within `reach` -> pieces, each the list of its strokes, in stroke order."""
    owner = list(range(len(lines)))  # union-find: each stroke's piece is found by following owners

    def root(i: int) -> int:
        while owner[i] != i:
            i = owner[i]
        return i

    boxes = [(*line.min(axis=0).tolist(), *line.max(axis=0).tolist()) for line in lines]  # (x0, y0, x1, y1)
    for i in range(len(lines)):
        for j in range(i + 1, len(lines)):
            a, b = boxes[i], boxes[j]
            if max(a[0] - b[2], b[0] - a[2], a[1] - b[3], b[1] - a[3]) > reach:
                continue  # boxes further apart than `reach`: no need to look closer
            if root(i) != root(j) and _touch(lines[i], lines[j], reach):
                owner[root(j)] = root(i)
    pieces: dict[int, list[int]] = {}
    for i in range(len(lines)):
        pieces.setdefault(root(i), []).append(i)
    return list(pieces.values())


def split_strokes(strokes: object, limit: int | None = None, brush: float = BRUSH) -> list[Sketch]:
    """A drawing of one or more digits as strokes -> a Sketch per digit, left to right.

    Grouped as `segment.split_digits` groups pieces of ink; with a `limit`, only the first `limit` digits
    are drawn. ValueError for garbage.
    """
    if brush is None:
        raise ValueError("splitting strokes into digits needs the pen's width")
    _check_brush(brush)
    lines = _centrelines(strokes)
    pieces = _pieces(lines, TOUCH * brush)
    half = brush / 2
    boxes = []  # (top, left, bottom, right) of each piece's ink
    for piece in pieces:
        points = np.concatenate([lines[i] for i in piece])
        (left, top), (right, bottom) = points.min(axis=0) - half, points.max(axis=0) + half
        boxes.append((top, left, bottom, right))
    sketches = []
    for group in group_boxes(boxes):
        sketch = _sketch([lines[i] for p in group for i in pieces[p]], brush)
        if sketch is not None:
            sketches.append(sketch)
            if len(sketches) == limit:
                break
    return sketches
