"""Tiny Gradio pages holding ui/page_model.py's component, for the tests and the benchmarks of the page's models.

`harness` has the component and a dropdown whose change event sets its value, as the app's events will:
`served(models, choices)` launches it on a free loopback port in this process (so `models`, a
`PageModels`, can be added to while it runs), and the scripts below run networks in it. `reading_harness`
adds the stroke pad, read by the page while the pen moves and by the server on pen-up, as the Draw tab
will: `served_reading(nets)` launches it.

    python -m pytest -q tests/test_page_model.py tests/test_page_reading.py
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

import gradio as gr
from torch import nn

from mnist_demo.inference import prepare, read_strokes
from mnist_demo.reject import Decline
from testkit.browser import wait_until
from testkit.pad_apps import events_html
from ui.pad import parse_pad_value, stroke_pad
from ui.page_model import PageModels, page_model_html

READY = "() => !!(window.mnistDemo && window.mnistDemo.models && window.MnistNet)"
# ... and the page reads strokes with the model `hash` (it has arrived).
READS_WITH = """(hash) => !!(window.mnistDemo && window.mnistDemo.read && window.mnistDemo.models.current
  && window.mnistDemo.models.current.hash === hash && window.mnistDemo.models.currentHash === hash)"""

# ([hash, images]) -> for each image {logits, probabilities, features, residual}, from the page's copy of
# `hash` (residual: null unless it carries a subspace).
FORWARD = """async ([hash, images]) => {
  const net = await window.mnistDemo.models.get(hash);
  return images.map((image) => {
    const r = net.forward(image);
    return { logits: Array.from(r.logits), probabilities: Array.from(r.probabilities),
             features: Array.from(r.features), residual: r.residual };
  });
}"""
# ([hash, images, rule]) -> FORWARD's, with each image's score under `rule` (a reference: decline_below,
# decline_score, decline_weight) and whether it is declined, as mnist_demo/web/verdict.js says.
SCORED = """async ([hash, images, rule]) => {
  const net = await window.mnistDemo.models.get(hash);
  const outputs = images.map((image) => net.forward(image));
  const scores = MnistVerdict.scores(outputs, rule), declined = MnistVerdict.declines(outputs, rule);
  return outputs.map((r, i) => ({ logits: Array.from(r.logits), features: Array.from(r.features),
                                  residual: r.residual, score: scores[i], declined: declined[i] }));
}"""


def harness(models: PageModels, choices: dict[str, str]) -> gr.Blocks:
    """The page: a dropdown of `choices` (name -> the value `models.publish` returned) and the component."""
    with gr.Blocks(title="page model harness") as demo:
        pick = gr.Dropdown(list(choices), value=None, label="model in the page", elem_id="pick")
        html = page_model_html(models, elem_id="page-model")

        def choose(name: str | None) -> str | None:
            return choices.get(name)

        pick.change(choose, pick, html, show_progress="hidden")
    return demo


@contextmanager
def served(models: PageModels, choices: dict[str, str] | None = None) -> Iterator[str]:
    """The harness, launched in this process on a free loopback port; its URL. Closed on the way out."""
    with _launched(harness(models, choices or {})) as url:
        yield url


@contextmanager
def _launched(demo: gr.Blocks) -> Iterator[str]:
    _, url, _ = demo.launch(server_name="127.0.0.1", prevent_thread_lock=True, quiet=True, run_history=False)
    try:
        yield url
    finally:
        demo.close()


# Page readings as they arrive: window.__readings gets each 'mnist-demo:reading' event's detail with the
# time it came (performance.now()); window.__shown each reading handed to showReading.
RECORD = """() => { window.__readings = []; window.__shown = [];
  window.addEventListener('mnist-demo:reading', (e) => window.__readings.push({...e.detail, at: performance.now()}));
  window.mnistDemo.showReading = (r) => window.__shown.push({source: r.source, verdict: r.verdict}); }"""


def pick(page, name: str, hash_: str) -> None:
    """Choose `name` in the harness's picker (#pick); wait until the page reads with it (its hash)."""
    page.locator("#pick input").click()
    page.get_by_role("option", name=name, exact=True).click()
    wait_until(page, READS_WITH, hash_, why=lambda: f"the page does not read with {name}")


def reading_harness(
    registry: PageModels,
    nets: dict[str, nn.Module],
    initial: str | None = None,
    rules: dict[str, Decline | None] | None = None,
) -> gr.Blocks:
    """The stroke pad (#pad), a model picker (#pick) and the page-model component (#page-model), as the Draw tab.

    The picker sets the component's value (each net published once, with its "not a digit" rule from
    `rules`, if any) and the model the server reads with; on pen-up the server reads the strokes with it
    and its rule (`read_strokes`, as the Draw tab) into #verdict and #pred, and counts its answers in
    #events, so a page can tell when one has been shown.
    """
    rules = rules or {}
    refs = {name: registry.publish(prepare(net), pin=True, decline=rules.get(name)) for name, net in nets.items()}

    def read(value, name, count):
        try:
            reading = read_strokes(nets[name], parse_pad_value(value), rules.get(name)) if name in nets else None
        except ValueError as err:
            raise gr.Error(str(err)) from None
        verdict = "Draw a digit" if reading is None else reading.verdict()
        label = None if reading is None else reading.label()
        return verdict, label, events_html(count + 1), count + 1

    with gr.Blocks(title="page reading harness") as demo:
        pad = stroke_pad()
        pick = gr.Dropdown(list(nets), value=initial, label="model", elem_id="pick")
        html = page_model_html(registry, value=refs.get(initial), elem_id="page-model")
        verdict = gr.Markdown("Draw a digit", elem_id="verdict")
        pred = gr.Label(num_top_classes=3, label="Probabilities", elem_id="pred")
        events = gr.HTML(events_html(0), elem_id="events")
        count = gr.State(0)
        pick.change(refs.get, pick, html, show_progress="hidden")
        pad.change(
            read, [pad, pick, count], [verdict, pred, events, count], show_progress="hidden", trigger_mode="always_last"
        )
    return demo


@contextmanager
def served_reading(
    nets: dict[str, nn.Module], initial: str | None = None, rules: dict[str, Decline | None] | None = None
) -> Iterator[tuple[str, dict[str, str]]]:
    """`reading_harness` on a free loopback port in this process; (its URL, each net's page-model hash)."""
    registry = PageModels()
    demo = reading_harness(registry, nets, initial, rules)
    rules = rules or {}
    hashes = {name: json.loads(registry.publish(net, decline=rules.get(name)))["hash"] for name, net in nets.items()}
    with _launched(demo) as url:
        yield url, hashes
