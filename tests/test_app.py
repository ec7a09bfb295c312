"""The app: the Draw and Train tabs' handlers called directly on Sketchpad-shaped values, the model picker,
then the launched app through gradio_client."""

from __future__ import annotations

import os
import re
import time

import gradio as gr
import numpy as np
import PIL.Image
import pytest
from gradio_client import Client, handle_file

from mnist_demo import runs
from mnist_demo.data import MNISTNotFoundError
from mnist_demo.session import LATEST, MAX_OWN_MODELS, Visitor
from testkit.sketches import draw, sketchpad
from ui import draw as draw_tab
from ui import train as train_tab
from ui.common import SHIPPED
from ui.draw import DrawHandlers
from ui.train import TrainHandlers

CLEARED = {"background": None, "layers": [], "composite": None}  # never drawn, or after the trash can


@pytest.fixture(scope="module")
def handlers(models):
    return DrawHandlers(models)


@pytest.fixture(scope="module")
def trainer(models):
    return TrainHandlers(models)


def top(label: dict[str, float]) -> str:
    return max(label, key=label.get)


@pytest.mark.parametrize("digit", list("0123456789"))
def test_each_drawn_digit_is_read(handlers, digit):
    label = handlers.predict(sketchpad(draw(digit)), "cnn", None)
    assert sorted(label) == list("0123456789") and abs(sum(label.values()) - 1) < 1e-4
    assert top(label) == digit


def test_the_example_drawings_are_read_as_the_digit_in_their_name(handlers):
    assert len(draw_tab.EXAMPLES) >= 3
    for path in draw_tab.EXAMPLES:
        example = draw_tab.sketch_example(path)
        assert example["background"] == example["composite"] == str(path)
        pixels = np.asarray(PIL.Image.open(path))  # what the numpy Sketchpad hands the handler
        label = handlers.predict({"background": pixels, "layers": [], "composite": pixels}, "cnn", None)
        assert top(label) == path.name.split("-")[0], path.name


def test_a_number_is_read_left_to_right(handlers):
    label = handlers.predict(sketchpad(draw("2024", height=0.3)), "cnn", None)
    assert top(label) == "2024" and len(label) > 1
    verdict, seen, why, truth = handlers.explain(sketchpad(draw("2024", height=0.3)), "cnn", None)
    assert "2024" in verdict
    assert seen.shape[1] > 4 * seen.shape[0] and why.shape == seen.shape  # four 28x28 inputs side by side
    assert truth is None  # a number cannot be added as one digit


UNDONE = {
    "background": np.full((280, 280, 4), 255, np.uint8),  # Undo back to nothing: white paper, empty layer
    "layers": [np.zeros((280, 280, 4), np.uint8)],
    "composite": np.full((280, 280, 4), 255, np.uint8),
}


@pytest.mark.parametrize("value", [None, CLEARED, UNDONE], ids=["none", "cleared", "undo"])
def test_empty_and_cleared_canvases_ask_for_a_digit(handlers, value):
    assert handlers.predict(value, "cnn", None) is None
    assert handlers.explain(value, "cnn", None) == ("### Draw a digit", None, None, None)


def test_explain_shows_the_input_and_the_saliency(handlers):
    verdict, seen, why, truth = handlers.explain(sketchpad(draw("7")), "cnn", None)
    assert verdict.startswith("### It's a 7") and truth == "7"  # offered as the truth to correct
    assert seen.shape == why.shape == (224, 224, 3) and seen.dtype == np.uint8
    assert (why[..., 0] > why[..., 2] + 60).any()  # some pixels are red: they pushed towards the 7


def test_an_eight_is_an_eight(handlers):
    assert handlers.explain(sketchpad(draw("8")), "cnn", None)[0].startswith("### It's an 8 (")


def test_unsure_answers_say_so(handlers, monkeypatch):
    import mnist_demo.inference as inference

    monkeypatch.setattr(inference, "UNSURE_BELOW", 1.01)  # nothing is sure enough
    verdict, *_ = handlers.explain(sketchpad(draw("4")), "cnn", None)
    assert verdict.startswith("### Not sure: 4 or ") and verdict.endswith("?")


def test_every_shipped_model_answers(handlers):
    for name in SHIPPED:
        assert top(handlers.predict(sketchpad(draw("1")), name, None)) == "1", name


def test_your_model_needs_training_first(handlers):
    with pytest.raises(gr.Error, match="train one"):
        handlers.predict(sketchpad(draw("1")), LATEST, Visitor())
    assert "train one" in handlers.explain(sketchpad(draw("1")), LATEST, Visitor())[0]


def test_garbage_canvas_gives_a_clear_error(handlers):
    with pytest.raises(gr.Error):
        handlers.predict({"background": None, "layers": [], "composite": np.full((3, 3, 9), 1.0)}, "cnn", None)
    assert handlers.explain("not an image", "cnn", None)[0].startswith("**")


