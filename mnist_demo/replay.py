"""The map while training: one frame for the untrained network and one after each epoch, to watch and replay.

`Replay.record(model, epoch)` recomputes the map of a model in the middle of training (its features
for the 2,000 map digits in eval mode, a fresh LDA fit) and turns it to match the previous frame
(orthogonal Procrustes on the same digits' points), so clusters stay where they were and only move as
much as the network changed. Each frame also keeps the first layer's weights and where the visitor's
own labelled drawings land, so a replay can step through everything without the models of past
epochs. A frame is 16 kB of points, 12 bytes per feature of projection (7 kB for the app's default
CNN, 28 kB at its widest) and the first layer (at most 64 x 784 float16 for an MLP: 100 kB).

Cost per epoch (`python -m bench --only atlas` measures it): the LDA fit, the Procrustes turn and the
first layer's copy. The map digits' features come from the forward pass that measures the model on
them: `runs.train_stream` evaluates the other 8,000 test digits in the loop and these 2,000 here, so
the map adds no forward pass after the first (the untrained network's).

    python -m bench --only atlas
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from mnist_demo.atlas import Atlas, Digits, build_atlas, map_digits
from mnist_demo.charts import MapLayout, map_layout
from mnist_demo.features import digit_features
from mnist_demo.filters import first_layer
from mnist_demo.projection import Projection


@dataclass(frozen=True)
class Frame:
    """The map at one moment of a training run."""

    epoch: int  # 0: the untrained network; k: after k epochs
    points: np.ndarray  # (N, 2) float32: the map digits, in their order
    separation: float  # share of the map digits nearest the centre of their own digit
    projection: Projection  # where a drawing lands on this frame's map, given this moment's features
    first_layer: np.ndarray  # `filters.first_layer` of the model at this moment
    mine: np.ndarray  # (M, 2) float32: the visitor's labelled drawings on this frame's map
    test_accuracy: float | None = None  # the loop's accuracy at this moment, when it measured one
    seconds: float = 0.0  # how long recording it took (`python -m bench --only atlas` adds them up)


@dataclass
class Replay:
    """The frames of one training run, in order, and the latest map for placing new drawings."""

    mine_images: np.ndarray = field(default_factory=lambda: np.zeros((0, 28, 28), np.uint8))  # (M, 28, 28)
    mine_labels: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # (M,) what the visitor said
    digits: Digits | None = None  # the map digits; None: `atlas.map_digits()` (MNIST's seeded sample)
    frames: list[Frame] = field(default_factory=list)
    atlas: Atlas | None = None  # the latest frame's full map (with the features that neighbours need)

    def record(
        self, model: nn.Module, epoch: int, test_accuracy: float | None = None, feats: torch.Tensor | None = None
    ) -> Frame:
        """Map `model` as it is now and add the frame; safe between two epochs (the mode is restored).

        `feats` are the map digits' features when the caller has them already (`runs.train_stream`
        computes them in the pass that measures the model on those digits).
        """
        start = time.perf_counter()
        self.atlas = build_atlas(model, previous=self.atlas, digits=self.digits, feats=feats)
        mine = (
            self.atlas.place(digit_features(model, torch.from_numpy(self.mine_images)))
            if len(self.mine_images)
            else np.zeros((0, 2), np.float32)
        )
        frame = Frame(
            epoch,
            self.atlas.points,
            self.atlas.separation,
            self.atlas.projection,
            first_layer(model),
            mine,
            test_accuracy,
            time.perf_counter() - start,
        )
        self.frames.append(frame)
        return frame

    @property
    def labels(self) -> np.ndarray:
        """(N,) the map digits' labels, for colouring any frame's points."""
        return (self.digits or map_digits()).labels.numpy()

    def layout(self) -> MapLayout:
        """One square holding every frame's points, so the replay's axes stay put while clusters move."""
        if not self.frames:
            raise ValueError("no frames recorded yet")
        return map_layout(*(f.points for f in self.frames), *(f.mine for f in self.frames))
