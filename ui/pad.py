"""The stroke pad: a Gradio component whose value is the strokes drawn on it (JSON), not pictures of them.

A `gr.HTML` with a canvas of its own: the page side is mnist_demo/web/pad.html, pad.css and pad.js (whose
top describes the value and the 'strokes' event), read here once. The pad gets mnist_demo.strokes'
PAGE_CONSTANTS as its `constants` prop, so the page and the server share one set of numbers.

    with gr.Blocks() as demo:
        pad = stroke_pad()
        pad.change(lambda value: str(parse_pad_value(value)), pad, gr.Textbox())

    python -m pytest tests/test_pad.py tests/test_pad_browser.py
"""

from __future__ import annotations

import json
from pathlib import Path

import gradio as gr

from mnist_demo.strokes import MAX_POINTS, PAGE_CONSTANTS, Strokes, check_strokes

WEB = Path(__file__).resolve().parents[1] / "mnist_demo" / "web"
PAD_HTML = (WEB / "pad.html").read_text()
PAD_CSS = (WEB / "pad.css").read_text()
PAD_JS = (WEB / "pad.js").read_text()
# JSON of a drawing at the point cap: ~25 characters a point ("[123.45, 67.89, 1234], "), with room to spare.
MAX_VALUE_CHARS = 64 * MAX_POINTS
EMPTY = "[]"


def stroke_pad(**kwargs) -> gr.HTML:
    """The pad as a gr.HTML (elem_id "pad", a canvas inside); keyword arguments go to gr.HTML."""
    options = {
        "value": EMPTY,
        "html_template": PAD_HTML,
        "css_template": PAD_CSS,
        "js_on_load": PAD_JS,
        "elem_id": "pad",
        "apply_default_css": False,  # the prose style would restyle the buttons
        "constants": PAGE_CONSTANTS,  # props.constants in pad.js
    }
    return gr.HTML(**{**options, **kwargs})


def parse_pad_value(value: object) -> Strokes:
    """The pad's value (its JSON string, or the list itself) -> checked strokes; [] for an empty pad.

    ValueError, with a message for people, for anything else (a hand-made API call, say).
    """
    if value is None:
        return []
    if isinstance(value, str):
        if len(value) > MAX_VALUE_CHARS:
            raise ValueError(f"the strokes are {len(value):,} characters of JSON; at most {MAX_VALUE_CHARS:,}")
        if not value.strip():
            return []
        try:
            value = json.loads(value)
        except json.JSONDecodeError as err:
            raise ValueError(f"the pad's value is not JSON: {err.msg} at character {err.pos}") from None
    if isinstance(value, (list, tuple)) and not value:
        return []
    return check_strokes(value)
