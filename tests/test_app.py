"""The app: the Draw and Train tabs' handlers called directly on the stroke pad's values and Sketchpad-shaped
ones, the model picker, then the launched app through gradio_client (/predict in its three forms)."""

from __future__ import annotations

import json
import os
import re
import time

import gradio as gr
import numpy as np
import pytest
from gradio_client import Client, handle_file

from mnist_demo import runs
from mnist_demo.data import MNISTNotFoundError
from mnist_demo.session import LATEST, MAX_OWN_MODELS, Visitor
from mnist_demo.strokes import MAX_POINTS, MAX_STROKES
from testkit.browser import digit, number
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


def pad(strokes) -> str:
    """The stroke pad's value for strokes: their JSON."""
    return json.dumps(strokes)


def verdict_of(panel: str | None) -> str:
    return json.loads(panel)["verdict"] if panel else "Draw a digit"


@pytest.mark.parametrize("text", list("0123456789"))
def test_each_digit_drawn_on_the_pad_is_read(handlers, text):
    label = handlers.predict(pad(digit(text, height=170)), "cnn", None)
    assert sorted(label) == list("0123456789") and abs(sum(label.values()) - 1) < 1e-4
    assert top(label) == text


@pytest.mark.parametrize("text", list("0123456789"))
def test_each_digit_drawn_on_a_sketchpad_is_read(handlers, text):
    assert top(handlers.predict(sketchpad(draw(text)), "cnn", None)) == text


def test_the_examples_are_strokes_read_as_the_digit_they_show(handlers):
    assert len(draw_tab.EXAMPLES) >= 3
    for i, example in enumerate(draw_tab.EXAMPLES):
        assert top(handlers.predict({"strokes": example.strokes}, "cnn", None)) == example.label, example.name
        # A click puts its strokes on the pad (whose change event reads them).
        value = DrawHandlers.example(gr.SelectData(None, {"index": i, "value": example.name}))
        assert json.loads(value) == example.strokes
        picture = draw_tab.thumbnail(example.strokes)
        assert picture.startswith("<svg") and picture.count("<polyline") + picture.count("<circle") == len(
            example.strokes
        )
    with pytest.raises(gr.Error, match="no such example"):
        DrawHandlers.example(gr.SelectData(None, {"index": 99, "value": None}))


def test_a_number_is_read_left_to_right(handlers):
    value = pad(number("2024", height=80, gap=12))
    label = handlers.predict(value, "cnn", None)
    assert top(label) == "2024" and len(label) > 1
    panel, why, truth = handlers.explain(value, "cnn", None)
    shown = json.loads(panel)
    assert "2024" in shown["verdict"] and len(shown["digits"]) == 4 and shown["numbers"][0][0] == "2024"
    assert why.shape[1] > 4 * why.shape[0]  # four 28x28 explanations side by side
    assert truth is None  # a number cannot be added as one digit


UNDONE = {
    "background": np.full((280, 280, 4), 255, np.uint8),  # Undo back to nothing: white paper, empty layer
    "layers": [np.zeros((280, 280, 4), np.uint8)],
    "composite": np.full((280, 280, 4), 255, np.uint8),
}


@pytest.mark.parametrize(
    "value", [None, "", "[]", CLEARED, UNDONE], ids=["none", "blank", "cleared pad", "cleared", "undo"]
)
def test_empty_and_cleared_drawings_ask_for_a_digit(handlers, value):
    assert handlers.predict(value, "cnn", None) is None
    panel, why, truth = handlers.explain(value, "cnn", None)
    assert why is None and truth is None
    # The panel's "Draw a digit": no value, or (for the pad's strokes) one with no verdict that names them.
    assert panel is None or (json.loads(panel)["verdict"] is None and json.loads(panel)["drawn"] == "0:0:0")


def test_explain_shows_the_input_and_the_saliency(handlers):
    panel, why, truth = handlers.explain(pad(digit("7", height=170)), "cnn", None)
    shown = json.loads(panel)
    assert shown["verdict"].startswith("It's a 7") and truth == "7"  # offered as the truth to correct
    assert shown["source"] == "server" and len(shown["digits"][0]["input"]) == 784
    assert why.shape == (224, 224, 3) and why.dtype == np.uint8
    assert (why[..., 0] > why[..., 2] + 60).any()  # some pixels are red: they pushed towards the 7


def test_an_eight_is_an_eight(handlers):
    assert verdict_of(handlers.explain(pad(digit("8", height=170)), "cnn", None)[0]).startswith("It's an 8 (")


def test_unsure_answers_say_so(handlers, monkeypatch):
    import mnist_demo.inference as inference

    monkeypatch.setattr(inference, "UNSURE_BELOW", 1.01)  # nothing is sure enough
    verdict = verdict_of(handlers.explain(pad(digit("4", height=170)), "cnn", None)[0])
    assert verdict.startswith("Not sure: 4 or ") and verdict.endswith("?")


def test_every_shipped_model_answers(handlers):
    for name in SHIPPED:
        assert top(handlers.predict(pad(digit("1", height=170)), name, None)) == "1", name


def test_your_model_needs_training_first(handlers):
    with pytest.raises(gr.Error, match="train one"):
        handlers.predict(pad(digit("1")), LATEST, Visitor())
    panel, why, truth = handlers.explain(pad(digit("1")), LATEST, Visitor())
    assert "train one" in verdict_of(panel) and json.loads(panel)["error"] and why is None and truth is None


