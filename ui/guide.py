"""The Guide tab: the beginner's guide this demo grew from, step by step, with the code that runs here.

python -c "from mnist_demo.guide import guide_markdown; print(guide_markdown())"
"""

from __future__ import annotations

import gradio as gr

from mnist_demo.guide import guide_markdown
from ui.common import Page


def build_guide_tab(page: Page) -> None:
    shipped = page.models.shared
    accuracy = {name: shipped.get(name).test_accuracy for name in shipped.names()}
    with gr.Tab("Guide"):
        gr.Markdown(guide_markdown(accuracy))
