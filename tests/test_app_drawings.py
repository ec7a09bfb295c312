"""The app's "teach it your handwriting" handlers: correcting guesses drawn on the stroke pad, the personal set
(strokes kept, exported and imported), fine-tuning, and loading a model file (safetensors only, never
unpickled), each new model joining the visitor's models."""

from __future__ import annotations

import json
import pickle
import zipfile

import gradio as gr
import numpy as np
import pytest
import torch

from mnist_demo.checkpoint import save_checkpoint
from mnist_demo.models import build_model
from mnist_demo.session import LATEST, Visitor
from testkit.browser import digit, number
from testkit.sketches import draw, sketchpad
from testkit.styles import UNUSUAL, variations
from testkit.styles import draw as draw_style
from ui.draw import DrawHandlers
from ui.drawings import DrawingsHandlers
from ui.train import TrainHandlers


@pytest.fixture(scope="module")
def handlers(models):
    return DrawingsHandlers(models)


@pytest.fixture(scope="module")
def reader(models):
    return DrawHandlers(models)


@pytest.fixture(scope="module")
def trainer(models):
    return TrainHandlers(models)


def pad(strokes) -> str:
    """The stroke pad's value: the strokes as JSON."""
    return json.dumps(strokes)


def test_correcting_a_guess_adds_the_drawing_with_its_strokes(handlers, monkeypatch):
    told = []
    monkeypatch.setattr(gr, "Info", told.append)
    visitor = Visitor()
    seven = digit("7", height=170)
    gallery, score, score_again = handlers.add(pad(seven), "1", "cnn", visitor)
    assert [e.label for e in visitor.drawings.entries] == [1]
    entry = visitor.drawings.entries[0]
    assert entry.image.shape == (28, 28) and entry.drawing.ndim == 2
    assert all(np.allclose(kept, line, atol=1e-4) for kept, line in zip(entry.strokes, seven, strict=True))  # kept
    assert gallery[0][1] == "1, read as 7"  # the CNN reads a 7; the visitor says it is their 1
    assert score == score_again and "0 of your 1 drawings" in score and "MNIST test" in score
    assert told == ["Added a 1 to your drawings (1 now)."]  # the visitor sees that it worked
    assert TrainHandlers.probes(visitor).choices == [("none", -1), ("#1: a 1", 0)]
    _, score, _ = handlers.add(pad(digit("3", height=170)), "3", "cnn", visitor)
    assert "1 of your 2 drawings (50%)" in score


@pytest.mark.parametrize(
    "value, truth, message",
    [
        (pad(number("12")), "1", "one digit at a time"),
        ("[]", "1", "draw a digit first"),
        (pad([[[140, 140]]]), "1", "draw a digit first"),  # a dot is no digit
        (pad(digit("5")), None, "choose the digit"),
        (pad(digit("5")), "12", "must be a digit"),
        ("[[[1, NaN]]]", "1", "not a finite number"),
    ],
)
def test_what_cannot_be_added_says_why(handlers, value, truth, message):
    visitor = Visitor()
    with pytest.raises(gr.Error, match=message):
        handlers.add(value, truth, "cnn", visitor)
    assert len(visitor.drawings) == 0


def test_removing_the_selected_drawing(handlers):
    visitor = Visitor()
    for text in "123":
        handlers.add(pad(digit(text)), text, "cnn", visitor)
    gallery, *_, selected = handlers.remove(1, "cnn", visitor)
    assert [e.label for e in visitor.drawings.entries] == [1, 3] and len(gallery) == 2 and selected is None
    with pytest.raises(gr.Error, match="Click a drawing"):
        handlers.remove(None, "cnn", visitor)
    with pytest.raises(gr.Error, match="no drawing number"):
        handlers.remove(5, "cnn", visitor)


def test_export_then_import_round_trip(handlers):
    visitor, other = Visitor(), Visitor()
    for text in "407":
        handlers.add(pad(digit(text, height=170)), text, "cnn", visitor)
    path = handlers.export(visitor)["value"]
    with zipfile.ZipFile(path) as archive:  # the pictures, and the strokes beside them
        assert sorted(archive.namelist()) == ["0/001.png", "4/000.png", "7/002.png", "strokes.ndjson"]
    gallery, score, *_ = handlers.import_set(path, "cnn", other)
    assert sorted(e.label for e in other.drawings.entries) == [0, 4, 7]
    assert all(e.strokes is not None for e in other.drawings.entries)  # read from the strokes
    assert "3 of your 3" in score
    with pytest.raises(gr.Error, match="no drawings"):
        handlers.export(Visitor())


