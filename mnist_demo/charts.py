"""Charts people can click: the confusion heatmap and the map of digits, as pictures with their geometry.

Each picture comes with a layout that maps a pixel back to what is drawn there, because a `gr.Image`'s
`.select` event reports the clicked pixel in the picture's own coordinates (`evt.index == [x, y]`,
gradio 6.31's ImagePreview undoes the on-screen scaling): `Heatmap.cell_at(x, y)` -> (true, predicted),
`MapLayout.nearest(points, x, y)` -> the map digit clicked. The map is also offered as a table for
`gr.ScatterPlot` (`map_table`), which hovers nicely but draws every point the same size and shape
(its vega spec encodes x, y and colour only), so the drawing there is a colour, not a marker.

    python -c "import numpy as np; from mnist_demo.charts import confusion_picture as c; print(c(np.eye(10)).shape)"
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageFont

from mnist_demo.data import NUM_CLASSES

# d3's Category10, one colour per digit: distinct on white, and the order people know from plots.
DIGIT_COLOURS = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
DRAWING, MINE = "your drawing", "your drawings"  # the map table's categories beside the digits
COLOUR_MAP = {str(d): c for d, c in enumerate(DIGIT_COLOURS)} | {DRAWING: "#000000", MINE: "#ff00ff"}
LEGEND = [*COLOUR_MAP]  # ScatterPlot's `colors_in_legend`: digits in order, then the visitor's points

PAPER = (255, 255, 255)
INK = (30, 30, 30)
FONT_PX = 13


@functools.lru_cache(maxsize=8)
def font(size: int = FONT_PX) -> ImageFont.ImageFont:
    """Pillow's built-in font at `size` pixels (its fixed bitmap font where Pillow lacks FreeType); loaded
    once per size (loading it took longer than drawing a whole map)."""
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, ValueError, OSError, ImportError):
        return ImageFont.load_default()


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    return tuple(int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))


def _text(pen: ImageDraw.ImageDraw, centre: tuple[float, float], text: str, fill, size: int = FONT_PX) -> None:
    pen.text(centre, text, fill=fill, font=font(size), anchor="mm")


# ---------------------------------------------------------------------------------------------------
# The confusion heatmap

RIGHT = (46, 140, 60)  # the diagonal: right answers, shaded by the share of the row
WRONG = (205, 40, 40)  # elsewhere: mistakes, shaded by log(count), so that a few stand out
EMPTY = (244, 244, 244)  # no mistakes of this kind
SELECTED = (0, 0, 0)


@dataclass(frozen=True)
class Heatmap:
    """Where the cells are: true digits down the left, predictions along the top."""

    cell: int = 42  # pixels per cell: room for a four-digit count
    left: int = 44  # the row headers' column
    top: int = 44  # the column headers' row

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the picture."""
        return self.left + NUM_CLASSES * self.cell + 2, self.top + NUM_CLASSES * self.cell + 2

    def cell_at(self, x: float, y: float) -> tuple[int, int] | None:
        """(true, predicted) of the cell under pixel (x, y), or None off the cells (headers, border)."""
        col, row = (x - self.left) // self.cell, (y - self.top) // self.cell
        if 0 <= row < NUM_CLASSES and 0 <= col < NUM_CLASSES:
            return int(row), int(col)
        return None

    def box(self, true: int, predicted: int) -> tuple[int, int, int, int]:
        x, y = self.left + predicted * self.cell, self.top + true * self.cell
        return x, y, x + self.cell, y + self.cell


HEATMAP = Heatmap()


def cell_colour(count: int, row_total: int, diagonal: bool, most_mistakes: int) -> tuple[int, int, int]:
    """The colour of one cell: green by share of the row on the diagonal, red by log(count) elsewhere."""
    if diagonal:
        strength = count / row_total if row_total else 0.0
        target = RIGHT
    elif count == 0:
        return EMPTY
    else:
        strength = 0.15 + 0.85 * np.log1p(count) / np.log1p(max(most_mistakes, 1))
        target = WRONG
    return tuple(int(round(255 + (t - 255) * strength)) for t in target)


