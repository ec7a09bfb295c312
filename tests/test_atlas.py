"""The map of digits: features are the classifier's input, drawings land among their own digit, and
training is what separates the digits on the map (untrained networks' maps are much less separated).

    python -m pytest tests/test_atlas.py            # the mnist ones need MNIST_ROOT
"""

import dataclasses
import gc
import weakref
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mnist_demo.atlas import (
    NEIGHBOURS,
    Digits,
    atlas_for,
    build_atlas,
    map_digits,
    neighbour_sentence,
    place_drawings,
    remember,
)
from mnist_demo.checkpoint import load_checkpoint
from mnist_demo.data import normalize
from mnist_demo.features import classifier, digit_features, features
from mnist_demo.inference import prepare
from mnist_demo.models import build_model
from mnist_demo.preprocess import sketch_to_tensor
from mnist_demo.projection import centroid_accuracy, fit_lda, fit_pca
from testkit.sketches import draw

ROOT = Path(__file__).resolve().parents[1]
DRAWINGS = sorted((ROOT / "tests" / "drawings").glob("[0-9]/*.png"))
# Held-out nearest-centroid accuracy of the shipped CNN's map, measured at 85.9% by
# `python -m mnist_demo.atlas weights/cnn.safetensors`; chance is 10%.
CNN_SEPARATION_AT_LEAST = 0.83


@pytest.mark.parametrize("name, size, crop", [("mlp", 28, 0), ("mlp", 64, 0), ("cnn", 8, 0), ("cnn", 8, 2)])
def test_features_are_what_the_classifier_reads(name, size, crop):
    torch.manual_seed(0)
    model = build_model(name, size, crop)
    model.train()  # between two epochs: features must use eval mode and give the mode back
    x = torch.randn(7, 1, 28, 28)
    f = features(model, x)
    assert model.training
    model.eval()
    assert torch.allclose(classifier(model)(f), model(x), atol=1e-5)


def test_features_of_an_inference_copy_in_channels_last():
    torch.manual_seed(1)
    model = prepare(build_model("cnn", 8))  # as the app holds it: eval, frozen, channels-last
    x = torch.randn(3, 1, 28, 28)
    assert torch.allclose(classifier(model)(features(model, x)), model(x), atol=1e-5)


def test_features_refuse_foreign_models():
    with pytest.raises(TypeError, match="not a model of this package"):
        features(torch.nn.Linear(784, 10), torch.zeros(1, 1, 28, 28))


@pytest.mark.parametrize(
    "labels, truth, sentence",
    [
        ([9, 9, 9, 9, 9], 4, "Your 4 sits among 9s."),
        ([7, 7, 7, 7, 7], None, "Your drawing sits among 7s."),
        ([9, 9, 4, 9, 9], 4, "Your 4 sits mostly among 9s."),
        ([4, 9, 9, 4, 1], 4, "Your 4 sits between 4s and 9s."),  # a tie: the nearer first
        ([1, 2, 3, 3, 2], 5, "Your 5 sits between 2s and 3s."),
        ([], None, "Your drawing has no neighbours on this map."),
    ],
)
def test_neighbour_sentences(labels, truth, sentence):
    assert neighbour_sentence(labels, truth) == sentence


def synthetic_digits(n: int = 200) -> Digits:
    """Random 'digits' whose label is written in their ink's position, so a network's features differ."""
    g = torch.Generator().manual_seed(3)
    labels = torch.arange(n) % 10
    images = torch.zeros(n, 28, 28, dtype=torch.uint8)
    for i, d in enumerate(labels.tolist()):
        images[i, 4 + 2 * d : 8 + 2 * d, 6:22] = 255
    images = (images.float() * torch.rand(n, 28, 28, generator=g).add(0.5).clamp(max=1)).to(torch.uint8)
    return Digits(torch.arange(n), images, labels)


