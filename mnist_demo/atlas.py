"""The map of digits: what a network computes just before its classifier, for 2,000 MNIST test digits, in 2-D.

The features are the classifier's input (the MLP's hidden ReLUs, the CNN's flattened last block; see
`mnist_demo.features`). A fixed, seeded sample of test digits is projected to two dimensions by one
linear map, `(features - mean) @ matrix.T`, so any drawing lands on the same map with one small matrix
product, in Python or in the page (`Projection.to_json`).

The projection is a shrinkage LDA; `mnist_demo.projection` says why, with the measurements.

Neighbours are found in feature space, not on the map: two dimensions cannot hold ten digits apart, so
a drawing's nearest points on the map are often not the digits the network finds most alike (5-NN in
feature space agrees with the true digit on 99.6% of held-out digits for the shipped CNN, 5-NN on the
map on 86.8%; for the shipped MLP 94.5% against 62.7%: the table `python -m mnist_demo.atlas` prints).
The map then shows where those neighbours lie, joined to the drawing.

A model that no longer changes (a shipped one, a visitor's evaluated copy) has its map computed once
and kept while the model lives, within a bound on memory for all visitors together (`atlas_for`); a
training run keeps its own (`mnist_demo.replay`) and hints its last frame to its models (`hint`).

    python -m mnist_demo.atlas weights/cnn.safetensors      # PCA against LDA (see mnist_demo/projection.py)
"""

from __future__ import annotations

import argparse
import functools
import sys
import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from mnist_demo.data import NUM_CLASSES, MNISTNotFoundError, Split, load_mnist
from mnist_demo.features import digit_features, features
from mnist_demo.projection import Projection, centroid_accuracy, fit_lda, fit_pca, orientation, procrustes

MAP_SIZE = 2000  # test digits on the map: enough for every digit to form a cloud, few enough to plot
HELD_OUT_SIZE = 2000  # other test digits, never fitted: how well the map places new digits
SAMPLE_SEED = 17  # seeds the choice of map digits: the same map digits in every process and every run
NEIGHBOURS = 5  # nearest map digits shown beside a drawing


# ---------------------------------------------------------------------------------------------------
# Which digits


@dataclass(frozen=True)
class Digits:
    """Some MNIST test digits: their rows in the test split, images and labels."""

    rows: torch.Tensor  # (N,) int64 indices into the test split
    images: torch.Tensor  # (N, 28, 28) uint8
    labels: torch.Tensor  # (N,) int64


@functools.lru_cache(maxsize=2)
def map_digits(held_out: bool = False) -> Digits:
    """The seeded sample of test digits the map shows (or, `held_out`, the next ones, to measure it on)."""
    test = load_mnist(train=False)
    order = torch.randperm(len(test), generator=torch.Generator().manual_seed(SAMPLE_SEED))
    rows = order[MAP_SIZE : MAP_SIZE + HELD_OUT_SIZE] if held_out else order[:MAP_SIZE]
    return Digits(rows, test.images[rows], test.labels[rows])


# ---------------------------------------------------------------------------------------------------
# The map of one model


@dataclass(frozen=True)
class Neighbours:
    """The map digits a drawing is most alike, nearest first."""

    rows: np.ndarray  # (k,) indices into the MNIST test split
    labels: np.ndarray  # (k,) their digits
    images: np.ndarray  # (k, 28, 28) uint8
    points: np.ndarray  # (k, 2) where they are on the map

    def sentence(self, truth: int | None = None) -> str:
        """'Your 4 sits among 9s.': `truth` is the digit the visitor says they drew, when they said."""
        return neighbour_sentence(self.labels.tolist(), truth)


def plural(digit: int) -> str:
    return f"{digit}s"


def neighbour_sentence(labels: list[int], truth: int | None = None) -> str:
    """One sentence on a drawing's nearest digits (nearest first): among, mostly among, or between."""
    subject = "Your drawing" if truth is None else f"Your {truth}"
    if not labels:
        return f"{subject} has no neighbours on this map."
    counts = np.bincount(labels, minlength=NUM_CLASSES)
    # Most frequent first; ties go to the digit whose first neighbour is nearer.
    ranked = sorted(set(labels), key=lambda d: (-counts[d], labels.index(d)))
    top = ranked[0]
    if counts[top] == len(labels):
        return f"{subject} sits among {plural(top)}."
    if counts[top] * 2 > len(labels) + 1:  # 4 of 5: a clear majority
        return f"{subject} sits mostly among {plural(top)}."
    return f"{subject} sits between {plural(top)} and {plural(ranked[1])}."