def confusion_picture(
    confusion: np.ndarray, selected: tuple[int, int] | None = None, layout: Heatmap = HEATMAP
) -> np.ndarray:
    """(10, 10) counts (rows: true digit) -> uint8 RGB heatmap with the counts written in the cells."""
    confusion = np.asarray(confusion)
    if confusion.shape != (NUM_CLASSES, NUM_CLASSES):
        raise ValueError(f"expected a (10, 10) confusion matrix, got {confusion.shape}")
    picture = Image.new("RGB", layout.size, PAPER)
    pen = ImageDraw.Draw(picture)
    off = confusion[~np.eye(NUM_CLASSES, dtype=bool)]
    most = int(off.max()) if off.size else 0
    half = layout.cell / 2
    _text(pen, (layout.left / 2 + 4, layout.top / 2 - 6), "said", INK, FONT_PX - 3)
    _text(pen, (layout.left / 2 - 4, layout.top / 2 + 8), "true", INK, FONT_PX - 3)
    for d in range(NUM_CLASSES):
        _text(pen, (layout.left + d * layout.cell + half, layout.top / 2 + 6), str(d), INK)  # predictions
        _text(pen, (layout.left / 2, layout.top + d * layout.cell + half), str(d), INK)  # true digits
    for true in range(NUM_CLASSES):
        total = int(confusion[true].sum())
        for predicted in range(NUM_CLASSES):
            count = int(confusion[true, predicted])
            colour = cell_colour(count, total, true == predicted, most)
            x0, y0, x1, y1 = layout.box(true, predicted)
            pen.rectangle((x0, y0, x1, y1), fill=colour, outline=PAPER)
            dark = 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2] < 140
            _text(pen, (x0 + half, y0 + half), str(count), PAPER if dark else INK)
    if selected is not None:
        x0, y0, x1, y1 = layout.box(*selected)
        pen.rectangle((x0, y0, x1, y1), outline=SELECTED, width=3)
    return np.asarray(picture)


# ---------------------------------------------------------------------------------------------------
# The map of digits

MAP_SIDE = 480  # pixels of the square plot
LEGEND_HEIGHT = 48  # pixels of the legend under it: the digits, then the markers
MAP_PAD = 12  # pixels between the points and the picture's edge
LIMIT_MARGIN = 0.04  # share of the span added round the points
DOT = 2.5  # radius of a map digit
MARK = 7  # radius of the drawing's marker, and half the side of a visitor's drawing's square
REACH = 8  # a click this many pixels from a map digit selects it


@dataclass(frozen=True)
class MapLayout:
    """Map units to pixels: square limits (both axes in the same units) onto a MAP_SIDE square."""

    centre: tuple[float, float]
    half: float  # half the span shown, in map units, on both axes

    def to_pixels(self, points: np.ndarray) -> np.ndarray:
        """(n, 2) map points -> (n, 2) pixel (x, y); y grows upwards on the map and downwards on screen."""
        scale = (MAP_SIDE / 2 - MAP_PAD) / self.half
        points = np.asarray(points, np.float64).reshape(-1, 2)
        return np.stack(
            [
                MAP_SIDE / 2 + (points[:, 0] - self.centre[0]) * scale,
                MAP_SIDE / 2 - (points[:, 1] - self.centre[1]) * scale,
            ],
            axis=1,
        )

    def nearest(self, points: np.ndarray, x: float, y: float, reach: float = REACH) -> int | None:
        """Index of the point drawn nearest pixel (x, y), if within `reach` pixels of it."""
        if len(points) == 0:
            return None
        distance = np.hypot(*(self.to_pixels(points) - (x, y)).T)
        i = int(distance.argmin())
        return i if distance[i] <= reach else None

    def to_json(self) -> dict:
        """What the page needs to put a marker on the picture itself: pixel = side/2 + (p - centre) * scale."""
        return {"side": MAP_SIDE, "pad": MAP_PAD, "centre": list(self.centre), "half": self.half}


def map_layout(*point_sets: np.ndarray) -> MapLayout:
    """The square that holds every point of `point_sets` with a small margin (frames of a replay share one)."""
    every = np.concatenate([np.asarray(p, np.float64).reshape(-1, 2) for p in point_sets])
    low, high = every.min(0), every.max(0)
    centre = (low + high) / 2
    half = max(float((high - low).max()) / 2 * (1 + 2 * LIMIT_MARGIN), 1e-6)
    return MapLayout((float(centre[0]), float(centre[1])), half)


def map_base(points: np.ndarray, labels: np.ndarray, layout: MapLayout) -> np.ndarray:
    """The map without drawings, as uint8 RGB: the map digits as dots coloured by digit, and the legend.
    The same for every drawing on one map, so callers may keep it (`map_picture(..., base=)`)."""
    picture = Image.new("RGB", (MAP_SIDE, MAP_SIDE + LEGEND_HEIGHT), PAPER)
    pen = ImageDraw.Draw(picture)
    pen.rectangle((0, 0, MAP_SIDE - 1, MAP_SIDE - 1), outline=(210, 210, 210))
    colours = [_rgb(c) for c in DIGIT_COLOURS]
    _legend(pen, colours)
    for (x, y), label in zip(layout.to_pixels(points), np.asarray(labels)):
        pen.ellipse((x - DOT, y - DOT, x + DOT, y + DOT), fill=colours[int(label)])
    return np.asarray(picture)