def test_a_drawing_lands_where_its_features_say_and_finds_its_kind():
    torch.manual_seed(2)
    model = build_model("mlp", 32)
    digits = synthetic_digits()
    atlas = build_atlas(model, digits=digits)
    assert atlas.points.shape == (len(digits.labels), 2) and atlas.features.dtype == torch.float16
    f = digit_features(model, digits.images[:1])
    assert np.allclose(atlas.place(f), atlas.points[:1], atol=1e-3)  # the same digit lands on itself
    near = atlas.neighbours(f[0])
    assert len(near.labels) == NEIGHBOURS and near.rows[0] == 0 and (near.labels == digits.labels[0].item()).all()
    assert near.images.shape == (NEIGHBOURS, 28, 28) and near.points.shape == (NEIGHBOURS, 2)
    with pytest.raises(ValueError, match="features"):
        atlas.neighbours(torch.zeros(5))
    placed = place_drawings(model, atlas, normalize(digits.images[:3]))
    assert [p.neighbours.rows[0] for p in placed] == [0, 1, 2]
    assert np.allclose(np.stack([p.point for p in placed]), atlas.points[:3], atol=1e-3)


def test_a_later_map_is_turned_to_match_the_earlier_one():
    torch.manual_seed(4)
    model, digits = build_model("mlp", 32), synthetic_digits()
    first = build_atlas(model, digits=digits)
    quarter = np.array([[0, 1], [-1, 0]], np.float32)
    earlier = dataclasses.replace(first, points=first.points @ quarter)  # as if the last frame had been turned
    with torch.no_grad():
        model.fc1.weight.add_(0.001 * torch.randn_like(model.fc1.weight))  # a little training
    again = build_atlas(model, previous=earlier, digits=digits)
    alone = build_atlas(model, digits=digits)  # the same map, oriented on its own

    def moved(atlas) -> float:
        return float(((atlas.points - earlier.points) ** 2).sum())

    assert moved(again) < 0.1 * float((earlier.points**2).sum())  # clusters stay where they were
    assert moved(alone) > 0.5 * float((earlier.points**2).sum())  # which they would not on their own
    for turn in (np.diag([-1, 1]), np.diag([1, -1]), quarter, quarter.T):
        assert moved(again) <= float(((again.points @ turn - earlier.points) ** 2).sum())  # no turn sits closer
    f = digit_features(model, digits.images[:5])
    assert np.allclose(again.place(f), again.points[:5], atol=1e-3)  # new drawings land on the turned map


# ---------------------------------------------------------------------------------------------------
# On MNIST, with the shipped models


@pytest.fixture(scope="module")
def shipped(mnist_test):
    """The shipped CNN and MLP with their map digits' and held-out digits' features."""
    fit, held = map_digits(), map_digits(held_out=True)
    out = {}
    torch.manual_seed(0)
    for name, model in [
        ("cnn", load_checkpoint(ROOT / "weights" / "cnn.safetensors").model),
        ("mlp", load_checkpoint(ROOT / "weights" / "mlp.safetensors").model),
        ("untrained cnn", build_model("cnn")),
        ("untrained mlp", build_model("mlp", 128)),
    ]:
        out[name] = model, digit_features(model, fit.images), digit_features(model, held.images)
    return out


def held_out_separation(projection, fit_feats, held_feats) -> float:
    fit, held = map_digits(), map_digits(held_out=True)
    return centroid_accuracy(projection(fit_feats), fit.labels.numpy(), projection(held_feats), held.labels.numpy())


def test_map_digits_are_a_fixed_sample_apart_from_the_held_out_ones(mnist_test):
    fit, held = map_digits(), map_digits(held_out=True)
    assert len(fit.rows) == len(held.rows) == 2000 and not set(fit.rows.tolist()) & set(held.rows.tolist())
    assert torch.equal(fit.labels, mnist_test.labels[fit.rows]) and torch.equal(fit.images, mnist_test.images[fit.rows])
    assert (torch.bincount(fit.labels, minlength=10) > 150).all()  # every digit forms a cloud


