"""Digits written the ways MNIST's American writers rarely wrote them, made for training.

Two sources, both read by `sketch_to_tensor` as a visitor's drawing is:
- MNIST training digits given a stroke: a bar across the 7, a slash through the 0, a long up-stroke
  (and sometimes a base) on the 1, drawn where the digit's own ink is;
- drawings of digits in the TRAIN group of handwriting fonts (`mnist_demo.handfonts`), each one
  person's hand, many from places that write these styles.

    python -c "from mnist_demo.worldstyles import styled_digits; print(styled_digits(8, seed=0).images.shape)"
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageDraw

from mnist_demo import handfonts
from mnist_demo.data import IMAGE_SIZE, Split, load_mnist
from mnist_demo.preprocess import sketch_to_tensor

UP = 4  # MNIST digits are enlarged this much before a stroke is added, so it is drawn smoothly
PEN_RANGE = (8, 12)  # the added stroke's width in enlarged pixels: MNIST's strokes are 2-3 px wide
STYLED = (0, 1, 7)  # the digits given a stroke
FONT_SHARE = 0.5  # share of the styled digits that are handwriting-font drawings rather than MNIST edits


def _ink_box(ink: np.ndarray) -> tuple[int, int, int, int]:
    rows, cols = np.flatnonzero(ink.any(1)), np.flatnonzero(ink.any(0))
    return cols[0], rows[0], cols[-1], rows[-1]


def add_stroke(image: np.ndarray, digit: int, rng: np.random.Generator) -> np.ndarray:
    """A (28, 28) uint8 MNIST digit (white on black) with its world-style stroke, enlarged: (112, 112) uint8."""
    big = np.asarray(Image.fromarray(image).resize((IMAGE_SIZE * UP,) * 2, Image.Resampling.BILINEAR))
    ink = big > 128
    left, top, right, bottom = _ink_box(ink)
    h, w = bottom - top, right - left
    picture = Image.fromarray(big)
    pen, width = ImageDraw.Draw(picture), int(rng.integers(*PEN_RANGE))
    lines = []
    if digit == 7:  # a bar across the stem, a little below the middle
        y = int(top + rng.uniform(0.45, 0.62) * h)
        xs = np.flatnonzero(ink[y])
        x = xs.mean() if xs.size else (left + right) / 2
        half = rng.uniform(0.18, 0.3) * h
        lines.append([(x - half, y + rng.uniform(-0.04, 0.04) * h), (x + half, y)])
    elif digit == 0:  # a slash from below the left to above the right
        over = rng.uniform(0.0, 0.15)
        lines.append([(left - over * w, bottom + over * h), (right + over * w, top - over * h)])
    else:  # the 1's long up-stroke from its top, and sometimes a base
        xs = np.flatnonzero(ink[top + 2])
        x = xs.mean() if xs.size else (left + right) / 2
        # Longer, shallower up-strokes (0.35-0.6 of the height, 15-45 degrees) fixed no more of the TUNE
        # fonts' 1s and cost MNIST accuracy (weights/README.md): these are the ones the CNN learned from.
        length = rng.uniform(0.25, 0.45) * h
        angle = np.radians(rng.uniform(30, 60))  # below the horizontal, to the left
        lines.append([(x, top), (x - length * np.cos(angle), top + length * np.sin(angle))])
        if rng.random() < 0.3:
            xs = np.flatnonzero(ink[bottom - 2])
            xb = xs.mean() if xs.size else x
            half = rng.uniform(0.15, 0.3) * h
            lines.append([(xb - half, bottom), (xb + half, bottom)])
    for line in lines:
        pen.line(line, fill=255, width=width)
        for px, py in line:
            pen.ellipse((px - width / 2, py - width / 2, px + width / 2, py + width / 2), fill=255)
    return np.asarray(picture)


def styled_digits(n: int, seed: int, mnist: Split | None = None) -> Split:
    """`n` world-style digits as the reader sees them, (n, 28, 28) uint8 and labels; half of them MNIST
    training digits given a stroke, half handwriting-font drawings of any digit. Seeded."""
    rng = np.random.default_rng(seed)
    mnist = load_mnist(train=True) if mnist is None else mnist
    pools = {d: torch.nonzero(mnist.labels == d).flatten().numpy() for d in STYLED}
    images, labels = [], []
    while len(images) < n:
        if rng.random() < FONT_SHARE:
            digit = int(rng.integers(10))
            canvas = handfonts.draw(str(digit), str(rng.choice(handfonts.TRAIN)), rng)
        else:
            digit = int(rng.choice(STYLED))
            source = mnist.images[int(rng.choice(pools[digit]))].numpy()
            canvas = 255 - add_stroke(source, digit, rng)  # black on white, as a canvas
        sketch = sketch_to_tensor(canvas)
        if sketch is not None:
            images.append(sketch.image)
            labels.append(digit)
    return Split(torch.from_numpy(np.stack(images)), torch.tensor(labels, dtype=torch.long))
