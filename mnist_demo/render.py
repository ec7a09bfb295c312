"""Pictures for people: the 28 x 28 input enlarged with visible pixels, saliency heatmaps, galleries.

All functions take and return numpy arrays (uint8 RGB), so the app can hand them straight to Gradio.

    python -c "import numpy as np, mnist_demo.render as r; print(r.enlarge(np.zeros((28, 28), np.uint8)).shape)"
"""

from __future__ import annotations

import numpy as np

PIXEL_SCALE = 8  # screen pixels per input pixel: 28 -> 224, large enough to see every pixel
GRID_SHADE = 0.55  # grid lines darken a pixel's edge to this share, so each input pixel stands apart
DIGIT_GAP = 8  # screen pixels between the digits of a number
POSITIVE = np.array([230, 60, 40], np.float32)  # red: ink here pushed towards the predicted digit
NEGATIVE = np.array([40, 120, 240], np.float32)  # blue: ink here pushed away from it
HEAT_OPACITY = 0.85  # opacity of the strongest attribution over the dimmed digit


def _grid(rgb: np.ndarray, scale: int) -> np.ndarray:
    """Upscale (28, 28, 3) float by `scale` with nearest neighbours and draw pixel edges."""
    big = rgb.repeat(scale, axis=0).repeat(scale, axis=1)
    edge = np.zeros(big.shape[:2], bool)
    edge[scale - 1 :: scale, :] = True
    edge[:, scale - 1 :: scale] = True
    big[edge] = big[edge] * GRID_SHADE + 40 * (1 - GRID_SHADE)  # a dark grey line, visible on black too
    return big


def enlarge(image: np.ndarray, scale: int = PIXEL_SCALE) -> np.ndarray:
    """(28, 28) uint8 white-on-black -> (28*scale, 28*scale, 3) uint8 with visible pixels."""
    rgb = np.repeat(image.astype(np.float32)[..., None], 3, axis=2)
    return _grid(rgb, scale).astype(np.uint8)


def heatmap(image: np.ndarray, attribution: np.ndarray, scale: int = PIXEL_SCALE) -> np.ndarray:
    """The digit dimmed in grey with red (pushed towards) and blue (pushed away) pixels over it."""
    base = np.repeat(image.astype(np.float32)[..., None] * 0.35, 3, axis=2)  # (28, 28, 3)
    peak = float(np.abs(attribution).max())
    strength = np.abs(attribution) / peak if peak > 0 else np.zeros_like(attribution)
    colour = np.where((attribution >= 0)[..., None], POSITIVE, NEGATIVE)
    alpha = (HEAT_OPACITY * np.sqrt(strength))[..., None]  # sqrt: weak but real evidence stays visible
    return _grid(base * (1 - alpha) + colour * alpha, scale).astype(np.uint8)


def side_by_side(pictures: list[np.ndarray], gap: int = DIGIT_GAP) -> np.ndarray:
    """Join equally tall (H, W, 3) pictures left to right with a white gap between them."""
    height = pictures[0].shape[0]
    spacer = np.full((height, gap, 3), 255, np.uint8)
    parts = [p for picture in pictures for p in (picture, spacer)][:-1]
    return np.concatenate(parts, axis=1)


def gallery_tile(image: np.ndarray, scale: int = 3) -> np.ndarray:
    """A small enlarged digit for galleries (no grid: at this size the lines would hide the strokes)."""
    return np.repeat(image.repeat(scale, axis=0).repeat(scale, axis=1)[..., None], 3, axis=2)


# ---------------------------------------------------------------------------------------------------
# Weights and responses as tiles


TILE_GAP = 3  # white screen pixels between tiles
TILE_ZERO = np.array([236, 236, 236], np.float32)  # a weight or response of 0: light grey, apart from the gaps


def diverging(values: np.ndarray) -> np.ndarray:
    """(h, w) signed -> (h, w, 3) float: red positive, blue negative, light grey zero, scaled to the largest |value|."""
    values = np.nan_to_num(values.astype(np.float32))
    peak = float(np.abs(values).max())
    share = values / peak if peak > 0 else np.zeros_like(values)
    colour = np.where((share >= 0)[..., None], POSITIVE, NEGATIVE)
    strength = np.abs(share)[..., None]
    return TILE_ZERO * (1 - strength) + colour * strength


def tiles(arrays: np.ndarray, scale: int = 3, columns: int | None = None, gap: int = TILE_GAP) -> np.ndarray:
    """(k, h, w) signed arrays -> one uint8 RGB grid of them, each scaled to its own largest |value|.

    Per-tile scaling shows each unit's pattern, whatever its size: untrained weights look like noise,
    trained ones like strokes. Used for the MLP's hidden units (28x28 weights), the CNN's 3x3 filters
    and their responses to a drawing (see `mnist_demo.filters`).
    """
    if arrays.ndim != 3 or len(arrays) == 0:
        raise ValueError(f"expected a non-empty stack (k, h, w), got {arrays.shape}")
    k, h, w = arrays.shape
    columns = columns or int(np.ceil(np.sqrt(k)))
    rows = int(np.ceil(k / columns))
    th, tw = h * scale, w * scale
    grid = np.full((rows * (th + gap) - gap, columns * (tw + gap) - gap, 3), 255, np.uint8)
    for i, array in enumerate(arrays):
        r, c = divmod(i, columns)
        tile = diverging(array).repeat(scale, axis=0).repeat(scale, axis=1)
        grid[r * (th + gap) : r * (th + gap) + th, c * (tw + gap) : c * (tw + gap) + tw] = tile
    return grid
