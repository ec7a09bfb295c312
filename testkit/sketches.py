"""Digits drawn the way a sketchpad draws them, for the preprocessing tests: hard-edged round-brush strokes.

Each digit is a few polylines in a unit box (x right, y down); `draw` strokes them with PIL on a canvas
of any size, colour and mode. No binary fixtures: every picture is made here, the same on every run.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

STROKES = {
    "0": [
        [
            (0.5, 0.03),
            (0.2, 0.15),
            (0.08, 0.5),
            (0.2, 0.85),
            (0.5, 0.97),
            (0.8, 0.85),
            (0.92, 0.5),
            (0.8, 0.15),
            (0.5, 0.03),
        ]
    ],
    "1": [[(0.58, 0.03), (0.42, 0.97)]],
    "2": [[(0.15, 0.28), (0.3, 0.07), (0.6, 0.03), (0.82, 0.22), (0.72, 0.5), (0.15, 0.95), (0.9, 0.95)]],
    "3": [
        [
            (0.15, 0.12),
            (0.45, 0.03),
            (0.78, 0.15),
            (0.75, 0.38),
            (0.4, 0.5),
            (0.8, 0.62),
            (0.82, 0.85),
            (0.5, 0.97),
            (0.12, 0.88),
        ]
    ],
    "4": [[(0.6, 0.03), (0.1, 0.65), (0.9, 0.65)], [(0.68, 0.35), (0.68, 0.97)]],
    "5": [
        [(0.28, 0.04), (0.22, 0.45), (0.5, 0.38), (0.78, 0.5), (0.8, 0.76), (0.58, 0.95), (0.3, 0.95), (0.14, 0.84)],
        [(0.28, 0.04), (0.85, 0.04)],
    ],
    "6": [
        [
            (0.72, 0.03),
            (0.38, 0.3),
            (0.2, 0.62),
            (0.28, 0.9),
            (0.52, 0.97),
            (0.76, 0.84),
            (0.74, 0.6),
            (0.48, 0.52),
            (0.24, 0.66),
        ]
    ],
    "7": [[(0.1, 0.04), (0.9, 0.04), (0.4, 0.97)]],
    "8": [
        [
            (0.78, 0.16),
            (0.5, 0.03),
            (0.22, 0.16),
            (0.26, 0.36),
            (0.5, 0.48),
            (0.78, 0.62),
            (0.8, 0.86),
            (0.5, 0.97),
            (0.2, 0.86),
            (0.22, 0.62),
            (0.5, 0.48),
            (0.74, 0.36),
            (0.78, 0.16),
        ]
    ],
    "9": [[(0.78, 0.3), (0.58, 0.05), (0.3, 0.08), (0.2, 0.3), (0.4, 0.5), (0.74, 0.4)], [(0.78, 0.2), (0.72, 0.97)]],
}
# A 4 as two strokes that do not touch: the open corner and, beside it, the upright.
SPLIT_FOUR = [[(0.35, 0.03), (0.12, 0.6), (0.58, 0.6)], [(0.8, 0.03), (0.8, 0.97)]]
ASPECT = 0.7  # digits are drawn this much narrower than tall
WHITE, BLACK, CLEAR = (255, 255, 255, 255), (0, 0, 0, 255), (0, 0, 0, 0)


def stroke(pen: ImageDraw.ImageDraw, points: list[tuple[float, float]], width: int, ink) -> None:
    """One round-brush stroke: a polyline with round joints and round ends."""
    r = width / 2
    for x, y in (points[0], points[-1]):
        pen.ellipse((x - r, y - r, x + r, y + r), fill=ink)
    pen.line(points, fill=ink, width=width, joint="curve")


def layout(
    text: str,
    size: tuple[int, int] = (280, 280),
    height: float = 0.7,
    at: tuple[float, float] = (0.5, 0.5),
    strokes: dict | None = None,
) -> list[list[tuple[float, float]]]:
    """The polylines of `text` (digits) in canvas pixels, placed as `draw` places them."""
    strokes = strokes or STROKES
    h = height * size[1]
    w = ASPECT * h
    step = 1.4 * w
    left = at[0] * size[0] - (step * (len(text) - 1) + w) / 2
    top = at[1] * size[1] - h / 2
    return [
        [(left + i * step + x * w, top + y * h) for x, y in line]
        for i, digit in enumerate(text)
        for line in strokes[digit]
    ]


def draw(
    text: str,
    size: tuple[int, int] = (280, 280),
    height: float = 0.7,
    at: tuple[float, float] = (0.5, 0.5),
    brush: int = 20,
    ink=BLACK,
    paper=WHITE,
    mode: str = "RGBA",
    strokes: dict | None = None,
) -> Image.Image:
    """Draw `text` (digits) centred at `at` (fractions of the canvas), `height` of the canvas tall, spaced evenly."""
    canvas = Image.new("RGBA", size, paper)
    pen = ImageDraw.Draw(canvas)
    for line in layout(text, size, height, at, strokes):
        stroke(pen, line, brush, ink)
    return canvas if mode == "RGBA" else canvas.convert(mode)


def rasterise(strokes: list, size: tuple[int, int] = (280, 280), brush: int = 20) -> Image.Image:
    """Strokes as the stroke pad sends them ([x, y] or [x, y, t] points) drawn in black on white, RGBA."""
    canvas = Image.new("RGBA", size, WHITE)
    pen = ImageDraw.Draw(canvas)
    for line in strokes:
        stroke(pen, [(p[0], p[1]) for p in line], brush, BLACK)
    return canvas


def sketchpad(image: Image.Image) -> dict:
    """What gr.Sketchpad sends for a drawing in black on its white paper: background, one layer, composite."""
    composite = np.asarray(image.convert("RGBA"))
    layer = composite.copy()
    layer[composite[..., :3].min(axis=2) > 127] = CLEAR  # the layer holds the ink only
    return {"background": np.full_like(composite, 255), "layers": [layer], "composite": composite}
