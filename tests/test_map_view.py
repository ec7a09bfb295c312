"""The Draw tab's map of digits through its handlers: a drawing lands where its features say, among its
neighbours, with the visitor's drawings marked; clicks find digits; the page gets what it needs once per
model; the maps kept for all visitors stay within their bound.

    MNIST_ROOT=../shared/data python -m pytest tests/test_map_view.py
"""

from __future__ import annotations

import gc
import json

import numpy as np
import pytest
import torch

from mnist_demo import atlas as atlas_module
from mnist_demo import mapview
from mnist_demo.atlas import NEIGHBOURS, AtlasCache, Digits, atlas_for, build_atlas, hint, place_drawings
from mnist_demo.charts import DIGIT_COLOURS, MAP_SIDE, MARK
from mnist_demo.data import MNISTNotFoundError
from mnist_demo.features import digit_features
from mnist_demo.inference import read_drawing
from mnist_demo.models import build_model
from mnist_demo.reject import decline_threshold
from mnist_demo.session import Visitor
from mnist_demo.webmodel import page_model
from testkit.sketches import draw, sketchpad
from ui.atlas import NO_MNIST, MapHandlers


@pytest.fixture(scope="module")
def handlers(models):
    return MapHandlers(models)


def rgb(hex_colour: str) -> np.ndarray:
    return np.array([int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)])


def reading_of(models, text: str, key: str = "cnn", visitor=None, **style):
    return read_drawing(models.pick(key, visitor).model, sketchpad(draw(text, **style)))


@pytest.mark.mnist
def test_a_drawn_seven_sits_among_sevens_where_its_features_put_it(models, handlers, mnist_test):
    reading = reading_of(models, "7")
    picture, sentence, neighbours, page, sent = handlers.show(reading, "cnn", Visitor(), None)
    assert picture.shape == (MAP_SIDE + 48, MAP_SIDE, 3) and picture.dtype == np.uint8
    assert "Your drawing sits among 7s." in sentence
    assert [caption for _, caption in neighbours] == ["7"] * NEIGHBOURS
    # The ring is drawn where the drawing's features project: white inside, dark on its edge.
    model = models.pick("cnn", None).model
    atlas = atlas_for(model)
    point = place_drawings(model, atlas, reading.digits[0].sketch.tensor)[0].point
    x, y = np.clip(mapview.layout_of(atlas).to_pixels(point)[0], MARK, MAP_SIDE - 1 - MARK).round().astype(int)
    assert (picture[y, x] == 255).all()
    assert picture[y, x + MARK - 1].max() < 90  # the ring's black outline
    # The page gets the projection and axes, once: the same model again sends nothing.
    data = json.loads(page)
    rule = decline_threshold(models.pick("cnn", None).metadata)  # its "residual" subspace travels with it
    assert data["modelHash"] == sent == page_model(model, rule.page_subspace).hash
    assert len(data["mean"]) == len(data["matrix"][0]) == len(data["matrix"][1]) == atlas.features.shape[1]
    assert data["layout"] == mapview.layout_of(atlas).to_json() and data["mark"] == MARK
    again = handlers.show(reading, "cnn", Visitor(), sent)
    assert again[3] == {"__type__": "update"}  # gr.skip(): the page has it already
    mlp = handlers.show(reading_of(models, "7", "mlp"), "mlp", Visitor(), sent)
    assert json.loads(mlp[3])["modelHash"] == mlp[4] != sent  # another model: its own projection


@pytest.mark.mnist
def test_the_pages_numbers_place_a_drawing_where_the_server_does(models):
    """The formula map.js runs (test_map_browser.py runs it in chromium), in Python on the rounded numbers."""
    model = models.pick("cnn", None).model
    data = mapview.page_map(model)
    reading = reading_of(models, "3")
    feats = digit_features(model, torch.from_numpy(reading.digits[0].sketch.image)[None])[0].numpy()
    point = (feats - np.array(data["mean"])) @ np.array(data["matrix"]).T
    layout = data["layout"]
    scale = (layout["side"] / 2 - layout["pad"]) / layout["half"]
    page_pixel = layout["side"] / 2 + (point - layout["centre"]) * scale * np.array([1, -1])
    server = mapview.layout_of(atlas_for(model)).to_pixels(atlas_for(model).place(feats[None]))[0]
    assert np.allclose(page_pixel, server, atol=0.01)


@pytest.mark.mnist
def test_the_visitors_drawings_are_squares_in_their_digits_colour(models, handlers, mnist_test):
    visitor = Visitor()
    visitor.drawings.add(sketchpad(draw("3")), 3)
    visitor.drawings.add(sketchpad(draw("0", height=0.5)), 0)
    picture, sentence, neighbours, _, _ = handlers.show(None, "cnn", visitor, None)  # the map alone, as on load
    assert neighbours == [] and "Draw a digit" in sentence
    model = models.pick("cnn", None).model
    atlas = atlas_for(model)
    split = visitor.drawings.as_split()
    pixels = mapview.layout_of(atlas).to_pixels(mapview.mine_points(model, atlas, split.images.numpy()))
    alone = handlers.show(None, "cnn", Visitor(), None)[0]  # no drawings of the visitor's
    for (x, y), label in zip(pixels.round().astype(int), split.labels.tolist()):
        assert np.abs(picture[y, x].astype(int) - rgb(DIGIT_COLOURS[label])).max() <= 2, label
        right = slice(x + MARK - 4, x + MARK + 1)  # where the square's right edge is drawn, give or take rounding
        assert picture[y, right].max(-1).min() < 60 <= alone[y, right].max(-1).min(), label  # its dark outline


