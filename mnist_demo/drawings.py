"""Accuracy on people's drawings: a folder with subfolders 0 .. 9 of image files, each read as the app reads a
canvas, or a file of pen strokes, one drawing per JSON line, each read as the app reads the stroke pad.

Every file goes through `sketch_to_tensor`, exactly as a Sketchpad drawing does, and every line through
`strokes_to_sketch`, so the numbers say how the app fares on real drawings. A file or line that cannot be
read, or holds no drawing, is counted and reported, never fatal.

A subfolder `none` (or a line labelled "none") holds drawings that are no digit (letters, scribbles, shapes):
for those, and for each digit, the report gives the share the model declined as "not a digit" (`declined`),
with the checkpoint's threshold (`mnist_demo.reject`). `accuracy` counts the digit drawings read as the right
digit, declined or not.

A line of strokes is Quick, Draw!'s {"word": "7", "drawing": [[[x0, x1, ...], [y0, y1, ...]], ...]}, with
"label" for "word" too, or the stroke pad's point lists {"label": "7", "strokes": [[[x, y], ...], ...]};
any units, y down; "brush", when given, is the pen's width in those units (else MNIST's typical width).
Point lists under "drawing" are read as such when they cannot be Quick, Draw!'s form: a drawing whose
strokes all have at most 3 points could be either, and is read as Quick, Draw!'s.

    python -m mnist_demo.evaluate weights/cnn.safetensors --drawings DIR [--json]
    python -m mnist_demo.evaluate weights/cnn.safetensors --strokes FILE.ndjson [--json]
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import nn

from mnist_demo.data import IMAGE_SIZE, NUM_CLASSES
from mnist_demo.files import read_bounded
from mnist_demo.metrics import confusion_matrix, format_confusion, logits_of
from mnist_demo.preprocess import Sketch, sketch_to_tensor
from mnist_demo.reject import Decline, declines_of
from mnist_demo.strokes import strokes_from_quickdraw, strokes_to_sketch

MAX_FILE_BYTES = 32 * 2**20  # a drawing is a few kB to a few MB; larger files are refused unread
MAX_LINE_BYTES = 2**20  # a drawing of strokes.MAX_POINTS points is about 200 kB of JSON
SHOW_WRONG = 20  # misread drawings listed by name in the text report
NONE = "none"  # the subfolder (or line label) of drawings that are no digit
SCORE_WORDS = {  # the report's words
    "probability": "top probability",
    "energy": "energy of the logits",
    "residual": "energy less the features' residual",
}


def read_drawing_file(path: Path) -> Sketch | str:
    """One image file -> its Sketch, or the reason it cannot be used."""
    try:
        size = path.stat().st_size
        if size == 0:
            return "empty file"
        if size > MAX_FILE_BYTES:
            return f"file of {size / 2**20:.0f} MB; drawings here are at most {MAX_FILE_BYTES // 2**20} MB"
        with Image.open(path) as image:  # reads the header only; sketch_to_tensor checks the size first
            sketch = sketch_to_tensor(image)
    except UnidentifiedImageError:
        return "not an image file"
    except (OSError, ValueError, Image.DecompressionBombError) as err:  # truncated, unreadable, or no canvas
        return f"{type(err).__name__}: {err}"
    return sketch if sketch is not None else "blank: no drawing on the canvas"


def find_drawings(folder: Path | str) -> list[tuple[Path, int | None]]:
    """(file, digit) for every file in `folder`/0 .. `folder`/9, then (file, None) for `folder`/none, in a
    stable order; hidden files are skipped."""
    folder = Path(folder)
    if not folder.exists():
        raise FileNotFoundError(f"no folder of drawings at {folder}")
    if not folder.is_dir():
        raise NotADirectoryError(f"{folder} is not a folder; expected one with subfolders 0 .. 9 of drawings")
    labels = [d for d in range(NUM_CLASSES) if (folder / str(d)).is_dir()]
    labels += [None] if (folder / NONE).is_dir() else []
    if not labels:
        raise FileNotFoundError(
            f"{folder} has no subfolders 0 .. 9 (or {NONE}); put each drawing in the folder of its digit"
        )
    return [
        (path, d)
        for d in labels
        for path in sorted((folder / (NONE if d is None else str(d))).iterdir())
        if path.is_file() and not path.name.startswith(".")
    ]


def _share(flags: torch.Tensor) -> float | None:
    return flags.float().mean().item() if len(flags) else None


def evaluate_drawings(model: nn.Module, folder: Path | str, decline: Decline | None = None) -> dict:
    """Accuracy, per-digit accuracy, confusion matrix, declined shares and unreadable files for a folder of
    drawings, JSON-able. Without a `decline` rule (`mnist_demo.reject`) nothing is declined."""
    read = [(str(path), digit, read_drawing_file(path)) for path, digit in find_drawings(folder)]
    return score_drawings(model, read, "drawings", folder, decline)


def score_drawings(
    model: nn.Module,
    read: list[tuple[str, int | None, Sketch | str]],
    dataset: str,
    source: Path | str,
    decline: Decline | None = None,
) -> dict:
    """The report of `evaluate_drawings` for drawings already read: (name, digit or None for a non-digit,
    Sketch or why it is unusable)."""
    sketches, labels, paths, unreadable = [], [], [], []
    for name, digit, sketch in read:
        if isinstance(sketch, str):
            unreadable.append({"path": name, "digit": digit, "reason": sketch})
        else:
            sketches.append(sketch)
            labels.append(-1 if digit is None else digit)
            paths.append(name)

    labels = torch.tensor(labels, dtype=torch.long)
    images = torch.from_numpy(np.array([s.image for s in sketches], np.uint8).reshape(-1, IMAGE_SIZE, IMAGE_SIZE))
    logits = logits_of(model, images)  # (N, 10)
    preds = logits.argmax(dim=1)
    declined = (
        declines_of(model, images, decline) if decline is not None else torch.zeros(len(logits), dtype=torch.bool)
    )
    digit = labels >= 0

    confusion = confusion_matrix(labels[digit], preds[digit])
    n = int(digit.sum())
    per_class = {
        str(d): {
            "n": int(confusion[d].sum()),
            "accuracy": confusion[d, d].item() / int(confusion[d].sum()) if confusion[d].sum() else None,
            "declined": _share(declined[labels == d]),
        }
        for d in range(NUM_CLASSES)
    }
    if (~digit).any() or (dataset == "drawings" and (Path(source) / NONE).is_dir()):
        per_class[NONE] = {"n": int((~digit).sum()), "declined": _share(declined[~digit])}
    wrong = [
        {"path": p, "digit": int(t), "read_as": int(r)}
        for p, t, r in zip(paths, labels, preds, strict=True)
        if t >= 0 and t != r
    ]
    return {
        "dataset": dataset,
        "folder": str(source),
        "n": n,
        "accuracy": confusion.trace().item() / n if n else None,
        "declined": _share(declined[digit]),  # share of the digit drawings declined as "not a digit"
        "decline_below": None if decline is None else decline.below,
        "decline_score": None if decline is None else decline.score,
        "per_class": per_class,
        "confusion": confusion.tolist(),
        "wrong": wrong,
        "not_declined": [  # non-digits read as digits
            {"path": p, "read_as": int(r)}
            for p, t, r, x in zip(paths, labels, preds, declined, strict=True)
            if t < 0 and not x
        ],
        "unreadable": unreadable,
    }


def read_strokes_line(line: bytes) -> tuple[int | None, Sketch | str]:
    """One JSON line of strokes -> (its digit, None for a non-digit, and its Sketch or why it cannot be used)."""
    if len(line) > MAX_LINE_BYTES:
        return None, f"a line of {len(line) / 2**20:.1f} MB; a drawing here is at most {MAX_LINE_BYTES // 2**20} MB"
    try:
        row = json.loads(line)
    except UnicodeDecodeError:
        return None, "not UTF-8 text"
    except json.JSONDecodeError as err:
        return None, f"not JSON: {err.msg} at column {err.colno}"
    if not isinstance(row, dict):
        return None, 'expected a JSON object like {"label": "7", "drawing": [...]}'
    label = row.get("label", row.get("word"))
    digit = label if isinstance(label, int) and not isinstance(label, bool) else None
    if isinstance(label, str) and label.strip() in {str(d) for d in range(NUM_CLASSES)}:
        digit = int(label)
    if digit not in range(NUM_CLASSES) and label != NONE:
        return None, f'the "label" (or "word") must be a digit 0-9 or "{NONE}", got {json.dumps(label)[:40]}'
    try:
        if "drawing" in row:
            strokes = strokes_from_quickdraw(row["drawing"])
        elif "strokes" in row:
            strokes = row["strokes"]
        else:
            return digit, 'no "drawing" (or "strokes")'
        sketch = strokes_to_sketch(strokes, brush=row.get("brush"))
    except ValueError as err:
        return digit, str(err)
    return digit, sketch if sketch is not None else "no digit: a dot or a blob"


def evaluate_strokes(model: nn.Module, path: Path | str, decline: Decline | None = None) -> dict:
    """`evaluate_drawings`'s report for a file of strokes, one drawing per JSON line; blank lines are skipped."""
    text = read_bounded(path, MAX_FILE_BYTES, "strokes file")  # ValueError when missing or too big
    read = []
    for number, line in enumerate(text.split(b"\n"), 1):
        if line.strip():
            read.append((f"{path}:{number}", *read_strokes_line(line)))
    return score_drawings(model, read, "strokes", path, decline)


