"""mnist-demo: draw a digit, watch a network learn. This file is the Gradio UI only; the models, the
training loop and the drawing preprocessing live in `mnist_demo/`.

    python app.py          # then open http://127.0.0.1:7860 (a Hugging Face Space runs this file as is)
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import gradio as gr
import pandas as pd
import torch

from mnist_demo import live
from mnist_demo.checkpoint import Checkpoint
from mnist_demo.data import MNISTNotFoundError, mnist_available, mnist_root, raw_dir
from mnist_demo.guide import guide_markdown
from mnist_demo.inference import SharedModels, read_drawing, saliency
from mnist_demo.live import Visitor
from mnist_demo.render import enlarge, gallery_tile, heatmap, side_by_side

TITLE = "Draw a digit, watch a network learn"
DESCRIPTION = """Draw a digit (or a whole number) and see what a small neural network thinks, live, with all
ten probabilities, the 28x28 image it really receives and which pixels swayed it. Then train your own
network on MNIST in the **Train** tab and draw against it. The **Guide** tab shows the code, which
started life as a beginner's PyTorch guide that did not run."""

WEIGHTS = Path(__file__).parent / "weights"
CANVAS_SIZE = 280  # px; small canvases keep each stroke's round trip fast (800 px costs seconds a stroke)
BRUSH_RADIUS = 10  # px; a 20-px stroke on a 280-px canvas becomes MNIST's ~2-px stroke at 28x28
# One torch thread per request: on a 2-vCPU Space a training run then takes one core and everyone's
# strokes the other, instead of all of them fighting over both.
TORCH_THREADS = 1
DRAW_CONCURRENCY = 4  # predictions running at once, all visitors together (each takes ~1 ms of CPU)
TRAIN_CONCURRENCY = 1  # training runs at once; others wait in the queue, shown their position
QUEUE_SIZE = 64  # requests waiting beyond this are refused with a "queue full" message
YOURS = "yours"  # the model picker's value for the visitor's own model

# Selects the brush on load and after Clear: Gradio's Sketchpad starts (and clears) with no tool.
PICK_BRUSH = """() => { const pick = (n) => { const b = document.querySelector('#pad button[aria-label="Brush"]');
  if (b) b.click(); else if (n > 0) setTimeout(() => pick(n - 1), 200); }; setTimeout(() => pick(25), 300); }"""


SHIPPED = {"cnn": "CNN", "mlp": "MLP", "mlp-guide": "The guide's MLP, as written"}  # weights/<name>.safetensors


