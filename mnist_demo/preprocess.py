"""Drawing -> MNIST-style input: owns everything between a canvas and the (1, 1, 28, 28) tensor.

It does what MNIST did to NIST's scans: crop to the ink, scale it to fit a 20 x 20 box keeping the
aspect ratio, and paste it into 28 x 28 so that the centre of mass sits in the middle, white on black.
Before scaling it redraws the strokes at MNIST's typical width relative to the digit, so a thin brush
on a large canvas and a fat one on a small canvas give the same picture. Pure: no Gradio in here.

    python -m pytest tests/test_preprocess.py
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from scipy import ndimage

from mnist_demo.canvas import read_pixels
from mnist_demo.data import DIGIT_BOX, IMAGE_SIZE, normalize

COARSE_SIDE = 160  # the canvas is box-reduced to about this many pixels a side to find the ink
# A 1-px stroke covers 1/factor of each coarse pixel it crosses; a coarse pixel with half that much is ink.
COARSE_LEVEL = 0.5
WORK_SIDE = 64  # the digit's longest side while its strokes are redrawn, about 3x the 20-px box (80 reads no better)
INK_LEVEL = 0.5  # a work pixel half covered by ink is inside a stroke (MNIST's 20-px box is its ink at 0.5)
FAINT = 0.05  # a work pixel with less ink than this holds none (scaled down for thin strokes on big canvases)
MIN_CONTRAST = 0.1  # ink weaker than this (share of black on white) is paper noise: the canvas is empty
MIN_DIGIT_FRACTION = 0.03  # ink spanning less of the canvas's shorter side than this is a stray speck
# Stroke width over the digit's longest side: MNIST's quartiles, measured by this very pipeline on its
# training digits (tests/test_preprocess.py checks them). Strokes outside are redrawn to the nearest bound;
# strokes inside keep their width, as MNIST's writers' pens varied too.
STROKE_RANGE = (0.109, 0.147)
MAX_STROKE_RATIO = 0.5  # thicker than this for its size is a dab or a blob, not a digit (MNIST's maximum: 0.44)
MIN_STROKE_PX = 1.0  # never thin a stroke below one work pixel, whatever the estimate says
DOWNSCALE = Image.Resampling.BOX  # 4x down to the 20-px box: averaging gives edges as soft as MNIST's, no softer
TARGET_COM = 14.0  # MNIST's mean centre of mass, row and column, in pixel indices (measured: 13.99, 14.00)


@dataclass(frozen=True)
class Sketch:
    """One digit as the model sees it, and where it was on the canvas."""

    tensor: torch.Tensor  # (1, 1, 28, 28) float, normalised with MNIST's mean and std
    image: np.ndarray  # (28, 28) uint8, white ink on black, for display
    box: tuple[int, int, int, int]  # (left, top, right, bottom) of the ink in canvas pixels


@dataclass(frozen=True)
class Canvas:
    """A validated drawing, ready to cut digits from: its pixels, its paper and a coarse ink map."""

    source: Image.Image  # "L", "RGB" or "RGBX" at canvas size; ink is what differs from `paper`
    paper: np.ndarray  # (C,) the paper's value in each channel of `source`
    factor: int  # canvas pixels per coarse pixel
    coarse: np.ndarray  # (h, w) bool, ink at 1/factor scale
    full_ink: float  # contrast of the ink itself in [0, 1], the 100% of a stroke pixel


def contrast(pixels: np.ndarray, paper: np.ndarray) -> np.ndarray:
    """(h, w) or (h, w, C) pixels -> (h, w) float32 in [0, 1]: the largest channel difference to the paper."""
    if pixels.ndim == 2:
        return np.abs(pixels.astype(np.float32) - np.float32(paper[0])) / 255.0
    # Channel by channel: numpy reduces a short last axis slowly. RGBX's padding byte is not a colour.
    diffs = [np.abs(pixels[..., c].astype(np.float32) - np.float32(paper[c])) for c in range(paper.size)]
    return functools.reduce(np.maximum, diffs) / 255.0


def _ink_plane(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Find the paper (the border's median) and the pixels in which ink is a difference from it.

    Returns (plane, paper): plane (H, W) or (H, W, C) uint8; paper (C,) its value in each colour channel.
    """
    border = np.concatenate([pixels[0], pixels[-1], pixels[1:-1, 0], pixels[1:-1, -1]])  # (n,) or (n, C)
    if pixels.ndim == 2:
        return pixels, np.median(border, axis=0, keepdims=True).round()
    if pixels.shape[2] == 3:
        return pixels, np.median(border, axis=0).round()
    if np.median(border[:, 3]) < 128:  # transparent paper: ink is whatever is opaque, whatever its colour
        return np.ascontiguousarray(pixels[..., 3]), np.zeros(1)
    paper = np.median(border[:, :3], axis=0).round()
    if pixels[..., 3].min() < 255:  # see-through holes in opaque paper show paper: flatten first
        flat = Image.new("RGBA", (pixels.shape[1], pixels.shape[0]), (*paper.astype(int).tolist(), 255))
        return np.asarray(Image.alpha_composite(flat, Image.fromarray(pixels)).convert("RGB")), paper
    return np.ascontiguousarray(pixels), paper  # opaque RGBA: the alpha channel is ignored (RGBX below)


