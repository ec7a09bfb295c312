"""A tiny Gradio page holding ui/page_model.py's component, for the tests and the benchmark of net.js.

The page has the component and a dropdown whose change event sets its value, as the app's events will:
`served(models, choices)` launches it on a free loopback port in this process (so `models`, a
`PageModels`, can be added to while it runs), and the scripts below run networks in it.

    python -m pytest -q tests/test_page_model.py
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import gradio as gr

from ui.page_model import PageModels, page_model_html

READY = "() => !!(window.mnistDemo && window.mnistDemo.models && window.MnistNet)"

# ([hash, images]) -> for each image {logits, probabilities, features}, from the page's copy of `hash`.
FORWARD = """async ([hash, images]) => {
  const net = await window.mnistDemo.models.get(hash);
  return images.map((image) => {
    const r = net.forward(image);
    return { logits: Array.from(r.logits), probabilities: Array.from(r.probabilities),
             features: Array.from(r.features) };
  });
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
    demo = harness(models, choices or {})
    _, url, _ = demo.launch(server_name="127.0.0.1", prevent_thread_lock=True, quiet=True)
    try:
        yield url
    finally:
        demo.close()
