"""mnist-demo: draw a digit, watch a network learn. This file is the Gradio UI only; the models, the
training loop, the drawing preprocessing and the visitor's own drawings live in `mnist_demo/`.

    python app.py          # then open http://127.0.0.1:7860 (a Hugging Face Space runs this file as is)
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import os
import sys
import tempfile
from pathlib import Path

import gradio as gr
import pandas as pd
import torch

from mnist_demo import live
from mnist_demo.checkpoint import Checkpoint, CheckpointError, checkpoint_bytes, load_checkpoint
from mnist_demo.data import NUM_CLASSES, MNISTNotFoundError, mnist_available, mnist_root, raw_dir
from mnist_demo.finetune import FinetuneConfig, finetune
from mnist_demo.guide import guide_markdown
from mnist_demo.inference import MAX_DIGITS, SharedModels, prepare, read_drawing, saliency
from mnist_demo.live import Visitor
from mnist_demo.models import GUIDE_HIDDEN
from mnist_demo.render import enlarge, gallery_tile, heatmap, side_by_side
from mnist_demo.segment import split_digits
from mnist_demo.train import Progress
from ui.components import SafeSketchpad

TITLE = "Draw a digit, watch a network learn"
DESCRIPTION = """Draw a digit (or a whole number) and see what a small neural network thinks, live: all ten
probabilities, the 28x28 image it really receives and which pixels swayed it. Tell it when it is wrong and
**teach it your handwriting**, train your own network on MNIST in the **Train** tab, and read the code in
the **Guide** tab: it started life as a beginner's PyTorch guide that did not run."""

WEIGHTS = Path(__file__).parent / "weights"
# Drawings made with the mouse in this app (copies of some in tests/drawings): click one to start from it.
EXAMPLES = sorted((Path(__file__).parent / "examples").glob("*.png"))
SHIPPED = {"cnn": "CNN", "mlp": "MLP", "mlp-guide": "The guide's MLP, as written"}  # weights/<name>.safetensors
YOURS = "yours"  # the model picker's value for the visitor's own model
CANVAS_SIZE = 280  # px; small canvases keep each stroke's round trip fast (800 px costs seconds a stroke)
BRUSH_RADIUS = 10  # px; a 20-px stroke on a 280-px canvas becomes MNIST's ~2-px stroke at 28x28
# One torch thread per request: on a 2-vCPU Space a training run then takes one core and everyone's
# strokes the other, instead of all of them fighting over both.
TORCH_THREADS = 1
DRAW_CONCURRENCY = 4  # predictions running at once, all visitors together (each takes a few ms of CPU)
TRAIN_CONCURRENCY = 1  # training and fine-tuning runs at once; others wait in the queue, shown their place
QUEUE_SIZE = 64  # requests waiting beyond this are refused with a "queue full" message
MAX_UPLOAD = "4mb"  # uploaded weights and drawing archives; the shipped CNN is 0.4 MB
SESSIONS = 2000  # visitors whose state (model, drawings) is kept; the least recently used go first
# show_error: malformed API payloads get Gradio's own validation message instead of a generic failure.
WORKER_THREADS = 8  # Gradio's thread pool (default 40): 2 cores gain nothing from more, and each costs memory
LAUNCH = {
    "run_history": False,
    "max_file_size": MAX_UPLOAD,
    "state_session_capacity": SESSIONS,
    "show_error": True,
    "max_threads": WORKER_THREADS,
}
M_ARENA_MAX = -8  # glibc's mallopt() parameter number for the most heaps ("arenas") malloc may create
MALLOC_ARENAS = 2
ANALYTICS_EVERY = 100  # events between Gradio's summaries of its queue statistics (default: every event)

# Selects the brush on load and after Clear: Gradio's Sketchpad starts (and clears) with no tool.
PICK_BRUSH = """() => { const pick = (n) => { const b = document.querySelector('#pad button[aria-label="Brush"]');
  if (b) b.click(); else if (n > 0) setTimeout(() => pick(n - 1), 200); }; setTimeout(() => pick(25), 300); }"""
DIGITS = [str(d) for d in range(NUM_CLASSES)]
CONFUSION_CORNER = "true \\ said"
SIZE_LABEL = {"cnn": "Channels of the first conv layer", "mlp": "Hidden units (the guide used 28)"}
DEFAULT_SIZE = {"cnn": live.APP_DEFAULTS.size, "mlp": GUIDE_HIDDEN}