def test_a_broken_archive_is_refused(handlers, tmp_path):
    path = tmp_path / "not.zip"
    path.write_bytes(b"PK\x03\x04 this is not really a zip")
    with pytest.raises(gr.Error, match="Could not import"):
        handlers.import_set(str(path), "cnn", Visitor())


@pytest.fixture
def never_unpickle(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("something tried to unpickle")

    for module, name in ((torch, "load"), (pickle, "load"), (pickle, "loads")):
        monkeypatch.setattr(module, name, forbidden)


def test_loading_a_model_file(trainer, reader, tmp_path, never_unpickle):
    path = save_checkpoint(tmp_path / "mine.safetensors", build_model("mlp", 16), test_accuracy=0.9)
    visitor = Visitor()
    status, picker = trainer.upload(str(path), visitor)
    assert status.startswith("loaded your MLP as your model #1") and picker.value == visitor.latest.key
    assert visitor.latest.origin == "loaded from mine.safetensors: MLP"
    assert reader.predict(sketchpad(draw("1")), LATEST, visitor) is not None

    for bad in (b"\x80\x04garbage pickle", pickle.dumps({"w": [1.0]})):
        (tmp_path / "bad.safetensors").write_bytes(bad)
        with pytest.raises(gr.Error, match="Not loaded"):
            trainer.upload(str(tmp_path / "bad.safetensors"), visitor)
    assert len(visitor.models) == 1  # a refused file adds nothing


@pytest.mark.slow
@pytest.mark.mnist
def test_fine_tuning_adds_a_model_and_every_earlier_one_stays_pickable(handlers, reader, mnist_test, one_thread):
    visitor = Visitor()
    for _, (label, strokes) in list(UNUSUAL.items())[:4]:
        for style in variations(3, seed=label):
            visitor.drawings.add(draw_style(strokes, style), label)
    first = [u for u in handlers.finetune("cnn", visitor) if u is not None]  # None: a tick, nothing new
    status, _, picker = first[-1]
    assert first[0][0].startswith("measuring") and any("step" in u[0] for u in first)
    assert status.startswith("done: your drawings:") and "MNIST" in status
    assert picker.value == visitor.latest.key == "yours-1"
    assert visitor.latest.origin == f"fine-tuned: the CNN on {len(visitor.drawings)} of your drawings"
    # Fine-tuning your own model makes a second one; the first, and the shipped CNN, can still be picked.
    status, _, picker = [u for u in handlers.finetune("yours-1", visitor) if u is not None][-1]
    assert picker.value == "yours-2" and "your model #1" in visitor.latest.origin
    assert [value for _, value in picker.choices][-2:] == ["yours-1", "yours-2"]
    for key in ("cnn", "yours-1", "yours-2"):
        assert reader.predict(sketchpad(draw("1")), key, visitor) is not None


def test_fine_tuning_needs_drawings_and_says_so_before_anything_else(handlers):
    run = handlers.finetune("cnn", Visitor())
    with pytest.raises(gr.Error, match="Cannot fine-tune: add some drawings"):
        next(run)  # no "measuring the model..." status first


def test_importing_the_same_archive_twice_adds_nothing_the_second_time(handlers):
    visitor, other = Visitor(), Visitor()
    for text in "407":
        handlers.add(pad(digit(text, height=170)), text, "cnn", visitor)
    visitor.drawings.add(sketchpad(draw("2")), 2)  # one without strokes: its picture alone is exported
    path = handlers.export(visitor)["value"]
    handlers.import_set(path, "cnn", other)
    handlers.import_set(path, "cnn", other)
    assert sorted(e.label for e in other.drawings.entries) == [0, 2, 4, 7]


def test_score_without_drawings(handlers):
    assert handlers.score("cnn", Visitor()).startswith("No drawings of yours yet")


def test_fine_tuning_without_mnist_names_no_server_folder(handlers, monkeypatch):
    from mnist_demo import finetune
    from mnist_demo.data import MNISTNotFoundError

    def no_mnist(train, root=None):
        raise MNISTNotFoundError("MNIST was not found under /srv/mnist-demo-secret/MNIST/raw")

    monkeypatch.setattr(finetune, "load_mnist", no_mnist)
    visitor = Visitor()
    handlers.add(pad(digit("4")), "4", "cnn", visitor)
    with pytest.raises(gr.Error, match="Cannot fine-tune: MNIST is not on this server") as refused:
        list(handlers.finetune("cnn", visitor))
    assert "/srv" not in str(refused.value)
