"""The Draw tab: the stroke pad, the reading panel (verdict, all ten probabilities, the 28x28 input), why the
model decided, the model picker, and the example drawings; and the /predict endpoint for scripts.

While the pen moves the page reads the strokes itself with its copy of the picked model (ui/page_model.py,
`DrawTab.page_model`) and sends the server nothing. Each pen-up, Undo or Clear sends the pad's strokes as
JSON; a change of model or a clicked example reads them too. The server's reading goes to the panel at
once (it names the strokes and model it read, so a late one never replaces a newer page reading), the
explanation follows it. On a phone the columns stack, and the verdict and probabilities come right
under the pad.

The pad's events skip Gradio's queue (one POST instead of a join and an event stream: the answer comes
sooner) and pass through `ui.gate.Gate` instead, which bounds how many run at once, how many wait, and
how many one visitor may have going. /predict, for scripts, is queued like every API call, and passes
through the same gate.

    python -m pytest tests/test_app.py tests/test_reading.py tests/test_page_app.py
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from mnist_demo.inference import Reading, read_drawing, read_strokes, saliency
from mnist_demo.reject import decline_threshold
from mnist_demo.render import heatmap, side_by_side
from mnist_demo.session import Visitor
from mnist_demo.strokes import BRUSH, check_strokes
from ui.atlas import MapSection, build_map_section
from ui.common import DEFAULT_MODEL, DIGITS, DRAW_CONCURRENCY, QUIET, Models, Page
from ui.components import DrawingValues
from ui.gate import Busy, Gate
from ui.pad import parse_pad_value, stroke_pad
from ui.page_model import ModelInPage, PageModels, page_model_html, page_reference
from ui.reading import drawn_signature, message_value, reading_panel, reading_value

EXAMPLES_FILE = Path(__file__).resolve().parents[1] / "examples" / "strokes.ndjson"
WEB = Path(__file__).resolve().parents[1] / "mnist_demo" / "web"
# Reads waiting for a turn beyond the DRAW_CONCURRENCY running, all visitors together (app.QUEUE_SIZE is
# the queue's own); and what one browser tab may have running or waiting: its pad, picker and example
# events and the explanations that follow them.
DRAW_WAITING = 64
PER_VISITOR = 4
BUSY = "The server is busy: draw again in a moment."
HINT = (
    "Wrong? Choose the digit you drew and add it to your drawings: then teach the model your handwriting "
    "in the next tab."
)
THUMB_MARGIN = 0.15  # paper around an example's ink in its picture, as a share of the ink's longest side


@dataclass(frozen=True)
class Example:
    """A drawing offered under the pad: its name (e.g. "7-narrow"), digit and strokes (the pad's pixels)."""

    name: str
    label: str
    strokes: list


def load_examples(path: Path = EXAMPLES_FILE) -> list[Example]:
    """The examples file: one JSON line per drawing, {"name", "label", "strokes"} (what evaluate --strokes reads)."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [Example(r["name"], str(r["label"]), check_strokes(r["strokes"])) for r in rows]


EXAMPLES = load_examples()


def thumbnail(strokes: list, brush: float = BRUSH) -> str:
    """An SVG picture of strokes, cropped to their ink with a margin: the pad's round pen, black."""
    points = [p for line in strokes for p in line]
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    side = max(max(xs) - min(xs), max(ys) - min(ys)) + brush
    side *= 1 + 2 * THUMB_MARGIN
    x0, y0 = (max(xs) + min(xs) - side) / 2, (max(ys) + min(ys) - side) / 2
    marks = []
    for line in strokes:
        if len(line) == 1:
            marks.append(f'<circle cx="{line[0][0]:.1f}" cy="{line[0][1]:.1f}" r="{brush / 2:g}"/>')
        else:
            path = " ".join(f"{p[0]:.1f},{p[1]:.1f}" for p in line)
            marks.append(f'<polyline points="{path}"/>')
    return (
        f'<svg viewBox="{x0:.1f} {y0:.1f} {side:.1f} {side:.1f}" aria-hidden="true" fill="none" '
        f'stroke="currentColor" stroke-width="{brush:g}" stroke-linecap="round" stroke-linejoin="round">'
        f'<g fill="currentColor" stroke="none">{"".join(m for m in marks if m.startswith("<circle"))}</g>'
        f"{''.join(m for m in marks if m.startswith('<polyline'))}</svg>"
    )


def example_strip(examples: list[Example]) -> gr.HTML:
    """The examples as a row of pictures (elem_id "examples"); clicking one fires `select` with its index."""
    buttons = "".join(
        f'<button type="button" data-index="{i}" data-name="{e.name}" aria-label="Example: a {e.label}" '
        f'title="Start from this {e.label}, then draw on it">{thumbnail(e.strokes)}</button>'
        for i, e in enumerate(examples)
    )
    return gr.HTML(
        f'<div class="examples"><span class="examples-label">Or start from a drawing (then draw on it):</span>'
        f"{buttons}</div>",
        css_template=(WEB / "examples.css").read_text(),
        js_on_load=(WEB / "examples.js").read_text(),
        apply_default_css=False,
        elem_id="examples",
    )


@dataclass(frozen=True)
class DrawTab:
    """The Draw tab's components that other tabs (and the in-page reader) read or update."""

    pad: gr.HTML  # its value: the strokes as JSON (mnist_demo/web/pad.js)
    panel: gr.HTML  # the reading panel, #pred (mnist_demo/web/reading.js)
    picker: gr.Dropdown
    truth: gr.Dropdown
    add: gr.Button
    score: gr.Markdown
    map: MapSection  # the map of digits under the pad
    page_model: ModelInPage  # the model the page reads with while the pen moves, and what sets it


def drawing_of(value: object) -> dict | list:
    """What a drawing value holds: strokes (a list) from the pad's JSON or {"strokes": ...}; else the value.

    ValueError, for people, when strokes are malformed.
    """
    if isinstance(value, str):  # the pad's value
        return parse_pad_value(value)
    if isinstance(value, dict) and "strokes" in value:  # the API's strokes, checked by DrawingValues already
        return check_strokes(value["strokes"])
    return value


class DrawHandlers:
    """Reading a drawing (strokes, a Sketchpad value or an image) with the picked model, and explaining it."""

    def __init__(self, models: Models, gate: Gate | None = None, page_models: PageModels | None = None):
        self.models = models
        self.gate = gate or Gate(DRAW_CONCURRENCY, DRAW_WAITING, PER_VISITOR)
        # To name the model that read, when the page has it. Not `or`: an empty registry is falsy.
        self.page_models = page_models if page_models is not None else PageModels()

    def reading(self, value, key: str, visitor: Visitor | None) -> Reading | None:
        """The drawing read by the picked model (declining what is no digit at the checkpoint's threshold); None
        when nothing is drawn; gr.Error for what cannot be read."""
        checkpoint = self.models.pick(key, visitor)
        decline = decline_threshold(checkpoint.metadata)
        try:
            drawing = drawing_of(value)
            if isinstance(drawing, list):
                return read_strokes(checkpoint.model, drawing, decline)
            return read_drawing(checkpoint.model, drawing, decline)
        except ValueError as err:
            raise gr.Error(str(err)) from None

    def predict(self, value, key: str, visitor: Visitor | None) -> dict | None:
        """/predict: a drawing in, the digit (or number) with its probabilities out (a gr.Label value)."""
        reading = self.reading(value, key, visitor)
        return None if reading is None else reading.label()

    def read(self, value, key: str, visitor: Visitor | None) -> tuple[str | None, Reading | None]:
        """The pad's event: the panel's value, and the reading itself, kept in session state for `why`.

        What cannot be read is said in the verdict's place, not as an error. The value names the strokes
        read and the model (ui/reading.py `reading_value`), so that the page, which reads as the pen
        moves, never shows an answer of strokes it has moved on from.
        """
        drawn = self.drawn(value)
        try:
            reading = self.reading(value, key, visitor)
        except gr.Error as err:
            return message_value(err.message, drawn), None
        model = self.page_models.known(self.models.pick(key, visitor).model)  # picked fine just now
        return reading_value(reading, drawn=drawn, model=model), reading

    @staticmethod
    def drawn(value) -> str | None:
        """The signature of the pad's strokes (ui/reading.py `drawn_signature`), or None for any other value."""
        try:
            return drawn_signature(parse_pad_value(value)) if isinstance(value, str) else None
        except ValueError:
            return None

    def why(self, reading: Reading | None, key: str, visitor: Visitor | None):
        """Why the model decided (saliency of each digit), and the digit to offer as the truth."""
        if reading is None:
            return None, None
        try:
            model = self.models.pick(key, visitor).model
        except gr.Error:  # the model went away since the reading: nothing to explain
            return None, None
        why = side_by_side([heatmap(d.sketch.image, saliency(model, d.sketch, d.digit)) for d in reading.digits])
        # Offered as the truth to correct: the digit read, unless it is no digit at all (then the visitor says).
        one = reading.digits[0] if len(reading.digits) == 1 else None
        guess = str(one.digit) if one is not None and not one.declined else None
        return why, guess

    def explain(self, value, key: str, visitor: Visitor | None):
        """`read` then `why` at once: (the panel's value, the saliency picture, the digit offered as the truth)."""
        panel, reading = self.read(value, key, visitor)
        return panel, *self.why(reading, key, visitor)

    @staticmethod
    def example(event: gr.SelectData) -> str:
        """A clicked example's strokes, for the pad (whose change event then reads them)."""
        index = event.index
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(EXAMPLES):
            raise gr.Error("There is no such example.")
        return json.dumps(EXAMPLES[index].strokes)

    # Through the gate: the pad's events (they skip Gradio's queue and its concurrency limit), and /predict,
    # so that reads from the page and from scripts together take at most DRAW_CONCURRENCY worker threads.

    async def predict_gated(self, value, key: str, visitor: Visitor | None, request: gr.Request):
        try:
            return await self.gate.run(request.session_hash, self.predict, value, key, visitor)
        except Busy:
            raise gr.Error(BUSY) from None

    async def read_gated(self, value, key: str, visitor: Visitor | None, request: gr.Request):
        try:
            return await self.gate.run(request.session_hash, self.read, value, key, visitor)
        except Busy:
            return message_value(BUSY), None

    async def why_gated(self, reading: Reading | None, key: str, visitor: Visitor | None, request: gr.Request):
        try:
            return await self.gate.run(request.session_hash, self.why, reading, key, visitor)
        except Busy:
            return None, None


def build_draw_tab(page: Page) -> DrawTab:
    """The Draw tab, its events, and /predict."""
    models, visitor = page.models, page.visitor
    h = DrawHandlers(models, page_models=page.page_models)
    reading = gr.State(None)  # the last stroke's Reading, for the explanation that follows it
    with gr.Tab("Draw"):
        with gr.Row():
            with gr.Column(scale=5, min_width=300):
                pad = stroke_pad()
            with gr.Column(scale=4, min_width=300):  # on a phone this comes right under the pad
                panel = reading_panel()
            with gr.Column(scale=4, min_width=300):
                why = gr.Image(
                    label="Why: red pixels pushed towards the answer, blue away",
                    interactive=False,
                    elem_id="why",
                    buttons=[],
                    height=230,
                    format="png",  # lossless, and smaller and quicker to encode than webp for these pictures
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
        examples = example_strip(EXAMPLES)  # next to the pad they go on, above the map
        atlas = build_map_section(page, reading, picker, truth)
        # The model the page reads with while the pen moves (renders nothing): the picked one, from the start.
        first = page_reference(page.page_models, models, DEFAULT_MODEL, None)
        live = ModelInPage(page.page_models, models, page_model_html(page.page_models, first, elem_id="page-model"))
        # /predict's input and output: never shown, never changed by the page (it draws on the pad).
        api_drawing = DrawingValues(visible=False, label="Drawing", elem_id="api-drawing")
        api_label = gr.Label(visible=False, label="Probabilities")

    # Every stroke (and a change of model) reads the drawing, then explains that same reading; bursts
    # collapse to the last. A clicked example goes on the pad, whose change reads it.
    for trigger in (pad.change, picker.change):
        read = trigger(
            h.read_gated,
            [pad, picker, visitor],
            [panel, reading],
            trigger_mode="always_last",
            queue=False,
            **QUIET,
        )
        read.then(h.why_gated, [reading, picker, visitor], [why, truth], queue=False, **QUIET)
        atlas.follow(read)
    # The page's copy of the model follows the picker; the Train and Your drawings tabs set it too.
    picker.change(live.reference, [picker, visitor], live.component, queue=False, **QUIET)
    examples.select(h.example, None, pad, queue=False, **QUIET)
    api_drawing.change(
        h.predict_gated,
        [api_drawing, picker, visitor],
        api_label,
        api_name="predict",
        api_visibility="public",
        concurrency_limit=DRAW_CONCURRENCY,
        concurrency_id="draw",
    )
    return DrawTab(pad=pad, panel=panel, picker=picker, truth=truth, add=add, score=score, map=atlas, page_model=live)
