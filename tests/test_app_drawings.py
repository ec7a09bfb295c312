"""The app's "teach it your handwriting" handlers: correcting guesses, the personal set, fine-tuning, restoring,
and loading a model file (safetensors only, never unpickled)."""

from __future__ import annotations

import pickle

import gradio as gr
import numpy as np
import pytest
import torch

import app
from mnist_demo.checkpoint import save_checkpoint
from mnist_demo.inference import SharedModels
from mnist_demo.live import Visitor
from mnist_demo.models import build_model
from testkit.sketches import draw, sketchpad
from testkit.styles import UNUSUAL, variations
from testkit.styles import draw as draw_style


@pytest.fixture(scope="module")
def handlers():
    return app.Handlers(SharedModels.from_folder(app.WEIGHTS, tuple(app.SHIPPED)))


def test_correcting_a_guess_adds_the_drawing(handlers):
    visitor = Visitor()
    gallery, score, score_again, probes = handlers.add(sketchpad(draw("7")), "1", "cnn", visitor)
    assert [e.label for e in visitor.drawings.entries] == [1]
    assert visitor.drawings.entries[0].image.shape == (28, 28)
    assert gallery[0][1] == "1, read as 7"  # the CNN reads a 7; the visitor says it is their 1
    assert score == score_again and "0 of your 1 drawings" in score and "MNIST test" in score
    assert probes["choices"] == [("none", -1), ("#1: a 1", 0)]
    _, score, _, _ = handlers.add(sketchpad(draw("3")), "3", "cnn", visitor)
    assert "1 of your 2 drawings (50%)" in score


@pytest.mark.parametrize(
    "value, truth, message",
    [
        (sketchpad(draw("12", height=0.3)), "1", "one digit at a time"),
        ({"background": None, "layers": [], "composite": None}, "1", "draw a digit first"),
        (sketchpad(draw("5")), None, "choose the digit"),
        (sketchpad(draw("5")), "12", "must be a digit"),
    ],
)
def test_what_cannot_be_added_says_why(handlers, value, truth, message):
    visitor = Visitor()
    with pytest.raises(gr.Error, match=message):
        handlers.add(value, truth, "cnn", visitor)
    assert len(visitor.drawings) == 0


def test_removing_the_selected_drawing(handlers):
    visitor = Visitor()
    for digit in "123":
        handlers.add(sketchpad(draw(digit)), digit, "cnn", visitor)
    gallery, *_, selected = handlers.remove(1, "cnn", visitor)
    assert [e.label for e in visitor.drawings.entries] == [1, 3] and len(gallery) == 2 and selected is None
    with pytest.raises(gr.Error, match="Click a drawing"):
        handlers.remove(None, "cnn", visitor)
    with pytest.raises(gr.Error, match="no drawing number"):
        handlers.remove(5, "cnn", visitor)


def test_export_then_import_round_trip(handlers):
    visitor, other = Visitor(), Visitor()
    for digit in "407":
        handlers.add(sketchpad(draw(digit)), digit, "cnn", visitor)
    path = handlers.export(visitor)
    gallery, score, *_ = handlers.import_set(path, "cnn", other)
    assert sorted(e.label for e in other.drawings.entries) == [0, 4, 7]
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


def test_loading_a_model_file(handlers, tmp_path, never_unpickle):
    path = save_checkpoint(tmp_path / "mine.safetensors", build_model("mlp", 16), test_accuracy=0.9)
    visitor = Visitor()
    status, picker = handlers.upload(str(path), visitor)
    assert status.startswith("loaded your MLP") and picker["value"] == app.YOURS
    assert handlers.predict(sketchpad(draw("1")), app.YOURS, visitor) is not None

    before = visitor.model
    for bad in (b"\x80\x04garbage pickle", pickle.dumps({"w": [1.0]})):
        (tmp_path / "bad.safetensors").write_bytes(bad)
        with pytest.raises(gr.Error, match="Not loaded"):
            handlers.upload(str(tmp_path / "bad.safetensors"), visitor)
    assert visitor.model is before  # a refused file leaves the visitor's model as it was


@pytest.mark.slow
@pytest.mark.mnist
def test_fine_tuning_makes_it_yours_and_restore_goes_back(handlers, mnist_test, one_thread):
    visitor = Visitor()
    for _, (digit, strokes) in list(UNUSUAL.items())[:4]:
        for style in variations(3, seed=digit):
            visitor.drawings.add(draw_style(strokes, style), digit)
    updates = list(handlers.finetune("cnn", visitor))
    status, _, picker = updates[-1]
    assert updates[0][0].startswith("measuring") and any("step" in u[0] for u in updates)
    assert status.startswith("done: your drawings:") and "MNIST" in status
    assert picker["value"] == app.YOURS and visitor.model is not None and visitor.previous is None
    assert handlers.predict(sketchpad(draw("1")), app.YOURS, visitor) is not None

    picker = handlers.restore(visitor)  # back to the shipped CNN: the fine-tuned model waits in `previous`
    assert picker["value"] == "cnn" and visitor.model is None and visitor.previous is not None
    assert handlers.restore(visitor)["value"] == app.YOURS


def test_fine_tuning_needs_drawings(handlers):
    with pytest.raises(gr.Error, match="Cannot fine-tune"):
        list(handlers.finetune("cnn", Visitor()))


def test_restore_with_nothing_to_restore(handlers):
    with pytest.raises(gr.Error, match="no earlier model"):
        handlers.restore(Visitor())


def test_score_without_drawings(handlers):
    assert handlers.score("cnn", Visitor()).startswith("No drawings of yours yet")
    assert np.isfinite(handlers.shared.get("cnn").test_accuracy)