def test_the_shipped_cnns_map_separates_held_out_digits(shipped):
    model, fit_feats, held_feats = shipped["cnn"]
    atlas = build_atlas(model, feats=fit_feats)
    separation = held_out_separation(atlas.projection, fit_feats, held_feats)
    assert separation >= CNN_SEPARATION_AT_LEAST, separation
    assert atlas.separation >= CNN_SEPARATION_AT_LEAST  # the map digits themselves, as the picture shows them


@pytest.mark.parametrize("trained, untrained", [("cnn", "untrained cnn"), ("mlp", "untrained mlp")])
def test_training_is_what_separates_the_map(shipped, trained, untrained):
    scores = {}
    for name in (trained, untrained):
        _, fit_feats, held_feats = shipped[name]
        scores[name] = held_out_separation(fit_lda(fit_feats, map_digits().labels), fit_feats, held_feats)
    # Measured: CNN 85.9% trained against 62.2% untrained, MLP-128 63.9% against 44.9%.
    assert scores[untrained] < scores[trained] - 0.15, scores


@pytest.mark.parametrize("name", ["untrained cnn", "mlp"])
def test_lda_separates_better_than_pca_where_the_docstring_says(shipped, name):
    _, fit_feats, held_feats = shipped[name]
    lda = held_out_separation(fit_lda(fit_feats, map_digits().labels), fit_feats, held_feats)
    pca = held_out_separation(fit_pca(fit_feats), fit_feats, held_feats)
    assert lda > pca + 0.1, (lda, pca)  # measured: 62.2% against 32.4%, and 63.9% against 48.8%


def sevens():
    yield "testkit 7", sketch_to_tensor(draw("7"))
    for path in DRAWINGS:
        if path.parent.name == "7":
            with Image.open(path) as image:
                yield path.name, sketch_to_tensor(image)


def test_a_drawn_seven_lands_among_the_sevens(shipped):
    model, fit_feats, _ = shipped["cnn"]
    atlas = build_atlas(model, feats=fit_feats)
    labels = map_digits().labels.numpy()
    centres = np.stack([atlas.points[labels == d].mean(0) for d in range(10)])
    found = list(sevens())
    assert len(found) >= 3
    for name, sketch in found:
        f = features(model, sketch.tensor)
        point = atlas.place(f)[0]
        assert ((centres - point) ** 2).sum(1).argmin() == 7, name  # on the map, nearest the 7s' centre
        near = atlas.neighbours(f[0])
        assert (near.labels == 7).all(), (name, near.labels)  # and the network finds it most like 7s
        assert near.sentence(7) == "Your 7 sits among 7s."


def test_every_real_drawing_sits_mostly_among_its_own_digit(shipped):
    model, fit_feats, _ = shipped["cnn"]
    atlas = build_atlas(model, feats=fit_feats)
    wrong = []
    for path in DRAWINGS:
        with Image.open(path) as image:
            f = features(model, sketch_to_tensor(image).tensor)
        labels = atlas.neighbours(f[0]).labels
        if (labels == int(path.parent.name)).sum() <= NEIGHBOURS // 2:
            wrong.append((path.parent.name, path.name, labels.tolist()))
    assert not wrong


def test_a_finished_models_map_is_computed_once_and_forgotten_with_it(mnist_test):
    model = load_checkpoint(ROOT / "weights" / "mlp-guide.safetensors").model
    first = atlas_for(model)
    assert atlas_for(model) is first and first.separation > 0.4
    twin = load_checkpoint(ROOT / "weights" / "mlp-guide.safetensors").model
    remember(twin, first)  # a training run's last map handed to the copy the visitor gets
    assert atlas_for(twin) is first
    kept = weakref.ref(first)
    del model, twin, first
    gc.collect()
    assert kept() is None  # the cache does not keep a model's map alive after the model
