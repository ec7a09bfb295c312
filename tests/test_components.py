"""Our components, in-process: what SafeSketchpad decodes, and the bounds of its stroke uploads.

python -m pytest tests/test_components.py
"""

from __future__ import annotations

import io

import gradio as gr
import numpy as np
import pytest
from fastapi import HTTPException
from gradio.components.image_editor import EditorData
from gradio.data_classes import DataWithFiles, FileData
from PIL import Image

from mnist_demo import canvas
from mnist_demo.strokes import MAX_POINTS, MAX_STROKES
from testkit.sketches import draw
from ui import blobs
from ui.blobs import BlobStore
from ui.components import DrawingData, DrawingValues, SafeSketchpad, SketchpadValues

CANVAS = (280, 280)


def png(size=CANVAS, colour="white") -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", size, colour).save(out, format="PNG")
    return out.getvalue()


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def pad():
    return SafeSketchpad(canvas_size=CANVAS, type="numpy")


@pytest.fixture
def decoded(monkeypatch):
    """The sizes of the images SafeSketchpad hands to Gradio to decode, in order."""
    sizes = []
    original = gr.Sketchpad.convert_and_format_image

    def counting(self, file, flatten_on_white=False):
        result = original(self, file, flatten_on_white)
        sizes.append(result.shape[:2])
        return result

    monkeypatch.setattr(gr.Sketchpad, "convert_and_format_image", counting)
    return sizes


def files(tmp_path, **parts) -> dict:
    """FileData for PNG bytes, by part name (lists for layers)."""

    def one(name, data):
        path = tmp_path / f"{name}.png"
        path.write_bytes(data)
        return FileData(path=str(path))

    return {
        key: [one(f"{key}{i}", d) for i, d in enumerate(value)] if isinstance(value, list) else one(key, value)
        for key, value in parts.items()
    }


def test_with_a_composite_only_the_composite_is_decoded(pad, decoded, tmp_path):
    value = pad.preprocess(EditorData(**files(tmp_path, background=png(), layers=[png()], composite=png())))
    assert decoded == [(280, 280)] and value["composite"].shape == (280, 280, 4)
    assert value["background"] is None and value["layers"] == []


def test_too_many_layers_are_refused_before_any_is_decoded(pad, decoded, tmp_path):
    """Six layers naming one 4096 x 4096 PNG cost +911 MB in Gradio's own Sketchpad."""
    layers = [png()] * (canvas.MAX_LAYERS + 2)
    with pytest.raises(gr.Error, match=f"at most {canvas.MAX_LAYERS} layers"):
        pad.preprocess(EditorData(**files(tmp_path, layers=layers, composite=png())))
    assert decoded == []


def test_background_and_layers_must_fit_the_pixel_budget(pad, decoded, tmp_path, monkeypatch):
    monkeypatch.setattr(canvas, "MAX_SKETCH_PIXELS", 2 * 280 * 280)  # two canvases of this size
    ok = pad.preprocess(EditorData(**files(tmp_path, background=png(), layers=[png()])))
    assert len(ok["layers"]) == 1 and ok["background"].shape == (280, 280, 4) and len(decoded) == 2
    with pytest.raises(gr.Error, match="pixels together"):
        pad.preprocess(EditorData(**files(tmp_path, background=png(), layers=[png(), png()])))
    with pytest.raises(gr.Error, match="differ in size"):
        pad.preprocess(EditorData(**files(tmp_path, background=png(), layers=[png((300, 280))])))
    assert len(decoded) == 2  # nothing more was decoded for the refused values


def upload(pad, data: bytes, **fields) -> None:
    pad.accept_blobs(
        DataWithFiles(data={"id": "s1", "type": "composite", "index": None, **fields}, files=[("b", data)])
    )


