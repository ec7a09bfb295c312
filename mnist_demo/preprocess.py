"""Drawing -> MNIST-style input: owns everything between a canvas and the (1, 1, 28, 28) tensor.

It does what MNIST did to NIST's scans: crop to the ink, scale it to fit a 20 x 20 box keeping the
aspect ratio, and paste it into 28 x 28 so that the centre of mass sits in the middle, white on black.
Before scaling it redraws the strokes at MNIST's typical width relative to the digit, so a thin brush
on a large canvas and a fat one on a small canvas give the same picture. Pure: no Gradio in here.
Finding the ink on the canvas is `mnist_demo.canvas`'s part.

    python -m pytest tests/test_preprocess.py
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from scipy import ndimage

from mnist_demo.canvas import EIGHT_NEIGHBOURS, Canvas, contrast, ink_pieces, read_canvas
from mnist_demo.data import DIGIT_BOX, IMAGE_SIZE, normalize

WORK_SIDE = 64  # the digit's longest side while its strokes are redrawn, about 3x the 20-px box (80 reads no better)
SHARED_SIDES = (56, 80)  # ...or anything in this range that the coarse map's own pixels reduce to
INK_LEVEL = 0.5  # a work pixel half covered by ink is inside a stroke (MNIST's 20-px box is its ink at 0.5)
FAINT = 0.05  # a work pixel with less ink than this holds none (scaled down for thin strokes on big canvases)
# Stroke width over the digit's longest side: MNIST's quartiles, measured by this very pipeline on its
# training digits (tests/test_preprocess.py checks them). Strokes outside are redrawn to the nearest bound;
# strokes inside keep their width, as MNIST's writers' pens varied too.
STROKE_RANGE = (0.109, 0.147)
MAX_STROKE_RATIO = 0.5  # thicker than this for its size is a dab or a blob, not a digit (MNIST's maximum: 0.44)
MIN_STROKE_PX = 1.0  # never thin a stroke below one work pixel, whatever the estimate says
SHIFTED_COPIES = 12  # growing strokes by up to this many shifted copies is faster than a distance transform
DOWNSCALE = Image.Resampling.BOX  # 4x down to the 20-px box: averaging gives edges as soft as MNIST's, no softer
TARGET_COM = 14.0  # MNIST's mean centre of mass, row and column, in pixel indices (measured: 13.99, 14.00)


@dataclass(frozen=True)
class Sketch:
    """One digit as the model sees it, and where it was on the canvas."""

    tensor: torch.Tensor  # (1, 1, 28, 28) float, normalised with MNIST's mean and std
    image: np.ndarray  # (28, 28) uint8, white ink on black, for display
    box: tuple[int, int, int, int]  # (left, top, right, bottom) of the ink in canvas pixels


def _pad(array: np.ndarray, width: int, dtype: type = bool) -> np.ndarray:
    """`array` with `width` pixels of zeros all round, as `dtype` (np.pad costs more than the copy)."""
    out = np.zeros((array.shape[0] + 2 * width, array.shape[1] + 2 * width), dtype)
    out[width : width + array.shape[0], width : width + array.shape[1]] = array
    return out


def inner_distance(mask: np.ndarray) -> np.ndarray:
    """(h, w) bool -> (h + 2, w + 2) float: each ink pixel's distance to the nearest paper, paper all round."""
    return ndimage.distance_transform_edt(_pad(mask, 1))


def stroke_width(mask: np.ndarray, inside: np.ndarray | None = None) -> float:
    """Mean stroke width of a bool mask in pixels: a stroke w wide has a mean inner distance of w / 4 + 1/2.

    `inside` is the mask's `inner_distance`, when already known."""
    inside = inner_distance(mask) if inside is None else inside
    return float(4.0 * (inside[inside > 0].mean() - 0.5))