def map_picture(
    points: np.ndarray,
    labels: np.ndarray,
    layout: MapLayout,
    drawings: np.ndarray | None = None,
    neighbours: list[np.ndarray] | None = None,
    mine: np.ndarray | None = None,
    mine_labels: np.ndarray | None = None,
    base: np.ndarray | None = None,
) -> np.ndarray:
    """The map as uint8 RGB (MAP_SIDE + LEGEND_HEIGHT high, MAP_SIDE wide): map digits as dots coloured
    by digit, each drawing as a black ring joined to its neighbours (`neighbours[i]`: (k, 2) points of
    drawing i's), the visitor's drawings as squares in their digit's colour, and a legend underneath.
    `layout` is usually the map digits' own (`map_layout(points)`), so the axes stay put as drawings move;
    `base` is `map_base(points, labels, layout)` when the caller kept it."""
    base = map_base(points, labels, layout) if base is None else base
    picture = Image.fromarray(base)
    pen = ImageDraw.Draw(picture)
    colours = [_rgb(c) for c in DIGIT_COLOURS]
    if mine is not None and len(mine):
        for (x, y), label in zip(layout.to_pixels(mine), np.asarray(mine_labels)):
            pen.rectangle(
                (x - MARK + 2, y - MARK + 2, x + MARK - 2, y + MARK - 2), fill=colours[int(label)], outline=INK
            )
    # A drawing beyond the map's square is shown at its edge, in the direction it lies.
    at = np.clip(layout.to_pixels(drawings), MARK, MAP_SIDE - 1 - MARK) if drawings is not None else []
    for i, (x, y) in enumerate(at):
        for nx, ny in layout.to_pixels(neighbours[i]) if neighbours else []:
            pen.line((x, y, nx, ny), fill=(90, 90, 90), width=1)
            pen.ellipse((nx - DOT - 2, ny - DOT - 2, nx + DOT + 2, ny + DOT + 2), outline=INK, width=1)
        pen.ellipse((x - MARK, y - MARK, x + MARK, y + MARK), fill=PAPER, outline=INK, width=3)
    return np.asarray(picture)


def _legend(pen: ImageDraw.ImageDraw, colours: list[tuple[int, int, int]]) -> None:
    """Digits 0-9 as coloured dots, then the two markers, along the strip under the map."""
    y, x = MAP_SIDE + LEGEND_HEIGHT / 4, 14.0
    for d, colour in enumerate(colours):
        pen.ellipse((x - 4, y - 4, x + 4, y + 4), fill=colour)
        _text(pen, (x + 11, y), str(d), INK)
        x += 32
    y, x = MAP_SIDE + 3 * LEGEND_HEIGHT / 4, 14.0
    pen.ellipse((x - MARK, y - MARK, x + MARK, y + MARK), fill=PAPER, outline=INK, width=3)
    pen.text((x + MARK + 4, y), DRAWING + " (lines: its nearest digits)", fill=INK, font=font(), anchor="lm")
    x += 250
    pen.rectangle((x - MARK + 2, y - MARK + 2, x + MARK - 2, y + MARK - 2), fill=colours[4], outline=INK)
    pen.text((x + MARK + 4, y), MINE + " (colour: digit)", fill=INK, font=font(), anchor="lm")


def map_table(
    points: np.ndarray,
    labels: np.ndarray,
    drawings: np.ndarray | None = None,
    mine: np.ndarray | None = None,
    mine_labels: np.ndarray | None = None,
) -> pd.DataFrame:
    """The map for `gr.ScatterPlot(x="x", y="y", color="digit", color_map=COLOUR_MAP, colors_in_legend=LEGEND)`.

    Rows: the map digits, then the visitor's drawings (category MINE, their digit in `label`), then the
    drawings on the pad (category DRAWING) last, so they are drawn on top. Typed columns, even when empty.
    """
    parts = [pd.DataFrame({"x": points[:, 0], "y": points[:, 1], "digit": [str(int(d)) for d in labels]})]
    parts[0]["label"] = parts[0]["digit"]
    if mine is not None and len(mine):
        labels_mine = [str(int(d)) for d in mine_labels]
        parts.append(pd.DataFrame({"x": mine[:, 0], "y": mine[:, 1], "digit": MINE, "label": labels_mine}))
    if drawings is not None and len(drawings):
        parts.append(pd.DataFrame({"x": drawings[:, 0], "y": drawings[:, 1], "digit": DRAWING, "label": ""}))
    table = pd.concat(parts, ignore_index=True)
    return table.astype({"x": "float64", "y": "float64", "digit": "string", "label": "string"})