def train_args(**changes):
    args = dict(
        model_name="cnn",
        size=4,
        epochs=1,
        batch_size=64,
        lr=0.01,
        optimizer="adam",
        train_size=200,
        augment=False,
        seed=0,
        probe=-1,
    )
    return {**args, **changes}


@pytest.mark.parametrize(
    "changes",
    [
        {"epochs": 1000},
        {"lr": float("nan")},
        {"train_size": 10**9},
        {"model_name": "transformer"},
        {"size": -1},
        {"batch_size": 10**6},
    ],
)
def test_bad_training_settings_are_refused(trainer, changes):
    with pytest.raises(gr.Error, match="Cannot train"):
        next(trainer.train(*train_args(**changes).values(), Visitor()))


@pytest.mark.mnist
def test_training_streams_and_gives_the_visitor_a_model(handlers, trainer, mnist_test):
    visitor = Visitor()
    visitor.drawings.add(sketchpad(draw("3")), 3)
    updates = [u for u in trainer.train(*train_args(probe=0, epochs=2).values(), visitor) if u is not None]
    losses, accuracies, status, _, probed, confusion, gallery, weights = updates[-1][:8]
    assert status.startswith("done") and len(losses) >= 1
    # Whole epochs on the accuracy plot's axis, a point from the first epoch on, and room below it.
    rows = accuracies.value["data"]
    assert [epoch for epoch, _ in rows] == ["1", "2"] and accuracies.value["mark"] == "point"
    assert accuracies.y_lim[0] < min(a for _, a in rows) <= max(a for _, a in rows) <= accuracies.y_lim[1] == 100
    # One run is one model of the visitor's, replaced epoch by epoch, and picked in the Draw tab.
    assert len(visitor.models) == 1 and visitor.latest.checkpoint.name == "cnn" and visitor.run is None
    assert visitor.latest.origin == "trained: CNN, 4 channels, 2 epochs of 200 images"
    pickers = [u[3] for u in updates if isinstance(u[3], gr.Dropdown)]
    assert len(pickers) == 2 and all(p.value == visitor.latest.key for p in pickers)
    assert visitor.latest.key in [value for _, value in pickers[-1].choices]
    assert sorted(probed) == list("0123456789")  # the watched drawing, read by the model in training
    assert confusion.ndim == 3 and confusion.dtype == np.uint8  # the heatmap (tests/test_learning.py reads it)
    assert len(gallery["value"]) > 0 and all(re.fullmatch(r"\d → \d", caption) for _, caption in gallery["value"])
    from mnist_demo.checkpoint import load_checkpoint

    assert load_checkpoint(weights["value"]).metadata["test_accuracy"] == visitor.latest.checkpoint.test_accuracy
    assert handlers.predict(sketchpad(draw("1")), LATEST, visitor) is not None
    assert handlers.predict(sketchpad(draw("1")), visitor.latest.key, visitor) is not None


@pytest.mark.mnist
def test_stop_says_what_it_kept_and_says_when_nothing_runs(trainer, mnist_test):
    visitor = Visitor()
    assert trainer.stopped(visitor)[0].startswith("Nothing is running")
    run = trainer.train(*train_args(epochs=3).values(), visitor)
    while not any(isinstance(out, gr.Dropdown) for out in next(run) or ()):  # until the first epoch's model
        pass
    run.close()  # what Stop does to the generator
    status, download = trainer.stopped(visitor)
    assert status.startswith("stopped · your model #1 after 1 epoch is kept") and download["visible"]
    assert trainer.stopped(visitor)[0].startswith("Nothing is running")  # the run was reported once
    run = trainer.train(*train_args(epochs=3).values(), visitor)
    next(run)
    run.close()
    if visitor.run is not None and visitor.run.model_key is None:  # stopped before its first epoch ended
        assert trainer.stopped(visitor)[0].startswith("stopped · no epoch had finished")


MISSING = "/srv/mnist-demo-secret"  # a server folder that no message may name


def no_mnist(train, root=None):
    raise MNISTNotFoundError(f"MNIST was not found under {MISSING}/MNIST/raw and could not be downloaded")


def test_a_missing_mnist_is_said_without_the_servers_folders(trainer, monkeypatch):
    monkeypatch.setattr(runs, "load_mnist", no_mnist)
    with pytest.raises(gr.Error) as refused:
        list(trainer.train(*train_args().values(), Visitor()))
    assert "MNIST is not on this server" in str(refused.value) and MISSING not in str(refused.value)


def test_the_train_tab_names_no_folder_when_mnist_is_missing(models, monkeypatch, tmp_path):
    import app

    monkeypatch.setenv("MNIST_ROOT", str(tmp_path / "nowhere"))
    notes = [b.value or "" for b in app.build_demo(models).blocks.values() if isinstance(b, gr.Markdown)]
    missing = [text for text in notes if "MNIST is not on this server" in text]
    assert missing and not any(str(tmp_path) in text for text in missing)


