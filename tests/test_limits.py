"""The limits the README promises are the limits the code enforces: each row is rebuilt from the constants."""

from pathlib import Path

import app
from mnist_demo import canvas, checkpoint, cost, inference, limits, models, personal, session, strokes
from ui import admission, common, draw, sessions, tempfiles

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
    ("Batch size", f"{limits.MIN_BATCH_SIZE} to {limits.MAX_BATCH_SIZE:,}, powers of two"),
    (
        "One training step",
        f"at most {cost.MAX_STEP_S:g} s on one core, estimated from the model's size and the batch "
        f"(the widest CNN: batch {limits.largest_batch_size('cnn', models.LARGEST['cnn'])} at most), "
        "so that Stop ends a run at once",
    ),
    ("Model size", f"MLP up to {limits.MAX_SIZE['mlp']:,} hidden units, CNN up to {limits.MAX_SIZE['cnn']} channels"),
    ("Your drawings", f"{personal.MAX_DRAWINGS} per visitor"),
    ("Your models", f"{session.MAX_OWN_MODELS} per visitor (the oldest goes first)"),
    (
        "Drawing archive import",
        f"{personal.MAX_MEMBERS:,} entries, {personal.MAX_TOTAL_BYTES // 2**20} MB unpacked, "
        f"{personal.MAX_STROKES_FILE_BYTES // 2**20} MB of strokes",
    ),
    ("Training and fine-tuning at once", f"{common.TRAIN_CONCURRENCY} (the rest wait in the training queue)"),
    (
        "Training queue",
        f'{admission.MAX_WAITING} runs waiting, then "the training queue is full; try again in about N s" '
        "(drawing goes on)",
    ),
    ("Predictions at once", f"{common.DRAW_CONCURRENCY}"),
    (
        "Strokes waiting to be read",
        f'{draw.DRAW_WAITING}, and {draw.PER_VISITOR} per browser tab, then "busy"',
    ),
    ("Queue (drawing)", f'{app.QUEUE_SIZE} waiting requests, then "queue full"'),
    (
        "Visitors' sessions kept",
        f"{app.SESSIONS:,}; beyond that, empty sessions go first, then the least recently used of the "
        "address with the most",
    ),
    (
        "One visitor's models and drawings",
        f"at most {sessions.VISITOR_MAX_BYTES / 2**20:.0f} MB ({session.MAX_OWN_MODELS} of the largest models, "
        f"{personal.MAX_DRAWINGS} drawings)",
    ),
    (
        "All visitors' models, drawings and runs' maps",
        f"{sessions.MAX_HELD_BYTES // 2**20:,} MB; beyond it the least recently used session of the address "
        "holding the most goes first",
    ),
    ("Idle session", f"dropped after {sessions.MAX_IDLE_S // 60} minutes unused, with what it holds"),
    (
        "Sessions' memory, worst case",
        f"{sessions.worst_case_bytes() / 2**30:.1f} GB: {app.SESSIONS:,} x {sessions.SESSION_BYTES // 2**10} KB "
        f"of Gradio's, plus {sessions.MAX_HELD_BYTES // 2**20:,} MB held",
    ),
    (
        "Downloads (weights, drawing archives)",
        f"{tempfiles.MAX_SESSION_FILES} files and {tempfiles.MAX_SESSION_BYTES // 2**20} MB per visitor, "
        f"{tempfiles.MAX_TOTAL_BYTES // 2**20} MB in all; removed when the tab closes or after "
        f"{tempfiles.MAX_AGE_S // 60} minutes",
    ),
]


def test_readme_lists_every_limit_with_its_value():
    missing = [f"| {name} | {value} |" for name, value in LIMITS if f"| {name} | {value} |" not in README]
    assert not missing, "README's limits table is out of date:\n" + "\n".join(missing)


def test_the_train_tabs_batch_sizes_are_the_servers():
    """The README said 1,024 while the dropdown stopped at 512, so the server refused 1,024."""
    dropdowns = [b for b in app.demo.blocks.values() if getattr(b, "label", None) == "Batch size"]
    assert len(dropdowns) == 1
    assert [value for _, value in dropdowns[0].choices] == limits.BATCH_SIZES
    assert max(limits.BATCH_SIZES) == limits.MAX_BATCH_SIZE and min(limits.BATCH_SIZES) == limits.MIN_BATCH_SIZE
