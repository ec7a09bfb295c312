"""The Train tab: train the guide's MLP or the CNN with your settings, watch it learn, stop, download, load.

The run streams from `mnist_demo.runs.train_stream`; each epoch's model joins the visitor's models (one
entry per run, replaced epoch by epoch) and becomes the picked one in the Draw tab. Its maps, first
layers and confusion heatmap show in the "watch it learn" section (ui/learning.py).

    python -m pytest tests/test_app.py -k train
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import gradio as gr
import numpy as np

from mnist_demo import limits, zerogpu
from mnist_demo.checkpoint import Checkpoint, CheckpointError, load_checkpoint
from mnist_demo.data import MNISTNotFoundError, mnist_available
from mnist_demo.inference import prepare, with_article
from mnist_demo.learning import Watch
from mnist_demo.models import GUIDE_HIDDEN
from mnist_demo.render import gallery_tile
from mnist_demo.runs import ACCURACY_MARGIN, MODEL_NAMES, Results, RunError, RunUpdate, accuracy_range, train_stream
from mnist_demo.session import Run, Visitor
from mnist_demo.train import TrainConfig, pick_device
from ui.admission import TrainingAdmission
from ui.common import MNIST_MISSING, QUIET, TRAIN_CONCURRENCY, Models, Page, mnist_accuracy, tracked, weights_file
from ui.draw import DrawTab
from ui.drawings import DrawingsTab
from ui.learning import MISTAKES_LABEL, LearningHandlers, build_learning_section
from ui.runner import in_background, streamed
from ui.tempfiles import TempFiles, session_of

SIZE_LABEL = {"cnn": "Channels of the first conv layer", "mlp": "Hidden units (the guide used 28)"}
DEFAULT_SIZE = {"cnn": limits.APP_DEFAULTS.size, "mlp": GUIDE_HIDDEN}
NO_PROBE = ("none", -1)  # the probe picker's value when no drawing is watched


@zerogpu.gpu(lambda config, probe, mine=None: zerogpu.train_seconds(config))
def train_where_the_gpu_is(
    config: TrainConfig, probe: np.ndarray | None, mine: tuple[np.ndarray, np.ndarray] | None = None
) -> Iterator[RunUpdate]:
    """A training run on the best device here. On a ZeroGPU Space this runs in a forked worker with a GPU
    attached, so it changes nothing it is given: it yields updates whose models are on the CPU, for the
    handler to adopt, and raises only gr.Error (anything else reaches the visitor as a bare worker error)."""
    try:
        stream = train_stream(config, probe, pick_device(), mine)
        yield from zerogpu.within_request(zerogpu.train_seconds(config), stream)
    except MNISTNotFoundError:  # its text names the server's folders
        raise gr.Error(MNIST_MISSING) from None
    except RunError as err:  # a diverged loss, or a model whose outputs are not finite: not kept
        raise gr.Error(f"Stopped: {err}") from None


class TrainHandlers:
    """A visitor's training runs, and the models they load from files."""

    def __init__(self, models: Models, files: TempFiles | None = None, admission: TrainingAdmission | None = None):
        self.models = models
        self.files = files or TempFiles()  # the weights files offered for download, each session's own
        self.admission = admission or TrainingAdmission(lambda: 0)  # times the runs, for its estimate

    def train(
        self,
        model_name,
        size,
        epochs,
        batch_size,
        lr,
        optimizer,
        train_size,
        augment,
        seed,
        probe,
        visitor,
        watch=None,
        request: gr.Request | None = None,
    ):
        """Train a model with these settings, streaming the loss curve and status; it becomes the picked model.
        `watch` (a `learning.Watch`) turns the run's maps into pictures."""
        try:
            config = limits.app_config(
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
        mine = visitor.drawings.as_split() if len(visitor.drawings) else None
        mine = (mine.images.numpy(), mine.labels.numpy()) if mine else None
        watch = watch if watch is not None else Watch()
        watch.start(config.epochs, watched, config.crop, mine[1] if mine else None)
        visitor.run = run = Run()
        session = session_of(request)
        try:
            # In a thread of its own: this handler returns at least every tick, so a Stop ends it at once.
            stream = tracked(train_where_the_gpu_is(config, watched, mine))
            with self.admission.run(), in_background(stream) as updates:
                for update in updates:
                    if visitor.run is not run:  # stopped: this run adopts nothing more
                        return
                    if update is None:  # nothing new yet: a tick, for streamed() to drop
                        yield None
                        continue
                    picker = gr.skip()
                    if update.checkpoint is not None:
                        run.model_key = visitor.adopt(update.checkpoint, update.origin, replace=run.model_key)
                        run.epochs += 1
                        picker = self.models.picker(visitor, run.model_key)
                    results = (
                        [gr.skip()] * 3
                        if update.results is None
                        else self.finished(update.results, visitor, run, watch, session)
                    )
                    probed = gr.skip() if update.probe is None else update.probe
                    accuracy = gr.ScatterPlot(update.accuracies, y_lim=accuracy_range(update.accuracies))
                    frames = LearningHandlers.frame_outputs(watch, update)
                    yield update.losses, accuracy, update.status, picker, probed, *results, *frames
        except Exception:  # not GeneratorExit: a stopped run stays for Stop to report
            if visitor.run is run:
                visitor.run = None
            raise
        if visitor.run is run:
            visitor.run = None  # finished

    def finished(self, results: Results, visitor: Visitor, run: Run, watch: Watch, session: str) -> list:
        """The confusion heatmap, the gallery of mistakes and the weights file of a finished run."""
        tiles = [(gallery_tile(image), caption) for image, caption in results.mistakes]
        gallery = gr.update(value=tiles, label=MISTAKES_LABEL)  # a clicked heatmap cell had renamed it
        own = visitor.model(run.model_key)
        weights = weights_file(own.checkpoint, own.key, self.files, session)
        return [watch.finish(results), gallery, gr.update(value=weights, visible=True)]

    def stopped(self, visitor: Visitor, request: gr.Request | None = None):
        """After Stop: say what was kept, and offer the kept model for download."""
        run, visitor.run = visitor.run, None
        if run is None:
            return "Nothing is running: press Train to start a run.", gr.skip()
        own = visitor.model(run.model_key) if run.model_key else None
        if own is None:
            return "stopped · no epoch had finished, so you have no new model", gr.skip()
        epochs = f"{run.epochs} epoch{'s' * (run.epochs != 1)}"
        return (
            f"stopped · your model #{own.number} after {epochs} is kept and picked in the Draw tab",
            gr.update(value=weights_file(own.checkpoint, own.key, self.files, session_of(request)), visible=True),
        )

    def upload(self, path, visitor: Visitor):
        """A .safetensors file written by this app or its CLI joins the visitor's models (never unpickled)."""
        try:
            checkpoint = load_checkpoint(Path(path))
        except CheckpointError as err:
            raise gr.Error(f"Not loaded: {err}") from None
        name = MODEL_NAMES[checkpoint.name]
        origin = f"loaded from {Path(path).name}: {name}"
        key = visitor.adopt(Checkpoint(prepare(checkpoint.model), checkpoint.metadata), origin)
        own = visitor.model(key)
        status = f"loaded your {name} as your model #{own.number} (MNIST test {mnist_accuracy(checkpoint)})"
        return status, self.models.picker(visitor, key)

    @staticmethod
    def probes(visitor: Visitor):
        """The drawings the Train tab can watch being read while a model trains."""
        entries = visitor.drawings.entries
        return gr.Dropdown(
            choices=[NO_PROBE] + [(f"#{i + 1}: {with_article(e.label)}", i) for i, e in enumerate(entries)]
        )

    @staticmethod
    def size_slider(name: str):
        """The size slider for a model kind: its label, default and this app's maximum."""
        return gr.Slider(maximum=limits.MAX_SIZE[name], value=DEFAULT_SIZE[name], label=SIZE_LABEL[name])


def build_train_tab(page: Page, draw: DrawTab, drawings: DrawingsTab) -> None:
    """The Train tab and its events; a run's models go to the Draw tab's picker."""
    h, visitor = TrainHandlers(page.models, page.files, page.admission), page.visitor
    d = limits.APP_DEFAULTS
    with gr.Tab("Train"):
        if not mnist_available():
            gr.Markdown(  # no folder named: a public page shows none of the server's paths
                "**MNIST is not on this server.** Training will try to download it; if that fails it says so, "
                "and drawing still works."
            )
        with gr.Row():
            with gr.Column(scale=2):
                model_name = gr.Radio([("CNN", "cnn"), ("Guide MLP", "mlp")], value=d.model, label="Model")
                # The component's own maximum is the larger model's, so API callers can train a wide MLP
                # (the server refuses a CNN too wide with its own message); the page narrows it on load.
                size = gr.Slider(1, max(limits.MAX_SIZE.values()), value=d.size, step=1, label=SIZE_LABEL[d.model])
                epochs = gr.Slider(1, limits.MAX_EPOCHS, value=d.epochs, step=1, label="Epochs")
                batch_size = gr.Dropdown(limits.BATCH_SIZES, value=d.batch_size, label="Batch size")
                lr = gr.Number(d.lr, label="Learning rate (peak of a one-cycle schedule)", minimum=1e-5, maximum=1.0)
                optimizer = gr.Radio(
                    [("Adam", "adam"), ("SGD + momentum", "sgd")], value=d.optimizer, label="Optimizer"
                )
                train_size = gr.Slider(
                    limits.MIN_TRAIN_SIZE, limits.MAX_TRAIN_SIZE, value=d.train_size, step=100, label="Training images"
                )
                augment = gr.Checkbox(d.augment, label="Augment (random tilt, size and stroke weight)")
                seed = gr.Number(d.seed, label="Seed", precision=0, minimum=0)
                with gr.Row():
                    train = gr.Button("Train", variant="primary", elem_id="train")
                    stop = gr.Button("Stop", elem_id="stop")
            with gr.Column(scale=3):
                status = gr.Textbox("not started", label="Status", interactive=False, elem_id="status")
                losses = gr.LinePlot(x="step", y="loss", title="Training loss", height=260, elem_id="loss")
                with gr.Row():
                    accuracies = gr.ScatterPlot(
                        x="epoch",
                        y="accuracy",
                        title="Test accuracy (%) after each epoch",
                        y_lim=[100 - 10 * ACCURACY_MARGIN, 100],
                        y_axis_format=".1f",
                        height=200,
                        elem_id="accuracy",
                    )
                    with gr.Column():
                        probe = gr.Dropdown(
                            [NO_PROBE], value=-1, label="Watch one of your drawings", elem_id="probe-pick"
                        )
                        probed = gr.Label(num_top_classes=3, label="What the model in training reads", elem_id="probe")
                download = gr.File(label="Your model: safetensors, metadata inside", visible=False, elem_id="download")
                upload = gr.UploadButton("Load a model (.safetensors)", file_types=[".safetensors"], size="sm")
        learning = build_learning_section(page)
        mistakes = gr.Gallery(
            label=MISTAKES_LABEL,
            columns=8,
            height="auto",
            object_fit="contain",
            elem_id="mistakes",
        )

    settings = [model_name, size, epochs, batch_size, lr, optimizer, train_size, augment, seed, probe, visitor]
    # Each epoch's model (the picker, 4th output) goes to the page too, which reads the pad with it at once.
    live = draw.page_model
    run = train.click(
        # Stop answered at once, the run ended within a step (ui/runner.py)
        streamed(live.follows(h.train, picker_at=3)),
        [*settings, learning.watch],
        [
            losses,
            accuracies,
            status,
            draw.picker,
            probed,
            learning.heatmap,
            mistakes,
            download,
            *learning.outputs,
            live.component,
        ],
        api_name="train",
        show_progress="hidden",
        concurrency_limit=TRAIN_CONCURRENCY,
        concurrency_id="train",
    )
    # The message waits for the cancel: sent alongside it, a last progress update could overwrite it.
    stopped = stop.click(None, None, None, cancels=[run]).then(h.stopped, visitor, [status, download], **QUIET)
    stopped.then(live.reference, [draw.picker, visitor], live.component, **QUIET)  # the model kept, in the page
    learning.connect(mistakes)
    upload.upload(
        live.follows(h.upload, picker_at=1), [upload, visitor], [status, draw.picker, live.component], **QUIET
    )
    drawings.gallery.change(h.probes, visitor, probe, **QUIET)
    model_name.change(h.size_slider, model_name, size, **QUIET)
    page.demo.load(h.size_slider, model_name, size, **QUIET)