def read_canvas(value: object) -> Canvas | None:
    """Validate a drawing (Sketchpad dict, array or PIL image) and map its ink; None when blank."""
    pixels = read_pixels(value)  # raises ValueError for anything that is not a canvas
    if pixels is None:
        return None
    plane, paper = _ink_plane(pixels)
    height, width = plane.shape[:2]
    if plane.ndim == 3 and plane.shape[2] == 4:
        # Read as RGBX: shares the array's memory and skips PIL's premultiplied-alpha resampling.
        source = Image.frombuffer("RGBX", (width, height), plane, "raw", "RGBX", 0, 1)
    else:
        source = Image.fromarray(plane)
    factor = max(1, -(-max(height, width) // COARSE_SIDE))
    coarse = contrast(np.asarray(source.reduce(factor)), paper)  # (h, w)
    # The ink's own contrast, from full-resolution pixels on the coarse grid (reducing dilutes thin strokes).
    grid = plane[::factor, ::factor]  # a view
    channels = [grid] if grid.ndim == 2 else [grid[..., c] for c in range(paper.size)]
    full_ink = max(max(p - c.min(), c.max() - p) for c, p in zip(channels, paper, strict=True)) / 255.0
    full_ink = float(max(full_ink, coarse.max()))
    if full_ink < MIN_CONTRAST:
        return None
    return Canvas(source, paper, factor, coarse >= COARSE_LEVEL / factor * full_ink, full_ink)


def ink_pieces(canvas: Canvas) -> tuple[np.ndarray, list[tuple[slice, slice]]]:
    """Label the coarse ink's connected pieces, stray specks dropped: (labels (h, w) int, (rows, cols) per label)."""
    labels, count = ndimage.label(canvas.coarse, structure=np.ones((3, 3)))  # diagonal neighbours connect
    min_extent = MIN_DIGIT_FRACTION * min(canvas.source.size) / canvas.factor
    found = ndimage.find_objects(labels)
    extents = [max(rows.stop - rows.start, cols.stop - cols.start) for rows, cols in found]
    kept = [i for i, extent in enumerate(extents) if extent >= min_extent]
    renumber = np.zeros(count + 1, labels.dtype)
    renumber[np.array(kept, int) + 1] = np.arange(1, len(kept) + 1)
    return renumber[labels], [found[i] for i in kept]


def stroke_width(mask: np.ndarray) -> float:
    """Mean stroke width of a bool mask in pixels: a stroke w wide has a mean inner distance of w / 4 + 1/2."""
    inside = ndimage.distance_transform_edt(np.pad(mask, 1))  # padded: the array's edge is paper
    return float(4.0 * (inside[inside > 0].mean() - 0.5))


def stroke_ratio(mask: np.ndarray) -> tuple[float, float]:
    """(stroke width / longest side, stroke width) of the strokes in a bool mask cropped to its ink."""
    width = stroke_width(mask)
    return width / max(mask.shape), width


def restroke(mask: np.ndarray, width: float) -> np.ndarray:
    """Redraw strokes `width` wide within MNIST's range for their size: (h, w) bool -> (h', w') float in [0, 1].

    The mask is cropped to its ink. Width changes by a signed distance to the stroke edge, which grows or
    shrinks every stroke by the same amount and keeps half a pixel of anti-aliasing at the new edge.
    """
    side = max(mask.shape)
    ratio = float(np.clip(width / side, *STROKE_RANGE))
    if ratio == width / side:  # already within MNIST's range: keep the strokes as drawn
        return np.pad(mask, 1).astype(np.float32)
    # The ratio counts the stroke in the box too: target = ratio * (side - width + target).
    target = max(ratio * (side - width) / (1 - ratio), MIN_STROKE_PX)
    grow = (target - width) / 2  # per side
    mask = np.pad(mask, int(np.ceil(max(grow, 0.0))) + 1)  # room to grow, and paper all round
    if grow >= 0:
        outside = ndimage.distance_transform_edt(~mask)
        return np.where(mask, 1.0, np.clip(1.0 - outside + grow, 0.0, 1.0)).astype(np.float32)
    inside = ndimage.distance_transform_edt(mask)
    return np.clip(inside + grow, 0.0, 1.0).astype(np.float32)


def _work_crop(canvas: Canvas, keep: np.ndarray) -> tuple[np.ndarray, tuple[float, float, float]]:
    """Cut the kept coarse ink from the canvas at work scale: (ink (h, w) float in [0, 1], (left, top, scale))."""
    rows, cols = np.flatnonzero(keep.any(1)), np.flatnonzero(keep.any(0))
    k, (width, height) = canvas.factor, canvas.source.size
    left, top = max(0, (cols[0] - 1) * k), max(0, (rows[0] - 1) * k)
    right, bottom = min(width, (cols[-1] + 2) * k), min(height, (rows[-1] + 2) * k)
    extent = (max(cols[-1] - cols[0], rows[-1] - rows[0]) + 1) * k  # the ink's longest side in canvas pixels
    if extent >= WORK_SIDE:  # PIL's reduce is a box filter, several times faster than resize
        step = round(extent / WORK_SIDE)
        pixels, scale = np.asarray(canvas.source.reduce(step, box=(left, top, right, bottom))), 1.0 / step
    else:  # a small digit on a small canvas: enlarge it smoothly so the strokes can be redrawn finely
        scale = WORK_SIDE / extent
        size = (max(1, round((right - left) * scale)), max(1, round((bottom - top) * scale)))
        box = (left, top, right, bottom)
        pixels = np.asarray(canvas.source.resize(size, Image.Resampling.BILINEAR, box=box))
    ink = contrast(pixels, canvas.paper) / canvas.full_ink
    # Only ink from the kept pieces: neighbours and specks inside the crop would move the box.
    window = (slice(top // k, -(-bottom // k)), slice(left // k, -(-right // k)))
    if (canvas.coarse[window] & ~keep[window]).any():
        near = ndimage.binary_dilation(keep[window], structure=np.ones((3, 3)))
        # left and top are whole coarse pixels, so work pixel i lies in window pixel (i + 1/2) / scale / k.
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
    box = (int(left + cols[0] / scale), int(top + rows[0] / scale),
           int(np.ceil(left + (cols[-1] + 1) / scale)), int(np.ceil(top + (rows[-1] + 1) / scale)))
    return mask[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1], box


def _fit(strokes: np.ndarray) -> np.ndarray:
    """Strokes (h, w) float at work scale -> (28, 28) uint8: solid ink scaled to fit the 20-px box, centre of
    mass at MNIST's. One anti-aliased resize does both, so the placement is exact to a fraction of a pixel."""
    solid = strokes >= 0.5  # MNIST's box is that of the solid ink, not of its faint edge
    rows, cols = np.flatnonzero(solid.any(1)), np.flatnonzero(solid.any(0))
    fit = DIGIT_BOX / max(rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1)  # output pixels per work pixel
    view = IMAGE_SIZE / fit  # work pixels across the output
    com = np.array(ndimage.center_of_mass(strokes)) + 0.5  # (row, col), pixel edges at whole numbers
    corner = com - (TARGET_COM + 0.5) / fit  # where the output's top-left corner falls on the strokes
    # Keep the solid box inside the 28 x 28 field, as MNIST did.
    corner = np.clip(corner, [rows[-1] + 1 - view, cols[-1] + 1 - view], [rows[0], cols[0]])
    pad = int(np.ceil(view))  # the output may look beyond the strokes' array: give it paper to see
    top, left = corner + pad
    picture = Image.fromarray(np.pad(strokes, pad))  # float32 -> mode "F"
    digit = np.asarray(picture.resize((IMAGE_SIZE, IMAGE_SIZE), DOWNSCALE, box=(left, top, left + view, top + view)))
    return (np.clip(digit, 0.0, 1.0) * 255).round().astype(np.uint8)


def digit_sketch(canvas: Canvas, keep: np.ndarray) -> Sketch | None:
    """MNIST-style preprocessing of the ink under the coarse mask `keep` (h, w) bool; None if it is no digit."""
    found = stroke_mask(canvas, keep)
    if found is None:
        return None
    mask, box = found
    ratio, width = stroke_ratio(mask)
    if ratio > MAX_STROKE_RATIO:
        return None
    image = _fit(restroke(mask, width))  # (28, 28) uint8
    tensor = normalize(torch.from_numpy(image)[None])  # (1, 1, 28, 28)
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
