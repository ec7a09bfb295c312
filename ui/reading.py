"""The reading panel: the verdict, the probabilities and the 28 x 28 input(s), one gr.HTML that the server fills
after each stroke and the page's own reader can fill between them (mnist_demo/web/reading.js, whose top
documents the value and `window.mnistDemo.showReading`).

The server sends its reading as a JSON string (`reading_value`): one string passes through Gradio's output
processing at once, where a nested list of 784 numbers per digit would be walked item by item.

    python -m pytest tests/test_reading.py
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import gradio as gr

from mnist_demo.data import IMAGE_SIZE, NUM_CLASSES
from mnist_demo.inference import MAX_DIGITS, Reading

WEB = Path(__file__).resolve().parents[1] / "mnist_demo" / "web"
READING_HTML = (WEB / "reading.html").read_text()
READING_CSS = (WEB / "reading.css").read_text()
READING_JS = (WEB / "reading.js").read_text()
PAGE_CONSTANTS = {"image_size": IMAGE_SIZE, "num_classes": NUM_CLASSES, "max_digits": MAX_DIGITS}
DECIMALS = 4  # probabilities are sent to 0.01 percentage points: the bars show whole percents


def reading_panel(**kwargs) -> gr.HTML:
    """The panel as a gr.HTML (elem_id "pred", the verdict as #verdict inside); keyword arguments go to gr.HTML.

    Its value is what `reading_value` or `message_value` return (None: "Draw a digit").
    """
    options = {
        "value": None,
        "html_template": READING_HTML,
        "css_template": READING_CSS,
        "js_on_load": READING_JS,
        "elem_id": "pred",
        "apply_default_css": False,  # the prose style would restyle the heading and the list
        "constants": PAGE_CONSTANTS,  # props.constants in reading.js
    }
    return gr.HTML(**{**options, **kwargs})


def drawn_signature(strokes: list) -> str:
    """The strokes in a few numbers, as reading.js's `signature` makes them from the pad's (the same additions, in
    the same order, of the same doubles): the panel tells by it whether a server reading is of the strokes on
    the pad now."""
    points, total = 0, 0.0
    for stroke in strokes:
        for point in stroke:
            total += (point[0] + 3 * point[1]) * (points % 7 + 1)
            points += 1
    return f"{len(strokes)}:{points}:{math.floor(total * 100)}"


def reading_dict(reading: Reading, source: str = "server") -> dict:
    """A reading as the panel's value (see reading.js): verdict, each digit's probabilities and input, numbers."""
    value = {
        "source": source,
        "verdict": reading.verdict(),
        "digits": [
            {
                "probabilities": [round(float(p), DECIMALS) for p in d.probabilities],
                "input": d.sketch.image.reshape(-1).tolist(),  # (784,) uint8, row-major
            }
            for d in reading.digits
        ],
    }
    if len(reading.digits) > 1:
        value["numbers"] = [[text, round(p, DECIMALS)] for text, p in reading.label().items()]
    return value


def reading_value(
    reading: Reading | None, source: str = "server", drawn: str | None = None, model: str | None = None
) -> str | None:
    """The panel's value for a reading (JSON), or None for nothing drawn.

    `drawn` (`drawn_signature` of the strokes read) and `model` (the page-model hash of the model that
    read them, when the page has it) let the panel keep an answer that came too late off screen; with
    `drawn`, nothing drawn is a value too (no verdict: the empty state).
    """
    if reading is None:
        return None if drawn is None else json.dumps({"source": source, "verdict": None, "digits": [], "drawn": drawn})
    value = reading_dict(reading, source)
    if drawn is not None:
        value["drawn"] = drawn
    if model is not None:
        value["model"] = model
    return json.dumps(value, separators=(",", ":"))


def message_value(text: str, drawn: str | None = None) -> str:
    """The panel's value when the drawing cannot be read: the reason in the verdict's place."""
    value = {"source": "server", "verdict": text, "digits": [], "error": True}
    return json.dumps(value if drawn is None else {**value, "drawn": drawn})