@dataclass(frozen=True)
class Atlas:
    """The map of one model at one moment: the map digits' points, and what placing a drawing needs."""

    projection: Projection
    points: np.ndarray  # (N, 2) float32: where each map digit lies
    digits: Digits  # which test digits they are
    features: torch.Tensor  # (N, F) float16: the map digits' features, to find a drawing's neighbours
    separation: float  # share of the map digits nearest the centre of their own digit (10% is chance)

    @property
    def nbytes(self) -> int:
        """Memory it holds of its own (the digits' images are shared by every map)."""
        own = self.features.element_size() * self.features.nelement() + self.points.nbytes
        return own + self.projection.mean.nbytes + self.projection.matrix.nbytes

    def place(self, feats: torch.Tensor | np.ndarray) -> np.ndarray:
        """(n, F) features of drawings -> (n, 2) points on this map."""
        return self.projection(feats)

    def neighbours(self, feats: torch.Tensor, k: int = NEIGHBOURS) -> Neighbours:
        """The `k` map digits nearest one drawing's features (F,), by Euclidean distance in feature space."""
        feats = torch.as_tensor(feats, dtype=torch.float32).reshape(1, -1)
        if feats.shape[1] != self.features.shape[1]:
            raise ValueError(f"expected {self.features.shape[1]} features, got {feats.shape[1]}")
        distances = torch.cdist(feats, self.features.float())[0]  # (N,)
        nearest = distances.topk(min(k, len(distances)), largest=False).indices.numpy()
        return Neighbours(
            self.digits.rows.numpy()[nearest],
            self.digits.labels.numpy()[nearest],
            self.digits.images.numpy()[nearest],
            self.points[nearest],
        )


def build_atlas(
    model: nn.Module,
    previous: Atlas | None = None,
    digits: Digits | None = None,
    feats: torch.Tensor | None = None,
) -> Atlas:
    """The map of `model` now; turned to match `previous` (the same model earlier) so clusters stay put.

    `feats` are the map digits' features when the caller already has them.
    """
    digits = digits or map_digits()
    feats = digit_features(model, digits.images) if feats is None else feats
    labels = digits.labels.numpy()
    projection = fit_lda(feats, digits.labels)
    points = projection(feats)
    if previous is not None and len(previous.points) == len(points):
        turn = procrustes(points, previous.points)
    else:
        turn = orientation(points, labels)
    projection, points = projection.turned(turn), points @ turn
    separation = centroid_accuracy(points, labels, points, labels)
    return Atlas(projection, points, digits, feats.half(), separation)


class AtlasCache:
    """The maps of models that no longer change, least recently used dropped past `max_bytes`.

    Keyed by the model object, weakly: a map goes when its model goes (a visitor's session ended, a
    run's earlier epoch replaced), and at most `max_bytes` of maps are kept however many models
    visitors keep alive; a map dropped early is computed again when asked for. Thread-safe.
    """

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._maps: OrderedDict[int, tuple[weakref.ref, Atlas]] = OrderedDict()  # id(model) -> (model, map)
        self._bytes = 0
        self._dead: list[tuple[int, weakref.ref]] = []  # models gone, their maps not yet dropped

    def get(self, model: nn.Module) -> Atlas | None:
        with self._lock:
            self._purge()
            entry = self._maps.get(id(model))
            if entry is None or entry[0]() is not model:
                return None
            self._maps.move_to_end(id(model))
            return entry[1]

    def put(self, model: nn.Module, atlas: Atlas) -> Atlas:
        """Keep `atlas` as `model`'s map (replacing any); the map kept."""
        key = id(model)
        ref = weakref.ref(model, lambda ref: self._forget(key, ref))
        with self._lock:
            self._purge()
            old = self._maps.pop(key, None)
            self._bytes -= old[1].nbytes if old is not None else 0
            self._maps[key] = (ref, atlas)
            self._bytes += atlas.nbytes
            while self._bytes > self.max_bytes and len(self._maps) > 1:
                _, (_, dropped) = self._maps.popitem(last=False)
                self._bytes -= dropped.nbytes
        return atlas

    def __len__(self) -> int:
        return len(self._maps)

    @property
    def nbytes(self) -> int:
        return self._bytes

    def _forget(self, key: int, ref: weakref.ref) -> None:
        """A model was collected. This may run inside any allocation, even one of this class's own
        methods holding the lock: then that method drops the map before it lets go of the lock."""
        self._dead.append((key, ref))
        if self._lock.acquire(blocking=False):
            try:
                self._purge()
            finally:
                self._lock.release()

    def _purge(self) -> None:  # with the lock held
        while self._dead:
            key, ref = self._dead.pop()
            entry = self._maps.get(key)
            if entry is not None and entry[0] is ref:
                del self._maps[key]
                self._bytes -= entry[1].nbytes


# 48 MB of maps for all visitors together: the three shipped models' (6 MB) and about 18 maps of the
# Train tab's default CNN (2.3 MB each) or 5 of the widest (9.3 MB). A map costs 0.3-1 s to recompute.
MAX_ATLAS_BYTES = 48 * 2**20
ATLASES = AtlasCache(MAX_ATLAS_BYTES)


@dataclass(frozen=True)
class Hint:
    """A map already computed for a model by its training run: where its projection puts the map digits."""

    projection: Projection
    points: np.ndarray  # (N, 2) float32, the map digits in `map_digits()` order
    separation: float


_HINTS: weakref.WeakKeyDictionary[nn.Module, Hint] = weakref.WeakKeyDictionary()
_HINTS_LOCK = threading.Lock()


