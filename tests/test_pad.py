"""ui/pad.py: the stroke pad component is built from mnist_demo/web's files with the server's constants, and
its value is parsed into checked strokes (the page side is tested in tests/test_pad_browser.py).

    python -m pytest tests/test_pad.py
"""

from __future__ import annotations

import json

import gradio as gr
import pytest

from mnist_demo.strokes import MAX_POINTS, PAGE_CONSTANTS
from ui.pad import MAX_VALUE_CHARS, PAD_CSS, PAD_HTML, PAD_JS, parse_pad_value, stroke_pad


@pytest.mark.parametrize("value", [None, "", "  ", "[]", []])
def test_an_empty_pad_has_no_strokes(value):
    assert parse_pad_value(value) == []


def test_the_value_is_json_of_checked_strokes():
    strokes = [[[10, 20, 0], [30.5, 40, 16]], [[100, 100, 0]]]
    assert parse_pad_value(json.dumps(strokes)) == [[[10.0, 20.0, 0.0], [30.5, 40.0, 16.0]], [[100.0, 100.0, 0.0]]]
    assert parse_pad_value(strokes) == parse_pad_value(json.dumps(strokes))  # the list itself, from the API


@pytest.mark.parametrize(
    "value, message",
    [
        ("[[[1, 2]", "not JSON"),
        ('{"strokes": []}', "list of strokes"),
        ("[[[1, NaN]]]", "not a finite number"),  # Python's json reads NaN: the strokes check refuses it
        ('[[["1", "2"]]]', "must be a number"),
        ("[[]]", "non-empty list"),
        (json.dumps([[[1, 2]] * (MAX_POINTS + 1)]), "points"),
        (42, "list of strokes"),
    ],
)
def test_bad_values_are_refused_with_a_clear_message(value, message):
    with pytest.raises(ValueError, match=message):
        parse_pad_value(value)


def test_a_huge_value_is_refused_before_it_is_parsed(monkeypatch):
    def no_parsing(*args, **kwargs):
        raise AssertionError("json.loads ran on an oversized value")

    monkeypatch.setattr(json, "loads", no_parsing)
    with pytest.raises(ValueError, match="characters of JSON"):
        parse_pad_value("[" * (MAX_VALUE_CHARS + 1))


def test_the_component_carries_the_page_files_and_the_constants():
    with gr.Blocks() as demo:
        pad = stroke_pad(label="Draw")
    assert isinstance(pad, gr.HTML) and pad.elem_id == "pad" and pad.label == "Draw"
    assert pad.value == "[]"
    config = next(c for c in demo.get_config_file()["components"] if c["id"] == pad._id)["props"]
    assert config["js_on_load"] == PAD_JS and config["html_template"] == PAD_HTML
    assert config["css_template"] == PAD_CSS
    assert config["props"]["constants"] == PAGE_CONSTANTS  # what pad.js reads as props.constants


@pytest.mark.parametrize("name, text", [("pad.html", PAD_HTML), ("pad.css", PAD_CSS)])
def test_templates_are_safe_as_javascript_template_strings(name, text):
    # Gradio evaluates html_template and css_template as `...` template strings: a backtick ends one early,
    # and a dollar-brace runs code.
    assert "`" not in text and "${" not in text, name
    assert "{{" not in text, name  # ... after Handlebars, which would eat double braces


def test_the_page_keeps_the_element_ids_and_documents_its_events():
    assert "<canvas" in PAD_HTML and "pad-hint" in PAD_HTML
    assert 'new CustomEvent("strokes"' in PAD_JS and "props.value = sent" in PAD_JS
    assert "touch-action: none" in PAD_CSS
    head = PAD_JS.split("\n\n")[0]
    assert "'strokes' CustomEvent" in head and "props.value" in head  # the contract, at the top of the file