def stroke_ratio(mask: np.ndarray, inside: np.ndarray | None = None) -> tuple[float, float]:
    """(stroke width / longest side, stroke width) of the strokes in a bool mask cropped to its ink."""
    width = stroke_width(mask, inside)
    return width / max(mask.shape), width


def _pair(d: int) -> tuple[slice, slice]:
    """Slices (from, to) along an axis of any length: item i of `to` is item i + d of the axis, in `from`."""
    if d > 0:
        return slice(d, None), slice(None, -d)
    if d < 0:
        return slice(None, d), slice(-d, None)
    return slice(None), slice(None)


@functools.cache
def _offsets(reach: int) -> list[tuple[float, tuple[slice, slice], tuple[slice, slice]]]:
    """(length, from, to) of each offset (dy, dx) but (0, 0) within `reach` pixels, nearest first: `to` and
    `from` cut out the pixels p and p + (dy, dx) of an array."""
    span = range(-reach, reach + 1)
    pairs = [(math.sqrt(dy * dy + dx * dx), _pair(dy), _pair(dx)) for dy in span for dx in span if dy or dx]
    return sorted(((d, (ry[0], rx[0]), (ry[1], rx[1])) for d, ry, rx in pairs), key=lambda o: o[0])


def _grow(mask: np.ndarray, grow: float) -> np.ndarray:
    """Strokes `grow` px wider on each side: paper d px from the ink gets 1 + grow - d, clipped to [0, 1]."""
    reach = math.ceil(grow + 1.0)  # only paper nearer than grow + 1 changes
    ink = _pad(mask, reach, np.float32)  # room to grow, and paper all round
    near = [(min(1.0 - d + grow, 1.0), source, dest) for d, source, dest in _offsets(reach) if d < grow + 1.0]
    if len(near) > SHIFTED_COPIES:  # far-reaching: one distance transform beats many shifted copies
        outside = ndimage.distance_transform_edt(ink == 0)
        return np.maximum(ink, np.clip(1.0 - outside + grow, 0.0, 1.0)).astype(np.float32)
    # The nearest ink lies at one of a few offsets: shifted copies of the mask find it.
    grown = ink.copy()
    for level, source, dest in near:
        to = grown[dest]
        np.maximum(to, ink[source] * np.float32(level), out=to)
    return grown


def restroke(mask: np.ndarray, width: float, inside: np.ndarray) -> np.ndarray:
    """Redraw strokes `width` wide within MNIST's range for their size: (h, w) bool -> (h', w') float in [0, 1].

    The mask is cropped to its ink; `inside` is its `inner_distance`. Width changes by
    a signed distance to the stroke edge, which grows or shrinks every stroke by the same amount and keeps
    half a pixel of anti-aliasing at the new edge.
    """
    side = max(mask.shape)
    ratio = min(max(width / side, STROKE_RANGE[0]), STROKE_RANGE[1])
    if ratio == width / side:  # already within MNIST's range: keep the strokes as drawn
        return _pad(mask, 1, np.float32)
    # The ratio counts the stroke in the box too: target = ratio * (side - width + target).
    target = max(ratio * (side - width) / (1 - ratio), MIN_STROKE_PX)
    grow = (target - width) / 2  # per side
    if grow >= 0:
        return _grow(mask, grow)
    return np.clip(inside + grow, 0.0, 1.0).astype(np.float32)


