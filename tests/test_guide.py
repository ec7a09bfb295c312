"""The Guide tab's text: both networks, a sentence for each speed or optimizer trick in the code it shows,
the shipped models' measured accuracies, and nothing that sends a web visitor to files they cannot see."""

from __future__ import annotations

import re

from mnist_demo.guide import guide_markdown


def test_the_guide_covers_both_networks_and_explains_what_its_code_shows():
    text = guide_markdown({"cnn": 0.9965, "mlp-guide": 0.9475})
    assert "class GuideMLP" in text and "class SmallCNN" in text and "def conv_block" in text
    for thing in ("channels-last", "Muon", "autocast"):
        assert thing in text.replace("`", ""), thing
    assert "99.65%" in text and "94.75%" in text  # the accuracies it is handed, not typed into it


def test_the_guide_names_no_repository_files():
    text = guide_markdown()
    paths = re.findall(r"\b[\w./-]+\.(?:md|py|sh|safetensors|json)\b|\b(?:weights|tests|bench|scripts|docs)/", text)
    assert not paths, paths


def test_every_link_to_another_tab_leads_to_a_section_of_that_tab():
    """The guide's links (`#train:watch-it-learn`) name a tab of the app and an element id inside it."""
    import gradio as gr

    from app import build_demo

    demo = build_demo()
    tabs = {block.label.lower(): block for block in demo.blocks.values() if isinstance(block, gr.Tab)}

    def ids(block) -> set[str]:
        inside = {block.elem_id} if block.elem_id else set()
        for child in getattr(block, "children", []):
            inside |= ids(child)
        return inside

    links = re.findall(r"\]\(#([\w-]+):([\w-]+)\)", guide_markdown())
    assert {anchor for _, anchor in links} >= {"map-of-digits", "watch-it-learn", "confusion-heatmap"}
    for tab, anchor in links:
        assert tab.replace("-", " ") in tabs, tab
        assert anchor in ids(tabs[tab.replace("-", " ")]), (tab, anchor)
