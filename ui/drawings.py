"""The Your drawings tab: the visitor's labelled drawings, the picked model's accuracy on them, fine-tuning.

Drawings are added from the Draw tab (its "I drew a" and Add); this tab shows them, removes, exports
and imports them, and fine-tunes the picked model on them (the run streams from `mnist_demo.runs`).

    python -m pytest tests/test_app_drawings.py
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import gradio as gr

from mnist_demo import zerogpu
from mnist_demo.checkpoint import Checkpoint, model_spec
from mnist_demo.data import MNISTNotFoundError
from mnist_demo.finetune import config_for
from mnist_demo.inference import MAX_DIGITS, with_article
from mnist_demo.personal import PersonalSet
from mnist_demo.runs import NO_DRAWINGS, RunUpdate, finetune_stream
from mnist_demo.session import Visitor
from mnist_demo.strokes import split_strokes
from mnist_demo.train import pick_device
from ui.admission import TrainingAdmission
from ui.common import MNIST_MISSING, QUIET, TRAIN_CONCURRENCY, Models, Page, mnist_accuracy, tracked
from ui.draw import DrawTab
from ui.pad import parse_pad_value
from ui.runner import in_background, streamed
from ui.tempfiles import TempFiles, session_of

INTRO = (
    "Each drawing you add in the Draw tab lands here with the digit you said it is. See how the chosen model "
    "reads them, then fine-tune it on them: a few seconds of training on your drawings mixed with MNIST digits, "
    "so it learns your hand without forgetting theirs."
)


@dataclass(frozen=True)
class DrawingsTab:
    """The components other tabs listen to."""

    gallery: gr.Gallery  # changes whenever the drawings (or the model reading them) change


def finetune_seconds(source: Checkpoint) -> float:
    """The GPU time a fine-tuning run of `source` asks for."""
    return zerogpu.finetune_seconds(config_for(source), *model_spec(source.model))


@zerogpu.gpu(lambda source, drawings, name: finetune_seconds(source))
def finetune_where_the_gpu_is(source: Checkpoint, drawings: PersonalSet, name: str) -> Iterator[RunUpdate]:
    """A fine-tuning run on the best device here; on ZeroGPU in a forked worker (see ui/train.py's twin)."""
    config, seconds = config_for(source), finetune_seconds(source)
    try:
        yield from zerogpu.within_request(seconds, finetune_stream(source, drawings, name, config, pick_device()))
    except MNISTNotFoundError:  # its text names the server's folders
        raise gr.Error(f"Cannot fine-tune: {MNIST_MISSING}") from None
    except ValueError as err:  # no drawings, or runs.RunError: a model that stopped working is not kept
        raise gr.Error(f"Cannot fine-tune: {err}") from None


class DrawingsHandlers:
    """The visitor's set of drawings, read by the picked model."""

    def __init__(self, models: Models, files: TempFiles | None = None, admission: TrainingAdmission | None = None):
        self.models = models
        self.files = files or TempFiles()  # the archives offered for download, each session's own
        self.admission = admission or TrainingAdmission(lambda: 0)  # times the runs, for its estimate

    def score(self, key: str, visitor: Visitor, predictions: list[int] | None = None) -> str:
        """'Your accuracy' beside the model's MNIST accuracy; `predictions` when the drawings were read already."""
        checkpoint = self.models.pick(key, visitor)
        mine = visitor.drawings
        if not len(mine):
            return f"No drawings of yours yet. This model: MNIST test {mnist_accuracy(checkpoint)}."
        predictions = mine.predictions(checkpoint.model) if predictions is None else predictions
        right = sum(p == e.label for p, e in zip(predictions, mine.entries))
        return (
            f"**Your accuracy: {right} of your {len(mine)} drawings ({right / len(mine):.0%})** · "
            f"MNIST test: {mnist_accuracy(checkpoint)}"
        )

    def collection(self, key: str, visitor: Visitor):
        """Gallery and score (shown in both tabs), after the drawings or the model change."""
        predictions = visitor.drawings.predictions(self.models.pick(key, visitor).model)  # read once, for both
        score = self.score(key, visitor, predictions)
        return visitor.drawings.gallery(predictions=predictions), score, score

    def add(self, value, truth, key: str, visitor: Visitor):
        """Keep the drawing on the pad (its strokes), labelled with the digit the visitor says it is."""
        self.models.pick(key, visitor)  # the model that will read it must exist (gr.Error otherwise)
        try:
            strokes = parse_pad_value(value)
            sketches = split_strokes(strokes, limit=MAX_DIGITS) if strokes else []  # no model needed to keep it
            if not sketches:
                raise ValueError("draw a digit first")
            if len(sketches) > 1:
                raise ValueError(f"the pad holds {len(sketches)} digits: add one digit at a time")
            if truth is None:
                raise ValueError("choose the digit you drew")
            entry = visitor.drawings.add_strokes(strokes, truth, sketch=sketches[0])
        except ValueError as err:
            raise gr.Error(f"Not added: {err}.") from None
        count = len(visitor.drawings)
        gr.Info(f"Added {with_article(entry.label)} to your drawings ({count} now).")
        return self.collection(key, visitor)

    def remove(self, selected, key: str, visitor: Visitor):
        if selected is None:
            raise gr.Error("Click a drawing in the gallery first, then remove it.")
        try:
            visitor.drawings.remove(int(selected))
        except IndexError as err:
            raise gr.Error(str(err)) from None
        return *self.collection(key, visitor), None  # nothing selected any more

    @staticmethod
    def selected(event: gr.SelectData):
        return event.index

    def export(self, visitor: Visitor, request: gr.Request | None = None):
        if not len(visitor.drawings):
            raise gr.Error("There are no drawings to export yet.")
        path = self.files.write(session_of(request), "my-digits.zip", visitor.drawings.export_zip())
        return gr.update(value=str(path), visible=True)

    def import_set(self, path, key: str, visitor: Visitor):
        try:
            report = visitor.drawings.import_zip(path)
        except ValueError as err:
            raise gr.Error(f"Could not import: {err}") from None
        gr.Info(f"Import: {report.summary()}")
        return self.collection(key, visitor)

    def finetune(self, key: str, visitor: Visitor):
        """Fine-tune a copy of the picked model on the visitor's drawings; the result joins their models."""
        source = self.models.pick(key, visitor)
        if not len(visitor.drawings):  # said at once, before any status (and before asking for a GPU)
            raise gr.Error(f"Cannot fine-tune: {NO_DRAWINGS}")
        run = tracked(finetune_where_the_gpu_is(source, visitor.drawings, self.models.name(key, visitor)))
        with self.admission.run(), in_background(run) as updates:  # see TrainHandlers.train
            for update in updates:
                if update is None:  # nothing new yet: a tick, for streamed() to drop
                    yield None
                    continue
                picker = gr.skip()
                if update.checkpoint is not None:
                    picker = self.models.picker(visitor, visitor.adopt(update.checkpoint, update.origin))
                yield update.status, update.losses, picker


def build_drawings_tab(page: Page, draw: DrawTab) -> DrawingsTab:
    """The Your drawings tab, and the Draw tab's Add button and model picker, which change what it shows."""
    h, visitor = DrawingsHandlers(page.models, page.files, page.admission), page.visitor
    with gr.Tab("Your drawings"):
        gr.Markdown(INTRO)
        score = gr.Markdown(elem_id="score-mine")
        gallery = gr.Gallery(
            label="Your drawings (what you said · what the model reads)",
            columns=8,
            height="auto",
            allow_preview=False,
            object_fit="contain",
            elem_id="mine",
        )
        selected = gr.State(None)  # the gallery item last clicked
        with gr.Row():
            remove = gr.Button("Remove the selected drawing", size="sm")
            export = gr.Button("Export my drawings (.zip)", size="sm")
            upload = gr.UploadButton("Import drawings (.zip)", file_types=[".zip"], size="sm")
        exported = gr.File(
            label="Your drawings: folders 0-9 of PNGs, and their strokes", visible=False, elem_id="export"
        )
        finetune = gr.Button("Fine-tune the chosen model on my drawings", variant="primary", elem_id="finetune")
        status = gr.Textbox("", label="Fine-tuning", interactive=False, elem_id="ft-status")
        losses = gr.LinePlot(x="step", y="loss", title="Fine-tuning loss", height=200)

    shown = [gallery, draw.score, score]  # what changes when the drawings or the model change
    draw.add.click(h.add, [draw.pad, draw.truth, draw.picker, visitor], shown, **QUIET)
    draw.picker.change(h.collection, [draw.picker, visitor], shown, **QUIET)
    gallery.select(h.selected, None, selected, **QUIET)
    remove.click(h.remove, [selected, draw.picker, visitor], [*shown, selected], **QUIET)
    export.click(h.export, visitor, exported, **QUIET)
    upload.upload(h.import_set, [upload, draw.picker, visitor], shown, **QUIET)
    finetune.click(
        streamed(draw.page_model.follows(h.finetune, picker_at=2)),  # the fine-tuned model goes to the page too
        [draw.picker, visitor],
        [status, losses, draw.picker, draw.page_model.component],
        concurrency_limit=TRAIN_CONCURRENCY,
        concurrency_id="train",
        **QUIET,
    )  # the new model becomes the picked one, whose change event refreshes what is shown
    return DrawingsTab(gallery=gallery)
