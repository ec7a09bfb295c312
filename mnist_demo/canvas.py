"""What a drawing arrives as -> one validated uint8 pixel array; owns every check on untrusted input.

Accepted: a Gradio Sketchpad / ImageEditor value (`{"background", "layers", "composite"}`, any part
None or empty), a numpy array (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) of uint8, integers in 0..255,
bools or floats in [0, 1], or a PIL image of any mode. Sizes and types are checked from headers before
anything is converted, so a huge or malformed value is refused without allocating it.

    python -m pytest tests/test_preprocess.py -k garbage
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from mnist_demo.data import IMAGE_SIZE

MIN_SIDE = IMAGE_SIZE  # smaller than MNIST itself cannot hold a readable digit
MAX_SIDE = 4096  # a canvas side beyond this is a mistake or an attack; 4096^2 RGBA is already 64 MB
CHANNELS = (1, 3, 4)  # gray, RGB, RGBA
SKETCH_KEYS = frozenset({"background", "layers", "composite"})
# PIL modes read as they are, and what the others become before reading.
NATIVE_MODES = ("L", "RGB", "RGBA")
WITH_ALPHA = ("P", "PA", "LA", "La", "RGBa")  # palette or alpha modes keep their transparency


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


def _from_sketch(value: dict) -> np.ndarray | None:
    """A Sketchpad / ImageEditor dict -> pixels; the composite when present, else background + layers."""
    unknown = set(value) - SKETCH_KEYS
    if unknown or not value:
        raise ValueError(f"not a Sketchpad value: expected keys {sorted(SKETCH_KEYS)}, got {sorted(map(str, value))}")
    if value.get("composite") is not None:
        return _read_image(value["composite"], "composite")
    layers = value.get("layers") or []
    if not isinstance(layers, Sequence) or isinstance(layers, (str, bytes)):
        raise ValueError(f"sketch 'layers' must be a list of images, got {type(layers).__name__}")
    parts = [value.get("background"), *layers]
    parts = [_read_image(part, "background or layer") for part in parts if part is not None]
    return _composite(parts) if parts else None


def _read_image(value: object, what: str) -> np.ndarray:
    if isinstance(value, Image.Image):
        return _from_pil(value)
    if isinstance(value, np.ndarray):
        return _from_numpy(value)
    raise ValueError(f"cannot read a drawing from a {what} of type {type(value).__name__}: "
                     f"expected a numpy array or a PIL image")


def read_pixels(value: object) -> np.ndarray | None:
    """A drawing in any accepted form -> uint8 (H, W), (H, W, 3) or (H, W, 4); None for no drawing at all."""
    if value is None:
        return None
    if isinstance(value, dict):
        return _from_sketch(value)
    return _read_image(value, "value")