class Handlers:
    """The app's event handlers. `shared` holds the shipped models that every visitor reads."""

    def __init__(self, shared: SharedModels):
        self.shared = shared

    def choices(self, visitor: Visitor | None) -> list[tuple[str, str]]:
        """The model picker's (label, value) pairs, with each model's MNIST test accuracy."""
        choices = [(f"{SHIPPED[n]} ({self.shared.get(n).test_accuracy:.1%})", n) for n in self.shared.names()]
        if visitor is not None and visitor.model is not None:
            mine = visitor.model
            choices.append((f"Yours: {mine.name.upper()} ({mine.test_accuracy:.1%})", YOURS))
        return choices

    def pick(self, name: str, visitor: Visitor | None) -> Checkpoint:
        if name == YOURS:
            if visitor is None or visitor.model is None:
                raise gr.Error("You have no model of your own yet: train one in the Train tab.")
            return visitor.model
        return self.shared.get(name)

    def predict(self, value, model_name, visitor):
        """A drawing in, the digit (or number) with its probabilities out."""
        model = self.pick(model_name, visitor).model
        try:
            reading = read_drawing(model, value)
        except ValueError as err:
            raise gr.Error(str(err)) from None
        return None if reading is None else reading.label()

    def explain(self, value, model_name, visitor):
        """The verdict, what the network saw and why it decided, for the Draw tab."""
        try:
            model = self.pick(model_name, visitor).model
            reading = read_drawing(model, value)
        except (gr.Error, ValueError) as err:
            return f"**{err}**", None, None
        if reading is None:
            return "### Draw a digit", None, None
        seen = side_by_side([enlarge(d.sketch.image) for d in reading.digits])
        why = side_by_side([heatmap(d.sketch.image, saliency(model, d.sketch, d.digit)) for d in reading.digits])
        return f"### {reading.verdict()}", seen, why

    def train(self, model_name, size, epochs, batch_size, lr, optimizer, train_size, augment, seed, visitor):
        """Train a model with these settings, streaming the loss curve and status; it becomes yours."""
        visitor = visitor or Visitor()
        try:
            config = live.app_config(model=model_name, size=int(size), epochs=int(epochs), batch_size=int(batch_size),
                                     lr=float(lr), optimizer=optimizer, train_size=int(train_size),
                                     augment=bool(augment), seed=int(seed))
        except (ValueError, TypeError, OverflowError) as err:
            raise gr.Error(f"Cannot train with these settings: {err}") from None
        try:
            for update in live.train_live(config, visitor):
                picker = gr.update(choices=self.choices(visitor), value=YOURS) if update.model_changed else gr.skip()
                results = [gr.skip()] * 3 if update.results is None else self.finished(update.results, visitor)
                yield update.losses, update.accuracies, update.status, visitor, picker, *results
        except MNISTNotFoundError as err:
            raise gr.Error(str(err)) from None

    @staticmethod
    def finished(results: live.Results, visitor: Visitor) -> list:
        """The confusion matrix, the gallery of mistakes and the weights file of a finished run."""
        confusion = pd.DataFrame(results.confusion, columns=[f"said {d}" for d in range(10)])
        confusion.insert(0, "true", [str(d) for d in range(10)])
        gallery = [(gallery_tile(image), caption) for image, caption in results.mistakes]
        path = Path(tempfile.mkdtemp(prefix="mnist-demo-")) / \
            f"mnist-demo-{visitor.model.name}-{visitor.model.test_accuracy:.4f}.safetensors"
        path.write_bytes(results.weights)
        return [confusion, gallery, str(path)]

    @staticmethod
    def stopped(visitor):
        kept = "your model from the last finished epoch is kept" if visitor and visitor.model \
            else "no epoch had finished, so nothing was replaced"
        return f"stopped · {kept}"

    def restore(self, visitor):
        """Swap the visitor's model with the one it replaced."""
        if visitor is None or visitor.previous is None:
            raise gr.Error("There is no earlier model to go back to.")
        visitor.model, visitor.previous = visitor.previous, visitor.model
        return visitor, gr.update(choices=self.choices(visitor), value=YOURS)