def sketch_example(path: Path) -> dict:
    """A PNG as a Sketchpad value: the picture as the background, so that strokes drawn next go on top."""
    return {"background": str(path), "layers": [], "composite": str(path)}


def tune_process() -> None:
    """Process-wide settings for a small server that runs torch in several threads at once."""
    torch.set_num_threads(TORCH_THREADS)
    # glibc gives threads that allocate at once heaps of their own and seldom returns their free memory:
    # with Gradio's worker threads the server grew by 100-200 MB per 20 s round of 20 drawing and 2
    # training clients, round after round; with two heaps it stays flat after the first (tests/test_load.py).
    with contextlib.suppress(OSError, AttributeError):  # not glibc (macOS, musl): nothing to tune
        ctypes.CDLL("libc.so.6").mallopt(M_ARENA_MAX, MALLOC_ARENAS)
    # After every event Gradio summarises up to 10,000 past events in a pandas table for its API page,
    # so each stroke got slower as the app aged; a summary every 100 events is plenty. Read by gr.Blocks().
    os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", str(ANALYTICS_EVERY))
    # Gradio tries `import matplotlib` twice per event to switch its backend; when it is not installed,
    # each attempt searches every sys.path entry. Marking it absent makes the failure immediate.
    if importlib.util.find_spec("matplotlib") is None:
        sys.modules.setdefault("matplotlib", None)


def weights_file(checkpoint: Checkpoint) -> str:
    """The checkpoint as a .safetensors file (metadata inside) in a fresh temporary folder, for download."""
    path = Path(tempfile.mkdtemp(prefix="mnist-demo-")) / f"mnist-demo-{checkpoint.name}.safetensors"
    path.write_bytes(checkpoint_bytes(checkpoint.model, **checkpoint.metadata)[0])
    return str(path)


def mnist_accuracy(checkpoint: Checkpoint) -> str:
    """A checkpoint's MNIST test accuracy as text; a fine-tuned one was measured on a sample."""
    if checkpoint.test_accuracy is not None:
        return f"{checkpoint.test_accuracy:.1%}"
    sample = checkpoint.metadata.get("finetuned", {}).get("mnist_after")
    return f"~{sample:.1%}" if sample is not None else "not measured"