def test_strokes_uploaded_to_accept_blobs_are_read_once(pad, decoded):
    stroke = io.BytesIO()
    draw("7", size=CANVAS).save(stroke, format="PNG")
    upload(pad, stroke.getvalue())
    upload(pad, png(colour=(0, 0, 0, 0)), type="layer", index="0")
    value = pad.preprocess(EditorData(id="s1"))
    assert value["composite"].shape == (280, 280, 4) and decoded == [(280, 280)]
    assert len(pad.blob_storage) == 0  # consumed
    assert pad.preprocess(EditorData(id="s1")) == {"background": None, "layers": [], "composite": None}


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"type": "layer", "index": "-1"}, "layer index"),  # gave HTTP 500 (IndexError)
        ({"type": "layer", "index": "30000000"}, "layer index"),  # kept +229 MB: a list that long
        ({"type": "layer", "index": "x"}, "layer index"),
        ({"type": "layer", "index": None}, "layer index"),
        ({"type": "script"}, "one of background, layer, composite"),
        ({"id": "x" * 1000}, "stroke id"),
        ({"id": None}, "stroke id"),
    ],
)
def test_bad_uploads_get_http_400_and_store_nothing(pad, fields, message):
    with pytest.raises(HTTPException, match=message) as refused:
        upload(pad, png(), **fields)
    assert refused.value.status_code == 400 and len(pad.blob_storage) == 0


def test_an_upload_larger_than_the_canvas_can_need_is_refused(pad):
    with pytest.raises(HTTPException, match="at most"):
        upload(pad, b"\0" * (blobs.max_blob_bytes(CANVAS) + 1))


def test_a_pad_for_api_values_offers_no_upload_endpoint(tmp_path, decoded):
    values = SketchpadValues(canvas_size=CANVAS, type="numpy")
    assert not getattr(values.accept_blobs, "_is_server_fn", False)  # component_server answers 404
    assert "accept_blobs" not in [f.__name__ for f in values.server_fns]
    assert "accept_blobs" in [f.__name__ for f in SafeSketchpad(canvas_size=CANVAS).server_fns]
    value = values.preprocess(EditorData(**files(tmp_path, composite=png())))  # values are read as before
    assert value["composite"].shape == (280, 280, 4)


# BlobStore ----------------------------------------------------------------------------------------


def test_blob_store_keeps_at_most_max_pending_strokes_oldest_dropped_first():
    store = BlobStore(max_blob_bytes=100, max_pending=3)
    for i in range(5):
        store.put(f"id{i}", "composite", None, b"x")
    assert len(store) == 3 and store.pop("id0") is None and store.pop("id1") is None
    assert store.pop("id4").composite == b"x"


def test_blob_store_keeps_at_most_max_bytes():
    store = BlobStore(max_blob_bytes=100, max_bytes=250)
    for i in range(40):  # forty large blobs never used once stayed in memory for good
        store.put(f"id{i}", "composite", None, b"x" * 100)
    assert store.nbytes <= 250 and len(store) == 2
    store.put("id39", "layer", "1", b"y" * 100)  # the newest stroke grows: older ones make room
    assert store.nbytes <= 250 and store.pop("id39").layers == [None, b"y" * 100]
    assert store.nbytes == 0


def test_blob_store_drops_strokes_whose_event_never_came():
    """always_last skips events, so their snapshots were never consumed."""
    clock = Clock()
    store = BlobStore(max_blob_bytes=100, max_age_s=30, clock=clock)
    store.put("old", "composite", None, b"x")
    clock.now = 20
    store.put("new", "composite", None, b"x")
    clock.now = 31
    assert store.pop("old") is None and store.pop("new") is not None
    store.put("later", "background", None, b"x")
    clock.now = 62
    assert len(store) == 1  # counted before expiry...
    assert store.pop("later") is None and store.nbytes == 0  # ...but gone when asked for


@pytest.mark.parametrize(
    "value, message",
    [
        ("/etc/passwd", "valid dictionary"),
        ({"background": None, "layers": "x", "composite": None}, "layers: Input should be a valid list"),
        ({"composite": {"path": 5}}, "composite.path"),
    ],
)
def test_malformed_values_get_a_message_that_quotes_nothing_back(value, message):
    """Shown even with show_error off, which hides Gradio's own texts (they can name server paths)."""
    with pytest.raises(gr.Error, match=message) as refused:
        SafeSketchpad.data_model.model_validate(value)
    assert "passwd" not in str(refused.value)


