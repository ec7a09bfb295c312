"""The Draw tab's map of digits: where the drawing lands among the MNIST digits the picked model knows.

A section under the pad rather than a tab of its own: the map is about the drawing on the pad and the
model picked beside it, and the page moves a marker over it while the pen moves (mnist_demo/web/map.js),
which only helps where pad and map are on one screen. On a phone it comes under the verdict, full width.

The pictures and words come from `mnist_demo.mapview`; each stroke's reading (the Draw tab's `Reading`
state) is placed, never read again.

    python -m pytest tests/test_map_view.py
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from mnist_demo import mapview
from mnist_demo.atlas import NEIGHBOURS
from mnist_demo.data import MNISTNotFoundError
from mnist_demo.inference import Reading
from mnist_demo.reject import decline_threshold
from mnist_demo.session import Visitor
from ui.common import QUIET, Models, Page

WEB = Path(__file__).resolve().parents[1] / "mnist_demo" / "web"
ANCHOR = "map-of-digits"  # the section's id: the Guide links here
HELP = (
    "Each dot is one of 2,000 MNIST test digits, placed by what the picked model computes just before its last "
    "layer and coloured by the digit it really is: digits the network finds alike lie close together. Your "
    "drawing is the ring, joined by lines to the five digits the network finds most like it; your own labelled "
    "drawings are the squares. Click a dot to see that digit."
)
NO_MNIST = "The map needs the MNIST test digits, which are not on this machine: the Train tab says where it looked."


class MapHandlers:
    """The picked model's map with the drawing on it, and the digit under a click."""

    def __init__(self, models: Models):
        self.models = models

    def show(self, reading: Reading | None, key: str, visitor: Visitor | None, sent: str | None = None, truth=None):
        """The map with `reading`'s drawing (None: the map alone) and the visitor's drawings; the page's JSON
        when the model is not the one it has (`sent`: that model's hash)."""
        checkpoint = self.models.pick(key, visitor)
        model = checkpoint.model
        rule = decline_threshold(checkpoint.metadata)
        subspace = rule.page_subspace if rule is not None else None  # the page's copy carries it, and its hash
        mine = visitor.drawings.as_split() if visitor is not None and len(visitor.drawings) else None
        try:
            view = mapview.map_view(
                model,
                reading,
                mine.images.numpy() if mine else None,
                mine.labels.numpy() if mine else None,
                None if truth in (None, "") else int(truth),
            )
            hashed = mapview.page_hash(model, subspace) or "none"  # a model too big for the page: it never reads
            page = gr.skip() if hashed == sent else json.dumps(mapview.page_map(model, subspace), separators=(",", ":"))
        except MNISTNotFoundError:
            return None, NO_MNIST, [], None, None
        return view.picture, view.sentence, view.neighbours, page, hashed

    def said(self, truth, reading: Reading | None, key: str, visitor: Visitor | None, sent: str | None):
        """The visitor chose the digit they drew: the sentence names it ("Your 4 sits among 9s.")."""
        if reading is None or len(reading.digits) != 1:
            return (gr.skip(),) * 5
        return self.show(reading, key, visitor, sent, truth)

    def click(self, key: str, visitor: Visitor | None, event: gr.SelectData):
        """The map digit nearest the click, enlarged, with what it is and what the model reads."""
        try:
            found = mapview.clicked(self.models.pick(key, visitor).model, *event.index)
        except MNISTNotFoundError:
            return None, NO_MNIST
        if found is None:
            return gr.skip(), "No digit there: click on a dot."
        return found


@dataclass(frozen=True)
class MapSection:
    """The map section's components, and how the Draw tab's events reach it."""

    handlers: MapHandlers
    inputs: list  # the Draw tab's reading (state), picker, the visitor, and `sent`
    picture: gr.Image
    sentence: gr.Markdown
    neighbours: gr.Gallery
    page: gr.HTML  # what the page needs to place its own readings (JSON), see mnist_demo/web/map.js
    sent: gr.State  # the hash of the model the page's JSON is for: it travels only when the model changes

    @property
    def shown(self) -> list:
        """What a reading changes."""
        return [self.picture, self.sentence, self.neighbours, self.page, self.sent]

    def follow(self, read: gr.events.Dependency) -> None:
        """Place each reading the event `read` makes (a stroke, a change of model) once it has succeeded."""
        read.success(self.handlers.show, self.inputs, self.shown, concurrency_id="draw", **QUIET)

    def refresh_on(self, trigger) -> None:
        """Draw the map again when `trigger` fires (the visitor's drawings changed: their squares moved)."""
        trigger(self.handlers.show, self.inputs, self.shown, concurrency_id="draw", **QUIET)


def build_map_section(page: Page, reading: gr.State, picker: gr.Dropdown, truth: gr.Dropdown) -> MapSection:
    """The section, inside the Draw tab, under its pad, picker and "I drew a"; the map of the picked model
    shows on load, and clicks and the chosen digit are wired here. `MapSection.follow` takes the readings."""
    with gr.Column(elem_id=ANCHOR):
        gr.Markdown("### The map of digits")
        with gr.Row():
            picture = gr.Image(
                label="The map of digits (the picked model)",
                interactive=False,
                elem_id="map",
                buttons=[],
                scale=1,
                min_width=300,
            )
            with gr.Column(scale=1, min_width=300):  # room for five tiles in a row (Gradio's are 100 px at least)
                sentence = gr.Markdown(elem_id="map-sentence")
                neighbours = gr.Gallery(
                    label="Its nearest MNIST digits",
                    columns=NEIGHBOURS,
                    height=150,
                    allow_preview=False,
                    object_fit="contain",
                    elem_id="map-neighbours",
                )
                clicked = gr.Image(
                    label="The digit you clicked", interactive=False, elem_id="map-clicked", buttons=[], height=190
                )
                caption = gr.Markdown(elem_id="map-clicked-caption")
        gr.Markdown(HELP, elem_id="map-help")
        holder = gr.HTML(value=None, html_template="", js_on_load=(WEB / "map.js").read_text(), elem_id="map-page")
    h, sent = MapHandlers(page.models), gr.State(None)
    section = MapSection(h, [reading, picker, page.visitor, sent], picture, sentence, neighbours, holder, sent)
    picture.select(h.click, [picker, page.visitor], [clicked, caption], concurrency_id="draw", **QUIET)
    truth.input(h.said, [truth, *section.inputs], section.shown, concurrency_id="draw", **QUIET)
    page.demo.load(h.show, section.inputs, section.shown, concurrency_id="draw", **QUIET)
    return section
