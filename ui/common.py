"""What every tab shares: the models a visitor can pick (shipped and their own), words about a model, event settings.

python -m pytest tests/test_app.py -k picker
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import gradio as gr

from mnist_demo.checkpoint import Checkpoint, checkpoint_bytes
from mnist_demo.data import NUM_CLASSES
from mnist_demo.inference import SharedModels
from mnist_demo.runs import RUNS
from mnist_demo.session import Visitor, is_own
from ui.admission import TrainingAdmission
from ui.page_model import PageModels
from ui.tempfiles import TempFiles

T = TypeVar("T")
WEIGHTS = Path(__file__).resolve().parents[1] / "weights"
SHIPPED = {"cnn": "CNN", "mlp": "MLP", "mlp-guide": "The guide's MLP, as written"}  # weights/<name>.safetensors
IN_A_SENTENCE = {"cnn": "the CNN", "mlp": "the MLP", "mlp-guide": "the guide's MLP"}
DEFAULT_MODEL = "cnn"
DIGITS = [str(d) for d in range(NUM_CLASSES)]
DRAW_CONCURRENCY = 4  # predictions running at once, all visitors together (each takes a few ms of CPU)
TRAIN_CONCURRENCY = 1  # training and fine-tuning runs at once; others wait in the queue, shown their place
# Events that only refresh the page: no spinner over their outputs, and not part of the public API.
QUIET = {"show_progress": "hidden", "api_visibility": "private"}
# What a visitor is told when MNIST is missing: the exception's own text names the server's folders.
MNIST_MISSING = "MNIST is not on this server and could not be downloaded: training needs it; drawing still works."


def tracked(updates: Iterator[T]) -> Iterator[T]:
    """A training or fine-tuning run's updates, counted in `runs.RUNS` while it goes (here, in the serving
    process, even when the run itself happens in a ZeroGPU worker)."""
    with RUNS.track():  # until the run ends, is stopped, or its visitor goes away
        yield from updates


def mnist_accuracy(checkpoint: Checkpoint) -> str:
    """A checkpoint's MNIST test accuracy as text; a fine-tuned one was measured on a sample."""
    if checkpoint.test_accuracy is not None:
        return f"{checkpoint.test_accuracy:.1%}"
    sample = checkpoint.metadata.get("finetuned", {}).get("mnist_after")
    return f"~{sample:.1%}" if sample is not None else "not measured"


def weights_file(checkpoint: Checkpoint, name: str, files: TempFiles, session: str) -> str:
    """The checkpoint as a .safetensors file (metadata inside) among `session`'s files, for download."""
    data = checkpoint_bytes(checkpoint.model, **checkpoint.metadata)[0]
    return str(files.write(session, f"mnist-demo-{name}.safetensors", data))


@dataclass(frozen=True)
class Page:
    """What every tab's builder needs: the app being built, the models, and the visitor's state."""

    demo: gr.Blocks
    models: Models
    visitor: gr.State  # a `session.Visitor` per browser tab
    files: TempFiles = field(default_factory=TempFiles)  # files offered for download, owned by sessions
    admission: TrainingAdmission = field(default_factory=lambda: TrainingAdmission(lambda: 0))  # training's line
    # The models the page may fetch to read in the page, one registry per app (ui/page_model.py).
    page_models: PageModels = field(default_factory=PageModels)


class Models:
    """The shipped models, read by every visitor, and each visitor's own, behind one picker.

    The picker's values are the shipped names and the visitor's own keys (`yours-1`, ...; `yours` is
    their newest, for scripts). It accepts any value and this class says clearly what is unknown, so a
    model that left the visitor's history can never leave the page in an error state.
    """

    def __init__(self, shared: SharedModels):
        self.shared = shared

    @classmethod
    def shipped(cls) -> Models:
        return cls(SharedModels.from_folder(WEIGHTS, tuple(SHIPPED)))

    def choices(self, visitor: Visitor | None) -> list[tuple[str, str]]:
        """The picker's (label, value) pairs: shipped models, then the visitor's, each with its MNIST accuracy."""
        names = self.shared.names()
        choices = [(f"{SHIPPED[n]} ({mnist_accuracy(self.shared.get(n))})", n) for n in names]
        for own in visitor.models if visitor is not None else []:
            text = f"Yours #{own.number}: {own.origin} ({mnist_accuracy(own.checkpoint)})"
            choices.append((text, own.key))
        return choices

    def picker(self, visitor: Visitor, value: str | None = None) -> gr.Dropdown:
        """The picker with the visitor's models in it, showing `value` (default: their newest, else the CNN)."""
        if value is None:
            value = visitor.latest.key if visitor.latest is not None else DEFAULT_MODEL
        return gr.Dropdown(choices=self.choices(visitor), value=value)

    def pick(self, key: str, visitor: Visitor | None) -> Checkpoint:
        """The checkpoint a picker value names; gr.Error with what to do when there is none."""
        if is_own(key):
            own = visitor.model(key) if visitor is not None else None
            if own is None:
                raise gr.Error("You have no model of your own by that name: train one in the Train tab.")
            return own.checkpoint
        try:
            return self.shared.get(key)
        except KeyError:
            raise gr.Error(f"There is no model {key!r}: pick one of {', '.join(self.shared.names())}.") from None

    def name(self, key: str, visitor: Visitor | None) -> str:
        """How messages name the model a picker value stands for: 'the CNN', 'your model #2'."""
        own = visitor.model(key) if visitor is not None and is_own(key) else None
        if own is not None:
            return f"your model #{own.number}"
        return IN_A_SENTENCE.get(key, "your model")
