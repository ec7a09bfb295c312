"""Components of our own: Gradio's, with the checks a public Space needs before any pixel is decoded.

`SafeSketchpad` is a Sketchpad: each image's size is read from its header, the layers are counted and
only the parts that will be read are decoded; its stroke uploads (`accept_blobs`) are bounded.
`SketchpadValues` takes the same values from scripts calling the API and has no upload endpoint at all,
for when the page draws with a pad of its own; `DrawingValues` (the /predict endpoint's input) takes an
image file or strokes, `{"strokes": [[[x, y], ...], ...]}`, besides.

    python -m pytest tests/test_components.py tests/test_reliability.py
"""

from __future__ import annotations

import inspect
from io import BytesIO
from typing import Any, Union

import gradio as gr
import PIL.Image
from fastapi import HTTPException
from gradio.components.base import server
from gradio.components.image_editor import AcceptBlobs, EditorData
from gradio.data_classes import FileData, GradioModel, GradioRootModel
from pydantic import ValidationError

from mnist_demo.canvas import MAX_SIDE, MIN_SIDE, check_layer_count, check_sketch_parts
from mnist_demo.strokes import check_strokes
from ui.blobs import BlobStore, max_blob_bytes

Part = FileData | bytes  # an uploaded file, or a snapshot the page sent to accept_blobs
BAD_REQUEST = 400


def _header_size(file: Part) -> tuple[int, int]:
    """(width, height) from the image's header: nothing is decoded. gr.Error for what PIL cannot open."""
    try:
        with PIL.Image.open(file.path if isinstance(file, FileData) else BytesIO(file)) as header:
            return header.size
    except PIL.Image.DecompressionBombError:  # PIL's own guard, for sizes far beyond ours
        raise gr.Error(f"The image is far too large; each side must be {MIN_SIDE} to {MAX_SIDE} pixels.") from None
    except (OSError, ValueError):
        raise gr.Error("That is not an image file Gradio can read (PNG, JPEG or WebP).") from None


class CheckedEditorData(EditorData):
    """Gradio's Sketchpad payload, whose validation errors say what is wrong without quoting the input back.

    With the app's `show_error` off (Gradio's own exception texts can name server paths), a malformed value
    would otherwise get a bare "Error"; this one raises gr.Error, which is always shown.
    """

    @classmethod
    def model_validate(cls, obj: Any, *args, **kwargs):
        try:
            return super().model_validate(obj, *args, **kwargs)
        except ValidationError as err:
            first = err.errors()[0]
            where = ".".join(str(part) for part in first["loc"][:3]) or "value"
            raise gr.Error(
                f"Not a Sketchpad value ({where}: {first['msg']}): send background, layers and composite, "
                "each an uploaded file (gradio_client's handle_file) or null."
            ) from None


def _refusal(err: ValueError) -> gr.Error:
    text = str(err)
    return gr.Error(f"{text[:1].upper()}{text[1:]}.")


class SafeSketchpad(gr.Sketchpad):
    """A Sketchpad that checks each image's size from its header before Gradio decodes it.

    Gradio turns every part of a value (background, each layer, composite) into a full array before our
    handler runs, so a 20000 x 20000 PNG sent to /predict (a 1 MB file of blank pixels) would cost 1.6 GB,
    and six layers naming one 4096 x 4096 PNG 0.9 GB, before any check of ours could refuse them. Here the
    layers are counted first, the composite alone is decoded when there is one (it is what the drawing is
    read from), and otherwise the background and layers must fit `canvas.MAX_SKETCH_PIXELS` together.
    Unreadable and truncated files get a clear message instead of a traceback.
    """

    data_model = CheckedEditorData

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        canvas = self.canvas_size or (MAX_SIDE, MAX_SIDE)
        self.blob_storage = BlobStore(max_blob_bytes(canvas))  # Gradio's is a dict without bounds

    # Gradio sends the page the attributes named in the signature of `__init__` (Block.get_config): with a
    # bare (*args, **kwargs) the page got no props at all and the pad failed to start.
    __init__.__signature__ = inspect.signature(gr.Sketchpad.__init__)

    def get_block_name(self) -> str:  # the front end of every Sketchpad is the ImageEditor's
        return "imageeditor"

    def get_config(self, cls=None) -> dict[str, Any]:
        # Gradio sends the page the attributes named in the constructor's signature: gr.Sketchpad's, not
        # this one's (*args, **kwargs), without which the page got no canvas size, brush, or visibility.
        return super().get_config(cls or gr.Sketchpad)

    def get_block_class(self) -> str:
        return "imageeditor"

    def convert_and_format_image(self, file: Part | None, flatten_on_white: bool = False):
        if file is None:
            return None
        width, height = _header_size(file)
        if not (MIN_SIDE <= width <= MAX_SIDE and MIN_SIDE <= height <= MAX_SIDE):
            raise gr.Error(f"The image is {width} x {height} pixels; each side must be {MIN_SIDE} to {MAX_SIDE}.")
        try:
            return super().convert_and_format_image(file, flatten_on_white)
        except (OSError, ValueError, SyntaxError):
            raise gr.Error("The image file is damaged or truncated.") from None

    def preprocess(self, payload: EditorData | None) -> dict | None:
        """The value for the handler: `{"background", "layers", "composite"}`, decoding only what is read."""
        if payload is None:
            return None
        if payload.id is not None:  # the page uploaded the parts to accept_blobs first
            pending = self.blob_storage.pop(payload.id)
            background, layers, composite = (
                (pending.background, pending.layers, pending.composite) if pending else (None, [], None)
            )
        else:
            background, layers, composite = payload.background, payload.layers, payload.composite
        try:
            check_layer_count(len(layers))
            if composite is not None:  # the drawing is read from the composite alone
                return {
                    "background": None,
                    "layers": [],
                    "composite": self.convert_and_format_image(composite, flatten_on_white=True),
                }
            layers = [layer for layer in layers if layer is not None]
            check_sketch_parts([_header_size(part) for part in ([background] if background else []) + layers])
        except ValueError as err:
            raise _refusal(err) from None
        return {
            "background": self.convert_and_format_image(background, flatten_on_white=True),
            "layers": [self.convert_and_format_image(layer) for layer in layers],
            "composite": None,
        }

    @server
    def accept_blobs(self, data: AcceptBlobs):
        """One snapshot from the page, kept in the bounded store; HTTP 400 for anything else."""
        fields, files = getattr(data, "data", None), getattr(data, "files", None)
        try:
            if not isinstance(fields, dict) or not isinstance(files, list) or len(files) != 1:
                raise ValueError("an upload holds one snapshot and its id, type and index")
            self.blob_storage.put(fields.get("id"), fields.get("type"), fields.get("index"), files[0][1])
        except ValueError as err:
            raise HTTPException(status_code=BAD_REQUEST, detail=str(err)) from None


