"""Does a digit drawn on a canvas read as well as the MNIST original? Redraws MNIST test digits as a person would.

Each digit's skeleton (traced by testkit/traces.py) is stroked with a round, hard-edged brush of random
width, at a random size (25% to 90% of the canvas height) and place, under several canvas conditions;
every drawing goes through `sketch_to_tensor` exactly as the app's does, and the models' accuracy on it
is set beside their accuracy on the same digits' original 28 x 28 images. Seeded, so every run draws the same pictures.

    python bench/canvas_robustness.py [--weights CNN MLP ...] [--n 2000] [--quick] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from mnist_demo.checkpoint import load_checkpoint  # noqa: E402
from mnist_demo.data import IMAGE_SIZE, load_mnist, normalize  # noqa: E402
from mnist_demo.preprocess import sketch_to_tensor  # noqa: E402
from testkit.canvases import naive_tensor  # noqa: E402
from testkit.timing import one_torch_thread, repeat  # noqa: E402
from testkit.traces import TRACE_SCALE, trace  # noqa: E402

DEFAULT_WEIGHTS = ["weights/cnn.safetensors", "weights/mlp.safetensors"]
DEFAULT_N = 2000
QUICK_N = 300
SEED = 0
HEIGHT_RANGE = (0.25, 0.9)  # the drawn digit's height as a share of the canvas height
BRUSH_RANGE = (0.03, 0.25)  # brush width as a share of the digit's height, drawn log-uniformly
MIN_BRUSH_PX = 2  # no sketchpad brush is thinner
TARGET_GAP_PP = 1.5  # the CNN should lose at most this many points on any condition
TIMING_CALLS = 200  # sketch_to_tensor is timed on one 800 x 800 drawing this many times


@dataclass(frozen=True)
class Condition:
    """One way of drawing: canvas size, paper and ink colours, and how the value reaches the app."""

    name: str
    size: int  # canvas side in pixels
    paper: tuple[int, int, int, int]  # RGBA
    light_ink: bool  # random light colours instead of black
    layers_only: bool  # deliver as an ImageEditor layer over no background, without a composite


CONDITIONS = [
    Condition("black on white 280", 280, (255, 255, 255, 255), light_ink=False, layers_only=False),
    Condition("black on white 800", 800, (255, 255, 255, 255), light_ink=False, layers_only=False),
    Condition("light ink, transparent 512", 512, (0, 0, 0, 0), light_ink=True, layers_only=True),
]


def stroke(pen: ImageDraw.ImageDraw, strokes: list[np.ndarray], width: float, ink) -> None:
    """Draw polylines with a round brush `width` pixels wide: a disc at every vertex gives round joints and ends.

    (PIL's own joint="curve" does the same in Python, several times slower.)
    """
    r = width / 2
    for xy in strokes:
        for x, y in xy:
            pen.ellipse((x - r, y - r, x + r, y + r), fill=ink)
        if len(xy) > 1:
            pen.line(xy.ravel().tolist(), fill=ink, width=max(1, round(width)))


def draw(strokes: list[np.ndarray], condition: Condition, rng: np.random.Generator) -> dict:
    """Stroke the skeleton with a round brush on a fresh canvas; returns the value a Sketchpad would send."""
    size = condition.size
    height = rng.uniform(*HEIGHT_RANGE) * size
    brush = max(MIN_BRUSH_PX, round(height * np.exp(rng.uniform(*np.log(BRUSH_RANGE)))))
    points = np.concatenate(strokes)
    low, extent = points.min(0), np.maximum(np.ptp(points, 0), 1e-3)  # (x, y) each
    scale = min((height - brush) / extent[1], (0.98 * size - brush) / extent[0])
    origin = brush / 2 + rng.uniform(0, 1, 2) * (size - brush - extent * scale)
    ink = (*rng.integers(160, 256, 3).tolist(), 255) if condition.light_ink else (0, 0, 0, 255)
    canvas = Image.new("RGBA", (size, size), condition.paper)
    # ImageDraw does not anti-alias: hard edges, as a sketchpad draws. Opaque ink on the paper is the composite.
    stroke(ImageDraw.Draw(canvas), [(xy - low) * scale + origin for xy in strokes], brush, ink)
    if condition.layers_only:  # a transparent layer and nothing else, as an ImageEditor without background sends
        return {"background": None, "layers": [np.asarray(canvas)], "composite": None}
    return {"background": None, "layers": [], "composite": np.asarray(canvas)}  # the app reads only this


def redraw_in_place(digit: np.ndarray, strokes: list[np.ndarray]) -> np.ndarray:
    """Stroke the skeleton where it was, at the digit's own mean width: (28, 28) uint8, no preprocessing.

    The gap between this and the original is what tracing costs by itself (uniform width, skeleton spurs).
    """
    size = digit.shape[0] * TRACE_SCALE
    length = sum(np.linalg.norm(np.diff(xy, axis=0), axis=1).sum() for xy in strokes)
    width = TRACE_SCALE * digit.sum() / 255.0 / max(length, 1.0)  # ink area / stroke length
    layer = Image.new("L", (size, size), 0)
    stroke(ImageDraw.Draw(layer), [xy * TRACE_SCALE for xy in strokes], width, 255)
    return np.asarray(layer.reduce(TRACE_SCALE))


def accuracy(models: dict, inputs: list[torch.Tensor | None], labels: torch.Tensor) -> dict[str, float]:
    """Share of digits each model gets right; an input the preprocessing gave up on (None) counts as wrong."""
    read = torch.tensor([x is not None for x in inputs])
    blank = torch.zeros(1, 1, IMAGE_SIZE, IMAGE_SIZE)
    batch = torch.cat([x if x is not None else blank for x in inputs])  # (N, 1, 28, 28)
    with torch.no_grad():
        right = {name: (model(batch).argmax(1) == labels) & read for name, model in models.items()}
    return {name: float(r.float().mean()) for name, r in right.items()}


def _tensors(drawings) -> list[torch.Tensor | None]:
    sketches = (sketch_to_tensor(d) for d in drawings)
    return [s.tensor if s is not None else None for s in sketches]


def time_preprocessing(value: dict, calls: int = TIMING_CALLS) -> float:
    """Median wall time of sketch_to_tensor on one canvas, in milliseconds, on one thread as in the app."""
    with one_torch_thread():
        return 1000 * repeat(lambda: sketch_to_tensor(value), calls, warmup=1).median


def run(weights: list[str], n: int, seed: int = SEED) -> dict:
    """Accuracy of each model on the original digits and on each canvas condition, with the gaps in points."""
    names = [Path(w).stem for w in weights]
    names = [Path(w).parent.name + "/" + n if names.count(n) > 1 else n for w, n in zip(weights, names, strict=True)]
    checkpoints = {name: load_checkpoint(w) for name, w in zip(names, weights, strict=True)}
    models = {name: c.model for name, c in checkpoints.items()}
    test = load_mnist(train=False).subset(n)
    images, labels = test.images.numpy(), test.labels
    start = time.perf_counter()
    traces = [trace(image) for image in images]
    rows = {"original 28x28": list(normalize(test.images).split(1))}  # the same digits, as MNIST has them
    # Two diagnostics: preprocessing alone (MNIST's own images as canvases) and tracing alone (no preprocessing).
    rows["original via preprocessing"] = _tensors(images)
    in_place = np.stack([redraw_in_place(image, strokes) for image, strokes in zip(images, traces, strict=True)])
    rows["traced, no preprocessing"] = list(normalize(torch.from_numpy(in_place)).split(1))
    for i, condition in enumerate(CONDITIONS):
        rng = np.random.default_rng([seed, i])
        drawings = [draw(strokes, condition, rng) for strokes in traces]
        rows[condition.name] = _tensors(drawings)
        if i == 0:  # why preprocessing matters: the same drawings without it
            rows[f"{condition.name}, naive resize"] = [naive_tensor(d, Image.Resampling.BOX) for d in drawings]
    scores = {name: accuracy(models, inputs, labels) for name, inputs in rows.items()}
    big = next(c for c in CONDITIONS if c.size == 800)
    milliseconds = time_preprocessing(draw(traces[0], big, np.random.default_rng(seed)))
    base = scores["original 28x28"]
    table = [
        {
            "condition": name,
            "canvas": name in {c.name for c in CONDITIONS},
            **{f"{m}_accuracy": acc[m] for m in models},
            **{f"{m}_gap_pp": 100 * (acc[m] - base[m]) for m in models},
        }
        for name, acc in scores.items()
    ]
    return {
        "n": len(labels),
        "seed": seed,
        "seconds": round(time.perf_counter() - start, 1),
        "models": list(models),
        "sketch_to_tensor_800_ms": round(milliseconds, 2),
        "cnn_models": [m for m, c in checkpoints.items() if c.name == "cnn"],
        "rows": table,
    }


def format_table(result: dict) -> str:
    """The result as a table: accuracy per condition and model, and the gap to the originals in points."""
    models = result["models"]
    header = f"{'condition':<34}" + "".join(f"{m + ' acc':>14}{'gap pp':>8}" for m in models)
    lines = [
        f"{result['n']} MNIST test digits, seed {result['seed']}, {result['seconds']} s; sketch_to_tensor on "
        f"800 x 800 RGBA: median {result['sketch_to_tensor_800_ms']} ms",
        header,
    ]
    for row in result["rows"]:
        cells = "".join(f"{100 * row[f'{m}_accuracy']:>13.2f}%{row[f'{m}_gap_pp']:>+8.2f}" for m in models)
        lines.append(f"{row['condition']:<34}{cells}")
    for m in result["cnn_models"]:
        worst = min(row[f"{m}_gap_pp"] for row in result["rows"] if row["canvas"])
        verdict = "within" if worst >= -TARGET_GAP_PP else "OUTSIDE"
        lines.append(f"{m}: worst canvas gap {worst:+.2f} pp, {verdict} the {TARGET_GAP_PP} pp target")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", nargs="+", default=DEFAULT_WEIGHTS, help="checkpoints to compare")
    parser.add_argument("--n", type=int, default=None, help=f"test digits to redraw (default {DEFAULT_N})")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_N} digits, for a smoke test")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    n = args.n or (QUICK_N if args.quick else DEFAULT_N)
    result = run(args.weights, n, args.seed)
    print(json.dumps(result, indent=2) if args.json else format_table(result))


if __name__ == "__main__":
    main()