def test_a_run_whose_model_stops_working_is_refused_with_a_message(trainer, monkeypatch):
    def failing(config, *args):
        raise runs.RunError("the model after epoch 1 gives NaN or infinite outputs, so it is not kept")
        yield

    monkeypatch.setattr(train_tab, "train_stream", failing)
    visitor = Visitor()
    with pytest.raises(gr.Error, match="Stopped: the model after epoch 1 gives NaN"):
        list(trainer.train(*train_args().values(), visitor))
    assert visitor.models == [] and visitor.run is None


def test_the_picker_lists_every_model_of_the_visitor_and_picks_any(models, handlers):
    visitor = Visitor()
    cnn = models.pick("cnn", None)
    keys = [visitor.adopt(cnn, f"model {i}") for i in range(MAX_OWN_MODELS + 2)]
    assert [own.key for own in visitor.models] == keys[-MAX_OWN_MODELS:]  # the oldest went first
    choices = [value for _, value in models.choices(visitor)]
    assert choices == [*SHIPPED, *keys[-MAX_OWN_MODELS:]]
    assert models.picker(visitor).value == keys[-1]  # the newest is picked after a change
    for key in [*SHIPPED, *keys[-MAX_OWN_MODELS:], LATEST]:
        assert top(handlers.predict(sketchpad(draw("1")), key, visitor)) == "1", key
    with pytest.raises(gr.Error, match="no model of your own"):
        handlers.predict(sketchpad(draw("1")), keys[0], visitor)  # dropped from the history: a clear error
    with pytest.raises(gr.Error, match="There is no model"):
        handlers.predict(sketchpad(draw("1")), "resnet", visitor)
    # A run's later epochs replace its own entry; the rest keep their place and key.
    again = visitor.adopt(cnn, "epoch 2", replace=keys[-1])
    assert again == keys[-1] and visitor.latest.origin == "epoch 2" and len(visitor.models) == MAX_OWN_MODELS


# --------------------------------------------------------------------------------------------------
# The launched app, through gradio_client, as a script calling a Space would.


def drawn_png(tmp_path, text: str, name: str | None = None) -> str:
    path = tmp_path / f"{name or text}.png"
    draw(text).save(path)
    return str(path)


@pytest.mark.app
@pytest.mark.slow
def test_client_predicts_drawn_files(app_url, tmp_path):
    client = Client(app_url, verbose=False)
    for digit in "037":
        value = {"background": None, "layers": [], "composite": handle_file(drawn_png(tmp_path, digit))}
        result = client.predict(value, "cnn", api_name="/predict")
        assert result["label"] == digit and len(result["confidences"]) == 10
    empty = client.predict({"background": None, "layers": [], "composite": None}, "cnn", api_name="/predict")
    assert not empty.get("label") and not empty.get("confidences")


@pytest.mark.app
@pytest.mark.slow
def test_client_endpoints_are_named_and_internals_private(app_url):
    api = Client(app_url, verbose=False).view_api(return_format="dict", print_info=False)
    assert set(api["named_endpoints"]) == {"/predict", "/train"}
    assert not api["unnamed_endpoints"]


@pytest.mark.app
@pytest.mark.slow
@pytest.mark.mnist
def test_client_trains_stops_and_keeps_models_apart(app_url, tmp_path, mnist_test):
    png = drawn_png(tmp_path, "1")
    value = {"background": None, "layers": [], "composite": handle_file(png)}
    alice, bob = Client(app_url, verbose=False), Client(app_url, verbose=False)

    job = alice.submit(**train_args(), api_name="/train")
    statuses = [out[2] for out in job]
    assert statuses[-1].startswith("done") and len(statuses) >= 2
    assert len(alice.predict(value, LATEST, api_name="/predict")["confidences"]) == 10
    with pytest.raises(Exception, match="yours|train one"):
        bob.predict(value, LATEST, api_name="/predict")  # Alice's model is hers alone

    long_run = bob.submit(**train_args(epochs=10, train_size=60_000, size=16), api_name="/train")
    next(iter(long_run))  # it has started and streamed its first update
    long_run.cancel()
    assert bob.predict(value, "cnn", api_name="/predict")["label"] == "1"  # the server still answers

    # Training runs one at a time: had the cancelled run (minutes long) gone on, this one would wait for it.
    start = time.monotonic()
    assert alice.submit(**train_args(seed=1), api_name="/train").result(timeout=120)[2].startswith("done")
    assert time.monotonic() - start < 60


def test_importing_the_app_leaves_the_process_as_it_was():
    """Importing app.py (for a constant, or by a test) builds the demo but tunes nothing: that is for launch."""
    import subprocess
    import sys

    script = """
import os, sys, torch
threads = torch.get_num_threads()
import app
assert torch.get_num_threads() == threads, (torch.get_num_threads(), threads)
assert sys.modules.get("matplotlib", "absent") is not None, "matplotlib was stubbed"
assert "GRADIO_ANALYTICS_CACHE_FREQUENCY" not in os.environ
assert isinstance(app.demo, app.gr.Blocks)
"""
    env = {k: v for k, v in os.environ.items() if k != "GRADIO_ANALYTICS_CACHE_FREQUENCY"}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
