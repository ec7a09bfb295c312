"""What a drawing arrives as -> one validated uint8 pixel array, and where on it the ink is.

Accepted: a Gradio Sketchpad / ImageEditor value (`{"background", "layers", "composite"}`, any part
None or empty), a numpy array (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) of uint8, integers in 0..255,
bools or floats in [0, 1], or a PIL image of any mode. Sizes and types are checked from headers before
anything is converted, so a huge or malformed value is refused without allocating it; this module owns
every check on untrusted input.

The paper is the border's colour and ink is whatever differs from it. `read_canvas` first finds the box
of every pixel that is not paper, with comparisons of whole pixels, and maps the ink only inside it: a
big canvas costs little more than the ink on it.

    python -m pytest tests/test_preprocess.py -k "garbage or empty"
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

from mnist_demo.data import IMAGE_SIZE

MIN_SIDE = IMAGE_SIZE  # smaller than MNIST itself cannot hold a readable digit
MAX_SIDE = 4096  # a canvas side beyond this is a mistake or an attack; 4096^2 RGBA is already 64 MB
CHANNELS = (1, 3, 4)  # gray, RGB, RGBA
# A Sketchpad value's layers: the app's pad sends one, an editor script a few. Counted before any is read.
MAX_LAYERS = 4
# Pixels of one value's background and layers together (they are read only without a composite): two
# full-size canvases, so that a value costs at most a bounded few times one canvas however it is split.
MAX_SKETCH_PIXELS = 2 * MAX_SIDE * MAX_SIDE
SKETCH_KEYS = frozenset({"background", "layers", "composite"})
# PIL modes read as they are, and what the others become before reading.
NATIVE_MODES = ("L", "RGB", "RGBA")
WITH_ALPHA = ("P", "PA", "LA", "La", "RGBa")  # palette or alpha modes keep their transparency
COARSE_SIDE = 160  # the canvas is box-reduced to about this many pixels a side to find the ink
# A 1-px stroke covers 1/factor of each coarse pixel it crosses; a coarse pixel with half that much is ink.
COARSE_LEVEL = 0.5
MIN_CONTRAST = 0.1  # ink weaker than this (share of black on white) is paper noise: the canvas is empty
MIN_DIGIT_FRACTION = 0.03  # ink spanning less of the canvas's shorter side than this is a stray speck
EIGHT_NEIGHBOURS = np.ones((3, 3), bool)  # pixels touching at a corner are one piece of ink
OPAQUE = 0xFF000000  # an RGBA pixel read as a little-endian uint32 is at least this when its alpha is 255


def _check_size(height: int, width: int) -> None:
    for name, side in (("height", height), ("width", width)):
        if not MIN_SIDE <= side <= MAX_SIDE:
            raise ValueError(f"canvas {name} must be {MIN_SIDE} to {MAX_SIDE} pixels, got {side}")


def _from_numpy(array: np.ndarray) -> np.ndarray:
    """Check shape, dtype and values, in that order, and return uint8 (H, W) or (H, W, 3 | 4)."""
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in CHANNELS):
        raise ValueError(f"a canvas array must be (H, W) or (H, W, C) with C in {CHANNELS}, got shape {array.shape}")
    _check_size(*array.shape[:2])
    kind = array.dtype.kind
    if kind not in "buif":
        raise ValueError(f"a canvas array must hold numbers (uint8, or floats in [0, 1]), got dtype {array.dtype}")
    if kind == "b":
        return array.astype(np.uint8) * 255
    if array.dtype == np.uint8:
        return array
    low, high = array.min(), array.max()  # reductions allocate nothing, unlike isfinite()
    if kind == "f":
        if not (np.isfinite(low) and np.isfinite(high)):
            raise ValueError("canvas array holds NaN or infinite values")
        if low < 0.0 or high > 1.0:
            raise ValueError(f"a float canvas must lie in [0, 1], found values from {low:g} to {high:g}")
        return (array * 255.0 + 0.5).astype(np.uint8)
    if low < 0 or high > 255:
        raise ValueError(f"an integer canvas must lie in 0..255, found values from {low} to {high}")
    return array.astype(np.uint8)


def _from_pil(image: Image.Image) -> np.ndarray:
    """Any PIL mode -> uint8 array; the size comes from the header, before the pixels are decoded."""
    _check_size(image.height, image.width)
    mode = image.mode
    if mode in WITH_ALPHA or (mode in ("L", "RGB") and "transparency" in image.info):  # a PNG's tRNS colour
        return np.asarray(image.convert("RGBA"))
    if mode in NATIVE_MODES:
        return np.asarray(image)
    if mode == "1":
        return np.asarray(image.convert("L"))
    if mode.startswith("I;16"):  # 16-bit gray: keep the top byte
        return (np.asarray(image).astype(np.uint16) >> 8).astype(np.uint8)
    if mode in ("I", "F"):
        pixels = np.asarray(image)
        if mode == "I" and pixels.max() > 255:  # 16-bit PNGs open as "I" with values up to 65535
            return _from_numpy(pixels.astype(np.float64) / 65535.0)
        return _from_numpy(pixels if mode == "F" else pixels.astype(np.int64))
    return np.asarray(image.convert("RGB"))  # CMYK, YCbCr, LAB, HSV, RGBX


def _composite(parts: list[np.ndarray]) -> np.ndarray:
    """Stack a background and layers (uint8 arrays, same size) as the editor shows them: RGBA (H, W, 4)."""
    shapes = {part.shape[:2] for part in parts}
    if len(shapes) > 1:
        raise ValueError(f"sketch background and layers differ in size: {sorted(shapes)}")
    images = [Image.fromarray(part).convert("RGBA") for part in parts]
    out = images[0]
    for layer in images[1:]:
        out = Image.alpha_composite(out, layer)
    return np.asarray(out)


def check_layer_count(count: int) -> None:
    """Refuse a Sketchpad value with more than `MAX_LAYERS` layers (before any of them is read)."""
    if count > MAX_LAYERS:
        raise ValueError(f"a drawing may have at most {MAX_LAYERS} layers, this one has {count}")


def check_sketch_parts(sizes: Sequence[tuple[int, int]]) -> None:
    """Refuse background and layers, given their (width, height), that cannot be stacked or cost too much.

    Each side is checked, then that they match (the editor's parts are one canvas), then their total.
    """
    for width, height in sizes:
        _check_size(height, width)
    if len(set(sizes)) > 1:
        raise ValueError(f"sketch background and layers differ in size: {sorted(set(sizes))}")
    total = sum(width * height for width, height in sizes)
    if total > MAX_SKETCH_PIXELS:
        raise ValueError(
            f"the background and layers hold {total:,} pixels together; at most {MAX_SKETCH_PIXELS:,} are read"
        )


def _part_size(part: object) -> tuple[int, int] | None:
    """(width, height) of an array or PIL image, read without converting it; None for anything else."""
    if isinstance(part, Image.Image):
        return part.size
    if isinstance(part, np.ndarray) and part.ndim >= 2:
        return int(part.shape[1]), int(part.shape[0])
    return None


def _from_sketch(value: dict) -> np.ndarray | None:
    """A Sketchpad / ImageEditor dict -> pixels; the composite when present, else background + layers."""
    unknown = set(value) - SKETCH_KEYS
    if unknown or not value:
        raise ValueError(f"not a Sketchpad value: expected keys {sorted(SKETCH_KEYS)}, got {sorted(map(str, value))}")
    layers = value.get("layers") or []
    if not isinstance(layers, Sequence) or isinstance(layers, (str, bytes)):
        raise ValueError(f"sketch 'layers' must be a list of images, got {type(layers).__name__}")
    check_layer_count(len(layers))
    if value.get("composite") is not None:
        return _read_image(value["composite"], "composite")
    parts = [part for part in (value.get("background"), *layers) if part is not None]
    sizes = [_part_size(part) for part in parts]
    check_sketch_parts([size for size in sizes if size is not None])  # the rest is refused by _read_image
    parts = [_read_image(part, "background or layer") for part in parts]
    return _composite(parts) if parts else None


def _read_image(value: object, what: str) -> np.ndarray:
    if isinstance(value, Image.Image):
        return _from_pil(value)
    if isinstance(value, np.ndarray):
        return _from_numpy(value)
    raise ValueError(
        f"cannot read a drawing from a {what} of type {type(value).__name__}: expected a numpy array or a PIL image"
    )


def read_pixels(value: object) -> np.ndarray | None:
    """A drawing in any accepted form -> uint8 (H, W), (H, W, 3) or (H, W, 4); None for no drawing at all."""
    if value is None:
        return None
    if isinstance(value, dict):
        return _from_sketch(value)
    return _read_image(value, "value")


@dataclass(frozen=True)
class Canvas:
    """A validated drawing, ready to cut digits from: its pixels, its paper and a coarse ink map."""

    source: Image.Image  # "L", "RGB" or "RGBX" at canvas size; ink is what differs from `paper`
    paper: np.ndarray  # (C,) the paper's value in each channel of `source`
    factor: int  # canvas pixels per coarse pixel
    origin: tuple[int, int]  # (left, top) of coarse[0, 0] in canvas pixels, a multiple of `factor`
    level: np.ndarray  # (h, w) float32, the `contrast` of `source` box-reduced by `factor`, over the ink's box
    coarse: np.ndarray  # (h, w) bool, where `level` is ink (beyond the box is bare paper)
    full_ink: float  # contrast of the ink itself in [0, 1], the 100% of a stroke pixel


def contrast(pixels: np.ndarray, paper: np.ndarray) -> np.ndarray:
    """(h, w) or (h, w, C) pixels -> (h, w) float32 in [0, 1]: the largest channel difference to the paper."""
    # Channel by channel: numpy reduces a short last axis slowly. RGBX's padding byte is not a colour.
    channels = [pixels] if pixels.ndim == 2 else [pixels[..., c] for c in range(paper.size)]
    if (paper == 255).all():  # white paper, the usual case: the darkest channel, in uint8 until the end
        return (255 - functools.reduce(np.minimum, channels)).astype(np.float32) / 255.0
    diffs = [np.abs(c.astype(np.float32) - np.float32(p)) for c, p in zip(channels, paper, strict=True)]
    return functools.reduce(np.maximum, diffs) / 255.0


def _ink_plane(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Find the paper (the border's median) and the pixels in which ink is a difference from it.

    Returns (plane, paper): plane (H, W) or (H, W, C) uint8, RGBA only on opaque paper (read as RGBX
    unless it has see-through holes); paper (C,) its value in each colour channel.
    """
    border = np.concatenate([pixels[0], pixels[-1], pixels[1:-1, 0], pixels[1:-1, -1]])  # (n,) or (n, C)
    border = border.reshape(len(border), -1)
    plain = (border[1:] == border[:-1]).all()  # plain paper, the usual case, needs no sorting for its median
    median = border[0].astype(float) if plain else np.median(border, axis=0)
    if pixels.ndim == 2 or pixels.shape[2] == 3:
        return pixels, median.round()
    if median[3] < 128:  # transparent paper: ink is whatever is opaque, whatever its colour
        return np.ascontiguousarray(pixels[..., 3]), np.zeros(1)
    return np.ascontiguousarray(pixels), median[:3].round()


def _flatten(pixels: np.ndarray, paper: np.ndarray) -> np.ndarray:
    """RGBA with see-through holes in opaque paper -> RGB composited on the paper, which the holes show."""
    flat = Image.new("RGBA", (pixels.shape[1], pixels.shape[0]), (*paper.astype(int).tolist(), 255))
    return np.asarray(Image.alpha_composite(flat, Image.fromarray(pixels)).convert("RGB"))


def _differs(values: np.ndarray, paper: int, top: int, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Along `axis` of (n, m) `values` in 0..top: does any differ from `paper`? Also their minima."""
    lows = values.min(axis)
    found = lows < paper
    if paper < top:  # nothing is lighter than white paper: one reduction will do
        found |= values.max(axis) > paper
    return found, lows


def _ink_box(plane: np.ndarray, paper: np.ndarray) -> tuple[tuple[int, int, int, int] | None, bool]:
    """((left, top, right, bottom) of every pixel that is not exactly the paper, None on bare paper;
    whether an RGBA plane has see-through pixels, which differ from the paper and so lie in the box).

    Extremes of rows and columns of whole pixels cost a fraction of the per-channel contrast, so the rest
    looks at the ink's box only.
    """
    height, width = plane.shape[:2]
    rgba = plane.ndim == 3 and plane.shape[2] == 4
    if rgba:  # opaque paper: compare whole pixels, alpha too, as uint32
        values = plane.view("<u4")[..., 0]
        value, top = int.from_bytes(bytes([*paper.astype(int).tolist(), 255]), "little"), 0xFFFFFFFF
    elif plane.ndim == 2 or (paper == paper[0]).all():  # the same paper value in every channel
        values, value, top = plane.reshape(height, -1), int(paper[0]), 255
    else:  # coloured paper in RGB: no cheap test, so the box is the canvas
        return (0, 0, width, height), False
    rows = np.flatnonzero(_differs(values, value, top, axis=1)[0])
    if not rows.size:
        return None, False
    found, lows = _differs(values[rows[0] : rows[-1] + 1], value, top, axis=0)
    cols = np.flatnonzero(found)
    channels = values.shape[1] // width  # RGB rows were flattened to (H, W * 3)
    box = int(cols[0] // channels), int(rows[0]), int(cols[-1] // channels + 1), int(rows[-1] + 1)
    return box, rgba and lows.min() < OPAQUE


def _reach(values: np.ndarray, paper: float) -> float:
    """The largest difference of uint8 `values` from `paper` (on white or black paper one reduction finds it)."""
    darker = paper - values.min() if paper > 0 else 0
    return max(darker, values.max() - paper if paper < 255 else 0)


def read_canvas(value: object) -> Canvas | None:
    """Validate a drawing (Sketchpad dict, array or PIL image) and map its ink; None when blank."""
    pixels = read_pixels(value)  # raises ValueError for anything that is not a canvas
    if pixels is None:
        return None
    plane, paper = _ink_plane(pixels)
    box, see_through = _ink_box(plane, paper)
    if box is None:
        return None
    if see_through:
        plane = _flatten(plane, paper)
    height, width = plane.shape[:2]
    if plane.ndim == 3 and plane.shape[2] == 4:
        # Read as RGBX: shares the array's memory and skips PIL's premultiplied-alpha resampling.
        source = Image.frombuffer("RGBX", (width, height), plane, "raw", "RGBX", 0, 1)
    else:
        source = Image.fromarray(plane)
    k = max(1, -(-max(height, width) // COARSE_SIDE))
    # The map covers the box on the whole canvas's grid, with a coarse pixel of paper all round.
    left, top = max(0, (box[0] // k - 1) * k), max(0, (box[1] // k - 1) * k)
    right, bottom = min(width, (-(-box[2] // k) + 1) * k), min(height, (-(-box[3] // k) + 1) * k)
    level = contrast(np.asarray(source.reduce(k, box=(left, top, right, bottom))), paper)  # (h, w)
    # The ink's own contrast, from full-resolution pixels on the coarse grid (reducing dilutes thin strokes).
    grid = plane[top:bottom:k, left:right:k]  # a view
    channels = [grid] if grid.ndim == 2 else [grid[..., c] for c in range(paper.size)]
    full_ink = max(max(_reach(c, p) for c, p in zip(channels, paper, strict=True)) / 255.0, float(level.max()))
    if full_ink < MIN_CONTRAST:
        return None
    return Canvas(source, paper, k, (left, top), level, level >= COARSE_LEVEL / k * full_ink, full_ink)


def ink_pieces(canvas: Canvas) -> tuple[np.ndarray, list[tuple[slice, slice]]]:
    """Label the coarse ink's connected pieces, stray specks dropped: (labels (h, w) int, (rows, cols) per label)."""
    labels, count = ndimage.label(canvas.coarse, structure=EIGHT_NEIGHBOURS)
    min_extent = MIN_DIGIT_FRACTION * min(canvas.source.size) / canvas.factor
    found = ndimage.find_objects(labels, max_label=count)  # given the count, it need not look for it
    kept = [
        i for i, (rows, cols) in enumerate(found) if max(rows.stop - rows.start, cols.stop - cols.start) >= min_extent
    ]
    if len(kept) == count:  # no specks: the labels stand as they are
        return labels, found
    renumber = np.zeros(count + 1, labels.dtype)
    renumber[np.array(kept, int) + 1] = np.arange(1, len(kept) + 1)
    return renumber[labels], [found[i] for i in kept]