# DrawingValues: /predict's input ------------------------------------------------------------------

META = {"_type": "gradio.FileData"}
CHECKED = {"context": {"validate_meta": True}}  # as Gradio validates a request's payload


def test_the_api_input_reads_strokes_a_sketchpad_value_or_an_image(tmp_path, decoded):
    values = DrawingValues(type="numpy")
    assert "accept_blobs" not in [f.__name__ for f in values.server_fns]  # no upload endpoint either
    strokes = [[[100, 60, 0], [180, 60, 12], [120, 220, 30]], [[40, 40]]]
    value = values.preprocess(DrawingData.model_validate({"strokes": strokes}, **CHECKED))
    assert value == {"strokes": [[[100.0, 60.0, 0.0], [180.0, 60.0, 12.0], [120.0, 220.0, 30.0]], [[40.0, 40.0]]]}
    assert decoded == []  # strokes are never a picture
    path = files(tmp_path, image=png())["image"].path
    image = values.preprocess(DrawingData.model_validate({"path": path, "meta": META}, **CHECKED))
    assert image["composite"].shape == (280, 280, 4) and image["background"] is None and image["layers"] == []
    sketch = {"background": None, "layers": [], "composite": {"path": path, "meta": META}}
    assert values.preprocess(DrawingData.model_validate(sketch, **CHECKED))["composite"].shape == (280, 280, 4)


@pytest.mark.parametrize(
    "value, message",
    [
        ({"strokes": []}, "Not a drawing as strokes: no strokes"),
        ({"strokes": [[[1, float("nan")]]]}, "not a finite number"),
        ({"strokes": [[["1", 2]]]}, "must be a number"),
        ({"strokes": [[1, 2]]}, "expected \\[x, y\\]"),
        ({"strokes": "[[[1, 2]]]"}, "must be a list of strokes"),
        ({"strokes": [[[1, 2]]], "composite": None}, "Strokes come alone"),
        ({"path": "/etc/passwd"}, "Not an uploaded image"),  # no meta: a path the request names, refused
    ],
)
def test_bad_api_drawings_get_a_message_that_quotes_nothing_back(value, message):
    with pytest.raises(gr.Error, match=message) as refused:
        DrawingData.model_validate(value, **CHECKED)
    assert "passwd" not in str(refused.value)


def test_huge_strokes_are_refused_before_they_are_copied(monkeypatch):
    def no_arrays(*args, **kwargs):
        raise AssertionError("the strokes were converted before their size was checked")

    monkeypatch.setattr(np, "array", no_arrays)
    with pytest.raises(gr.Error, match=f"more than {MAX_POINTS} points"):
        DrawingData.model_validate({"strokes": [[[1, 2]] * (MAX_POINTS + 1)]}, **CHECKED)
    with pytest.raises(gr.Error, match=f"at most {MAX_STROKES}"):
        DrawingData.model_validate({"strokes": [[[1, 2]]] * (MAX_STROKES + 1)}, **CHECKED)


def test_the_api_documents_all_three_forms():
    schema = DrawingValues().api_info()
    kinds = {next(iter(d.get("properties", {"path": 0}))) for d in schema["$defs"].values()}
    assert {"strokes", "background", "path"} <= kinds and len(schema["anyOf"]) == 3


def test_the_pad_sends_the_page_the_settings_it_was_built_with():
    """Gradio sends the page what `__init__`'s signature names: a bare (*args, **kwargs) sent nothing, and the
    page's pad failed to start ("Cannot read properties of undefined (reading 'container')")."""
    import gradio as gr

    from ui.components import SafeSketchpad

    pad = SafeSketchpad(canvas_size=(280, 280), type="numpy", layers=False, transforms=())
    config, plain = pad.get_config(), gr.Sketchpad(canvas_size=(280, 280), type="numpy", layers=False).get_config()
    assert config["canvas_size"] == [280, 280] and config["transforms"] == []
    assert set(plain) <= set(config)