def build_demo(shared: SharedModels | None = None) -> gr.Blocks:
    """The whole app; `shared` defaults to the shipped weights in weights/."""
    torch.set_num_threads(TORCH_THREADS)
    handlers = Handlers(shared or SharedModels.from_folder(WEIGHTS, tuple(SHIPPED)))

    with gr.Blocks(title=TITLE) as demo:
        visitor = gr.State(None)  # a Visitor once this browser tab trains; per tab, never shared
        gr.Markdown(f"# {TITLE}\n{DESCRIPTION}")

        with gr.Tab("Draw"):
            with gr.Row():
                with gr.Column(scale=5):
                    pad = gr.Sketchpad(canvas_size=(CANVAS_SIZE, CANVAS_SIZE), type="numpy", elem_id="pad",
                                       brush=gr.Brush(default_size=BRUSH_RADIUS, colors=["#000000"],
                                                      color_mode="fixed"),
                                       layers=False, transforms=(), label="Draw a digit, or a few",
                                       buttons=[])
                    picker = gr.Radio(handlers.choices(None), value="cnn", label="Model", elem_id="picker")
                with gr.Column(scale=4):
                    verdict = gr.Markdown("### Draw a digit", elem_id="verdict")
                    label = gr.Label(num_top_classes=10, label="Probabilities", elem_id="pred")
                with gr.Column(scale=4):
                    seen = gr.Image(label="What the network sees (28x28)", interactive=False, elem_id="seen",
                                    buttons=[], height=230)
                    why = gr.Image(label="Why: red pixels pushed towards the answer, blue away", interactive=False,
                                   elem_id="why", buttons=[], height=230)

            draw_inputs = [pad, picker, visitor]
            for trigger, visibility in ((pad.change, "public"), (picker.change, "private")):
                trigger(handlers.predict, draw_inputs, label, api_name="predict" if visibility == "public" else False,
                        api_visibility=visibility, show_progress="hidden", trigger_mode="always_last",
                        concurrency_limit=DRAW_CONCURRENCY, concurrency_id="draw").then(
                    handlers.explain, draw_inputs, [verdict, seen, why], api_visibility="private",
                    show_progress="hidden", concurrency_id="draw")
            pad.clear(None, None, None, js=PICK_BRUSH)

        with gr.Tab("Train"):
            if not mnist_available():
                gr.Markdown(f"**MNIST is not on this machine** (looked in `{raw_dir(mnist_root())}`). Training will "
                            "try to download it; if that fails you will see why, and drawing still works.")
            d = live.APP_DEFAULTS
            with gr.Row():
                with gr.Column(scale=2):
                    model_name = gr.Radio([("CNN", "cnn"), ("Guide MLP", "mlp")], value=d.model, label="Model")
                    size = gr.Slider(1, live.MAX_SIZE["mlp"], value=d.size, step=1,
                                     label="Size: hidden units (MLP) or first-layer channels (CNN)")
                    epochs = gr.Slider(1, live.MAX_EPOCHS, value=d.epochs, step=1, label="Epochs")
                    batch_size = gr.Dropdown([16, 32, 64, 128, 256, 512], value=d.batch_size, label="Batch size")
                    lr = gr.Number(d.lr, label="Learning rate (peak of a one-cycle schedule)", minimum=1e-5,
                                   maximum=1.0)
                    optimizer = gr.Radio([("Adam", "adam"), ("SGD + momentum", "sgd")], value=d.optimizer,
                                         label="Optimizer")
                    train_size = gr.Slider(live.MIN_TRAIN_SIZE, live.MAX_TRAIN_SIZE, value=d.train_size, step=100,
                                           label="Training images")
                    augment = gr.Checkbox(d.augment, label="Augment (random tilt, size and stroke weight)")
                    seed = gr.Number(d.seed, label="Seed", precision=0, minimum=0)
                    with gr.Row():
                        train_btn = gr.Button("Train", variant="primary", elem_id="train")
                        stop_btn = gr.Button("Stop", elem_id="stop")
                with gr.Column(scale=3):
                    status = gr.Textbox("not started", label="Status", interactive=False, elem_id="status")
                    losses = gr.LinePlot(x="step", y="loss", title="Training loss", height=260, elem_id="loss")
                    accuracies = gr.LinePlot(x="epoch", y="accuracy", title="Test accuracy (%)", height=200,
                                             elem_id="accuracy")
                    weights_file = gr.File(label="Your model: safetensors, metadata inside", elem_id="download")
                    restore_btn = gr.Button("Go back to my previous model", size="sm")
            with gr.Row():
                confusion = gr.Dataframe(label="Confusion matrix on the 10,000 test digits", elem_id="confusion")
                mistakes = gr.Gallery(label="Test digits it got wrong", columns=8, height=300, elem_id="mistakes")

            train_evt = train_btn.click(
                handlers.train,
                [model_name, size, epochs, batch_size, lr, optimizer, train_size, augment, seed, visitor],
                [losses, accuracies, status, visitor, picker, confusion, mistakes, weights_file],
                api_name="train", show_progress="hidden", concurrency_limit=TRAIN_CONCURRENCY,
                concurrency_id="train")
            stop_btn.click(handlers.stopped, visitor, status, cancels=[train_evt], api_visibility="private")
            restore_btn.click(handlers.restore, visitor, [visitor, picker], api_visibility="private")

        with gr.Tab("Guide"):
            gr.Markdown(guide_markdown())

        demo.load(None, None, None, js=PICK_BRUSH)
    demo.queue(max_size=QUEUE_SIZE)
    return demo


demo = build_demo()

if __name__ == "__main__":
    demo.launch(run_history=False)