@pytest.mark.parametrize(
    "value, message",
    [
        ("[[[1, 2]", "not JSON"),
        ("[[[1, NaN]]]", "not a finite number"),
        ('[[["a", "b"]]]', "must be a number"),
        ("[[1, 2], [3, 4]]", "got int"),
        (json.dumps([[[1, 2]] * (MAX_POINTS + 1)]), f"more than {MAX_POINTS} points"),
        (json.dumps([[[1, 2]]] * (MAX_STROKES + 1)), f"at most {MAX_STROKES}"),
        ({"strokes": [[[1, 2, 3, 4]]]}, "expected \\[x, y\\]"),
    ],
)
def test_bad_strokes_are_said_in_the_verdicts_place(handlers, value, message):
    with pytest.raises(gr.Error, match=message):
        handlers.predict(value, "cnn", None)
    panel, why, truth = handlers.explain(value, "cnn", None)
    assert re.search(message, verdict_of(panel)) and json.loads(panel)["error"] and why is None


def test_garbage_canvas_gives_a_clear_error(handlers):
    with pytest.raises(gr.Error):
        handlers.predict({"background": None, "layers": [], "composite": np.full((3, 3, 9), 1.0)}, "cnn", None)


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


@pytest.fixture(scope="module")
def client(app_url):
    return Client(app_url, verbose=False)


@pytest.mark.app
@pytest.mark.slow
def test_client_predicts_a_sketchpad_value_an_image_and_strokes(client, tmp_path):
    for text in "037":
        png = drawn_png(tmp_path, text)
        forms = {
            "sketchpad": {"background": None, "layers": [], "composite": handle_file(png)},
            "image": handle_file(png),
            "strokes": {"strokes": digit(text, height=170)},
        }
        for form, value in forms.items():
            result = client.predict(value, "cnn", api_name="/predict")
            assert result["label"] == text and len(result["confidences"]) == 10, (form, result)
    number_read = client.predict({"strokes": number("42")}, "cnn", api_name="/predict")
    assert number_read["label"] == "42"
    empty = client.predict({"background": None, "layers": [], "composite": None}, "cnn", api_name="/predict")
    assert not empty.get("label") and not empty.get("confidences")


@pytest.mark.app
@pytest.mark.slow
@pytest.mark.parametrize(
    "strokes, message",
    [
        ([], "the drawing is empty"),
        ([[[1, 2]] * (MAX_POINTS + 1)], f"more than {MAX_POINTS} points"),
        ([[[1, 2]]] * (MAX_STROKES + 1), f"at most {MAX_STROKES}"),
        ([[["1", "2"]]], "must be a number"),
        ([[[1, None]]], "must be a number"),
        ([[1, 2], [3, 4]], "got int"),
        ([[]], "must be a non-empty list"),
        ([[[[1, 2]]]], "expected \\[x, y\\]"),
        ([[[1e300, 2]]], "not a finite number within"),
        ("1,2,3", "strokes must be a list"),
    ],
)
def test_client_bad_strokes_get_a_clear_message_fast(client, strokes, message):
    start = time.monotonic()
    with pytest.raises(Exception, match=f"Not a drawing as strokes: .*{message}"):
        client.predict({"strokes": strokes}, "cnn", api_name="/predict")
    assert time.monotonic() - start < 10  # refused before any reading; generous for a loaded machine
    assert client.predict({"strokes": digit("1", height=170)}, "cnn", api_name="/predict")["label"] == "1"


@pytest.mark.app
@pytest.mark.slow
@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_strokes_sent_as_raw_json_are_refused(app_url, token):
    """gradio_client cannot send NaN (JSON has none), but a raw request can."""
    import httpx

    body = '{"data": [{"strokes": [[[10, 20], [@X@, 40]]]}, "cnn"]}'.replace("@X@", token)
    with httpx.Client(base_url=app_url, timeout=60) as http:
        event = http.post("gradio_api/call/predict", content=body, headers={"Content-Type": "application/json"})
        assert event.status_code == 200, event.text
        stream = http.get(f"gradio_api/call/predict/{event.json()['event_id']}").text
    assert "event: error" in stream and "not a finite number" in stream, stream


@pytest.mark.app
@pytest.mark.slow
def test_client_strokes_come_alone(client):
    with pytest.raises(Exception, match="Strokes come alone"):
        client.predict({"strokes": digit("1"), "composite": None}, "cnn", api_name="/predict")


@pytest.mark.app
@pytest.mark.slow
def test_client_endpoints_are_named_and_internals_private(app_url):
    api = Client(app_url, verbose=False).view_api(return_format="dict", print_info=False)
    assert set(api["named_endpoints"]) == {"/predict", "/train"}
    assert not api["unnamed_endpoints"]
    drawing = api["named_endpoints"]["/predict"]["parameters"][0]["python_type"]["type"]
    assert "strokes" in drawing and "composite" in drawing and "filepath" in drawing  # all three forms


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


def test_the_pads_events_skip_the_queue_collapse_bursts_and_stay_private():
    """Pen-up answers sooner outside the queue (ui/gate.py bounds them instead); /predict is the one API."""
    import app

    config = app.demo.get_config_file()
    names = {c["id"]: c["props"].get("elem_id") for c in config["components"]}
    events = [(tuple((names.get(t), kind) for t, kind in d["targets"]), d) for d in config["dependencies"]]
    for trigger in ((("pad", "change"),), (("picker", "change"),)):
        read = next(d for targets, d in events if targets == trigger and d["api_name"].startswith("read"))
        assert read["queue"] is False and read["trigger_mode"] == "always_last", trigger
        assert read["api_visibility"] == "private", trigger
    predict = next(d for targets, d in events if targets == (("api-drawing", "change"),))
    assert predict["queue"] is True and predict["api_name"] == "predict" and predict["api_visibility"] == "public"
