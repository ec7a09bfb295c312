"""The reading panel (ui/reading.py, mnist_demo/web/reading.js): the value the server sends, and the page's
rendering of it in chromium checked against the Python reading (bars, percents, the 28 x 28 pixels), the
page's own readings through window.mnistDemo.showReading, and updates that rebuild nothing.

    python -m pytest tests/test_reading.py
"""

from __future__ import annotations

import contextlib
import json

import gradio as gr
import numpy as np
import pytest

from mnist_demo.data import IMAGE_SIZE, NUM_CLASSES
from mnist_demo.inference import MAX_DIGITS, read_strokes
from testkit.browser import (
    digit,
    new_page,
    number,
    panel,
    save_evidence,
    wait_until,
)
from ui.reading import (
    PAGE_CONSTANTS,
    READING_CSS,
    READING_HTML,
    READING_JS,
    message_value,
    reading_panel,
    reading_value,
)


@pytest.fixture(scope="module")
def cnn(models):
    return models.pick("cnn", None).model


@pytest.fixture(scope="module")
def seven(cnn):
    return read_strokes(cnn, digit("7", height=170))


@pytest.fixture(scope="module")
def forty_two(cnn):
    return read_strokes(cnn, number("42"))


def test_one_digit_sends_its_probabilities_and_input(seven):
    value = json.loads(reading_value(seven))
    assert value["source"] == "server" and value["verdict"] == seven.verdict() and "numbers" not in value
    (d,) = value["digits"]
    assert len(d["probabilities"]) == NUM_CLASSES and abs(sum(d["probabilities"]) - 1) < 1e-3
    assert np.argmax(d["probabilities"]) == 7
    assert d["input"] == seven.digits[0].sketch.image.reshape(-1).tolist() and len(d["input"]) == IMAGE_SIZE**2


def test_a_number_sends_each_digit_and_its_likeliest_readings(forty_two):
    value = json.loads(reading_value(forty_two))
    assert [np.argmax(d["probabilities"]) for d in value["digits"]] == [4, 2]
    texts = [text for text, _ in value["numbers"]]
    assert texts[0] == "42" and len(texts) > 1
    assert [p for _, p in value["numbers"]] == sorted((p for _, p in value["numbers"]), reverse=True)


def test_nothing_and_messages():
    assert reading_value(None) is None
    value = json.loads(message_value("the pad's value is not JSON"))
    assert value == {"source": "server", "verdict": "the pad's value is not JSON", "digits": [], "error": True}


def test_the_component_carries_the_page_files_and_the_constants():
    with gr.Blocks() as demo:
        component = reading_panel()
    assert isinstance(component, gr.HTML) and component.elem_id == "pred" and component.value is None
    config = next(c for c in demo.get_config_file()["components"] if c["id"] == component._id)["props"]
    assert config["js_on_load"] == READING_JS and config["html_template"] == READING_HTML
    assert config["css_template"] == READING_CSS
    assert (
        config["props"]["constants"]
        == PAGE_CONSTANTS
        == {
            "image_size": IMAGE_SIZE,
            "num_classes": NUM_CLASSES,
            "max_digits": MAX_DIGITS,
        }
    )


@pytest.mark.parametrize("name, text", [("reading.html", READING_HTML), ("reading.css", READING_CSS)])
def test_templates_are_safe_as_javascript_template_strings(name, text):
    assert "`" not in text and "${" not in text and "{{" not in text, name


def test_the_contract_is_at_the_top_of_the_script():
    head = READING_JS.split("\n\n")[0] + READING_JS.split("\n\n")[1]
    for words in ('"source": "server" | "page"', '"digits"', '"numbers"', "window.mnistDemo.showReading"):
        assert words in head, words
    assert 'id="verdict"' in READING_HTML


# --------------------------------------------------------------------------------------------------
# In chromium


@pytest.fixture(scope="module")
def values(seven, forty_two):
    """The readings the test app can send, by name."""
    return {"seven": reading_value(seven), "forty-two": reading_value(forty_two), "none": None}


@pytest.fixture(scope="module")
def url(values):
    """A page with the panel, and a button that sets its value from Python to the reading named in #which."""
    with gr.Blocks() as demo:
        component = reading_panel()
        which = gr.Textbox(elem_id="which")
        gr.Button("Show", elem_id="show").click(lambda name: values[name], which, component)
    _, address, _ = demo.launch(server_name="127.0.0.1", prevent_thread_lock=True, quiet=True, run_history=False)
    try:
        yield address
    finally:
        demo.close()


@pytest.fixture
def page(browser, url, request):
    failures_before = request.session.testsfailed
    page = new_page(browser, url)
    page.locator("#pred #verdict").wait_for()
    page.evaluate(
        """() => { window.__readings = [];
      document.querySelector('#pred').addEventListener('reading', (e) => window.__readings.push(e.detail)); }"""
    )
    yield page
    if request.session.testsfailed > failures_before:
        print(f"\nscreenshots and console logs: {save_evidence([page], request.node.name)}")
    with contextlib.suppress(Exception):
        page.context.close()