class Handlers:
    """The app's event handlers. `shared` holds the shipped models that every visitor reads."""

    def __init__(self, shared: SharedModels):
        self.shared = shared

    def choices(self, visitor: Visitor | None) -> list[tuple[str, str]]:
        """The model picker's (label, value) pairs, with each model's MNIST test accuracy."""
        choices = [(f"{SHIPPED[n]} ({mnist_accuracy(self.shared.get(n))})", n) for n in self.shared.names()]
        if visitor is not None and visitor.model is not None:
            choices.append((f"Yours: {visitor.model.name.upper()} ({mnist_accuracy(visitor.model)})", YOURS))
        return choices

    def picker(self, visitor: Visitor) -> dict:
        """The picker with the visitor's model in it and selected (or the CNN when they have none)."""
        return gr.update(choices=self.choices(visitor), value=YOURS if visitor.model is not None else "cnn")

    def pick(self, name: str, visitor: Visitor | None) -> Checkpoint:
        if name == YOURS:
            if visitor is None or visitor.model is None:
                raise gr.Error("You have no model of your own yet: train one in the Train tab.")
            return visitor.model
        return self.shared.get(name)

    # Draw ------------------------------------------------------------------------------------------

    def read(self, value, model_name, visitor):
        """The stroke event: the label, and the reading itself, kept in session state for `show` to reuse."""
        model = self.pick(model_name, visitor).model
        try:
            reading = read_drawing(model, value)
        except ValueError as err:
            raise gr.Error(str(err)) from None
        return (None if reading is None else reading.label()), reading

    def predict(self, value, model_name, visitor):
        """A drawing in, the digit (or number) with its probabilities out."""
        return self.read(value, model_name, visitor)[0]

    def show(self, reading, model_name, visitor):
        """The verdict, what the network saw, why it decided, and the digit to offer as the truth."""
        if reading is None:
            return "### Draw a digit", None, None, None
        model = self.pick(model_name, visitor).model
        seen = side_by_side([enlarge(d.sketch.image) for d in reading.digits])
        why = side_by_side([heatmap(d.sketch.image, saliency(model, d.sketch, d.digit)) for d in reading.digits])
        guess = str(reading.digits[0].digit) if len(reading.digits) == 1 else None
        return f"### {reading.verdict()}", seen, why, guess

    def explain(self, value, model_name, visitor):
        """`show` for a drawing not read yet; what went wrong, in the verdict's place, when it cannot be read."""
        try:
            reading = self.read(value, model_name, visitor)[1]
        except gr.Error as err:
            return f"**{err}**", None, None, None
        return self.show(reading, model_name, visitor)

    # Your drawings -------------------------------------------------------------------------------

    def score(self, model_name, visitor, predictions: list[int] | None = None) -> str:
        """'Your accuracy' beside the model's MNIST accuracy; `predictions` when the drawings were read already."""
        checkpoint = self.pick(model_name, visitor)
        mine = visitor.drawings
        if not len(mine):
            return f"No drawings of yours yet. This model: MNIST test {mnist_accuracy(checkpoint)}."
        predictions = mine.predictions(checkpoint.model) if predictions is None else predictions
        right = sum(p == e.label for p, e in zip(predictions, mine.entries))
        return (
            f"**Your accuracy: {right} of your {len(mine)} drawings ({right / len(mine):.0%})** · "
            f"MNIST test: {mnist_accuracy(checkpoint)}"
        )

    def collection(self, model_name, visitor):
        """Gallery, score (for both tabs) and the Train tab's probe choices, after the drawings or model change."""
        predictions = visitor.drawings.predictions(self.pick(model_name, visitor).model)  # read once, for both
        probes = [("none", -1)] + [(f"#{i + 1}: a {e.label}", i) for i, e in enumerate(visitor.drawings.entries)]
        score = self.score(model_name, visitor, predictions)
        return visitor.drawings.gallery(predictions=predictions), score, score, gr.update(choices=probes)

    def add(self, value, truth, model_name, visitor):
        """Keep the drawing on the canvas, labelled with the digit the visitor says it is."""
        self.pick(model_name, visitor)  # the model that will read it must exist (gr.Error otherwise)
        try:
            sketches = split_digits(value, limit=MAX_DIGITS)  # no need to run the model to keep a drawing
            if not sketches:
                raise ValueError("draw a digit first")
            if len(sketches) > 1:
                raise ValueError(f"the canvas holds {len(sketches)} digits: add one digit at a time")
            if truth is None:
                raise ValueError("choose the digit you drew")
            visitor.drawings.add(value, truth, sketch=sketches[0])
        except ValueError as err:
            raise gr.Error(f"Not added: {err}.") from None
        return self.collection(model_name, visitor)

    def remove(self, selected, model_name, visitor):
        if selected is None:
            raise gr.Error("Click a drawing in the gallery first, then remove it.")
        try:
            visitor.drawings.remove(int(selected))
        except IndexError as err:
            raise gr.Error(str(err)) from None
        return *self.collection(model_name, visitor), None  # nothing selected any more

    @staticmethod
    def selected(event: gr.SelectData):
        return event.index

    @staticmethod
    def export(visitor):
        if not len(visitor.drawings):
            raise gr.Error("There are no drawings to export yet.")
        path = Path(tempfile.mkdtemp(prefix="mnist-demo-")) / "my-digits.zip"
        path.write_bytes(visitor.drawings.export_zip())
        return str(path)

    def import_set(self, path, model_name, visitor):
        try:
            report = visitor.drawings.import_zip(path)
        except ValueError as err:
            raise gr.Error(f"Could not import: {err}") from None
        gr.Info(f"Import: {report.summary()}")
        return self.collection(model_name, visitor)

    def finetune(self, model_name, visitor):
        """Fine-tune a copy of the chosen model on the visitor's drawings; it becomes theirs."""
        source = self.pick(model_name, visitor)
        losses = []
        try:
            with live.RUNS.track():
                yield "measuring the model on your drawings and on MNIST...", None, gr.skip()
                for event in finetune(source, visitor.drawings, FinetuneConfig()):
                    if isinstance(event, Progress):
                        losses.append((event.step, event.loss))
                        status = f"fine-tuning: step {event.step}/{event.total_steps} · loss {event.loss:.3f}"
                        yield status, pd.DataFrame(losses, columns=["step", "loss"]), gr.skip()
                    else:
                        visitor.previous, visitor.model = visitor.model, event.checkpoint
                        yield f"done: {event.summary()}", gr.skip(), self.picker(visitor)
        except (ValueError, MNISTNotFoundError) as err:
            raise gr.Error(f"Cannot fine-tune: {err}") from None

    # Train -------------------------------------------------------------------------------------------

    def train(self, model_name, size, epochs, batch_size, lr, optimizer, train_size, augment, seed, probe, visitor):
        """Train a model with these settings, streaming the loss curve and status; it becomes yours."""
        try:
            config = live.app_config(
                model=model_name,
                size=int(size),
                epochs=int(epochs),
                batch_size=int(batch_size),
                lr=float(lr),
                optimizer=optimizer,
                train_size=int(train_size),
                augment=bool(augment),
                seed=int(seed),
            )
        except (ValueError, TypeError, OverflowError) as err:
            raise gr.Error(f"Cannot train with these settings: {err}") from None
        entries = visitor.drawings.entries
        watched = entries[int(probe)].image if probe is not None and 0 <= int(probe) < len(entries) else None
        try:
            for update in live.train_live(config, visitor, watched):
                picker = self.picker(visitor) if update.model_changed else gr.skip()
                results = [gr.skip()] * 3 if update.results is None else self.finished(update.results, visitor)
                probed = gr.skip() if update.probe is None else update.probe
                yield update.losses, update.accuracies, update.status, picker, probed, *results
        except MNISTNotFoundError as err:
            raise gr.Error(str(err)) from None

    @staticmethod
    def finished(results: live.Results, visitor: Visitor) -> list:
        """The confusion matrix, the gallery of mistakes and the weights file of a finished run."""
        confusion = pd.DataFrame(results.confusion, columns=DIGITS)
        confusion.insert(0, CONFUSION_CORNER, DIGITS)
        gallery = [(gallery_tile(image), caption) for image, caption in results.mistakes]
        return [confusion, gallery, weights_file(visitor.model)]

    @staticmethod
    def stopped(visitor):
        """After Stop: say what was kept, and offer the kept model for download."""
        if visitor.model is None:
            return "stopped · no epoch had finished, so nothing was replaced", None
        return "stopped · your model from the last finished epoch is kept", weights_file(visitor.model)

    def upload(self, path, visitor):
        """A .safetensors file written by this app or its CLI becomes the visitor's model (never unpickled)."""
        try:
            checkpoint = load_checkpoint(Path(path))
        except CheckpointError as err:
            raise gr.Error(f"Not loaded: {err}") from None
        visitor.previous, visitor.model = visitor.model, Checkpoint(prepare(checkpoint.model), checkpoint.metadata)
        return f"loaded your {checkpoint.name.upper()} (MNIST test {mnist_accuracy(checkpoint)})", self.picker(visitor)

    def restore(self, visitor):
        """Swap the visitor's model with the one it replaced."""
        if visitor.previous is None and visitor.model is None:
            raise gr.Error("There is no earlier model to go back to.")
        visitor.model, visitor.previous = visitor.previous, visitor.model
        return self.picker(visitor)


