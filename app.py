"""mnist-demo: draw a digit, watch a network learn. This file assembles the Gradio UI, one builder per tab
(`ui/`); the models, the training loop, the drawing preprocessing and the visitor's session live in
`mnist_demo/`.

    python app.py          # then open http://127.0.0.1:7860 (a Hugging Face Space runs this file as is)
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import os
import sys

import gradio as gr
import torch

from mnist_demo.session import Visitor
from ui.admission import TrainingAdmission, waiting_in
from ui.common import Models, Page
from ui.draw import build_draw_tab
from ui.drawings import build_drawings_tab
from ui.guard import guard
from ui.guide import build_guide_tab
from ui.sessions import MAX_SESSIONS, SessionKeeper, merge_app_kwargs
from ui.tempfiles import DELETE_CACHE, TempFiles
from ui.train import build_train_tab

TITLE = "Draw a digit, watch a network learn"
# Short, so that on a phone the pad and the verdict under it fit on the first screen.
DESCRIPTION = (
    "Draw a digit, or a whole number: a small network reads it live. Correct it to **teach it your "
    "handwriting**, **train** your own, and read the beginner's guide it grew from in **Guide**."
)

# Requests waiting beyond this are refused with a "queue full" message. Training has its own short line
# (ui/admission.py) in front of this queue, so the queue is drawing's: at most a second's worth of strokes.
QUEUE_SIZE = 256
MAX_UPLOAD = "4mb"  # uploaded weights and drawing archives; the shipped CNN is 0.4 MB
SESSIONS = MAX_SESSIONS  # visitors' sessions kept; which go first is ui/sessions.py's choice
WORKER_THREADS = 8  # Gradio's thread pool (default 40): 2 cores gain nothing from more, and each costs memory
# No show_error: Gradio's own exception texts can name the server's paths; the app's messages are gr.Error.
LAUNCH = {
    "run_history": False,
    "max_file_size": MAX_UPLOAD,
    "state_session_capacity": SESSIONS,
    "max_threads": WORKER_THREADS,
}
# One torch thread per request: on a 2-vCPU Space a training run then takes one core and everyone's
# strokes the other, instead of all of them fighting over both.
TORCH_THREADS = 1
M_ARENA_MAX = -8  # glibc's mallopt() parameter number for the most heaps ("arenas") malloc may create
MALLOC_ARENAS = 2
ANALYTICS_EVERY = 100  # events between Gradio's summaries of its queue statistics (default: every event)


FILES = TempFiles()  # every visitor's downloads, each session's own (its folder is made on first use)
KEEPER = SessionKeeper(on_drop=[FILES.remove])  # which sessions go when there are too many, and their files
# Training's own short line, in front of Gradio's queue (which is then drawing's); counts the app's queue.
ADMISSION = TrainingAdmission(lambda: waiting_in(demo, "train"))


def forget_files(request: gr.Request) -> None:
    """When a visitor's tab closes (Gradio's unload), the files offered to them go."""
    FILES.remove(request.session_hash)


def build_demo(models: Models | None = None) -> gr.Blocks:
    """The whole app; `models` defaults to the shipped weights in weights/."""
    models = models or Models.shipped()
    # analytics_enabled=False: Gradio looks up its servers for a version check when the Blocks is made.
    with gr.Blocks(title=TITLE, analytics_enabled=False, delete_cache=DELETE_CACHE) as demo:
        visitor = gr.State(Visitor())  # copied for each browser tab: their models and drawings, nobody else's
        gr.Markdown(f"## {TITLE}\n{DESCRIPTION}")
        page = Page(demo, models, visitor, FILES, ADMISSION)
        draw = build_draw_tab(page)
        drawings = build_drawings_tab(page, draw)
        draw.map.refresh_on(drawings.gallery.change)  # the visitor's drawings are on the map
        build_train_tab(page, draw, drawings)
        build_guide_tab(page)
        demo.unload(forget_files)
    demo.queue(max_size=QUEUE_SIZE)
    return demo


def tune_process(app: gr.Blocks) -> None:
    """Process-wide settings for a small server that runs torch in several threads at once: called when the
    app is launched, never on import (importing app.py for a constant must not change the process)."""
    torch.set_num_threads(TORCH_THREADS)
    # glibc gives threads that allocate at once heaps of their own and seldom returns their free memory:
    # with Gradio's worker threads the server grew by 100-200 MB per 20 s round of 20 drawing and 2
    # training clients, round after round; with two heaps it stays flat after the first (tests/test_load.py).
    with contextlib.suppress(OSError, AttributeError):  # not glibc (macOS, musl): nothing to tune
        ctypes.CDLL("libc.so.6").mallopt(M_ARENA_MAX, MALLOC_ARENAS)
    # After every event Gradio summarises up to 10,000 past events in a pandas table for its API page,
    # so each stroke got slower as the app aged; a summary every 100 events is plenty. The queue reads
    # this when it is made, so it is made again.
    os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", str(ANALYTICS_EVERY))
    app.queue(max_size=QUEUE_SIZE)
    # Gradio tries `import matplotlib` twice per event to switch its backend; when it is not installed,
    # each attempt searches every sys.path entry. Marking it absent makes the failure immediate.
    if importlib.util.find_spec("matplotlib") is None:
        sys.modules.setdefault("matplotlib", None)


def launch(**options):
    """Tune the process and serve the app, guarded (ui/guard.py) and with its sessions kept fairly
    (ui/sessions.py); `options` override `LAUNCH` and Gradio's defaults."""
    tune_process(demo)
    extra = options.pop("app_kwargs", None) or {}
    app_kwargs = merge_app_kwargs(guard(demo), KEEPER.app_kwargs(), ADMISSION.app_kwargs(demo), extra)
    return demo.launch(**{**LAUNCH, **options}, app_kwargs=app_kwargs)


demo = build_demo()

if __name__ == "__main__":
    launch()
