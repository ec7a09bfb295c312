"""Non-digits to choose on (TUNE): figures neither the training generator nor the benchmark's draws.

Three generators of non-digits never mix: `mnist_demo/outliers.py` makes the training ones (letters in
the TRAIN fonts, scribbles, shapes, hatching), `testkit/nondigits.py` the ones `python -m bench`
measures on (letters in the HELD_OUT fonts, twelve doodles, loops over a digit), and this one those that
recipes and thresholds are chosen on: letters in the TUNE fonts, other doodles (a sun, a fish, a moon,
a tree, an envelope, an eye, a boat, a stick figure, a cup, an umbrella, a key, a car) and a digit
crossed out with an X, each with its own seeds.

    python -c "from testkit.tune_nondigits import tune_nondigits; print(len(tune_nondigits(12, seed=0)))"
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from mnist_demo import handfonts
from testkit.sketches import stroke

SIDE = 280  # the app's canvas
BRUSH = (8, 22)  # brush widths in canvas pixels
KINDS = ("letter", "doodle", "crossed out")
SHARES = (0.4, 0.4, 0.2)  # as the benchmark's


def _arc(cx: float, cy: float, rx: float, ry: float, start: float = 0, end: float = 360, n: int = 40) -> list:
    a = np.radians(np.linspace(start, end, n))
    return list(zip(cx + rx * np.cos(a), cy + ry * np.sin(a)))


def doodle(kind: str) -> list[list[tuple[float, float]]]:
    """A figure in the unit box (x right, y down), as strokes."""
    if kind == "sun":
        rays = [
            [(0.5 + 0.25 * math.cos(a), 0.5 + 0.25 * math.sin(a)), (0.5 + 0.47 * math.cos(a), 0.5 + 0.47 * math.sin(a))]
            for a in np.linspace(0, 2 * math.pi, 9)[:-1]
        ]
        return [_arc(0.5, 0.5, 0.17, 0.17), *rays]
    if kind == "fish":
        return [
            _arc(0.42, 0.5, 0.3, 0.18, 20, 340) + [(0.95, 0.25), (0.95, 0.75), _arc(0.42, 0.5, 0.3, 0.18, 20, 20, 1)[0]]
        ]
    if kind == "moon":
        return [_arc(0.5, 0.5, 0.42, 0.42, 60, 300) + _arc(0.62, 0.5, 0.3, 0.36, 250, 110, 30)]
    if kind == "tree":
        return [
            [(0.45, 0.95), (0.45, 0.6)],
            [(0.55, 0.95), (0.55, 0.6)],
            [(0.5, 0.05), (0.1, 0.6), (0.9, 0.6), (0.5, 0.05)],
        ]
    if kind == "envelope":
        return [[(0.05, 0.25), (0.95, 0.25), (0.95, 0.8), (0.05, 0.8), (0.05, 0.25), (0.5, 0.55), (0.95, 0.25)]]
    if kind == "eye":
        return [_arc(0.5, 0.75, 0.45, 0.5, 215, 325) + _arc(0.5, 0.25, 0.45, 0.5, 35, 145), _arc(0.5, 0.5, 0.1, 0.1)]
    if kind == "boat":
        return [
            [(0.05, 0.65), (0.95, 0.65), (0.75, 0.9), (0.25, 0.9), (0.05, 0.65)],
            [(0.5, 0.65), (0.5, 0.05)],
            [(0.5, 0.1), (0.85, 0.55), (0.5, 0.55)],
        ]
    if kind == "stick figure":
        return [
            _arc(0.5, 0.15, 0.1, 0.1),
            [(0.5, 0.25), (0.5, 0.62)],
            [(0.2, 0.4), (0.8, 0.4)],
            [(0.25, 0.95), (0.5, 0.62), (0.75, 0.95)],
        ]
    if kind == "cup":
        return [[(0.15, 0.15), (0.25, 0.9), (0.65, 0.9), (0.75, 0.15)], _arc(0.75, 0.5, 0.15, 0.18, -80, 80, 20)]
    if kind == "umbrella":
        return [
            _arc(0.5, 0.45, 0.45, 0.4, 180, 360) + [(0.05, 0.45), (0.95, 0.45)],
            [(0.5, 0.45), (0.5, 0.85)] + _arc(0.6, 0.85, 0.1, 0.1, 180, 0, 12),
        ]
    if kind == "key":
        return [
            _arc(0.22, 0.5, 0.17, 0.17),
            [(0.39, 0.5), (0.95, 0.5)],
            [(0.8, 0.5), (0.8, 0.68)],
            [(0.9, 0.5), (0.9, 0.65)],
        ]
    if kind == "car":
        body = [(0.05, 0.75), (0.05, 0.5), (0.25, 0.5), (0.35, 0.3), (0.7, 0.3), (0.8, 0.5), (0.95, 0.5), (0.95, 0.75)]
        return [body + [(0.05, 0.75)], _arc(0.27, 0.78, 0.1, 0.1), _arc(0.73, 0.78, 0.1, 0.1)]
    raise ValueError(f"no doodle called {kind!r}")


DOODLES = ("sun", "fish", "moon", "tree", "envelope", "eye", "boat", "stick figure", "cup", "umbrella", "key", "car")


def _place(strokes: list, rng: np.random.Generator) -> list[list[tuple[float, float]]]:
    """Scale the unit-box strokes onto the canvas at a random size, place and tilt, with a trembling hand."""
    size = rng.uniform(0.4, 0.8) * SIDE
    cx, cy = SIDE / 2 + rng.uniform(-0.1, 0.1, 2) * SIDE
    squash = rng.uniform(0.75, 1.25)
    tilt = math.radians(rng.uniform(-10, 10))
    c, s = math.cos(tilt), math.sin(tilt)
    tremor = rng.uniform(0, 0.015) * size
    out = []
    for line in strokes:
        placed = []
        for x, y in line:
            u, v = (x - 0.5) * size * squash, (y - 0.5) * size
            placed.append((cx + c * u - s * v + rng.normal(0, tremor), cy + s * u + c * v + rng.normal(0, tremor)))
        out.append(placed)
    return out


def tune_nondigit(kind: str, rng: np.random.Generator) -> np.ndarray:
    """One drawing of `kind` ('letter', 'doodle' or 'crossed out'): (SIDE, SIDE) uint8, black on white."""
    if kind == "letter":
        return handfonts.draw(str(rng.choice(list(handfonts.LETTERS))), str(rng.choice(handfonts.TUNE)), rng)
    brush = int(rng.integers(*BRUSH))
    if kind == "doodle":
        image = Image.new("L", (SIDE, SIDE), 255)
        strokes = _place(doodle(str(rng.choice(DOODLES))), rng)
    else:  # an X over a digit, corner to corner
        brush = max(5, brush // 2)
        image = Image.fromarray(handfonts.draw(str(rng.integers(10)), str(rng.choice(handfonts.TUNE)), rng))
        strokes = _place([[(0.1, 0.1), (0.9, 0.9)], [(0.9, 0.1), (0.1, 0.9)]], rng)
    pen = ImageDraw.Draw(image)
    for line in strokes:
        stroke(pen, line, brush, 0)
    return np.asarray(image)


def tune_nondigits(n: int, seed: int) -> list[tuple[str, np.ndarray]]:
    """`n` seeded non-digits as (kind, canvas)."""
    rng = np.random.default_rng(seed)
    return [(kind, tune_nondigit(kind, rng)) for kind in rng.choice(KINDS, size=n, p=SHARES)]
