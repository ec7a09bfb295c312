"""Drawings made with the mouse on a real Sketchpad are read as the digits they are, by the CLI and by the app.

tests/drawings/<digit>/<name>.png are the composites a Sketchpad set up like app.py's sent to its server
while Playwright drew in chromium (scripts/capture_drawings.py made them): real brush rendering and real
transport, unlike the PIL drawings of testkit/sketches.py.

    python -m pytest tests/test_real_drawings.py
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mnist_demo.evaluate import main as evaluate_main
from testkit.sketches import sketchpad

ROOT = Path(__file__).resolve().parents[1]
DRAWINGS = ROOT / "tests" / "drawings"
CNN = ROOT / "weights" / "cnn.safetensors"
FILES = sorted(DRAWINGS.glob("[0-9]/*.png"))
MAX_BYTES = 8_000  # a two-colour 280 x 280 PNG is about 1 kB


@pytest.fixture(scope="module")
def handlers(models):
    from ui.draw import DrawHandlers

    return DrawHandlers(models)


def test_every_digit_has_several_small_sketchpad_drawings():
    per_digit = {d: len(list((DRAWINGS / d).glob("*.png"))) for d in "0123456789"}
    assert min(per_digit.values()) >= 2, per_digit
    for path in FILES:
        with Image.open(path) as image:
            assert image.size == (280, 280) and image.mode == "RGBA", path
            pixels = np.asarray(image)
        assert path.stat().st_size <= MAX_BYTES, path
        assert (pixels[..., 3] == 255).all(), f"{path}: a Sketchpad composite is opaque"
        assert (pixels[..., :3].min(axis=2) < 128).mean() > 0.01, f"{path}: no drawing on it"


def test_the_cli_reads_every_drawing_with_the_shipped_cnn(capsys):
    assert evaluate_main([str(CNN), "--drawings", str(DRAWINGS), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n"] == len(FILES) and not report["unreadable"]
    assert report["wrong"] == [] and report["accuracy"] == 1.0


@pytest.mark.parametrize("path", FILES, ids=[f"{p.parent.name}/{p.stem}" for p in FILES])
def test_the_predict_handler_reads_each_drawing(handlers, path):
    with Image.open(path) as image:
        value = sketchpad(image)  # background, layer and composite, as the Sketchpad sends them
    label = handlers.predict(value, "cnn", None)
    assert max(label, key=label.get) == path.parent.name, label
