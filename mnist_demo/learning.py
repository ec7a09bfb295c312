"""Watching a network learn, as the Train tab shows it: the frames of a visitor's latest run as pictures
with captions, replayable once it ends, and its mistakes as a confusion heatmap whose cells open.

A `Watch` is kept per visitor (the app holds it in `gr.State`). A run starts it, hands it each frame
its stream yields (`runs.RunUpdate.frame`: the untrained network, then every epoch) and finally its
results. Pictures are drawn here, in the serving process, on one set of axes that holds every frame
so far; a frame's pictures are kept until the axes grow, so a replay redraws nothing. Nothing here
imports Gradio.

    python -m pytest tests/test_learning.py
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from mnist_demo.atlas import map_digits
from mnist_demo.charts import HEATMAP, MapLayout, confusion_picture, map_layout, map_picture
from mnist_demo.data import load_mnist
from mnist_demo.filters import picture as layer_picture
from mnist_demo.metrics import pair_rows
from mnist_demo.render import gallery_tile
from mnist_demo.replay import Frame
from mnist_demo.runs import Results

PAIR_DIGITS = 48  # test digits shown for one cell of the confusion heatmap (the first ones, in test order)
PAIR_SCALE = 3  # screen pixels per pixel of their tiles


@dataclass
class Watch:
    """One visitor's latest training run, as pictures: its frames, then its results."""

    epochs: int = 0  # the run's planned epochs
    probe: np.ndarray | None = None  # (28, 28) uint8: the drawing whose first-layer responses a CNN shows
    crop: int = 0  # border pixels the CNN drops before its first layer
    mine_labels: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # the visitor's drawings' digits
    labels: np.ndarray | None = None  # (N,) the map digits' digits; None: `atlas.map_digits()`'s
    frames: list[Frame] = field(default_factory=list)
    results: Results | None = None
    selected: tuple[int, int] | None = None  # the heatmap cell last chosen
    _layout: MapLayout | None = None
    _pictures: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # frame -> (map, layer)

    def start(self, epochs: int, probe: np.ndarray | None, crop: int = 0, mine_labels=None) -> None:
        """Forget the last run: a new one begins."""
        self.epochs, self.probe, self.crop = epochs, probe, crop
        self.mine_labels = np.zeros(0, np.int64) if mine_labels is None else np.asarray(mine_labels)
        self.frames, self.results, self.selected = [], None, None
        self._layout, self._pictures = None, {}

    def add(self, frame: Frame) -> int:
        """Keep a frame of the run; its index. Axes that no longer hold every frame grow to do so."""
        self.frames.append(frame)
        self._layout = map_layout(*(f.points for f in self.frames), *(f.mine for f in self.frames))
        self._pictures = {}  # drawn on the old axes
        return len(self.frames) - 1

    def pictures(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Frame `i`'s map and first layer as uint8 RGB pictures."""
        if not 0 <= i < len(self.frames):
            raise IndexError(f"there is no frame {i}: the run has {len(self.frames)}")
        if i not in self._pictures:
            frame = self.frames[i]
            labels = map_digits().labels.numpy() if self.labels is None else self.labels
            mine_labels = self.mine_labels if len(self.mine_labels) == len(frame.mine) else None
            mine = frame.mine if mine_labels is not None else None
            drawn = map_picture(frame.points, labels, self._layout, mine=mine, mine_labels=mine_labels)
            self._pictures[i] = drawn, layer_picture(frame.first_layer, self.probe, self.crop)
        return self._pictures[i]

    def caption(self, i: int) -> str:
        """What frame `i` shows, in one line: when, how separated, how accurate."""
        frame = self.frames[i]
        when = "Before training (random weights)" if frame.epoch == 0 else f"After epoch {frame.epoch} of {self.epochs}"
        parts = [f"**{when}**", f"{frame.separation:.0%} of the map's digits lie nearest their own digit's centre"]
        if frame.test_accuracy is not None:
            parts.append(f"test accuracy {frame.test_accuracy:.2%}")
        return " · ".join(parts)

    def finish(self, results: Results) -> np.ndarray:
        """Keep the run's results; the confusion heatmap."""
        self.results, self.selected = results, None
        return confusion_picture(results.confusion)

    def cell(self, x: float, y: float) -> tuple[np.ndarray, list[tuple[np.ndarray, str]], str] | None:
        """The heatmap cell at pixel (x, y): the heatmap with it outlined, the test digits of that (true,
        predicted) pair as (tile, caption), and a label saying which; None off the cells or before results."""
        if self.results is None or self.results.predictions is None:
            return None
        found = HEATMAP.cell_at(x, y)
        if found is None:
            return None
        return self.pair(*found)

    def pair(self, true: int, predicted: int) -> tuple[np.ndarray, list[tuple[np.ndarray, str]], str]:
        """`cell` for the cell (true, predicted)."""
        test = load_mnist(train=False)
        predictions = self.results.predictions
        if len(predictions) != len(test):
            raise ValueError(f"the run's results cover {len(predictions)} digits, the test set has {len(test)}")
        rows = pair_rows(test.labels, torch.from_numpy(predictions.astype(np.int64)), true, predicted).tolist()
        self.selected = (true, predicted)
        shown = rows[:PAIR_DIGITS]
        tiles = [(gallery_tile(test.images[r].numpy(), PAIR_SCALE), f"#{r}: {true} → {predicted}") for r in shown]
        count = len(rows)
        what = f"{true}s read correctly" if true == predicted else f"{true}s read as {predicted}"
        more = f" (the first {len(shown)})" if count > len(shown) else ""
        return confusion_picture(self.results.confusion, self.selected), tiles, f"{count} {what}{more}"