def atlas_for(model: nn.Module) -> Atlas:
    """The map of a model whose weights no longer change, computed on first use and kept while it lives
    (within `MAX_ATLAS_BYTES`). A model whose run left a `hint` keeps that run's last map, turned as it was.

    Two visitors asking at once for a model not yet mapped may both compute it; the later is kept.
    """
    found = ATLASES.get(model)
    if found is not None:
        return found
    with _HINTS_LOCK:
        hint = _HINTS.get(model)
    digits = map_digits()
    if hint is not None and len(hint.points) == len(digits.labels):
        feats = digit_features(model, digits.images)  # the neighbours need them; the fit is the run's
        found = Atlas(hint.projection, hint.points, digits, feats.half(), hint.separation)
    else:
        found = build_atlas(model, digits=digits)
    return ATLASES.put(model, found)


def remember(model: nn.Module, atlas: Atlas) -> None:
    """Keep `atlas` as `model`'s map."""
    ATLASES.put(model, atlas)


def hint(model: nn.Module, projection: Projection, points: np.ndarray, separation: float) -> None:
    """Say how a training run mapped `model` (the evaluated copy the visitor gets of one of its epochs), so
    that its map in the Draw tab is the run's last frame, turned the same way, and costs no fit."""
    with _HINTS_LOCK:
        _HINTS[model] = Hint(projection, points, separation)


@functools.lru_cache(maxsize=1)
def unmapped_test_digits() -> Split:
    """The MNIST test digits that are not on the map: a training run evaluates these in its loop and the
    map digits while mapping them (one forward pass for both), and adds the two counts."""
    test = load_mnist(train=False)
    keep = torch.ones(len(test), dtype=torch.bool)
    keep[map_digits().rows] = False
    return Split(test.images[keep], test.labels[keep])


@dataclass(frozen=True)
class Placement:
    """One drawing on a map: where it lands, and the map digits the network finds it most alike."""

    point: np.ndarray  # (2,) float32
    neighbours: Neighbours


def place_drawings(model: nn.Module, atlas: Atlas, x: torch.Tensor) -> list[Placement]:
    """Normalised drawings (D, 1, 28, 28), as `read_drawing` batches them -> where each lands on `model`'s map."""
    feats = features(model, x)
    return [Placement(point, atlas.neighbours(f)) for point, f in zip(atlas.place(feats), feats)]


# ---------------------------------------------------------------------------------------------------
# Command line: the comparison in the docstring


def compare(model: nn.Module, shrinkages: tuple[float, ...] = (0.05, 0.2, 0.5, 0.8)) -> dict[str, float]:
    """Held-out nearest-centroid accuracy of PCA and of LDA at each shrinkage, plus 5-NN accuracy."""
    fit, held = map_digits(), map_digits(held_out=True)
    fit_feats, held_feats = digit_features(model, fit.images), digit_features(model, held.images)
    labels, held_labels = fit.labels.numpy(), held.labels.numpy()

    def score(projection: Projection) -> float:
        return centroid_accuracy(projection(fit_feats), labels, projection(held_feats), held_labels)

    result = {"pca": score(fit_pca(fit_feats))}
    result |= {f"lda {s:g}": score(fit_lda(fit_feats, fit.labels, s)) for s in shrinkages}
    nearest = torch.cdist(held_feats, fit_feats).topk(NEIGHBOURS, largest=False).indices  # (H, k)
    result["5-nn in feature space"] = float((fit.labels[nearest].mode(1).values == held.labels).float().mean())
    atlas = build_atlas(model, digits=fit, feats=fit_feats)
    held_points = atlas.place(held_feats)
    near_2d = torch.cdist(torch.from_numpy(held_points), torch.from_numpy(atlas.points))
    near_2d = near_2d.topk(NEIGHBOURS, largest=False).indices
    result["5-nn on the map"] = float((fit.labels[near_2d].mode(1).values == held.labels).float().mean())
    return result


def main(argv: list[str] | None = None) -> int:
    from mnist_demo.checkpoint import CheckpointError, load_checkpoint
    from mnist_demo.models import build_model

    parser = argparse.ArgumentParser(prog="python -m mnist_demo.atlas", description=__doc__.splitlines()[0])
    parser.add_argument("weights", nargs="*", help=".safetensors checkpoints; an untrained CNN is always added")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    models = [("untrained CNN (width 32)", build_model("cnn"))]
    try:
        models = [(path, load_checkpoint(path).model) for path in args.weights] + models
        rows = [(name, compare(model)) for name, model in models]
    except (CheckpointError, MNISTNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    columns = list(rows[0][1])
    width = max(len(name) for name, _ in rows)
    print(f"{'held-out nearest-centroid accuracy':<{width}}  " + "  ".join(c.rjust(8) for c in columns))
    for name, result in rows:
        print(f"{name:<{width}}  " + "  ".join(f"{result[c]:.1%}".rjust(max(8, len(c))) for c in columns))
    return 0


if __name__ == "__main__":
    sys.exit(main())
