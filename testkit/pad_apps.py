"""Small apps for the stroke pad's browser test and the pen-latency benchmark: the pad reading strokes with
the shipped CNN, and a bare gr.Sketchpad (set up as the Draw tab's was) whose handler does nothing.

Both show a gr.Label (#pred) and the count of answers this visitor got (#events, a gr.HTML) that every
answer changes, so a page can tell when an answer has been shown. `launch(demo)` serves one from this
process; `python -m testkit.pad_apps` serves the benchmark's set from a process of their own (the real
app among them, launched as app.py launches it) and prints their URLs.

    python -m pytest tests/test_pad_browser.py
    python -m testkit.pad_apps ["app" "sketchpad" ...]
"""

from __future__ import annotations

from pathlib import Path

from mnist_demo.strokes import BRUSH, PAD_SIDE

WEIGHTS = Path(__file__).resolve().parents[1] / "weights" / "cnn.safetensors"


def events_html(count: int) -> str:
    return f"<span>{count} answers</span>"


def stroke_pad_app(example: list | None = None, reads: bool = True, queue: bool = True):
    """The stroke pad (#pad) and what the CNN reads in its strokes (#pred), as the Draw tab will have them.

    With `example` (strokes), a button (#example) puts them on the pad from Python. `reads=False`: the
    handler does nothing (what the transport alone costs); `queue=False`: the event skips Gradio's queue.
    """
    import json

    import gradio as gr

    from mnist_demo.checkpoint import load_checkpoint
    from mnist_demo.inference import prepare, read_strokes
    from ui.pad import parse_pad_value, stroke_pad

    model = prepare(load_checkpoint(WEIGHTS).model)

    def read(value, count):
        if not reads:
            return {str((count + 1) % 10): 1.0}, events_html(count + 1), count + 1
        try:
            reading = read_strokes(model, parse_pad_value(value))
        except ValueError as err:
            raise gr.Error(str(err)) from None
        return (None if reading is None else reading.label()), events_html(count + 1), count + 1

    with gr.Blocks(title="stroke pad") as demo:
        pad = stroke_pad()
        pred = gr.Label(num_top_classes=3, label="Probabilities", elem_id="pred")
        events = gr.HTML(events_html(0), elem_id="events")
        count = gr.State(0)
        outputs = [pred, events, count]
        pad.change(read, [pad, count], outputs, show_progress="hidden", trigger_mode="always_last", queue=queue)
        if example is not None:
            gr.Button("Example", elem_id="example").click(lambda: json.dumps(example), None, pad)
    return demo


def sketchpad_app():
    """A gr.Sketchpad like app.py's (280 px, a 20-px black brush) whose handler does no work at all."""
    import gradio as gr

    def nothing(value, count):
        return {str((count + 1) % 10): 1.0}, events_html(count + 1), count + 1

    with gr.Blocks(title="sketchpad") as demo:
        pad = gr.Sketchpad(
            canvas_size=(PAD_SIDE, PAD_SIDE),
            type="numpy",
            elem_id="pad",
            brush=gr.Brush(default_size=BRUSH // 2, colors=["#000000"], color_mode="fixed"),
            layers=False,
            transforms=(),
            buttons=[],
        )
        pred = gr.Label(label="Probabilities", elem_id="pred")
        events = gr.HTML(events_html(0), elem_id="events")
        count = gr.State(0)
        pad.change(nothing, [pad, count], [pred, events, count], show_progress="hidden", trigger_mode="always_last")
    return demo


def launch(demo) -> str:
    """Serve `demo` on a free loopback port from this process; its URL (demo.close() stops it)."""
    _, url, _ = demo.launch(server_name="127.0.0.1", prevent_thread_lock=True, quiet=True, run_history=False)
    return url


def launch_app() -> str:
    """app.py's demo, launched as app.py launches it (the process tuned, its launch options); its URL."""
    import app

    _, url, _ = app.launch(server_name="127.0.0.1", prevent_thread_lock=True, quiet=True)
    return url


APPS = {  # what `python -m testkit.pad_apps` serves, by name: built and launched in this process
    "app": launch_app,
    "sketchpad": lambda: launch(sketchpad_app()),
    "pad, no work": lambda: launch(stroke_pad_app(reads=False)),
    "pad, no work, no queue": lambda: launch(stroke_pad_app(reads=False, queue=False)),
}


def main(names: list[str]) -> None:
    """Serve APPS (those `names`, else all) until killed, one torch thread as in the app; prints {name: url}
    as one JSON line."""
    import json
    import threading

    import torch

    torch.set_num_threads(1)
    urls = {name: serve() for name, serve in APPS.items() if not names or name in names}
    print(json.dumps(urls), flush=True)
    threading.Event().wait()  # the servers run in their own threads; the caller ends this process


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