class SketchpadValues(SafeSketchpad):
    """A SafeSketchpad that only takes values (from API scripts): the page draws elsewhere, so the stroke
    upload endpoint is not offered at all (component_server answers 404) and nothing can be stored."""

    def accept_blobs(self, data: AcceptBlobs):  # not a @server function: unreachable from requests
        raise HTTPException(status_code=404, detail="Function not found.")


class StrokesData(GradioModel):
    """A drawing as strokes, the stroke pad's format: each stroke a list of [x, y] (or [x, y, t]) points in the
    pad's canvas pixels (0 .. 280, y down)."""

    strokes: list[Any]


class DrawingData(GradioRootModel):
    """What /predict takes: strokes, a Sketchpad value, or an uploaded image file."""

    root: Union[StrokesData, CheckedEditorData, FileData]  # noqa: UP007 (pydantic reads the Union)

    @classmethod
    def model_validate(cls, obj: Any, *args, **kwargs):
        """Each form by its keys; strokes are checked here, before Gradio copies them (bounded, numbers only).

        Files keep Gradio's own checks: `kwargs` carries its `validate_meta`, which accepts only files that
        Gradio received itself (its upload route), never a path or URL the request names.
        """
        if isinstance(obj, dict) and "strokes" in obj:
            if set(obj) != {"strokes"}:
                raise gr.Error('Strokes come alone: send {"strokes": [[[x, y], ...], ...]}.')
            try:
                return cls(root=StrokesData(strokes=check_strokes(obj["strokes"])))
            except ValueError as err:
                raise gr.Error(f"Not a drawing as strokes: {err}.") from None
        if isinstance(obj, dict) and "path" in obj and not {"background", "layers", "composite"} & set(obj):
            try:
                return cls(root=FileData.model_validate(obj, *args, **kwargs))
            except ValidationError:
                raise gr.Error(
                    "Not an uploaded image: send the file with gradio_client's handle_file, a Sketchpad value "
                    'or {"strokes": [...]}.'
                ) from None
        return cls(root=CheckedEditorData.model_validate(obj, *args, **kwargs))


class DrawingValues(SketchpadValues):
    """The /predict endpoint's input: a Sketchpad value, an image file, or strokes; no upload endpoint.

    The handler gets `{"strokes": [...]}` (checked) for strokes, and for the other two a Sketchpad value
    whose parts are decoded as `SafeSketchpad` decodes them (an image file is read as the composite).
    """

    data_model = DrawingData

    def preprocess(self, payload: DrawingData | None) -> dict | None:
        if payload is None:
            return None
        part = payload.root
        if isinstance(part, StrokesData):
            return {"strokes": part.strokes}
        if isinstance(part, FileData):
            return {"background": None, "layers": [], "composite": self.convert_and_format_image(part, True)}
        return super().preprocess(part)

    def api_info(self) -> dict[str, Any]:
        schema = DrawingData.model_json_schema()
        schema["additional_description"] = schema.pop("description", None)
        return schema

    def example_payload(self) -> Any:
        return {"strokes": [[[100, 60], [180, 60], [120, 220]]]}

    def example_value(self) -> Any:
        return self.example_payload()
