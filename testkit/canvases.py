"""The drawings every benchmark uses: the ten digits stroked as a sketchpad strokes them (testkit/sketches.py).

The brush scales with the canvas: 20 px wide on the app's 280-px canvas (its 10-px brush radius), so a
bigger canvas holds the same picture at a higher resolution.

    python -c "from testkit.canvases import sketch_values; print(len(sketch_values(280)))"
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from mnist_demo.data import IMAGE_SIZE, normalize
from testkit.sketches import draw, sketchpad

DIGITS = "0123456789"
APP_CANVAS = 280  # px, app.CANVAS_SIZE (not imported: importing app builds the whole demo)
APP_BRUSH = 20  # px wide on the app's canvas: app.BRUSH_RADIUS is a radius


def drawing(digit: str, size: int = APP_CANVAS) -> Image.Image:
    """One digit, black on white RGBA, `size` pixels square."""
    return draw(digit, size=(size, size), brush=max(2, round(APP_BRUSH * size / APP_CANVAS)))


def sketch_values(size: int = APP_CANVAS) -> list[tuple[str, dict]]:
    """(digit, the value gr.Sketchpad hands the predict handler) for each of the ten digits."""
    return [(d, sketchpad(drawing(d, size))) for d in DIGITS]


def png_files(folder: Path, size: int = APP_CANVAS) -> list[tuple[str, str]]:
    """(digit, path of its composite as a PNG) for each digit: what a client uploads for one stroke."""
    files = []
    for d in DIGITS:
        path = Path(folder) / f"digit-{d}-{size}.png"
        drawing(d, size).save(path)
        files.append((d, str(path)))
    return files


def upload(path: str) -> dict:
    """The /predict endpoint's Sketchpad argument for a composite PNG (gradio_client needs handle_file)."""
    from gradio_client import handle_file

    return {"background": None, "layers": [], "composite": handle_file(path)}


def naive_tensor(value: dict, resample: Image.Resampling = Image.Resampling.BILINEAR) -> torch.Tensor:
    """What a first attempt does with a canvas: shrink all of it to 28 x 28 and invert; no crop, no centring."""
    gray = Image.fromarray(value["composite"]).convert("L").resize((IMAGE_SIZE, IMAGE_SIZE), resample)
    return normalize(torch.from_numpy(255 - np.asarray(gray))[None])  # (1, 1, 28, 28)