def _percent(fraction: float | None) -> str:
    return "-" if fraction is None else f"{100 * fraction:.1f}%"


def format_drawings_report(result: dict) -> str:
    """The result of `evaluate_drawings` as text for people: overall, per digit, confusions, problem files."""
    n, wrong = result["n"], result["wrong"]
    lines = [f"Drawings in {result['folder']}: {_percent(result['accuracy'])} read correctly ({n - len(wrong)} of {n})"]
    if result["unreadable"]:
        lines.append(f"{len(result['unreadable'])} file(s) could not be used (not counted above)")
    none = result["per_class"].get(NONE)
    if result["decline_below"] is not None:
        lines.append(
            f"declined as not a digit ({SCORE_WORDS.get(result.get('decline_score'), 'score')} below "
            f"{result['decline_below']:.3f}): "
            f"{_percent(result['declined'])} of the digits"
            + (f", {_percent(none['declined'])} of {none['n']} non-digits" if none else "")
        )
    lines += ["", "digit  drawings  accuracy  declined"]
    lines += [
        f"{d:>5}  {c['n']:>8}  {_percent(c.get('accuracy')):>8}  {_percent(c['declined']):>8}"
        for d, c in result["per_class"].items()
    ]
    lines += ["", format_confusion(result["confusion"])]
    if wrong:
        lines += ["", "misread:"]
        lines += [f"  {w['path']}: a {w['digit']} read as {w['read_as']}" for w in wrong[:SHOW_WRONG]]
        if len(wrong) > SHOW_WRONG:
            lines.append(f"  ... and {len(wrong) - SHOW_WRONG} more (see --json)")
    if result["unreadable"]:
        lines += ["", "not used:"] + [f"  {u['path']}: {u['reason']}" for u in result["unreadable"]]
    return "\n".join(lines)
