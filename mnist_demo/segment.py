"""Several digits on one canvas -> one MNIST-style Sketch per digit, read left to right.

The ink is split into connected pieces on the coarse ink map that `read_canvas` already builds; pieces
that belong to one digit (the two strokes of a 4 or a 5, a short stroke beside a long one) are joined
again, closest first, and each digit then goes through exactly the preprocessing `sketch_to_tensor` uses. Digits that
touch each other stay one piece: people leave gaps between digits far more often than between strokes.

    python -m pytest tests/test_segment.py
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mnist_demo.canvas import ink_pieces, read_canvas
from mnist_demo.preprocess import Sketch, digit_sketch

SAME_COLUMN = 0.5  # pieces whose horizontal extents overlap by half the narrower one are strokes of one digit
SHORT_PIECE = 0.75  # a piece shorter than this share of its neighbour may be a stroke of it (the corner of a 4)...
NEAR = 0.25  # ...when the gap between them is at most this share of the taller one's height...
MAX_ASPECT = 1.0  # ...and the two together are no wider than tall, as nearly every digit is


@dataclass(frozen=True)
class Group:
    """Pieces read as one digit, and their joint bounding box in coarse pixels."""

    labels: tuple[int, ...]
    top: int
    left: int
    bottom: int
    right: int

    @property
    def height(self) -> int:
        return self.bottom - self.top

    @property
    def width(self) -> int:
        return self.right - self.left

    def join(self, other: Group) -> Group:
        return Group(self.labels + other.labels, min(self.top, other.top), min(self.left, other.left),
                     max(self.bottom, other.bottom), max(self.right, other.right))

    def gap(self, other: Group) -> int:
        """Empty pixels between the two boxes along the axis where they are furthest apart (0 if they overlap)."""
        dx = max(other.left - self.right, self.left - other.right, 0)
        dy = max(other.top - self.bottom, self.top - other.bottom, 0)
        return max(dx, dy)


def one_digit(a: Group, b: Group) -> bool:
    """Do two pieces look like strokes of the same digit rather than two digits side by side?"""
    overlap = min(a.right, b.right) - max(a.left, b.left)
    if overlap >= SAME_COLUMN * min(a.width, b.width):
        return True
    short, tall = sorted((a, b), key=lambda g: g.height)
    both = a.join(b)
    return (short.height < SHORT_PIECE * tall.height and a.gap(b) <= NEAR * tall.height
            and both.width <= MAX_ASPECT * both.height)


def group_pieces(pieces: list[tuple[slice, slice]]) -> list[tuple[int, ...]]:
    """Join pieces (label i + 1 has bounding slices pieces[i]) into digits: label tuples, left to right."""
    groups = [Group((i + 1,), rows.start, cols.start, rows.stop, cols.stop) for i, (rows, cols) in enumerate(pieces)]
    while True:  # join the closest pair that belongs together, until no pair does
        pairs = [(groups[i].gap(groups[j]), i, j) for i in range(len(groups)) for j in range(i + 1, len(groups))
                 if one_digit(groups[i], groups[j])]
        if not pairs:
            break
        _, i, j = min(pairs)
        groups[i] = groups[i].join(groups.pop(j))
    groups.sort(key=lambda g: g.left + g.right)  # by the centre of each box
    return [g.labels for g in groups]


def split_digits(value: object) -> list[Sketch]:
    """A drawing of one or more digits -> a Sketch per digit, left to right; [] for an empty canvas."""
    canvas = read_canvas(value)  # raises ValueError for garbage, like sketch_to_tensor
    if canvas is None:
        return []
    labels, pieces = ink_pieces(canvas)
    groups = group_pieces(pieces)
    # One digit, the usual case, is all the ink (np.isin sorts, which costs more than the rest of this).
    keeps = [labels > 0] if len(groups) == 1 else [np.isin(labels, group) for group in groups]
    sketches = [digit_sketch(canvas, keep) for keep in keeps]
    return [s for s in sketches if s is not None]
