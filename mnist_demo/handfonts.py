"""Handwriting fonts: digits and letters as 33 people wrote them, drawn onto a canvas like the app's.

Each font in `fonts/` is one person's handwriting made into a font (from npm's `@fontsource/*` packages,
version 5.3.0, SIL OFL 1.1 or Apache 2.0: `fonts/README.md` lists them with their licences). Many write
digits the way much of the world does and MNIST's American writers rarely did: a 1 with a long up-stroke,
a crossed 7, an open 4. The fonts are split once, by a seeded shuffle of their names, into three groups
that never mix: TRAIN may be training data, TUNE decides every choice (recipes, thresholds), HELD_OUT
is only measured, by `python -m bench`.

Every drawing is the glyph under a random slant, rotation, aspect and a smooth elastic warp, so that
one font gives many different drawings of each character, as one person does.

    python -c "from mnist_demo.handfonts import *; print(draw('7', HELD_OUT[0], 0).shape)"
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage

FONT_DIR = Path(__file__).resolve().parents[1] / "fonts"
# random.Random(15).shuffle(sorted(names)): 11 fonts to a group, chosen before anything was measured.
TRAIN = (
    "caveat",
    "gloria-hallelujah",
    "homemade-apple",
    "kalam",
    "nanum-brush-script",
    "nanum-pen-script",
    "patrick-hand",
    "rock-salt",
    "schoolbell",
    "swanky-and-moo-moo",
    "yellowtail",
)
TUNE = (
    "caveat-brush",
    "dancing-script",
    "gaegu",
    "gochi-hand",
    "handlee",
    "itim",
    "neucha",
    "playpen-sans",
    "shadows-into-light",
    "short-stack",
    "sue-ellen-francisco",
)
HELD_OUT = (
    "annie-use-your-telescope",
    "architects-daughter",
    "cedarville-cursive",
    "covered-by-your-grace",
    "delius",
    "indie-flower",
    "mansalva",
    "permanent-marker",
    "reenie-beanie",
    "sriracha",
    "the-girl-next-door",
)
# Letters that are also fair readings of a digit (O and 0, l and 1, Z and 2, S and 5, B and 8, b and 6,
# g and q and 9) or that split into two marks the reader takes one at a time (i, j): never non-digits.
DIGIT_LIKE = set("OoQDIilJjZzSsBbGgq")
LETTERS = "".join(c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz" if c not in DIGIT_LIKE)
CANVAS_SIDE = 280  # the app's Sketchpad
GLYPH_PX = 160  # font size at which glyphs are rendered before they are placed
HEIGHT_RANGE = (0.35, 0.8)  # the drawing's height as a share of the canvas
MAX_SLANT = 0.3  # horizontal shift per unit of height
MAX_ROTATION_DEG = 8.0
ASPECT_RANGE = (0.8, 1.2)  # width stretch
WARP_SIGMA = 0.12  # smoothness of the elastic warp, share of the glyph's size
WARP_AMOUNT = 0.05  # its largest displacement, share of the glyph's size


@functools.cache
def font(name: str) -> ImageFont.FreeTypeFont:
    """The font called `name` (a folder of `fonts/`), at GLYPH_PX."""
    path = FONT_DIR / name / f"{name}.woff2"
    if not path.is_file():
        raise FileNotFoundError(f"no handwriting font {name!r} at {path}")
    return ImageFont.truetype(str(path), GLYPH_PX)


def glyph(text: str, name: str) -> np.ndarray:
    """`text` in font `name`, cropped to its ink: (h, w) float32, 1 = ink."""
    face = font(name)
    left, top, right, bottom = face.getbbox(text)
    image = Image.new("L", (right - left + 8, bottom - top + 8), 0)
    ImageDraw.Draw(image).text((4 - left, 4 - top), text, font=face, fill=255)
    ink = np.asarray(image, np.float32) / 255.0
    rows, cols = np.flatnonzero(ink.max(1) > 0.5), np.flatnonzero(ink.max(0) > 0.5)
    return ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def warp(ink: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A smooth random elastic warp (Simard et al. 2003) of (h, w) ink, its size kept."""
    size = max(ink.shape)
    pad = round(WARP_AMOUNT * size) + 2
    ink = np.pad(ink, pad)
    shifts = []
    for _ in range(2):
        field = ndimage.gaussian_filter(rng.uniform(-1, 1, ink.shape), WARP_SIGMA * size)
        shifts.append(field * (WARP_AMOUNT * size / max(np.abs(field).max(), 1e-6)))
    ys, xs = np.indices(ink.shape, dtype=np.float32)
    return ndimage.map_coordinates(ink, [ys + shifts[0], xs + shifts[1]], order=1)


def draw(text: str, name: str, seed: int | np.random.Generator, side: int = CANVAS_SIDE) -> np.ndarray:
    """One drawing of `text` in font `name`: (side, side) uint8, black ink on white paper, like a canvas."""
    rng = np.random.default_rng(seed)
    ink = warp(glyph(text, name), rng)
    height = rng.uniform(*HEIGHT_RANGE) * side
    scale = height / ink.shape[0]
    slant = rng.uniform(-MAX_SLANT, MAX_SLANT)
    angle = math.radians(rng.uniform(-MAX_ROTATION_DEG, MAX_ROTATION_DEG))
    aspect = rng.uniform(*ASPECT_RANGE)
    # Output (x, y) about the canvas centre -> glyph pixel: undo rotation, slant, aspect and scale.
    c, s = math.cos(angle), math.sin(angle)
    a, b, d, e = c / (scale * aspect), s / (scale * aspect), -s / scale, c / scale
    a, b = a - slant * d, b - slant * e  # the slant moves x by `slant` per unit of height
    h, w = ink.shape
    centre = side / 2 + rng.uniform(-0.1, 0.1, 2) * side
    coeffs = (a, b, w / 2 - a * centre[0] - b * centre[1], d, e, h / 2 - d * centre[0] - e * centre[1])
    picture = Image.fromarray((ink * 255).astype(np.uint8)).transform(
        (side, side), Image.Transform.AFFINE, coeffs, Image.Resampling.BILINEAR
    )
    return 255 - np.asarray(picture)
