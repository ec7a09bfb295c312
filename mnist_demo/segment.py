"""Several digits on one canvas -> one MNIST-style Sketch per digit, read left to right.

The ink is split into connected pieces on the coarse ink map that `read_canvas` already builds; pieces
that belong to one digit (the two strokes of a 4 or a 5, a short stroke beside a long one) are joined
again, closest first, and each digit then goes through exactly the preprocessing `sketch_to_tensor` uses. Digits that
touch each other stay one piece: people leave gaps between digits far more often than between strokes.

    python -m pytest tests/test_segment.py
"""

from __future__ import annotations

import heapq
import itertools
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
    """Pieces read as one digit, and their joint bounding box (coarse pixels, or a stroke drawing's units)."""

    labels: tuple[int, ...]
    top: float
    left: float
    bottom: float
    right: float

    @property
    def height(self) -> float:
        return self.bottom - self.top

    @property
    def width(self) -> float:
        return self.right - self.left

    def join(self, other: Group) -> Group:
        return Group(
            self.labels + other.labels,
            min(self.top, other.top),
            min(self.left, other.left),
            max(self.bottom, other.bottom),
            max(self.right, other.right),
        )

    def gap(self, other: Group) -> float:
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
    return (
        short.height < SHORT_PIECE * tall.height
        and a.gap(b) <= NEAR * tall.height
        and both.width <= MAX_ASPECT * both.height
    )


def group_pieces(pieces: list[tuple[slice, slice]]) -> list[tuple[int, ...]]:
    """Join pieces (label i + 1 has bounding slices pieces[i]) into digits: label tuples, left to right."""
    boxes = [(rows.start, cols.start, rows.stop, cols.stop) for rows, cols in pieces]
    return [tuple(i + 1 for i in group) for group in group_boxes(boxes)]


def group_boxes(boxes: list[tuple[float, float, float, float]]) -> list[tuple[int, ...]]:
    """Join pieces with bounding boxes (top, left, bottom, right) into digits: index tuples, left to right.

    Coarse pixels here, the ink of strokes in `mnist_demo.strokes`: the rules only compare sizes and gaps.
    The closest pair that belongs together is joined first, until no pair does. Candidate pairs wait in a
    heap as (gap, i, j) by position in `groups`: a join leaves the pair's first position holding both and
    the second empty, so positions keep the pieces' order (which breaks ties) and only the joined group's
    pairs are new. A pair whose positions changed since it was offered is stale and skipped. A canvas of
    n pieces then costs n^2 pair tests, not n^3.
    """
    groups: list[Group | None] = [Group((i,), *box) for i, box in enumerate(boxes)]
    version = [0] * len(groups)
    candidates: list[tuple[float, int, int, int, int]] = []

    def offer(i: int, j: int) -> None:
        if one_digit(groups[i], groups[j]):
            heapq.heappush(candidates, (groups[i].gap(groups[j]), i, j, version[i], version[j]))

    for i, j in itertools.combinations(range(len(groups)), 2):
        offer(i, j)
    while candidates:
        _, i, j, seen_i, seen_j = heapq.heappop(candidates)
        if (seen_i, seen_j) != (version[i], version[j]):
            continue
        groups[i], groups[j] = groups[i].join(groups[j]), None
        version[i] += 1
        version[j] += 1
        for k, other in enumerate(groups):
            if other is not None and k != i:
                offer(min(i, k), max(i, k))
    joined = sorted((g for g in groups if g is not None), key=lambda g: g.left + g.right)  # by box centre
    return [g.labels for g in joined]


def split_digits(value: object, limit: int | None = None) -> list[Sketch]:
    """A drawing of one or more digits -> a Sketch per digit, left to right; [] for an empty canvas.

    With a `limit`, only the first `limit` digits are prepared: a scribble of many pieces costs no more.
    """
    canvas = read_canvas(value)  # raises ValueError for garbage, like sketch_to_tensor
    if canvas is None:
        return []
    labels, pieces = ink_pieces(canvas)
    sketches = []
    for group in group_pieces(pieces):
        member = np.zeros(len(pieces) + 1, bool)  # label -> in this group (a lookup: np.isin would sort)
        member[list(group)] = True
        sketch = digit_sketch(canvas, member[labels])
        if sketch is not None:
            sketches.append(sketch)
            if len(sketches) == limit:
                break
    return sketches