def _box_mean(values: np.ndarray, n: int) -> np.ndarray:
    """(h, w) -> (ceil(h / n), ceil(w / n)): means of n x n blocks, paper (0) beyond the edge."""
    if n == 1:
        return values
    h, w = -(-values.shape[0] // n), -(-values.shape[1] // n)
    blocks = np.zeros((h * n, w * n), values.dtype)
    blocks[: values.shape[0], : values.shape[1]] = values
    # n * n strided sums: numpy's mean over the axes of a (h, n, w, n) view is several times slower.
    return sum(blocks[i::n, j::n] for i in range(n) for j in range(n)) / (n * n)


def _work_crop(canvas: Canvas, keep: np.ndarray) -> tuple[np.ndarray, tuple[float, float, float]]:
    """Cut the kept coarse ink from the canvas at work scale: (ink (h, w) float in [0, 1], (left, top, scale))."""
    rows, cols = np.flatnonzero(keep.any(1)), np.flatnonzero(keep.any(0))
    k, (x0, y0), (width, height) = canvas.factor, canvas.origin, canvas.source.size
    left, top = max(0, x0 + (cols[0] - 1) * k), max(0, y0 + (rows[0] - 1) * k)
    right, bottom = min(width, x0 + (cols[-1] + 2) * k), min(height, y0 + (rows[-1] + 2) * k)
    extent = (max(cols[-1] - cols[0], rows[-1] - rows[0]) + 1) * k  # the ink's longest side in canvas pixels
    # The same window of the coarse map, whose pixels start at whole coarse pixels.
    window = (slice((top - y0) // k, -(-(bottom - y0) // k)), slice((left - x0) // k, -(-(right - x0) // k)))
    shared = round(extent / (WORK_SIDE * k))  # coarse pixels per work pixel, if the map's own will do
    if shared >= 1 and SHARED_SIDES[0] <= extent / (shared * k) <= SHARED_SIDES[1]:
        # Box-reduce the map's contrast rather than read the canvas again (the same for ink of one colour).
        ink, scale = _box_mean(canvas.level[window], shared), 1.0 / (shared * k)
    else:
        if extent >= WORK_SIDE:  # PIL's reduce is a box filter, several times faster than resize
            step = round(extent / WORK_SIDE)
            pixels, scale = np.asarray(canvas.source.reduce(step, box=(left, top, right, bottom))), 1.0 / step
        else:  # a small digit on a small canvas: enlarge it smoothly so the strokes can be redrawn finely
            scale = WORK_SIDE / extent
            size = (max(1, round((right - left) * scale)), max(1, round((bottom - top) * scale)))
            box = (left, top, right, bottom)
            pixels = np.asarray(canvas.source.resize(size, Image.Resampling.BILINEAR, box=box))
        ink = contrast(pixels, canvas.paper)
    ink = ink / canvas.full_ink
    # Only ink from the kept pieces: neighbours and specks inside the crop would move the box.
    if (canvas.coarse[window] & ~keep[window]).any():
        near = ndimage.binary_dilation(keep[window], structure=EIGHT_NEIGHBOURS)
        # Work pixel i lies in window pixel (i + 1/2) / scale / k.
        ys = np.minimum((np.arange(ink.shape[0]) + 0.5) / (scale * k), near.shape[0] - 1)
        xs = np.minimum((np.arange(ink.shape[1]) + 0.5) / (scale * k), near.shape[1] - 1)
        ink = ink * near[np.ix_(ys.astype(int), xs.astype(int))]
    return ink, (left, top, scale)


def stroke_mask(canvas: Canvas, keep: np.ndarray) -> tuple[np.ndarray, tuple[int, int, int, int]] | None:
    """The strokes under the coarse mask `keep` at work scale: (bool mask cropped to them, their canvas box)."""
    ink, (left, top, scale) = _work_crop(canvas, keep)
    # Strokes thinner than a work pixel never reach full ink: halve what the strokes do reach instead.
    inked = ink[ink > FAINT * min(1.0, scale)]  # a 1-px stroke covers `scale` of each work pixel it crosses
    if not inked.size:
        return None
    strong = np.partition(inked, int(0.9 * (inked.size - 1)))[int(0.9 * (inked.size - 1))]  # 90th percentile
    mask = ink >= INK_LEVEL * min(1.0, float(strong))
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    width, height = canvas.source.size  # a work pixel at the canvas's edge may stand for fewer canvas pixels
    box = (
        int(left + cols[0] / scale),
        int(top + rows[0] / scale),
        min(width, math.ceil(left + (cols[-1] + 1) / scale)),
        min(height, math.ceil(top + (rows[-1] + 1) / scale)),
    )
    return mask[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1], box


@functools.cache
def _indices(n: int) -> np.ndarray:
    """(n,) float64 0, 1, ..., n - 1: each pixel's row or column, to weigh its ink by."""
    return np.arange(n, dtype=np.float64)


def _fit(strokes: np.ndarray) -> np.ndarray:
    """Strokes (h, w) float at work scale -> (28, 28) uint8: solid ink scaled to fit the 20-px box, centre of
    mass at MNIST's. One anti-aliased resize does both, so the placement is exact to a fraction of a pixel."""
    solid = strokes >= 0.5  # MNIST's box is that of the solid ink, not of its faint edge
    rows, cols = np.flatnonzero(solid.any(1)), np.flatnonzero(solid.any(0))
    fit = DIGIT_BOX / max(rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1)  # output pixels per work pixel
    view = IMAGE_SIZE / fit  # work pixels across the output
    corner = []  # (top, left): where the output's top-left corner falls on the strokes
    for axis, ink in ((1, rows), (0, cols)):
        mass = strokes.sum(axis, dtype=np.float64)  # float32 sums would drift
        com = float(mass @ _indices(mass.size) / mass.sum()) + 0.5  # pixel edges at whole numbers
        # Keep the solid box inside the 28 x 28 field, as MNIST did.
        corner.append(min(max(com - (TARGET_COM + 0.5) / fit, ink[-1] + 1 - view), ink[0]))
    # The output may look beyond the strokes' array: give it paper to see there (PIL's box must lie inside).
    beyond = max(0.0, -corner[0], -corner[1], corner[0] + view - strokes.shape[0], corner[1] + view - strokes.shape[1])
    pad = math.ceil(beyond) + 1
    top, left = corner[0] + pad, corner[1] + pad
    paper = _pad(strokes, pad, np.float32)
    picture = Image.frombuffer("F", paper.shape[::-1], paper, "raw", "F", 0, 1)  # shares the array's memory
    digit = picture.resize((IMAGE_SIZE, IMAGE_SIZE), DOWNSCALE, box=(left, top, left + view, top + view))
    digit = np.frombuffer(digit.tobytes(), np.float32).reshape(IMAGE_SIZE, IMAGE_SIZE)  # asarray costs more
    return (np.clip(digit, 0.0, 1.0) * 255).round().astype(np.uint8)


@functools.cache
def _normalized() -> np.ndarray:
    """(256,) float32: what `normalize` makes of each uint8 value, to look pixels up rather than compute them."""
    return normalize(torch.arange(256, dtype=torch.uint8)[None]).reshape(256).numpy()


def digit_sketch(canvas: Canvas, keep: np.ndarray) -> Sketch | None:
    """MNIST-style preprocessing of the ink under the coarse mask `keep` (h, w) bool; None if it is no digit."""
    found = stroke_mask(canvas, keep)
    if found is None:
        return None
    mask, box = found
    inside = inner_distance(mask)  # measures the strokes, and thins them if they are too fat
    ratio, width = stroke_ratio(mask, inside)
    if ratio > MAX_STROKE_RATIO:
        return None
    image = _fit(restroke(mask, width, inside))  # (28, 28) uint8
    tensor = torch.from_numpy(_normalized()[image])[None, None]  # (1, 1, 28, 28)
    return Sketch(tensor=tensor, image=image, box=box)


def sketch_to_tensor(value: object) -> Sketch | None:
    """A drawing -> its MNIST-style Sketch; None for an empty canvas or a stray speck; ValueError for garbage."""
    canvas = read_canvas(value)
    if canvas is None:
        return None
    labels, pieces = ink_pieces(canvas)
    if not pieces:
        return None
    return digit_sketch(canvas, labels > 0)
