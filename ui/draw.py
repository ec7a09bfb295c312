"""The Draw tab: the pad, the verdict with all ten probabilities, what the network sees and why, the model picker.

Every stroke (and a change of model) reads the drawing once; the explanation then reuses that reading.
On a phone the columns stack, and the verdict and probabilities come right under the pad.

    python -m pytest tests/test_app.py
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from mnist_demo.data import NUM_CLASSES
from mnist_demo.inference import Reading, read_drawing, saliency
from mnist_demo.reject import decline_threshold
from mnist_demo.render import enlarge, heatmap, side_by_side
from mnist_demo.session import Visitor
from ui.atlas import MapSection, build_map_section
from ui.common import DEFAULT_MODEL, DIGITS, DRAW_CONCURRENCY, QUIET, Models, Page
from ui.components import SafeSketchpad

CANVAS_SIZE = 280  # px; small canvases keep each stroke's round trip fast (800 px costs seconds a stroke)
BRUSH_RADIUS = 10  # px; a 20-px stroke on a 280-px canvas becomes MNIST's ~2-px stroke at 28x28
# Drawings made with the mouse in this app (copies of some in tests/drawings): click one to start from it.
EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.png"))
EMPTY_VERDICT = "### Draw a digit"
HINT = (
    "Wrong? Choose the digit you drew and add it to your drawings: then teach the model your handwriting "
    "in the next tab."
)
# Selects the brush on load and after Clear: Gradio's Sketchpad starts (and clears) with no tool.
PICK_BRUSH = """() => { const pick = (n) => { const b = document.querySelector('#pad button[aria-label="Brush"]');
  if (b) b.click(); else if (n > 0) setTimeout(() => pick(n - 1), 200); }; setTimeout(() => pick(25), 300); }"""


def sketch_example(path: Path) -> dict:
    """A PNG as a Sketchpad value: the picture as the background, so that strokes drawn next go on top."""
    return {"background": str(path), "layers": [], "composite": str(path)}


@dataclass(frozen=True)
class DrawTab:
    """The Draw tab's components that other tabs read or update."""

    pad: gr.components.Component
    picker: gr.Dropdown
    truth: gr.Dropdown
    add: gr.Button
    score: gr.Markdown
    map: MapSection  # the map of digits under the pad


class DrawHandlers:
    """Reading a drawing with the picked model, and explaining the reading."""

    def __init__(self, models: Models):
        self.models = models

    def read(self, value, key: str, visitor: Visitor | None) -> tuple[dict | None, Reading | None]:
        """The stroke event: the label, and the reading itself, kept in session state for `show` to reuse."""
        checkpoint = self.models.pick(key, visitor)
        try:
            reading = read_drawing(checkpoint.model, value, decline_threshold(checkpoint.metadata))
        except ValueError as err:
            raise gr.Error(str(err)) from None
        return (None if reading is None else reading.label()), reading

    def predict(self, value, key: str, visitor: Visitor | None) -> dict | None:
        """A drawing in, the digit (or number) with its probabilities out."""
        return self.read(value, key, visitor)[0]

    def show(self, reading: Reading | None, key: str, visitor: Visitor | None):
        """The verdict, what the network saw, why it decided, and the digit to offer as the truth."""
        if reading is None:
            return EMPTY_VERDICT, None, None, None
        model = self.models.pick(key, visitor).model
        seen = side_by_side([enlarge(d.sketch.image) for d in reading.digits])
        why = side_by_side([heatmap(d.sketch.image, saliency(model, d.sketch, d.digit)) for d in reading.digits])
        # Offered as the truth to correct: the digit read, unless it is no digit at all (then the visitor says).
        one = reading.digits[0] if len(reading.digits) == 1 else None
        guess = str(one.digit) if one is not None and not one.declined else None
        return f"### {reading.verdict()}", seen, why, guess

    def explain(self, value, key: str, visitor: Visitor | None):
        """`show` for a drawing not read yet; what went wrong, in the verdict's place, when it cannot be read."""
        try:
            reading = self.read(value, key, visitor)[1]
        except gr.Error as err:
            return f"**{err}**", None, None, None
        return self.show(reading, key, visitor)


def build_draw_tab(page: Page) -> DrawTab:
    """The Draw tab and its events."""
    models, visitor = page.models, page.visitor
    h = DrawHandlers(models)
    reading = gr.State(None)  # the last stroke's Reading, for the explanation that follows it
    with gr.Tab("Draw"):
        with gr.Row():
            with gr.Column(scale=5, min_width=300):
                pad = SafeSketchpad(
                    canvas_size=(CANVAS_SIZE, CANVAS_SIZE),
                    type="numpy",
                    elem_id="pad",
                    brush=gr.Brush(default_size=BRUSH_RADIUS, colors=["#000000"], color_mode="fixed"),
                    layers=False,
                    transforms=(),
                    label="Draw a digit, or a few",
                    buttons=[],
                )
            with gr.Column(scale=4, min_width=300):  # on a phone this comes right under the pad
                verdict = gr.Markdown(EMPTY_VERDICT, elem_id="verdict")
                label = gr.Label(num_top_classes=NUM_CLASSES, label="Probabilities", elem_id="pred")
            with gr.Column(scale=4, min_width=300):
                seen = gr.Image(
                    label="What the network sees (28x28)", interactive=False, elem_id="seen", buttons=[], height=230
                )
                why = gr.Image(
                    label="Why: red pixels pushed towards the answer, blue away",
                    interactive=False,
                    elem_id="why",
                    buttons=[],
                    height=230,
                )
        with gr.Row():
            picker = gr.Dropdown(
                models.choices(None),
                value=DEFAULT_MODEL,
                label="Model",
                elem_id="picker",
                # Any value reaches the handler, which names what is unknown: scripts pass "yours", and a
                # model that left the visitor's history must not leave the page in an error state.
                allow_custom_value=True,
                scale=3,
            )
            truth = gr.Dropdown(DIGITS, value=None, label="I drew a", elem_id="truth", scale=1, min_width=90)
            add = gr.Button("Add to my drawings", elem_id="add", scale=2)
        score = gr.Markdown(HINT, elem_id="score")
        atlas = build_map_section(page, reading, picker, truth)
        examples = gr.Examples(
            [[sketch_example(path)] for path in EXAMPLES],
            inputs=[pad],
            elem_id="examples",
            label="Or start from a drawing (then draw on it)",
            examples_per_page=len(EXAMPLES),
        )

    # Every stroke (and a change of model) reads the drawing, then shows that same reading; bursts
    # collapse to the last. When the drawing cannot be read, the reason takes the verdict's place.
    read_in, explained = [pad, picker, visitor], [verdict, seen, why, truth]
    # A clicked example fills the pad without a change event of its own, so it is read as one.
    for trigger, api in ((pad.change, "predict"), (picker.change, False), (examples.load_input_event.then, False)):
        read = trigger(
            h.read,
            read_in,
            [label, reading],
            api_name=api,
            api_visibility="public" if api else "private",
            show_progress="hidden",
            trigger_mode="always_last",
            concurrency_limit=DRAW_CONCURRENCY,
            concurrency_id="draw",
        )
        read.success(h.show, [reading, picker, visitor], explained, concurrency_id="draw", **QUIET)
        atlas.follow(read)
        read.failure(h.explain, read_in, explained, concurrency_id="draw", **QUIET)
    pad.clear(None, None, None, js=PICK_BRUSH)
    page.demo.load(None, None, None, js=PICK_BRUSH)
    return DrawTab(pad=pad, picker=picker, truth=truth, add=add, score=score, map=atlas)
