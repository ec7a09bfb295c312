"""Non-digits to measure "not a digit" on: letters, doodles and crossings-out, as a visitor might draw them.

This is the measuring generator, kept apart from the training one (`mnist_demo/outliers.py`): its
letters come from the HELD_OUT handwriting fonts (the training letters from TRAIN ones), and its doodles
are other figures (a heart, a smiley, a house, an arrow, a hash sign, a five-pointed star outline, a
lightning bolt, a cloud, a triangle, a square, an infinity sign, a flower) drawn with a round brush and
a trembling hand; its crossings-out are loops scrawled over a HELD_OUT font's digit.

    python -c "from testkit.nondigits import nondigits; print(len(nondigits(12, seed=0)))"
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from mnist_demo import handfonts
from testkit.sketches import stroke

SIDE = 280  # the app's canvas
BRUSH = (10, 24)  # brush widths in canvas pixels
SCRAWL_BRUSH = (5, 12)  # the crossing-out's: a thick scrawl would be a blob, which the reader refuses anyway
KINDS = ("letter", "doodle", "crossed out")
SHARES = (0.4, 0.4, 0.2)


def _circle(cx: float, cy: float, r: float, start: float = 0, end: float = 360, n: int = 40) -> list:
    a = np.radians(np.linspace(start, end, n))
    return list(zip(cx + r * np.cos(a), cy + r * np.sin(a)))


def doodle(kind: str) -> list[list[tuple[float, float]]]:
    """A figure in the unit box (x right, y down), as strokes."""
    if kind == "heart":
        t = np.linspace(0, 2 * math.pi, 60)
        x, y = 16 * np.sin(t) ** 3, 13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t)
        return [list(zip(0.5 + x / 34, 0.45 - y / 34))]
    if kind == "smiley":
        return [
            _circle(0.5, 0.5, 0.45),
            _circle(0.35, 0.38, 0.04),
            _circle(0.65, 0.38, 0.04),
            _circle(0.5, 0.5, 0.27, 30, 150),
        ]
    if kind == "house":
        return [[(0.1, 0.45), (0.5, 0.05), (0.9, 0.45), (0.9, 0.95), (0.1, 0.95), (0.1, 0.45), (0.9, 0.45)]]
    if kind == "arrow":
        return [[(0.05, 0.5), (0.95, 0.5)], [(0.65, 0.2), (0.95, 0.5), (0.65, 0.8)]]
    if kind == "hash":
        return [
            [(0.35, 0.05), (0.3, 0.95)],
            [(0.7, 0.05), (0.65, 0.95)],
            [(0.05, 0.35), (0.95, 0.35)],
            [(0.05, 0.68), (0.95, 0.68)],
        ]
    if kind == "star":
        points = []
        for k in range(11):
            r = 0.48 if k % 2 == 0 else 0.2
            a = -math.pi / 2 + k * math.pi / 5
            points.append((0.5 + r * math.cos(a), 0.52 + r * math.sin(a)))
        return [points]
    if kind == "lightning":
        return [[(0.6, 0.0), (0.25, 0.55), (0.55, 0.5), (0.35, 1.0), (0.8, 0.4), (0.5, 0.45), (0.75, 0.0)]]
    if kind == "cloud":
        return [
            _circle(0.3, 0.55, 0.18, 90, 270)
            + _circle(0.5, 0.38, 0.2, 180, 360)
            + _circle(0.72, 0.55, 0.18, 270, 450)
            + [(0.3, 0.73)]
        ]
    if kind == "triangle":
        return [[(0.5, 0.05), (0.95, 0.9), (0.05, 0.9), (0.5, 0.05)]]
    if kind == "square":
        return [[(0.1, 0.1), (0.9, 0.1), (0.9, 0.9), (0.1, 0.9), (0.1, 0.1)]]
    if kind == "infinity":
        t = np.linspace(0, 2 * math.pi, 60)
        return [list(zip(0.5 + 0.45 * np.cos(t), 0.5 + 0.25 * np.sin(2 * t)))]
    if kind == "flower":
        petals = [
            _circle(0.5 + 0.28 * math.cos(a), 0.5 + 0.28 * math.sin(a), 0.16)
            for a in np.linspace(0, 2 * math.pi, 6)[:-1]
        ]
        return [*petals, _circle(0.5, 0.5, 0.1)]
    raise ValueError(f"no doodle called {kind!r}")


DOODLES = (
    "heart",
    "smiley",
    "house",
    "arrow",
    "hash",
    "star",
    "lightning",
    "cloud",
    "triangle",
    "square",
    "infinity",
    "flower",
)


def _place(strokes: list, rng: np.random.Generator) -> list[list[tuple[float, float]]]:
    """Scale the unit-box strokes onto the canvas at a random size and place, with a trembling hand."""
    size = rng.uniform(0.4, 0.8) * SIDE
    cx, cy = SIDE / 2 + rng.uniform(-0.1, 0.1, 2) * SIDE
    squash = rng.uniform(0.75, 1.25)
    tremor = rng.uniform(0, 0.015) * size
    return [
        [
            (cx + (x - 0.5) * size * squash + rng.normal(0, tremor), cy + (y - 0.5) * size + rng.normal(0, tremor))
            for x, y in line
        ]
        for line in strokes
    ]


def nondigit(kind: str, rng: np.random.Generator) -> np.ndarray:
    """One drawing of `kind` ('letter', 'doodle' or 'crossed out'): (SIDE, SIDE) uint8, black on white."""
    if kind == "letter":
        return handfonts.draw(str(rng.choice(list(handfonts.LETTERS))), str(rng.choice(handfonts.HELD_OUT)), rng)
    brush = int(rng.integers(*BRUSH))
    if kind == "doodle":
        image = Image.new("L", (SIDE, SIDE), 255)
        strokes = _place(doodle(str(rng.choice(DOODLES))), rng)
    else:  # loops scrawled over a digit, with a finer pen than the digit's
        brush = int(rng.integers(*SCRAWL_BRUSH))
        image = Image.fromarray(handfonts.draw(str(rng.integers(10)), str(rng.choice(handfonts.HELD_OUT)), rng))
        t = np.linspace(0, rng.uniform(2, 4) * 2 * math.pi, 120)
        loops = list(zip(0.5 + 0.45 * np.linspace(-1, 1, len(t)) + 0.1 * np.cos(t), 0.5 + 0.35 * np.sin(t)))
        strokes = _place([loops], rng)
    pen = ImageDraw.Draw(image)
    for line in strokes:
        stroke(pen, line, brush, 0)
    return np.asarray(image)


def nondigits(n: int, seed: int) -> list[tuple[str, np.ndarray]]:
    """`n` seeded non-digits as (kind, canvas)."""
    rng = np.random.default_rng(seed)
    return [(kind, nondigit(kind, rng)) for kind in rng.choice(KINDS, size=n, p=SHARES)]
