"""The predict path in-process: what the app's /predict handler does for one stroke, on one torch thread.

`read_drawing(model, value)` (split the canvas into digits, MNIST-style preprocessing, forward, softmax)
on Sketchpad-shaped values of the ten digits, for the app's 280 x 280 canvas and Gradio's default
800 x 800, batch 1, with the shipped CNN. Also its two halves alone (preprocessing: `split_digits`;
forward + softmax on the ready tensor) and, as the baseline, the naive path: PIL-resize the whole canvas
to 28 x 28 and run the same forward. The forward row has its own baseline: the same weights in the
default (contiguous) memory format instead of the channels-last layout `inference.prepare` gives them.
All five are timed in turns, call by call, so load shifts hit them alike.

    python -m bench --only predict [--quick]
"""

from __future__ import annotations

import copy

import torch

from bench.report import Result
from mnist_demo.inference import SharedModels, read_drawing
from mnist_demo.segment import split_digits
from testkit.canvases import naive_tensor, sketch_values
from testkit.server import ROOT
from testkit.timing import interleaved, one_torch_thread

NAME = "predict"
SIZES = (280, 800)  # the app's canvas, and gr.Sketchpad's default
REPEATS = {True: 40, False: 300}  # calls per variant, quick / full
TARGET_MS = 2.0  # median of the whole path, batch 1, one thread


def run(quick: bool) -> list[Result]:
    """The rows of this benchmark: the whole path and its halves, per canvas size."""
    model = SharedModels.from_folder(ROOT / "weights", ("cnn",)).get("cnn")
    net, width = model.model, model.metadata.get("size")
    with one_torch_thread():  # as the app does: one thread per request
        return [row for size in SIZES for row in _measure(net, width, size, REPEATS[quick])]


def _measure(net: torch.nn.Module, width: int | None, size: int, n: int) -> list[Result]:
    """The three rows of one canvas size."""
    values = sketch_values(size)
    tensors = [torch.cat([s.tensor for s in split_digits(v)]) for _, v in values]  # (D, 1, 28, 28) each
    read = [read_drawing(net, v) for _, v in values]
    correct = sum(r is not None and r.text == d for r, (d, _) in zip(read, values))

    def value(i: int) -> dict:
        return values[i % len(values)][1]

    contiguous = copy.deepcopy(net).to(memory_format=torch.contiguous_format)  # as before `prepare`

    with torch.inference_mode():  # as read_drawing runs; channels-last gains little under no_grad alone
        stats = interleaved(
            {
                "full": lambda i: read_drawing(net, value(i)),
                "preprocess": lambda i: split_digits(value(i)),
                "forward": lambda i: net(tensors[i % len(tensors)]).softmax(dim=1),
                "contiguous": lambda i: contiguous(tensors[i % len(tensors)]).softmax(dim=1),
                "naive": lambda i: net(naive_tensor(value(i))).softmax(dim=1),
            },
            n,
        )
    ms = {k: s.scaled(1e3) for k, s in stats.items()}
    canvas = f"{size}x{size}"
    naive = ms["naive"].median
    return [
        Result.timed(
            NAME,
            f"read_drawing, {canvas} canvas",
            ms["full"],
            baseline=naive,
            baseline_label="naive resize",
            ratio=ms["full"].median / naive,
            target=f"< {TARGET_MS:g} ms",
            passed=ms["full"].median < TARGET_MS,
            note=f"CNN width {width}, 1 thread, batch 1, the ten digits in turn; {correct}/10 read right; "
            "ratio = ours / naive (whole canvas resized to 28x28, then the same forward)",
        ),
        Result.timed(NAME, f"  preprocess only, {canvas}", ms["preprocess"]),
        Result.timed(
            NAME,
            f"  forward + softmax only, {canvas}",
            ms["forward"],
            baseline=ms["contiguous"].median,
            baseline_label="contiguous weights",
            ratio=ms["forward"].median / ms["contiguous"].median,
            note="channels-last weights (inference.prepare) against the same weights in the default "
            "layout; ratio = channels-last / contiguous",
        ),
    ]
