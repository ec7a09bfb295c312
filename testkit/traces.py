"""MNIST digits redrawn as a person would: each digit's skeleton traced into pen strokes.

`trace` turns a 28 x 28 digit into polylines along its skeleton (bench/canvas_robustness.py strokes them
onto canvases); `pad_strokes` and `pad_number` place traced digits on the stroke pad as its value holds
them (canvas pixels 0 .. 280, a t in ms per point), at a random size and place, for the page's reading
to be compared with the server's (tests/test_page_reading.py) and timed (bench/page_reading.py).

    python -c "from testkit.traces import trace; import numpy as np; print(trace(np.eye(28, dtype=np.uint8) * 255))"
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from scipy import ndimage
from skimage.morphology import skeletonize

from mnist_demo.strokes import BRUSH, PAD_SIDE

TRACE_SCALE = 6  # the 28 x 28 digit is enlarged this much, smoothly, before its skeleton is traced
PATH_STEP = 3  # keep every 3rd skeleton pixel (half an MNIST pixel apart) as a pen position
SMOOTHING = 2.25  # Gaussian blur (enlarged pixels) before thresholding, so the skeleton has no staircase
PAD_HEIGHT = (0.3, 0.9)  # a digit alone on the pad: its height as a share of the pad's side
NUMBER_HEIGHT = (0.25, 0.4)  # each digit of a number: room for up to four side by side
GAP = (1.2, 2.5)  # between the boxes of a number's digits, in pen widths (strokes.TOUCH joins at 1.1)
POINT_MS = 8  # the pad's t between points (a pointer sends a sample every few ms)

Strokes = list[list[list[float]]]


def trace(digit: np.ndarray) -> list[np.ndarray]:
    """A (28, 28) uint8 digit -> its skeleton as pen strokes: a list of (L, 2) arrays of (x, y) in 28-pixel units."""
    size = digit.shape[0] * TRACE_SCALE
    big = np.asarray(Image.fromarray(digit).resize((size, size), Image.Resampling.BICUBIC), np.float32) / 255.0
    skeleton = skeletonize(ndimage.gaussian_filter(big, SMOOTHING) >= 0.5)
    ys, xs = np.nonzero(skeleton)
    index = np.full(np.add(skeleton.shape, 2), -1)  # padded, so that neighbours of edge pixels exist
    index[ys + 1, xs + 1] = np.arange(len(ys))
    neighbours = [[] for _ in ys]
    for dy, dx in ((0, 1), (1, -1), (1, 0), (1, 1)):  # each neighbouring pair once
        other = index[ys + 1 + dy, xs + 1 + dx]
        for a, b in zip(np.flatnonzero(other >= 0), other[other >= 0], strict=True):
            neighbours[a].append(b)
            neighbours[b].append(a)
    points = (np.stack([xs, ys], 1) + 0.5) / TRACE_SCALE
    # Every PATH_STEP-th pixel of a path is enough for the pen, and drawing joints is the slow part.
    return [points[path[:-1:PATH_STEP] + path[-1:]] for path in _walk(neighbours)]


def _walk(neighbours: list[list[int]]) -> list[list[int]]:
    """Split a pixel graph into polylines that run between ends and junctions (then round any closed loops)."""
    seen: set[tuple[int, int]] = set()
    paths = []
    starts = [i for i, n in enumerate(neighbours) if len(n) != 2] + list(range(len(neighbours)))
    for start in starts:
        for nxt in neighbours[start]:
            if (start, nxt) in seen:
                continue
            path, prev, node = [start], start, nxt
            while True:
                seen.update({(prev, node), (node, prev)})
                path.append(node)
                onward = [n for n in neighbours[node] if (node, n) not in seen]
                if len(neighbours[node]) != 2 or not onward:
                    break
                prev, node = node, onward[0]
            paths.append(path)
    return paths or [[i] for i in range(len(neighbours))]


def _on_pad(strokes: list[np.ndarray], height: float, corner: np.ndarray) -> Strokes:
    """Traced strokes scaled to `height` pad pixels tall, top-left of their box at `corner`, as the pad's value."""
    points = np.concatenate(strokes)
    low, tall = points.min(0), max(float(np.ptp(points[:, 1])), 1e-3)
    scale = height / tall
    placed = []
    for xy in strokes:
        xy = np.clip((xy - low) * scale + corner, 0, PAD_SIDE).round(2)  # the pad keeps 0.01 px
        placed.append([[float(x), float(y), i * POINT_MS] for i, (x, y) in enumerate(xy)])
    return placed


def _size(strokes: list[np.ndarray]) -> np.ndarray:
    """(width, height) of traced strokes, in 28-pixel units, a height of at least a sliver."""
    points = np.concatenate(strokes)
    return np.maximum(np.ptp(points, 0), 1e-3)


def pad_strokes(strokes: list[np.ndarray], rng: np.random.Generator) -> Strokes:
    """One traced digit on the pad, at a random height (PAD_HEIGHT) and place, the pen inside the paper."""
    width, height = _size(strokes)
    tall = rng.uniform(*PAD_HEIGHT) * PAD_SIDE
    tall = min(tall, (PAD_SIDE - BRUSH) * height / width)  # a wide digit is shrunk to fit across
    room = PAD_SIDE - BRUSH - np.array([tall * width / height, tall])
    return _on_pad(strokes, tall, BRUSH / 2 + rng.uniform(0, 1, 2) * room)


def pad_number(digits: list[list[np.ndarray]], rng: np.random.Generator) -> Strokes:
    """Traced digits side by side on the pad, left to right, a random height and gaps (GAP pen widths)."""
    sizes = [_size(strokes) for strokes in digits]
    tall = rng.uniform(*NUMBER_HEIGHT) * PAD_SIDE
    gaps = rng.uniform(*GAP, len(digits) - 1) * BRUSH
    widths = [tall * w / h for w, h in sizes]
    span = sum(widths) + gaps.sum()
    fit = min(1.0, (PAD_SIDE - 2 * BRUSH) / span)  # shrink the whole number if it is too wide
    tall, widths, gaps = tall * fit, [w * fit for w in widths], gaps * fit
    top = BRUSH / 2 + rng.uniform(0, 1) * (PAD_SIDE - BRUSH - tall)
    x = BRUSH / 2 + rng.uniform(0, 1) * (PAD_SIDE - BRUSH - span * fit)
    placed: Strokes = []
    for i, strokes in enumerate(digits):
        placed += _on_pad(strokes, tall, np.array([x, top]))
        x += widths[i] + (gaps[i] if i < len(gaps) else 0)
    return placed
