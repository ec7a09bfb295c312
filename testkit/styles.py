"""Digits drawn programmatically the way a visitor draws them: black round-capped strokes on a white canvas.

A digit is a list of strokes, each a list of (x, y) points in a unit box (x to the right, y down, the
digit filling 0..1 in height). `draw` places it on a canvas like the app's with a `Style` (size, slant,
position, brush, hand tremor), so a test can draw the same digit many slightly different ways.

The pen is `sketches.stroke` (the preprocessing tests' round brush); this module adds the variations.

    python -c "from testkit.styles import *; print(draw(UNUSUAL['crossed 7'][1], Style()).shape)"
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from testkit.sketches import stroke

CANVAS_SIDE = 280  # the app's Sketchpad is 280 x 280
BRUSH_PX = 20  # the app's brush width
PAPER, INK = 255, 0  # white paper, black ink

Point = tuple[float, float]
Stroke = list[Point]


@dataclass(frozen=True)
class Style:
    """How one copy of a digit is drawn."""

    height: float = 0.6  # digit height as a share of the canvas side
    slant: float = 0.0  # horizontal shift per unit of height; positive leans the top to the right
    dx: float = 0.0  # offset of the digit's centre from the canvas centre, share of the side
    dy: float = 0.0
    brush: int = BRUSH_PX  # stroke width in canvas pixels
    tremor: float = 0.0  # random displacement of every point, share of the digit height
    seed: int = 0  # seeds the tremor


def arc(cx: float, cy: float, rx: float, ry: float, start_deg: float, end_deg: float, n: int = 24) -> Stroke:
    """Points along an elliptical arc; angles in degrees, 0 = right, 90 = down (image coordinates)."""
    angles = np.radians(np.linspace(start_deg, end_deg, n))
    return [(cx + rx * math.cos(a), cy + ry * math.sin(a)) for a in angles]


def draw(strokes: list[Stroke], style: Style, side: int = CANVAS_SIDE) -> np.ndarray:
    """The digit on a white canvas: (side, side) uint8, black round-capped strokes."""
    rng = np.random.default_rng(style.seed)
    xs = [x for stroke in strokes for x, _ in stroke]
    centre_x = (min(xs) + max(xs)) / 2
    size = style.height * side
    image = Image.new("L", (side, side), PAPER)
    pen = ImageDraw.Draw(image)
    for line in strokes:
        points = []
        for x, y in line:
            x, y = x + rng.normal(0, style.tremor), y + rng.normal(0, style.tremor)
            points.append(
                (
                    side / 2 + style.dx * side + (x - centre_x + style.slant * (0.5 - y)) * size,
                    side / 2 + style.dy * side + (y - 0.5) * size,
                )
            )
        stroke(pen, points, style.brush, INK)
    return np.asarray(image)


def mirror(strokes: list[Stroke]) -> list[Stroke]:
    """The digit written mirrored left to right, as children often do."""
    return [[(1.0 - x, y) for x, y in line] for line in strokes]


_THREE = [arc(0.3, 0.25, 0.3, 0.25, 200, 450, 20) + arc(0.3, 0.75, 0.3, 0.25, -90, 160, 20)]
_NINE = [arc(0.25, 0.25, 0.25, 0.25, 0, 360, 32), [(0.5, 0.25), (0.5, 1.0)]]  # a small head, a straight stem

# Digits written in ways MNIST's writers rarely did: name -> (digit, strokes). A model trained on MNIST
# (99.5% on its test set) misreads the "flag 1" (as 7) and the mirrored ones (3 as 8, 7 as 5, 9 as 8) and
# reads the others correctly, so a set drawn from all of them has room to improve and digits to keep.
UNUSUAL: dict[str, tuple[int, list[Stroke]]] = {
    "slashed 0": (0, [arc(0.3, 0.5, 0.3, 0.5, 0, 360, 40), [(0.0, 0.95), (0.6, 0.05)]]),
    "flag 1": (1, [[(0.0, 0.25), (0.6, 0.0), (0.6, 1.0)]]),  # a long continental flag, no base
    "based 1": (1, [[(0.0, 0.35), (0.4, 0.0), (0.4, 1.0)], [(0.1, 1.0), (0.7, 1.0)]]),  # a flag and a base
    "mirrored 3": (3, mirror(_THREE)),
    "open 4": (4, [[(0.35, 0.0), (0.0, 0.6), (0.75, 0.6)], [(0.55, 0.2), (0.55, 1.0)]]),
    "crossed 7": (7, [[(0.0, 0.0), (0.6, 0.0), (0.2, 1.0)], [(0.1, 0.5), (0.6, 0.5)]]),
    "mirrored 7": (7, [[(0.6, 0.0), (0.0, 0.0), (0.4, 1.0)]]),
    "stem 9": (9, _NINE),
    "mirrored 9": (9, mirror(_NINE)),
}


def variations(count: int, seed: int = 0) -> list[Style]:
    """`count` seeded styles: height, slant, position, brush and tremor vary as between one person's drawings."""
    rng = np.random.default_rng(seed)
    return [
        Style(
            height=float(rng.uniform(0.45, 0.75)),
            slant=float(rng.uniform(-0.25, 0.25)),
            dx=float(rng.uniform(-0.1, 0.1)),
            dy=float(rng.uniform(-0.08, 0.08)),
            brush=int(rng.integers(14, 27)),
            tremor=float(rng.uniform(0.0, 0.02)),
            seed=int(rng.integers(2**31)),
        )
        for _ in range(count)
    ]
