"""Non-digits to train on: scribbles, shapes, crossings-out and letters, drawn as strokes on a canvas.

Outlier Exposure (Hendrycks, Mazeika and Dietterich, ICLR 2019): a classifier shown things that belong
to no class, with the uniform distribution as their target, learns to give them low top probabilities,
and the reader can then decline them by one threshold on that probability (`mnist_demo.reject`). Each
non-digit here is drawn on a 280 x 280 canvas with a round pen and read by `sketch_to_tensor`, exactly
as a visitor's drawing is, so the network sees them as it will see the real ones.

This is the training generator only. What `python -m bench` measures the decline rate on is made by a
different generator (`testkit/nondigits.py`), from other fonts and other shapes.

    python -c "from mnist_demo.outliers import outlier_images; print(outlier_images(8, seed=0).shape)"
"""

from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image, ImageDraw

from mnist_demo import handfonts
from mnist_demo.data import IMAGE_SIZE
from mnist_demo.preprocess import sketch_to_tensor

SIDE = handfonts.CANVAS_SIDE
BRUSH_RANGE = (6, 24)  # pen width in canvas pixels
# Kinds of non-digit and how often each is drawn.
KINDS = {"letter": 0.35, "scribble": 0.25, "shape": 0.2, "crossed out": 0.2}
SCRIBBLE_POINTS = (7, 16)  # control points of a scribble: enough turns that it reads as no digit


def _pen(image: Image.Image, points: np.ndarray, width: int) -> None:
    """A polyline with round joints and ends, black on the (white) image."""
    pen, r = ImageDraw.Draw(image), width / 2
    for x, y in points:
        pen.ellipse((x - r, y - r, x + r, y + r), fill=0)
    pen.line(points.ravel().tolist(), fill=0, width=width)


def _smooth(control: np.ndarray, per_segment: int = 12) -> np.ndarray:
    """A Catmull-Rom curve through (n, 2) control points."""
    p = np.concatenate([control[:1], control, control[-1:]])
    t = np.linspace(0, 1, per_segment, endpoint=False)[:, None]
    out = []
    for i in range(1, len(p) - 2):
        a, b, c, d = p[i - 1], p[i], p[i + 1], p[i + 2]
        out.append(0.5 * (2 * b + (-a + c) * t + (2 * a - 5 * b + 4 * c - d) * t**2 + (-a + 3 * b - 3 * c + d) * t**3))
    return np.concatenate(out + [control[-1:]])


def _box(rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """A random centre and size (the figure's extent) on the canvas."""
    size = rng.uniform(0.35, 0.8) * SIDE
    return SIDE / 2 + rng.uniform(-0.1, 0.1, 2) * SIDE, size


def scribble(rng: np.random.Generator) -> list[np.ndarray]:
    """A tangle: a smooth curve through many random points."""
    centre, size = _box(rng)
    n = rng.integers(*SCRIBBLE_POINTS)
    control = centre + rng.uniform(-0.5, 0.5, (n, 2)) * size * np.array([rng.uniform(0.6, 1.4), 1.0])
    return [_smooth(control)]


def shape(rng: np.random.Generator) -> list[np.ndarray]:
    """A star polygon, spiral, zigzag, wave, grid or a cross with a ring: figures no digit is."""
    centre, size = _box(rng)
    kind = rng.integers(6)
    if kind == 0:  # star polygon {n/k}, one stroke
        n = int(rng.choice([5, 7, 8]))
        k = 2 if n != 8 else 3
        angles = rng.uniform(0, 2 * math.pi) + 2 * math.pi * k * np.arange(n + 1) / n
        return [centre + 0.5 * size * np.stack([np.cos(angles), np.sin(angles)], 1)]
    if kind == 1:  # spiral of 2-4 turns
        t = np.linspace(0, rng.uniform(2, 4) * 2 * math.pi, 120)
        r = 0.5 * size * (0.1 + t / t[-1])
        return [centre + np.stack([r * np.cos(t), r * np.sin(t)], 1)]
    if kind == 2:  # zigzag of 4-9 teeth
        n = int(rng.integers(4, 10))
        xs = np.linspace(-0.5, 0.5, n + 1) * size
        ys = np.where(np.arange(n + 1) % 2, 0.5, -0.5) * size * rng.uniform(0.2, 1.0)
        return [centre + np.stack([xs, ys], 1)]
    if kind == 3:  # a wave with several periods
        x = np.linspace(-0.5, 0.5, 100)
        y = 0.25 * np.sin(2 * math.pi * rng.uniform(2, 4) * x)
        return [centre + size * np.stack([x, y], 1)]
    if kind == 4:  # a grid: 2-4 lines each way
        lines, a, b = [], int(rng.integers(2, 5)), int(rng.integers(2, 5))
        for i in np.linspace(-0.5, 0.5, a):
            lines.append(centre + size * np.array([[i, -0.5], [i, 0.5]]))
        for j in np.linspace(-0.5, 0.5, b):
            lines.append(centre + size * np.array([[-0.5, j], [0.5, j]]))
        return lines
    t = np.linspace(0, 2 * math.pi, 60)  # a ring with a cross through it
    ring = centre + 0.35 * size * np.stack([np.cos(t), np.sin(t)], 1)
    return [
        ring,
        centre + size * np.array([[-0.5, -0.5], [0.5, 0.5]]),
        centre + size * np.array([[-0.5, 0.5], [0.5, -0.5]]),
    ]


def crossing_out(rng: np.random.Generator) -> list[np.ndarray]:
    """Hatching, back and forth, as over a mistake."""
    centre, size = _box(rng)
    n = int(rng.integers(5, 12))
    ys = np.linspace(-0.5, 0.5, n) * size * rng.uniform(0.5, 1.0)
    xs = np.where(np.arange(n) % 2, 0.5, -0.5) * size
    angle = rng.uniform(-0.6, 0.6)
    path = np.stack([xs, ys], 1) @ np.array([[math.cos(angle), math.sin(angle)], [-math.sin(angle), math.cos(angle)]])
    return [centre + path + rng.normal(0, 0.02 * size, path.shape)]


def draw_outlier(rng: np.random.Generator) -> np.ndarray:
    """One non-digit on a canvas: (SIDE, SIDE) uint8, black ink on white."""
    kind = rng.choice(list(KINDS), p=list(KINDS.values()))
    if kind == "letter":
        letter = str(rng.choice(list(handfonts.LETTERS)))
        return handfonts.draw(letter, str(rng.choice(handfonts.TRAIN)), rng)
    image = Image.new("L", (SIDE, SIDE), 255)
    if kind == "crossed out":  # a digit in a training font, hatched over
        under = handfonts.draw(str(rng.integers(10)), str(rng.choice(handfonts.TRAIN)), rng)
        image = Image.fromarray(under)
    strokes = {"scribble": scribble, "shape": shape, "crossed out": crossing_out}[kind](rng)
    width = int(rng.integers(*BRUSH_RANGE))
    for points in strokes:
        _pen(image, points, width)
    return np.asarray(image)


def outlier_images(n: int, seed: int) -> torch.Tensor:
    """`n` non-digits as the reader sees them: (n, 28, 28) uint8, white on black. Seeded."""
    rng = np.random.default_rng(seed)
    images = []
    while len(images) < n:
        sketch = sketch_to_tensor(draw_outlier(rng))
        if sketch is not None:  # a blob too fat for a digit is refused before any network sees it
            images.append(sketch.image)
    return torch.from_numpy(np.stack(images)) if images else torch.zeros(0, IMAGE_SIZE, IMAGE_SIZE, dtype=torch.uint8)
