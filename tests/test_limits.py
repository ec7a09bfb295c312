"""The limits the README promises are the limits the code enforces: each row is rebuilt from the constants."""

from pathlib import Path

import app
from mnist_demo import canvas, checkpoint, inference, limits, models, personal, session, strokes
from ui import common, draw

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()

LIMITS = [
    ("Canvas or image side", f"{canvas.MIN_SIDE} to {canvas.MAX_SIDE:,} px, checked from the file header"),
    (
        "Layers in one drawing",
        f"{canvas.MAX_LAYERS}; without a composite, background and layers at most "
        f"{canvas.MAX_SKETCH_PIXELS:,} px together",
    ),
    (
        "Model in an uploaded checkpoint",
        f"MLP up to {models.LARGEST['mlp']:,} hidden units, CNN up to {models.LARGEST['cnn']} channels, "
        "checked before it is built",
    ),
    (
        "Strokes in one drawing (the pad, /predict)",
        f"{strokes.MAX_STROKES} strokes, {strokes.MAX_POINTS:,} points in all, coordinates finite and within "
        f"+-{strokes.MAX_COORD:,.0f}",
    ),
    ("Digits read on one canvas", f"{inference.MAX_DIGITS}"),
    ("Uploaded file (weights, drawing archive)", f"{app.MAX_UPLOAD.upper()}"),
    ("Checkpoint file (command line)", f"{checkpoint.MAX_CHECKPOINT_BYTES // 2**20} MB"),
    ("Epochs per training run", f"{limits.MAX_EPOCHS}"),
    ("Training images per run", f"{limits.MIN_TRAIN_SIZE:,} to {limits.MAX_TRAIN_SIZE:,}"),
    ("Batch size", f"up to {limits.MAX_BATCH_SIZE:,}"),
    ("Model size", f"MLP up to {limits.MAX_SIZE['mlp']:,} hidden units, CNN up to {limits.MAX_SIZE['cnn']} channels"),
    ("Your drawings", f"{personal.MAX_DRAWINGS} per visitor"),
    ("Your models", f"{session.MAX_OWN_MODELS} per visitor (the oldest goes first)"),
    (
        "Drawing archive import",
        f"{personal.MAX_MEMBERS:,} entries, {personal.MAX_TOTAL_BYTES // 2**20} MB unpacked, "
        f"{personal.MAX_STROKES_FILE_BYTES // 2**20} MB of strokes",
    ),
    ("Training and fine-tuning at once", f"{common.TRAIN_CONCURRENCY} (the rest wait in the queue)"),
    ("Predictions at once", f"{common.DRAW_CONCURRENCY}"),
    (
        "Strokes waiting to be read",
        f'{draw.DRAW_WAITING}, and {draw.PER_VISITOR} per browser tab, then "busy"',
    ),
    ("Queue", f'{app.QUEUE_SIZE} waiting requests, then "queue full"'),
    ("Visitors whose state is kept", f"{app.SESSIONS:,} (least recently used dropped first)"),
]


def test_readme_lists_every_limit_with_its_value():
    missing = [f"| {name} | {value} |" for name, value in LIMITS if f"| {name} | {value} |" not in README]
    assert not missing, "README's limits table is out of date:\n" + "\n".join(missing)
