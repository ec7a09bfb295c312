"""The reading panel: the verdict, the probabilities and the 28 x 28 input(s), one gr.HTML that the server fills
after each stroke and the page's own reader can fill between them (mnist_demo/web/reading.js, whose top
documents the value and `window.mnistDemo.showReading`).

The server sends its reading as a JSON string (`reading_value`): one string passes through Gradio's output
processing at once, where a nested list of 784 numbers per digit would be walked item by item.

    python -m pytest tests/test_reading.py
"""

from __future__ import annotations

import json
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


def reading_value(reading: Reading | None, source: str = "server") -> str | None:
    """The panel's value for a reading (JSON), or None for nothing drawn."""
    return None if reading is None else json.dumps(reading_dict(reading, source), separators=(",", ":"))


def message_value(text: str) -> str:
    """The panel's value when the drawing cannot be read: the reason in the verdict's place."""
    return json.dumps({"source": "server", "verdict": text, "digits": [], "error": True})
