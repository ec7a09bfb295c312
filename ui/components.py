"""Components of our own: Gradio's, with the checks a public Space needs before any pixel is decoded.

python -m pytest tests/test_reliability.py
"""

from __future__ import annotations

from io import BytesIO

import gradio as gr
import PIL.Image
from gradio.data_classes import FileData

from mnist_demo.canvas import MAX_SIDE, MIN_SIDE


class SafeSketchpad(gr.Sketchpad):
    """A Sketchpad that checks each image's size from its header before Gradio decodes it.

    Gradio turns every uploaded layer into a full array before our handler runs, so a 20000 x 20000 PNG
    sent to /predict (a 1 MB file of blank pixels) would cost 1.6 GB before any check of ours could
    refuse it. Unreadable and truncated files get a clear message instead of a traceback.
    """

    def get_block_name(self) -> str:  # the front end of every Sketchpad is the ImageEditor's
        return "imageeditor"

    def get_block_class(self) -> str:
        return "imageeditor"

    def convert_and_format_image(self, file: FileData | bytes | None, flatten_on_white: bool = False):
        if file is None:
            return None
        try:
            with PIL.Image.open(file.path if isinstance(file, FileData) else BytesIO(file)) as header:
                width, height = header.size  # read from the header: nothing is decoded yet
        except PIL.Image.DecompressionBombError:  # PIL's own guard, for sizes far beyond ours
            raise gr.Error(f"The image is far too large; each side must be {MIN_SIDE} to {MAX_SIDE} pixels.") from None
        except (OSError, ValueError):
            raise gr.Error("That is not an image file Gradio can read (PNG, JPEG or WebP).") from None
        if not (MIN_SIDE <= width <= MAX_SIDE and MIN_SIDE <= height <= MAX_SIDE):
            raise gr.Error(f"The image is {width} x {height} pixels; each side must be {MIN_SIDE} to {MAX_SIDE}.")
        try:
            return super().convert_and_format_image(file, flatten_on_white)
        except (OSError, ValueError, SyntaxError):
            raise gr.Error("The image file is damaged or truncated.") from None
