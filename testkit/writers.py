"""Writers for the per-writer fine-tuning benchmark and tests: each one person, with their own hand.

Two kinds of writer, each giving `per_digit` canvases of every digit, every drawing a little different:
- a font writer: one handwriting font of `mnist_demo.handfonts` (the HELD_OUT group for the benchmark,
  TUNE for choices), every drawing warped, slanted and sized anew;
- a habit writer: the plain digits of `testkit.sketches.STROKES`, except two or three written in one of
  `testkit.styles.UNUSUAL`'s ways (a slashed 0, a 1 with a flag, a mirrored 3, ...) every time, each
  drawing with its own size, slant, place, brush and tremor (`testkit.styles.variations`).
None of this is the training generators' code (`mnist_demo/worldstyles.py`, `mnist_demo/outliers.py`).

    python -c "from testkit.writers import writers; print([w.name for w in writers('bench', 2, 2, 4)])"
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mnist_demo import handfonts
from testkit.sketches import ASPECT, STROKES
from testkit.styles import UNUSUAL, draw, variations

GROUPS = {"bench": (handfonts.HELD_OUT, 1000), "tune": (handfonts.TUNE, 2000)}  # fonts, first seed
HABITS_PER_WRITER = (2, 4)  # each habit writer has 2 or 3 unusual digits


@dataclass(frozen=True)
class Writer:
    """One person's drawings: canvases (white paper, black ink) and their digits, `per_digit` of each in turn."""

    name: str
    canvases: list[np.ndarray]
    digits: list[int]

    def split(self, first: int) -> tuple[list[int], list[int]]:
        """(indices of each digit's first `first` drawings, indices of the rest)."""
        seen: dict[int, int] = {}
        train, test = [], []
        for i, d in enumerate(self.digits):
            seen[d] = seen.get(d, 0) + 1
            (train if seen[d] <= first else test).append(i)
        return train, test


def font_writer(font: str, per_digit: int, seed: int) -> Writer:
    """A writer whose hand is the handwriting font `font`."""
    rng = np.random.default_rng(seed)
    pairs = [(handfonts.draw(str(d), font, rng), d) for d in range(10) for _ in range(per_digit)]
    return Writer(f"font {font}", [c for c, _ in pairs], [d for _, d in pairs])


def habit_writer(per_digit: int, seed: int) -> Writer:
    """A writer of plain digits but for two or three of them, written in an unusual way each time."""
    rng = np.random.default_rng(seed)
    names = list(UNUSUAL)
    habits: dict[int, str] = {}
    for k in rng.permutation(len(names)):
        digit = UNUSUAL[names[k]][0]
        if digit not in habits and len(habits) < rng.integers(*HABITS_PER_WRITER):
            habits[digit] = names[k]
    plain = {int(d): [[(x * ASPECT, y) for x, y in line] for line in lines] for d, lines in STROKES.items()}
    styles = variations(10 * per_digit, seed=seed)
    canvases, digits = [], []
    for d in range(10):
        strokes = UNUSUAL[habits[d]][1] if d in habits else plain[d]
        for j in range(per_digit):
            canvases.append(draw(strokes, styles[d * per_digit + j]))
            digits.append(d)
    return Writer("habits " + ", ".join(habits[d] for d in sorted(habits)), canvases, digits)


def writers(group: str, fonts: int, habits: int, per_digit: int) -> list[Writer]:
    """`fonts` font writers then `habits` habit writers of a group ('bench' or 'tune'), seeded by the group."""
    names, seed = GROUPS[group]
    return [font_writer(name, per_digit, seed + i) for i, name in enumerate(names[:fonts])] + [
        habit_writer(per_digit, seed + 100 + i) for i in range(habits)
    ]
