"""The Guide tab: the beginner's guide this demo grew from, step by step, with the code that runs here.

python -c "from mnist_demo.guide import guide_markdown; print(guide_markdown())"
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from mnist_demo.guide import guide_markdown
from ui.common import Page

WEB = Path(__file__).resolve().parents[1] / "mnist_demo" / "web"


def build_guide_tab(page: Page) -> None:
    shipped = page.models.shared
    accuracy = {name: shipped.get(name).test_accuracy for name in shipped.names()}
    with gr.Tab("Guide"):
        gr.Markdown(guide_markdown(accuracy), elem_id="guide")
        # Its links to other tabs' sections (`#train:watch-it-learn`) open the tab and scroll there.
        gr.HTML(html_template="", js_on_load=(WEB / "links.js").read_text())