@pytest.mark.mnist
def test_the_sentence_names_the_digit_the_visitor_says_and_a_number_gets_one_clause_per_digit(models, handlers):
    reading = reading_of(models, "7")
    assert "**Your 4 sits among 7s.**" in handlers.said("4", reading, "cnn", Visitor(), None)[1]
    number = reading_of(models, "38", height=0.3)
    assert len(number.digits) == 2
    _, sentence, neighbours, _, _ = handlers.show(number, "cnn", Visitor(), None)
    assert sentence.startswith("**Digit 1 sits ") and " Digit 2 sits " in sentence
    assert len(neighbours) == 2 * NEIGHBOURS and neighbours[-1][1].startswith("digit 2: ")
    assert all(out == {"__type__": "update"} for out in handlers.said("4", number, "cnn", Visitor(), None))


class Click:
    def __init__(self, x, y):
        self.index = [x, y]


@pytest.mark.mnist
def test_clicking_a_dot_shows_that_digit_and_clicking_paper_says_so(models, handlers):
    atlas = atlas_for(models.pick("cnn", None).model)
    pixels = mapview.layout_of(atlas).to_pixels(atlas.points)
    # A digit with no other within 3 pixels, so the click can only mean it.
    gaps = np.hypot(*(pixels[:, None] - pixels[None]).transpose(2, 0, 1)) + np.eye(len(pixels)) * 1e9
    i = int(gaps.min(1).argmax())
    image, caption = handlers.click("cnn", Visitor(), Click(*pixels[i] + 1))
    label, row = int(atlas.digits.labels[i]), int(atlas.digits.rows[i])
    assert caption.startswith(f"A {label} from the MNIST test set (#{row})")
    assert image.shape == (168, 168, 3)
    assert image[3, 3].max() == atlas.digits.images[i][0, 0].item()  # the digit itself, enlarged
    assert handlers.click("cnn", Visitor(), Click(MAP_SIDE - 2, MAP_SIDE + 40))[1] == "No digit there: click on a dot."


def test_without_mnist_the_map_says_why_instead_of_failing(models, handlers, monkeypatch):
    def missing(model):
        raise MNISTNotFoundError("no MNIST here")

    monkeypatch.setattr(mapview, "atlas_for", missing)
    assert handlers.show(None, "cnn", Visitor(), None) == (None, NO_MNIST, [], None, None)
    assert handlers.click("cnn", Visitor(), Click(10, 10)) == (None, NO_MNIST)


def synthetic_digits(n: int = 100) -> Digits:
    labels = torch.arange(n) % 10
    images = torch.zeros(n, 28, 28, dtype=torch.uint8)
    for i, d in enumerate(labels.tolist()):
        images[i, 4 + 2 * d : 8 + 2 * d, 6:22] = 200 + i % 50
    return Digits(torch.arange(n), images, labels)


def test_the_maps_kept_stay_within_their_bound_and_go_with_their_models():
    torch.manual_seed(0)
    digits = synthetic_digits()
    models = [build_model("mlp", 16) for _ in range(4)]
    maps = [build_atlas(m, digits=digits) for m in models]
    cache = AtlasCache(max_bytes=int(2.5 * maps[0].nbytes))
    for m, a in zip(models, maps):
        assert cache.put(m, a) is a
    assert len(cache) == 2 and cache.nbytes <= cache.max_bytes  # the two least recently used went
    assert cache.get(models[0]) is None and cache.get(models[3]) is maps[3]
    cache.get(models[2])
    cache.put(models[1], maps[1])  # drops models[3]'s, now the least recently used
    assert cache.get(models[3]) is None and cache.get(models[2]) is maps[2]
    del models[2]
    gc.collect()
    assert len(cache) == 1 and cache.nbytes == maps[1].nbytes  # a map goes with its model


@pytest.mark.mnist
def test_a_trained_models_map_is_its_runs_last_frame(mnist_test):
    torch.manual_seed(5)
    model = build_model("mlp", 16)
    run_map = build_atlas(model)  # stands for the run's last frame
    turned = run_map.points @ np.array([[0, 1], [-1, 0]], np.float32)
    hint(model, run_map.projection.turned(np.array([[0, 1], [-1, 0]], np.float32)), turned, run_map.separation)
    found = atlas_for(model)
    assert np.array_equal(found.points, turned)  # as the run drew it, not refitted and oriented anew
    assert np.allclose(found.place(found.features[:3].float()), turned[:3], atol=0.05)
    assert atlas_module.ATLASES.get(model) is found
