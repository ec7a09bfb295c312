"""The map of digits as the Draw tab shows it: the picture with the drawing on it, its nearest MNIST
digits with a sentence, the digit under a click, and what the page needs to move a marker itself.

Everything is computed from the model's map (`atlas.atlas_for`, computed once per model) and the
reading the Draw tab already made, so a stroke costs the drawing's features (one small forward pass),
the visitor's own drawings' features, and the picture. Nothing here imports Gradio.

    python -m pytest tests/test_map_view.py
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from mnist_demo.atlas import NEIGHBOURS, Atlas, atlas_for, neighbour_sentence, place_drawings
from mnist_demo.charts import MARK, MapLayout, map_base, map_layout, map_picture
from mnist_demo.data import normalize
from mnist_demo.features import digit_features
from mnist_demo.inference import Reading
from mnist_demo.render import enlarge, gallery_tile
from mnist_demo.residual import Subspace
from mnist_demo.webmodel import PageModelError, page_model

PAGE_DIGITS = 6  # significant digits of the projection sent to the page: its marker moves by < 0.01 pixel
NEIGHBOUR_SCALE = 4  # screen pixels per pixel of a neighbour's tile
CLICKED_SCALE = 6  # ... of the digit clicked on the map


@dataclass(frozen=True)
class MapView:
    """What the map section shows for one drawing (or for none)."""

    picture: np.ndarray  # uint8 RGB: the map, the drawing's marker joined to its neighbours, the visitor's drawings
    neighbours: list[tuple[np.ndarray, str]]  # (tile, caption) of each digit's nearest map digits, nearest first
    sentence: str  # "Your drawing sits among 7s." (Markdown), or what to do when nothing is drawn


def layout_of(atlas: Atlas) -> MapLayout:
    """The map's axes: the map digits' own square, so they stay put while drawings come and go."""
    return map_layout(atlas.points)


BASES_KEPT = 8  # maps' pictures without drawings kept, all visitors together (0.76 MB each)
_BASES: OrderedDict[int, tuple[weakref.ref, np.ndarray]] = OrderedDict()  # id(atlas) -> (atlas, picture)
_BASES_LOCK = threading.Lock()


def base_of(atlas: Atlas) -> np.ndarray:
    """`charts.map_base` of a map, drawn once while it is among the last `BASES_KEPT` used."""
    with _BASES_LOCK:
        kept = _BASES.get(id(atlas))
        if kept is not None and kept[0]() is atlas:
            _BASES.move_to_end(id(atlas))
            return kept[1]
    base = map_base(atlas.points, atlas.digits.labels.numpy(), layout_of(atlas))
    with _BASES_LOCK:
        _BASES[id(atlas)] = (weakref.ref(atlas), base)
        while len(_BASES) > BASES_KEPT:
            _BASES.popitem(last=False)
    return base


def mine_points(model: nn.Module, atlas: Atlas, images: np.ndarray) -> np.ndarray:
    """(M, 28, 28) uint8 drawings of the visitor's -> (M, 2) points on `atlas`."""
    if not len(images):
        return np.zeros((0, 2), np.float32)
    return atlas.place(digit_features(model, torch.from_numpy(np.ascontiguousarray(images))))


def map_view(
    model: nn.Module,
    reading: Reading | None,
    mine_images: np.ndarray | None = None,
    mine_labels: np.ndarray | None = None,
    truth: int | None = None,
) -> MapView:
    """The map of `model` with the drawing `reading` was made from on it (none: the map alone) and the
    visitor's labelled drawings; `truth` is the digit the visitor says they drew, for the sentence."""
    atlas = atlas_for(model)
    layout = layout_of(atlas)
    mine = mine_points(model, atlas, mine_images) if mine_images is not None else None
    labels, base = atlas.digits.labels.numpy(), base_of(atlas)
    if reading is None:
        picture = map_picture(atlas.points, labels, layout, mine=mine, mine_labels=mine_labels, base=base)
        return MapView(picture, [], "Draw a digit to see where it lands among the digits this model knows.")
    x = torch.cat([d.sketch.tensor for d in reading.digits])  # (D, 1, 28, 28)
    placed = place_drawings(model, atlas, x)
    picture = map_picture(
        atlas.points,
        labels,
        layout,
        drawings=np.stack([p.point for p in placed]),
        neighbours=[p.neighbours.points for p in placed],
        mine=mine,
        mine_labels=mine_labels,
        base=base,
    )
    tiles = [
        (gallery_tile(image, NEIGHBOUR_SCALE), f"{label}" if len(placed) == 1 else f"digit {i + 1}: {label}")
        for i, p in enumerate(placed)
        for image, label in zip(p.neighbours.images, p.neighbours.labels.tolist())
    ]
    if len(placed) == 1:
        sentence = neighbour_sentence(placed[0].neighbours.labels.tolist(), truth)
    else:  # a number: one clause per digit
        sentence = " ".join(
            f"Digit {i + 1} sits " + neighbour_sentence(p.neighbours.labels.tolist()).split(" sits ", 1)[1]
            for i, p in enumerate(placed)
        )
    return MapView(picture, tiles, f"**{sentence}** Its {NEIGHBOURS} nearest digits, as the network sees them:")


def clicked(model: nn.Module, x: float, y: float) -> tuple[np.ndarray, str] | None:
    """The map digit drawn nearest the clicked pixel (x, y) of `model`'s map picture: its enlarged image
    and a caption; None when the click is not on a digit."""
    atlas = atlas_for(model)
    i = layout_of(atlas).nearest(atlas.points, x, y)
    if i is None:
        return None
    label, row = int(atlas.digits.labels[i]), int(atlas.digits.rows[i])
    image = atlas.digits.images[i].numpy()
    with torch.inference_mode():
        read = int(model(normalize(torch.from_numpy(np.ascontiguousarray(image))[None])).argmax())
    verdict = "and the model reads it so" if read == label else f"but the model reads it as {read}"
    return enlarge(image, CLICKED_SCALE), f"A {label} from the MNIST test set (#{row}), {verdict}."


_HASHES: weakref.WeakKeyDictionary[nn.Module, str | None] = weakref.WeakKeyDictionary()
_HASHES_LOCK = threading.Lock()


def page_hash(model: nn.Module, subspace: Subspace | None = None) -> str | None:
    """The content hash the page knows `model` by (`webmodel.page_model`, with its "not a digit" rule's
    `subspace` when the rule needs one), None for a model too big for it. Kept per model object: a model
    always comes with its checkpoint's rule."""
    with _HASHES_LOCK:
        if model in _HASHES:
            return _HASHES[model]
    try:
        found = page_model(model, subspace).hash
    except PageModelError:
        found = None
    with _HASHES_LOCK:
        _HASHES[model] = found
    return found


def page_map(model: nn.Module, subspace: Subspace | None = None) -> dict:
    """What mnist_demo/web/map.js needs to put the page's own readings of `model` on its map picture:
    point = (features - mean) @ matrix.T, then pixel = side / 2 + (point - centre) * (side / 2 - pad) / half
    (y flipped), kept `mark` pixels inside the square. `modelHash` names the model whose features fit."""
    atlas = atlas_for(model)
    projection = atlas.projection.to_json()
    return {
        "modelHash": page_hash(model, subspace),
        "mean": _rounded(projection["mean"]),
        "matrix": [_rounded(row) for row in projection["matrix"]],
        "layout": layout_of(atlas).to_json(),
        "mark": MARK,
    }


def _rounded(values: list[float]) -> list[float]:
    return [float(f"{v:.{PAGE_DIGITS}g}") for v in values]