def from_server(page, name: str) -> None:
    """Have the server set the panel's value, and wait until the panel has rendered it."""
    before = page.evaluate("() => window.__readings.length")
    page.fill("#which textarea", name)
    page.click("#show")
    wait_until(page, "(n) => window.__readings.length > n", before, lambda: f"the panel never showed {name!r}")


def pixels(page) -> list[list[int]]:
    """The red channel of each visible 28 x 28 view, row-major: what the panel drew."""
    return page.evaluate(
        """() => [...document.querySelectorAll('#pred .reading-view')].filter(v => !v.hidden).map(v => {
      const c = v.querySelector('canvas');
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      return Array.from({length: d.length / 4}, (_, i) => d[4 * i]); })"""
    )


@pytest.mark.browser
@pytest.mark.slow
def test_the_servers_reading_of_a_digit_is_drawn_as_python_made_it(page, seven):
    assert panel(page)["empty"] and panel(page)["verdict"] == "Draw a digit"
    from_server(page, "seven")
    shown = panel(page)
    assert shown["verdict"] == seven.verdict() and shown["source"] == "server" and not shown["empty"]
    probabilities = seven.digits[0].probabilities
    assert shown["bars"] == [[str(d), f"{round(100 * p)}%"] for d, p in enumerate(probabilities)]  # fixed 0-9
    assert shown["top"] == "7" and shown["views"] == 1
    assert pixels(page) == [seven.digits[0].sketch.image.reshape(-1).tolist()]


@pytest.mark.browser
@pytest.mark.slow
def test_a_number_shows_its_readings_and_every_digit_then_nothing(page, forty_two):
    from_server(page, "forty-two")
    shown = panel(page)
    assert shown["verdict"] == forty_two.verdict() and shown["top"] == "42" and shown["views"] == 2
    assert [label for label, _ in shown["bars"]] == list(forty_two.label())
    assert pixels(page) == [d.sketch.image.reshape(-1).tolist() for d in forty_two.digits]
    from_server(page, "none")
    shown = panel(page)
    assert shown["empty"] and shown["verdict"] == "Draw a digit" and shown["views"] == 0 and not shown["bars"]


@pytest.mark.browser
@pytest.mark.slow
def test_the_page_shows_its_own_readings_and_bad_ones_safely(page, values):
    seven = json.loads(values["seven"])
    page.evaluate("(v) => window.mnistDemo.showReading({...v, source: 'page', verdict: 'From the page'})", seven)
    shown = panel(page)
    assert shown["verdict"] == "From the page" and shown["source"] == "page" and shown["top"] == "7"
    assert page.evaluate("() => window.__readings.at(-1)") == {"source": "page", "verdict": "From the page"}
    page.evaluate("(v) => window.mnistDemo.showReading(v)", message_value("Cannot read that"))
    shown = panel(page)
    assert shown["verdict"] == "Cannot read that" and not shown["bars"] and shown["views"] == 0
    for bad in ["{not json", {"digits": [{"probabilities": [1]}]}, {"verdict": 7}, [], 42]:
        page.evaluate("(v) => window.mnistDemo.showReading(v)", bad)
        assert panel(page)["empty"], bad  # shown as nothing, never half-drawn
    broken = {"verdict": "Partly", "digits": [{"probabilities": [0.5] * 3, "input": [1, 2]}]}
    page.evaluate("(v) => window.mnistDemo.showReading(v)", broken)
    shown = panel(page)
    assert shown["verdict"] == "Partly" and not shown["bars"] and shown["views"] == 0  # the malformed parts left out


@pytest.mark.browser
@pytest.mark.slow
def test_many_updates_reuse_the_same_elements(page, values):
    """The page reader will update the panel many times a second: no element may be made or replaced."""
    seven, forty_two = json.loads(values["seven"]), json.loads(values["forty-two"])
    page.evaluate(
        "([a, b]) => { window.mnistDemo.showReading(a); window.mnistDemo.showReading(b); }", [seven, forty_two]
    )
    result = page.evaluate(
        """([a, b]) => { const root = document.querySelector('#pred');
      const before = [...root.querySelectorAll('*')];
      let added = 0;
      const watch = new MutationObserver((records) => records.forEach(r => { added += r.addedNodes.length; }));
      watch.observe(root, {subtree: true, childList: true});
      const start = performance.now();
      for (let i = 0; i < 200; i++) window.mnistDemo.showReading(i % 2 ? a : b);
      const ms = (performance.now() - start) / 200;
      watch.takeRecords().forEach(r => { added += r.addedNodes.length; });
      const after = [...root.querySelectorAll('*')];
      return {same: before.length === after.length && before.every((e, i) => e === after[i]), added, ms}; }""",
        [seven, forty_two],
    )
    assert result["same"] and result["added"] == 0, result  # not an element, not a text node
    assert result["ms"] < 5, result  # per update, generous for a loaded machine (about 0.1 ms here)