def build_demo(shared: SharedModels | None = None) -> gr.Blocks:
    """The whole app; `shared` defaults to the shipped weights in weights/."""
    tune_process()
    h = Handlers(shared or SharedModels.from_folder(WEIGHTS, tuple(SHIPPED)))
    quiet = {"show_progress": "hidden", "api_visibility": "private"}

    with gr.Blocks(title=TITLE) as demo:
        visitor = gr.State(Visitor())  # copied for each browser tab: their model and drawings, nobody else's
        reading = gr.State(None)  # the last stroke's Reading, for the explanation that follows it
        gr.Markdown(f"# {TITLE}\n{DESCRIPTION}")

        with gr.Tab("Draw"):
            with gr.Row():
                with gr.Column(scale=5):
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
                    picker = gr.Radio(h.choices(None), value="cnn", label="Model", elem_id="picker")
                    examples = gr.Examples(
                        [[sketch_example(path)] for path in EXAMPLES],
                        inputs=[pad],
                        elem_id="examples",
                        label="Or start from a drawing (then draw on it)",
                        examples_per_page=len(EXAMPLES),
                    )
                with gr.Column(scale=4):
                    verdict = gr.Markdown("### Draw a digit", elem_id="verdict")
                    label = gr.Label(num_top_classes=NUM_CLASSES, label="Probabilities", elem_id="pred")
                    with gr.Row():
                        truth = gr.Dropdown(
                            DIGITS, value=None, label="I drew a", elem_id="truth", scale=1, min_width=90
                        )
                        add_btn = gr.Button("Add to my drawings", elem_id="add", scale=2, size="md")
                    score = gr.Markdown(
                        "Wrong? Choose the digit you drew and add it to your drawings: then "
                        "teach the model your handwriting in the next tab.",
                        elem_id="score",
                    )
                with gr.Column(scale=4):
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

        with gr.Tab("Your drawings"):
            gr.Markdown(
                "Each drawing you add in the Draw tab lands here with the digit you said it is. See how "
                "the chosen model reads them, then fine-tune it on them: a few seconds of training on "
                "your drawings mixed with MNIST digits, so it learns your hand without forgetting theirs."
            )
            score_mine = gr.Markdown(elem_id="score-mine")
            mine = gr.Gallery(
                label="Your drawings (what you said · what the model reads)",
                columns=10,
                height=280,
                allow_preview=False,
                fit_columns=False,
                object_fit="contain",
                elem_id="mine",
            )
            selected = gr.State(None)  # the gallery item last clicked
            with gr.Row():
                remove_btn = gr.Button("Remove the selected drawing", size="sm")
                export_btn = gr.Button("Export my drawings (.zip)", size="sm")
                import_btn = gr.UploadButton("Import drawings (.zip)", file_types=[".zip"], size="sm")
            export_file = gr.File(label="Your drawings: folders 0-9 of PNGs", height=90, elem_id="export")
            with gr.Row():
                finetune_btn = gr.Button(
                    "Fine-tune the chosen model on my drawings", variant="primary", elem_id="finetune"
                )
                restore_mine = gr.Button("Go back to my previous model", size="sm")
            ft_status = gr.Textbox("", label="Fine-tuning", interactive=False, elem_id="ft-status")
            ft_losses = gr.LinePlot(x="step", y="loss", title="Fine-tuning loss", height=200)

        with gr.Tab("Train"):
            if not mnist_available():
                gr.Markdown(
                    f"**MNIST is not on this machine** (looked in `{raw_dir(mnist_root())}`). Training will "
                    "try to download it; if that fails it says why, and drawing still works."
                )
            d = live.APP_DEFAULTS
            with gr.Row():
                with gr.Column(scale=2):
                    model_name = gr.Radio([("CNN", "cnn"), ("Guide MLP", "mlp")], value=d.model, label="Model")
                    # The component's own maximum is the larger model's, so API callers can train a wide MLP
                    # (the server refuses a CNN too wide with its own message); the page narrows it on load.
                    size = gr.Slider(1, max(live.MAX_SIZE.values()), value=d.size, step=1, label=SIZE_LABEL[d.model])
                    epochs = gr.Slider(1, live.MAX_EPOCHS, value=d.epochs, step=1, label="Epochs")
                    batch_size = gr.Dropdown([16, 32, 64, 128, 256, 512], value=d.batch_size, label="Batch size")
                    lr = gr.Number(
                        d.lr, label="Learning rate (peak of a one-cycle schedule)", minimum=1e-5, maximum=1.0
                    )
                    optimizer = gr.Radio(
                        [("Adam", "adam"), ("SGD + momentum", "sgd")], value=d.optimizer, label="Optimizer"
                    )
                    train_size = gr.Slider(
                        live.MIN_TRAIN_SIZE, live.MAX_TRAIN_SIZE, value=d.train_size, step=100, label="Training images"
                    )
                    augment = gr.Checkbox(d.augment, label="Augment (random tilt, size and stroke weight)")
                    seed = gr.Number(d.seed, label="Seed", precision=0, minimum=0)
                    with gr.Row():
                        train_btn = gr.Button("Train", variant="primary", elem_id="train")
                        stop_btn = gr.Button("Stop", elem_id="stop")
                with gr.Column(scale=3):
                    status = gr.Textbox("not started", label="Status", interactive=False, elem_id="status")
                    losses = gr.LinePlot(x="step", y="loss", title="Training loss", height=260, elem_id="loss")
                    with gr.Row():
                        accuracies = gr.LinePlot(
                            x="epoch", y="accuracy", title="Test accuracy (%)", height=200, elem_id="accuracy"
                        )
                        with gr.Column():
                            probe = gr.Dropdown(
                                [("none", -1)], value=-1, label="Watch one of your drawings", elem_id="probe-pick"
                            )
                            probed = gr.Label(
                                num_top_classes=3, label="What the model in training reads", elem_id="probe"
                            )
                    with gr.Row():
                        download = gr.File(
                            label="Your model: safetensors, metadata inside", height=90, elem_id="download"
                        )
                        upload_btn = gr.UploadButton(
                            "Load a model (.safetensors)", file_types=[".safetensors"], size="sm"
                        )
                    restore_btn = gr.Button("Go back to my previous model", size="sm")
            confusion = gr.Dataframe(
                pd.DataFrame(columns=[CONFUSION_CORNER, *DIGITS]),
                label="Confusion matrix on the 10,000 test digits (row: true digit, column: what the model said)",
                elem_id="confusion",
            )
            mistakes = gr.Gallery(
                label="Test digits it got wrong (true → said)",
                columns=12,
                height=250,
                fit_columns=False,
                object_fit="contain",
                elem_id="mistakes",
            )

        with gr.Tab("Guide"):
            gr.Markdown(guide_markdown())

        mine_out = [mine, score, score_mine, probe]  # what changes when the drawings or the model change

        # Draw: every stroke (and a change of model) reads the drawing, then shows that same reading;
        # bursts collapse to the last. When the drawing cannot be read, the reason takes the verdict's place.
        draw_in, explained = [pad, picker, visitor], [verdict, seen, why, truth]
        # A clicked example fills the pad without a change event of its own, so it is read as one.
        for trigger, api in ((pad.change, "predict"), (picker.change, False), (examples.load_input_event.then, False)):
            read = trigger(
                h.read,
                draw_in,
                [label, reading],
                api_name=api,
                api_visibility="public" if api else "private",
                show_progress="hidden",
                trigger_mode="always_last",
                concurrency_limit=DRAW_CONCURRENCY,
                concurrency_id="draw",
            )
            read.success(h.show, [reading, picker, visitor], explained, concurrency_id="draw", **quiet)
            read.failure(h.explain, draw_in, explained, concurrency_id="draw", **quiet)
        picker.change(h.collection, [picker, visitor], mine_out, **quiet)
        pad.clear(None, None, None, js=PICK_BRUSH)

        # Your drawings.
        add_btn.click(h.add, [pad, truth, picker, visitor], mine_out, **quiet)
        mine.select(h.selected, None, selected, **quiet)
        remove_btn.click(h.remove, [selected, picker, visitor], [*mine_out, selected], **quiet)
        export_btn.click(h.export, visitor, export_file, **quiet)
        import_btn.upload(h.import_set, [import_btn, picker, visitor], mine_out, **quiet)
        finetune_btn.click(
            h.finetune,
            [picker, visitor],
            [ft_status, ft_losses, picker],
            concurrency_limit=TRAIN_CONCURRENCY,
            concurrency_id="train",
            **quiet,
        ).then(h.collection, [picker, visitor], mine_out, **quiet)
        for restore in (restore_btn, restore_mine):
            restore.click(h.restore, visitor, picker, **quiet)

        # Train.
        train_evt = train_btn.click(
            h.train,
            [model_name, size, epochs, batch_size, lr, optimizer, train_size, augment, seed, probe, visitor],
            [losses, accuracies, status, picker, probed, confusion, mistakes, download],
            api_name="train",
            show_progress="hidden",
            concurrency_limit=TRAIN_CONCURRENCY,
            concurrency_id="train",
        )
        # The message waits for the cancel: sent alongside it, a last progress update could overwrite it.
        stop_btn.click(None, None, None, cancels=[train_evt]).then(h.stopped, visitor, [status, download], **quiet)
        upload_btn.upload(h.upload, [upload_btn, visitor], [status, picker], **quiet)
        model_name.change(
            lambda name: gr.update(maximum=live.MAX_SIZE[name], value=DEFAULT_SIZE[name], label=SIZE_LABEL[name]),
            model_name,
            size,
            **quiet,
        )
        demo.load(lambda: gr.update(maximum=live.MAX_SIZE[live.APP_DEFAULTS.model]), None, size, **quiet)

        demo.load(None, None, None, js=PICK_BRUSH)
    demo.queue(max_size=QUEUE_SIZE)
    return demo


demo = build_demo()

if __name__ == "__main__":
    demo.launch(**LAUNCH)
